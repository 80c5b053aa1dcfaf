import assert from "node:assert/strict";
import { type Csr, csrToDense } from "../data/csr.ts";
import { labelColumn } from "../io/anndata.ts";
import { openH5, setEncoding } from "../io/h5.ts";
import { readH5ad } from "../io/h5ad_read.ts";
import { readMtxTriples, triplesToCsr } from "../io/mtx.ts";
import { inspectFile } from "../io/inspect.ts";
import { attachLabels, readTenxH5, readTenxMtxDir } from "../io/tenx.ts";
import { FIXTURES, tempDir } from "./io_shared.ts";

// The source matrix: the counts layer of the anndata-written fixture (23 cells x 11 genes),
// read by our h5ad reader, which io_h5ad_test checks against anndata.
const SRC = await readH5ad(FIXTURES + "io_csc.h5ad", { matrix: "counts" });

/** Writes `m` (cells x genes) as a Cell Ranger v3 .h5: CSC over genes = our CSR over cells. */
async function writeTenxH5(
  path: string,
  m: Csr,
  genes: string[],
  barcodes: string[],
  types: string[],
) {
  const f = await openH5(path, "w");
  const g = f.create_group("matrix");
  g.create_dataset({ name: "data", data: Int32Array.from(m.data) });
  g.create_dataset({ name: "indices", data: BigInt64Array.from(m.indices, BigInt) });
  g.create_dataset({ name: "indptr", data: BigInt64Array.from(m.indptr, BigInt) });
  g.create_dataset({ name: "shape", data: new Int32Array([m.nCols, m.nRows]) });
  g.create_dataset({ name: "barcodes", data: barcodes, dtype: "S" });
  const fe = g.create_group("features");
  fe.create_dataset({ name: "name", data: genes, dtype: "S" });
  fe.create_dataset({ name: "id", data: genes.map((x) => `ID_${x}`), dtype: "S" });
  fe.create_dataset({ name: "feature_type", data: types, dtype: "S" });
  setEncoding(g, "unused-by-10x", "0"); // extra attributes must not confuse the reader
  f.close();
}

Deno.test("10x .h5 (v3): cells x genes, int64 pointers, only Gene Expression features kept", async () => {
  const [dir, done] = await tempDir();
  try {
    const genes = SRC.var.index;
    const types = genes.map((_, j) => (j === 4 ? "Antibody Capture" : "Gene Expression"));
    await writeTenxH5(`${dir}/m.h5`, SRC.X, genes, SRC.obs.index, types);
    const ad = await readTenxH5(`${dir}/m.h5`);
    assert.deepEqual(ad.obs.index, SRC.obs.index);
    const keep = genes.map((_, j) => j).filter((j) => j !== 4);
    assert.deepEqual(ad.var.index, keep.map((j) => genes[j]));
    assert.deepEqual((ad.var.columns.get("gene_ids") as { values: string[] }).values[0], "ID_G0");
    const full = csrToDense(SRC.X);
    const want = new Float32Array(SRC.X.nRows * keep.length);
    for (let r = 0; r < SRC.X.nRows; r++) {
      keep.forEach((j, q) => (want[r * keep.length + q] = full[r * SRC.X.nCols + j]));
    }
    assert.deepEqual(csrToDense(ad.X), want);
    const rep = await inspectFile(`${dir}/m.h5`);
    assert.deepEqual([rep.format, rep.nObs, rep.nVars, rep.matrices[0].kind], [
      "10x-h5",
      23,
      10,
      "counts",
    ]);
  } finally {
    await done();
  }
});

async function gzip(text: string): Promise<Uint8Array> {
  const s = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A 10x mtx folder (genes x cells, 1-based, shuffled entry order), gzipped or plain. */
async function writeMtxDir(dir: string, m: Csr, genes: string[], barcodes: string[], gz: boolean) {
  const lines: string[] = [];
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      lines.push(`${m.indices[k] + 1} ${r + 1} ${m.data[k]}`);
    }
  }
  lines.reverse(); // the reader must not rely on the file's order
  const mtx = `%%MatrixMarket matrix coordinate integer general\n%metadata_json: {}\n` +
    `${m.nCols} ${m.nRows} ${lines.length}\n${lines.join("\n")}\n`;
  const feats = genes.map((g) => `ID_${g}\t${g}\tGene Expression`).join("\n") + "\n";
  const bcs = barcodes.join("\n") + "\n";
  await Deno.mkdir(dir, { recursive: true });
  const put = async (name: string, text: string) =>
    gz
      ? Deno.writeFile(`${dir}/${name}.gz`, await gzip(text))
      : Deno.writeTextFile(`${dir}/${name}`, text);
  await put("matrix.mtx", mtx);
  await put("features.tsv", feats);
  await put("barcodes.tsv", bcs);
}

Deno.test("10x mtx folder (gzipped and plain) + labels CSV joined on barcode", async () => {
  const [dir, done] = await tempDir();
  try {
    for (const gz of [true, false]) {
      const d = `${dir}/mtx_${gz}`;
      await writeMtxDir(d, SRC.X, SRC.var.index, SRC.obs.index, gz);
      const ad = await readTenxMtxDir(d);
      assert.deepEqual(ad.X, SRC.X); // same CSR, columns ascending per row
      assert.deepEqual(ad.var.index, SRC.var.index);
      assert.deepEqual(ad.obs.index, SRC.obs.index);
      const rep = await inspectFile(d);
      assert.deepEqual([rep.format, rep.nObs, rep.nVars], ["10x-mtx", 23, 11]);
      // Labels for all but the last two cells, in a different order, one quoted with a comma.
      const rows = SRC.obs.index.slice(0, -2).map((bc, i) =>
        `${bc},${i % 3 ? "T" : '"B, naive"'},x`
      );
      await Deno.writeTextFile(
        `${d}/labels.csv`,
        `barcode,cell_type,other\n${rows.reverse().join("\n")}\n`,
      );
      const { matched } = await attachLabels(ad, `${d}/labels.csv`);
      assert.equal(matched, SRC.obs.index.length - 2);
      const lab = labelColumn(ad, "cell_type");
      assert.deepEqual(lab.classes.sort(), ["B, naive", "T"]);
      assert.equal(lab.codes.at(-1), -1); // unlabelled
      assert.deepEqual(lab.counts.reduce((a, b) => a + b, 0), matched);
    }
    await Deno.writeTextFile(`${dir}/mtx_true/bad.csv`, "barcode,cell_type\nNOPE,T\n");
    const ad = await readTenxMtxDir(`${dir}/mtx_true`);
    await assert.rejects(
      () => attachLabels(ad, `${dir}/mtx_true/bad.csv`),
      /no barcode matches the 23 cells/,
    );
  } finally {
    await done();
  }
});

Deno.test("MatrixMarket: real/pattern fields, CRLF, bad and truncated files", async () => {
  const [dir, done] = await tempDir();
  try {
    const p = `${dir}/a.mtx`;
    await Deno.writeTextFile(
      p,
      "%%MatrixMarket matrix coordinate real general\r\n2 3 3\r\n1 1 1.5\r\n2 3 -2e-1\r\n1 3 4\r\n",
    );
    const t = await readMtxTriples(p);
    assert.deepEqual(csrToDense(triplesToCsr(t, "row")), new Float32Array([1.5, 0, 4, 0, 0, -0.2]));
    await Deno.writeTextFile(
      p,
      "%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n",
    );
    assert.deepEqual(
      csrToDense(triplesToCsr(await readMtxTriples(p), "row")),
      new Float32Array([0, 1, 1, 0]),
    );
    await Deno.writeTextFile(
      p,
      "%%MatrixMarket matrix coordinate integer general\n2 2 3\n1 2 1\n2 1 1\n",
    );
    await assert.rejects(
      () => readMtxTriples(p),
      /2 entries, the header declares 3 \(truncated file\?\)/,
    );
    await Deno.writeTextFile(p, "%%MatrixMarket matrix coordinate integer general\n2 2 1\n3 1 1\n");
    await assert.rejects(
      () => readMtxTriples(p),
      /line 3: entry \(3, 1\) outside the declared 2 x 2/,
    );
    await Deno.writeTextFile(p, "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n");
    await assert.rejects(() => readMtxTriples(p), /only "coordinate"/);
    await assert.rejects(() => readTenxMtxDir(`${dir}/none`), /input folder not found/);
    await assert.rejects(() => readTenxMtxDir(dir), /no matrix\.mtx file/);
  } finally {
    await done();
  }
});
