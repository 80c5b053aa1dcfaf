/**
 * Training end to end on small simulated data: it learns (falling loss, high target accuracy),
 * is deterministic in its seed, allocates nothing in the steady state, runs every named
 * configuration, copes with tiny targets, refuses unusable label sets, and writes a checkpoint
 * that predicts exactly like the model in memory.
 */
import assert from "node:assert/strict";
import { selectRows } from "../data/csr.ts";
import { log1pCpm } from "../data/normalize.ts";
import { simulate } from "../data/simulate.ts";
import { resolveConfig } from "../scnym/config.ts";
import { loadTrainedModel, predictCells } from "../scnym/predict.ts";
import type { InputLayout } from "../scnym/step_input.ts";
import { train, type TrainOptions } from "../scnym/train.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { EpochRecord, TrainingSet } from "../scnym/types.ts";
import type { ScnymModel } from "../nn/model.ts";
import { Progress } from "../util/progress.ts";
import { gpuTest, isScnym, testRuntime } from "./helpers.ts";

// Easy data: two domains of 300 cells, 4 shared types, a moderate batch effect.
const sim = simulate({
  seed: 1,
  cellsPerDomain: [300, 300],
  genes: 300,
  types: 4,
  batchEffect: 0.5,
});
const X = log1pCpm(sim.counts);
const isTarget = sim.domain.map((d) => d === "target");
const targetRows = [...isTarget.keys()].filter((i) => isTarget[i]);
const DATA: TrainingSet = {
  X,
  genes: sim.geneNames,
  labels: sim.cellType,
  isTarget,
  normalisation: "counts->log1p_cpm",
};
const quiet = new Progress({ quiet: true });

/** A small network (64 units) with batch 64 so every test trains in seconds on llvmpipe. */
function config(name: string, epochs: number) {
  return resolveConfig(name, {
    model: { hidden: 64, adversaryHidden: 64 },
    train: { epochs, batchSize: 64 },
  });
}

/** 15 epochs of `default` on the easy data (seed 3), with the buffers created by each epoch. */
async function trainEasy(rt: Runtime, opts: Partial<TrainOptions> = {}) {
  const created: number[] = [];
  const res = await train(DATA, {
    config: config("default", 15),
    seed: 3,
    rt,
    progress: quiet,
    onEpoch: () => created.push(rt.stats.buffersCreated),
    ...opts,
  });
  return { res, created };
}

/** After the second epoch every buffer comes from the pool: no allocation per step. */
const steadyState = (created: number[]) => created.slice(1).every((c) => c === created[1]);

async function predictTarget(model: ScnymModel, classes: string[]) {
  const rt = await testRuntime();
  return await predictCells(rt, model, selectRows(X, targetRows), { classes, progress: quiet });
}

Deno.test(
  "training learns the easy simulated data, allocates nothing in the steady state, and its " +
    "checkpoint predicts exactly like the model in memory",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const dir = await Deno.makeTempDir({ prefix: "scnym_train_test" });
    const checkpointPath = `${dir}/model.scnym`;
    const { res, created } = await trainEasy(rt, { checkpointPath });
    const h = res.history;
    assert.equal(h.length, 15);
    assert.deepEqual(h.map((r) => r.epoch), [...Array(15).keys()]);
    assert.deepEqual(res.splits, { train: 243, earlyStopping: 27, validation: 30, target: 300 });
    // The supervised loss falls: ~1.4 (chance over 4 classes) at first, measured ~0.6 at the end.
    assert.ok(h[14].supLoss < 0.7 * h[0].supLoss, `sup loss ${h[0].supLoss} -> ${h[14].supLoss}`);
    // MixMatch and the adversary ran: the ramps move and their losses are recorded.
    // The default consistency ramp is the paper's sigmoid: exp(-5) at epoch 0, rising.
    assert.equal(h[0].lambdaSsl, Math.exp(-5));
    assert.ok(h[14].lambdaSsl > h[0].lambdaSsl && h.some((r) => r.sslLoss > 0));
    assert.ok(h.every((r) => r.advLoss > 0 && Number.isFinite(r.advLoss)));
    assert.ok(h[14].danWeight > h[1].danWeight);
    // Target cells are told apart well (measured 1.0); held-out labelled cells too.
    const pred = await predictTarget(res.model, res.classes);
    const hits = targetRows.filter((c, k) => pred.labels[k] === sim.cellType[c]).length;
    assert.ok(hits / targetRows.length > 0.9, `target accuracy ${hits / targetRows.length}`);
    assert.ok(res.validation.cells === 30 && res.validation.accuracy! > 0.9);
    assert.ok(steadyState(created), `buffers created: ${created}`);

    // The checkpoint holds the returned model: same weights, bit-identical predictions.
    const loaded = await loadTrainedModel(rt, checkpointPath);
    assert.deepEqual(await loaded.model.download(), await res.model.download());
    assert.deepEqual(loaded.header.classes, res.classes);
    assert.deepEqual(loaded.header.genes, sim.geneNames);
    assert.equal(loaded.header.seed, 3);
    assert.deepEqual(loaded.header.config, config("default", 15));
    assert.equal(loaded.header.training.bestEpoch, res.bestEpoch);
    const again = await predictTarget(loaded.model, loaded.header.classes);
    assert.deepEqual(again.probabilities, pred.probabilities);
    assert.deepEqual(again.labels, pred.labels);
    loaded.model.destroy();
    res.model.destroy();
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("training is deterministic in its seed", gpuTest, async () => {
  const rt = await testRuntime();
  const run = async (seed: number) => {
    const res = await train(DATA, { config: config("default", 3), seed, rt, progress: quiet });
    const out = {
      tensors: await res.model.download(),
      probabilities: (await predictTarget(res.model, res.classes)).probabilities,
      history: res.history.map(({ seconds: _, ...r }) => r),
    };
    res.model.destroy();
    return out;
  };
  const a = await run(5);
  const b = await run(5);
  assert.deepEqual(b.tensors, a.tensors);
  assert.deepEqual(b.probabilities, a.probabilities);
  assert.deepEqual(b.history, a.history);
  const c = await run(6);
  assert.notDeepEqual(c.tensors.get("head.W"), a.tensors.get("head.W"));
  assert.notDeepEqual(c.probabilities, a.probabilities);
});

Deno.test(
  "the input layer's layouts: dense and sparse train to the same weights (f32 rounding apart), " +
    "bf16 operands to the same accuracy",
  gpuTest,
  async () => {
    // Two epochs of the default configuration from the same seed in each layout. Dense and
    // sparse sum the same non-zero terms in different orders (~1e-7 relative per step; measured
    // after training: <= 1.5e-6 relative of each tensor's largest value): 2e-5 leaves room for
    // other CPUs, while one missing or wrong term would move the first layer's weights by ~1e-2.
    const rt = await testRuntime();
    // 700 genes: the dense product splits K in chunks of 512 (see kernels/matmul.ts), so its
    // sums are ordered differently from the sparse ones (with fewer genes they are bit-equal).
    const wide = simulate({ seed: 2, cellsPerDomain: [200, 200], genes: 700, types: 4 });
    const data: TrainingSet = {
      X: log1pCpm(wide.counts),
      genes: wide.geneNames,
      labels: wide.cellType,
      isTarget: wide.domain.map((d) => d === "target"),
      normalisation: "counts->log1p_cpm",
    };
    const run = async (inputLayout: InputLayout) => {
      const res = await train(data, {
        config: config("default", 2),
        seed: 3,
        rt,
        progress: quiet,
        inputLayout,
      });
      const tensors = await res.model.download();
      res.model.destroy();
      return { tensors, history: res.history };
    };
    type Run = Awaited<ReturnType<typeof run>>;
    const compare = (a: Run, b: Run, rel: number, label: string) => {
      let differs = false;
      for (const [name, { data: x }] of a.tensors) {
        const y = b.tensors.get(name)!.data;
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < x.length; i++) {
          scale = Math.max(scale, Math.abs(x[i]));
          diff = Math.max(diff, Math.abs(x[i] - y[i]));
        }
        const msg = `${label} ${name}: max difference ${diff} (scale ${scale})`;
        assert.ok(diff <= rel * Math.max(scale, 1), msg);
        differs ||= diff > 0;
      }
      // Bit-equal results would mean both runs took the same path.
      assert.ok(differs, `${label}: inputLayout was not honoured (bit-identical runs)`);
      const loss = (h: EpochRecord[]) => h.map((r) => r.valLoss);
      for (const [i, l] of loss(a.history).entries()) {
        const d = Math.abs(l - loss(b.history)[i]);
        assert.ok(d <= 10 * rel * Math.abs(l), `${label} epoch ${i} loss ${l} vs ${d}`);
      }
    };
    const sparse = await run("sparse");
    compare(sparse, await run("dense"), 2e-5, "dense");
    // bf16 operands change the sums by ~2^-9 relative, enough to flip discrete choices
    // (pseudo-label confidence thresholds) within a few steps, so the runs part ways: compare
    // what training is for instead. On the easy data, 15 epochs each (measured: 1.0 both).
    const learn = async (inputLayout: InputLayout) => {
      const { res, created } = await trainEasy(rt, { inputLayout });
      const pred = await predictTarget(res.model, res.classes);
      res.model.destroy();
      const hits = targetRows.filter((c, k) => pred.labels[k] === sim.cellType[c]).length;
      // The bf16 rooms are kept between steps too.
      assert.ok(steadyState(created), `${inputLayout}: buffers created ${created}`);
      return hits / targetRows.length;
    };
    const f32 = await learn("sparse");
    const bf16 = await learn("sparse-bf16");
    assert.ok(f32 > 0.9 && bf16 > 0.9 && bf16 >= f32 - 0.03, `accuracy f32 ${f32}, bf16 ${bf16}`);
  },
);

Deno.test(
  "every named configuration trains, with MixMatch and the adversary as it says",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const ran = async (name: string) => {
      const res = await train(DATA, { config: config(name, 2), seed: 7, rt, progress: quiet });
      assert.equal(res.history.length, 2, name);
      assert.ok(res.history.every((r: EpochRecord) => Number.isFinite(r.supLoss)), name);
      res.model.destroy();
      return res;
    };
    // no_ssl: supervised only; neither loss is computed and the model has no adversary.
    const noSsl = await ran("no_ssl");
    assert.ok(noSsl.history.every((r) => r.sslLoss === 0 && r.advLoss === 0));
    assert.equal(noSsl.model.adversary, null);
    assert.equal(noSsl.header.training.semiSupervised, false);
    assert.equal(noSsl.header.training.adversary, false);
    assert.deepEqual(noSsl.domains, []);
    // no_dan: MixMatch (epoch 1 has lambda 0.01 > 0) without the adversary.
    const noDan = await ran("no_dan");
    assert.ok(noDan.history[1].sslLoss > 0);
    assert.ok(noDan.history.every((r) => r.advLoss === 0));
    assert.equal(noDan.model.adversary, null);
    assert.equal(noDan.header.training.semiSupervised, true);
    // new_identity_discovery: both, with the 0.9 confidence threshold recorded.
    const nid = await ran("new_identity_discovery");
    assert.ok(nid.history.every((r) => r.advLoss > 0));
    assert.notEqual(nid.model.adversary, null);
    assert.deepEqual(nid.domains, ["reference", "target"]);
    assert.equal(nid.header.config.ssl.minConfidence, 0.9);
    assert.equal(nid.header.config.dan.useConfidentOnly, true);
  },
);

Deno.test(
  "a target smaller than one batch trains without waiting for a full batch",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const source = [...isTarget.keys()].filter((i) => !isTarget[i]);
    const rows = [...source, ...targetRows.slice(0, 10)];
    const small: TrainingSet = {
      X: selectRows(X, rows),
      genes: sim.geneNames,
      labels: rows.map((i) => sim.cellType[i]),
      isTarget: rows.map((i) => isTarget[i]),
      normalisation: "counts->log1p_cpm",
    };
    const res = await train(small, { config: config("default", 2), seed: 8, rt, progress: quiet });
    assert.equal(res.splits.target, 10);
    assert.equal(res.history.length, 2);
    assert.ok(res.history.every((r) => Number.isFinite(r.supLoss) && r.advLoss > 0));
    res.model.destroy();
  },
);

Deno.test("training refuses label sets it cannot learn from", gpuTest, async () => {
  const rt = await testRuntime();
  const opts = { config: config("default", 1), seed: 0, rt, progress: quiet };
  await assert.rejects(
    () => train({ ...DATA, labels: DATA.labels.map(() => null) }, opts),
    isScnym(/training set: no labelled cells to train on/),
  );
  await assert.rejects(
    () => train({ ...DATA, isTarget: DATA.isTarget.map(() => true) }, opts),
    isScnym(/no labelled cells/),
  );
  await assert.rejects(
    () => train({ ...DATA, labels: DATA.labels.map((l, i) => isTarget[i] ? l : "T cell") }, opts),
    isScnym(/only one cell type among the labelled cells \(T cell\)/),
  );
  await assert.rejects(
    () => train({ ...DATA, labels: DATA.labels.slice(1) }, opts),
    isScnym(/training set: 600 cells but 599 labels/),
  );
  await assert.rejects(
    () => train({ ...DATA, genes: DATA.genes.slice(1) }, opts),
    isScnym(/training set: 300 genes in X, 299 names/),
  );
});

Deno.test(
  "a run that diverges throws a clear error and gives every GPU buffer back",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    // Buffers in use = bytes the pool holds once the free ones are dropped.
    const inUse = () => (rt.trimPool(), rt.stats.bytesHeld);
    const before = inUse();
    // A learning rate of 1e30 blows the weights up after the first step.
    for (const name of ["default", "no_ssl"]) {
      const diverging = resolveConfig(name, {
        model: { hidden: 64, adversaryHidden: 64 },
        train: { epochs: 2, batchSize: 64, lr: 1e30 },
      });
      await assert.rejects(
        () => train(DATA, { config: diverging, seed: 4, rt, progress: quiet }),
        isScnym(/training diverged at epoch 0 \(supervised loss (NaN|Infinity)\)/),
      );
      assert.equal(inUse(), before, `${name}: bytes of buffers in use after the failed run`);
    }
  },
);
