/**
 * Reading AnnData `.h5ad` files written by any anndata/scanpy version into our in-memory AnnData.
 *
 * Layouts handled:
 * - current (anndata >= 0.7): elements carry `encoding-type`; sparse matrices are groups with
 *   `data`/`indices`/`indptr` + a `shape` attribute; dataframes are groups with an `_index`
 *   attribute and one element per column (categoricals as `codes` + `categories`); 0.7's
 *   categoricals (codes dataset + `__categories/<col>`) too.
 * - legacy (anndata < 0.7): `obs`/`var` are compound datasets, categorical columns hold codes whose
 *   names live in `uns/<col>_categories`, sparse groups are marked `h5sparse_format`, raw is
 *   stored as `raw.X` / `raw.var`.
 *
 * Matrices always come out as CSR (Float32 values, Uint32 indices). Rows are read in chunks by
 * hyperslab, so `MatrixReader.readRows` never needs the whole matrix resident (CSC is the
 * exception: converting it to CSR needs one pass over everything, done once and cached).
 */
import { type Csr, csrFromDense, emptyCsr, vstack } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import type { AnnData, Column, DataFrame, UnsValue } from "./anndata.ts";
import {
  attr,
  encodingType,
  getDataset,
  getGroup,
  type H5Dataset,
  type H5File,
  h5Get,
  type H5Group,
  h5Try,
  isBoolDataset,
  isDataset,
  isGroup,
  isNumericDataset,
  isStringDataset,
  type NumericArray,
  openH5,
  readNumeric,
  readStrings,
  strAttr,
  toFloat64,
} from "./h5.ts";

/** How a matrix is stored on disk. */
export type StorageFormat = "dense" | "csr" | "csc";

/** What a stored matrix is, without reading its values. */
export interface MatrixInfo {
  /** `X`, `raw/X` or `layers/<name>`. */
  name: string;
  format: StorageFormat;
  shape: [number, number];
  /** Stored entries (for dense: the number of cells, nRows * nCols). */
  stored: number;
  /** HDF5 dtype of the values, e.g. `<f` (float32), `<d`, `<i`, `<q`. */
  dtype: string;
}

const MAX_U32 = 0xffffffff;

/** Rows of one stored matrix, read on demand as CSR chunks. */
export class MatrixReader {
  readonly info: MatrixInfo;
  #file: H5File;
  #path: string;
  #indptr: Float64Array | null = null;
  #data: H5Dataset | null = null;
  #indices: H5Dataset | null = null;
  #dense: H5Dataset | null = null;
  #cscAsCsr: Csr | null = null;

  /**
   * The matrix at `path` in `file`. Its layout comes from the anndata attributes unless `layout`
   * gives it (10x files keep data/indices/indptr without them). Usually via `H5adFile.matrix`.
   */
  constructor(
    file: H5File,
    path: string,
    name: string,
    layout?: { format: "csr" | "csc"; shape: [number, number] },
  ) {
    this.#file = file;
    this.#path = path;
    const fn = file.filename;
    const node = h5Get(file, path);
    if (node === null) throw new ScnymError(`${fn}: no matrix at ${path}`);
    if (isDataset(file, path)) {
      const d = getDataset(file, path);
      const shape = d.shape ?? [];
      if (shape.length !== 2 || !isNumericDataset(d)) {
        throw new ScnymError(
          `${fn}: ${path} should be a 2-D numeric matrix, found shape [${shape}] ${
            JSON.stringify(d.dtype)
          }`,
        );
      }
      this.#dense = d;
      this.info = {
        name,
        format: "dense",
        shape: [shape[0], shape[1]],
        stored: shape[0] * shape[1],
        dtype: String(d.dtype),
      };
      return;
    }
    const g = node as H5Group;
    const enc = encodingType(g) ?? strAttr(g, "h5sparse_format");
    const format = layout?.format ??
      (enc === "csr_matrix" || enc === "csr"
        ? "csr"
        : enc === "csc_matrix" || enc === "csc"
        ? "csc"
        : null);
    if (!format) {
      throw new ScnymError(
        `${fn}: ${path} is a group of encoding "${enc}", expected a CSR or CSC sparse matrix`,
      );
    }
    const shapeAttr = layout?.shape ??
      (attr(g, "shape") ?? attr(g, "h5sparse_shape")) as number[] | null;
    if (!Array.isArray(shapeAttr) || shapeAttr.length !== 2) {
      throw new ScnymError(`${fn}: ${path} has no 2-D "shape" attribute`);
    }
    for (const k of ["data", "indices", "indptr"]) {
      if (!isDataset(file, `${path}/${k}`)) {
        throw new ScnymError(`${fn}: sparse matrix ${path} has no "${k}" dataset`);
      }
    }
    this.#data = getDataset(file, `${path}/data`);
    this.#indices = getDataset(file, `${path}/indices`);
    this.info = {
      name,
      format,
      shape: [Number(shapeAttr[0]), Number(shapeAttr[1])],
      stored: this.#data.shape?.[0] ?? 0,
      dtype: String(this.#data.dtype),
    };
  }

  get nRows(): number {
    return this.info.shape[0];
  }
  get nCols(): number {
    return this.info.shape[1];
  }

  /** Rows [start, end) as a CSR matrix (values converted to float32, indices to uint32). */
  readRows(start: number, end: number): Csr {
    const fn = this.#file.filename;
    if (!(0 <= start && start <= end && end <= this.nRows)) {
      throw new ScnymError(`${fn}: rows [${start}, ${end}) out of range for ${this.info.name}`);
    }
    if (this.#dense) return this.#denseRows(start, end);
    if (this.info.format === "csc") return sliceRows(this.#cscToCsr(), start, end);
    const indptr = this.#rowPointers();
    const lo = indptr[start];
    const hi = indptr[end];
    if (hi - lo > MAX_U32) {
      throw new ScnymError(
        `${fn}: rows [${start}, ${end}) of ${this.info.name} hold ${hi - lo} entries, more than ` +
          `2^32-1 in one chunk; read fewer rows at a time`,
      );
    }
    const out: Csr = {
      nRows: end - start,
      nCols: this.nCols,
      indptr: new Uint32Array(end - start + 1),
      indices: toU32Indices(fn, `${this.#path}/indices`, this.#slice(this.#indices!, lo, hi)),
      data: toF32(this.#slice(this.#data!, lo, hi)),
    };
    for (let r = start; r <= end; r++) out.indptr[r - start] = indptr[r] - lo;
    checkIndices(fn, this.info.name, out.indices, this.nCols);
    return out;
  }

  /** Consecutive `[firstRow, chunk]` pairs of at most `rows` rows or about `entries` values. */
  *chunks(opts: { rows?: number; entries?: number } = {}): Generator<[number, Csr]> {
    const entries = opts.entries ?? 1 << 22;
    let r = 0;
    while (r < this.nRows) {
      const e = this.#chunkEnd(r, entries, opts.rows);
      yield [r, this.readRows(r, e)];
      r = e;
    }
  }

  /** Row where a chunk starting at `start` should end to hold about `entries` stored values. */
  #chunkEnd(start: number, entries: number, maxRows?: number): number {
    let end: number;
    if (this.info.format === "csr") {
      const indptr = this.#rowPointers();
      // Binary search for the last row whose cumulative count stays within the budget.
      let lo = start + 1;
      let hi = this.nRows;
      const limit = indptr[start] + entries;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (indptr[mid] <= limit) lo = mid;
        else hi = mid - 1;
      }
      end = lo;
    } else {
      end = start + Math.max(1, Math.floor(entries / Math.max(1, this.nCols)));
    }
    if (maxRows) end = Math.min(end, start + maxRows);
    return Math.min(this.nRows, Math.max(start + 1, end));
  }

  /** Total stored non-zeros (for CSR/CSC: entries in the file, which may include explicit 0s). */
  get storedNnz(): number {
    return this.info.format === "dense" ? this.info.stored : this.#data!.shape?.[0] ?? 0;
  }

  #slice(d: H5Dataset, lo: number, hi: number): NumericArray {
    if (hi <= lo) return new Float32Array(0);
    return readNumeric(this.#file.filename, d, lo, hi);
  }

  /** The row pointer array (nRows + 1 entries, float64 so int64 files work), validated once. */
  #rowPointers(): Float64Array {
    if (this.#indptr) return this.#indptr;
    const fn = this.#file.filename;
    const d = getDataset(this.#file, `${this.#path}/indptr`);
    const p = toFloat64(readNumeric(fn, d));
    const expect = (this.info.format === "csr" ? this.nRows : this.nCols) + 1;
    if (p.length !== expect) {
      throw new ScnymError(
        `${fn}: ${this.#path}/indptr has ${p.length} entries, expected ${expect} for shape ` +
          `[${this.info.shape}]`,
      );
    }
    for (let i = 0; i + 1 < p.length; i++) {
      if (p[i + 1] < p[i]) {
        throw new ScnymError(`${fn}: ${this.#path}/indptr decreases at ${i}: damaged matrix`);
      }
    }
    if (p[0] !== 0 || p[p.length - 1] !== this.info.stored) {
      throw new ScnymError(
        `${fn}: ${this.#path}/indptr spans [${p[0]}, ${p[p.length - 1]}], but data holds ` +
          `${this.info.stored} entries`,
      );
    }
    return this.#indptr = p;
  }

  #denseRows(start: number, end: number): Csr {
    const d = this.#dense!;
    const block = end > start
      ? h5Try(this.#file.filename, d.path, () => d.slice([[start, end], []]) as NumericArray)
      : new Float32Array(0);
    const values = block instanceof BigInt64Array || block instanceof BigUint64Array
      ? toFloat64(block)
      : block;
    return csrFromDense(values, end - start, this.nCols);
  }

  /**
   * CSC -> CSR by a counting sort over rows, streaming the column pointers in slices: two passes
   * over the indices, memory O(nnz). The result is cached: CSC files are resident once read.
   */
  #cscToCsr(): Csr {
    if (this.#cscAsCsr) return this.#cscAsCsr;
    const fn = this.#file.filename;
    const colptr = this.#rowPointers(); // for CSC these are column pointers
    const total = this.info.stored;
    if (total > MAX_U32) {
      throw new ScnymError(`${fn}: ${this.#path} (CSC) has more than 2^32-1 entries`);
    }
    const step = 1 << 22;
    const indptr = new Uint32Array(this.nRows + 1);
    for (let lo = 0; lo < total; lo += step) {
      const rows = toU32Indices(
        fn,
        this.#path,
        this.#slice(this.#indices!, lo, Math.min(total, lo + step)),
      );
      checkIndices(fn, this.info.name, rows, this.nRows);
      for (const r of rows) indptr[r + 1]++;
    }
    for (let r = 0; r < this.nRows; r++) indptr[r + 1] += indptr[r];
    const next = indptr.slice(0, this.nRows);
    const indices = new Uint32Array(total);
    const data = new Float32Array(total);
    let col = 0;
    for (let lo = 0; lo < total; lo += step) {
      const hi = Math.min(total, lo + step);
      const rows = toU32Indices(fn, this.#path, this.#slice(this.#indices!, lo, hi));
      const vals = toF32(this.#slice(this.#data!, lo, hi));
      for (let k = lo; k < hi; k++) {
        while (colptr[col + 1] <= k) col++;
        const d = next[rows[k - lo]]++;
        indices[d] = col;
        data[d] = vals[k - lo];
      }
    }
    return this.#cscAsCsr = { nRows: this.nRows, nCols: this.nCols, indptr, indices, data };
  }
}

function toF32(a: NumericArray): Float32Array {
  if (a instanceof Float32Array) return a;
  const out = new Float32Array(a.length);
  if (a instanceof BigInt64Array || a instanceof BigUint64Array) {
    for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  } else out.set(a);
  return out;
}

function toU32Indices(file: string, field: string, a: NumericArray): Uint32Array {
  if (a instanceof Uint32Array) return a;
  const out = new Uint32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = Number(a[i]);
    if (!(v >= 0 && v <= MAX_U32)) {
      throw new ScnymError(`${file}: ${field}[${i}] = ${v} is not a valid index`);
    }
    out[i] = v;
  }
  return out;
}

function checkIndices(file: string, name: string, idx: Uint32Array, bound: number): void {
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] >= bound) {
      throw new ScnymError(
        `${file}: ${name} has an index ${idx[i]} outside its ${bound} columns/rows: damaged matrix`,
      );
    }
  }
}

/** Rows [start, end) of an in-memory CSR matrix (copies). */
function sliceRows(m: Csr, start: number, end: number): Csr {
  const lo = m.indptr[start];
  const hi = m.indptr[end];
  const indptr = new Uint32Array(end - start + 1);
  for (let r = start; r <= end; r++) indptr[r - start] = m.indptr[r] - lo;
  return {
    nRows: end - start,
    nCols: m.nCols,
    indptr,
    indices: m.indices.slice(lo, hi),
    data: m.data.slice(lo, hi),
  };
}

/** An open `.h5ad` file. Close it when done (`close()`), or use `readH5ad` for one-shot reads. */
export class H5adFile {
  readonly path: string;
  readonly file: H5File;

  private constructor(path: string, file: H5File) {
    this.path = path;
    this.file = file;
  }

  /** Opens `path`, with clear errors for a missing, non-HDF5 or truncated file. */
  static async open(path: string): Promise<H5adFile> {
    const f = await openH5(path, "r");
    const h = new H5adFile(path, f);
    if (!h5Get(f, "obs") || !h5Get(f, "var")) {
      const hint = h5Get(f, "matrix") ? "; it looks like a 10x .h5: read it as such" : "";
      f.close();
      throw new ScnymError(`${path}: not an AnnData file (an HDF5 file without obs/var${hint})`);
    }
    return h;
  }

  /** True for the pre-0.7 layout (compound obs/var datasets). */
  get legacy(): boolean {
    return isDataset(this.file, "obs");
  }

  /** Names of the stored matrices: `X`, `raw/X` and `layers/<name>` for those present. */
  matrixNames(): string[] {
    const f = this.file;
    const names: string[] = [];
    if (f.get("X")) names.push("X");
    if (h5Get(f, "raw/X") || h5Get(f, "raw.X")) names.push("raw/X");
    if (isGroup(f, "layers")) {
      for (const k of (f.get("layers") as H5Group).keys()) names.push(`layers/${k}`);
    }
    return names;
  }

  /**
   * The reader for a matrix. `name` may be `X`, `raw`, `raw/X`, `layers/<name>` or a bare layer
   * name; an unknown name lists the ones that exist.
   */
  matrix(name = "X"): MatrixReader {
    const canonical = this.resolveMatrixName(name);
    const path = canonical === "raw/X" && !h5Get(this.file, "raw/X") ? "raw.X" : canonical;
    return new MatrixReader(this.file, path, canonical);
  }

  /** Maps user spellings (`raw`, a bare layer name) to `X`, `raw/X` or `layers/<name>`. */
  resolveMatrixName(name: string): string {
    const names = this.matrixNames();
    const candidates = [name, name === "raw" ? "raw/X" : "", `layers/${name}`];
    const hit = candidates.find((c) => c && names.includes(c));
    if (!hit) {
      throw new ScnymError(
        `${this.path}: no matrix "${name}"; matrices are: ${names.join(", ") || "(none)"}`,
      );
    }
    return hit;
  }

  /** The `obs` dataframe (cells). */
  obs(): DataFrame {
    return this.#dataFrame("obs");
  }

  /** The `var` dataframe (genes) that goes with `matrix` (`raw/X` has its own `raw/var`). */
  var(matrix = "X"): DataFrame {
    if (this.resolveMatrixName(matrix) !== "raw/X") return this.#dataFrame("var");
    return this.#dataFrame(h5Get(this.file, "raw/var") ? "raw/var" : "raw.var");
  }

  /** Small `uns` entries (scalars, short lists, nested dicts); big arrays are skipped. */
  uns(): Record<string, UnsValue> {
    if (!isGroup(this.file, "uns")) return {};
    const uns = h5Try(this.path, "uns", () => readUnsGroup(getGroup(this.file, "uns")));
    if (this.legacy) {
      // `uns/<col>_categories` only encoded legacy categoricals (now in obs/var); written back
      // next to a modern categorical, anndata would try to decode it again and fail.
      const cols = [...this.obs().columns.keys(), ...this.var().columns.keys()];
      for (const c of cols) delete uns[`${c}_categories`];
    }
    return uns;
  }

  /** Everything needed for training or prediction, with the matrix read in row chunks. */
  read(matrix = "X"): AnnData {
    const reader = this.matrix(matrix);
    const obs = this.obs();
    const var_ = this.var(matrix);
    const [n, m] = reader.info.shape;
    if (obs.index.length !== n || var_.index.length !== m) {
      throw new ScnymError(
        `${this.path}: ${reader.info.name} is ${n} x ${m} but obs has ${obs.index.length} rows ` +
          `and var ${var_.index.length}`,
      );
    }
    return {
      X: readAllRows(reader),
      obs,
      var: var_,
      matrix: reader.info.name,
      uns: this.uns(),
      source: this.path,
    };
  }

  /** Releases the HDF5 handle. */
  close(): void {
    this.file.close();
  }

  #dataFrame(path: string): DataFrame {
    return h5Try(this.path, path, () => {
      if (isDataset(this.file, path)) return readLegacyDataFrame(this.file, path);
      if (!isGroup(this.file, path)) {
        throw new ScnymError(`${this.path}: ${path} is missing`);
      }
      return readDataFrameGroup(this.file, path);
    });
  }
}

/** Reads every row of `reader` into one CSR matrix, holding at most one extra chunk. */
export function readAllRows(reader: MatrixReader): Csr {
  const [n, m] = reader.info.shape;
  if (reader.info.format === "csr") {
    const total = reader.storedNnz;
    if (total > MAX_U32) {
      throw new ScnymError(
        `${reader.info.name} holds ${total} entries, more than 2^32-1: read it in row chunks`,
      );
    }
    const out = emptyCsr(n, m, total);
    for (const [start, c] of reader.chunks()) {
      const base = out.indptr[start];
      out.indices.set(c.indices, base);
      out.data.set(c.data, base);
      for (let r = 1; r <= c.nRows; r++) out.indptr[start + r] = base + c.indptr[r];
    }
    return out;
  }
  const parts: Csr[] = [];
  for (const [, c] of reader.chunks()) parts.push(c);
  return parts.length ? vstack(...parts) : emptyCsr(n, m);
}

/** Reads `path` as an AnnData (matrix `X` unless asked otherwise), closing the file after. */
export async function readH5ad(path: string, opts: { matrix?: string } = {}): Promise<AnnData> {
  const h = await H5adFile.open(path);
  try {
    return h.read(opts.matrix ?? "X");
  } finally {
    h.close();
  }
}

// ---------------------------------------------------------------------------------------------
// dataframes

function numbersToStrings(a: NumericArray): string[] {
  return Array.from(a as ArrayLike<number | bigint>, (v) => String(v));
}

/** Categories as strings, whether stored as strings or numbers. */
function readCategories(file: string, d: H5Dataset): string[] {
  return isStringDataset(d) ? readStrings(file, d) : numbersToStrings(readNumeric(file, d));
}

function codesToInt32(a: NumericArray): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

function readColumnDataset(file: string, d: H5Dataset): Column {
  if (isStringDataset(d)) return { kind: "string", values: readStrings(file, d) };
  if (isBoolDataset(d)) {
    return { kind: "boolean", values: Uint8Array.from(readNumeric(file, d) as Int8Array) };
  }
  if (isNumericDataset(d)) return { kind: "numeric", values: toFloat64(readNumeric(file, d)) };
  throw new ScnymError(`${file}: column ${d.path} has unsupported type ${JSON.stringify(d.dtype)}`);
}

function readColumnGroup(file: string, g: H5Group): Column | null {
  const enc = encodingType(g);
  if (enc === "categorical") {
    const categories = readCategories(file, getDataset(g, "categories"));
    const codes = codesToInt32(readNumeric(file, getDataset(g, "codes")));
    return { kind: "categorical", codes, categories, ordered: !!attr(g, "ordered") };
  }
  if (enc === "nullable-integer" || enc === "nullable-boolean") {
    const values = toFloat64(readNumeric(file, getDataset(g, "values")));
    const mask = readNumeric(file, getDataset(g, "mask"));
    if (enc === "nullable-boolean") {
      // A missing boolean has no representation here; treat it as false.
      return { kind: "boolean", values: Uint8Array.from(values, (v, i) => (mask[i] ? 0 : v)) };
    }
    for (let i = 0; i < values.length; i++) if (mask[i]) values[i] = NaN;
    return { kind: "numeric", values };
  }
  return null; // unknown element kinds (e.g. nested dataframes) are skipped
}

function readDataFrameGroup(f: H5File, path: string): DataFrame {
  const file = f.filename;
  const g = f.get(path) as H5Group;
  const indexName = strAttr(g, "_index") ?? "_index";
  const keys = g.keys();
  if (!keys.includes(indexName)) {
    throw new ScnymError(`${file}: ${path} has no index dataset "${indexName}"`);
  }
  const idxDs = g.get(indexName) as H5Dataset;
  const index = isStringDataset(idxDs)
    ? readStrings(file, idxDs)
    : numbersToStrings(readNumeric(file, idxDs));
  const order = attr(g, "column-order");
  const names = Array.isArray(order) ? order.map(String) : [];
  for (const k of keys) {
    if (k !== indexName && k !== "__categories" && !names.includes(k)) names.push(k);
  }
  const columns = new Map<string, Column>();
  for (const name of names) {
    const node = g.get(name);
    if (node === null) continue;
    let col: Column | null;
    if (isGroup(g, name)) col = readColumnGroup(file, node as H5Group);
    else {
      col = readColumnDataset(file, node as H5Dataset);
      // anndata 0.7 categoricals: codes here, names in `__categories/<name>`.
      const cats = `${name}`;
      if (col.kind === "numeric" && isDataset(g, `__categories/${cats}`)) {
        col = {
          kind: "categorical",
          codes: Int32Array.from(col.values),
          categories: readCategories(file, getDataset(g, `__categories/${cats}`)),
          ordered: !!attr(node as H5Dataset, "ordered"),
        };
      }
    }
    if (col) columns.set(name, col);
  }
  return { index, columns };
}

/**
 * Pre-0.7 dataframes: one compound dataset whose `index` member is the index; categorical columns
 * store codes and their names sit in `uns/<column>_categories`.
 */
function readLegacyDataFrame(f: H5File, path: string): DataFrame {
  const file = f.filename;
  const d = f.get(path) as H5Dataset;
  const ct = d.metadata.compound_type as { members: { name: string; type: number }[] } | undefined;
  if (!ct) throw new ScnymError(`${file}: ${path} is a dataset but not a table (compound type)`);
  const rows = (d.value ?? []) as unknown[][];
  const members = ct.members;
  const indexAt = Math.max(0, members.findIndex((m) => m.name === "index" || m.name === "_index"));
  const cell = (v: unknown) => (typeof v === "bigint" ? Number(v) : v);
  const index = rows.map((r) => String(r[indexAt]));
  const columns = new Map<string, Column>();
  members.forEach((m, j) => {
    if (j === indexAt) return;
    const catsPath = `uns/${m.name}_categories`;
    if (isDataset(f, catsPath)) {
      columns.set(m.name, {
        kind: "categorical",
        codes: Int32Array.from(rows, (r) => Number(cell(r[j]))),
        categories: readCategories(file, getDataset(f, catsPath)),
      });
    } else if (m.type === 3) {
      columns.set(m.name, { kind: "string", values: rows.map((r) => String(r[j])) });
    } else if (m.type === 8) {
      columns.set(m.name, { kind: "boolean", values: Uint8Array.from(rows, (r) => Number(r[j])) });
    } else {
      columns.set(m.name, {
        kind: "numeric",
        values: Float64Array.from(rows, (r) => Number(cell(r[j]))),
      });
    }
  });
  return { index, columns };
}

// ---------------------------------------------------------------------------------------------
// uns

const UNS_MAX_ELEMS = 10_000;

function readUnsGroup(g: H5Group): Record<string, UnsValue> {
  const out: Record<string, UnsValue> = {};
  for (const k of g.keys()) {
    const node = g.get(k);
    if (node === null) continue;
    if (isGroup(g, k)) {
      const enc = encodingType(node as H5Group);
      if (enc === null || enc === "dict") out[k] = readUnsGroup(node as H5Group);
      continue;
    }
    const d = node as H5Dataset;
    const shape = d.shape ?? [];
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length > 1 || size > UNS_MAX_ELEMS) continue;
    if (isStringDataset(d)) {
      const v = d.value;
      out[k] = shape.length === 0 ? String(v) : (v as string[]).map(String);
    } else if (isNumericDataset(d) || isBoolDataset(d)) {
      const v = d.value;
      if (shape.length === 0) {
        out[k] = isBoolDataset(d) ? !!Number(v) : Number(v as number | bigint);
      } else out[k] = Array.from(v as ArrayLike<number | bigint>, Number);
    }
  }
  return out;
}
