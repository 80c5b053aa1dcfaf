/**
 * The HTML report of a query labelled by a saved model (`scnym interpret --report`): the same
 * page as `scnym predict --report` without annotations, plus the saliency section.
 */
import type { PredictFileResult } from "../scnym/api.ts";
import type { Interpretation } from "../scnym/interpret.ts";
import type { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import { reportForRun } from "./shared.ts";

/** Writes the report of `r` (every cell a query cell) with `saliency`'s section. */
export async function reportForQuery(
  path: string,
  r: PredictFileResult,
  opts: {
    modelPath: string;
    queryPath: string;
    seed: number;
    overwrite: boolean;
    progress: Progress;
    saliency?: Interpretation;
  },
): Promise<void> {
  const { header } = r.loaded;
  const n = r.X.nRows;
  await reportForRun(path, {
    loaded: {
      set: {
        X: r.X,
        genes: header.genes,
        labels: new Array(n).fill(null),
        isTarget: new Array(n).fill(true),
        normalisation: r.normalisation,
      },
      cellNames: r.query.obs.index,
      truth: new Array(n).fill(null),
      origin: new Array(n).fill("query"),
      warnings: [],
    },
    prediction: r.prediction,
    trainingLabels: header.classes,
    facts: {
      "tool version": VERSION,
      model: opts.modelPath,
      "model seed": header.seed,
      config: header.config.name,
      query: opts.queryPath,
      genes: `${r.alignment.found} of ${r.alignment.total} model genes found`,
      adapter: r.rt.gpu.description,
    },
    seed: opts.seed,
    overwrite: opts.overwrite,
    progress: opts.progress,
    saliency: opts.saliency,
  });
}
