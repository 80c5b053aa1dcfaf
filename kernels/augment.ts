/**
 * The "log1p_drop" augmentation of scNym's MixMatch step, in place on a CSR batch's non-zeros:
 * drop counts at random, keep each cell's library size.
 */
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { RNG_WGSL, rngUniform } from "./random.ts";
import { expectU32 } from "./common.ts";

const AUGMENT_WG = 64;
const AUGMENT = defineKernel({
  name: "augment_log1p_drop",
  workgroupSize: [AUGMENT_WG],
  params: { rowStart: "u32", dropP: "f32", seed: "u32", stream: "u32" },
  buffers: { indptr: { access: "read", type: "u32" }, data: "rw" },
  code: `${RNG_WGSL}
var<workgroup> total: array<f32, WG_X>;
var<workgroup> kept: array<f32, WG_X>;
@compute @workgroup_size(WG_X) fn main(@builtin(workgroup_id) wg: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let row = p.rowStart + wg.x + wg.y * nwg.x;
  let a = indptr[row];
  let b = indptr[row + 1u];
  // Pass 1: the cell's library size before and after dropping non-zeros.
  var t = 0.0;
  var k = 0.0;
  for (var j = a + lid; j < b; j += WG_X) {
    let c = exp(data[j]) - 1.0;
    t += c;
    if (rng_uniform(p.seed, p.stream, j) >= p.dropP) { k += c; }
  }
  total[lid] = t;
  kept[lid] = k;
  workgroupBarrier();
  for (var off = WG_X / 2u; off > 0u; off = off / 2u) {
    if (lid < off) {
      total[lid] += total[lid + off];
      kept[lid] += kept[lid + off];
    }
    workgroupBarrier();
  }
  let scale = total[0] / kept[0];
  // A cell that lost every count stays as it was (the original divides 0 by 0 here).
  if (!(kept[0] > 0.0)) { return; }
  // Pass 2: dropped counts become 0, kept ones are rescaled to the cell's own total.
  for (var j = a + lid; j < b; j += WG_X) {
    if (rng_uniform(p.seed, p.stream, j) >= p.dropP) {
      data[j] = log(1.0 + (exp(data[j]) - 1.0) * scale);
    } else {
      data[j] = 0.0;
    }
  }
}`,
});

/**
 * The "log1p_drop" augmentation, in place on rows [rowStart, rowEnd) of a CSR batch holding
 * log1p-normalised values: `expm1`, drop each non-zero with probability `p`, rescale the kept
 * counts so the cell keeps its library size, `log1p`. Differences from the original, on purpose:
 * the original rescales every augmented cell to exactly 1e6 over the model's genes while target
 * cells keep their (smaller, when genes were subset) sums, a systematic shift between the two
 * streams; and a cell that loses every count becomes NaN there, unchanged here.
 */
export function augmentLog1pDrop(
  rt: Runtime,
  indptr: Tensor,
  data: Tensor,
  rowStart: number,
  rowEnd: number,
  opts: { p: number; seed: number; stream: number },
): void {
  const op = "augmentLog1pDrop";
  if (indptr.dtype !== "u32" || rowEnd + 1 > indptr.size || rowStart > rowEnd) {
    throw new ScnymError(`${op}: rows [${rowStart}, ${rowEnd}) with indptr ${indptr.describe()}`);
  }
  if (!(opts.p >= 0 && opts.p < 1)) throw new ScnymError(`${op}: p ${opts.p}, expected [0, 1)`);
  expectU32(op, "seed", opts.seed);
  expectU32(op, "stream", opts.stream);
  const rows = rowEnd - rowStart;
  if (rows === 0 || opts.p === 0) return;
  const maxDim = rt.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(rows / maxDim);
  if (rows % gy !== 0 && gy > 1) {
    // Rows must tile the 2-D grid exactly (the kernel has no bounds check on rows).
    throw new ScnymError(`${op}: ${rows} rows cannot be split evenly over ${gy} grid rows`);
  }
  rt.dispatch(AUGMENT, { indptr, data }, {
    rowStart,
    dropP: opts.p,
    seed: opts.seed,
    stream: opts.stream,
  }, [rows / gy, gy, 1]);
}

/** CPU reference of `augmentLog1pDrop` over all rows of a CSR (in a copy). */
export function augmentLog1pDropRef(
  indptr: ArrayLike<number>,
  data: ArrayLike<number>,
  rowStart: number,
  rowEnd: number,
  opts: { p: number; seed: number; stream: number },
): Float64Array {
  const out = Float64Array.from(data);
  for (let r = rowStart; r < rowEnd; r++) {
    let total = 0;
    let kept = 0;
    const keep = (j: number) => rngUniform(opts.seed, opts.stream, j) >= opts.p;
    for (let j = indptr[r]; j < indptr[r + 1]; j++) {
      const c = Math.expm1(data[j]);
      total += c;
      if (keep(j)) kept += c;
    }
    if (!(kept > 0)) continue;
    for (let j = indptr[r]; j < indptr[r + 1]; j++) {
      out[j] = keep(j) ? Math.log1p(Math.expm1(data[j]) * total / kept) : 0;
    }
  }
  return out;
}
