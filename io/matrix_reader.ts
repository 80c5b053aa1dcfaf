/**
 * Reading one stored matrix of an `.h5ad` (dense, CSR or CSC; current or legacy layout) as CSR
 * (Float32 values, Uint32 indices). Rows are read in chunks by hyperslab, so `readRows` never
 * needs the whole matrix resident (CSC is the exception: converting it to CSR needs one pass over
 * everything, done once and cached).
 */
import {
  type Csr,
  csrFromDense,
  emptyCsr,
  rowPointerSlice,
  setRows,
  sliceRows,
  vstack,
} from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import {
  attr,
  encodingType,
  getDataset,
  type H5Dataset,
  type H5File,
  h5Get,
  type H5Group,
  h5Try,
  isDataset,
  isNumericDataset,
  type NumericArray,
  readNumeric,
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
      indptr: rowPointerSlice(indptr, start, end),
      indices: toU32Indices(fn, `${this.#path}/indices`, this.#slice(this.#indices!, lo, hi)),
      data: toF32(this.#slice(this.#data!, lo, hi)),
    };
    checkIndices(fn, this.info.name, out.indices, this.nCols);
    return out;
  }

  /**
   * Consecutive `[firstRow, chunk]` pairs of at most `rows` rows or about `entries` values, over
   * rows [`start`, `end`) (default: all).
   */
  *chunks(
    opts: { rows?: number; entries?: number; start?: number; end?: number } = {},
  ): Generator<[number, Csr]> {
    const entries = opts.entries ?? 1 << 22;
    const end = opts.end ?? this.nRows;
    let r = opts.start ?? 0;
    while (r < end) {
      const e = Math.min(end, this.#chunkEnd(r, entries, opts.rows));
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
    for (const [start, c] of reader.chunks()) setRows(out, start, c);
    return out;
  }
  const parts: Csr[] = [];
  for (const [, c] of reader.chunks()) parts.push(c);
  return parts.length ? vstack(...parts) : emptyCsr(n, m);
}
