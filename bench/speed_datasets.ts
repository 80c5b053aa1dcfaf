/**
 * The datasets of bench/speed.ts: `kang` (Kang CTRL -> STIM from ../shared/data), `kang1300` (the
 * same cells on the 1,300 genes of highest mean expression) and `sim12k` (simulated), each a
 * training set plus the annotation of its target cells; and the labelled splits `train` draws.
 */
import { nnz, selectColumns } from "../data/csr.ts";
import { log1pCpm } from "../data/normalize.ts";
import { simulate } from "../data/simulate.ts";
import { splitLabelled } from "../scnym/batches.ts";
import type { ScnymConfig } from "../scnym/config.ts";
import { loadTrainingData } from "../scnym/inputs.ts";
import type { prepareTrainingSet } from "../scnym/train.ts";
import type { TrainingSet } from "../scnym/types.ts";
import { Rng } from "../util/rng.ts";

/** The dataset names `load` knows. */
export const SPEED_DATASETS = ["kang", "kang1300", "sim12k"];
const KANG = new URL("../../shared/data/kang_ifnb_sub_2000.h5ad", import.meta.url).pathname;

/** A training set plus the annotation of its target cells (for target accuracy). */
export interface Dataset {
  name: string;
  description: string;
  set: TrainingSet;
  truth: (string | null)[];
}

let kangCache: Dataset | null | undefined;
async function kang(): Promise<Dataset | null> {
  if (kangCache !== undefined) return kangCache;
  if (!await Deno.stat(KANG).then(() => true, () => false)) {
    console.error(`skipped kang / kang1300: ${KANG} is absent (../shared/data not mounted)`);
    return kangCache = null;
  }
  const loaded = await loadTrainingData({
    reference: KANG,
    labels: "cell_type",
    targetWhere: "condition=STIM",
  });
  return kangCache = {
    name: "kang",
    description: "Kang IFN-beta CTRL -> STIM (kang_ifnb_sub_2000.h5ad)",
    set: loaded.set,
    truth: loaded.truth,
  };
}

/** The same cells on the `keep` genes of highest mean (normalised) expression. */
function topGenes(d: Dataset, keep: number, name: string): Dataset {
  const X = d.set.X;
  const sum = new Float64Array(X.nCols);
  for (let k = 0; k < nnz(X); k++) sum[X.indices[k]] += X.data[k];
  const order = Array.from({ length: X.nCols }, (_, j) => j).sort((a, b) => sum[b] - sum[a]);
  const cols = order.slice(0, keep).sort((a, b) => a - b);
  return {
    name,
    description: `${d.description}, top ${keep} genes by mean`,
    set: { ...d.set, X: selectColumns(X, cols), genes: cols.map((j) => d.set.genes[j]) },
    truth: d.truth,
  };
}

function sim12k(seed: number): Dataset {
  const sim = simulate({ cellsPerDomain: [5727, 6534], genes: 1300, types: 8, seed });
  const isTarget = sim.domain.map((d) => d === "target");
  return {
    name: "sim12k",
    description: "simulated (data/simulate.ts), 5,727 labelled + 6,534 target cells, 8 types",
    set: {
      X: log1pCpm(sim.counts),
      genes: sim.geneNames,
      labels: sim.cellType,
      isTarget,
      normalisation: "counts->log1p_cpm",
    },
    truth: sim.cellType.map((t, i) => isTarget[i] ? t : null),
  };
}

/** Dataset `name` (one of SPEED_DATASETS), or null when its file is absent. */
export async function loadDataset(name: string, seed: number): Promise<Dataset | null> {
  if (name === "sim12k") return sim12k(seed);
  const k = await kang();
  if (!k) return null;
  return name === "kang" ? k : topGenes(k, 1300, "kang1300");
}

/** The labelled splits `train` draws: its generator's first draws are these (seeded alike). */
export function splitsOf(
  prep: ReturnType<typeof prepareTrainingSet>,
  config: ScnymConfig,
  seed: number,
) {
  return splitLabelled(
    prep.labelled.map((i) => prep.classOf[i]),
    config.train.validationFraction,
    config.train.earlyStoppingFraction,
    new Rng(seed),
  );
}
