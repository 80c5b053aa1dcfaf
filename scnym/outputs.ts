/**
 * Writing predictions where users want them: a copy of the query `.h5ad` with scNym's fields
 * (`obs/scNym`, `obs/scNym_confidence`, `obs/scNym_novelty`, `obsm/X_scnym`, `obsm/scNym_probabilities`, run facts
 * in `uns/scNym_run`; `obs/scNym_split` from training), or a CSV/TSV table; all at once
 * (`writePredictionOutput`) or streamed chunk by chunk (`streamPredictionOutput`).
 */
import type { UnsValue } from "../io/anndata.ts";
import { samePath, writeViaTemp } from "../io/h5ad_elements.ts";
import { H5adPredictionWriter, inPlaceObstacle } from "../io/h5ad_predictions.ts";
import { type RunInfo, writePredictions } from "../io/h5ad_write.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { PredictionTableWriter, writePredictionTable } from "../io/table.ts";
import { argmaxRows } from "../util/argmax.ts";
import { ScnymError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { type CellPredictions, concatPredictions } from "./predict.ts";

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
  if (p.novelty) out.novelty = p.novelty;
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

/** Receives the predictions of consecutive cells, `first` counted from the output's first cell. */
export type PredictionSink = (first: number, p: CellPredictions) => Promise<void>;

/** What `streamPredictionOutput` writes, known before the first cell is predicted. */
export interface StreamedOutput {
  classes: string[];
  /** The output's cells, in order. */
  cellNames: string[];
  /** `.h5ad` outputs: the query to copy and extend (absent: a fresh file of `cellNames` only). */
  source?: string;
  /** Width of the embedding to store in `obsm/X_scnym` (0: none). */
  embeddingDim: number;
  /** Whether every chunk carries the novelty score (`obs/scNym_novelty`; the model has one). */
  novelty?: boolean;
  run: RunInfo;
  /** More `uns` entries for `.h5ad` outputs (e.g. a shard's range). */
  uns?: Record<string, UnsValue>;
  overwrite?: boolean;
}

/**
 * Streams predictions to `outPath` (a table for .csv/.tsv/.txt, else an `.h5ad`): opens the
 * writer on a temporary file, lets `produce` push chunks into the sink, finishes and renames, so
 * an interrupted or failed run leaves nothing under `outPath`. A query that cannot be extended in
 * place (legacy layout, libver latest) is collected in memory and rewritten whole instead.
 * Returns warnings.
 */
export async function streamPredictionOutput(
  outPath: string,
  out: StreamedOutput,
  produce: (sink: PredictionSink) => Promise<void>,
): Promise<string[]> {
  const overwrite = !!out.overwrite;
  const writable = (p: CellPredictions) => {
    const w = writablePrediction(p);
    if (!out.embeddingDim) delete w.embedding;
    return w;
  };
  if (isTablePath(outPath)) {
    await writeFileAtomic(outPath, async (tmp) => {
      const w = await PredictionTableWriter.open(tmp, out.cellNames, {
        classes: out.classes,
        novelty: !!out.novelty,
        sepFrom: outPath,
      });
      try {
        await produce((first, p) => w.write(first, writable(p)));
      } finally {
        w.close();
      }
    }, { overwrite });
    return [];
  }
  if (out.source && !overwrite && await samePath(out.source, outPath)) {
    throw new ScnymError(
      `${outPath} is the input file; refusing to overwrite it (use --overwrite)`,
    );
  }
  if (out.source && await inPlaceObstacle(out.source)) {
    const parts: CellPredictions[] = [];
    await produce((_first, p) => Promise.resolve(void parts.push(p)));
    return await writePredictionOutput(
      outPath,
      out.source,
      out.cellNames,
      concatPredictions(parts),
      out.run,
      { overwrite },
    );
  }
  const spec = {
    classes: out.classes,
    embeddingDim: out.embeddingDim,
    novelty: !!out.novelty,
    run: out.run,
    uns: out.uns,
  };
  await writeViaTemp(outPath, overwrite, async (tmp) => {
    const w = out.source
      ? await H5adPredictionWriter.copyOf(out.source, tmp, spec)
      : await H5adPredictionWriter.fresh(tmp, out.cellNames, spec);
    try {
      await produce((first, p) => Promise.resolve(w.write(first, writable(p))));
    } catch (e) {
      w.abort();
      throw e;
    }
    await w.close();
  });
  return [];
}
