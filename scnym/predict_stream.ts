/**
 * Prediction of a query in bounded memory: the query's rows are read in chunks (about 4M stored
 * values each), normalised, aligned to the model's genes and predicted, and each chunk's results
 * go to the caller (a streaming writer) before the next chunk is read. Memory follows one chunk,
 * not the number of cells; only the cell names (and, for `.h5ad` outputs, 5 bytes a cell) stay.
 *
 * `shard` restricts the work to rows [K*n/N, (K+1)*n/N) of the n cells, so N processes (a Slurm
 * job array, a Kubernetes Indexed Job) can label one query together. Every step is row-local, so
 * a cell's outputs do not depend on which shard or chunk it was in (tests/shard_test.ts).
 */
import {
  alignGenes,
  type AlignOptions,
  applyAlignment,
  type GeneAlignment,
} from "../data/align.ts";
import { type Csr, sliceRows } from "../data/csr.ts";
import {
  checkFinite,
  checkStats,
  type MatrixOrigin,
  type Normalisation,
  normalisationFor,
  normaliseRows,
  ValueStats,
} from "../data/normalize.ts";
import type { DataFrame } from "../io/anndata.ts";
import { detectFormat } from "../io/formats.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import type { MatrixReader } from "../io/matrix_reader.ts";
import { readExpression } from "../io/read.ts";
import { Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { formatDuration, Progress } from "../util/progress.ts";
import { type CellPredictions, type LoadedModel, modelOf, predictCells } from "./predict.ts";

/** Shard `index` of `count` (0-based), as `--shard K/N` gives it. */
export interface Shard {
  index: number;
  count: number;
}

/** Parses `K/N` (0 <= K < N); a one-line usage error otherwise. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const [k, n] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || !(n >= 1) || !(k < n)) {
    throw new ScnymError(
      `--shard expects K/N with 0 <= K < N (shards counted from 0: 0/4 .. 3/4), got "${text}"`,
      2,
    );
  }
  return { index: k, count: n };
}

/** Rows [first, end) of shard `s` of `n` cells: consecutive, in order, covering all cells. */
export function shardRows(n: number, s: Shard): [number, number] {
  return [Math.floor(s.index * n / s.count), Math.floor((s.index + 1) * n / s.count)];
}

/** Options of `StreamingPrediction.open`. */
export interface StreamingPredictionOptions extends AlignOptions {
  /** A model file path, or a model already loaded on `rt`. */
  model: string | LoadedModel;
  query: string;
  matrix?: string;
  /** Labels CSV/TSV to attach to a 10x query (barcode column first). */
  queryLabels?: string;
  /** Overrides the model's own `Unknown` threshold (null: none). */
  unknownThreshold?: number | null;
  shard?: Shard;
  /** Stored values per chunk read from the query (default 2^22, about 32 MB of CSR). */
  chunkEntries?: number;
  rt?: Runtime;
  progress?: Progress;
}

/** Row chunks of a query, whatever its format. */
interface RowSource {
  nRows: number;
  nCols: number;
  chunks(start: number, end: number, entries: number): Iterable<[number, Csr]>;
  close(): void;
}

function h5adSource(h: H5adFile, r: MatrixReader): RowSource {
  return {
    nRows: r.nRows,
    nCols: r.nCols,
    chunks: (start, end, entries) => r.chunks({ start, end, entries }),
    close: () => h.close(),
  };
}

function memorySource(X: Csr): RowSource {
  return {
    nRows: X.nRows,
    nCols: X.nCols,
    *chunks(start, end, entries) {
      // 10x inputs are read whole by their readers; chunks are views of that matrix.
      const rows = Math.max(1, Math.floor(entries / Math.max(1, X.indptr[X.nRows] / X.nRows)));
      for (let a = start; a < end; a += rows) yield [a, sliceRows(X, a, Math.min(end, a + rows))];
    },
    close: () => {},
  };
}

/** A query opened for prediction: what it holds, how it is aligned and normalised, its shard. */
export class StreamingPrediction {
  readonly loaded: LoadedModel;
  readonly rt: Runtime;
  /** Names of the cells of the shard (all cells without one), in file order. */
  readonly cellNames: string[];
  /** The query's obs (every cell), for report columns. */
  readonly obs: DataFrame;
  /** Cells in the whole query. */
  readonly totalCells: number;
  /** Rows [first, end) of the query predicted here. */
  readonly rows: [number, number];
  readonly alignment: GeneAlignment;
  readonly normalisation: Normalisation;
  readonly warnings: string[];
  readonly threshold: number | null;
  readonly #source: RowSource;
  readonly #entries: number;
  readonly #progress: Progress;

  private constructor(init: {
    loaded: LoadedModel;
    rt: Runtime;
    obs: DataFrame;
    rows: [number, number];
    alignment: GeneAlignment;
    normalisation: Normalisation;
    warnings: string[];
    threshold: number | null;
    source: RowSource;
    entries: number;
    progress: Progress;
  }) {
    this.loaded = init.loaded;
    this.rt = init.rt;
    this.obs = init.obs;
    this.totalCells = init.obs.index.length;
    this.rows = init.rows;
    this.cellNames = init.obs.index.slice(init.rows[0], init.rows[1]);
    this.alignment = init.alignment;
    this.normalisation = init.normalisation;
    this.warnings = init.warnings;
    this.threshold = init.threshold;
    this.#source = init.source;
    this.#entries = init.entries;
    this.#progress = init.progress;
  }

  /**
   * Loads the model, opens the query, aligns its genes (refusing below `minFraction`, default
   * 0.8) and scans the shard's values once to decide the normalisation (counts, log-normalised;
   * NaN/Inf and scaled data refused), reading one chunk at a time.
   */
  static async open(opts: StreamingPredictionOptions): Promise<StreamingPrediction> {
    const rt = opts.rt ?? await Runtime.create();
    const loaded = await modelOf(rt, opts.model);
    const { header } = loaded;
    const format = await detectFormat(opts.query);
    let source: RowSource;
    let obs: DataFrame;
    let genes: string[];
    let origin: MatrixOrigin;
    if (format.name === "h5ad" && !opts.queryLabels) {
      const h = await H5adFile.open(opts.query);
      try {
        const r = h.matrix(opts.matrix ?? "X");
        obs = h.obs();
        genes = h.var(r.info.name).index;
        if (obs.index.length !== r.nRows || genes.length !== r.nCols) {
          throw new ScnymError(
            `${opts.query}: ${r.info.name} is ${r.nRows} x ${r.nCols} but obs has ` +
              `${obs.index.length} rows and var ${genes.length}`,
          );
        }
        const alternatives = h.matrixNames().filter((m) => m !== r.info.name);
        origin = { file: opts.query, matrix: r.info.name, alternatives };
        source = h5adSource(h, r);
      } catch (e) {
        h.close();
        throw e;
      }
    } else {
      const input = await readExpression(opts.query, {
        matrix: opts.matrix,
        labels: opts.queryLabels,
      });
      const q = input.data;
      [obs, genes, source] = [q.obs, q.var.index, memorySource(q.X)];
      origin = { file: opts.query, matrix: q.matrix, alternatives: input.alternatives };
    }
    try {
      const rows = opts.shard ? shardRows(source.nRows, opts.shard) : [0, source.nRows] as [
        number,
        number,
      ];
      const entries = opts.chunkEntries ?? 1 << 22;
      // One pass over the shard's values: whether they are counts decides the normalisation.
      const stats = new ValueStats();
      for (const [first, c] of source.chunks(rows[0], rows[1], entries)) {
        stats.merge(checkFinite(c, origin, first));
      }
      checkStats(stats, [rows[1] - rows[0], source.nCols], origin);
      const { normalisation, warnings } = normalisationFor(stats, origin);
      if (normalisation !== header.normalisation) {
        warnings.push(
          `the model was trained on ${header.normalisation} data but the query is ` +
            `${normalisation}: predictions may be off`,
        );
      }
      const alignment = alignGenes(header.genes, genes, { queryName: opts.query, ...opts });
      const threshold = opts.unknownThreshold !== undefined
        ? opts.unknownThreshold
        : header.config.predict?.unknownThreshold ?? null;
      return new StreamingPrediction({
        loaded,
        rt,
        obs,
        rows,
        alignment,
        normalisation,
        warnings,
        threshold,
        source,
        entries,
        progress: opts.progress ?? new Progress({ quiet: true }),
      });
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /**
   * Predicts the shard's cells chunk by chunk, handing each chunk's predictions (and its model
   * input, for callers that keep it) to `write` with the chunk's first row counted from the
   * shard's start; progress with cells per second and ETA. `signal` stops between chunks with a
   * ScnymError. Returns the seconds spent.
   */
  async run(
    write: (first: number, p: CellPredictions, X: Csr) => Promise<void> | void,
    signal?: AbortSignal,
  ): Promise<number> {
    const { header, model } = this.loaded;
    const [a, b] = this.rows;
    const total = b - a;
    const progress = this.#progress;
    const quiet = new Progress({ quiet: true });
    progress.phase();
    for (const [first, chunk] of this.#source.chunks(a, b, this.#entries)) {
      if (signal?.aborted) throw new ScnymError("predict: interrupted; no output written", 130);
      const X = applyAlignment(normaliseRows(chunk, this.normalisation), this.alignment);
      const p = await predictCells(this.rt, model, X, {
        classes: header.classes,
        unknownThreshold: this.threshold,
        progress: quiet,
        calibration: this.loaded.calibration,
      });
      await write(first - a, p, X);
      const done = first + chunk.nRows - a;
      const rate = done / Math.max(1e-9, progress.elapsed());
      progress.update(
        `predicting: ${done}/${total} cells, ${rate.toFixed(0)} cells/s, ETA ${
          formatDuration(progress.eta(done, total))
        }`,
        done === total,
      );
    }
    progress.done();
    return progress.elapsed();
  }

  /** Closes the query file. */
  close(): void {
    this.#source.close();
  }
}
