/**
 * One entry point for every expression input a user may hand us: an `.h5ad`, a 10x Genomics
 * `.h5`, or a 10x MatrixMarket folder (with an optional labels CSV/TSV joined on barcodes).
 */
import { ScnymError } from "../util/errors.ts";
import type { AnnData } from "./anndata.ts";
import { checkHdf5File, openH5 } from "./h5.ts";
import { H5adFile } from "./h5ad_read.ts";
import { attachLabels, readTenxH5, readTenxMtxDir, tenxGroup } from "./tenx.ts";

/** An input read for training or prediction, plus the other matrices the file offers. */
export interface ExpressionInput {
  data: AnnData;
  format: "h5ad" | "10x-h5" | "10x-mtx";
  /** Other matrices in the file (`raw/X`, `layers/...`), suggested when `X` is unusable. */
  alternatives: string[];
}

/** Which kind of input `path` is; a clear error when it is missing or not HDF5. */
export async function detectFormat(path: string): Promise<ExpressionInput["format"]> {
  const st = await Deno.stat(path).catch(() => null);
  if (!st) throw new ScnymError(`input file not found: ${path}`);
  if (st.isDirectory) return "10x-mtx";
  checkHdf5File(path);
  const probe = await openH5(path, "r");
  const isTenx = !probe.get("obs") && tenxGroup(probe) !== null;
  probe.close();
  return isTenx ? "10x-h5" : "h5ad";
}

/**
 * Reads `path` (matrix `matrix` of an `.h5ad`, default `X`); `labels` adds the columns of a
 * CSV/TSV keyed by cell barcode to `obs` (mainly for 10x inputs, which carry no annotations).
 */
export async function readExpression(
  path: string,
  opts: { matrix?: string; labels?: string } = {},
): Promise<ExpressionInput> {
  const format = await detectFormat(path);
  let out: ExpressionInput;
  if (format === "10x-mtx") {
    out = { data: await readTenxMtxDir(path), format, alternatives: [] };
  } else if (format === "10x-h5") {
    out = { data: await readTenxH5(path), format, alternatives: [] };
  } else {
    const h = await H5adFile.open(path);
    try {
      const data = h.read(opts.matrix ?? "X");
      out = { data, format, alternatives: h.matrixNames().filter((m) => m !== data.matrix) };
    } finally {
      h.close();
    }
  }
  if (opts.matrix && out.format !== "h5ad" && opts.matrix !== "X") {
    throw new ScnymError(`${path}: --matrix applies to .h5ad files; ${out.format} has one matrix`);
  }
  if (opts.labels) await attachLabels(out.data, opts.labels);
  return out;
}
