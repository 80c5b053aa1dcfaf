/**
 * Calibration end to end (scnym/fit_calibration.ts through `trainFromFiles`): a trained model
 * file carries the temperature and the novelty statistics, prediction applies them (probabilities
 * = softmax(logits / T) with every label unchanged; the novelty score of each cell as
 * `scnym/calibration.ts` computes it), the prediction writers store `scNym_novelty` and
 * `scnym evaluate` reports its unseen-type AUROC beside that of the confidence.
 * Tolerances: probabilities 2e-6 absolute (float32 GPU softmax vs float64); CSV values 1e-5
 * relative (written with 6 significant digits).
 */
import assert from "node:assert/strict";
import { simulate } from "../data/simulate.ts";
import { evaluateCommand } from "../commands/evaluate.ts";
import { categoricalColumn, dataFrame } from "../io/anndata.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { readPredictionsFile } from "../io/predictions.ts";
import { predictFile, trainFromFiles } from "../scnym/api.ts";
import { NOVELTY_TENSORS, noveltyScore } from "../scnym/calibration.ts";
import { loadModel } from "../scnym/model_file.ts";
import { writePredictionOutput } from "../scnym/outputs.ts";
import { predictCells } from "../scnym/predict.ts";
import { argmaxRows } from "../util/argmax.ts";
import { Progress } from "../util/progress.ts";
import { softmaxRows } from "../util/softmax.ts";
import { gpuTest, testRuntime } from "./helpers.ts";

const quiet = new Progress({ quiet: true });

Deno.test({
  name: "a trained model file carries T and novelty statistics; predict and evaluate use them",
  ...gpuTest,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "scnym-calibration-test-" });
    const sim = simulate({
      seed: 3,
      cellsPerDomain: [300, 300],
      domainNames: ["reference", "target"],
      genes: 300,
      types: 4,
      targetOnlyTypes: 1,
    });
    const data = `${dir}/sim.h5ad`;
    const obs = dataFrame(sim.cellNames);
    obs.columns.set("cell_type", categoricalColumn(sim.cellType));
    obs.columns.set("domain", categoricalColumn(sim.domain));
    await writeH5ad(data, { X: sim.counts, obs, var: dataFrame(sim.geneNames) });
    const rt = await testRuntime();
    const model = `${dir}/m.scnym`;
    const trained = await trainFromFiles({
      reference: data,
      labels: "cell_type",
      targetWhere: "domain=target",
      config: "default",
      overrides: {
        model: { hidden: 64, adversaryHidden: 64 },
        train: { epochs: 6, batchSize: 64 },
      },
      seed: 1,
      out: model,
      rt,
      progress: quiet,
    });
    trained.result.model.destroy();

    // The file: a calibration record, and the statistics as tensors of the right shapes.
    const file = await loadModel(model);
    const rec = file.header.calibration!;
    assert.ok(rec.temperature >= 1 && rec.fittedTemperature > 0);
    assert.equal(rec.temperature, Math.max(1, rec.fittedTemperature));
    assert.equal(rec.novelty?.kind, "mahalanobis");
    const C = file.header.classes.length;
    assert.equal(C, 4);
    assert.equal(file.tensors.get(NOVELTY_TENSORS.whiten)!.length, 64 * 64);
    assert.equal(file.tensors.get(NOVELTY_TENSORS.means)!.length, C * 64);

    // Prediction applies them: novelty as calibration.ts computes it from the embedding.
    const { prediction: p, loaded, X } = await predictFile({
      model,
      query: data,
      rt,
      progress: quiet,
    });
    assert.equal(loaded.calibration.temperature, rec.temperature);
    assert.deepEqual(p.novelty, noveltyScore(loaded.calibration.novelty!, p.embedding));
    // A temperature other than 1 rescales the probabilities and keeps every label.
    const T = 2.5;
    const hot = await predictCells(rt, loaded.model, X, {
      classes: file.header.classes,
      progress: quiet,
      calibration: { ...loaded.calibration, temperature: T },
    });
    const want = softmaxRows(hot.logits!, C, T);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(hot.probabilities[i] - want[i]) < 2e-6);
    }
    assert.deepEqual(hot.labels, p.labels);
    assert.deepEqual(argmaxRows(hot.probabilities, X.nRows, C), argmaxRows(p.logits!, X.nRows, C));
    loaded.model.destroy();

    // The writers store the score; evaluate reports its AUROC for the unseen type novel_0.
    const run = { tool: "scnym-webgpu", seed: 1 };
    for (const out of [`${dir}/pred.h5ad`, `${dir}/pred.csv`]) {
      await writePredictionOutput(out, data, sim.cellNames, p, run);
      const back = await readPredictionsFile(out);
      for (let i = 0; i < p.novelty!.length; i++) {
        assert.ok(Math.abs(back.novelty![i] - p.novelty![i]) <= 1e-5 * Math.abs(p.novelty![i]));
      }
    }
    const json = `${dir}/eval.json`;
    const log = console.log;
    console.log = () => {};
    try {
      const code = await evaluateCommand([
        "--predictions",
        `${dir}/pred.h5ad`,
        "--truth",
        "cell_type",
        "--json",
        json,
        "--quiet",
      ]);
      assert.equal(code, 0);
    } finally {
      console.log = log;
    }
    const ev = JSON.parse(await Deno.readTextFile(json));
    const u = ev.evaluation?.unseen ?? ev.unseen;
    assert.deepEqual(u.types, ["novel_0"]);
    assert.equal(typeof u.noveltyAuroc, "number");
    assert.equal(typeof u.auroc, "number");
    await Deno.remove(dir, { recursive: true });
  },
});
