/**
 * Host-side helpers every kernel module shares: shape checks that name the op, output allocation
 * (with the aliasing rule WebGPU imposes), and builders for 1-D elementwise kernels (f32, or
 * written once and built for both f32 and vec4<f32>).
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

/** What `elementwiseKernel` takes: a kernel spec whose `code` is a `body` over the index `i`. */
type ElementwiseSpec = Omit<KernelSpec, "workgroupSize" | "code"> & {
  body: string;
  helpers?: string;
};

function indexKernel(spec: ElementwiseSpec, workgroupSize: number): Kernel {
  return defineKernel({
    name: spec.name,
    workgroupSize: [workgroupSize],
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

/**
 * A kernel with one invocation per index `i < p.n` (an element, a row or a feature; the `n: u32`
 * parameter is added first). `body` is WGSL using `i`; launch it with `runElementwise`.
 */
export function elementwiseKernel(spec: ElementwiseSpec): Kernel {
  return indexKernel(spec, ELEMENTWISE_WG);
}

/** Records a kernel made by `elementwiseKernel` over indices 0 .. n-1. */
export function runElementwise(
  rt: Runtime,
  kernel: Kernel,
  n: number,
  buffers: Record<string, Tensor>,
  params: Record<string, number> = {},
): void {
  rt.dispatch(kernel, buffers, { n, ...params }, rt.groups1d(n, kernel.workgroupSize[0]));
}

// The vec4 builds' default: on llvmpipe 256 beat 64 by 5-10% on every vec4 kernel measured
// (e.g. relu on [512x256]: 104 against 112 us), unlike the scalar case above.
const VEC4_WG = 256;

/** The two builds of a `vectorKernel`: `T = f32`, and `T = vec4<f32>` (4 values per index). */
export interface VectorKernel {
  readonly scalar: Kernel;
  readonly vec4: Kernel;
}

/**
 * An elementwise kernel written once against the WGSL alias `T` and built twice, with `T = f32`
 * and with `T = vec4<f32>`. On llvmpipe every storage access at a per-invocation address is a
 * loop over the SIMD lanes, and a vec4 access costs about as much as an f32 one, so moving 4
 * values per access makes memory-bound kernels several times cheaper there. Each component sees
 * the same operations in the same order as the scalar build, so both give identical bits.
 *
 * Buffers declared "read"/"rw" hold `T`; buffers with an explicit type (per-row f32, u32
 * indices) keep it. Indices and counts in the body are in units of `T`: `runVector` divides `n`
 * and the parameters it names by 4 for the vec4 build. Write constants as `T(0.0)` (WGSL splats
 * scalars in arithmetic but not in `max` or `select`) and combine comparisons with `&`, `|`
 * (`&&` does not take vectors). `helpers` may differ per build (e.g. one random draw per lane).
 * `workgroupSizes` default to 64 (scalar) and 256 (vec4). Per-feature kernels have 4x fewer
 * invocations in vec4, and llvmpipe runs one workgroup per thread, so they keep several
 * workgroups with a smaller size.
 */
export function vectorKernel(
  spec: Omit<ElementwiseSpec, "helpers"> & {
    helpers?: string | ((vec4: boolean) => string);
    workgroupSizes?: { scalar?: number; vec4?: number };
  },
): VectorKernel {
  const build = (vec4: boolean) => {
    const type = vec4 ? "vec4<f32>" : "f32";
    const defaultSize = vec4 ? VEC4_WG : ELEMENTWISE_WG;
    const buffers = Object.fromEntries(
      Object.entries(spec.buffers).map(([name, decl]) => [
        name,
        typeof decl === "string" ? { access: decl, type } : decl,
      ]),
    );
    const helpers = typeof spec.helpers === "function" ? spec.helpers(vec4) : spec.helpers ?? "";
    return indexKernel({
      name: vec4 ? `${spec.name}_vec4` : spec.name,
      params: spec.params,
      buffers,
      helpers: `alias T = ${type};\n${helpers}`,
      body: spec.body,
    }, (vec4 ? spec.workgroupSizes?.vec4 : spec.workgroupSizes?.scalar) ?? defaultSize);
  };
  return { scalar: build(false), vec4: build(true) };
}

/**
 * Records a `vectorKernel` over `n` values (elements, or features of a per-feature kernel): the
 * vec4 build when `n` and every parameter named in `counts` are multiples of 4 (and are then
 * passed divided by 4), else the scalar build. The caller ensures that this makes every `T`
 * buffer a whole number of vec4s (e.g. `counts` holds the row length of a matrix).
 */
export function runVector(
  rt: Runtime,
  kernel: VectorKernel,
  n: number,
  buffers: Record<string, Tensor>,
  params: Record<string, number> = {},
  counts: readonly string[] = [],
): void {
  const vec4 = n % 4 === 0 && counts.every((name) => params[name] % 4 === 0);
  const width = vec4 ? 4 : 1;
  const scaled = { ...params };
  for (const name of counts) scaled[name] = params[name] / width;
  runElementwise(rt, vec4 ? kernel.vec4 : kernel.scalar, n / width, buffers, scaled);
}
