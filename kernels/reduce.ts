/**
 * Reductions: sums over rows, columns or everything, and a row max.
 *
 * Each is a tree of dispatches rather than a tree inside a workgroup: an invocation reduces at
 * most BLOCK values (strided, so neighbouring invocations read neighbouring addresses), writes a
 * partial, and the partials are reduced again until one value per output is left. No barriers or
 * shared memory are needed. On this project's reference adapter (Mesa llvmpipe) a workgroup that
 * synchronises costs 7-10 us (64 invocations) to 80 us (256) against 0.4 us without barriers, so
 * a shared-memory tree made e.g. the row max of 300,000 x 2 logits take 4.8 s instead of a few ms.
 * Training-sized inputs (<= 1024 rows or columns) take a single dispatch.
 *
 * This file also holds the small host-side helpers every kernel module in `kernels/` shares:
 * output allocation with shape/alias checks, and a builder for 1-D elementwise kernels.
 */
import { defineKernel, type Kernel, type KernelSpec } from "../runtime/kernel.ts";
import type { DType, Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";

// ------------------------------------------------------------------ shared host-side helpers

/** Options of an op that writes one output: where to write it, and whether to add into it. */
export interface OutOptions {
  /** Write here instead of a new tensor (must have the output's shape and dtype). */
  out?: Tensor;
  /** Add the result into `out` instead of overwriting it (requires `out`). */
  accumulate?: boolean;
}

function shapeString(shape: readonly number[]): string {
  return `[${shape.join("x")}]`;
}

/** Throws unless `t` has exactly `shape` (and `dtype`); the message names the op and input. */
export function expectShape(
  op: string,
  name: string,
  t: Tensor,
  shape: readonly number[],
  dtype: DType = "f32",
): void {
  const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!same || t.dtype !== dtype) {
    throw new ScnymError(
      `${op}: ${name} is ${t.describe()}, expected ${dtype}${shapeString(shape)}`,
    );
  }
  if (t.released) throw new ScnymError(`${op}: ${name} ${t.describe()} was released`);
}

/** The [rows, cols] of a 2-D f32 tensor; throws naming the op and input otherwise. */
export function expectMatrix(op: string, name: string, t: Tensor): [number, number] {
  if (t.shape.length !== 2 || t.dtype !== "f32") {
    throw new ScnymError(
      `${op}: ${name} is ${t.describe()}, expected a 2-D f32 matrix [rows, cols]`,
    );
  }
  if (t.released) throw new ScnymError(`${op}: ${name} ${t.describe()} was released`);
  return [t.shape[0], t.shape[1]];
}

/**
 * The output tensor of `op`: `opts.out` after checking its shape, dtype and that it aliases no
 * input (WebGPU rejects a buffer bound for writing and for reading in the same dispatch, and the
 * device would stay broken afterwards), or a new tensor.
 */
export function outputTensor(
  rt: Runtime,
  op: string,
  shape: readonly number[],
  opts: OutOptions = {},
  inputs: Tensor[] = [],
  dtype: DType = "f32",
): Tensor {
  if (!opts.out) {
    if (opts.accumulate) throw new ScnymError(`${op}: accumulate needs an out tensor to add into`);
    return rt.tensor(shape, dtype, op);
  }
  expectShape(op, "out", opts.out, shape, dtype);
  for (const t of inputs) {
    if (t.buffer === opts.out.buffer) {
      throw new ScnymError(
        `${op}: out ${opts.out.describe()} is also an input; write to a separate tensor`,
      );
    }
  }
  return opts.out;
}

/**
 * Throws unless every tensor in `written` has its own buffer, shared with no other written or
 * read tensor (the dispatch would be rejected by WebGPU and leave the device unusable).
 */
export function expectNoAlias(
  op: string,
  written: Record<string, Tensor>,
  read: Record<string, Tensor>,
): void {
  const all = [...Object.entries(written), ...Object.entries(read)];
  Object.entries(written).forEach(([name, t], i) => {
    all.forEach(([other, u], j) => {
      if (i !== j && t.buffer === u.buffer) {
        throw new ScnymError(`${op}: ${name} and ${other} are the same tensor; pass separate ones`);
      }
    });
  });
}

/** Checks that a host number is an integer in [0, 2^32), for seeds, streams and indices. */
export function expectU32(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ScnymError(`${op}: ${name} is ${v}, expected an integer in [0, 2^32)`);
  }
}

// 64 invocations: on llvmpipe this beat 256 for a memory-bound pass (1M elements: 6.9 against
// 11.8 ms), and on GPUs 64 is a full wavefront.
const ELEMENTWISE_WG = 64;

/**
 * A kernel with one invocation per index `i < p.n` (an element, a row or a feature; the `n: u32`
 * parameter is added first). `body` is WGSL using `i`; launch it with `runElementwise`.
 */
export function elementwiseKernel(
  spec: Omit<KernelSpec, "workgroupSize" | "code"> & { body: string; helpers?: string },
): Kernel {
  return defineKernel({
    name: spec.name,
    workgroupSize: [ELEMENTWISE_WG],
    params: { n: "u32", ...spec.params },
    buffers: spec.buffers,
    code: `${spec.helpers ?? ""}
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= p.n) { return; }
${spec.body}
}`,
  });
}

/** Records a kernel made by `elementwiseKernel` over indices 0 .. n-1. */
export function runElementwise(
  rt: Runtime,
  kernel: Kernel,
  n: number,
  buffers: Record<string, Tensor>,
  params: Record<string, number> = {},
): void {
  rt.dispatch(kernel, buffers, { n, ...params }, rt.groups1d(n, ELEMENTWISE_WG));
}

// ------------------------------------------------------------------ the kernels

/** Values one invocation reduces; longer rows/columns take another pass over the partials. */
const BLOCK = 1024;

// Invocation t reduces row r = t / blocks over columns b, b + blocks, b + 2 blocks, ... where
// b = t % blocks, and writes out[outIndex + t] = scale * result (+ out when accumulating).
// With blocks = 1 that is one invocation per row.
function rowReduceKernel(name: string, combine: string, identity: string): Kernel {
  return elementwiseKernel({
    name,
    params: {
      cols: "u32",
      blocks: "u32",
      outIndex: "u32",
      scale: "f32",
      accumulate: "u32",
    },
    buffers: { x: "read", out: "rw" },
    helpers: `fn combine(a: f32, b: f32) -> f32 { return ${combine}; }`,
    body: `
  let r = i / p.blocks;
  var acc = ${identity};
  for (var c = i % p.blocks; c < p.cols; c += p.blocks) { acc = combine(acc, x[r * p.cols + c]); }
  var v = p.scale * acc;
  if (p.accumulate != 0u) { v += out[p.outIndex + i]; }
  out[p.outIndex + i] = v;`,
  });
}

const SUM_ROWS = rowReduceKernel("sum_rows", "a + b", "0.0");
const MAX_ROWS = rowReduceKernel("max_rows", "max(a, b)", "-3.4028235e38");

// Invocation t sums column c = t % cols over rows blk, blk + blocks, ... where
// blk = t / cols, and writes out[t] (a [blocks, cols] partial, or the [cols] result).
const SUM_COLS = elementwiseKernel({
  name: "sum_cols",
  params: { rows: "u32", cols: "u32", blocks: "u32", scale: "f32", accumulate: "u32" },
  buffers: { x: "read", out: "rw" },
  body: `
  let c = i % p.cols;
  var s = 0.0;
  for (var r = i / p.cols; r < p.rows; r += p.blocks) { s += x[r * p.cols + c]; }
  var v = p.scale * s;
  if (p.accumulate != 0u) { v += out[i]; }
  out[i] = v;`,
});

interface FinalWrite {
  out: Tensor;
  outIndex: number;
  scale: number;
  accumulate: boolean;
}

// Reduces each of `rows` rows of `x` (viewed as [rows, cols]) into final.out[outIndex + r].
function reduceRows(
  rt: Runtime,
  op: string,
  kernel: Kernel,
  x: Tensor,
  rows: number,
  cols: number,
  final: FinalWrite,
): void {
  rt.scope(() => {
    let src = x;
    let n = cols;
    while (n > BLOCK) {
      const blocks = Math.ceil(n / BLOCK);
      const partials = rt.tensor([rows, blocks], "f32", op);
      const params = { cols: n, blocks, outIndex: 0, scale: 1, accumulate: 0 };
      runElementwise(rt, kernel, rows * blocks, { x: src, out: partials }, params);
      src = partials;
      n = blocks;
    }
    runElementwise(rt, kernel, rows, { x: src, out: final.out }, {
      cols: n,
      blocks: 1,
      outIndex: final.outIndex,
      scale: final.scale,
      accumulate: final.accumulate ? 1 : 0,
    });
  });
}

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
    if (out.buffer === x.buffer) throw new ScnymError(`${op}: out is also the input`);
  } else {
    out = outputTensor(rt, op, [1], opts, [x]);
  }
  const final = { out, outIndex, scale: opts.scale ?? 1, accumulate: opts.accumulate ?? false };
  reduceRows(rt, op, SUM_ROWS, x, 1, x.size, final);
  return out;
}

/** CPU reference of `sumAll` (float64): scale * sum(x). */
export function sumAllRef(x: ArrayLike<number>, scale = 1): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return scale * s;
}

// ------------------------------------------------------------------ sumRows / maxRows

/** Row sums of a matrix: [B, F] -> [B] (`out = scale * sum (+ out)`). */
export function sumRows(
  rt: Runtime,
  x: Tensor,
  opts: OutOptions & { scale?: number } = {},
): Tensor {
  const [rows, cols] = expectMatrix("sumRows", "x", x);
  const out = outputTensor(rt, "sumRows", [rows], opts, [x]);
  const final = { out, outIndex: 0, scale: opts.scale ?? 1, accumulate: opts.accumulate ?? false };
  reduceRows(rt, "sumRows", SUM_ROWS, x, rows, cols, final);
  return out;
}

/** Row maxima of a matrix: [B, F] -> [B] (e.g. the confidence of each prediction). */
export function maxRows(rt: Runtime, x: Tensor, opts: { out?: Tensor } = {}): Tensor {
  const [rows, cols] = expectMatrix("maxRows", "x", x);
  if (cols === 0) {
    throw new ScnymError(`maxRows: x is ${x.describe()}, expected at least one column`);
  }
  const out = outputTensor(rt, "maxRows", [rows], { out: opts.out }, [x]);
  reduceRows(rt, "maxRows", MAX_ROWS, x, rows, cols, {
    out,
    outIndex: 0,
    scale: 1,
    accumulate: false,
  });
  return out;
}

/** CPU reference of `sumRows` (float64). */
export function sumRowsRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r] += x[r * cols + c];
  }
  return out;
}

/** CPU reference of `maxRows`. */
export function maxRowsRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows).fill(-Infinity);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r] = Math.max(out[r], x[r * cols + c]);
  }
  return out;
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
      runElementwise(rt, SUM_COLS, blocks * cols, { x: src, out: partials }, params);
      src = partials;
      n = blocks;
    }
    runElementwise(rt, SUM_COLS, cols, { x: src, out }, {
      rows: n,
      cols,
      blocks: 1,
      scale: opts.scale ?? 1,
      accumulate: opts.accumulate ? 1 : 0,
    });
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
