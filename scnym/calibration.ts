/**
 * What a trained model knows about its own confidence, fitted once after training on reference
 * cells and stored in the model file:
 *
 * - temperature scaling (Guo et al., ICML 2017): one scalar T > 0 with probabilities
 *   softmax(logits / T), T minimising the negative log-likelihood of held-out reference cells.
 *   The argmax, hence every label, is unchanged;
 * - a novelty score for cells of a type the reference lacks (higher = more likely unseen): the
 *   class-conditional Mahalanobis distance of a cell's embedding to the nearest reference class
 *   (Lee et al., NeurIPS 2018), class means and one shared, ridge-regularised covariance fitted on
 *   the reference training cells. Stored whitened (A = L^-1 for Sigma = L L^T, means A mu_c), so a
 *   cell costs one H x H product plus C distances.
 *
 * The energy score (Liu et al., NeurIPS 2020) is here too: bench/novelty_analyse.ts compares the
 * candidates; the measurement that chose Mahalanobis is in scnym/fit_calibration.ts.
 *
 * Pure host code in float64 (the fits see a few thousand cells once per training).
 */
import { ScnymError } from "../util/errors.ts";
import { logSumExpRows, softmaxRows } from "../util/softmax.ts";

/** The novelty statistics of a model: whitening matrix and whitened class means. */
export interface NoveltyStats {
  /** Lower-triangular A (hidden x hidden, row-major) with A Sigma A^T = I. */
  whiten: Float32Array;
  /** Class means after whitening (classes x hidden, row-major). */
  means: Float32Array;
  hidden: number;
  classes: number;
}

/** How a model's outputs are calibrated. A model file without it means T = 1, no novelty. */
export interface Calibration {
  temperature: number;
  novelty: NoveltyStats | null;
}

/** The calibration of files written before it existed. */
export const NO_CALIBRATION: Calibration = { temperature: 1, novelty: null };

/** What the model file's header records (the novelty arrays are tensors of the file). */
export interface CalibrationRecord {
  temperature: number;
  /** The NLL-minimising temperature before the floor of scnym/fit_calibration.ts. */
  fittedTemperature: number;
  /** The held-out reference cells T was fitted on. */
  temperatureCells: number;
  /** Held-out mean NLL at T = 1 and at the fitted T. */
  nll: { before: number; after: number };
  /** Null when there were too few training cells to fit the statistics. */
  novelty: { kind: "mahalanobis"; ridge: number; cells: number } | null;
}

/** Model-file tensor names of the novelty statistics. */
export const NOVELTY_TENSORS = { whiten: "novelty.whiten", means: "novelty.means" } as const;

/** Ridge added to the shared covariance, as a share of its mean variance (dead ReLUs: singular). */
export const NOVELTY_RIDGE = 0.01;

/** Mean negative log-likelihood of `labels` under probabilities `p` (cells x C). */
export function meanNll(p: ArrayLike<number>, C: number, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) s -= Math.log(Math.max(p[i * C + labels[i]], 1e-12));
  return labels.length ? s / labels.length : 0;
}

/**
 * The temperature minimising the mean NLL of `labels` under softmax(logits / T), by golden-section
 * search on log T in [1/20, 20] (40 steps: log T to ~1e-8); 1 without labelled cells. The NLL is
 * convex in 1/T (a log-sum-exp of linear functions minus a linear one), hence unimodal in log T,
 * so the search finds the minimum in that range; deterministic.
 */
export function fitTemperature(
  logits: ArrayLike<number>,
  C: number,
  labels: ArrayLike<number>,
): number {
  if (labels.length === 0) return 1;
  const f = (logT: number) => meanNll(softmaxRows(logits, C, Math.exp(logT)), C, labels);
  const g = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(1 / 20), b = Math.log(20);
  let x1 = b - g * (b - a), x2 = a + g * (b - a);
  let f1 = f(x1), f2 = f(x2);
  for (let it = 0; it < 40; it++) {
    if (f1 <= f2) [b, x2, f2] = [x2, x1, f1], x1 = b - g * (b - a), f1 = f(x1);
    else [a, x1, f1] = [x1, x2, f2], x2 = a + g * (b - a), f2 = f(x2);
  }
  return Math.exp((a + b) / 2);
}

/** Energy score -T logsumexp(logits / T) per cell: higher = less like any training class. */
export function energyScore(logits: ArrayLike<number>, C: number, T = 1): Float64Array {
  return logSumExpRows(logits, C, T).map((lse) => -T * lse);
}

/** Cholesky factor L (lower, row-major) of a symmetric positive definite n x n matrix. */
export function cholesky(S: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = S[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new ScnymError("novelty: covariance is not positive definite");
        L[i * n + i] = Math.sqrt(s);
      } else {
        L[i * n + j] = s / L[j * n + j];
      }
    }
  }
  return L;
}

/** Inverse of a lower-triangular n x n matrix (row-major), by forward substitution. */
export function invertLower(L: Float64Array, n: number): Float64Array {
  const A = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    A[j * n + j] = 1 / L[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += L[i * n + k] * A[k * n + j];
      A[i * n + j] = -s / L[i * n + i];
    }
  }
  return A;
}

/**
 * Class means and the shared within-class covariance of `embedding` (cells x H) for cells of
 * class `labels[i]` (every class 0..C-1 present), plus `ridge` times the mean variance on the
 * diagonal; returned whitened (see `NoveltyStats`).
 */
export function fitNovelty(
  embedding: ArrayLike<number>,
  H: number,
  labels: ArrayLike<number>,
  C: number,
  ridge = NOVELTY_RIDGE,
): NoveltyStats {
  const n = labels.length;
  const mu = new Float64Array(C * H);
  const count = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    count[c]++;
    for (let h = 0; h < H; h++) mu[c * H + h] += embedding[i * H + h];
  }
  for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) mu[c * H + h] /= Math.max(count[c], 1);
  const S = new Float64Array(H * H);
  const d = new Float64Array(H);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    for (let h = 0; h < H; h++) d[h] = embedding[i * H + h] - mu[c * H + h];
    for (let a = 0; a < H; a++) {
      const da = d[a];
      if (da === 0) continue;
      for (let b = 0; b <= a; b++) S[a * H + b] += da * d[b];
    }
  }
  let trace = 0;
  for (let a = 0; a < H; a++) trace += S[a * H + a] / n;
  const lambda = ridge * Math.max(trace / H, 1e-12);
  for (let a = 0; a < H; a++) {
    for (let b = 0; b <= a; b++) S[a * H + b] = S[b * H + a] = S[a * H + b] / n;
    S[a * H + a] += lambda;
  }
  const A = invertLower(cholesky(S, H), H);
  const means = new Float32Array(C * H);
  for (let c = 0; c < C; c++) {
    for (let j = 0; j < H; j++) {
      let s = 0;
      for (let k = 0; k <= j; k++) s += A[j * H + k] * mu[c * H + k];
      means[c * H + j] = s;
    }
  }
  return { whiten: Float32Array.from(A), means, hidden: H, classes: C };
}

/**
 * Novelty of each cell (rows of `embedding`, cells x H): the squared Mahalanobis distance to the
 * nearest class mean, min_c |A x - A mu_c|^2.
 */
export function noveltyScore(stats: NoveltyStats, embedding: ArrayLike<number>): Float32Array {
  const { hidden: H, classes: C, whiten: A, means } = stats;
  const n = embedding.length / H;
  const out = new Float32Array(n);
  const z = new Float64Array(H);
  for (let i = 0; i < n; i++) {
    const o = i * H;
    for (let j = 0; j < H; j++) {
      let s = 0;
      for (let k = 0; k <= j; k++) s += A[j * H + k] * embedding[o + k];
      z[j] = s;
    }
    let best = Infinity;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < H; j++) {
        const e = z[j] - means[c * H + j];
        s += e * e;
      }
      if (s < best) best = s;
    }
    out[i] = best;
  }
  return out;
}

/** The novelty score of cells from their embeddings (cells x H); null without statistics. */
export function cellNovelty(cal: Calibration, embedding: ArrayLike<number>): Float32Array | null {
  return cal.novelty ? noveltyScore(cal.novelty, embedding) : null;
}

/** The model-file tensors of a calibration (none without novelty statistics). */
export function calibrationTensors(
  cal: Calibration,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const s = cal.novelty;
  if (s) {
    out.set(NOVELTY_TENSORS.whiten, { shape: [s.hidden, s.hidden], data: s.whiten });
    out.set(NOVELTY_TENSORS.means, { shape: [s.classes, s.hidden], data: s.means });
  }
  return out;
}

/** The calibration a model file holds (`NO_CALIBRATION` for files written before it). */
export function readCalibration(
  record: CalibrationRecord | undefined,
  tensors: Map<string, Float32Array>,
  shape: { hidden: number; classes: number },
  path: string,
): Calibration {
  if (!record) return NO_CALIBRATION;
  const T = record.temperature;
  if (!(typeof T === "number" && T > 0 && Number.isFinite(T))) {
    throw new ScnymError(`${path}: calibration temperature ${T} is not a positive number`);
  }
  if (!record.novelty) return { temperature: T, novelty: null };
  const { hidden: H, classes: C } = shape;
  const whiten = tensors.get(NOVELTY_TENSORS.whiten);
  const means = tensors.get(NOVELTY_TENSORS.means);
  if (whiten?.length !== H * H || means?.length !== C * H) {
    throw new ScnymError(`${path}: novelty statistics missing or of the wrong size`);
  }
  return { temperature: T, novelty: { whiten, means, hidden: H, classes: C } };
}
