/**
 * Delimited text: reading CSV/TSV (plain or gzip-compressed, RFC 4180 quoting) and writing the
 * predictions table (cell, label, confidence, one probability column per class).
 */
import { ScnymError } from "../util/errors.ts";
import { requireFile, writeFileAtomic } from "../util/fs.ts";
import type { PredictionOutputs } from "./predictions.ts";

/** The bytes of `path`, gunzipped on the fly when they start with the gzip magic number. */
export async function openByteStream(
  path: string,
  what = "input file",
): Promise<ReadableStream<Uint8Array>> {
  requireFile(path, what);
  const head = new Uint8Array(2);
  const f = await Deno.open(path);
  const n = await f.read(head);
  await f.seek(0, Deno.SeekMode.Start);
  const gz = n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  return gz ? f.readable.pipeThrough(new DecompressionStream("gzip")) : f.readable;
}

/** The whole text of a (possibly gzipped) file; for small files (tables, gene lists). */
export async function readText(path: string, what = "input file"): Promise<string> {
  const stream = await openByteStream(path, what);
  try {
    return await new Response(stream).text();
  } catch (e) {
    throw new ScnymError(`${path}: cannot read: ${(e as Error).message} (damaged gzip?)`);
  }
}

/**
 * Rows of delimited text with RFC 4180 quoting ("a, b" and "" for a quote); blank lines skipped;
 * `\r\n` line ends accepted.
 */
export function parseDelimited(text: string, sep: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const endRow = () => {
    row.push(field);
    if (row.length > 1 || row[0] !== "") rows.push(row);
    row = [];
    field = "";
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === "") quoted = true;
    else if (ch === sep) {
      row.push(field);
      field = "";
    } else if (ch === "\n") endRow();
    else if (ch !== "\r") field += ch;
    i++;
  }
  if (field !== "" || row.length) endRow();
  return rows;
}

/** Tab for `.tsv`/`.txt` (optionally `.gz`), comma otherwise; a tab-bearing first line wins. */
function guessSeparator(path: string, firstLine = ""): string {
  if (/\.(tsv|txt)(\.gz)?$/i.test(path)) return "\t";
  if (/\.csv(\.gz)?$/i.test(path)) return ",";
  return firstLine.includes("\t") ? "\t" : ",";
}

/** A table with a header row. */
export interface Table {
  header: string[];
  rows: string[][];
}

/** Reads a CSV/TSV with a header row (rows shorter or longer than the header are refused). */
export async function readTable(path: string, what = "table"): Promise<Table> {
  const text = await readText(path, what);
  const firstLine = text.split("\n", 1)[0];
  const sep = guessSeparator(path, firstLine);
  const all = parseDelimited(text, sep);
  if (all.length === 0) throw new ScnymError(`${path}: ${what} is empty`);
  const [header, ...rows] = all;
  rows.forEach((r, i) => {
    if (r.length !== header.length) {
      throw new ScnymError(
        `${path}: line ${i + 2} has ${r.length} fields, the header has ${header.length}`,
      );
    }
  });
  return { header, rows };
}

function quote(v: string, sep: string): string {
  return v.includes(sep) || v.includes('"') || v.includes("\n")
    ? `"${v.replaceAll('"', '""')}"`
    : v;
}

/** Formats a table (header + rows) as delimited text, quoting fields that need it. */
export function formatTable(header: string[], rows: Iterable<string[]>, sep: string): string {
  const lines = [header.map((h) => quote(h, sep)).join(sep)];
  for (const r of rows) lines.push(r.map((v) => quote(v, sep)).join(sep));
  return lines.join("\n") + "\n";
}

/**
 * The header of the predictions table:
 * `cell, <labelName>, confidence, [<labelName>_split], [<labelName>_novelty], p_<class>...`.
 */
export function predictionTableHeader(
  classes: string[],
  opts: { labelName?: string; split?: boolean; novelty?: boolean } = {},
): string[] {
  const label = opts.labelName ?? "scNym";
  return [
    "cell",
    label,
    "confidence",
    ...(opts.split ? [`${label}_split`] : []),
    ...(opts.novelty ? [`${label}_novelty`] : []),
    ...classes.map((k) => `p_${k}`),
  ];
}

/**
 * The rows of the predictions table for cells `first ..` (`p` holds consecutive cells; `cells`
 * names every row of the table), each ending in a newline: what `PredictionTableWriter` writes
 * and the web page downloads.
 */
export function predictionTableRows(
  cells: string[],
  first: number,
  p: PredictionOutputs,
  sep: string,
): string {
  const c = p.classes.length;
  const n = p.predicted.length;
  if (first + n > cells.length || p.probabilities.length !== n * c) {
    throw new Error(`PredictionTableWriter: arrays do not match ${n} cells at row ${first}`);
  }
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const probs = Array.from(p.probabilities.subarray(i * c, (i + 1) * c), (v) => v.toPrecision(6));
    const label = p.labels ? p.labels.categories[p.labels.codes[i]] : p.classes[p.predicted[i]];
    const split = p.split ? [p.split[i]] : [];
    const novelty = p.novelty ? [p.novelty[i].toPrecision(6)] : [];
    const row = [
      cells[first + i],
      label,
      p.confidence[i].toPrecision(6),
      ...split,
      ...novelty,
      ...probs,
    ];
    lines.push(row.map((v) => quote(v, sep)).join(sep) + "\n");
  }
  return lines.join("");
}

/**
 * Streams the predictions table to `path` (CSV, or TSV for `.tsv`/`.txt` names): the header at
 * `open`, then each chunk's rows as they come. Every row depends only on its cell, so the tables
 * of consecutive chunks (or of shards, headers after the first dropped) concatenate to the table
 * of all of them, byte for byte. Write to a temporary path and rename (`writeFileAtomic`).
 */
export class PredictionTableWriter {
  readonly #file: Deno.FsFile;
  readonly #sep: string;
  readonly #cells: string[];
  readonly #enc = new TextEncoder();

  private constructor(file: Deno.FsFile, sep: string, cells: string[]) {
    this.#file = file;
    this.#sep = sep;
    this.#cells = cells;
  }

  /**
   * Creates `path` and writes the header. `cells` names every row to come; `sepFrom` is the
   * final name, which picks the separator (the temporary path's suffix does not).
   */
  static async open(
    path: string,
    cells: string[],
    opts: {
      classes: string[];
      labelName?: string;
      split?: boolean;
      novelty?: boolean;
      sepFrom?: string;
    },
  ): Promise<PredictionTableWriter> {
    const sep = guessSeparator(opts.sepFrom ?? path);
    const f = await Deno.open(path, { write: true, createNew: true });
    const w = new PredictionTableWriter(f, sep, cells);
    await w.#put(formatTable(predictionTableHeader(opts.classes, opts), [], sep));
    return w;
  }

  /** Appends the rows of cells `first ..` (`p` holds consecutive cells). */
  async write(first: number, p: PredictionOutputs): Promise<void> {
    await this.#put(predictionTableRows(this.#cells, first, p, this.#sep));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }

  async #put(text: string): Promise<void> {
    const bytes = this.#enc.encode(text);
    for (let done = 0; done < bytes.length;) done += await this.#file.write(bytes.subarray(done));
  }
}

/**
 * Writes `cell, <labelName>, confidence, p_<class>...` (CSV, or TSV for `.tsv`/`.txt` paths),
 * atomically. Refuses an existing file unless `overwrite`.
 */
export async function writePredictionTable(
  path: string,
  cells: string[],
  p: PredictionOutputs,
  opts: { labelName?: string; overwrite?: boolean } = {},
): Promise<void> {
  if (
    p.predicted.length !== cells.length ||
    p.probabilities.length !== cells.length * p.classes.length
  ) {
    throw new Error(`writePredictionTable: arrays do not match ${cells.length} cells`);
  }
  await writeFileAtomic(path, async (tmp) => {
    const w = await PredictionTableWriter.open(tmp, cells, {
      classes: p.classes,
      labelName: opts.labelName,
      split: !!p.split,
      novelty: !!p.novelty,
      sepFrom: path,
    });
    try {
      await w.write(0, p);
    } finally {
      w.close();
    }
  }, { overwrite: !!opts.overwrite });
}
