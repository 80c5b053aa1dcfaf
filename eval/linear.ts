/**
 * Linear baselines on sparse expression (log1p-CPM): the classifiers a user would try instead of
 * scNym, and the yardstick the label-free guard is held to. CPU, float64, deterministic.
 *
 * They mirror scikit-learn's defaults on the unscaled matrix, the pipeline we cross-check against
 * (tests/linear_test.ts):
 * - `fitLogistic` is `LogisticRegression(C=1)` (multinomial softmax, L2 on the weights, intercept
 *   not penalised), fitted by L-BFGS;
 * - `fitLinearSvm` is `LinearSVC(C=1)` (one-vs-rest, squared hinge, L2; liblinear penalises the
 *   intercept as a constant feature of value `interceptScaling`), fitted by dual coordinate descent
 *   (Hsieh et al. 2008, "A dual coordinate descent method for large-scale linear SVM").
 *
 * No feature standardisation: on the four shared tasks scikit-learn with
 * `StandardScaler(with_mean=False)` in front lost 1-4 points of accuracy against the raw
 * log1p-CPM matrix for both models, and the raw pipeline reproduces the linear-SVM figures recorded
 * earlier. Weights are stored feature-major (`weights[g * nClasses + k]`, the transpose of
 * scikit-learn's `coef_`) so the sparse products run over contiguous class vectors.
 */
import type { Csr } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { argmaxRows } from "../util/argmax.ts";
import { softmaxRowInPlace, softmaxRows } from "../util/softmax.ts";
import { type LbfgsOptions, minimiseLbfgs } from "./lbfgs.ts";

/** A fitted linear classifier: `score_k(x) = sum_g x_g weights[g, k] + bias[k]`. */
export interface LinearModel {
  kind: "logistic" | "linear_svm";
  nFeatures: number;
  nClasses: number;
  /** nFeatures x nClasses, row-major (feature-major). */
  weights: Float64Array;
  bias: Float64Array;
  /** How the fit went, for the record. */
  fit: LinearFitInfo;
}

/** Facts of a fit: settings and convergence. */
export interface LinearFitInfo {
  C: number;
  /** Iterations (L-BFGS) or epochs over the cells (dual coordinate descent, the most of any class). */
  iterations: number;
  converged: boolean;
  /** Final objective (logistic: mean cross-entropy + penalty / n; SVM: sum over classes). */
  objective: number;
  /** Seed of the coordinate order (SVM only; the logistic fit uses no randomness). */
  seed?: number;
}

/** Options of both fits. */
export interface LinearFitOptions {
  /** Inverse regularisation strength, as scikit-learn's C (default 1). */
  C?: number;
  /** Logistic: max |gradient| of the mean objective (default 1e-6). SVM: projected-gradient gap
   * of the dual, as liblinear's eps (default 1e-4, scikit-learn's tol). */
  tol?: number;
  /** Iteration (logistic) or epoch (SVM) limit (default 1000). */
  maxIter?: number;
  /** SVM: seed of the coordinate order (default 0). */
  seed?: number;
  /** SVM: value of the constant feature that carries the (penalised) intercept (default 1). */
  interceptScaling?: number;
}

function checkInputs(X: Csr, y: Int32Array, nClasses: number, op: string): void {
  if (y.length !== X.nRows) {
    throw new ScnymError(`${op}: ${X.nRows} cells but ${y.length} labels`);
  }
  if (!Number.isInteger(nClasses) || nClasses < 2) {
    throw new ScnymError(`${op}: needs at least 2 classes, got ${nClasses}`);
  }
  for (let i = 0; i < y.length; i++) {
    if (!(y[i] >= 0 && y[i] < nClasses)) {
      throw new ScnymError(`${op}: label of cell ${i} is ${y[i]}, expected 0..${nClasses - 1}`);
    }
  }
}

/** Scores `X W + b` (n x nClasses, row-major) for weights in the feature-major layout. */
function scoresOf(X: Csr, W: Float64Array, b: Float64Array, K: number): Float64Array {
  const Z = new Float64Array(X.nRows * K);
  for (let r = 0; r < X.nRows; r++) {
    const z = r * K;
    for (let k = 0; k < K; k++) Z[z + k] = b[k];
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) {
      const v = X.data[p];
      const w = X.indices[p] * K;
      for (let k = 0; k < K; k++) Z[z + k] += v * W[w + k];
    }
  }
  return Z;
}

/**
 * The multinomial logistic objective scikit-learn minimises, divided by the number of cells so the
 * gradient tolerance does not depend on it: `mean_i CE(softmax(x_i W + b), y_i) + |W|^2 / (2 C n)`.
 * `params` holds W (feature-major, nFeatures x nClasses) then b (nClasses); the gradient is
 * written into `grad` when given. Exported for the finite-difference test.
 */
export function logisticObjective(
  X: Csr,
  y: Int32Array,
  nClasses: number,
  C: number,
  params: Float64Array,
  grad?: Float64Array,
): number {
  const K = nClasses;
  const nW = X.nCols * K;
  const n = X.nRows;
  const W = params.subarray(0, nW);
  const Z = scoresOf(X, W, params.subarray(nW), K);
  const lambda = 1 / (C * n);
  let loss = 0;
  if (grad) grad.fill(0);
  for (let r = 0; r < n; r++) {
    const z = r * K;
    const zy = Z[z + y[r]];
    loss += softmaxRowInPlace(Z, z, K) - zy;
    if (!grad) continue;
    // d CE / d z = softmax(z) - onehot(y), scattered back over the row's genes and the bias.
    for (let k = 0; k < K; k++) Z[z + k] /= n;
    Z[z + y[r]] -= 1 / n;
    for (let k = 0; k < K; k++) grad[nW + k] += Z[z + k];
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) {
      const v = X.data[p];
      const w = X.indices[p] * K;
      for (let k = 0; k < K; k++) grad[w + k] += v * Z[z + k];
    }
  }
  let sq = 0;
  for (let i = 0; i < nW; i++) {
    sq += W[i] * W[i];
    if (grad) grad[i] += lambda * W[i];
  }
  return loss / n + 0.5 * lambda * sq;
}

/**
 * Fits multinomial logistic regression with an L2 penalty on the weights (scikit-learn's
 * `LogisticRegression(C)`, lbfgs solver) from zero weights. `y[i]` in 0..nClasses-1.
 * Deterministic: no randomness is involved.
 */
export function fitLogistic(
  X: Csr,
  y: Int32Array,
  nClasses: number,
  opts: LinearFitOptions = {},
): LinearModel & { trace: number[] } {
  checkInputs(X, y, nClasses, "fitLogistic");
  const C = opts.C ?? 1;
  const nW = X.nCols * nClasses;
  const lbfgs: LbfgsOptions = { gradTol: opts.tol ?? 1e-6, maxIter: opts.maxIter ?? 1000 };
  const res = minimiseLbfgs(
    (p, g) => logisticObjective(X, y, nClasses, C, p, g),
    new Float64Array(nW + nClasses),
    lbfgs,
  );
  return {
    kind: "logistic",
    nFeatures: X.nCols,
    nClasses,
    weights: res.x.slice(0, nW),
    bias: res.x.slice(nW),
    fit: { C, iterations: res.iterations, converged: res.converged, objective: res.value },
    trace: res.trace,
  };
}

/**
 * Primal objective of one one-vs-rest squared-hinge SVM with the intercept as a penalised constant
 * feature: `|w|^2 / 2 + b^2 / 2 + C sum_i max(0, 1 - s_i (x_i w + b s))^2` with s = +1 for cells of
 * class `k`, -1 otherwise, and `s` the intercept scaling. `w` is length nFeatures + 1 (last: b).
 */
export function svmPrimalObjective(
  X: Csr,
  y: Int32Array,
  k: number,
  C: number,
  w: Float64Array,
  interceptScaling = 1,
): number {
  const G = X.nCols;
  let obj = 0;
  for (let i = 0; i <= G; i++) obj += 0.5 * w[i] * w[i];
  for (let r = 0; r < X.nRows; r++) {
    let z = w[G] * interceptScaling;
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) z += X.data[p] * w[X.indices[p]];
    const margin = 1 - (y[r] === k ? 1 : -1) * z;
    if (margin > 0) obj += C * margin * margin;
  }
  return obj;
}

/**
 * Fits a one-vs-rest linear SVM with the squared hinge loss and an L2 penalty (scikit-learn's
 * `LinearSVC(C)` defaults) by dual coordinate descent over the cells, in a seeded random order
 * reshuffled every epoch, until the projected-gradient gap of the dual falls below `tol`.
 * The primal optimum is unique, so the seed only changes the path, not the answer.
 */
export function fitLinearSvm(
  X: Csr,
  y: Int32Array,
  nClasses: number,
  opts: LinearFitOptions = {},
): LinearModel {
  checkInputs(X, y, nClasses, "fitLinearSvm");
  const C = opts.C ?? 1;
  const tol = opts.tol ?? 1e-4;
  const maxIter = opts.maxIter ?? 1000;
  const seed = opts.seed ?? 0;
  const s = opts.interceptScaling ?? 1;
  const n = X.nRows;
  const G = X.nCols;
  const K = nClasses;
  // Dual of the squared hinge: Q_ii = |x_i|^2 + s^2 + 1/(2C), alpha_i >= 0 without upper bound.
  const diag = 1 / (2 * C);
  const qii = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let q = s * s + diag;
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) q += X.data[p] * X.data[p];
    qii[r] = q;
  }
  const weights = new Float64Array(G * K);
  const bias = new Float64Array(K);
  let epochsMax = 0;
  let converged = true;
  let objective = 0;
  const rng = new Rng(seed);
  for (let k = 0; k < K; k++) {
    const w = new Float64Array(G + 1); // last entry: the intercept's weight
    const alpha = new Float64Array(n);
    let epoch = 0;
    for (; epoch < maxIter; epoch++) {
      const order = rng.permutation(n);
      let pgMax = -Infinity;
      let pgMin = Infinity;
      for (let t = 0; t < n; t++) {
        const r = order[t];
        const yi = y[r] === k ? 1 : -1;
        let z = w[G] * s;
        for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) z += X.data[p] * w[X.indices[p]];
        const grad = yi * z - 1 + diag * alpha[r];
        const pg = alpha[r] === 0 ? Math.min(grad, 0) : grad;
        pgMax = Math.max(pgMax, pg);
        pgMin = Math.min(pgMin, pg);
        if (pg === 0) continue;
        const next = Math.max(alpha[r] - grad / qii[r], 0);
        const d = (next - alpha[r]) * yi;
        alpha[r] = next;
        for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) w[X.indices[p]] += d * X.data[p];
        w[G] += d * s;
      }
      if (pgMax - pgMin <= tol) break;
    }
    if (epoch === maxIter) converged = false;
    epochsMax = Math.max(epochsMax, Math.min(epoch + 1, maxIter));
    objective += svmPrimalObjective(X, y, k, C, w, s);
    for (let g = 0; g < G; g++) weights[g * K + k] = w[g];
    bias[k] = w[G] * s;
  }
  return {
    kind: "linear_svm",
    nFeatures: G,
    nClasses: K,
    weights,
    bias,
    fit: { C, iterations: epochsMax, converged, objective, seed },
  };
}

/** Scores `X W + b` of every cell (n x nClasses, row-major). */
export function linearScores(model: LinearModel, X: Csr): Float64Array {
  if (X.nCols !== model.nFeatures) {
    throw new ScnymError(`linear model: ${X.nCols} genes, the model has ${model.nFeatures}`);
  }
  return scoresOf(X, model.weights, model.bias, model.nClasses);
}

/** What a linear model says about each cell. */
export interface LinearPrediction {
  /** Class index with the highest score (first one on ties). */
  predicted: Int32Array;
  /** n x nClasses scores, row-major. */
  scores: Float64Array;
  /** Logistic: the softmax of the scores (n x nClasses); SVM: null (its scores are not
   * probabilities). */
  probabilities: Float64Array | null;
}

/** Scores, predicted classes and (logistic only) probabilities of every cell of `X`. */
export function predictLinear(model: LinearModel, X: Csr): LinearPrediction {
  const K = model.nClasses;
  const scores = linearScores(model, X);
  const predicted = argmaxRows(scores, X.nRows, K);
  const probabilities = model.kind === "logistic" ? softmaxRows(scores, K) : null;
  return { predicted, scores, probabilities };
}
