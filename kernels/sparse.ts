/**
 * Sparse (CSR) x dense products for the input layer: scRNA-seq rows are ~95% zeros, so the
 * first linear layer walks only the stored entries.
 *
 * - `spmm`: out = X W (+ bias), X [cells, genes] in CSR, W [genes, N]: the forward pass.
 *   Invocation per (cell, group of columns), walking the cell's entries.
 * - `spmmTransposed`: out = X^T dY, the weight gradient [genes, N]. Invocation per (gene,
 *   group of columns), walking the gene's entries through a CSC view, so no two invocations
 *   write the same output and no float atomics are needed.
 *
 * In both, the 8 invocations of a SIMD group / warp take neighbouring column groups of the same
 * row (or gene): they run the same number of loop trips and read neighbouring vec4s of W / dY.
 * The CSC view stores positions into the CSR `data` array, not values, so values changed in
 * place on the GPU (augmentation) are seen by both products.
 *
 * Cost on a software adapter (llvmpipe), where every load is a loop over SIMD lanes: each stored
 * entry needs one vec4 load of W (or dY) per 4 outputs, while the register-tiled dense matmul
 * reuses each loaded value 8 times, so at 5% density these run ~2-4x faster than the dense
 * product, not 20x (see `deno task bench`); on GPUs, where loads are cheap, the gap is larger.
 */
import { cscView, type Csr, nnz as csrNnz } from "../data/csr.ts";
import { defineKernel, type Kernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { expectNoAlias } from "./common.ts";

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

// ------------------------------------------------------------------------- kernels

/**
 * vec4 column groups per invocation, and invocations per workgroup along columns / rows.
 * Each entry costs two index loads (value, column) shared by all columns of the invocation, so
 * more columns per invocation amortise them: 8 quads x 8 invocations cover 256 hidden units
 * with one SIMD group per row. (Measured on llvmpipe: 8 quads ~1.3-1.8x faster than 4; mapping
 * SIMD lanes to rows instead of columns was slower: rows differ in length, lanes idle.)
 */
const QUADS = 8;
const WG_COLS = 8;
const WG_ROWS = 4;

/** Columns covered by one workgroup. */
const COLS_PER_WG = 4 * QUADS * WG_COLS;

const lines = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/**
 * The WGSL both products share: an invocation owns row `row` of the output and column quads
 * `cq0 + q * WG_X` (q < QUADS), loops over entries `e` in [lo, hi), gets a (value, source row)
 * pair from `entry` and accumulates value * src[source row, quad], then stores with `epilogue`.
 */
function productKernel(spec: {
  name: string;
  vec: boolean;
  buffers: Record<string, { access: "read" | "rw"; type: string }>;
  range: string;
  entry: string;
  epilogue: (q: number, r: number | null) => string;
}): Kernel {
  const { vec } = spec;
  // Clamped column quads: the loads stay in bounds, the stores are skipped past the edge.
  const src = (q: number) =>
    vec
      ? `src[s * (p.N / 4u) + min(cq0 + ${q}u * WG_X, p.N / 4u - 1u)]`
      : `vec4<f32>(${
        lines(4, (r) => `src[s * p.N + min((cq0 + ${q}u * WG_X) * 4u + ${r}u, p.N - 1u)]`, ", ")
      })`;
  const stores = lines(QUADS, (q) => {
    if (vec) {
      return `if (cq0 + ${q}u * WG_X < p.N / 4u) { ${spec.epilogue(q, null)} }`;
    }
    return lines(
      4,
      (r) => `if ((cq0 + ${q}u * WG_X) * 4u + ${r}u < p.N) { ${spec.epilogue(q, r)} }`,
    );
  });
  const code = `
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // Rows vary fastest over workgroups, so consecutive workgroups reuse the same columns of src.
  let row = wid.x * WG_Y + lid.y;
  if (row >= p.rows) { return; }
  let cq0 = wid.y * WG_X * ${QUADS}u + lid.x;
${lines(QUADS, (q) => `  var acc${q} = vec4<f32>(0.0);`)}
  ${spec.range}
  for (var e = lo; e < hi; e++) {
    ${spec.entry}
${lines(QUADS, (q) => `    acc${q} = fma(vec4<f32>(v), ${src(q)}, acc${q});`)}
  }
${stores}
}`;
  return defineKernel({
    name: spec.name,
    workgroupSize: [WG_COLS, WG_ROWS],
    params: { rows: "u32", N: "u32" },
    buffers: spec.buffers,
    code,
  });
}

const f32Type = (vec: boolean) => (vec ? "vec4<f32>" : "f32");
const U32_READ = { access: "read", type: "u32" } as const;

/** Output element index and value expressions for quad q (and component r when scalar). */
function outIndex(q: number, r: number | null): string {
  return r === null
    ? `row * (p.N / 4u) + cq0 + ${q}u * WG_X`
    : `row * p.N + (cq0 + ${q}u * WG_X) * 4u + ${r}u`;
}
const accOf = (q: number, r: number | null) => (r === null ? `acc${q}` : `acc${q}[${r}]`);

const spmmKernels = new Map<string, Kernel>();

function spmmKernel(vec: boolean, bias: boolean): Kernel {
  const key = `${vec}${bias}`;
  let k = spmmKernels.get(key);
  if (k) return k;
  const buffers: Record<string, { access: "read" | "rw"; type: string }> = {
    indptr: U32_READ,
    indices: U32_READ,
    data: { access: "read", type: "f32" },
    src: { access: "read", type: f32Type(vec) },
    out: { access: "rw", type: f32Type(vec) },
  };
  if (bias) buffers.bias = { access: "read", type: f32Type(vec) };
  const biasOf = (q: number, r: number | null) =>
    !bias
      ? ""
      : r === null
      ? ` + bias[cq0 + ${q}u * WG_X]`
      : ` + bias[(cq0 + ${q}u * WG_X) * 4u + ${r}u]`;
  k = productKernel({
    name: `spmm${vec ? "" : "_scalar"}${bias ? "_bias" : ""}`,
    vec,
    buffers,
    range: "let lo = indptr[row]; let hi = indptr[row + 1u];",
    entry: "let v = data[e]; let s = indices[e];",
    epilogue: (q, r) => `out[${outIndex(q, r)}] = ${accOf(q, r)}${biasOf(q, r)};`,
  });
  spmmKernels.set(key, k);
  return k;
}

const spmmTKernels = new Map<string, Kernel>();

function spmmTKernel(vec: boolean, accumulate: boolean): Kernel {
  const key = `${vec}${accumulate}`;
  let k = spmmTKernels.get(key);
  if (k) return k;
  k = productKernel({
    name: `spmm_t${vec ? "" : "_scalar"}${accumulate ? "_acc" : ""}`,
    vec,
    buffers: {
      colptr: U32_READ,
      rowOf: U32_READ,
      posOf: U32_READ,
      data: { access: "read", type: "f32" },
      src: { access: "read", type: f32Type(vec) },
      out: { access: "rw", type: f32Type(vec) },
    },
    range: "let lo = colptr[row]; let hi = colptr[row + 1u];",
    entry: "let v = data[posOf[e]]; let s = rowOf[e];",
    epilogue: (q, r) => {
      const idx = outIndex(q, r);
      return `out[${idx}] = ${accOf(q, r)}${accumulate ? ` + out[${idx}]` : ""};`;
    },
  });
  spmmTKernels.set(key, k);
  return k;
}

function groupsFor(rt: Runtime, op: string, rows: number, n: number): number[] {
  const groups = [Math.max(1, Math.ceil(rows / WG_ROWS)), Math.ceil(n / COLS_PER_WG), 1];
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  if (groups[0] > max) {
    throw new ScnymError(
      `${op}: ${rows} output rows need ${groups[0]} workgroups, over this adapter's ` +
        `maxComputeWorkgroupsPerDimension of ${max}; split the call into chunks of at most ` +
        `${max * WG_ROWS} rows`,
    );
  }
  return groups;
}

function checkDense(op: string, name: string, t: Tensor, rows: number, cols?: number): number {
  const n = cols ?? t.cols;
  if (t.dtype !== "f32" || t.shape.length !== 2 || t.rows !== rows || t.cols !== n || n === 0) {
    throw new ScnymError(
      `${op}: ${name} must be f32[${rows}x${cols ?? "N"}] (N >= 1), got ${t.describe()}`,
    );
  }
  return n;
}

/**
 * Records `out = X W (+ bias broadcast over rows)` for X in CSR [nRows, nCols] and W dense
 * [nCols, N]; returns out [nRows, N]. Rows without entries get the bias (or 0).
 */
export function spmm(
  rt: Runtime,
  x: GpuCsr,
  w: Tensor,
  opts: { bias?: Tensor; out?: Tensor } = {},
): Tensor {
  const N = checkDense("spmm", "w", w, x.nCols);
  if (opts.bias && (opts.bias.size !== N || opts.bias.dtype !== "f32")) {
    throw new ScnymError(`spmm: bias must be f32 with ${N} values, got ${opts.bias.describe()}`);
  }
  if (opts.out) checkDense("spmm", "out", opts.out, x.nRows, N);
  if (opts.out) expectNoAlias("spmm", { out: opts.out }, [w, opts.bias, x.data]);
  const groups = groupsFor(rt, "spmm", x.nRows, N);
  const out = opts.out ?? rt.tensor([x.nRows, N], "f32", "spmm");
  if (x.nRows === 0) return out;
  const vec = N % 4 === 0;
  const buffers: Record<string, Tensor> = {
    indptr: x.indptr,
    indices: x.indices,
    data: x.data,
    src: w,
    out,
  };
  if (opts.bias) buffers.bias = opts.bias;
  rt.dispatch(spmmKernel(vec, opts.bias !== undefined), buffers, { rows: x.nRows, N }, groups);
  return out;
}

/**
 * Records `out = X^T dY` (`out += X^T dY` with accumulate) for X in CSR [nRows, nCols] with its
 * CSC view and dY dense [nRows, N]; returns out [nCols, N]. Every element of out is written
 * (genes without entries get 0, or keep their value when accumulating).
 */
export function spmmTransposed(
  rt: Runtime,
  x: GpuCsr,
  dy: Tensor,
  opts: { out?: Tensor; accumulate?: boolean } = {},
): Tensor {
  if (!x.csc) {
    throw new ScnymError("spmmTransposed: the CSR matrix was uploaded without its CSC view");
  }
  const N = checkDense("spmmTransposed", "dy", dy, x.nRows);
  if (opts.accumulate && !opts.out) {
    throw new ScnymError("spmmTransposed: accumulate needs an `out` tensor");
  }
  if (opts.out) checkDense("spmmTransposed", "out", opts.out, x.nCols, N);
  if (opts.out) expectNoAlias("spmmTransposed", { out: opts.out }, [dy, x.data]);
  const groups = groupsFor(rt, "spmmTransposed", x.nCols, N);
  const out = opts.out ?? rt.tensor([x.nCols, N], "f32", "spmmTransposed");
  if (x.nCols === 0) return out;
  const vec = N % 4 === 0;
  rt.dispatch(
    spmmTKernel(vec, opts.accumulate ?? false),
    {
      colptr: x.csc.colptr,
      rowOf: x.csc.rowOf,
      posOf: x.csc.posOf,
      data: x.data,
      src: dy,
      out,
    },
    { rows: x.nCols, N },
    groups,
  );
  return out;
}

// ------------------------------------------------------------------------- CPU references

/** CPU reference of `spmm` in float64: X W (+ bias), W row-major [nCols, N]. */
export function spmmRef(
  x: Csr,
  w: ArrayLike<number>,
  N: number,
  bias?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(x.nRows * N);
  for (let r = 0; r < x.nRows; r++) {
    for (let j = 0; j < N; j++) out[r * N + j] = bias?.[j] ?? 0;
    for (let k = x.indptr[r]; k < x.indptr[r + 1]; k++) {
      const v = x.data[k];
      const g = x.indices[k];
      for (let j = 0; j < N; j++) out[r * N + j] += v * w[g * N + j];
    }
  }
  return out;
}

/** CPU reference of `spmmTransposed` in float64: X^T dY (+ out0), dY row-major [nRows, N]. */
export function spmmTransposedRef(
  x: Csr,
  dy: ArrayLike<number>,
  N: number,
  out0?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(x.nCols * N);
  if (out0) { for (let i = 0; i < out.length; i++) out[i] = out0[i]; }
  for (let r = 0; r < x.nRows; r++) {
    for (let k = x.indptr[r]; k < x.indptr[r + 1]; k++) {
      const v = x.data[k];
      const g = x.indices[k];
      for (let j = 0; j < N; j++) out[g * N + j] += v * dy[r * N + j];
    }
  }
  return out;
}
