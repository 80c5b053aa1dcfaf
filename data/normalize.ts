/**
 * What an expression matrix holds (raw counts, log-normalised values, or scaled values), and the
 * normalisation scNym expects: `ln(1 + 1e6 * x / total)` per cell ("log1p CPM", natural log).
 *
 * The check scans every stored value once (cheap next to reading the file), so NaN/Inf are found
 * wherever they are, and the classification is exact rather than sampled.
 */
import { type Csr, nnz } from "./csr.ts";
import { ScnymError } from "../util/errors.ts";

/** What a matrix looks like. */
export type MatrixKind = "counts" | "log1p" | "scaled";

/** How the model input was derived from the file's matrix (recorded in outputs and model files). */
export type Normalisation = "counts->log1p_cpm" | "log_normalised_as_is";

/** ln(1e6 + 1): the largest value log1p-CPM can take (one cell with all counts in one gene). */
export const LOG1P_CPM_MAX = Math.log1p(1e6);

/** Running statistics over stored values; feed it chunks with `add`, then `classify`. */
export class ValueStats {
  /** Stored values seen (explicit zeros included). */
  count = 0;
  nonZero = 0;
  min = Infinity;
  max = -Infinity;
  negatives = 0;
  nonIntegers = 0;
  nonFinite = 0;
  /** Position (in the order values were added) of the first NaN/Inf, or -1. */
  firstNonFinite = -1;

  /** Folds `values` into the statistics. */
  add(values: ArrayLike<number>): this {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) {
        if (this.firstNonFinite < 0) this.firstNonFinite = this.count + i;
        this.nonFinite++;
        continue;
      }
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      if (v !== 0) this.nonZero++;
      if (v < 0) this.negatives++;
      if (v !== Math.round(v)) this.nonIntegers++;
    }
    this.count += values.length;
    return this;
  }

  /** Folds in the statistics of values added elsewhere (another chunk, after these). */
  merge(o: ValueStats): this {
    if (this.firstNonFinite < 0 && o.firstNonFinite >= 0) {
      this.firstNonFinite = this.count + o.firstNonFinite;
    }
    this.min = Math.min(this.min, o.min);
    this.max = Math.max(this.max, o.max);
    this.nonZero += o.nonZero;
    this.negatives += o.negatives;
    this.nonIntegers += o.nonIntegers;
    this.nonFinite += o.nonFinite;
    this.count += o.count;
    return this;
  }

  /**
   * `scaled` if any value is negative (z-scored data: the model cannot use it), `counts` if all
   * values are non-negative integers, `log1p` otherwise (non-negative, non-integer).
   */
  kind(): MatrixKind {
    if (this.negatives > 0) return "scaled";
    if (this.nonIntegers === 0) return "counts";
    return "log1p";
  }

  /** True when a log1p matrix stays within log1p-CPM's range (max <= ln(1e6 + 1)). */
  inLog1pCpmRange(): boolean {
    return this.max <= LOG1P_CPM_MAX + 1e-3;
  }

  /** A short human description, e.g. `raw counts (max 3828)`. */
  describe(): string {
    if (this.count === 0 || this.nonZero === 0) return "all zero";
    const range = `min ${fmt(this.min)}, max ${fmt(this.max)}`;
    switch (this.kind()) {
      case "counts":
        return `raw counts (integers, max ${fmt(this.max)})`;
      case "log1p":
        return this.inLog1pCpmRange()
          ? `log-normalised (${range})`
          : `log-normalised, above the log1p-CPM range (${range})`;
      case "scaled":
        return `scaled (negative values: ${range})`;
    }
  }
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/** Statistics of all stored values of `m`. */
export function matrixStats(m: Csr): ValueStats {
  return new ValueStats().add(m.data.subarray(0, nnz(m)));
}

/** Where a matrix came from, for messages. */
export interface MatrixOrigin {
  /** File path. */
  file: string;
  /** `X`, `raw/X`, `layers/<name>`, ... */
  matrix: string;
  /** Other matrices in the same file that hold counts or log data (suggested when refusing). */
  alternatives?: string[];
}

/**
 * Validates a matrix for training/prediction and says what it holds. One-line `ScnymError`s for:
 * an empty matrix (no cells, no genes or no non-zero value), NaN/Inf (naming the cell and gene
 * position), and scaled data (naming `raw` or a layer to use instead when the file has one).
 */
export function checkMatrix(m: Csr, origin: MatrixOrigin): ValueStats {
  return checkStats(checkFinite(m, origin), [m.nRows, m.nCols], origin);
}

/**
 * The statistics of `m`, refusing NaN/Inf with their count and the cell (counted from
 * `firstRow`, for a chunk of a larger matrix: then the count is the chunk's) and gene of the first.
 */
export function checkFinite(m: Csr, origin: MatrixOrigin, firstRow = 0): ValueStats {
  const stats = matrixStats(m);
  if (stats.nonFinite > 0) {
    const k = stats.firstNonFinite;
    throw new ScnymError(
      `${origin.file}: ${origin.matrix} has ${stats.nonFinite} NaN/Inf value(s), first at cell ${
        firstRow + rowOf(m, k)
      } gene ${m.indices[k]} (${m.data[k]}); remove or fix them`,
    );
  }
  return stats;
}

/**
 * The checks of `checkMatrix` that need the statistics of the whole matrix (of `shape`): empty,
 * all zero, scaled. `stats` may be merged from chunks (`ValueStats.merge`).
 */
export function checkStats(
  stats: ValueStats,
  shape: [number, number],
  origin: MatrixOrigin,
): ValueStats {
  const where = `${origin.file}: ${origin.matrix}`;
  if (shape[0] === 0 || shape[1] === 0) {
    throw new ScnymError(`${where} is empty (${shape[0]} cells x ${shape[1]} genes)`);
  }
  if (stats.nonZero === 0) {
    throw new ScnymError(`${where} holds no non-zero value (${shape[0]} x ${shape[1]})`);
  }
  if (stats.kind() === "scaled") {
    const alt = origin.alternatives ?? [];
    const hint = alt.length
      ? `use ${alt.map((a) => `--matrix ${matrixFlagValue(a)}`).join(" or ")} instead`
      : "give counts or log-normalised data instead (adata.raw or a counts layer, chosen with " +
        "--matrix raw or --matrix LAYER)";
    throw new ScnymError(
      `${where} is scaled (negative values, min ${fmt(stats.min)}): scNym needs counts or ` +
        `log-normalised data; ${hint}`,
    );
  }
  return stats;
}

/** How `--matrix` names a stored matrix: `raw` for `raw/X`, the bare name of a layer. */
export function matrixFlagValue(stored: string): string {
  return stored === "raw/X" ? "raw" : stored.replace(/^layers\//, "");
}

function rowOf(m: Csr, k: number): number {
  let lo = 0;
  let hi = m.nRows - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (m.indptr[mid] <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * `ln(1 + 1e6 * x / total)` per cell, in float64 then stored as float32. Same sparsity pattern;
 * cells with zero total stay all-zero (no NaN).
 */
export function log1pCpm(m: Csr): Csr {
  const data = new Float32Array(nnz(m));
  for (let r = 0; r < m.nRows; r++) {
    const a = m.indptr[r];
    const b = m.indptr[r + 1];
    let total = 0;
    for (let k = a; k < b; k++) total += m.data[k];
    if (total <= 0) continue;
    const scale = 1e6 / total;
    for (let k = a; k < b; k++) data[k] = Math.log1p(m.data[k] * scale);
  }
  return { nRows: m.nRows, nCols: m.nCols, indptr: m.indptr, indices: m.indices, data };
}

/** The model input and how it was obtained. */
export interface NormalisedMatrix {
  X: Csr;
  normalisation: Normalisation;
  /** What the input held. */
  stats: ValueStats;
  /** Warnings for the user (log data used as-is, values above the log1p-CPM range). */
  warnings: string[];
}

/**
 * Makes a checked matrix ready for the model: counts become log1p-CPM; log-normalised data is used
 * as-is with a warning (we cannot undo someone else's normalisation); scaled data is refused.
 */
export function normaliseForModel(m: Csr, origin: MatrixOrigin): NormalisedMatrix {
  const stats = checkMatrix(m, origin);
  const { normalisation, warnings } = normalisationFor(stats, origin);
  return { X: normaliseRows(m, normalisation), normalisation, stats, warnings };
}

/** The rows of `m` as the model sees them under `normalisation` (row-local: chunks may go alone). */
export function normaliseRows(m: Csr, normalisation: Normalisation): Csr {
  return normalisation === "counts->log1p_cpm" ? log1pCpm(m) : m;
}

/**
 * How a matrix with the (checked) statistics `stats` is normalised, with the warnings for the
 * user: counts become log1p-CPM, log-normalised data is used as-is.
 */
export function normalisationFor(
  stats: ValueStats,
  origin: MatrixOrigin,
): { normalisation: Normalisation; warnings: string[] } {
  const where = `${origin.file}: ${origin.matrix}`;
  if (stats.kind() === "counts") return { normalisation: "counts->log1p_cpm", warnings: [] };
  const warnings = [
    `${where} is already log-normalised (max ${fmt(stats.max)}); using it as-is, ` +
    `not renormalised to log1p-CPM`,
  ];
  if (!stats.inLog1pCpmRange()) {
    warnings.push(
      `${where}: max ${fmt(stats.max)} exceeds ln(1e6+1) = ${fmt(LOG1P_CPM_MAX)}, so it is not ` +
        `log1p-CPM; train and query should be normalised the same way`,
    );
  }
  return { normalisation: "log_normalised_as_is", warnings };
}
