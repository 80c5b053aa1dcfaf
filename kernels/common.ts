/**
 * Host-side helpers every kernel module shares: shape checks that name the op, output allocation
 * (with the aliasing rule WebGPU imposes), and a builder for 1-D elementwise kernels.
 */
import { defineKernel, type Kernel, type KernelSpec } from "../runtime/kernel.ts";
import type { DType, Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";

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
  t.assertAlive(op, name);
}

/** The [rows, cols] of a 2-D f32 tensor; throws naming the op and input otherwise. */
export function expectMatrix(op: string, name: string, t: Tensor): [number, number] {
  if (t.shape.length !== 2 || t.dtype !== "f32") {
    throw new ScnymError(
      `${op}: ${name} is ${t.describe()}, expected a 2-D f32 matrix [rows, cols]`,
    );
  }
  t.assertAlive(op, name);
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
  expectNoAlias(op, { out: opts.out }, inputs);
  return opts.out;
}

/**
 * The one aliasing check: throws unless every tensor in `written` has its own buffer, shared with
 * no other written or read tensor (WebGPU rejects a buffer bound for writing and for anything else
 * in the same dispatch, and the device would stay broken afterwards). `read` is named (the message
 * names both tensors) or a plain list of inputs (absent optional ones may be undefined).
 */
export function expectNoAlias(
  op: string,
  written: Record<string, Tensor>,
  read: Record<string, Tensor | undefined> | readonly (Tensor | undefined)[],
): void {
  const writtenEntries = Object.entries(written);
  const all = [...writtenEntries, ...Object.entries(read)];
  writtenEntries.forEach(([name, t], i) => {
    all.forEach(([other, u], j) => {
      if (i === j || u?.buffer !== t.buffer) return;
      throw new ScnymError(
        j >= writtenEntries.length && Array.isArray(read)
          ? `${op}: ${name} ${t.describe()} is also an input; write to a separate tensor`
          : `${op}: ${name} and ${other} are the same tensor; pass separate ones`,
      );
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
