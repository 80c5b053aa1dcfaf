/**
 * CSR matrices on the GPU, as the sparse products (kernels/spmm.ts) read them: the layout
 * (`GpuCsr`), the one validated upload (a malformed matrix would make the kernels read out of
 * bounds) and its release.
 *
 * The CSC view stores positions into the CSR `data` array, not values, so values changed in
 * place on the GPU (augmentation) are seen by both products.
 */
import { cscView, type Csr, nnz as csrNnz } from "../data/csr.ts";
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";

/** A CSR matrix on the GPU, with an optional gene-major (CSC) view for `spmmTransposed`. */
export interface GpuCsr {
  nRows: number;
  nCols: number;
  nnz: number;
  /** u32[nRows + 1]: entries of row r are indptr[r]..indptr[r+1]. */
  indptr: Tensor;
  /** u32[nnz]: column of each entry. */
  indices: Tensor;
  /** f32[nnz]: value of each entry (may be changed in place, e.g. by augmentation). */
  data: Tensor;
  /**
   * Columns strictly ascending within every row (the CSR convention, checked at upload): lets
   * `spmm` walk the genes in cache-sized blocks. False: one pass over each row.
   */
  sortedRows: boolean;
  /** Column-major view as positions into `data` (see `cscView` in data/csr.ts). */
  csc?: {
    /** u32[nCols + 1]: entries of column c are colptr[c]..colptr[c+1]. */
    colptr: Tensor;
    /** u32[nnz]: row of each column-major entry. */
    rowOf: Tensor;
    /** u32[nnz]: index into `data` of each column-major entry. */
    posOf: Tensor;
  };
}

/** A GPU array of a CSR upload, by field (the CSC view's arrays only with `withCsc`). */
export type CsrField = "indptr" | "indices" | "data" | "colptr" | "rowOf" | "posOf";

/**
 * Where `uploadCsr` writes a field: a tensor of at least `n` elements of `dtype` (the default
 * makes a new one of exactly `n`; an upload area hands out buffers it keeps between steps).
 */
export type CsrRoom = (field: CsrField, n: number, dtype: "u32" | "f32") => Tensor;

/**
 * Uploads a CSR matrix (validated: a malformed one would make the kernels read out of
 * bounds). With `withCsc`, also builds and uploads the CSC view that `spmmTransposed` needs.
 * With `room`, the arrays go into tensors the caller provides (see `CsrRoom`).
 */
export function uploadCsr(
  rt: Runtime,
  m: Csr,
  opts: { withCsc?: boolean; room?: CsrRoom } = {},
): GpuCsr {
  validateCsr(m);
  const n = csrNnz(m);
  const room: CsrRoom = opts.room ?? ((_, len, dtype) => rt.tensor([len], dtype, "uploadCsr"));
  const put = (field: CsrField, data: Uint32Array | Float32Array, dtype: "u32" | "f32") => {
    const t = room(field, data.length, dtype);
    rt.write(t, data, "uploadCsr", 0);
    return t;
  };
  const x: GpuCsr = {
    nRows: m.nRows,
    nCols: m.nCols,
    nnz: n,
    sortedRows: hasSortedRows(m),
    indptr: put("indptr", m.indptr.subarray(0, m.nRows + 1), "u32"),
    indices: put("indices", m.indices.subarray(0, n), "u32"),
    data: put("data", m.data.subarray(0, n), "f32"),
  };
  if (opts.withCsc) {
    const v = cscView(m);
    x.csc = {
      colptr: put("colptr", v.colptr, "u32"),
      rowOf: put("rowOf", v.rowOf, "u32"),
      posOf: put("posOf", v.posOf, "u32"),
    };
  }
  return x;
}

/** Returns every buffer of `x` to the pool. */
export function releaseCsr(x: GpuCsr): void {
  for (const t of [x.indptr, x.indices, x.data]) t.release();
  if (x.csc) { for (const t of [x.csc.colptr, x.csc.rowOf, x.csc.posOf]) t.release(); }
}

const DENSIFY_WG = 64;
const DENSIFY = defineKernel({
  name: "densify",
  workgroupSize: [DENSIFY_WG],
  params: { rows: "u32", cols: "u32" },
  buffers: {
    indptr: { access: "read", type: "u32" },
    indices: { access: "read", type: "u32" },
    data: { access: "read", type: "f32" },
    out: "rw",
  },
  // One invocation per row: its entries are added in order, so repeated columns add (as in the
  // sparse products) without atomics.
  code: `
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG_X;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  for (var e = indptr[row]; e < indptr[row + 1u]; e++) {
    out[base + indices[e]] += data[e];
  }
}`,
});

/**
 * Records `out = X` as a dense row-major f32 [nRows, nCols] matrix (a new tensor unless `out`
 * is given), for inputs dense enough that the dense product beats the sparse one. Repeated
 * columns in a row add, as in `spmm`.
 */
export function densify(rt: Runtime, x: GpuCsr, out?: Tensor): Tensor {
  if (out && (out.dtype !== "f32" || out.size !== x.nRows * x.nCols)) {
    throw new ScnymError(`densify: out must be f32[${x.nRows}x${x.nCols}], got ${out.describe()}`);
  }
  const dense = out ?? rt.tensor([x.nRows, x.nCols], "f32", "densify");
  rt.fill(dense, 0);
  if (x.nRows === 0 || x.nnz === 0) return dense;
  rt.dispatch(
    DENSIFY,
    { indptr: x.indptr, indices: x.indices, data: x.data, out: dense },
    { rows: x.nRows, cols: x.nCols },
    rt.groups1d(x.nRows, DENSIFY_WG),
  );
  return dense;
}

/** True when the columns of every row are strictly ascending (O(nnz), on the host). */
export function hasSortedRows(m: Csr): boolean {
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r] + 1; k < m.indptr[r + 1]; k++) {
      if (m.indices[k] <= m.indices[k - 1]) return false;
    }
  }
  return true;
}

function validateCsr(m: Csr): void {
  const fail = (what: string) => {
    throw new ScnymError(`uploadCsr: malformed CSR matrix (${m.nRows}x${m.nCols}): ${what}`);
  };
  if (!Number.isInteger(m.nRows) || !Number.isInteger(m.nCols) || m.nRows < 0 || m.nCols < 0) {
    fail(`shape must be non-negative integers`);
  }
  if (m.indptr.length < m.nRows + 1) {
    fail(`indptr has ${m.indptr.length} entries, expected nRows + 1 = ${m.nRows + 1}`);
  }
  if (m.indptr[0] !== 0) fail(`indptr[0] is ${m.indptr[0]}, expected 0`);
  for (let r = 0; r < m.nRows; r++) {
    if (m.indptr[r + 1] < m.indptr[r]) fail(`indptr decreases at row ${r}`);
  }
  const n = m.indptr[m.nRows];
  if (m.indices.length < n || m.data.length < n) {
    fail(`indptr ends at ${n} but indices/data have ${m.indices.length}/${m.data.length} entries`);
  }
  for (let k = 0; k < n; k++) {
    if (m.indices[k] >= m.nCols) fail(`indices[${k}] = ${m.indices[k]} is not below nCols`);
  }
}
