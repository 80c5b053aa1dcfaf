/**
 * Reductions: the sum of everything (losses, metrics) and column sums (bias gradients).
 *
 * Each is a tree of dispatches rather than a tree inside a workgroup: an invocation reduces at
 * most BLOCK values (strided, so neighbouring invocations read neighbouring addresses), writes a
 * partial, and the partials are reduced again until one value per output is left. No barriers or
 * shared memory are needed. On this project's reference adapter (Mesa llvmpipe) a workgroup that
 * synchronises costs 7-10 us (64 invocations) to 80 us (256) against 0.4 us without barriers, so
 * a shared-memory tree made e.g. a row max of 300,000 x 2 logits take 4.8 s instead of a few ms.
 * Training-sized inputs (<= 1024 values or rows) take a single dispatch.
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import {
  elementwiseKernel,
  expectMatrix,
  expectNoAlias,
  expectU32,
  type OutOptions,
  outputTensor,
  runElementwise,
  runVector,
  vectorKernel,
} from "./common.ts";

// ------------------------------------------------------------------ the kernels

/** Values one invocation reduces; longer inputs/columns take another pass over the partials. */
const BLOCK = 1024;

// Invocation t sums x[t], x[t + blocks], x[t + 2 blocks], ... (strided, so neighbouring
// invocations read neighbouring addresses) and writes out[outIndex + t] = scale * sum (+ out when
// accumulating). With blocks = 1 that is the whole sum.
const SUM_ALL = elementwiseKernel({
  name: "sum_all",
  params: { len: "u32", blocks: "u32", outIndex: "u32", scale: "f32", accumulate: "u32" },
  buffers: { x: "read", out: "rw" },
  body: `
  var acc = 0.0;
  for (var c = i; c < p.len; c += p.blocks) { acc = acc + x[c]; }
  var v = p.scale * acc;
  if (p.accumulate != 0u) { v += out[p.outIndex + i]; }
  out[p.outIndex + i] = v;`,
});

// Invocation t sums column c = t % cols over rows blk, blk + blocks, ... where
// blk = t / cols, and writes out[t] (a [blocks, cols] partial, or the [cols] result). A
// `vectorKernel`: with cols % 4 == 0 it sums 4 neighbouring columns (T = vec4<f32>, cols counted
// in vec4s), with 16-wide workgroups so 256 columns still make 4 workgroups.
const SUM_COLS = vectorKernel({
  name: "sum_cols",
  params: { rows: "u32", cols: "u32", blocks: "u32", scale: "f32", accumulate: "u32" },
  buffers: { x: "read", out: "rw" },
  body: `
  let c = i % p.cols;
  var s = T(0.0);
  for (var r = i / p.cols; r < p.rows; r += p.blocks) { s += x[r * p.cols + c]; }
  var v = p.scale * s;
  if (p.accumulate != 0u) { v += out[i]; }
  out[i] = v;`,
  workgroupSizes: { vec4: 16 },
});

// ------------------------------------------------------------------ sumAll

/** Options of `sumAll`: besides `out`/`accumulate`, a scale and a slot of `out` to write. */
export interface SumAllOptions extends OutOptions {
  /** Multiply the sum by this (default 1), e.g. 1/n for a mean. */
  scale?: number;
  /** Element of `out` that receives the sum (default 0); `out` may be any 1-D length. */
  outIndex?: number;
}

/**
 * Sum of every element of `x` (any shape) -> f32[1], or into `out[outIndex]`
 * (`out = scale * sum (+ out)`), e.g. a loss added into a slot of a metrics buffer.
 */
export function sumAll(rt: Runtime, x: Tensor, opts: SumAllOptions = {}): Tensor {
  const op = "sumAll";
  if (x.dtype !== "f32") throw new ScnymError(`${op}: x is ${x.describe()}, expected f32`);
  const outIndex = opts.outIndex ?? 0;
  expectU32(op, "outIndex", outIndex);
  let out: Tensor;
  if (opts.out) {
    out = opts.out;
    if (out.dtype !== "f32" || out.shape.length !== 1 || outIndex >= out.size) {
      throw new ScnymError(
        `${op}: out is ${out.describe()} with outIndex ${outIndex}, expected a 1-D f32 tensor ` +
          `longer than outIndex`,
      );
    }
    expectNoAlias(op, { out }, [x]);
  } else {
    out = outputTensor(rt, op, [1], opts, [x]);
  }
  rt.scope(() => {
    let src = x;
    let len = x.size;
    while (len > BLOCK) {
      const blocks = Math.ceil(len / BLOCK);
      const partials = rt.tensor([blocks], "f32", op);
      const params = { len, blocks, outIndex: 0, scale: 1, accumulate: 0 };
      runElementwise(rt, SUM_ALL, blocks, { x: src, out: partials }, params);
      src = partials;
      len = blocks;
    }
    runElementwise(rt, SUM_ALL, 1, { x: src, out }, {
      len,
      blocks: 1,
      outIndex,
      scale: opts.scale ?? 1,
      accumulate: opts.accumulate ? 1 : 0,
    });
  });
  return out;
}

/** CPU reference of `sumAll` (float64): scale * sum(x). */
export function sumAllRef(x: ArrayLike<number>, scale = 1): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return scale * s;
}

// ------------------------------------------------------------------ sumCols

/**
 * Column sums of a matrix: [B, F] -> [F] (`out = scale * sum (+ out)`); with `accumulate` this is
 * the bias gradient of a layer whose bias is used more than once.
 */
export function sumCols(
  rt: Runtime,
  x: Tensor,
  opts: OutOptions & { scale?: number } = {},
): Tensor {
  const op = "sumCols";
  const [rows, cols] = expectMatrix(op, "x", x);
  const out = outputTensor(rt, op, [cols], opts, [x]);
  rt.scope(() => {
    let src = x;
    let n = rows;
    while (n > BLOCK) {
      const blocks = Math.ceil(n / BLOCK);
      const partials = rt.tensor([blocks, cols], "f32", op);
      const params = { rows: n, cols, blocks, scale: 1, accumulate: 0 };
      runVector(rt, SUM_COLS, blocks * cols, { x: src, out: partials }, params, ["cols"]);
      src = partials;
      n = blocks;
    }
    runVector(rt, SUM_COLS, cols, { x: src, out }, {
      rows: n,
      cols,
      blocks: 1,
      scale: opts.scale ?? 1,
      accumulate: opts.accumulate ? 1 : 0,
    }, ["cols"]);
  });
  return out;
}

/** CPU reference of `sumCols` (float64). */
export function sumColsRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c] += x[r * cols + c];
  }
  return out;
}
