/**
 * Classification metrics for label transfer, in plain float64 TypeScript: confusion matrix,
 * per-class precision/recall/F1, calibration (ECE over equal-width bins), Brier score, negative
 * log-likelihood and the Mann-Whitney AUROC used for unseen-type detection.
 *
 * Conventions (the same as scikit-learn's `zero_division=0`): a ratio whose denominator is 0 is 0,
 * never NaN, so a class that is never predicted has precision 0 and F1 0.
 */
import { ScnymError } from "../util/errors.ts";

/** Counts of (true label, predicted label) pairs: `counts[t][p]`, rows true, columns predicted. */
export interface ConfusionMatrix {
  /** Label order of both rows and columns. */
  labels: string[];
  counts: number[][];
}

/** One class's scores. `support` is the number of cells whose true label is this class. */
export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
  /** Number of cells predicted as this class. */
  predicted: number;
}

/** One equal-width confidence bin of a reliability diagram; `lo < confidence <= hi`. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** Fraction correct among the bin's cells (0 for an empty bin). */
  accuracy: number;
  /** Mean confidence of the bin's cells (0 for an empty bin). */
  confidence: number;
}

/** Expected calibration error and the bins it was computed from. */
export interface Calibration {
  ece: number;
  bins: CalibrationBin[];
}

/** Returns `a / b`, or 0 when `b` is 0 (scikit-learn's `zero_division=0`). */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/**
 * Sorted union of the true and predicted labels: the default label order of a confusion matrix.
 * Labels sort by JavaScript string order so the order does not depend on cell order.
 */
export function labelUnion(truth: readonly string[], predicted: readonly string[]): string[] {
  return [...new Set([...truth, ...predicted])].sort();
}

/**
 * Confusion matrix of `truth` vs `predicted` over `labels` (default: `labelUnion`). Every true and
 * predicted label must be in `labels`.
 */
export function confusionMatrix(
  truth: readonly string[],
  predicted: readonly string[],
  labels: readonly string[] = labelUnion(truth, predicted),
): ConfusionMatrix {
  if (truth.length !== predicted.length) {
    throw new ScnymError(
      `confusionMatrix: ${truth.length} true labels but ${predicted.length} predictions`,
    );
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const counts = labels.map(() => new Array<number>(labels.length).fill(0));
  for (let i = 0; i < truth.length; i++) {
    const t = index.get(truth[i]);
    const p = index.get(predicted[i]);
    if (t === undefined || p === undefined) {
      const missing = t === undefined ? truth[i] : predicted[i];
      throw new ScnymError(`confusionMatrix: label "${missing}" (cell ${i}) is not in the labels`);
    }
    counts[t][p]++;
  }
  return { labels: [...labels], counts };
}

/** Fraction of cells whose prediction equals the truth (0 for no cells). */
export function accuracy(truth: readonly string[], predicted: readonly string[]): number {
  if (truth.length !== predicted.length) {
    throw new ScnymError(
      `accuracy: ${truth.length} true labels but ${predicted.length} predictions`,
    );
  }
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === predicted[i]) right++;
  return ratio(right, truth.length);
}

/** Per-class precision, recall, F1 and support, in the matrix's label order. */
export function classScores(cm: ConfusionMatrix): ClassScores[] {
  const c = cm.labels.length;
  return cm.labels.map((label, k) => {
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < c; j++) {
      support += cm.counts[k][j];
      predicted += cm.counts[j][k];
    }
    const tp = cm.counts[k][k];
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    // 2PR/(P+R) written as 2TP/(2TP+FP+FN), which is 0 rather than 0/0 when TP = 0.
    const f1 = ratio(2 * tp, predicted + support);
    return { label, precision, recall, f1, support, predicted };
  });
}

/** Arithmetic mean (0 for an empty list). */
export function mean(xs: readonly number[]): number {
  return ratio(xs.reduce((s, x) => s + x, 0), xs.length);
}

/** Median (mean of the two middle values for an even count; 0 for an empty list). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Index of the equal-width bin holding `c` when [0, 1] is cut into `nBins` bins that are open on
 * the left and closed on the right, `(b/nBins, (b+1)/nBins]`, with 0 itself in the first bin: the
 * convention of Guo et al. (2017) and of scNym's own calibration code.
 */
export function calibrationBinIndex(c: number, nBins: number): number {
  let b = Math.min(nBins - 1, Math.max(0, Math.ceil(c * nBins) - 1));
  // c * nBins can round across a boundary; settle against the exact edges b / nBins.
  while (b > 0 && c <= b / nBins) b--;
  while (b < nBins - 1 && c > (b + 1) / nBins) b++;
  return b;
}

/**
 * Expected calibration error: `ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|` over `nBins`
 * equal-width bins of `confidence` (the max predicted probability), where acc is the fraction of
 * the bin's cells whose prediction was `correct`. 0 means confidence matches accuracy in every bin.
 */
export function expectedCalibrationError(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  nBins = 15,
): Calibration {
  const n = confidence.length;
  if (correct.length !== n) {
    throw new ScnymError(`expectedCalibrationError: ${n} confidences but ${correct.length} flags`);
  }
  if (!Number.isInteger(nBins) || nBins < 1) {
    throw new ScnymError(
      `expectedCalibrationError: nBins must be a positive integer, got ${nBins}`,
    );
  }
  const count = new Float64Array(nBins);
  const right = new Float64Array(nBins);
  const conf = new Float64Array(nBins);
  for (let i = 0; i < n; i++) {
    const c = confidence[i];
    if (!(c >= 0 && c <= 1)) {
      throw new ScnymError(`expectedCalibrationError: confidence[${i}] = ${c}, expected 0..1`);
    }
    const b = calibrationBinIndex(c, nBins);
    count[b]++;
    conf[b] += c;
    if (correct[i]) right[b]++;
  }
  let ece = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < nBins; b++) {
    const acc = ratio(right[b], count[b]);
    const cf = ratio(conf[b], count[b]);
    ece += ratio(count[b], n) * Math.abs(acc - cf);
    bins.push({
      lo: b / nBins,
      hi: (b + 1) / nBins,
      count: count[b],
      accuracy: acc,
      confidence: cf,
    });
  }
  return { ece, bins };
}

/**
 * Checks a row-major n x C probability matrix: finite, non-negative, rows summing to 1 within
 * `tol` (float32 softmax outputs sum to 1 within ~1e-6; 1e-3 leaves room for rounding on disk).
 */
export function checkProbabilities(values: ArrayLike<number>, n: number, c: number, op: string) {
  if (values.length !== n * c) {
    throw new ScnymError(
      `${op}: probabilities have ${values.length} values, expected ${n} cells x ${c} classes`,
    );
  }
  const tol = 1e-3;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) {
      const v = values[i * c + j];
      if (!(v >= 0 && v <= 1 + tol)) {
        throw new ScnymError(`${op}: probability [cell ${i}, class ${j}] = ${v}, expected 0..1`);
      }
      s += v;
    }
    if (Math.abs(s - 1) > tol) {
      throw new ScnymError(
        `${op}: probabilities of cell ${i} sum to ${s.toPrecision(6)}, expected 1`,
      );
    }
  }
}

/**
 * Multi-class Brier score (Brier 1950): the mean over cells of `sum_c (p_c - y_c)^2`, where y is
 * the one-hot true class; it ranges from 0 (certain and right) to 2 (certain and wrong).
 * `truthIndex[i]` is the column of cell i's true class, or -1 when the true class is not among the
 * model's classes; then y is all zeros and the cell contributes `sum_c p_c^2` (the probability
 * mass it put on classes that are all wrong).
 */
export function brierScore(
  probs: ArrayLike<number>,
  n: number,
  c: number,
  truthIndex: ArrayLike<number>,
): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const t = truthIndex[i];
    for (let j = 0; j < c; j++) {
      const d = probs[i * c + j] - (j === t ? 1 : 0);
      total += d * d;
    }
  }
  return ratio(total, n);
}

/** Probability floor of the NLL: a confident miss costs at most -ln(1e-12) = 27.6 nats. */
export const NLL_CLIP = 1e-12;

/**
 * Mean negative log-likelihood `-ln p_true` (natural log) over the cells whose true class is among
 * the model's classes (`truthIndex[i] >= 0`); cells of other classes have no defined likelihood
 * and are skipped. Probabilities are clipped at `NLL_CLIP`. Returns the mean and the cells used.
 */
export function negativeLogLikelihood(
  probs: ArrayLike<number>,
  n: number,
  c: number,
  truthIndex: ArrayLike<number>,
): { nll: number; nCells: number } {
  let total = 0;
  let used = 0;
  for (let i = 0; i < n; i++) {
    const t = truthIndex[i];
    if (t < 0) continue;
    total -= Math.log(Math.max(probs[i * c + t], NLL_CLIP));
    used++;
  }
  return { nll: ratio(total, used), nCells: used };
}

/**
 * Area under the ROC curve of `scores` for separating `positive` cells from the rest, as the
 * Mann-Whitney U statistic: `(R+ - n+(n+ + 1)/2) / (n+ n-)` with R+ the sum of the positives'
 * ranks, tied scores getting the mean (mid) rank so a tie counts one half. 1 means every positive
 * scores above every negative, 0.5 is chance. NaN when either group is empty.
 */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<boolean | number>): number {
  const n = scores.length;
  if (positive.length !== n) {
    throw new ScnymError(`auroc: ${n} scores but ${positive.length} labels`);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSum = 0;
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    // Ranks start..end-1 (1-based start+1..end) are tied; each gets their mean.
    const midRank = (start + 1 + end) / 2;
    for (let r = start; r < end; r++) {
      if (positive[order[r]]) {
        nPos++;
        rankSum += midRank;
      }
    }
    start = end;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
