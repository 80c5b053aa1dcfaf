/**
 * Kernels of input attributions (saliency, scnym/interpret.ts):
 *
 * - `lerpRows`: the first layer's output along integration paths. The first layer is linear, so
 *   at x' + a (x - x') it is b + u' + a (u - u') with u = x W and u' = x' W: the paths are built
 *   from one sparse product per cell and per reference, never from interpolated sparse inputs
 *   (whose supports would be unions).
 * - `meanRowGroups`: the mean of each run of `group` consecutive rows (one cell's path steps).
 * - `sampledRowDot`: for each stored entry (r, g) of a CSR matrix P, scale * P[r, g] *
 *   dot(D[r, :], W[g, :]) -- the gene-level attribution of an input-layer gradient D at the genes
 *   a cell expresses, without the dense cells x genes product.
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { elementwiseKernel, expectMatrix, expectShape, runElementwise } from "./common.ts";
import type { GpuCsr } from "./sparse.ts";

const LERP_ROWS = elementwiseKernel({
  name: "lerp_rows",
  params: { cols: "u32" },
  buffers: {
    u: "read",
    uref: "read",
    cell: { access: "read", type: "u32" },
    refIdx: { access: "read", type: "u32" },
    alpha: "read",
    bias: "read",
    out: "rw",
  },
  body: `
  let r = i / p.cols;
  let k = i % p.cols;
  let a = uref[refIdx[r] * p.cols + k];
  out[i] = bias[k] + a + alpha[r] * (u[cell[r] * p.cols + k] - a);`,
});

/**
 * out[r, :] = bias + uref[ref[r], :] + alpha[r] * (u[cell[r], :] - uref[ref[r], :]) for r < R,
 * with u [n, H], uref [m, H], cell and ref u32[R], alpha f32[R], bias [H].
 */
export function lerpRows(
  rt: Runtime,
  u: Tensor,
  uref: Tensor,
  path: { cell: Tensor; ref: Tensor; alpha: Tensor },
  bias: Tensor,
): Tensor {
  const op = "lerpRows";
  const [, H] = expectMatrix(op, "u", u);
  expectShape(op, "uref", uref, [uref.shape[0], H]);
  const R = path.alpha.size;
  expectShape(op, "cell", path.cell, [R], "u32");
  expectShape(op, "ref", path.ref, [R], "u32");
  expectShape(op, "bias", bias, [H]);
  const out = rt.tensor([R, H], "f32", op);
  runElementwise(rt, LERP_ROWS, R * H, {
    u,
    uref,
    cell: path.cell,
    refIdx: path.ref,
    alpha: path.alpha,
    bias,
    out,
  }, { cols: H });
  return out;
}

/** CPU reference of `lerpRows` (float64). */
export function lerpRowsRef(
  u: ArrayLike<number>,
  uref: ArrayLike<number>,
  path: { cell: ArrayLike<number>; ref: ArrayLike<number>; alpha: ArrayLike<number> },
  bias: ArrayLike<number>,
): Float64Array {
  const H = bias.length;
  const R = path.alpha.length;
  const out = new Float64Array(R * H);
  for (let r = 0; r < R; r++) {
    for (let k = 0; k < H; k++) {
      const a = uref[path.ref[r] * H + k];
      out[r * H + k] = bias[k] + a + path.alpha[r] * (u[path.cell[r] * H + k] - a);
    }
  }
  return out;
}

const MEAN_ROW_GROUPS = elementwiseKernel({
  name: "mean_row_groups",
  params: { cols: "u32", group: "u32" },
  buffers: { x: "read", out: "rw" },
  body: `
  let j = i / p.cols;
  let k = i % p.cols;
  var s = 0.0;
  for (var t = 0u; t < p.group; t++) { s += x[(j * p.group + t) * p.cols + k]; }
  out[i] = s / f32(p.group);`,
});

/** out[j, :] = mean of x[j * group + t, :] over t < group; x [n * group, H] -> [n, H]. */
export function meanRowGroups(rt: Runtime, x: Tensor, group: number): Tensor {
  const op = "meanRowGroups";
  const [rows, H] = expectMatrix(op, "x", x);
  if (!Number.isInteger(group) || group < 1 || rows % group !== 0) {
    throw new ScnymError(`${op}: ${rows} rows do not split into groups of ${group}`);
  }
  const out = rt.tensor([rows / group, H], "f32", op);
  runElementwise(rt, MEAN_ROW_GROUPS, out.size, { x, out }, { cols: H, group });
  return out;
}

/** CPU reference of `meanRowGroups` (float64). */
export function meanRowGroupsRef(x: ArrayLike<number>, cols: number, group: number): Float64Array {
  const n = x.length / cols / group;
  const out = new Float64Array(n * cols);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < cols; k++) {
      let s = 0;
      for (let t = 0; t < group; t++) s += x[(j * group + t) * cols + k];
      out[j * cols + k] = s / group;
    }
  }
  return out;
}

// One invocation per stored entry; its row is found by binary search in indptr (rows hold ~1,000
// entries, so a per-row loop would leave most lanes idle on a short batch).
const SAMPLED_ROW_DOT = elementwiseKernel({
  name: "sampled_row_dot",
  params: { rows: "u32", cols: "u32", scale: "f32" },
  buffers: {
    indptr: { access: "read", type: "u32" },
    indices: { access: "read", type: "u32" },
    data: "read",
    d: "read",
    w: "read",
    out: "rw",
  },
  body: `
  var lo = 0u;
  var hi = p.rows;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (indptr[mid] <= i) { lo = mid; } else { hi = mid; }
  }
  let dRow = lo * p.cols;
  let wRow = indices[i] * p.cols;
  var s = 0.0;
  for (var k = 0u; k < p.cols; k++) { s += d[dRow + k] * w[wRow + k]; }
  out[i] = p.scale * data[i] * s;`,
});

/**
 * For every stored entry e = (r, g) of `x`: out[e] = scale * x[r, g] * dot(d[r, :], w[g, :]),
 * with d [x.nRows, H] and w [x.nCols, H] (a gene layer's weights, stored [genes, hidden]).
 */
export function sampledRowDot(
  rt: Runtime,
  x: GpuCsr,
  d: Tensor,
  w: Tensor,
  scale = 1,
): Tensor {
  const op = "sampledRowDot";
  const [, H] = expectMatrix(op, "d", d);
  expectShape(op, "d", d, [x.nRows, H]);
  expectShape(op, "w", w, [x.nCols, H]);
  const out = rt.tensor([Math.max(1, x.nnz)], "f32", op);
  if (x.nnz === 0) return out;
  runElementwise(rt, SAMPLED_ROW_DOT, x.nnz, {
    indptr: x.indptr,
    indices: x.indices,
    data: x.data,
    d,
    w,
    out,
  }, { rows: x.nRows, cols: H, scale });
  return out;
}

/** CPU reference of `sampledRowDot` (float64) on a host CSR. */
export function sampledRowDotRef(
  x: {
    nRows: number;
    indptr: ArrayLike<number>;
    indices: ArrayLike<number>;
    data: ArrayLike<number>;
  },
  d: ArrayLike<number>,
  w: ArrayLike<number>,
  cols: number,
  scale = 1,
): Float64Array {
  const out = new Float64Array(x.indptr[x.nRows]);
  for (let r = 0; r < x.nRows; r++) {
    for (let e = x.indptr[r]; e < x.indptr[r + 1]; e++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += d[r * cols + k] * w[x.indices[e] * cols + k];
      out[e] = scale * x.data[e] * s;
    }
  }
  return out;
}
