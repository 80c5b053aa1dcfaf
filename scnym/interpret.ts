/**
 * Which genes drive each prediction (the paper's Section 3.3): per class, genes ranked by their
 * mean attribution over a set of cells, with the gene's mean expression in those cells beside it,
 * and for the least confident cells their top genes for the predicted and the runner-up class.
 * The attributions themselves come from nn/attribution.ts.
 */
import { type Csr, selectRows } from "../data/csr.ts";
import type { ScnymModel } from "../nn/model.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import type { Progress } from "../util/progress.ts";
import {
  attribute,
  type AttributionJobs,
  type AttributionSums,
  type SaliencyMethod,
} from "../nn/attribution.ts";
import type { CellPredictions } from "./predict.ts";

// The command layer picks a method here, so it need not reach down into nn/.
export { SALIENCY_METHODS, type SaliencyMethod } from "../nn/attribution.ts";

/** Which cells explain a class: those predicted as it, all cells, or low-confidence ones. */
export const CELL_SETS = ["predicted", "all", "low-confidence"] as const;
/** A set of cells (see `CELL_SETS`). */
export type CellSet = typeof CELL_SETS[number];

/** Options of `interpretCells`. */
export interface InterpretOptions {
  method: SaliencyMethod;
  /** Class names to explain (default: every class of the model). */
  classes?: string[];
  cells?: CellSet;
  /** low-confidence: cells predicted below this confidence (default 0.7). */
  below?: number;
  /** Genes per class in the ranking (default 20). */
  top?: number;
  /** ig points / eg draws per cell. */
  steps?: number;
  /** eg reference cells (default: up to 1,000 query cells). */
  background?: Csr;
  /** Least confident cells whose own top genes to report (default 10). */
  leastConfident?: number;
  seed?: number;
  progress?: Progress;
}

/** One gene of a class ranking. */
export interface RankedGene {
  gene: string;
  attribution: number;
  /** Mean (normalised) expression over the cells that explained the class. */
  expression: number;
}

/** The explanation of one class. */
export interface ClassSaliency {
  name: string;
  /** Cells whose attributions were averaged. */
  cells: number;
  top: RankedGene[];
  /** ig/eg: mean |sum of attributions - score difference| and mean |score difference|. */
  completeness: { gap: number; delta: number } | null;
}

/** A low-confidence cell and its top genes for its two most probable classes. */
export interface UncertainCell {
  cell: number;
  confidence: number;
  predicted: { name: string; genes: string[] };
  runnerUp: { name: string; genes: string[] };
}

/** What `interpretCells` returns. */
export interface Interpretation {
  method: SaliencyMethod;
  steps: number;
  cellSet: CellSet;
  seed: number;
  genes: string[];
  /** Explained classes in order (the rows of `matrix`). */
  classes: ClassSaliency[];
  /** Mean attribution, explained classes x genes, row-major (the `uns/scNym_saliency` matrix). */
  matrix: Float32Array;
  uncertain: UncertainCell[];
}

/** The model-class indices of `names` (all classes when absent); unknown names are refused. */
export function resolveClasses(all: string[], names?: string[]): number[] {
  if (!names?.length) return all.map((_, i) => i);
  return names.map((n) => {
    const k = all.indexOf(n);
    if (k < 0) {
      throw new ScnymError(
        `interpret: unknown class "${n}"; the model's classes: ${all.join(", ")}`,
      );
    }
    return k;
  });
}

/** Ranks the genes of each class by mean attribution over `cells`-selected cells. */
export async function interpretCells(
  rt: Runtime,
  model: ScnymModel,
  X: Csr,
  prediction: CellPredictions,
  genes: string[],
  opts: InterpretOptions,
): Promise<Interpretation> {
  const all = prediction.classes;
  const wanted = resolveClasses(all, opts.classes);
  const cellSet = opts.cells ?? "predicted";
  const C = all.length;
  const n = X.nRows;
  const best = (i: number) => rankOf(prediction.probabilities, i, C, 0);
  const below = opts.below ?? 0.7;
  const cells: number[] = [];
  const classes: number[] = [];
  for (const c of wanted) {
    for (let i = 0; i < n; i++) {
      const mine = best(i) === c;
      const take = cellSet === "all" ||
        (mine && (cellSet === "predicted" || prediction.confidence[i] < below));
      if (take) {
        cells.push(i);
        classes.push(c);
      }
    }
  }
  const seed = opts.seed ?? 0;
  const background = opts.method === "eg"
    ? opts.background ?? sampleRows(X, 1000, seed)
    : undefined;
  const common = { method: opts.method, steps: opts.steps, background, seed };
  const jobs: AttributionJobs = {
    cells: Int32Array.from(cells),
    classes: Int32Array.from(classes),
  };
  const sums = await attribute(rt, model, X, jobs, { ...common, progress: opts.progress });
  const G = genes.length;
  const top = opts.top ?? 20;
  const matrix = new Float32Array(wanted.length * G);
  const explained = wanted.map((c, k) => {
    const count = sums.counts[c];
    const mean = sums.sums.subarray(c * G, (c + 1) * G).map((v) => count ? v / count : 0);
    matrix.set(mean, k * G);
    const expr = meanExpression(X, cells.filter((_, j) => classes[j] === c));
    const order = topIndices(mean, top);
    return {
      name: all[c],
      cells: count,
      top: order.map((g) => ({ gene: genes[g], attribution: mean[g], expression: expr[g] })),
      completeness: completenessOf(sums, classes, c),
    };
  });
  const uncertain = await explainUncertain(rt, model, X, prediction, genes, {
    ...common,
    n: opts.leastConfident ?? 10,
  });
  return {
    method: opts.method,
    steps: sums.steps,
    cellSet,
    seed,
    genes,
    classes: explained,
    matrix,
    uncertain,
  };
}

/** The index of the `rank`-th largest value of row i (0: the argmax). */
function rankOf(p: Float32Array, i: number, C: number, rank: number): number {
  const row = Array.from(p.subarray(i * C, (i + 1) * C), (v, k) => [v, k]);
  row.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return row[rank][1];
}

/** Indices of the `k` largest values, largest first (ties: lower index first). */
export function topIndices(v: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b] - v[a] || a - b);
  return idx.slice(0, k);
}

/** Mean of each column of X over `rows` (float64). */
function meanExpression(X: Csr, rows: number[]): Float64Array {
  const out = new Float64Array(X.nCols);
  for (const r of rows) {
    for (let e = X.indptr[r]; e < X.indptr[r + 1]; e++) out[X.indices[e]] += X.data[e];
  }
  if (rows.length) { for (let g = 0; g < out.length; g++) out[g] /= rows.length; }
  return out;
}

function completenessOf(s: AttributionSums, classes: number[], c: number) {
  if (!s.completeness) return null;
  let gap = 0;
  let delta = 0;
  let k = 0;
  classes.forEach((cls, j) => {
    if (cls !== c) return;
    gap += Math.abs(s.completeness!.total[j] - s.completeness!.delta[j]);
    delta += Math.abs(s.completeness!.delta[j]);
    k++;
  });
  return k ? { gap: gap / k, delta: delta / k } : null;
}

/** Up to `n` rows of X drawn without replacement by `seed` (all rows when fewer). */
function sampleRows(X: Csr, n: number, seed: number): Csr {
  if (X.nRows <= n) return X;
  const rows = Array.from({ length: X.nRows }, (_, i) => i);
  let s = (seed ^ 0xb9) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = i + (s % (rows.length - i));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  return selectRows(X, rows.slice(0, n).sort((a, b) => a - b));
}

/** The least confident cells' top 5 genes for their predicted and runner-up classes. */
async function explainUncertain(
  rt: Runtime,
  model: ScnymModel,
  X: Csr,
  p: CellPredictions,
  genes: string[],
  opts: { method: SaliencyMethod; steps?: number; background?: Csr; seed: number; n: number },
): Promise<UncertainCell[]> {
  const C = p.classes.length;
  const order = topIndices(p.confidence.map((v) => -v), Math.min(opts.n, X.nRows));
  if (!order.length) return [];
  const cells = Int32Array.from(order.flatMap((i) => [i, i]));
  const classes = Int32Array.from(
    order.flatMap((i) => [rankOf(p.probabilities, i, C, 0), rankOf(p.probabilities, i, C, 1)]),
  );
  const keep = Array.from(cells, (_, j) => j);
  const s = await attribute(rt, model, X, { cells, classes }, { ...opts, keep });
  const top = (j: number) => topIndices(s.rows.get(j)!, 5).map((g) => genes[g]);
  return order.map((i, k) => ({
    cell: i,
    confidence: p.confidence[i],
    predicted: { name: p.classes[classes[2 * k]], genes: top(2 * k) },
    runnerUp: { name: p.classes[classes[2 * k + 1]], genes: top(2 * k + 1) },
  }));
}
