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
 * Writes `cell, <labelName>, confidence, p_<class>...` (CSV, or TSV for `.tsv`/`.txt` paths),
 * atomically. Refuses an existing file unless `overwrite`.
 */
export async function writePredictionTable(
  path: string,
  cells: string[],
  p: PredictionOutputs,
  opts: { labelName?: string; overwrite?: boolean } = {},
): Promise<void> {
  const c = p.classes.length;
  if (p.predicted.length !== cells.length || p.probabilities.length !== cells.length * c) {
    throw new Error(`writePredictionTable: arrays do not match ${cells.length} cells`);
  }
  const sep = guessSeparator(path);
  const header = [
    "cell",
    opts.labelName ?? "scNym",
    "confidence",
    ...(p.split ? [`${opts.labelName ?? "scNym"}_split`] : []),
    ...p.classes.map((k) => `p_${k}`),
  ];
  const rows = function* () {
    for (let i = 0; i < cells.length; i++) {
      const probs = Array.from(
        p.probabilities.subarray(i * c, (i + 1) * c),
        (v) => v.toPrecision(6),
      );
      const label = p.labels ? p.labels.categories[p.labels.codes[i]] : p.classes[p.predicted[i]];
      const split = p.split ? [p.split[i]] : [];
      yield [cells[i], label, p.confidence[i].toPrecision(6), ...split, ...probs];
    }
  };
  await writeFileAtomic(path, formatTable(header, rows(), sep), { overwrite: !!opts.overwrite });
}
