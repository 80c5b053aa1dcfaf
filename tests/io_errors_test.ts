/**
 * Bad inputs: each gets one clear line naming the file and field, a non-zero exit from the CLI,
 * and nothing written.
 */
import assert from "node:assert/strict";
import { csrFromDense } from "../data/csr.ts";
import { checkMatrix } from "../data/normalize.ts";
import { dataFrame, labelColumn } from "../io/anndata.ts";
import { H5adFile, readH5ad } from "../io/h5ad_read.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { inspectFile } from "../io/inspect.ts";
import { ScnymError } from "../util/errors.ts";
import { FIXTURES, listDir, tempDir } from "./io_shared.ts";
import { runScript } from "./helpers.ts";

/** Runs `scnym inspect` in a subprocess: exit code, stdout, stderr. */
async function runInspect(...args: string[]): Promise<[number, string, string]> {
  const r = await runScript("commands/inspect.ts", args);
  return [r.code, r.stdout, r.stderr];
}

async function rejectsOneLine(fn: () => Promise<unknown>, re: RegExp) {
  const e = await fn().then(() => null, (e) => e);
  assert.ok(e instanceof ScnymError, `expected a ScnymError, got ${e}`);
  assert.match(e.message, re);
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
}

Deno.test("missing, non-HDF5, gzip and truncated files: one line, CLI exits non-zero", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeTextFile(`${dir}/text.h5ad`, "cell,gene\n1,2\n");
    await Deno.writeFile(`${dir}/zipped.h5ad`, new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]));
    await Deno.writeFile(`${dir}/empty.h5ad`, new Uint8Array(0));
    const whole = await Deno.readFile(FIXTURES + "io_csc.h5ad");
    await Deno.writeFile(`${dir}/trunc.h5ad`, whole.subarray(0, Math.floor(whole.length * 0.6)));
    await Deno.writeFile(`${dir}/tiny.h5ad`, whole.subarray(0, 20)); // cut inside the superblock
    const cases: [string, RegExp][] = [
      [`${dir}/missing.h5ad`, /input file not found: .*missing\.h5ad/],
      [`${dir}/text.h5ad`, /text\.h5ad: not an HDF5 file \(no HDF5 signature\)/],
      [`${dir}/zipped.h5ad`, /not an HDF5 file .*gzip-compressed: decompress it first/],
      [`${dir}/empty.h5ad`, /not an HDF5 file .*the file is empty/],
      [`${dir}/trunc.h5ad`, /trunc\.h5ad: truncated HDF5 file: \d+ bytes, the file says \d+/],
      [`${dir}/tiny.h5ad`, /tiny\.h5ad: truncated or damaged HDF5 file/],
    ];
    const before = listDir(dir);
    for (const [path, re] of cases) {
      await rejectsOneLine(() => readH5ad(path), re);
      const [code, out, err] = await runInspect(path);
      assert.equal(code, 1, path);
      assert.equal(out, "");
      assert.match(err.trim(), new RegExp("^scnym inspect: error: .*" + re.source));
      // A file of no format we read: the message lists the ones we do.
      if (re.source.includes("not an HDF5")) {
        assert.match(err, /; accepted inputs: 10x MatrixMarket folder, 10x Genomics \.h5, AnnData/);
      }
      assert.equal(err.trim().split("\n").length, 1, err);
    }
    assert.deepEqual(listDir(dir), before);
    const [code, , err] = await runInspect();
    assert.equal(code, 2);
    assert.match(err, /expected 1 positional argument\(s\), got 0/);
  } finally {
    await done();
  }
});

Deno.test("an HDF5 file that is not AnnData", async () => {
  const [dir, done] = await tempDir();
  try {
    // A valid HDF5 file without obs/var.
    const path = `${dir}/other.h5`;
    const { openH5 } = await import("../io/h5.ts");
    const f = await openH5(path, "w");
    f.create_group("something");
    f.close();
    await rejectsOneLine(() => H5adFile.open(path), /other\.h5: not an AnnData file/);
  } finally {
    await done();
  }
});

Deno.test("label column missing (lists the others) or with one class", async () => {
  const ad = await readH5ad(FIXTURES + "io_csc.h5ad");
  assert.throws(
    () => labelColumn(ad, "celltype"),
    /io_csc\.h5ad: obs has no column "celltype"; columns are: cell_type, batch, donor, is_doublet, score/,
  );
  const one = dataFrame(ad.obs.index);
  one.columns.set("kind", { kind: "string", values: ad.obs.index.map(() => "T") });
  assert.throws(
    () => labelColumn({ ...ad, obs: one }, "kind"),
    /label column obs\/kind has only one class \("T"\); need at least 2 classes/,
  );
});

Deno.test("empty matrix and NaN/Inf values in a file are refused naming file and position", async () => {
  const [dir, done] = await tempDir();
  try {
    const empty = `${dir}/empty_cells.h5ad`;
    await writeH5ad(empty, {
      X: csrFromDense([], 0, 3),
      obs: dataFrame([]),
      var: dataFrame(["A", "B", "C"]),
    });
    const e = await readH5ad(empty);
    assert.throws(
      () => checkMatrix(e.X, { file: empty, matrix: e.matrix }),
      /empty_cells\.h5ad: X is empty \(0 cells x 3 genes\)/,
    );
    const nan = `${dir}/nan.h5ad`;
    await writeH5ad(nan, {
      X: csrFromDense([1, 0, 2, 0, NaN, 1, Infinity, 0, 0], 3, 3),
      obs: dataFrame(["a", "b", "c"]),
      var: dataFrame(["A", "B", "C"]),
    });
    const n = await readH5ad(nan);
    assert.throws(
      () => checkMatrix(n.X, { file: nan, matrix: n.matrix }),
      /nan\.h5ad: X has 2 NaN\/Inf value\(s\), first at cell 1 gene 1 \(NaN\)/,
    );
    const rep = await inspectFile(nan);
    assert.equal(rep.matrices[0].nonFinite, 2);
    assert.match(rep.advice[0], /NaN\/Inf/);
  } finally {
    await done();
  }
});
