/**
 * Predictions streamed into an `.h5ad`, chunk by chunk, so memory does not grow with the cells:
 * the per-cell matrices (`obsm/X_scnym`, `obsm/scNym_probabilities`) are datasets sized once at
 * the start and filled by row slices; the small per-cell columns (label codes, confidence: 5
 * bytes a cell) are kept and written at `close`, with the class names and the run facts.
 *
 * Two kinds of file:
 * - `copyOf`: a byte copy of the query (the OS copies it; nothing is loaded) extended in place,
 *   so everything else in the user's file survives untouched;
 * - `fresh`: a new AnnData holding only the predicted cells' names and the outputs (no X), the
 *   part file of a sharded run (`scnym predict --shard`), which `anndata.concat` also reads.
 *
 * The caller writes to a temporary path (see `writeViaTemp`) and renames it when `close` returns.
 */
import { ScnymError } from "../util/errors.ts";
import { hostFs } from "../util/host_fs.ts";
import { categoricalColumn, type Column, dataFrame, type UnsValue } from "./anndata.ts";
import {
  createRowDataset,
  getDataset,
  type H5Dataset,
  type H5File,
  h5Get,
  type H5Group,
  isGroup,
  openH5,
  setEncoding,
  strAttr,
  superblockVersion,
  writeRows,
} from "./h5.ts";
import { BoolAttrWriter } from "./h5_bool_attrs.ts";
import {
  type Ctx,
  dictGroup,
  writeArray,
  writeColumn,
  writeDataFrame,
  writeStringAttr,
  writeStrings,
  writeUns,
} from "./h5ad_elements.ts";
import type { PredictionOutputs } from "./predictions.ts";

/** Run metadata stored in `uns/<key>_run` (seed, config, versions, normalisation, overlap, ...). */
export type RunInfo = Record<string, string | number | boolean>;

/** Where the outputs go inside the file: `obs/<key>`, `obs/<key>_confidence`, ... */
export interface PredictionKeys {
  /** Default `scNym`. */
  key?: string;
}

/** What a prediction file will hold, known before the first cell is predicted. */
export interface PredictionFileSpec extends PredictionKeys {
  classes: string[];
  /** Width of the embedding written to `obsm/X_<key>`; 0 writes none. */
  embeddingDim: number;
  /** Whether the chunks carry each cell's training split (`obs/<key>_split`). */
  split?: boolean;
  /** Whether the chunks carry each cell's novelty score (`obs/<key>_novelty`). */
  novelty?: boolean;
  run: RunInfo;
  /** gzip level of the numeric datasets, 0 for none (default 4). */
  compression?: number;
  /** More `uns` entries to write with the run (e.g. a shard's range, saliency tables). */
  uns?: Record<string, UnsValue>;
  /** Dense row-major matrices to store under `uns` (rows x cols), e.g. per-class saliency. */
  unsMatrices?: Record<string, { data: Float32Array; cols: number }>;
}

/** The elements a prediction adds to a file, keyed by their path in the file. */
export function predictionElements(key: string) {
  return {
    label: `obs/${key}`,
    confidence: `obs/${key}_confidence`,
    split: `obs/${key}_split`,
    novelty: `obs/${key}_novelty`,
    embedding: `obsm/X_${key.toLowerCase()}`,
    probabilities: `obsm/${key}_probabilities`,
    /** Where earlier versions wrote the probabilities (a clash all the same). */
    unsProbabilities: `uns/${key}_probabilities`,
    classNames: `uns/${key}_class_names`,
    run: `uns/${key}_run`,
  };
}

/** Rows of the obs index of an open (current-layout) `.h5ad`. */
function obsIndexLength(f: H5Group, file: string): number {
  const obs = f.get("obs") as H5Group;
  const name = strAttr(obs, "_index") ?? "_index";
  const d = obs.get(name);
  if (!d || isGroup(obs, name)) throw new ScnymError(`${file}: obs has no index dataset "${name}"`);
  return getDataset(f as H5File, `obs/${name}`).shape?.[0] ?? 0;
}

/**
 * Why `copyOf` cannot extend `query` in place, or null when it can: that needs the current
 * anndata layout (obs a group) in a file whose new objects get version-1 headers (superblock 0/1,
 * what h5py writes by default; see BoolAttrWriter). Other files are rewritten whole instead.
 */
export async function inPlaceObstacle(query: string): Promise<string | null> {
  const probe = await openH5(query, "r");
  try {
    if (!isGroup(probe, "obs")) return "uses the pre-0.7 anndata layout";
  } finally {
    probe.close();
  }
  return superblockVersion(query) > 1
    ? "uses a newer HDF5 format (libver latest) that we cannot extend in place"
    : null;
}

/** Refuses a query that already holds an output element under `key` (an earlier run's output). */
export async function refuseOutputClash(query: string, key: string): Promise<void> {
  const probe = await openH5(query, "r");
  try {
    const clash = Object.values(predictionElements(key)).find((p) => h5Get(probe, p) !== null);
    if (clash) {
      throw new ScnymError(
        `${query} already has ${clash} (output of an earlier run?); choose another output ` +
          `key or predict from the original file`,
      );
    }
  } finally {
    probe.close();
  }
}

/** Writes the predictions of a file's cells in chunks; see the module comment. */
export class H5adPredictionWriter {
  readonly nCells: number;
  readonly #f: H5File;
  readonly #spec: PredictionFileSpec;
  readonly #key: string;
  readonly #ctx: Ctx;
  readonly #tmp: string;
  readonly #probs: H5Dataset;
  readonly #emb: H5Dataset | null;
  readonly #codes: Int32Array;
  readonly #confidence: Float32Array;
  readonly #split: string[] | null;
  readonly #novelty: Float32Array | null;
  /** Label categories: the classes, then other labels (`Unknown`) in order of first use. */
  readonly #categories: string[];
  #written = 0;

  private constructor(f: H5File, tmp: string, nCells: number, spec: PredictionFileSpec) {
    this.#f = f;
    this.#tmp = tmp;
    this.nCells = nCells;
    this.#spec = spec;
    this.#key = spec.key ?? "scNym";
    const level = spec.compression ?? 4;
    this.#ctx = { compression: level, bools: new BoolAttrWriter() };
    this.#codes = new Int32Array(nCells);
    this.#confidence = new Float32Array(nCells);
    this.#split = spec.split ? new Array(nCells).fill("") : null;
    this.#novelty = spec.novelty ? new Float32Array(nCells) : null;
    this.#categories = [...spec.classes];
    const el = predictionElements(this.#key);
    const obsm = isGroup(f, "obsm") ? f.get("obsm") as H5Group : dictGroup(f, "obsm");
    const f32 = new Float32Array(0);
    this.#emb = spec.embeddingDim > 0
      ? createRowDataset(obsm, el.embedding.slice(5), f32, [nCells, spec.embeddingDim], level)
      : null;
    this.#probs = createRowDataset(
      obsm,
      el.probabilities.slice(5),
      f32,
      [nCells, spec.classes.length],
      level,
    );
    for (const d of [this.#emb, this.#probs]) if (d) setEncoding(d, "array", "0.2.0");
  }

  /**
   * Copies `query` to `tmp` and opens the copy for the predictions of all its cells (refusing a
   * query that already holds the outputs).
   */
  static async copyOf(
    query: string,
    tmp: string,
    spec: PredictionFileSpec,
  ): Promise<H5adPredictionWriter> {
    await refuseOutputClash(query, spec.key ?? "scNym");
    const probe = await openH5(query, "r");
    let nCells: number;
    try {
      nCells = obsIndexLength(probe, query);
    } finally {
      probe.close();
    }
    await hostFs().copyFile(query, tmp);
    return new H5adPredictionWriter(await openH5(tmp, "a"), tmp, nCells, spec);
  }

  /** A fresh file at `tmp` for the cells `cellNames` (obs index, outputs, empty var, no X). */
  static async fresh(
    tmp: string,
    cellNames: string[],
    spec: PredictionFileSpec,
  ): Promise<H5adPredictionWriter> {
    const f = await openH5(tmp, "w");
    setEncoding(f, "anndata", "0.1.0");
    const ctx: Ctx = { compression: spec.compression ?? 4, bools: new BoolAttrWriter() };
    writeDataFrame(f, "obs", dataFrame(cellNames), ctx);
    writeDataFrame(f, "var", dataFrame([]), ctx);
    for (const k of ["layers", "obsp", "varm", "varp", "uns"]) dictGroup(f, k);
    return new H5adPredictionWriter(f, tmp, cellNames.length, spec);
  }

  /** Writes the predictions of cells `first ..` (`part` holds consecutive cells). */
  write(first: number, part: PredictionOutputs): void {
    const n = part.predicted.length;
    const C = this.#spec.classes.length;
    if (first < 0 || first + n > this.nCells || part.probabilities.length !== n * C) {
      throw new Error(`H5adPredictionWriter: rows [${first}, ${first + n}) do not fit`);
    }
    if (n === 0) return;
    writeRows(this.#probs, first, part.probabilities, C);
    if (this.#emb) {
      if (part.embedding?.dim !== this.#spec.embeddingDim) {
        throw new Error("H5adPredictionWriter: embedding width differs from the file's");
      }
      writeRows(this.#emb, first, part.embedding.data, this.#spec.embeddingDim);
    }
    this.#confidence.set(part.confidence, first);
    if (this.#novelty) {
      if (part.novelty?.length !== n) throw new Error("H5adPredictionWriter: novelty missing");
      this.#novelty.set(part.novelty, first);
    }
    for (let i = 0; i < n; i++) {
      const k = part.predicted[i];
      if (!(k >= 0 && k < C)) throw new Error(`writePredictions: class index ${k} outside ${C}`);
      let code = k;
      if (part.labels) {
        const label = part.labels.categories[part.labels.codes[i]];
        code = this.#categories.indexOf(label);
        if (code < 0) code = this.#categories.push(label) - 1;
      }
      this.#codes[first + i] = code;
      if (this.#split) this.#split[first + i] = part.split?.[i] ?? "";
    }
    this.#written += n;
  }

  /** Writes the label and confidence columns, class names and run facts; closes the file. */
  async close(): Promise<void> {
    if (this.#written !== this.nCells) {
      this.#f.close();
      throw new Error(`H5adPredictionWriter: ${this.#written} of ${this.nCells} cells written`);
    }
    const { key, compression } = { key: this.#key, compression: this.#ctx.compression };
    const spec = this.#spec;
    try {
      const obs = this.#f.get("obs") as H5Group;
      const label: Column = {
        kind: "categorical",
        codes: this.#codes,
        categories: this.#categories,
      };
      writeColumn(obs, key, label, this.#ctx);
      writeArray(obs, `${key}_confidence`, this.#confidence, [this.nCells], compression);
      if (this.#split) writeColumn(obs, `${key}_split`, categoricalColumn(this.#split), this.#ctx);
      if (this.#novelty) {
        writeArray(obs, `${key}_novelty`, this.#novelty, [this.nCells], compression);
      }
      const order = obs.attrs["column-order"]?.json_value;
      const cols = Array.isArray(order) ? order.map(String) : [];
      if (obs.attrs["column-order"]) obs.delete_attribute("column-order");
      const added = [
        key,
        `${key}_confidence`,
        ...(this.#split ? [`${key}_split`] : []),
        ...(this.#novelty ? [`${key}_novelty`] : []),
      ];
      writeStringAttr(obs, "column-order", [...cols, ...added]);
      const f = this.#f;
      const uns = isGroup(f, "uns") ? f.get("uns") as H5Group : dictGroup(f, "uns");
      writeStrings(uns, `${key}_class_names`, spec.classes);
      writeUns(dictGroup(uns, `${key}_run`), spec.run, compression);
      writeUns(uns, spec.uns ?? {}, compression);
      for (const [k, m] of Object.entries(spec.unsMatrices ?? {})) {
        writeArray(uns, k, m.data, [m.data.length / m.cols, m.cols], compression);
      }
    } finally {
      this.#f.close();
    }
    await this.#ctx.bools.patch(this.#tmp);
  }

  /** Closes the file without finishing it (the caller removes the temporary file). */
  abort(): void {
    this.#f.close();
  }
}
