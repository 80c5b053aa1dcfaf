/**
 * Writing predictions where users want them: a copy of the query `.h5ad` with scNym's fields
 * (`obs/scNym`, `obs/scNym_confidence`, `obsm/X_scnym`, `obsm/scNym_probabilities`, run facts
 * in `uns/scNym_run`; `obs/scNym_split` from training), or a CSV/TSV table.
 */
import { type RunInfo, writePredictions } from "../io/h5ad_write.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { writePredictionTable } from "../io/table.ts";
import { argmaxRows } from "../util/argmax.ts";
import type { CellPredictions } from "./predict.ts";

/** The writers' view of a prediction: class indices, plus the label column when it differs. */
export function writablePrediction(p: CellPredictions): PredictionOutputs {
  const predicted = argmaxRows(p.probabilities, p.confidence.length, p.classes.length);
  const categories = [...p.classes];
  const codes = Int32Array.from(p.labels, (l, i) => {
    if (l === p.classes[predicted[i]]) return predicted[i];
    let k = categories.indexOf(l);
    if (k < 0) k = categories.push(l) - 1;
    return k;
  });
  const out: PredictionOutputs = {
    classes: p.classes,
    predicted,
    confidence: p.confidence,
    probabilities: p.probabilities,
    embedding: { data: p.embedding, dim: p.hidden },
  };
  if (categories.length > p.classes.length) out.labels = { codes, categories };
  return out;
}

/** True when `path` names a CSV/TSV table rather than an `.h5ad`. */
export function isTablePath(path: string): boolean {
  return /\.(csv|tsv|txt)$/i.test(path);
}

/**
 * Writes predictions of every cell of `sourceFile` (in its order) to `outPath`: a table for
 * .csv/.tsv/.txt, else a copy of the source `.h5ad` with the predictions added. `split` is each
 * cell's training split (see `PredictionOutputs.split`). Returns warnings.
 */
export async function writePredictionOutput(
  outPath: string,
  sourceFile: string,
  cellNames: string[],
  pred: CellPredictions,
  run: RunInfo,
  opts: { overwrite?: boolean; split?: string[] } = {},
): Promise<string[]> {
  const w = writablePrediction(pred);
  if (opts.split) w.split = opts.split;
  if (isTablePath(outPath)) {
    await writePredictionTable(outPath, cellNames, w, { overwrite: opts.overwrite });
    return [];
  }
  return (await writePredictions(sourceFile, outPath, w, run, { overwrite: opts.overwrite }))
    .warnings;
}
