/**
 * The elements of an `.h5ad` as anndata encodes them (every element carries `encoding-type` /
 * `encoding-version`): strings, numeric arrays, dataframe columns, dataframes, CSR matrices,
 * dicts and `uns` values, plus the temp-then-rename wrapper every `.h5ad` writer goes through.
 * The writers themselves are in h5ad_write.ts (whole files) and h5ad_predictions.ts (streamed
 * predictions).
 */
import { type Csr, nnz } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { hostFs } from "../util/host_fs.ts";
import { type Column, columnLength, type DataFrame, type UnsValue } from "./anndata.ts";
import { condenseH5Error, type H5Group, setEncoding, writeNumeric } from "./h5.ts";
import type { BoolAttrWriter } from "./h5_bool_attrs.ts";

/** Options shared by the writers. */
export interface WriteOptions {
  /** Replace an existing output file (default false: refuse). */
  overwrite?: boolean;
  /** gzip level for numeric datasets, 0 for none (default 4, like anndata's `compression="gzip"`). */
  compression?: number;
}

/** True when `a` and `b` name the same existing file (through links). */
export async function samePath(a: string, b: string): Promise<boolean> {
  try {
    const fs = hostFs();
    return (await fs.realPath(a)) === (await fs.realPath(b));
  } catch {
    return false;
  }
}

/** `writeFileAtomic` with `fn(tmp)` creating the file; HDF5 failures condensed to one line. */
export async function writeViaTemp(
  path: string,
  overwrite: boolean,
  fn: (tmp: string) => Promise<void>,
): Promise<void> {
  await writeFileAtomic(path, async (tmp) => {
    try {
      await fn(tmp);
    } catch (e) {
      if (e instanceof ScnymError) throw e;
      throw new ScnymError(`cannot write ${path}: ${condenseH5Error(e)}`);
    }
  }, { overwrite });
}

// ---------------------------------------------------------------------------------------------
// elements

/** A string array element (variable-length UTF-8, as anndata writes them). */
export function writeStrings(g: H5Group, name: string, values: string[]): void {
  // Variable-length UTF-8 strings, as anndata writes them (h5wasm cannot compress vlen data).
  const d = g.create_dataset({ name, data: values, shape: [values.length], dtype: "S" });
  setEncoding(d, "string-array", "0.2.0");
}

/** A numeric array element of `shape` (chunked, gzip at `compression`). */
export function writeArray(
  g: H5Group,
  name: string,
  data: Float32Array | Float64Array | Int32Array | Int8Array | Int16Array,
  shape: number[],
  compression: number,
): void {
  setEncoding(writeNumeric(g, name, data, { shape, compression }), "array", "0.2.0");
}

function smallestCodes(
  codes: Int32Array,
  nCategories: number,
): Int8Array | Int16Array | Int32Array {
  // pandas stores codes in the smallest signed type that fits; anndata keeps that dtype.
  if (nCategories < 128) return Int8Array.from(codes);
  if (nCategories < 32768) return Int16Array.from(codes);
  return codes;
}

/** What every element writer needs: the gzip level and the boolean-attribute patcher. */
export interface Ctx {
  compression: number;
  bools: BoolAttrWriter;
}

/** One dataframe column (categorical, string, numeric or boolean) under `g/name`. */
export function writeColumn(g: H5Group, name: string, col: Column, ctx: Ctx): void {
  const compression = ctx.compression;
  switch (col.kind) {
    case "categorical": {
      const c = g.create_group(name);
      setEncoding(c, "categorical", "0.2.0");
      ctx.bools.set(c, "ordered", !!col.ordered);
      writeStrings(c, "categories", col.categories);
      const codes = smallestCodes(col.codes, col.categories.length);
      writeArray(c, "codes", codes, [codes.length], compression);
      return;
    }
    case "string":
      return writeStrings(g, name, col.values);
    case "numeric":
      return writeArray(g, name, col.values, [col.values.length], compression);
    case "boolean":
      return writeArray(g, name, Int8Array.from(col.values), [col.values.length], compression);
  }
}

/** A string-list attribute (e.g. a dataframe's `column-order`). */
export function writeStringAttr(obj: H5Group, name: string, values: string[]): void {
  // An empty string list has no element to infer a type from; anndata accepts an empty array.
  if (values.length === 0) obj.create_attribute(name, new Float64Array(0), [0], "<d");
  else obj.create_attribute(name, values, [values.length], "S");
}

/** A dataframe element: `_index`, `column-order` and one element per column. */
export function writeDataFrame(parent: H5Group, name: string, df: DataFrame, ctx: Ctx): void {
  const g = parent.create_group(name);
  setEncoding(g, "dataframe", "0.2.0");
  g.create_attribute("_index", "_index");
  writeStringAttr(g, "column-order", [...df.columns.keys()]);
  writeStrings(g, "_index", df.index);
  for (const [k, col] of df.columns) {
    if (columnLength(col) !== df.index.length) {
      throw new Error(
        `writeDataFrame: column ${k} has ${columnLength(col)} rows, index ${df.index.length}`,
      );
    }
    writeColumn(g, k, col, ctx);
  }
}

/** A CSR matrix element (int32 indices; int64 row pointers when nnz needs them). */
export function writeCsr(parent: H5Group, name: string, m: Csr, compression: number): void {
  const g = parent.create_group(name);
  setEncoding(g, "csr_matrix", "0.1.0");
  g.create_attribute("shape", new BigInt64Array([BigInt(m.nRows), BigInt(m.nCols)]), [2], "<q");
  const n = nnz(m);
  writeNumeric(g, "data", m.data.subarray(0, n), { compression });
  // anndata uses int32 indices; int64 row pointers only when nnz needs them.
  writeNumeric(g, "indices", new Int32Array(m.indices.buffer, m.indices.byteOffset, n), {
    compression,
  });
  const indptr = n < 2 ** 31
    ? new Int32Array(m.indptr.buffer, m.indptr.byteOffset, m.nRows + 1)
    : BigInt64Array.from(m.indptr, (v) => BigInt(v));
  writeNumeric(g, "indptr", indptr, { compression });
}

/** An empty `dict` element (a group anndata reads as a mapping). */
export function dictGroup(parent: H5Group, name: string): H5Group {
  const g = parent.create_group(name);
  setEncoding(g, "dict", "0.1.0");
  return g;
}

/** `uns` values: strings, numbers (integers stay integers), lists and nested dicts. */
export function writeUns(g: H5Group, uns: Record<string, UnsValue>, compression: number): void {
  for (const [k, v] of Object.entries(uns)) {
    if (typeof v === "string") {
      setEncoding(g.create_dataset({ name: k, data: v, dtype: "S" }), "string", "0.2.0");
    } else if (typeof v === "number" || typeof v === "boolean") {
      // Integers (seeds, counts) stay integers when read back; booleans become 0/1.
      const x = Number(v);
      const data = Number.isSafeInteger(x) ? new BigInt64Array([BigInt(x)]) : new Float64Array([x]);
      const d = g.create_dataset({ name: k, data, shape: [] });
      setEncoding(d, "numeric-scalar", "0.2.0");
    } else if (Array.isArray(v)) {
      if (v.every((x) => typeof x === "string")) writeStrings(g, k, v as string[]);
      else writeArray(g, k, Float64Array.from(v as number[]), [v.length], compression);
    } else writeUns(dictGroup(g, k), v, compression);
  }
}
