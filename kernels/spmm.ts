/**
 * Sparse (CSR) x dense products for the input layer: scRNA-seq rows are ~95% zeros, so the
 * first linear layer walks only the stored entries (X uploaded by `uploadCsr`, kernels/sparse.ts).
 *
 * - `spmm`: out = X W (+ bias), X [cells, genes] in CSR, W [genes, N]: the forward pass.
 *   Invocation per (cell, group of columns), walking the cell's entries; for a W over 4 MB, one
 *   dispatch per ~1 MB block of genes (see `geneBlock`).
 * - `spmmTransposed`: out = X^T dY, the weight gradient [genes, N]. Invocation per (gene,
 *   group of columns), walking the gene's entries through a CSC view, so no two invocations
 *   write the same output and no float atomics are needed.
 *
 * In both, the 8 invocations of a SIMD group / warp take neighbouring column groups of the same
 * row (or gene): they run the same number of loop trips and read neighbouring vec4s of W / dY.
 *
 * Cost on a software adapter (Mesa 22.3 llvmpipe), where every component of every storage load
 * is a scalar load in a loop over the SIMD lanes: each stored entry needs one loaded value of W
 * (or dY) per multiply-add, while the register-tiled dense matmul reuses each loaded value 8
 * times, so at 5% density these run ~2-4x faster than the dense product, not 20x (see
 * `deno task bench`); on GPUs, where loads are cheap, the gap is larger. Measured on that
 * adapter (Kang-like batch, 512 x 13,215, 697 entries per row, N = 256): a workgroup per row,
 * texture or uniform-buffer operands and skipping the accumulate read all came within ~10% of
 * this kernel: loads per multiply-add are the cost. Row tiles that share W rows do not help at
 * this density (8 rows share a gene in only 1.9 entries on average).
 */
import type { Csr } from "../data/csr.ts";
import { defineKernel, type Kernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { expectNoAlias } from "./common.ts";
import { type Bf16Matrix, unpackBf16Wgsl } from "./bf16.ts";
import type { GpuCsr } from "./sparse.ts";

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
 * How the dense operand (W, or dY) is read: `scalar` f32 (any N), `vec4` f32 (N % 4 == 0), or
 * a `Bf16Matrix`, 8 values per vec4<u32> load (N % 8 == 0; see kernels/bf16.ts).
 */
type Layout = "scalar" | "vec4" | "bf16";

/** The layout of the operand `src` (a bf16 matrix is read as vec4<u32>). */
function layoutOf(src: Tensor | Bf16Matrix): Layout {
  if ("packed" in src) return "bf16";
  return src.cols % 4 === 0 ? "vec4" : "scalar";
}
const SUFFIX: Record<Layout, string> = { scalar: "_scalar", vec4: "", bf16: "_bf16" };
const SRC_TYPE = (l: Layout) => (l === "scalar" ? "f32" : l === "vec4" ? "vec4<f32>" : "vec4<u32>");
/** Type of `out` and `bias`: f32 when N % 4 != 0, vec4 otherwise. */
const OUT_TYPE = (l: Layout) => (l === "scalar" ? "f32" : "vec4<f32>");

/**
 * Column quad of accumulator q. For f32 operands, quad q is `cq0 + q * WG_X` (neighbouring
 * invocations read neighbouring vec4s); for bf16 operands, accumulators 2h and 2h+1 are the two
 * quads of octet `oc0 + h * WG_X`, one vec4<u32> load.
 */
function quadOf(layout: Layout, q: number): string {
  return layout === "bf16"
    ? `(2u * (oc0 + ${q >> 1}u * WG_X) + ${q & 1}u)`
    : `(cq0 + ${q}u * WG_X)`;
}

/** The loads and multiply-adds of one stored entry with value `v` and source row `s`. */
function entryBody(layout: Layout): string {
  if (layout === "bf16") {
    // Clamped octets: the loads stay in bounds, the stores are skipped past the edge. Octet h
    // feeds accumulators 2h (its words x, y) and 2h + 1 (z, w).
    const quad = (h: number, a: string, b: string) =>
      `vec4<f32>(${unpackBf16Wgsl(`u${h}.${a}`)}, ${unpackBf16Wgsl(`u${h}.${b}`)})`;
    return lines(QUADS / 2, (h) =>
      [
        `    let u${h} = src[s * (p.N / 8u) + min(oc0 + ${h}u * WG_X, p.N / 8u - 1u)];`,
        `    acc${2 * h} = fma(vv, ${quad(h, "x", "y")}, acc${2 * h});`,
        `    acc${2 * h + 1} = fma(vv, ${quad(h, "z", "w")}, acc${2 * h + 1});`,
      ].join("\n"));
  }
  // Clamped column quads: the loads stay in bounds, the stores are skipped past the edge.
  const src = (q: number) =>
    layout === "vec4"
      ? `src[s * (p.N / 4u) + min(${quadOf(layout, q)}, p.N / 4u - 1u)]`
      : `vec4<f32>(${
        lines(4, (r) => `src[s * p.N + min(${quadOf(layout, q)} * 4u + ${r}u, p.N - 1u)]`, ", ")
      })`;
  return lines(QUADS, (q) => `    acc${q} = fma(vv, ${src(q)}, acc${q});`);
}

/**
 * The WGSL both products share: an invocation owns row `row` of the output and QUADS column
 * quads (see `quadOf`), loops over entries `e` in [lo, hi), gets a (value, source row) pair from
 * `entry` and accumulates value * src[source row, quad], then stores with `epilogue`.
 */
function productKernel(spec: {
  name: string;
  layout: Layout;
  buffers: Record<string, { access: "read" | "rw"; type: string }>;
  range: string;
  entry: string;
  epilogue: (q: number, r: number | null) => string;
  params?: Record<string, "u32">;
  helpers?: string;
}): Kernel {
  const { layout } = spec;
  const stores = lines(QUADS, (q) => {
    if (layout !== "scalar") {
      return `if (${quadOf(layout, q)} < p.N / 4u) { ${spec.epilogue(q, null)} }`;
    }
    return lines(
      4,
      (r) => `if (${quadOf(layout, q)} * 4u + ${r}u < p.N) { ${spec.epilogue(q, r)} }`,
    );
  });
  const code = `${spec.helpers ?? ""}
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // Rows vary fastest over workgroups, so consecutive workgroups reuse the same columns of src.
  let row = wid.x * WG_Y + lid.y;
  if (row >= p.rows) { return; }
  let cq0 = wid.y * WG_X * ${QUADS}u + lid.x;
  let oc0 = wid.y * WG_X * ${QUADS / 2}u + lid.x;
${lines(QUADS, (q) => `  var acc${q} = vec4<f32>(0.0);`)}
  ${spec.range}
  for (var e = lo; e < hi; e++) {
    ${spec.entry}
    let vv = vec4<f32>(v);
${entryBody(layout)}
  }
${stores}
}`;
  return defineKernel({
    name: spec.name,
    workgroupSize: [WG_COLS, WG_ROWS],
    params: { rows: "u32", N: "u32", ...spec.params },
    buffers: spec.buffers,
    code,
  });
}

const U32_READ = { access: "read", type: "u32" } as const;

/** Output element index for quad q (and component r when scalar). */
function outIndex(layout: Layout, q: number, r: number | null): string {
  return r === null
    ? `row * (p.N / 4u) + ${quadOf(layout, q)}`
    : `row * p.N + ${quadOf(layout, q)} * 4u + ${r}u`;
}
const accOf = (q: number, r: number | null) => (r === null ? `acc${q}` : `acc${q}[${r}]`);

const spmmKernels = new Map<string, Kernel>();

/**
 * How a `spmm` dispatch combines its sum with `out`: `write` (out = acc), `bias`
 * (out = acc + bias), `acc` (out += acc: the gene blocks after the first).
 */
type SpmmMode = "write" | "bias" | "acc";

/**
 * The forward kernel. Each dispatch covers the genes [g0, g1) (all of them unless blocked): a
 * row's entries there are found by binary search over its ascending columns (skipped for the
 * full range, so an unblocked pass needs no ordering and keeps its summation order).
 */
function spmmKernel(layout: Layout, mode: SpmmMode): Kernel {
  const key = `${layout}${mode}`;
  let k = spmmKernels.get(key);
  if (k) return k;
  const buffers: Record<string, { access: "read" | "rw"; type: string }> = {
    indptr: U32_READ,
    indices: U32_READ,
    data: { access: "read", type: "f32" },
    src: { access: "read", type: SRC_TYPE(layout) },
    out: { access: "rw", type: OUT_TYPE(layout) },
  };
  if (mode === "bias") buffers.bias = { access: "read", type: OUT_TYPE(layout) };
  const tail = (q: number, r: number | null) =>
    mode === "write"
      ? ""
      : mode === "acc"
      ? ` + out[${outIndex(layout, q, r)}]`
      : r === null
      ? ` + bias[${quadOf(layout, q)}]`
      : ` + bias[${quadOf(layout, q)} * 4u + ${r}u]`;
  k = productKernel({
    name: `spmm${SUFFIX[layout]}${mode === "write" ? "" : `_${mode}`}`,
    layout,
    buffers,
    params: { g0: "u32", g1: "u32", G: "u32" },
    helpers: `
/** First entry in [a, b) whose column is >= g (columns ascending within the row). */
fn lower_bound(a: u32, b: u32, g: u32) -> u32 {
  var lo = a;
  var hi = b;
  while (lo < hi) {
    let mid = lo + (hi - lo) / 2u;
    if (indices[mid] < g) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}`,
    range: `var lo = indptr[row]; var hi = indptr[row + 1u];
  if (p.g0 > 0u) { lo = lower_bound(lo, hi, p.g0); }
  if (p.g1 < p.G) { hi = lower_bound(lo, hi, p.g1); }`,
    entry: "let v = data[e]; let s = indices[e];",
    epilogue: (q, r) => `out[${outIndex(layout, q, r)}] = ${accOf(q, r)}${tail(q, r)};`,
  });
  spmmKernels.set(key, k);
  return k;
}

const spmmTKernels = new Map<string, Kernel>();

function spmmTKernel(layout: Layout, accumulate: boolean): Kernel {
  const key = `${layout}${accumulate}`;
  let k = spmmTKernels.get(key);
  if (k) return k;
  k = productKernel({
    name: `spmm_t${SUFFIX[layout]}${accumulate ? "_acc" : ""}`,
    layout,
    buffers: {
      colptr: U32_READ,
      rowOf: U32_READ,
      posOf: U32_READ,
      data: { access: "read", type: "f32" },
      src: { access: "read", type: SRC_TYPE(layout) },
      out: { access: "rw", type: OUT_TYPE(layout) },
    },
    range: "let lo = colptr[row]; let hi = colptr[row + 1u];",
    entry: "let v = data[posOf[e]]; let s = rowOf[e];",
    epilogue: (q, r) => {
      const idx = outIndex(layout, q, r);
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

/**
 * The dense operand's column count, checked: f32 [rows, N], or a bf16 matrix of that shape
 * (N % 8 == 0, see kernels/bf16.ts).
 */
function checkOperand(op: string, name: string, src: Tensor | Bf16Matrix, rows: number): number {
  if (!("packed" in src)) return checkDense(op, name, src, rows);
  const words = src.rows * src.cols / 2;
  if (src.rows !== rows || src.cols % 8 !== 0 || src.cols === 0 || src.packed.size < words) {
    throw new ScnymError(
      `${op}: ${name} (bf16) must be [${rows}xN] with N % 8 == 0, got [${src.rows}x` +
        `${src.cols}] in ${src.packed.describe()}`,
    );
  }
  return src.cols;
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

/** Bytes of W a gene block of the forward reads: about one core's L2 cache. */
const BLOCK_BYTES = 1 << 20;

/**
 * Genes per forward dispatch (all G when W is at most 4 blocks: it stays cached anyway). Every
 * row reads W rows scattered over all of W, so with W larger than the caches each read misses;
 * walking the genes in blocks of ~1 MB of W keeps the block cached while all rows use it, at
 * the price of one dispatch (and one read-add-write of out) per block. Measured on llvmpipe,
 * 512 rows x 5%: 20,000 genes 1.5x (idle machine) to 4x (caches shared with other processes);
 * 13,215 genes within noise when idle, 2.4x under contention, ~1.2x inside a training step.
 */
function geneBlock(G: number, N: number): number {
  if (G * N * 4 <= 4 * BLOCK_BYTES) return Math.max(G, 1);
  return Math.max(64, Math.floor(BLOCK_BYTES / (N * 4)));
}

/**
 * Records `out = X W (+ bias broadcast over rows)` for X in CSR [nRows, nCols] and W dense
 * [nCols, N] (f32, or its bf16 copy from `packBf16`); returns out [nRows, N]. Rows without
 * entries get the bias (or 0).
 */
export function spmm(
  rt: Runtime,
  x: GpuCsr,
  w: Tensor | Bf16Matrix,
  opts: { bias?: Tensor; out?: Tensor } = {},
): Tensor {
  const N = checkOperand("spmm", "w", w, x.nCols);
  const src = "packed" in w ? w.packed : w;
  if (opts.bias && (opts.bias.size !== N || opts.bias.dtype !== "f32")) {
    throw new ScnymError(`spmm: bias must be f32 with ${N} values, got ${opts.bias.describe()}`);
  }
  if (opts.out) checkDense("spmm", "out", opts.out, x.nRows, N);
  if (opts.out) expectNoAlias("spmm", { out: opts.out }, [src, opts.bias, x.data]);
  const groups = groupsFor(rt, "spmm", x.nRows, N);
  const out = opts.out ?? rt.tensor([x.nRows, N], "f32", "spmm");
  if (x.nRows === 0) return out;
  const layout = layoutOf(w);
  const buffers: Record<string, Tensor> = {
    indptr: x.indptr,
    indices: x.indices,
    data: x.data,
    src,
    out,
  };
  if (opts.bias) buffers.bias = opts.bias;
  const G = x.nCols;
  const block = x.sortedRows ? geneBlock(G, N) : Math.max(G, 1);
  for (let g0 = 0; g0 < Math.max(G, 1); g0 += block) {
    const mode: SpmmMode = g0 > 0 ? "acc" : opts.bias ? "bias" : "write";
    const g1 = Math.min(G, g0 + block);
    rt.dispatch(spmmKernel(layout, mode), buffers, { rows: x.nRows, N, g0, g1, G }, groups);
  }
  return out;
}

/**
 * Records `out = X^T dY` (`out += X^T dY` with accumulate) for X in CSR [nRows, nCols] with its
 * CSC view and dY dense [nRows, N] (f32, or its bf16 copy from `packBf16`); returns out
 * [nCols, N]. Every element of out is written (genes without entries get 0, or keep their value
 * when accumulating).
 */
export function spmmTransposed(
  rt: Runtime,
  x: GpuCsr,
  dy: Tensor | Bf16Matrix,
  opts: { out?: Tensor; accumulate?: boolean } = {},
): Tensor {
  if (!x.csc) {
    throw new ScnymError("spmmTransposed: the CSR matrix was uploaded without its CSC view");
  }
  const N = checkOperand("spmmTransposed", "dy", dy, x.nRows);
  const src = "packed" in dy ? dy.packed : dy;
  if (opts.accumulate && !opts.out) {
    throw new ScnymError("spmmTransposed: accumulate needs an `out` tensor");
  }
  if (opts.out) checkDense("spmmTransposed", "out", opts.out, x.nCols, N);
  if (opts.out) expectNoAlias("spmmTransposed", { out: opts.out }, [src, x.data]);
  const groups = groupsFor(rt, "spmmTransposed", x.nCols, N);
  const out = opts.out ?? rt.tensor([x.nCols, N], "f32", "spmmTransposed");
  if (x.nCols === 0) return out;
  rt.dispatch(
    spmmTKernel(layoutOf(dy), opts.accumulate ?? false),
    {
      colptr: x.csc.colptr,
      rowOf: x.csc.rowOf,
      posOf: x.csc.posOf,
      data: x.data,
      src,
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
