/**
 * `readPredictionsFile` reads back what our writers write: `writePredictions` (.h5ad, any key,
 * with and without an embedding, with `Unknown` labels) and `writePredictionTable` (CSV and TSV);
 * files without the prediction fields, or with unusable ones, are refused with one line naming
 * the file and the field.
 */
import assert from "node:assert/strict";
import { csrFromDense } from "../data/csr.ts";
import { dataFrame } from "../io/anndata.ts";
import { writeH5ad, writePredictions } from "../io/h5ad_write.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { isHdf5File, readPredictionsFile } from "../io/predictions.ts";
import { h5Get, isDataset } from "../io/h5.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import { formatTable, writePredictionTable } from "../io/table.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { tempDir } from "./io_shared.ts";

const CLASSES = ["B", "NK", "T cell, CD4"]; // a comma: the CSV writer must quote it

/** Random predictions for `n` cells (probabilities sum to 1; low-confidence cells `Unknown`). */
function randomPredictions(n: number, seed: number, dim = 5): PredictionOutputs {
  const rng = new Rng(seed);
  const c = CLASSES.length;
  const probabilities = new Float32Array(n * c);
  const predicted = new Int32Array(n);
  const confidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = CLASSES.map(() => Math.exp(2 * rng.normal()));
    const s = e.reduce((a, b) => a + b);
    e.forEach((v, k) => (probabilities[i * c + k] = v / s));
    predicted[i] = e.indexOf(Math.max(...e));
    confidence[i] = probabilities[i * c + predicted[i]];
  }
  const embedding = { data: Float32Array.from({ length: n * dim }, () => rng.normal()), dim };
  const codes = Int32Array.from(predicted, (k, i) => (confidence[i] < 0.5 ? c : k));
  return {
    classes: CLASSES,
    predicted,
    confidence,
    probabilities,
    embedding,
    labels: { codes, categories: [...CLASSES, "Unknown"] },
  };
}

/** A small counts `.h5ad` of `n` cells with an obs column `batch`. */
async function writeQuery(path: string, n: number): Promise<string[]> {
  const cells = Array.from({ length: n }, (_, i) => `cell-${i}`);
  const obs = dataFrame(cells);
  obs.columns.set("batch", { kind: "string", values: cells.map((_, i) => `b${i % 2}`) });
  const g = 4;
  const counts = Float32Array.from({ length: n * g }, (_, k) => k % 3);
  await writeH5ad(path, {
    X: csrFromDense(counts, n, g),
    obs,
    var: dataFrame(Array.from({ length: g }, (_, j) => `G${j}`)),
  });
  return cells;
}

/** The label each cell was written with. */
function labelsOf(p: PredictionOutputs): string[] {
  return Array.from(p.labels!.codes, (k) => p.labels!.categories[k]);
}

/** Rejects with a one-line ScnymError matching `re`. */
async function refused(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    if (!(e instanceof ScnymError)) throw new Error(`expected a ScnymError, got ${e}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("readPredictionsFile: .h5ad from writePredictions round-trips exactly", async () => {
  const [dir, done] = await tempDir();
  try {
    // 1 cell and a ragged 37: nothing in the reader may assume a square or a multiple of anything.
    for (const n of [1, 37]) {
      const query = `${dir}/q${n}.h5ad`;
      const cells = await writeQuery(query, n);
      const p = randomPredictions(n, n);
      const out = `${dir}/p${n}.h5ad`;
      const run = { seed: 3, config: "default", ok: true };
      await writePredictions(query, out, p, run);
      const r = await readPredictionsFile(out);
      assert.equal(r.file, out);
      assert.deepEqual(r.cellNames, cells);
      assert.deepEqual(r.predicted, labelsOf(p));
      if (n > 1) assert.ok(r.predicted.includes("Unknown"), "written labels, not classes");
      // float32 in, float32 stored: bit-exact.
      assert.deepEqual(r.confidence, p.confidence);
      assert.deepEqual(r.probabilities, { classes: CLASSES, values: p.probabilities });
      assert.deepEqual(r.embedding, { data: p.embedding!.data, dims: p.embedding!.dim });
      assert.deepEqual(r.obs?.columns.get("batch"), {
        kind: "string",
        values: cells.map((_, i) => `b${i % 2}`),
      });
      // The writer stores uns booleans as uint8 (h5wasm cannot create HDF5 enums): 1 comes back.
      assert.deepEqual(r.run, { ...run, ok: 1 });
    }
  } finally {
    await done();
  }
});

Deno.test("readPredictionsFile: training splits in obs and the table; probabilities in obsm", async () => {
  const [dir, done] = await tempDir();
  try {
    const query = `${dir}/q.h5ad`;
    const cells = await writeQuery(query, 7);
    const split = ["train", "validation", "target", "early_stopping", "target", "unused", "target"];
    const p = { ...randomPredictions(7, 4), split };
    await writePredictions(query, `${dir}/p.h5ad`, p, { seed: 0 });
    const r = await readPredictionsFile(`${dir}/p.h5ad`);
    assert.deepEqual(r.split, split);
    assert.deepEqual(r.probabilities, { classes: CLASSES, values: p.probabilities });
    const h = await H5adFile.open(`${dir}/p.h5ad`);
    try {
      assert.ok(isDataset(h.file, "obsm/scNym_probabilities"), "probabilities per cell in obsm");
      assert.ok(!h5Get(h.file, "uns/scNym_probabilities"), "no longer in uns");
    } finally {
      h.close();
    }
    await writePredictionTable(`${dir}/p.csv`, cells, p);
    const t = await readPredictionsFile(`${dir}/p.csv`);
    assert.deepEqual(t.split, split);
    assert.deepEqual(t.probabilities?.classes, CLASSES);
    // Without a split nothing is made up.
    await writePredictionTable(`${dir}/q.csv`, cells, randomPredictions(7, 4));
    assert.equal((await readPredictionsFile(`${dir}/q.csv`)).split, undefined);
  } finally {
    await done();
  }
});

Deno.test("readPredictionsFile: files of earlier versions (probabilities in uns) still read", async () => {
  const [dir, done] = await tempDir();
  try {
    // The layout earlier versions wrote: uns/scNym_probabilities (cells x classes) next to
    // uns/scNym_class_names, no obsm/scNym_probabilities, no split column.
    const n = 5;
    const p = randomPredictions(n, 8);
    const cells = Array.from({ length: n }, (_, i) => `cell-${i}`);
    const obs = dataFrame(cells);
    obs.columns.set("scNym", {
      kind: "categorical",
      codes: p.predicted,
      categories: CLASSES,
    });
    obs.columns.set("scNym_confidence", {
      kind: "numeric",
      values: Float64Array.from(p.confidence),
    });
    const old = `${dir}/old.h5ad`;
    await writeH5ad(old, {
      X: csrFromDense(new Float32Array(n * 2).fill(1), n, 2),
      obs,
      var: dataFrame(["g0", "g1"]),
      uns: { scNym_class_names: CLASSES },
      unsMatrices: { scNym_probabilities: { data: p.probabilities, cols: CLASSES.length } },
    });
    const r = await readPredictionsFile(old);
    assert.deepEqual(r.probabilities, { classes: CLASSES, values: p.probabilities });
    assert.deepEqual(r.predicted, Array.from(p.predicted, (k) => CLASSES[k]));
    assert.equal(r.split, undefined);
  } finally {
    await done();
  }
});

Deno.test("readPredictionsFile: another key, no embedding; the default key then refuses", async () => {
  const [dir, done] = await tempDir();
  try {
    const query = `${dir}/q.h5ad`;
    await writeQuery(query, 6);
    const { embedding: _, ...p } = randomPredictions(6, 2);
    const out = `${dir}/p.h5ad`;
    await writePredictions(query, out, p, { seed: 0 }, { key: "pred" });
    const r = await readPredictionsFile(out, "pred");
    assert.deepEqual(r.predicted, labelsOf(p));
    assert.deepEqual(r.probabilities?.values, p.probabilities);
    assert.equal(r.embedding, undefined);
    await refused(() => readPredictionsFile(out), /p\.h5ad: obs has no column "scNym"; .*--key/);
  } finally {
    await done();
  }
});

Deno.test("readPredictionsFile: CSV and TSV from writePredictionTable", async () => {
  const [dir, done] = await tempDir();
  try {
    const n = 23;
    const cells = Array.from({ length: n }, (_, i) => `AAAC-${i}`);
    const p = randomPredictions(n, 5);
    // The writer keeps 6 significant digits; reading must give exactly those back.
    const six = (v: number) => Math.fround(Number(v.toPrecision(6)));
    for (const [file, key] of [[`${dir}/p.csv`, "scNym"], [`${dir}/p.tsv`, "label"]]) {
      await writePredictionTable(file, cells, p, { labelName: key });
      assert.equal(isHdf5File(file), false);
      const r = await readPredictionsFile(file, key);
      assert.deepEqual(r.cellNames, cells);
      assert.deepEqual(r.predicted, labelsOf(p));
      assert.deepEqual(r.confidence, p.confidence.map(six));
      assert.deepEqual(r.probabilities, { classes: CLASSES, values: p.probabilities.map(six) });
      assert.equal(r.embedding, undefined);
      assert.equal(r.obs, undefined);
      assert.equal(r.run, undefined);
    }
  } finally {
    await done();
  }
});

Deno.test("readPredictionsFile: files lacking or spoiling the fields -> one-line ScnymError", async () => {
  const [dir, done] = await tempDir();
  try {
    // The query itself: an .h5ad without prediction fields.
    const query = `${dir}/query.h5ad`;
    const cells = await writeQuery(query, 3);
    assert.equal(isHdf5File(query), true);
    await refused(() => readPredictionsFile(query), /query\.h5ad: obs has no column "scNym"/);

    // Confidence written as text.
    const obs = dataFrame(cells);
    obs.columns.set("scNym", { kind: "string", values: ["B", "NK", "B"] });
    obs.columns.set("scNym_confidence", { kind: "string", values: ["0.9", "0.8", "0.7"] });
    const textConf = `${dir}/textconf.h5ad`;
    await writeH5ad(textConf, {
      X: csrFromDense(new Float32Array(3), 3, 1),
      obs,
      var: dataFrame(["G0"]),
    });
    await refused(
      () => readPredictionsFile(textConf),
      /textconf\.h5ad: obs\/scNym_confidence holds string values, not numbers/,
    );

    const table = async (name: string, header: string[], rows: string[][]) => {
      await Deno.writeTextFile(`${dir}/${name}`, formatTable(header, rows, ","));
      return `${dir}/${name}`;
    };
    const noConf = await table("noconf.csv", ["cell", "scNym"], [["a", "B"]]);
    await refused(() => readPredictionsFile(noConf), /noconf\.csv: no "confidence" column/);
    const badNum = await table("badnum.csv", ["cell", "scNym", "confidence"], [
      ["a", "B", "0.5"],
      ["b", "NK", "abc"],
    ]);
    await refused(
      () => readPredictionsFile(badNum),
      /badnum\.csv: confidence on line 3 is "abc", expected a number/,
    );
    const badProb = await table("badprob.csv", ["cell", "scNym", "confidence", "p_B"], [
      ["a", "B", "0.5", ""],
    ]);
    await refused(() => readPredictionsFile(badProb), /p_B on line 2 is "", expected a number/);
    const noLabel = await table("nolabel.csv", ["cell", "scNym", "confidence"], [
      ["a", "B", "0.5"],
      ["b", "", "0.5"],
    ]);
    await refused(
      () => readPredictionsFile(noLabel),
      /nolabel\.csv: column "scNym" of cell "b" is empty/,
    );
    await refused(() => readPredictionsFile(`${dir}/nope.h5ad`), /predictions file not found/);
    await refused(() => readPredictionsFile(dir), /predictions file is not a regular file/);
  } finally {
    await done();
  }
});
