/**
 * Row softmax and what is built on it: MixMatch sharpening, the two fused losses of a scNym step
 * (soft-label cross-entropy and softmax squared error, each producing its loss and its gradient
 * w.r.t. the logits in one pass).
 *
 * One invocation handles one row (class counts are small: tens of cell types, 2 domains), so no
 * workgroup synchronisation is needed. Softmax is computed stably as exp(z - logsumexp(z)).
 * A loss is `scale / B * sum_i w_i * l_i`: the kernel writes each row's term and `sumAll` adds
 * them, into the returned `loss` and, if asked, into a slot of a GPU metrics buffer that
 * training reads back once per epoch.
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { logSumExpRows } from "../util/softmax.ts";
import { sumAll } from "./reduce.ts";
import {
  elementwiseKernel,
  expectMatrix,
  expectShape,
  expectU32,
  outputTensor,
  runElementwise,
} from "./common.ts";

// Row statistics shared by the kernels, over z[base .. base + cols): the max m and
// s = sum exp(z - m). Probabilities are exp(z - m) / s and log-probabilities (z - m) - log(s):
// forming m + log(s) first would lose digits to the rounding of a large m.
const ROW_WGSL = `
fn row_max(base: u32) -> f32 {
  var m = z[base];
  for (var c = 1u; c < p.cols; c++) { m = max(m, z[base + c]); }
  return m;
}
fn row_sumexp(base: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += exp(z[base + c] - m); }
  return s;
}`;

// ------------------------------------------------------------------ softmax

const SOFTMAX = elementwiseKernel({
  name: "softmax",
  params: { cols: "u32" },
  buffers: { z: "read", out: "rw" },
  helpers: ROW_WGSL,
  body: `
  let base = i * p.cols;
  let m = row_max(base);
  let inv = 1.0 / row_sumexp(base, m);
  for (var c = 0u; c < p.cols; c++) { out[base + c] = exp(z[base + c] - m) * inv; }`,
});

function expectLogits(op: string, name: string, z: Tensor): [number, number] {
  const [rows, cols] = expectMatrix(op, name, z);
  if (cols === 0) throw new ScnymError(`${op}: ${name} is ${z.describe()}, expected >= 1 column`);
  return [rows, cols];
}

/** Row softmax of logits [B, C] -> probabilities [B, C]. */
export function softmax(rt: Runtime, logits: Tensor, opts: { out?: Tensor } = {}): Tensor {
  const [rows, cols] = expectLogits("softmax", "logits", logits);
  const out = outputTensor(rt, "softmax", [rows, cols], opts, [logits]);
  runElementwise(rt, SOFTMAX, rows, { z: logits, out }, { cols });
  return out;
}

// The CPU reference of `softmax` is `softmaxRows` of util/softmax.ts.

function logSoftmaxRow(z: ArrayLike<number>, base: number, cols: number): Float64Array {
  const row = Float64Array.from({ length: cols }, (_, c) => z[base + c]);
  const lse = logSumExpRows(row, cols)[0];
  return row.map((v) => v - lse);
}

// ------------------------------------------------------------------ sharpen

// q^(1/T) / sum q^(1/T), computed from q / max(q) so that small T cannot underflow every term.
const SHARPEN = elementwiseKernel({
  name: "sharpen",
  params: { cols: "u32", invT: "f32" },
  buffers: { z: "read", out: "rw", confidence: "rw" },
  helpers: `${ROW_WGSL}
fn powered(q: f32, m: f32) -> f32 {
  let r = q / m;
  return select(0.0, pow(r, p.invT), r > 0.0);
}`,
  body: `
  let base = i * p.cols;
  let m = row_max(base);
  confidence[i] = m;
  if (!(m > 0.0)) {  // not a distribution: fall back to uniform rather than NaN
    for (var c = 0u; c < p.cols; c++) { out[base + c] = 1.0 / f32(p.cols); }
    return;
  }
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += powered(z[base + c], m); }
  for (var c = 0u; c < p.cols; c++) { out[base + c] = powered(z[base + c], m) / s; }`,
});

/**
 * MixMatch sharpening of probabilities q [B, C] with temperature T: returns the distributions
 * q^(1/T) / sum_c q^(1/T) and each row's confidence max_c q (taken before sharpening).
 */
export function sharpen(
  rt: Runtime,
  probs: Tensor,
  temperature: number,
): { probs: Tensor; confidence: Tensor } {
  const op = "sharpen";
  const [rows, cols] = expectLogits(op, "probs", probs);
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new ScnymError(`${op}: temperature is ${temperature}, expected a finite number > 0`);
  }
  const out = rt.tensor([rows, cols], "f32", op);
  const confidence = rt.tensor([rows], "f32", op);
  runElementwise(rt, SHARPEN, rows, { z: probs, out, confidence }, {
    cols,
    invT: 1 / temperature,
  });
  return { probs: out, confidence };
}

/** CPU reference of `sharpen` (float64). */
export function sharpenRef(
  q: ArrayLike<number>,
  rows: number,
  cols: number,
  temperature: number,
): { probs: Float64Array; confidence: Float64Array } {
  const probs = new Float64Array(rows * cols);
  const confidence = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) {
      probs[r * cols + c] = q[r * cols + c] ** (1 / temperature);
      s += probs[r * cols + c];
      confidence[r] = Math.max(confidence[r], q[r * cols + c]);
    }
    for (let c = 0; c < cols; c++) probs[r * cols + c] /= s;
  }
  return { probs, confidence };
}

// ------------------------------------------------------------------ fused losses

/** Options of the fused losses. */
export interface LossOptions {
  /** Per-row weights w [B] (e.g. 0/1 for confident pseudolabels); default all 1. */
  rowWeight?: Tensor;
  /** Multiplies the loss and its gradient (e.g. a ramped loss weight); default 1. */
  scale?: number;
  /** Also add the loss into `tensor[index]` (a GPU metrics buffer read once per epoch). */
  lossAccumulator?: { tensor: Tensor; index: number };
}

/** A loss value on the GPU and its gradient w.r.t. the logits. */
export interface LossResult {
  /** f32[1]. */
  loss: Tensor;
  /** [B, C]. */
  dlogits: Tensor;
}

// Writes rowLoss[i] = coef * l_i and dz for row i, where coef = scale * w_i / B.
function lossKernel(name: string, body: string) {
  return elementwiseKernel({
    name,
    params: { cols: "u32", hasWeight: "u32", coefScale: "f32" },
    buffers: { z: "read", t: "read", w: "read", dz: "rw", rowLoss: "rw" },
    helpers: ROW_WGSL,
    body: `
  let base = i * p.cols;
  let m = row_max(base);
  let s = row_sumexp(base, m);
  let logs = log(s);
  let inv = 1.0 / s;
  let coef = p.coefScale * select(1.0, w[i], p.hasWeight != 0u);
${body}`,
  });
}

// l = -sum_c t_c log softmax(z)_c; dz = coef * (softmax(z) * sum_c t_c - t).
const SOFT_CROSS_ENTROPY = lossKernel(
  "soft_cross_entropy",
  `
  var l = 0.0;
  var tsum = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let tc = t[base + c];
    tsum += tc;
    l -= tc * ((z[base + c] - m) - logs);
  }
  rowLoss[i] = coef * l;
  for (var c = 0u; c < p.cols; c++) {
    dz[base + c] = coef * (exp(z[base + c] - m) * inv * tsum - t[base + c]);
  }`,
);

// l = sum_c (q_c - t_c)^2 with q = softmax(z). Through the softmax Jacobian, with
// g = dl/dq = 2 (q - t): dz_c = coef * q_c * (g_c - sum_k q_k g_k).
const SOFTMAX_SQUARED_ERROR = lossKernel(
  "softmax_squared_error",
  `
  var l = 0.0;
  var qg = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let q = exp(z[base + c] - m) * inv;
    let d = q - t[base + c];
    l += d * d;
    qg += q * 2.0 * d;
  }
  rowLoss[i] = coef * l;
  for (var c = 0u; c < p.cols; c++) {
    let q = exp(z[base + c] - m) * inv;
    dz[base + c] = coef * q * (2.0 * (q - t[base + c]) - qg);
  }`,
);

function fusedLoss(
  rt: Runtime,
  op: string,
  kernel: ReturnType<typeof lossKernel>,
  logits: Tensor,
  targets: Tensor,
  opts: LossOptions,
): LossResult {
  const [rows, cols] = expectLogits(op, "logits", logits);
  expectShape(op, "targets", targets, [rows, cols]);
  if (opts.rowWeight) expectShape(op, "rowWeight", opts.rowWeight, [rows]);
  const scale = opts.scale ?? 1;
  if (!Number.isFinite(scale)) throw new ScnymError(`${op}: scale is ${scale}, expected finite`);
  const acc = opts.lossAccumulator;
  if (acc) {
    expectU32(op, "lossAccumulator.index", acc.index);
    if (
      acc.tensor.dtype !== "f32" || acc.tensor.shape.length !== 1 || acc.index >= acc.tensor.size
    ) {
      throw new ScnymError(
        `${op}: lossAccumulator is ${acc.tensor.describe()} with index ${acc.index}, expected a ` +
          `1-D f32 tensor longer than the index`,
      );
    }
  }
  const dlogits = rt.tensor([rows, cols], "f32", op);
  const loss = rt.tensor([1], "f32", op);
  rt.scope(() => {
    const rowLoss = rt.tensor([rows], "f32", op);
    // Without weights any read-only buffer can stand in for w (the kernel does not read it).
    const w = opts.rowWeight ?? logits;
    runElementwise(rt, kernel, rows, { z: logits, t: targets, w, dz: dlogits, rowLoss }, {
      cols,
      hasWeight: opts.rowWeight ? 1 : 0,
      coefScale: rows > 0 ? scale / rows : 0,
    });
    sumAll(rt, rowLoss, { out: loss });
    if (acc) sumAll(rt, rowLoss, { out: acc.tensor, outIndex: acc.index, accumulate: true });
  });
  return { loss, dlogits };
}

/**
 * Soft-label cross-entropy, fused with its gradient: loss = scale / B * sum_i w_i * sum_c -t_ic
 * log softmax(z_i)_c, and dlogits = d loss / d z (targets need not sum to 1).
 */
export function softCrossEntropy(
  rt: Runtime,
  logits: Tensor,
  targets: Tensor,
  opts: LossOptions = {},
): LossResult {
  return fusedLoss(rt, "softCrossEntropy", SOFT_CROSS_ENTROPY, logits, targets, opts);
}

/**
 * Softmax squared error (MixMatch's unlabelled loss), fused with its gradient: loss = scale / B *
 * sum_i w_i * sum_c (softmax(z_i)_c - t_ic)^2, and dlogits = d loss / d z.
 */
export function softmaxSquaredError(
  rt: Runtime,
  logits: Tensor,
  targets: Tensor,
  opts: LossOptions = {},
): LossResult {
  return fusedLoss(rt, "softmaxSquaredError", SOFTMAX_SQUARED_ERROR, logits, targets, opts);
}

/** Weights and scale of a loss, as the CPU references take them. */
export interface LossRefOptions {
  rowWeight?: ArrayLike<number>;
  scale?: number;
}

function lossRef(
  z: ArrayLike<number>,
  t: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: LossRefOptions,
  row: (logp: Float64Array, t: ArrayLike<number>, base: number) => {
    l: number;
    dz: Float64Array;
  },
): { loss: number; dlogits: Float64Array } {
  let loss = 0;
  const dlogits = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const coef = (opts.scale ?? 1) * (opts.rowWeight?.[r] ?? 1) / rows;
    const { l, dz } = row(logSoftmaxRow(z, r * cols, cols), t, r * cols);
    loss += coef * l;
    dz.forEach((v, c) => dlogits[r * cols + c] = coef * v);
  }
  return { loss, dlogits };
}

/** CPU reference of `softCrossEntropy` (float64): the loss and its gradient. */
export function softCrossEntropyRef(
  z: ArrayLike<number>,
  t: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: LossRefOptions = {},
): { loss: number; dlogits: Float64Array } {
  return lossRef(z, t, rows, cols, opts, (logp, t, base) => {
    let l = 0;
    let tsum = 0;
    logp.forEach((v, c) => {
      l -= t[base + c] * v;
      tsum += t[base + c];
    });
    return { l, dz: logp.map((v, c) => Math.exp(v) * tsum - t[base + c]) };
  });
}

/** CPU reference of `softmaxSquaredError` (float64): the loss and its gradient. */
export function softmaxSquaredErrorRef(
  z: ArrayLike<number>,
  t: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: LossRefOptions = {},
): { loss: number; dlogits: Float64Array } {
  return lossRef(z, t, rows, cols, opts, (logp, t, base) => {
    const q = logp.map(Math.exp);
    const g = q.map((v, c) => 2 * (v - t[base + c]));
    let l = 0;
    let qg = 0;
    q.forEach((v, c) => {
      l += (v - t[base + c]) ** 2;
      qg += v * g[c];
    });
    return { l, dz: q.map((v, c) => v * (g[c] - qg)) };
  });
}
