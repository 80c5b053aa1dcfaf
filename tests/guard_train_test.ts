/**
 * Guarded training end to end on small simulated data (scnym/guard_train.ts through
 * `trainFromFiles`, `config: "auto"`): the guard trains its candidates (no_dan only when needed),
 * decides, records the
 * decision in the model file, and reads no target label: the same file with the target cells'
 * labels removed gives the same model, bit for bit, and the same decision.
 */
import assert from "node:assert/strict";
import { simulate } from "../data/simulate.ts";
import { categoricalColumn, dataFrame } from "../io/anndata.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { GUARD_CANDIDATES, type GuardCandidateName } from "../scnym/guard.ts";
import { guardSection } from "../scnym/guard_train.ts";
import { loadModel } from "../scnym/model_file.ts";
import { loadTrainedModel, predictCells } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { gpuTest, testRuntime } from "./helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "scnym-guard-test-" });
const sim = simulate({ seed: 5, cellsPerDomain: [240, 240], genes: 200, types: 4 });

/** Writes the simulation; `targetLabels: false` blanks the target cells' cell types. */
async function write(name: string, targetLabels: boolean): Promise<string> {
  const path = `${dir}/${name}.h5ad`;
  const obs = dataFrame(sim.cellNames);
  const labels = sim.cellType.map((l, i) => targetLabels || sim.domain[i] !== "target" ? l : "");
  obs.columns.set("cell_type", categoricalColumn(labels));
  obs.columns.set("domain", categoricalColumn(sim.domain));
  await writeH5ad(path, { X: sim.counts, obs, var: dataFrame(sim.geneNames) });
  return path;
}

/** Guarded training of `file` (small network, few epochs: seconds on llvmpipe). */
async function guarded(file: string, out: string) {
  return await trainFromFiles({
    reference: file,
    labels: "cell_type",
    targetWhere: "domain=target",
    overrides: {
      model: { hidden: 64, adversaryHidden: 64 },
      train: { epochs: 4, batchSize: 64, minEpochs: 1 },
    },
    seed: 2,
    out,
    rt: await testRuntime(),
    progress: new Progress({ quiet: true }),
  });
}

/** A guard record without its wall-clock fields (the only part that may differ run to run). */
function withoutTimes(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (k, v) => k === "seconds" ? undefined : v));
}

Deno.test({
  name: "guarded training decides, records it in the model file, and reads no target label",
  ...gpuTest,
  fn: async () => {
    const labelled = await write("labelled", true);
    const blanked = await write("blanked", false);
    const a = await guarded(labelled, `${dir}/a.scnym`);
    const b = await guarded(blanked, `${dir}/b.scnym`);
    assert.ok(a.guard && b.guard);
    assert.ok((GUARD_CANDIDATES as readonly string[]).includes(a.guard.chosen));
    assert.equal(a.config.name, a.guard.chosen);
    assert.ok(["agreement", "consensus", "only"].includes(a.guard.rule));
    assert.ok(a.guard.reason.length > 0);
    // default and no_ssl always; no_dan and the linear voter only when rule 2 did not decide.
    const trained = Object.keys(a.guard.candidates);
    assert.deepEqual(Object.keys(a.guard.scores).sort(), [...trained].sort());
    assert.deepEqual(trained.slice(0, 2), ["default", "no_ssl"]);
    assert.equal(trained.length === 2, a.guard.rule === "agreement");
    assert.equal(a.guard.linearFit === null, trained.length === 2);
    for (const n of trained) {
      const s = a.guard.scores[n as GuardCandidateName]!;
      assert.ok(s.validationAccuracy >= 0 && s.validationAccuracy <= 1);
      assert.ok(s.temperature > 0);
    }
    // The first file's target cells are annotated, the second's are not; training and the guard
    // must not notice.
    assert.ok(a.loaded.truth.some((t) => t !== null));
    assert.ok(b.loaded.truth.every((t) => t === null));
    assert.deepEqual(withoutTimes(b.guard), withoutTimes(a.guard));
    const fa = await loadModel(`${dir}/a.scnym`);
    const fb = await loadModel(`${dir}/b.scnym`);
    assert.deepEqual([...fb.tensors.keys()], [...fa.tensors.keys()]);
    for (const [name, t] of fa.tensors) assert.deepEqual(fb.tensors.get(name), t, name);
    assert.deepEqual(withoutTimes(fa.header.training.guard), withoutTimes(a.guard));
    assert.equal(fa.header.config.name, a.guard.chosen);
    // The report's section: one row per candidate and the linear voter, the kept one marked.
    const section = guardSection(a.guard);
    assert.equal(section.rows.length, trained.length + (a.guard.linear ? 1 : 0));
    assert.equal(section.rows.filter((r) => r[0].endsWith("(kept)")).length, 1);
    assert.ok(section.lead.includes(a.guard.reason));

    // The kept model file is an ordinary one: it predicts exactly like the model in memory.
    const rt = await testRuntime();
    const loaded = await loadTrainedModel(rt, `${dir}/a.scnym`);
    const X = a.loaded.set.X;
    const mem = await predictCells(rt, a.result.model, X, { classes: a.result.classes });
    const file = await predictCells(rt, loaded.model, X, { classes: a.result.classes });
    assert.deepEqual(file.probabilities, mem.probabilities);
    for (const r of [a, b]) r.result.model.destroy();
    loaded.model.destroy();
    await Deno.remove(dir, { recursive: true });
  },
});
