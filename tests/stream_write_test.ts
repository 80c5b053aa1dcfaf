/**
 * The streaming writers: chunked writes give the same file contents as one write, views into a
 * larger array are written from their own offset (h5wasm 0.8.8 copies a view's whole buffer),
 * part files open in real anndata (and concatenate there), and the held-out cap of training.
 */
import assert from "node:assert/strict";
import { csrFromDense } from "../data/csr.ts";
import { dataFrame } from "../io/anndata.ts";
import { openH5, readNumeric, writeNumeric } from "../io/h5.ts";
import { H5adPredictionWriter } from "../io/h5ad_predictions.ts";
import { writeH5ad, writePredictions } from "../io/h5ad_write.ts";
import { readPredictionsFile } from "../io/predictions.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { PredictionTableWriter, writePredictionTable } from "../io/table.ts";
import { capHeldOut } from "../scnym/batches.ts";
import { Rng } from "../util/rng.ts";
import { haveAnndata, python, tempDir } from "./io_shared.ts";

/** Predictions of `n` cells over 3 classes, some labelled Unknown, with a 4-d embedding. */
function predictions(rng: Rng, n: number): PredictionOutputs {
  const classes = ["B", "T, CD4", "NK"];
  const probabilities = Float32Array.from({ length: n * 3 }, () => rng.uniform());
  const predicted = Int32Array.from({ length: n }, (_, i) => {
    const row = probabilities.subarray(i * 3, i * 3 + 3);
    return row.indexOf(Math.max(...row));
  });
  const confidence = Float32Array.from(predicted, (k, i) => probabilities[i * 3 + k]);
  const codes = Int32Array.from(predicted, (k, i) => (i % 5 === 1 ? 3 : k));
  return {
    classes,
    predicted,
    confidence,
    probabilities,
    embedding: { data: Float32Array.from({ length: n * 4 }, () => rng.normal()), dim: 4 },
    labels: { codes, categories: [...classes, "Unknown"] },
  };
}

/** Cells [a, b) of `p`, as one chunk (fresh arrays, as predictCells returns them). */
function rows(p: PredictionOutputs, a: number, b: number): PredictionOutputs {
  return {
    ...p,
    predicted: p.predicted.slice(a, b),
    confidence: p.confidence.slice(a, b),
    probabilities: p.probabilities.slice(a * 3, b * 3),
    embedding: { data: p.embedding!.data.slice(a * 4, b * 4), dim: 4 },
    labels: { codes: p.labels!.codes.slice(a, b), categories: p.labels!.categories },
  };
}

Deno.test("writeNumeric writes a view into a larger array from the view's own offset", async () => {
  const [dir, done] = await tempDir();
  try {
    // More than one 4M-value slice, starting inside the buffer: before the fix, every slice
    // after the first repeated the buffer's first values.
    const big = Float32Array.from({ length: 9_000_000 }, (_, i) => i);
    const f = await openH5(`${dir}/v.h5`, "w");
    writeNumeric(f, "d", big.subarray(7, 8_500_007));
    f.close();
    const g = await openH5(`${dir}/v.h5`, "r");
    const back = readNumeric("v.h5", g.get("d") as never) as Float32Array;
    g.close();
    assert.equal(back.length, 8_500_000);
    for (const i of [0, 4_194_303, 4_194_304, 8_388_608, 8_499_999]) assert.equal(back[i], i + 7);
  } finally {
    await done();
  }
});

Deno.test("chunked writers give the one-shot outputs (h5ad values, table bytes)", async () => {
  const [dir, done] = await tempDir();
  try {
    const rng = new Rng(4);
    const n = 57;
    const p = predictions(rng, n);
    const cells = Array.from({ length: n }, (_, i) => `c${i}`);
    const query = `${dir}/q.h5ad`;
    const X = csrFromDense(Float32Array.from({ length: n * 6 }, () => rng.int(3)), n, 6);
    await writeH5ad(query, {
      X,
      obs: dataFrame(cells),
      var: dataFrame(["a", "b", "c", "d", "e", "f"]),
    });
    await writePredictions(query, `${dir}/one.h5ad`, p, { seed: 1 });
    await writePredictionTable(`${dir}/one.csv`, cells, p);

    const spec = { classes: p.classes, embeddingDim: 4, run: { seed: 1 } };
    const w = await H5adPredictionWriter.copyOf(query, `${dir}/chunked.h5ad`, spec);
    const t = await PredictionTableWriter.open(`${dir}/chunked.csv`, cells, spec);
    for (const [a, b] of [[0, 20], [20, 21], [21, 57]]) {
      w.write(a, rows(p, a, b));
      await t.write(a, rows(p, a, b));
    }
    await w.close();
    t.close();
    assert.deepEqual(
      await Deno.readFile(`${dir}/chunked.csv`),
      await Deno.readFile(`${dir}/one.csv`),
    );
    const [one, chunked] = await Promise.all(
      ["one", "chunked"].map((k) => readPredictionsFile(`${dir}/${k}.h5ad`)),
    );
    assert.deepEqual(chunked, { ...one, file: chunked.file });
    assert.equal(one.predicted[1], "Unknown");
  } finally {
    await done();
  }
});

Deno.test("an .h5ad part file opens in anndata, and parts concatenate there", {
  ignore: !haveAnndata(),
}, async () => {
  const [dir, done] = await tempDir();
  try {
    const p = predictions(new Rng(5), 10);
    const cells = Array.from({ length: 10 }, (_, i) => `c${i}`);
    for (const [k, a, b] of [[0, 0, 4], [1, 4, 10]]) {
      const spec = { classes: p.classes, embeddingDim: 4, run: { seed: 1 } };
      const path = `${dir}/part_${k}.h5ad`;
      const w = await H5adPredictionWriter.fresh(path, cells.slice(a, b), spec);
      w.write(0, rows(p, a, b));
      await w.close();
    }
    const got = await python(`
import anndata as ad, json
parts = [ad.read_h5ad("${dir}/part_%d.h5ad" % k) for k in (0, 1)]
a = ad.concat(parts)
print(json.dumps({"n": a.n_obs, "names": list(a.obs_names), "labels": list(map(str, a.obs["scNym"])),
  "emb": a.obsm["X_scnym"].shape, "x": parts[0].X is None}))`) as Record<string, unknown>;
    assert.equal(got.n, 10);
    assert.deepEqual(got.names, cells);
    assert.deepEqual(got.emb, [10, 4]);
    assert.equal((got.labels as string[])[1], "Unknown");
  } finally {
    await done();
  }
});

Deno.test("capHeldOut: unchanged up to the cap; above it an even stride, the rest returned", () => {
  const small = Array.from({ length: 100 }, (_, i) => i * 3);
  const [kept0, rest0] = capHeldOut(small, 100);
  assert.equal(kept0, small);
  assert.deepEqual(rest0, []);
  const cells = Array.from({ length: 25_000 }, (_, i) => i);
  const [kept, rest] = capHeldOut(cells, 10_000);
  assert.equal(kept.length, 10_000);
  assert.equal(rest.length, 15_000);
  assert.deepEqual([...kept, ...rest].sort((a, b) => a - b), cells);
  // Spread over the whole range (the splits are grouped by class): every 2.5th cell.
  assert.equal(kept[0], 0);
  assert.equal(kept[9_999], 24_997);
});
