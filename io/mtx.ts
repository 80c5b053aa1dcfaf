/**
 * MatrixMarket coordinate files (`matrix.mtx`, optionally gzipped), streamed: entries are parsed
 * straight from the bytes into typed arrays sized from the header, then counting-sorted into CSR.
 * Memory is O(nnz); nothing is densified.
 */
import type { Csr } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { openByteStream } from "./table.ts";

/** A MatrixMarket matrix as stored: `rows x cols` with 0-based coordinates. */
export interface MtxTriples {
  rows: number;
  cols: number;
  row: Uint32Array;
  col: Uint32Array;
  value: Float32Array;
}

const NL = 10;
const CR = 13;

/**
 * Parses a coordinate MatrixMarket file (`real`, `integer` or `pattern`; `general` symmetry).
 * Errors name the file and line: a bad header, an entry outside the declared size, a wrong entry
 * count (a truncated file).
 */
export async function readMtxTriples(path: string): Promise<MtxTriples> {
  const stream = await openByteStream(path, "MatrixMarket file");
  let header: string[] | null = null;
  let sizeLine: number[] | null = null;
  let pattern = false;
  let out: MtxTriples | null = null;
  let k = 0;
  let lineNo = 0;
  let carry = new Uint8Array(0);
  const dec = new TextDecoder();

  const fail = (msg: string): never => {
    throw new ScnymError(`${path}: line ${lineNo}: ${msg}`);
  };

  const handleText = (line: string) => {
    // Header, comments and the size line are rare: decode them as text.
    if (header === null) {
      const h = line.trim().toLowerCase().split(/\s+/);
      if (h[0] !== "%%matrixmarket" || h[1] !== "matrix") fail("not a MatrixMarket file");
      if (h[2] !== "coordinate") {
        fail(`only "coordinate" MatrixMarket files are supported, not "${h[2]}"`);
      }
      if (!["real", "integer", "pattern", "double"].includes(h[3])) {
        fail(`unsupported field "${h[3]}"`);
      }
      if (h[4] && h[4] !== "general") fail(`only "general" symmetry is supported, not "${h[4]}"`);
      pattern = h[3] === "pattern";
      header = h;
      return;
    }
    if (line.startsWith("%") || line.trim() === "") return;
    const parts = line.trim().split(/\s+/).map(Number);
    if (parts.length !== 3 || parts.some((v) => !Number.isInteger(v) || v < 0)) {
      fail(`expected "rows cols entries", got "${line.trim()}"`);
    }
    sizeLine = parts;
    out = {
      rows: parts[0],
      cols: parts[1],
      row: new Uint32Array(parts[2]),
      col: new Uint32Array(parts[2]),
      value: new Float32Array(parts[2]),
    };
  };

  // One entry line: "i j [v]" (1-based). Integers are parsed from bytes; anything else falls back
  // to parseFloat on the token.
  const handleEntry = (buf: Uint8Array, a: number, b: number) => {
    const m = out!;
    const fields = [0, 0, 1];
    let f = 0;
    let p = a;
    while (p < b && f < 3) {
      while (p < b && (buf[p] === 32 || buf[p] === 9)) p++;
      if (p >= b) break;
      const s = p;
      let v = 0;
      let simple = true;
      while (p < b && buf[p] !== 32 && buf[p] !== 9) {
        const c = buf[p] - 48;
        if (c >= 0 && c <= 9) v = v * 10 + c;
        else simple = false;
        p++;
      }
      fields[f++] = simple ? v : parseFloat(dec.decode(buf.subarray(s, p)));
    }
    if (f === 0) return;
    if (f < (pattern ? 2 : 3)) fail("incomplete entry");
    if (k >= m.row.length) fail(`more entries than the ${m.row.length} declared`);
    const i = fields[0] - 1;
    const j = fields[1] - 1;
    if (!(i >= 0 && i < m.rows && j >= 0 && j < m.cols)) {
      fail(`entry (${fields[0]}, ${fields[1]}) outside the declared ${m.rows} x ${m.cols}`);
    }
    m.row[k] = i;
    m.col[k] = j;
    m.value[k++] = fields[2];
  };

  try {
    for await (const chunk of stream) {
      const buf = carry.length ? concat(carry, chunk) : chunk;
      let start = 0;
      for (let p = buf.indexOf(NL); p >= 0; p = buf.indexOf(NL, start)) {
        lineNo++;
        const end = p > start && buf[p - 1] === CR ? p - 1 : p;
        if (sizeLine === null || buf[start] === 37 /* % */) {
          handleText(dec.decode(buf.subarray(start, end)));
        } else handleEntry(buf, start, end);
        start = p + 1;
      }
      carry = buf.slice(start);
    }
  } catch (e) {
    if (e instanceof ScnymError) throw e;
    throw new ScnymError(`${path}: cannot read: ${(e as Error).message} (damaged gzip?)`);
  }
  if (carry.length) {
    lineNo++;
    if (sizeLine === null) handleText(dec.decode(carry));
    else handleEntry(carry, 0, carry.length);
  }
  if (out === null) throw new ScnymError(`${path}: no MatrixMarket size line (empty file?)`);
  const m = out as MtxTriples;
  if (k !== m.row.length) {
    throw new ScnymError(
      `${path}: ${k} entries, the header declares ${m.row.length} (truncated file?)`,
    );
  }
  return m;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Triples to CSR with `byRow` rows: `byRow = "row"` keeps the file's orientation, `"col"`
 * transposes (10x files are genes x cells; we want cells x genes). Counting sort: O(nnz + n),
 * columns ascending within each row.
 */
export function triplesToCsr(t: MtxTriples, byRow: "row" | "col"): Csr {
  const [r, c] = byRow === "row" ? [t.row, t.col] : [t.col, t.row];
  const nRows = byRow === "row" ? t.rows : t.cols;
  const nCols = byRow === "row" ? t.cols : t.rows;
  const n = t.row.length;
  // First sort by column (stable), then scatter by row: rows end up with ascending columns.
  const colptr = new Uint32Array(nCols + 1);
  for (let k = 0; k < n; k++) colptr[c[k] + 1]++;
  for (let j = 0; j < nCols; j++) colptr[j + 1] += colptr[j];
  const order = new Uint32Array(n);
  const nextC = colptr.slice(0, nCols);
  for (let k = 0; k < n; k++) order[nextC[c[k]]++] = k;
  const indptr = new Uint32Array(nRows + 1);
  for (let k = 0; k < n; k++) indptr[r[k] + 1]++;
  for (let i = 0; i < nRows; i++) indptr[i + 1] += indptr[i];
  const nextR = indptr.slice(0, nRows);
  const indices = new Uint32Array(n);
  const data = new Float32Array(n);
  for (const k of order) {
    const d = nextR[r[k]]++;
    indices[d] = c[k];
    data[d] = t.value[k];
  }
  return { nRows, nCols, indptr, indices, data };
}
