/**
 * Reads a large .h5ad (see bench/gen_large.ts) with our reader and reports time and memory, to
 * show memory follows the non-zeros, not cells x genes.
 *
 *   /usr/bin/time -v deno run -A bench/read_large.ts [PATH] [--chunked]
 *
 * Without --chunked the whole matrix is read into one CSR (resident: ~8 bytes per non-zero);
 * with --chunked it streams row chunks and keeps only per-cell totals (resident: one chunk).
 * The peak RSS to quote is `Maximum resident set size` from /usr/bin/time -v; the script also
 * samples Deno.memoryUsage().rss after every chunk.
 */
import { nnz } from "../data/csr.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import { readAllRows } from "../io/matrix_reader.ts";

const path = Deno.args.find((a) => !a.startsWith("--")) ?? "/tmp/scnym_large_100k.h5ad";
const chunked = Deno.args.includes("--chunked");
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const t0 = performance.now();
let peak = Deno.memoryUsage().rss;
const h = await H5adFile.open(path);
const reader = h.matrix("X");
const [n, m] = reader.info.shape;
let entries = 0;
if (chunked) {
  const totals = new Float64Array(n);
  for (const [start, c] of reader.chunks()) {
    for (let r = 0; r < c.nRows; r++) {
      for (let k = c.indptr[r]; k < c.indptr[r + 1]; k++) totals[start + r] += c.data[k];
    }
    entries += nnz(c);
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }
} else {
  const X = readAllRows(reader);
  entries = nnz(X);
  peak = Math.max(peak, Deno.memoryUsage().rss);
}
const obs = h.obs();
h.close();
peak = Math.max(peak, Deno.memoryUsage().rss);
const secs = (performance.now() - t0) / 1000;
console.log(
  `${path}: ${n} x ${m}, nnz ${entries}, ${obs.columns.size} obs columns; ${
    chunked ? "chunked" : "whole"
  } read in ${secs.toFixed(1)} s; sampled peak RSS ${mib(peak)} ` +
    `(CSR arrays ${mib(entries * 8 + (n + 1) * 4)}; dense float32 would be ${mib(n * m * 4)})`,
);
