/**
 * Generates a large sparse .h5ad for the reader's memory benchmark: real Kang et al. cells tiled
 * to N cells (default 100,000), each with a little seeded noise (counts jittered by +-1, a few
 * counts in padding genes), genes padded to 20,000. Written with our own writer (CSR, gzip).
 *
 *   deno run -A bench/gen_large.ts [--cells 100000] [--genes 20000] [--seed 1] [--out PATH]
 *
 * Default output: /tmp/scnym_large_100k.h5ad (never commit it). The matrix is built in memory
 * (8 bytes a non-zero: 1M cells, 676M non-zeros took 5.4 GB and 3m49s here) and written in
 * slices; bench/scale.ts uses it for the 100k reference and the 1M query.
 */
import { parseArgs } from "node:util";
import { emptyCsr } from "../data/csr.ts";
import { type AnnData, dataFrame } from "../io/anndata.ts";
import { readH5ad } from "../io/h5ad_read.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { Rng } from "../util/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    cells: { type: "string", default: "100000" },
    genes: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    out: { type: "string", default: "/tmp/scnym_large_100k.h5ad" },
    source: {
      type: "string",
      default: new URL("../../shared/data/kang_ifnb_sub_2000.h5ad", import.meta.url).pathname,
    },
  },
});
const nCells = Number(values.cells);
const nGenes = Number(values.genes);
const rng = new Rng(Number(values.seed));

const src: AnnData = await readH5ad(values.source!);
if (nGenes < src.X.nCols) throw new Error(`--genes must be at least ${src.X.nCols}`);
const pad = nGenes - src.X.nCols;

// Pass 1 picks source cells and sizes the arrays; pass 2 fills them (so no growth copies).
const pick = Uint32Array.from({ length: nCells }, () => rng.int(src.X.nRows));
const extra = Uint8Array.from({ length: nCells }, () => (pad > 0 ? rng.int(8) : 0));
let cap = 0;
for (let i = 0; i < nCells; i++) {
  cap += src.X.indptr[pick[i] + 1] - src.X.indptr[pick[i]] + extra[i];
}
const X = emptyCsr(nCells, nGenes, cap);
let k = 0;
for (let i = 0; i < nCells; i++) {
  const s = pick[i];
  for (let q = src.X.indptr[s]; q < src.X.indptr[s + 1]; q++) {
    const u = rng.uniform();
    const v = src.X.data[q] + (u < 0.05 ? -1 : u > 0.95 ? 1 : 0);
    if (v <= 0) continue; // jittered to zero: the entry disappears, as in real data
    X.indices[k] = src.X.indices[q];
    X.data[k++] = v;
  }
  // A few counts in padding genes, ascending columns.
  const cols = Array.from({ length: extra[i] }, () => src.X.nCols + rng.int(pad)).sort((a, b) =>
    a - b
  );
  for (let j = 0; j < cols.length; j++) {
    if (j > 0 && cols[j] === cols[j - 1]) continue;
    X.indices[k] = cols[j];
    X.data[k++] = 1;
  }
  X.indptr[i + 1] = k;
}
X.indices = X.indices.subarray(0, k);
X.data = X.data.subarray(0, k);

const obs = dataFrame(Array.from({ length: nCells }, (_, i) => `cell${i}`));
for (const key of ["cell_type", "condition"]) {
  const col = src.obs.columns.get(key);
  if (col?.kind !== "categorical") continue;
  obs.columns.set(key, {
    kind: "categorical",
    codes: Int32Array.from(pick, (s) => col.codes[s]),
    categories: col.categories,
  });
}
const genes = [...src.var.index, ...Array.from({ length: pad }, (_, j) => `PAD${j}`)];
const t0 = performance.now();
await writeH5ad(values.out!, { X, obs, var: dataFrame(genes) }, { overwrite: true });
const mb = (await Deno.stat(values.out!)).size / 2 ** 20;
console.log(
  `wrote ${values.out}: ${nCells} x ${nGenes}, nnz ${k}, ${mb.toFixed(0)} MiB, ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
