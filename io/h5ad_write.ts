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
import { ScnymError } from "../util/errors.ts";
import type { Csr } from "../data/csr.ts";
import { categoricalColumn, type Column, type DataFrame, type UnsValue } from "./anndata.ts";
import { checkHdf5File, openH5, setEncoding } from "./h5.ts";
import { BoolAttrWriter } from "./h5_bool_attrs.ts";
import {
  type Ctx,
  dictGroup,
  samePath,
  writeArray,
  writeCsr,
  writeDataFrame,
  type WriteOptions,
  writeUns,
  writeViaTemp,
} from "./h5ad_elements.ts";
import {
  H5adPredictionWriter,
  inPlaceObstacle,
  type PredictionKeys,
  refuseOutputClash,
  type RunInfo,
} from "./h5ad_predictions.ts";
import { readH5ad } from "./h5ad_read.ts";
import type { PredictionOutputs } from "./predictions.ts";

export type { WriteOptions } from "./h5ad_elements.ts";
export type { PredictionKeys, RunInfo } from "./h5ad_predictions.ts";

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
// predictions (streamed by H5adPredictionWriter; legacy and libver-latest queries rewritten whole)

function checkPredictions(p: PredictionOutputs, n: number, file: string): void {
  const c = p.classes.length;
  const bad = p.predicted.length !== n || p.confidence.length !== n ||
    p.probabilities.length !== n * c || (p.split && p.split.length !== n) ||
    (p.novelty && p.novelty.length !== n) ||
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
  const warnings: string[] = [];
  const labelCol: Column = {
    kind: "categorical",
    codes: preds.labels?.codes ?? preds.predicted,
    categories: preds.labels?.categories ?? preds.classes,
  };
  const uns: Record<string, UnsValue> = { ...run };
  const splitCol = preds.split && categoricalColumn(preds.split);

  const why = await inPlaceObstacle(queryPath);
  if (why) {
    await refuseOutputClash(queryPath, key);
    const ad = await readH5ad(queryPath);
    checkPredictions(preds, ad.X.nRows, queryPath);
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
    if (preds.novelty) {
      ad.obs.columns.set(`${key}_novelty`, {
        kind: "numeric",
        values: Float64Array.from(preds.novelty),
      });
    }
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

  await writeViaTemp(outPath, !!opts.overwrite, async (tmp) => {
    const w = await H5adPredictionWriter.copyOf(queryPath, tmp, {
      key,
      classes: preds.classes,
      embeddingDim: preds.embedding?.dim ?? 0,
      split: !!preds.split,
      novelty: !!preds.novelty,
      run,
      compression: opts.compression,
    });
    try {
      checkPredictions(preds, w.nCells, queryPath);
      w.write(0, preds);
    } catch (e) {
      w.abort();
      throw e;
    }
    await w.close();
  });
  return { warnings };
}
