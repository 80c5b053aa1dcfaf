/**
 * Elementwise layers and their backward passes: ReLU (plain and guided backward), dropout fused
 * with ReLU (the model's only use of dropout), gradient reversal, scale/axpy. Bias add lives in
 * `matmul`'s epilogue and its gradient is `sumCols`.
 *
 * Backward functions take `{ out?, accumulate? }`: with `accumulate`, the result is added into
 * `out`, so a tensor used by two consumers sums its gradients without an extra kernel.
 *
 * Dropout draws its mask in-shader from `rng_uniform(seed, stream, i)` for element i, so no mask
 * buffer exists (and the fused backward needs none: an output > 0 was kept). Use a distinct
 * (seed, stream) per call site and step (e.g. stream = layer, seed = step), or masks repeat.
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { RNG_WGSL, rngKey, rngUniform } from "./random.ts";
import {
  expectShape,
  expectU32,
  type OutOptions,
  outputTensor,
  runVector,
  vectorKernel,
} from "./common.ts";

// `out = result (+ out when accumulating)`, shared by the kernels that may accumulate. The
// kernels here are `vectorKernel`s: `T` is f32 or vec4<f32>.
const STORE = `
fn store(i: u32, v: T) {
  if (p.accumulate != 0u) { out[i] = out[i] + v; } else { out[i] = v; }
}`;

function expectF32(op: string, name: string, t: Tensor): void {
  expectShape(op, name, t, t.shape);
}

function expectSameShape(op: string, a: [string, Tensor], b: [string, Tensor]): void {
  expectF32(op, a[0], a[1]);
  expectShape(op, b[0], b[1], a[1].shape);
}

// ------------------------------------------------------------------ ReLU

const RELU = vectorKernel({
  name: "relu",
  buffers: { x: "read", out: "rw" },
  body: `  out[i] = max(x[i], T(0.0));`,
});

// From the forward output: y > 0 exactly where x > 0 (ReLU'(0) = 0, as in PyTorch). `scale`
// serves the fused dropout+ReLU, whose surviving units were multiplied by 1/(1-p).
const RELU_BACKWARD = vectorKernel({
  name: "relu_backward",
  params: { guided: "u32", scale: "f32", accumulate: "u32" },
  buffers: { y: "read", dy: "read", out: "rw" },
  helpers: STORE,
  body: `
  let g = dy[i];
  let kept = y[i] > T(0.0);
  let open = select(kept & (g > T(0.0)), kept, p.guided == 0u);
  store(i, select(T(0.0), p.scale * g, open));`,
});

/** y = max(x, 0), any shape. */
export function relu(rt: Runtime, x: Tensor, opts: { out?: Tensor } = {}): Tensor {
  expectF32("relu", "x", x);
  const out = outputTensor(rt, "relu", x.shape, opts, [x]);
  runVector(rt, RELU, x.size, { x, out });
  return out;
}

/** Options of `reluBackward`. */
export interface ReluBackwardOptions extends OutOptions {
  /** Guided backprop (saliency): also zero the gradient where dy <= 0. */
  guided?: boolean;
}

/** dx = dy * (y > 0) from the forward *output* y; guided: dx = dy * (y > 0) * (dy > 0). */
export function reluBackward(
  rt: Runtime,
  y: Tensor,
  dy: Tensor,
  opts: ReluBackwardOptions = {},
): Tensor {
  return reluBackwardScaled(rt, "reluBackward", y, dy, 1, opts);
}

function reluBackwardScaled(
  rt: Runtime,
  op: string,
  y: Tensor,
  dy: Tensor,
  scale: number,
  opts: ReluBackwardOptions,
): Tensor {
  expectSameShape(op, ["y", y], ["dy", dy]);
  const out = outputTensor(rt, op, y.shape, opts, [y, dy]);
  runVector(rt, RELU_BACKWARD, y.size, { y, dy, out }, {
    guided: opts.guided ? 1 : 0,
    scale,
    accumulate: opts.accumulate ? 1 : 0,
  });
  return out;
}

/** CPU reference of `relu`. */
export function reluRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** CPU reference of `reluBackward` (from the output y). */
export function reluBackwardRef(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  guided = false,
): Float64Array {
  return Float64Array.from(dy, (g, i) => (y[i] > 0 && (!guided || g > 0) ? g : 0));
}

// ------------------------------------------------------------------ dropout

/** Where a dropout mask comes from: element i keeps iff rng_uniform(seed, stream, i) >= p. */
export interface DropoutMask {
  /** Drop probability in [0, 1]. */
  p: number;
  seed: number;
  stream: number;
}

// Kept elements are scaled by 1/(1-p) (PyTorch's inverted dropout); with p = 1 all are dropped.
// `key` = rngKey(seed, stream), so rng_uniform_keyed(key, i) == rng_uniform(seed, stream, i).
// `dropout_scales(j)` covers the values of index j of a `vectorKernel`: element j in the f32
// build, elements 4j .. 4j+3 in the vec4 build, so both draw the same mask.
function dropoutWgsl(vec4: boolean): string {
  const scales = vec4
    ? "T(dropout_scale(4u * j), dropout_scale(4u * j + 1u), dropout_scale(4u * j + 2u), " +
      "dropout_scale(4u * j + 3u))"
    : "dropout_scale(j)";
  return `${RNG_WGSL}
fn dropout_scale(i: u32) -> f32 {
  return select(0.0, p.keepScale, rng_uniform_keyed(p.key, i) >= p.rate);
}
fn dropout_scales(j: u32) -> T { return ${scales}; }`;
}

// Fused forward for the model's Dropout -> ReLU. Its backward needs no mask: an output > 0 was
// kept, so dx = dy * (y > 0) / (1 - p), which is `reluBackwardScaled`.
const DROPOUT_RELU = vectorKernel({
  name: "dropout_relu",
  params: { key: "u32", rate: "f32", keepScale: "f32" },
  buffers: { x: "read", out: "rw" },
  helpers: dropoutWgsl,
  body: `  out[i] = max(x[i] * dropout_scales(i), T(0.0));`,
});

function maskParams(op: string, m: DropoutMask) {
  if (!(m.p >= 0 && m.p <= 1)) throw new ScnymError(`${op}: p is ${m.p}, expected 0 <= p <= 1`);
  expectU32(op, "seed", m.seed);
  expectU32(op, "stream", m.stream);
  return { key: rngKey(m.seed, m.stream), rate: m.p, keepScale: keepScale(m.p) };
}

function keepScale(p: number): number {
  return p < 1 ? 1 / (1 - p) : 0;
}

/** Fused `relu(dropout(x))` in one pass (the model's BN -> Dropout -> ReLU). */
export function dropoutRelu(
  rt: Runtime,
  x: Tensor,
  mask: DropoutMask,
  opts: { out?: Tensor } = {},
): Tensor {
  const params = maskParams("dropoutRelu", mask);
  expectF32("dropoutRelu", "x", x);
  const out = outputTensor(rt, "dropoutRelu", x.shape, opts, [x]);
  runVector(rt, DROPOUT_RELU, x.size, { x, out }, params);
  return out;
}

/**
 * Backward of `dropoutRelu` from its output y: dx = dy * (y > 0) / (1 - p). No mask is needed
 * (y > 0 implies the unit was kept); `guided` as in `reluBackward`.
 */
export function dropoutReluBackward(
  rt: Runtime,
  y: Tensor,
  dy: Tensor,
  p: number,
  opts: ReluBackwardOptions = {},
): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ScnymError(`dropoutReluBackward: p is ${p}, expected [0, 1]`);
  return reluBackwardScaled(rt, "dropoutReluBackward", y, dy, keepScale(p), opts);
}

/** CPU reference of `dropoutRelu` (float64), with the mask from the host twin of the RNG. */
export function dropoutReluRef(x: ArrayLike<number>, mask: DropoutMask): Float64Array {
  const rate = Math.fround(mask.p); // the shader compares against p rounded to f32
  const s = keepScale(mask.p);
  return Float64Array.from(x, (v, i) => {
    return rngUniform(mask.seed, mask.stream, i) >= rate ? Math.max(s * v, 0) : 0;
  });
}

/** CPU reference of `dropoutReluBackward` (from the output y). */
export function dropoutReluBackwardRef(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  p: number,
  guided = false,
): Float64Array {
  const s = keepScale(p);
  return reluBackwardRef(y, dy, guided).map((v) => s * v);
}

// ------------------------------------------------------------------ scale, axpy

// out = alpha * x (+ out): scale, axpy and the gradient-reversal backward in one kernel.
const SCALE = vectorKernel({
  name: "scale",
  params: { alpha: "f32", accumulate: "u32" },
  buffers: { x: "read", out: "rw" },
  helpers: STORE,
  body: `  store(i, p.alpha * x[i]);`,
});

function checkAlpha(op: string, alpha: number) {
  if (!Number.isFinite(alpha)) throw new ScnymError(`${op}: factor is ${alpha}, expected finite`);
}

/** out = alpha * x (+ out with `accumulate`), any shape. */
export function scale(rt: Runtime, x: Tensor, alpha: number, opts: OutOptions = {}): Tensor {
  checkAlpha("scale", alpha);
  expectF32("scale", "x", x);
  const out = outputTensor(rt, "scale", x.shape, opts, [x]);
  runVector(rt, SCALE, x.size, { x, out }, { alpha, accumulate: opts.accumulate ? 1 : 0 });
  return out;
}

/** In place: y += alpha * x (same shapes). */
export function axpy(rt: Runtime, alpha: number, x: Tensor, y: Tensor): void {
  expectSameShape("axpy", ["x", x], ["y", y]);
  scale(rt, x, alpha, { out: y, accumulate: true });
}

/**
 * Backward of gradient reversal (whose forward is the identity: use the input tensor itself):
 * dx = -weight * dy (+ out with `accumulate`).
 */
export function gradReverseBackward(
  rt: Runtime,
  dy: Tensor,
  weight: number,
  opts: OutOptions = {},
): Tensor {
  checkAlpha("gradReverseBackward", weight);
  return scale(rt, dy, -weight, opts);
}

/** CPU reference of `scale` (and of `gradReverseBackward` with alpha = -weight). */
export function scaleRef(x: ArrayLike<number>, alpha: number): Float64Array {
  return Float64Array.from(x, (v) => alpha * v);
}
