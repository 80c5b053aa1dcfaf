/**
 * Reading predictions back: the `.h5ad` that `writePredictions` (io/h5ad_write.ts) writes and the
 * CSV/TSV table that `writePredictionTable` (io/table.ts) writes, for `scnym evaluate` and for
 * anyone scoring a run after the fact. Which of the two a file is comes from its first bytes (the
 * HDF5 signature), not its name.
 */
import { ScnymError } from "../util/errors.ts";
import { requireFile } from "../util/fs.ts";
import { cellText, type DataFrame, type UnsValue } from "./anndata.ts";
import { getDataset, h5Get, isDataset, readNumeric, readStrings, superblockVersion } from "./h5.ts";
import { H5adFile } from "./h5ad_read.ts";
import { readTable } from "./table.ts";

/** What the prediction writers (`.h5ad` and table) take, per cell: class indices and scores. */
export interface PredictionOutputs {
  /** Class names, in the model's order. */
  classes: string[];
  /** Predicted class index per cell. */
  predicted: Int32Array;
  /** Probability of the predicted class per cell. */
  confidence: Float32Array;
  /** Class probabilities, row-major cells x classes. */
  probabilities: Float32Array;
  /** The model's embedding, row-major cells x dim (optional). */
  embedding?: { data: Float32Array; dim: number };
  /**
   * The label column to write when it differs from `classes[predicted]`, e.g. with cells below
   * a confidence threshold labelled `Unknown` (codes index `categories`).
   */
  labels?: { codes: Int32Array; categories: string[] };
  /**
   * What each cell was in training (`train`, `early_stopping`, `validation`, `target`, or
   * `unused`), written by `scnym train --predictions` as `obs/<key>_split`.
   */
  split?: string[];
  /** Novelty score per cell (higher = more likely a type the reference lacks), as `obs/<key>_novelty`. */
  novelty?: Float32Array;
}

/** The prediction fields of a file, one entry per cell, in the file's cell order. */
export interface PredictionsFile {
  /** The path it was read from. */
  file: string;
  cellNames: string[];
  /** Predicted label per cell (as written: may be `Unknown` below a confidence threshold). */
  predicted: string[];
  /** Probability of the predicted class per cell. */
  confidence: Float32Array;
  /** Class probabilities, row-major cells x classes; absent when the file has none. */
  probabilities?: { classes: string[]; values: Float32Array };
  /** The model's embedding (`obsm/X_<key>`), row-major cells x dims; `.h5ad` only. */
  embedding?: { data: Float32Array; dims: number };
  /** The `.h5ad`'s obs (other columns: truth, domains); absent for tables. */
  obs?: DataFrame;
  /** `uns/<key>_run` of the prediction run; `.h5ad` only. */
  run?: Record<string, UnsValue>;
  /** Each cell's training split (`obs/<key>_split` or the table's column), when written. */
  split?: string[];
  /** The novelty score (`obs/<key>_novelty` or the table's column), when written. */
  novelty?: Float32Array;
}

/**
 * True when `path` is an HDF5 file by its signature (read it as `.h5ad`), false for anything else
 * (read it as CSV/TSV); a ScnymError naming `what` when `path` is not a file.
 */
export function isHdf5File(path: string, what = "input file"): boolean {
  requireFile(path, what);
  return superblockVersion(path) >= 0;
}

/**
 * Reads the predictions `writePredictions` or `writePredictionTable` wrote under `key` (the
 * prefix of the fields: `obs/<key>`, `obs/<key>_confidence`, ... or the table's `<key>` column).
 * A file without them is refused with one ScnymError line naming the file and the missing field.
 */
export async function readPredictionsFile(path: string, key = "scNym"): Promise<PredictionsFile> {
  return isHdf5File(path, "predictions file")
    ? await readPredictionsH5ad(path, key)
    : await readPredictionsTable(path, key);
}

/** Refuses empty predicted labels: a predictions file labels every cell. */
function checkLabels(file: string, field: string, cells: string[], labels: string[]): void {
  const i = labels.findIndex((l) => l === "");
  if (i >= 0) throw new ScnymError(`${file}: ${field} of cell "${cells[i]}" is empty`);
}

function parseNumber(file: string, text: string, where: string): number {
  const v = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(v)) {
    throw new ScnymError(`${file}: ${where} is "${text}", expected a number`);
  }
  return v;
}

/** `obs/<key>`, `obs/<key>_confidence`, and when present `uns/...` and `obsm/X_<key>`. */
async function readPredictionsH5ad(file: string, key: string): Promise<PredictionsFile> {
  const h = await H5adFile.open(file);
  try {
    const obs = h.obs();
    const n = obs.index.length;
    const label = obs.columns.get(key);
    const conf = obs.columns.get(`${key}_confidence`);
    if (!label || !conf) {
      const missing = !label ? key : `${key}_confidence`;
      throw new ScnymError(
        `${file}: obs has no column "${missing}"; expected the output of \`scnym predict\` ` +
          `(obs/${key}, obs/${key}_confidence; see --key)`,
      );
    }
    if (conf.kind !== "numeric") {
      throw new ScnymError(`${file}: obs/${key}_confidence holds ${conf.kind} values, not numbers`);
    }
    const predicted = obs.index.map((_, i) => cellText(label, i));
    checkLabels(file, `obs/${key}`, obs.index, predicted);
    const out: PredictionsFile = {
      file,
      cellNames: obs.index,
      predicted,
      confidence: Float32Array.from(conf.values),
      obs,
    };
    // Per cell in obsm (they follow when the AnnData is subset); earlier versions wrote uns.
    const probPath = [`obsm/${key}_probabilities`, `uns/${key}_probabilities`]
      .find((p) => isDataset(h.file, p));
    const namesPath = `uns/${key}_class_names`;
    if (probPath && isDataset(h.file, namesPath)) {
      const d = getDataset(h.file, probPath);
      const classes = readStrings(file, getDataset(h.file, namesPath));
      const shape = d.shape ?? [];
      if (shape.length !== 2 || shape[0] !== n || shape[1] !== classes.length) {
        throw new ScnymError(
          `${file}: ${probPath} is ${shape.join(" x ")}, expected ${n} cells x ` +
            `${classes.length} classes (${namesPath})`,
        );
      }
      out.probabilities = { classes, values: Float32Array.from(readNumeric(file, d), Number) };
    }
    const embPath = `obsm/X_${key.toLowerCase()}`;
    if (isDataset(h.file, embPath)) {
      const d = getDataset(h.file, embPath);
      const shape = d.shape ?? [];
      if (shape.length !== 2 || shape[0] !== n) {
        throw new ScnymError(`${file}: ${embPath} is ${shape.join(" x ")}, expected ${n} rows`);
      }
      out.embedding = { data: Float32Array.from(readNumeric(file, d), Number), dims: shape[1] };
    }
    const split = obs.columns.get(`${key}_split`);
    if (split) out.split = obs.index.map((_, i) => cellText(split, i));
    const novelty = obs.columns.get(`${key}_novelty`);
    if (novelty?.kind === "numeric") out.novelty = Float32Array.from(novelty.values);
    const run = h5Get(h.file, `uns/${key}_run`) ? h.uns()[`${key}_run`] : undefined;
    if (run && typeof run === "object" && !Array.isArray(run)) out.run = run;
    return out;
  } finally {
    h.close();
  }
}

/** `cell, <key>, confidence, p_<class>...`; the probability columns are optional. */
async function readPredictionsTable(file: string, key: string): Promise<PredictionsFile> {
  const t = await readTable(file, "predictions table");
  const col = (name: string) => {
    const j = t.header.indexOf(name);
    if (j < 0) {
      throw new ScnymError(
        `${file}: no "${name}" column; expected a table written by \`scnym predict\` ` +
          `(cell, ${key}, confidence, p_<class>...; see --key)`,
      );
    }
    return j;
  };
  const [jc, jl, jconf] = [col("cell"), col(key), col("confidence")];
  const pCols = t.header.map((h, j) => (h.startsWith("p_") ? j : -1)).filter((j) => j >= 0);
  const cellNames = t.rows.map((r) => r[jc]);
  const predicted = t.rows.map((r) => r[jl]);
  checkLabels(file, `column "${key}"`, cellNames, predicted);
  // Line numbers count the header as line 1, as an editor shows them.
  const confidence = Float32Array.from(
    t.rows,
    (r, i) => parseNumber(file, r[jconf], `confidence on line ${i + 2}`),
  );
  const out: PredictionsFile = { file, cellNames, predicted, confidence };
  const jSplit = t.header.indexOf(`${key}_split`);
  if (jSplit >= 0) out.split = t.rows.map((r) => r[jSplit]);
  const jNovelty = t.header.indexOf(`${key}_novelty`);
  if (jNovelty >= 0) {
    out.novelty = Float32Array.from(
      t.rows,
      (r, i) => parseNumber(file, r[jNovelty], `${key}_novelty on line ${i + 2}`),
    );
  }
  if (pCols.length) {
    const c = pCols.length;
    const values = new Float32Array(t.rows.length * c);
    t.rows.forEach((r, i) => {
      pCols.forEach((j, k) => {
        values[i * c + k] = parseNumber(file, r[j], `${t.header[j]} on line ${i + 2}`);
      });
    });
    out.probabilities = { classes: pCols.map((j) => t.header[j].slice(2)), values };
  }
  return out;
}
