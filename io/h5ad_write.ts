/**
 * Writing `.h5ad` files in the current anndata encoding (every element carries `encoding-type` /
 * `encoding-version`), so `anndata.read_h5ad` and scanpy open them:
 * - `writeH5ad`: a fresh file from an in-memory AnnData (CSR X, gzip), for the simulator and the
 *   large-file generator;
 * - `writePredictions`: a copy of the query file plus scNym's outputs (labels, confidence,
 *   embedding, probabilities, run metadata). The copy is byte-for-byte, then the new elements are
 *   appended, so everything else in the user's file survives untouched.
 *
 * Both write to a temporary file next to the output and rename it into place; an existing output
 * (and in particular the input) is only replaced with `overwrite: true`.
 *
 * Limits (h5wasm cannot create HDF5 enum types): boolean columns are written as uint8 0/1, and
 * elements cannot be deleted, so an output key that already exists in the query is refused.
 */
import { type Csr, nnz } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import {
  categoricalColumn,
  type Column,
  columnLength,
  type DataFrame,
  type UnsValue,
} from "./anndata.ts";
import {
  checkHdf5File,
  condenseH5Error,
  getDataset,
  type H5File,
  h5Get,
  type H5Group,
  isGroup,
  openH5,
  setEncoding,
  strAttr,
  superblockVersion,
  writeNumeric,
} from "./h5.ts";
import { BoolAttrWriter } from "./h5_bool_attrs.ts";
import { readH5ad } from "./h5ad_read.ts";
import type { PredictionOutputs } from "./predictions.ts";

/** Options shared by the writers. */
export interface WriteOptions {
  /** Replace an existing output file (default false: refuse). */
  overwrite?: boolean;
  /** gzip level for numeric datasets, 0 for none (default 4, like anndata's `compression="gzip"`). */
  compression?: number;
}

async function samePath(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false;
  }
}

/** `writeFileAtomic` with `fn(tmp)` creating the file; HDF5 failures condensed to one line. */
async function writeViaTemp(
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

function writeStrings(g: H5Group, name: string, values: string[]): void {
  // Variable-length UTF-8 strings, as anndata writes them (h5wasm cannot compress vlen data).
  const d = g.create_dataset({ name, data: values, shape: [values.length], dtype: "S" });
  setEncoding(d, "string-array", "0.2.0");
}

function writeArray(
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
interface Ctx {
  compression: number;
  bools: BoolAttrWriter;
}

function writeColumn(g: H5Group, name: string, col: Column, ctx: Ctx): void {
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

function writeStringAttr(obj: H5Group, name: string, values: string[]): void {
  // An empty string list has no element to infer a type from; anndata accepts an empty array.
  if (values.length === 0) obj.create_attribute(name, new Float64Array(0), [0], "<d");
  else obj.create_attribute(name, values, [values.length], "S");
}

function writeDataFrame(parent: H5Group, name: string, df: DataFrame, ctx: Ctx): void {
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

function writeCsr(parent: H5Group, name: string, m: Csr, compression: number): void {
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

function dictGroup(parent: H5Group, name: string): H5Group {
  const g = parent.create_group(name);
  setEncoding(g, "dict", "0.1.0");
  return g;
}

function writeUns(g: H5Group, uns: Record<string, UnsValue>, compression: number): void {
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

/** A fresh AnnData to write: CSR X, dataframes, optional embeddings and `uns`. */
export interface WritableAnnData {
  X: Csr;
  obs: DataFrame;
  var: DataFrame;
  obsm?: Record<string, { data: Float32Array; cols: number }>;
  uns?: Record<string, UnsValue>;
  /** Dense row-major matrices stored under `uns` (e.g. class probabilities), rows = cells. */
  unsMatrices?: Record<string, { data: Float32Array; cols: number }>;
}

/**
 * Writes `ad` as a new `.h5ad` (anndata 0.8 encoding, gzip-compressed numeric data, streamed so
 * the wasm heap holds one slice at a time).
 */
export async function writeH5ad(
  path: string,
  ad: WritableAnnData,
  opts: WriteOptions = {},
): Promise<void> {
  const { X } = ad;
  if (ad.obs.index.length !== X.nRows || ad.var.index.length !== X.nCols) {
    throw new Error(
      `writeH5ad: X is ${X.nRows} x ${X.nCols} but obs has ${ad.obs.index.length} rows and var ` +
        `${ad.var.index.length}`,
    );
  }
  const level = opts.compression ?? 4;
  await writeViaTemp(path, !!opts.overwrite, async (tmp) => {
    const ctx: Ctx = { compression: level, bools: new BoolAttrWriter() };
    const f = await openH5(tmp, "w");
    try {
      setEncoding(f, "anndata", "0.1.0");
      // Dataframes first: the boolean-attribute patch then finds its placeholders early on.
      writeDataFrame(f, "obs", ad.obs, ctx);
      writeDataFrame(f, "var", ad.var, ctx);
      writeCsr(f, "X", X, level);
      const obsm = dictGroup(f, "obsm");
      for (const [k, e] of Object.entries(ad.obsm ?? {})) {
        writeArray(obsm, k, e.data, [X.nRows, e.cols], level);
      }
      for (const k of ["layers", "obsp", "varm", "varp"]) dictGroup(f, k);
      const uns = dictGroup(f, "uns");
      writeUns(uns, ad.uns ?? {}, level);
      for (const [k, e] of Object.entries(ad.unsMatrices ?? {})) {
        writeArray(uns, k, e.data, [X.nRows, e.cols], level);
      }
    } finally {
      f.close();
    }
    await ctx.bools.patch(tmp);
  });
}

// ---------------------------------------------------------------------------------------------
// predictions

/** Run metadata stored in `uns/<key>_run` (seed, config, versions, normalisation, overlap, ...). */
export type RunInfo = Record<string, string | number | boolean>;

/** Where the outputs go inside the file: `obs/<key>`, `obs/<key>_confidence`, ... */
export interface PredictionKeys {
  /** Default `scNym`. */
  key?: string;
}

function checkPredictions(p: PredictionOutputs, n: number, file: string): void {
  const c = p.classes.length;
  const bad = p.predicted.length !== n || p.confidence.length !== n ||
    p.probabilities.length !== n * c || (p.split && p.split.length !== n) ||
    (p.embedding && p.embedding.data.length !== n * p.embedding.dim);
  if (bad) {
    throw new Error(`writePredictions: prediction arrays do not match the ${n} cells of ${file}`);
  }
  for (const k of p.predicted) {
    if (!(k >= 0 && k < c)) {
      throw new Error(`writePredictions: class index ${k} outside ${c} classes`);
    }
  }
}

function obsIndexLength(f: H5Group, file: string): number {
  const obs = f.get("obs") as H5Group;
  const name = strAttr(obs, "_index") ?? "_index";
  const d = obs.get(name);
  if (!d || isGroup(obs, name)) throw new ScnymError(`${file}: obs has no index dataset "${name}"`);
  return getDataset(f as H5File, `obs/${name}`).shape?.[0] ?? 0;
}

/** The elements a prediction adds to a file, keyed by their path in the file. */
function predictionElements(key: string) {
  return {
    label: `obs/${key}`,
    confidence: `obs/${key}_confidence`,
    split: `obs/${key}_split`,
    embedding: `obsm/X_${key.toLowerCase()}`,
    probabilities: `obsm/${key}_probabilities`,
    /** Where earlier versions wrote the probabilities (a clash all the same). */
    unsProbabilities: `uns/${key}_probabilities`,
    classNames: `uns/${key}_class_names`,
    run: `uns/${key}_run`,
  };
}

/**
 * Writes a copy of the query `.h5ad` at `outPath` with scNym's outputs added: `obs/scNym`
 * (categorical), `obs/scNym_confidence`, `obs/scNym_split` (when `preds.split` is given),
 * `obsm/X_scnym`, `obsm/scNym_probabilities` (cells x classes; class names in
 * `uns/scNym_class_names`) and `uns/scNym_run`. Refuses to replace the input or any existing
 * file unless `overwrite`, and refuses when the query already holds these keys (pick another
 * `key`). Legacy (pre-0.7) queries, and files in HDF5's newest format, are rewritten as a fresh
 * current-encoding file holding X, obs, var and the outputs (a warning says so).
 */
export async function writePredictions(
  queryPath: string,
  outPath: string,
  preds: PredictionOutputs,
  run: RunInfo,
  opts: WriteOptions & PredictionKeys = {},
): Promise<{ warnings: string[] }> {
  checkHdf5File(queryPath, "query file");
  if (!opts.overwrite && await samePath(queryPath, outPath)) {
    throw new ScnymError(
      `${outPath} is the input file; refusing to overwrite it (ask for overwrite)`,
    );
  }
  const key = opts.key ?? "scNym";
  const el = predictionElements(key);
  const level = opts.compression ?? 4;
  const warnings: string[] = [];
  const labelCol: Column = {
    kind: "categorical",
    codes: preds.labels?.codes ?? preds.predicted,
    categories: preds.labels?.categories ?? preds.classes,
  };
  const uns: Record<string, UnsValue> = { ...run };
  const splitCol = preds.split && categoricalColumn(preds.split);

  const probe = await openH5(queryPath, "r");
  let legacy: boolean;
  let nCells: number;
  try {
    legacy = !isGroup(probe, "obs");
    const clash = Object.values(el).find((p) => h5Get(probe, p) !== null);
    if (clash) {
      throw new ScnymError(
        `${queryPath} already has ${clash} (output of an earlier run?); choose another output key ` +
          `or predict from the original file`,
      );
    }
    nCells = legacy ? -1 : obsIndexLength(probe as H5Group, queryPath);
  } finally {
    probe.close();
  }

  // A byte copy can be extended only when new objects get version-1 headers (superblock 0/1,
  // what h5py writes by default); see BoolAttrWriter. Otherwise, and for the legacy layout,
  // write a fresh file.
  const modern = superblockVersion(queryPath) <= 1;
  if (legacy || !modern) {
    const ad = await readH5ad(queryPath);
    checkPredictions(preds, ad.X.nRows, queryPath);
    const why = legacy
      ? "uses the pre-0.7 anndata layout"
      : "uses a newer HDF5 format (libver latest) that we cannot extend in place";
    warnings.push(
      `${queryPath} ${why}: ${outPath} is a fresh file with X, obs, var and the predictions ` +
        `(other elements of the input are not carried over)`,
    );
    ad.obs.columns.set(key, labelCol);
    ad.obs.columns.set(`${key}_confidence`, {
      kind: "numeric",
      values: Float64Array.from(preds.confidence),
    });
    if (splitCol) ad.obs.columns.set(`${key}_split`, splitCol);
    const obsm: Record<string, { data: Float32Array; cols: number }> = {
      [`${key}_probabilities`]: { data: preds.probabilities, cols: preds.classes.length },
    };
    if (preds.embedding) {
      obsm[`X_${key.toLowerCase()}`] = { data: preds.embedding.data, cols: preds.embedding.dim };
    }
    await writeH5ad(outPath, {
      X: ad.X,
      obs: ad.obs,
      var: ad.var,
      obsm,
      uns: { ...ad.uns, [`${key}_class_names`]: preds.classes, [`${key}_run`]: uns },
    }, opts);
    return { warnings };
  }

  checkPredictions(preds, nCells, queryPath);
  await writeViaTemp(outPath, !!opts.overwrite, async (tmp) => {
    await Deno.copyFile(queryPath, tmp);
    await Deno.chmod(tmp, 0o644).catch(() => {});
    const ctx: Ctx = { compression: level, bools: new BoolAttrWriter() };
    const f = await openH5(tmp, "a");
    try {
      const obs = f.get("obs") as H5Group;
      writeColumn(obs, key, labelCol, ctx);
      writeArray(obs, `${key}_confidence`, preds.confidence, [nCells], level);
      if (splitCol) writeColumn(obs, `${key}_split`, splitCol, ctx);
      const order = obs.attrs["column-order"]?.json_value;
      const cols = Array.isArray(order) ? order.map(String) : [];
      if (obs.attrs["column-order"]) obs.delete_attribute("column-order");
      const added = [key, `${key}_confidence`, ...(splitCol ? [`${key}_split`] : [])];
      writeStringAttr(obs, "column-order", [...cols, ...added]);
      const obsm = isGroup(f, "obsm") ? f.get("obsm") as H5Group : dictGroup(f, "obsm");
      if (preds.embedding) {
        writeArray(obsm, el.embedding.slice(5), preds.embedding.data, [
          nCells,
          preds.embedding.dim,
        ], level);
      }
      writeArray(obsm, el.probabilities.slice(5), preds.probabilities, [
        nCells,
        preds.classes.length,
      ], level);
      const unsG = isGroup(f, "uns") ? f.get("uns") as H5Group : dictGroup(f, "uns");
      writeStrings(unsG, `${key}_class_names`, preds.classes);
      writeUns(dictGroup(unsG, `${key}_run`), uns, level);
    } finally {
      f.close();
    }
    await ctx.bools.patch(tmp);
  });
  return { warnings };
}
