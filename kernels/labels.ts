/**
 * Kernels between logits and class labels:
 *
 * - `oneHot`: labels to one-hot rows, into any row range of a target matrix.
 * - `countCorrect`: adds the number of rows whose argmax equals the label to a metrics slot.
 */
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { argmaxRow } from "../util/argmax.ts";
import { ScnymError } from "../util/errors.ts";
import { expectMatrix, expectShape } from "./common.ts";

const ONE_HOT = defineKernel({
  name: "one_hot",
  workgroupSize: [256],
  params: { n: "u32", classes: "u32", rowOffset: "u32" },
  buffers: { labels: { access: "read", type: "u32" }, out: "rw" },
  code: `
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_id(gid, nwg);
  if (e >= p.n * p.classes) { return; }
  let i = e / p.classes;
  let c = e % p.classes;
  out[(p.rowOffset + i) * p.classes + c] = select(0.0, 1.0, labels[i] == c);
}`,
});

/**
 * Writes one-hot rows for `labels` (u32[m], values < C) into rows `rowOffset .. rowOffset + m`
 * of `out` [rows, C] (a new [m, C] tensor when `out` is not given).
 */
export function oneHot(
  rt: Runtime,
  labels: Tensor,
  classes: number,
  opts: { out?: Tensor; rowOffset?: number } = {},
): Tensor {
  const op = "oneHot";
  const m = labels.size;
  if (labels.dtype !== "u32") {
    throw new ScnymError(`${op}: labels ${labels.describe()}, expected u32`);
  }
  const rowOffset = opts.rowOffset ?? 0;
  const out = opts.out ?? rt.tensor([m, classes], "f32", op);
  const [rows, c] = expectMatrix(op, "out", out);
  if (c !== classes || rowOffset + m > rows) {
    throw new ScnymError(
      `${op}: ${m} rows of ${classes} classes at row ${rowOffset} do not fit out ${out.describe()}`,
    );
  }
  rt.dispatch(
    ONE_HOT,
    { labels, out },
    { n: m, classes, rowOffset },
    rt.groups1d(m * classes, 256),
  );
  return out;
}

const COUNT_CORRECT = defineKernel({
  name: "count_correct",
  workgroupSize: [256],
  params: { n: "u32", classes: "u32", slot: "u32" },
  buffers: { logits: "read", labels: { access: "read", type: "u32" }, metrics: "rw" },
  code: `
var<workgroup> hits: array<u32, WG_X>;
@compute @workgroup_size(WG_X) fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var h = 0u;
  for (var i = lid; i < p.n; i += WG_X) {
    var best = 0u;
    for (var c = 1u; c < p.classes; c++) {
      if (logits[i * p.classes + c] > logits[i * p.classes + best]) { best = c; }
    }
    if (best == labels[i]) { h += 1u; }
  }
  hits[lid] = h;
  workgroupBarrier();
  for (var off = WG_X / 2u; off > 0u; off = off / 2u) {
    if (lid < off) { hits[lid] += hits[lid + off]; }
    workgroupBarrier();
  }
  if (lid == 0u) { metrics[p.slot] += f32(hits[0]); }
}`,
});

/**
 * Adds to `metrics[slot]` the number of rows of `logits` [n, C] whose argmax (first on ties)
 * equals `labels` (u32[n]). One workgroup: meant for validation batches, not millions of rows.
 */
export function countCorrect(
  rt: Runtime,
  logits: Tensor,
  labels: Tensor,
  metrics: Tensor,
  slot: number,
): void {
  const op = "countCorrect";
  const [n, classes] = expectMatrix(op, "logits", logits);
  expectShape(op, "labels", labels, [n], "u32");
  if (slot >= metrics.size) throw new ScnymError(`${op}: slot ${slot} of ${metrics.describe()}`);
  rt.dispatch(COUNT_CORRECT, { logits, labels, metrics }, { n, classes, slot }, [1]);
}

/** CPU reference of `countCorrect`. */
export function countCorrectRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (argmaxRow(logits, i, classes) === labels[i]) hits++;
  return hits;
}
