/**
 * BatchNorm1d over the rows of x [B, F], with PyTorch's semantics: training mode normalises with
 * the batch mean and biased variance and moves running_mean / running_var (the latter with the
 * unbiased variance) by `momentum`; eval mode uses the running statistics.
 *
 * The training kernels give one invocation per feature (per 4 neighbouring features, as a vec4,
 * when F % 4 == 0), walking its column (mean, then variance, then the output: two passes for the
 * variance keep it accurate when |mean| >> std). Columns are read row by row, so neighbouring
 * invocations read neighbouring addresses. A workgroup reduction over row lanes (16x4 or 32x8
 * invocations with shared memory) measured slower on llvmpipe for every shape tried from
 * [2x1000] to [1024x1000] (e.g. 256x256: 0.94 ms against 1.23-1.33 ms; 1024x1000: 6.7 ms against
 * 9.9-12.8 ms), as synchronising workgroups are costly there; with F >= 256 features a GPU also
 * has enough invocations this way.
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import {
  expectMatrix,
  expectNoAlias,
  expectShape,
  type OutOptions,
  outputTensor,
  runVector,
  vectorKernel,
} from "./common.ts";

/** PyTorch's defaults. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** The learned parameters and running statistics of one BatchNorm1d layer, each f32 [F]. */
export interface BatchNormState {
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

/** What the training forward saves for its backward pass: per-feature batch statistics. */
export interface BatchNormSaved {
  /** Batch mean, f32 [F]. */
  mean: Tensor;
  /** 1 / sqrt(biased batch variance + eps), f32 [F]. */
  invstd: Tensor;
}

// ------------------------------------------------------------------ training forward

// The kernels are `vectorKernel`s: with F % 4 == 0 an invocation handles 4 neighbouring features
// (T = vec4<f32>), each summed over the rows in the same order as alone. With F = 256 that is 64
// invocations: workgroups of 16 keep 4 of them for llvmpipe's threads (one workgroup per thread).
// On [256x256] the forward took 99-104 us with 16 or 32, 156 with 64 (one workgroup), and 171
// as scalar.
const BN_VEC4_WG = 16;
const BN_TRAIN_FORWARD = vectorKernel({
  name: "batchnorm_train_forward",
  params: { rows: "u32", eps: "f32", momentum: "f32" },
  buffers: {
    x: "read",
    gamma: "read",
    beta: "read",
    y: "rw",
    mean: "rw",
    invstd: "rw",
    runningMean: "rw",
    runningVar: "rw",
  },
  body: `
  let f = i;
  let cols = p.n;
  let rows = f32(p.rows);
  var s = T(0.0);
  for (var r = 0u; r < p.rows; r++) { s += x[r * cols + f]; }
  let mu = s / rows;
  var ss = T(0.0);
  for (var r = 0u; r < p.rows; r++) { let d = x[r * cols + f] - mu; ss += d * d; }
  let variance = ss / rows;
  let istd = 1.0 / sqrt(variance + p.eps);
  mean[f] = mu;
  invstd[f] = istd;
  runningMean[f] = (1.0 - p.momentum) * runningMean[f] + p.momentum * mu;
  runningVar[f] = (1.0 - p.momentum) * runningVar[f] + p.momentum * variance * rows / (rows - 1.0);
  let g = gamma[f] * istd;
  for (var r = 0u; r < p.rows; r++) { y[r * cols + f] = (x[r * cols + f] - mu) * g + beta[f]; }`,
  workgroupSizes: { vec4: BN_VEC4_WG },
});

function checkState(op: string, bn: BatchNormState, features: number): void {
  for (const key of ["gamma", "beta", "runningMean", "runningVar"] as const) {
    expectShape(op, key, bn[key], [features]);
  }
}

function checkEps(op: string, eps: number): void {
  if (!(eps > 0)) throw new ScnymError(`${op}: eps is ${eps}, expected > 0`);
}

/** Options of `batchNormTrain`. */
export interface BatchNormTrainOptions {
  eps?: number;
  /** Weight of the batch statistics in the running averages (PyTorch's momentum, 0.1). */
  momentum?: number;
  /** Write the normalised output here. */
  out?: Tensor;
}

/**
 * Training-mode BatchNorm1d: y = (x - mean) / sqrt(var + eps) * gamma + beta with the batch's
 * mean and biased variance; updates `bn.runningMean`/`bn.runningVar` in place. Needs B >= 2
 * (as PyTorch: the unbiased variance of one row is undefined).
 */
export function batchNormTrain(
  rt: Runtime,
  x: Tensor,
  bn: BatchNormState,
  opts: BatchNormTrainOptions = {},
): { y: Tensor } & BatchNormSaved {
  const op = "batchNormTrain";
  const [rows, cols] = expectMatrix(op, "x", x);
  if (rows < 2) {
    throw new ScnymError(`${op}: x is ${x.describe()}, expected at least 2 rows in training mode`);
  }
  checkState(op, bn, cols);
  const eps = opts.eps ?? BN_EPS;
  const momentum = opts.momentum ?? BN_MOMENTUM;
  checkEps(op, eps);
  if (!(momentum >= 0 && momentum <= 1)) {
    throw new ScnymError(`${op}: momentum is ${momentum}, expected 0 <= momentum <= 1`);
  }
  const { gamma, beta, runningMean, runningVar } = bn;
  expectNoAlias(op, { runningMean, runningVar }, { x, gamma, beta });
  const y = outputTensor(rt, op, [rows, cols], { out: opts.out }, [
    x,
    gamma,
    beta,
    runningMean,
    runningVar,
  ]);
  const mean = rt.tensor([cols], "f32", op);
  const invstd = rt.tensor([cols], "f32", op);
  const buffers = { x, gamma, beta, runningMean, runningVar, y, mean, invstd };
  runVector(rt, BN_TRAIN_FORWARD, cols, buffers, { rows, eps, momentum });
  return { y, mean, invstd };
}

/** CPU reference of `batchNormTrain` (float64); returns the new running statistics too. */
export function batchNormTrainRef(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  bn: {
    gamma: ArrayLike<number>;
    beta: ArrayLike<number>;
    runningMean: ArrayLike<number>;
    runningVar: ArrayLike<number>;
  },
  eps = BN_EPS,
  momentum = BN_MOMENTUM,
) {
  const y = new Float64Array(rows * cols);
  const mean = new Float64Array(cols);
  const invstd = new Float64Array(cols);
  const runningMean = new Float64Array(cols);
  const runningVar = new Float64Array(cols);
  for (let f = 0; f < cols; f++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * cols + f];
    const mu = s / rows;
    let ss = 0;
    for (let r = 0; r < rows; r++) ss += (x[r * cols + f] - mu) ** 2;
    const variance = ss / rows;
    mean[f] = mu;
    invstd[f] = 1 / Math.sqrt(variance + eps);
    runningMean[f] = (1 - momentum) * bn.runningMean[f] + momentum * mu;
    runningVar[f] = (1 - momentum) * bn.runningVar[f] + momentum * ss / (rows - 1);
    for (let r = 0; r < rows; r++) {
      y[r * cols + f] = (x[r * cols + f] - mu) * invstd[f] * bn.gamma[f] + bn.beta[f];
    }
  }
  return { y, mean, invstd, runningMean, runningVar };
}

// ------------------------------------------------------------------ training backward

// With xhat = (x - mean) * invstd and the column sums sdy = sum dy, sdyx = sum dy * xhat:
// dbeta = sdy, dgamma = sdyx, dx = gamma * invstd / B * (B * dy - sdy - xhat * sdyx).
const BN_TRAIN_BACKWARD = vectorKernel({
  name: "batchnorm_train_backward",
  params: { rows: "u32", accumulate: "u32" },
  buffers: {
    dy: "read",
    x: "read",
    gamma: "read",
    mean: "read",
    invstd: "read",
    dx: "rw",
    dgamma: "rw",
    dbeta: "rw",
  },
  body: `
  let f = i;
  let cols = p.n;
  let mu = mean[f];
  let istd = invstd[f];
  var sdy = T(0.0);
  var sdyx = T(0.0);
  for (var r = 0u; r < p.rows; r++) {
    let g = dy[r * cols + f];
    sdy += g;
    sdyx += g * (x[r * cols + f] - mu) * istd;
  }
  if (p.accumulate != 0u) {
    dgamma[f] += sdyx;
    dbeta[f] += sdy;
  } else {
    dgamma[f] = sdyx;
    dbeta[f] = sdy;
  }
  let rows = f32(p.rows);
  let k = gamma[f] * istd / rows;
  for (var r = 0u; r < p.rows; r++) {
    let o = r * cols + f;
    dx[o] = k * (rows * dy[o] - sdy - (x[o] - mu) * istd * sdyx);
  }`,
  workgroupSizes: { vec4: BN_VEC4_WG },
});

/** Options of `batchNormTrainBackward`. */
export interface BatchNormBackwardOptions {
  /** Write dx here. */
  dx?: Tensor;
  /** Write (or, with `accumulate`, add) the gamma gradient here. */
  dgamma?: Tensor;
  /** Write (or, with `accumulate`, add) the beta gradient here. */
  dbeta?: Tensor;
  /** Add into `dgamma` and `dbeta` (both required) instead of overwriting them. */
  accumulate?: boolean;
}

/**
 * Exact backward of `batchNormTrain` (batch statistics depend on x): returns dx [B, F] and
 * dgamma, dbeta [F]. `x`, `gamma` and `saved` are the forward's input, parameter and statistics.
 */
export function batchNormTrainBackward(
  rt: Runtime,
  dy: Tensor,
  x: Tensor,
  gamma: Tensor,
  saved: BatchNormSaved,
  opts: BatchNormBackwardOptions = {},
): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const op = "batchNormTrainBackward";
  const [rows, cols] = expectMatrix(op, "x", x);
  expectShape(op, "dy", dy, [rows, cols]);
  expectShape(op, "gamma", gamma, [cols]);
  expectShape(op, "mean", saved.mean, [cols]);
  expectShape(op, "invstd", saved.invstd, [cols]);
  const inputs = [dy, x, gamma, saved.mean, saved.invstd];
  const acc = opts.accumulate ?? false;
  const dx = outputTensor(rt, op, [rows, cols], { out: opts.dx }, inputs);
  const dgamma = outputTensor(rt, op, [cols], { out: opts.dgamma, accumulate: acc }, inputs);
  const dbeta = outputTensor(rt, op, [cols], { out: opts.dbeta, accumulate: acc }, inputs);
  expectNoAlias(op, { dx, dgamma, dbeta }, {});
  const { mean, invstd } = saved;
  runVector(rt, BN_TRAIN_BACKWARD, cols, { dy, x, gamma, mean, invstd, dx, dgamma, dbeta }, {
    rows,
    accumulate: acc ? 1 : 0,
  });
  return { dx, dgamma, dbeta };
}

/** CPU reference of `batchNormTrainBackward` (float64), from the forward's input x. */
export function batchNormTrainBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  gamma: ArrayLike<number>,
  eps = BN_EPS,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { mean, invstd } = batchNormTrainRef(x, rows, cols, {
    gamma,
    beta: new Float64Array(cols),
    runningMean: new Float64Array(cols),
    runningVar: new Float64Array(cols),
  }, eps);
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let f = 0; f < cols; f++) {
    const xhat = (r: number) => (x[r * cols + f] - mean[f]) * invstd[f];
    for (let r = 0; r < rows; r++) {
      dbeta[f] += dy[r * cols + f];
      dgamma[f] += dy[r * cols + f] * xhat(r);
    }
    for (let r = 0; r < rows; r++) {
      const o = r * cols + f;
      dx[o] = gamma[f] * invstd[f] / rows * (rows * dy[o] - dbeta[f] - xhat(r) * dgamma[f]);
    }
  }
  return { dx, dgamma, dbeta };
}

// ------------------------------------------------------------------ eval mode

const BN_EVAL_FORWARD = vectorKernel({
  name: "batchnorm_eval_forward",
  params: { cols: "u32", eps: "f32" },
  buffers: {
    x: "read",
    gamma: "read",
    beta: "read",
    runningMean: "read",
    runningVar: "read",
    y: "rw",
  },
  body: `
  let f = i % p.cols;
  y[i] = (x[i] - runningMean[f]) * (gamma[f] / sqrt(runningVar[f] + p.eps)) + beta[f];`,
});

/** Eval-mode BatchNorm1d: normalises with the running statistics (any B >= 1). */
export function batchNormEval(
  rt: Runtime,
  x: Tensor,
  bn: BatchNormState,
  opts: { eps?: number; out?: Tensor } = {},
): Tensor {
  const op = "batchNormEval";
  const [rows, cols] = expectMatrix(op, "x", x);
  checkState(op, bn, cols);
  const eps = opts.eps ?? BN_EPS;
  checkEps(op, eps);
  const { gamma, beta, runningMean, runningVar } = bn;
  const inputs = [x, gamma, beta, runningMean, runningVar];
  const y = outputTensor(rt, op, [rows, cols], { out: opts.out }, inputs);
  const buffers = { x, gamma, beta, runningMean, runningVar, y };
  runVector(rt, BN_EVAL_FORWARD, rows * cols, buffers, { cols, eps }, ["cols"]);
  return y;
}

/** CPU reference of `batchNormEval` (float64). */
export function batchNormEvalRef(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  bn: {
    gamma: ArrayLike<number>;
    beta: ArrayLike<number>;
    runningMean: ArrayLike<number>;
    runningVar: ArrayLike<number>;
  },
  eps = BN_EPS,
): Float64Array {
  return Float64Array.from({ length: rows * cols }, (_, i) => {
    const f = i % cols;
    return (x[i] - bn.runningMean[f]) / Math.sqrt(bn.runningVar[f] + eps) * bn.gamma[f] +
      bn.beta[f];
  });
}

// Eval mode is an affine map per feature, so dx = dy * gamma / sqrt(running_var + eps).
const BN_EVAL_BACKWARD = vectorKernel({
  name: "batchnorm_eval_backward",
  params: { cols: "u32", eps: "f32", accumulate: "u32" },
  buffers: { dy: "read", gamma: "read", runningVar: "read", out: "rw" },
  body: `
  let f = i % p.cols;
  let v = dy[i] * (gamma[f] / sqrt(runningVar[f] + p.eps));
  if (p.accumulate != 0u) { out[i] += v; } else { out[i] = v; }`,
});

/**
 * Input gradient of `batchNormEval` (e.g. saliency of a trained model):
 * dx = dy * gamma / sqrt(running_var + eps).
 */
export function batchNormEvalBackward(
  rt: Runtime,
  dy: Tensor,
  gamma: Tensor,
  runningVar: Tensor,
  opts: OutOptions & { eps?: number } = {},
): Tensor {
  const op = "batchNormEvalBackward";
  const [rows, cols] = expectMatrix(op, "dy", dy);
  expectShape(op, "gamma", gamma, [cols]);
  expectShape(op, "runningVar", runningVar, [cols]);
  const eps = opts.eps ?? BN_EPS;
  checkEps(op, eps);
  const out = outputTensor(rt, op, [rows, cols], opts, [dy, gamma, runningVar]);
  const params = { cols, eps, accumulate: opts.accumulate ? 1 : 0 };
  runVector(rt, BN_EVAL_BACKWARD, rows * cols, { dy, gamma, runningVar, out }, params, ["cols"]);
  return out;
}

/** CPU reference of `batchNormEvalBackward` (float64). */
export function batchNormEvalBackwardRef(
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  gamma: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  eps = BN_EPS,
): Float64Array {
  return Float64Array.from(
    { length: rows * cols },
    (_, i) => dy[i] * gamma[i % cols] / Math.sqrt(runningVar[i % cols] + eps),
  );
}
