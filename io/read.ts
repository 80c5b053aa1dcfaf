/**
 * One entry point for every expression input a user may hand us: any of `INPUT_FORMATS` (an
 * `.h5ad`, a 10x Genomics `.h5`, a 10x MatrixMarket folder), with an optional labels CSV/TSV
 * joined on barcodes.
 */
import { ScnymError } from "../util/errors.ts";
import type { AnnData } from "./anndata.ts";
import { detectFormat, type InputFormatName } from "./formats.ts";
import { attachLabels } from "./tenx.ts";

/** An input read for training or prediction, plus the other matrices the file offers. */
export interface ExpressionInput {
  data: AnnData;
  format: InputFormatName;
  /** Other matrices in the file (`raw/X`, `layers/...`), suggested when `X` is unusable. */
  alternatives: string[];
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
  const { data, alternatives } = await format.read(path, opts.matrix);
  if (opts.matrix && format.name !== "h5ad" && opts.matrix !== "X") {
    throw new ScnymError(`${path}: --matrix applies to .h5ad files; ${format.name} has one matrix`);
  }
  if (opts.labels) await attachLabels(data, opts.labels);
  return { data, format: format.name, alternatives };
}
