/**
 * `uns/scNym_saliency` in a predictions `.h5ad`, the way scanpy stores `rank_genes_groups`: a
 * dict with the classes x genes matrix of mean attributions (`values`), the gene and class names
 * and the run's parameters. Added to a finished file through a copy that replaces it only once
 * complete, so a failure leaves the predictions as they were.
 */
import { ScnymError } from "../util/errors.ts";
import { hostFs } from "../util/host_fs.ts";
import type { UnsValue } from "./anndata.ts";
import { dictGroup, writeArray, writeStrings, writeUns, writeViaTemp } from "./h5ad_elements.ts";
import { getGroup, isGroup, openH5 } from "./h5.ts";

/** The saliency of some classes over the model's genes. */
export interface SaliencyMatrix {
  /** Mean attribution, classes x genes, row-major. */
  values: Float32Array;
  classes: string[];
  genes: string[];
  /** Method, steps, cell set, seed, ... (stored under `params`). */
  params: Record<string, UnsValue>;
}

/** Adds `uns/<key>_saliency` in the existing `.h5ad` at `path`. */
export async function addSaliency(path: string, s: SaliencyMatrix, key = "scNym"): Promise<void> {
  if (s.values.length !== s.classes.length * s.genes.length) {
    throw new ScnymError(
      `saliency: ${s.values.length} values for ${s.classes.length} classes x ${s.genes.length} genes`,
    );
  }
  await writeViaTemp(path, true, async (tmp) => {
    await hostFs().copyFile(path, tmp);
    const f = await openH5(tmp, "a");
    try {
      const uns = isGroup(f, "uns") ? getGroup(f, "uns") : dictGroup(f, "uns");
      const name = `${key}_saliency`;
      if (uns.keys().includes(name)) {
        throw new ScnymError(`${path} already holds uns/${name} (from its input); not replaced`);
      }
      const g = dictGroup(uns, name);
      writeArray(g, "values", s.values, [s.classes.length, s.genes.length], 4);
      writeStrings(g, "classes", s.classes);
      writeStrings(g, "names", s.genes);
      writeUns(dictGroup(g, "params"), s.params, 4);
    } finally {
      f.close();
    }
  });
}
