/**
 * Saliency (scnym interpret): its kernels against float64 references, each method's attributions
 * on a tiny model against a float64 CPU computation of the same quantity (guided: the rectified
 * chain; ig: a Riemann sum of finite-difference gradients; eg: the same with fixed draws), the ig
 * completeness gap as steps grow, and bad input.
 */
import assert from "node:assert/strict";
import { type Csr, csrFromDense } from "../data/csr.ts";
import { BN_EPS } from "../kernels/batchnorm.ts";
import {
  lerpRows,
  lerpRowsRef,
  meanRowGroups,
  meanRowGroupsRef,
  sampledRowDot,
  sampledRowDotRef,
} from "../kernels/saliency.ts";
import { releaseCsr, uploadCsr } from "../kernels/sparse.ts";
import { type ModelShape, ScnymModel } from "../nn/model.ts";
import { zeroGrads } from "../nn/tape.ts";
import { resolveClasses } from "../scnym/interpret.ts";
import { attribute, drawReferences, type SaliencyMethod } from "../nn/attribution.ts";
import { saliencySection } from "../eval/saliency_section.ts";
import { dataFrame } from "../io/anndata.ts";
import { readH5ad } from "../io/h5ad_read.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { resolveConfig } from "../scnym/config.ts";
import { saveModel } from "../scnym/model_file.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, gpuTest, isScnym, randn, randu, runScript, testRuntime } from "./helpers.ts";

Deno.test("lerpRows, meanRowGroups and sampledRowDot match their references", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(3);
  const [n, m, H, R] = [5, 3, 7, 13];
  const u = randn(rng, n * H);
  const uref = randn(rng, m * H);
  const bias = randn(rng, H);
  const path = {
    cell: Uint32Array.from({ length: R }, () => rng.int(n)),
    ref: Uint32Array.from({ length: R }, () => rng.int(m)),
    alpha: randu(rng, R),
  };
  const out = rt.scope(() =>
    lerpRows(rt, rt.upload(u, [n, H]), rt.upload(uref, [m, H]), {
      cell: rt.upload(path.cell, [R], "u32"),
      ref: rt.upload(path.ref, [R], "u32"),
      alpha: rt.upload(path.alpha, [R]),
    }, rt.upload(bias, [H]))
  );
  assertClose(await out.read(), lerpRowsRef(u, uref, path, bias), { atol: 1e-6 }, "lerpRows");
  out.release();

  const x = randn(rng, 4 * 3 * H);
  const mean = rt.scope(() => meanRowGroups(rt, rt.upload(x, [12, H]), 3));
  assertClose(await mean.read(), meanRowGroupsRef(x, H, 3), { atol: 1e-6 }, "meanRowGroups");
  mean.release();
  assert.throws(() => meanRowGroups(rt, rt.full([12, H], 0), 5), isScnym(/groups of 5/));

  // Ragged CSR with empty rows (first, middle, last) and a row of one entry.
  const G = 11;
  const dense = new Float32Array(6 * G);
  for (let i = 0; i < dense.length; i++) {
    const r = Math.floor(i / G);
    if (r !== 0 && r !== 3 && r !== 5 && (r === 4 ? i % G === 2 : rng.uniform() < 0.5)) {
      dense[i] = 0.5 + rng.uniform();
    }
  }
  const csr = csrFromDense(dense, 6, G);
  const d = randn(rng, 6 * H);
  const w = randn(rng, G * H);
  const gx = uploadCsr(rt, csr);
  const vals = rt.scope(() =>
    sampledRowDot(rt, gx, rt.upload(d, [6, H]), rt.upload(w, [G, H]), -0.25)
  );
  const want = sampledRowDotRef(csr, d, w, H, -0.25);
  assertClose(
    (await vals.read()).subarray(0, want.length),
    want,
    { atol: 1e-5, rtol: 1e-5 },
    "sdd",
  );
  vals.release();
  releaseCsr(gx);
});

// ------------------------------------------------------------------ a tiny model in float64

const TINY: ModelShape = {
  genes: 9,
  classes: 3,
  hidden: 6,
  layers: 2,
  dropout: 0.3,
  domains: 0,
  adversaryHidden: 1,
};

/** A tiny model with random weights and BatchNorm statistics, and its tensors on the host. */
async function tinyModel(seed: number) {
  const rt = await testRuntime();
  const rng = new Rng(seed);
  const model = ScnymModel.create(rt, TINY, seed);
  for (const l of model.hiddenLayers) {
    rt.write(l.bn.gamma.value, randu(rng, TINY.hidden, 0.5, 1.5));
    rt.write(l.bn.beta.value, randn(rng, TINY.hidden, 0.3));
    rt.write(l.bn.runningMean, randn(rng, TINY.hidden, 0.2));
    rt.write(l.bn.runningVar, randu(rng, TINY.hidden, 0.3, 2));
  }
  const host = new Map<string, Float64Array>();
  for (const [k, v] of await model.download()) host.set(k, Float64Array.from(v.data));
  return { rt, model, host };
}

/** Log-expression-like cells: ~half the genes expressed, one cell without counts. */
function cells(rng: Rng, n: number): { csr: Csr; dense: Float64Array } {
  const dense = new Float32Array(n * TINY.genes);
  for (let i = TINY.genes; i < dense.length; i++) {
    if (rng.uniform() < 0.5) dense[i] = 0.3 + 3 * rng.uniform();
  }
  return { csr: csrFromDense(dense, n, TINY.genes), dense: Float64Array.from(dense) };
}

type Host = Map<string, Float64Array>;

/** Eval-mode forward in float64: pre-activations and outputs of every layer, and the logits. */
function forward64(w: Host, x: ArrayLike<number>) {
  const acts: Float64Array[] = [];
  let h = Float64Array.from(x);
  for (let l = 0; l < TINY.layers; l++) {
    const W = w.get(`layer${l}.W`)!;
    const b = w.get(`layer${l}.b`)!;
    const [g, be, mu, v] = ["gamma", "beta", "runningMean", "runningVar"].map((k) =>
      w.get(`layer${l}.bn.${k}`)!
    );
    const out = new Float64Array(TINY.hidden);
    for (let k = 0; k < TINY.hidden; k++) {
      let s = b[k];
      for (let i = 0; i < h.length; i++) s += h[i] * W[i * TINY.hidden + k];
      out[k] = Math.max(0, (s - mu[k]) / Math.sqrt(v[k] + BN_EPS) * g[k] + be[k]);
    }
    acts.push(out);
    h = out;
  }
  const W = w.get("head.W")!;
  const z = Float64Array.from(w.get("head.b")!);
  for (let c = 0; c < TINY.classes; c++) {
    for (let k = 0; k < TINY.hidden; k++) z[c] += h[k] * W[k * TINY.classes + c];
  }
  return { acts, z };
}

/** The rectified (guided) chain of dz_c/dx in float64: ReLUs pass only positive gradients. */
function guided64(w: Host, x: ArrayLike<number>, c: number): Float64Array {
  const { acts } = forward64(w, x);
  const Wh = w.get("head.W")!;
  let g = Float64Array.from({ length: TINY.hidden }, (_, k) => Wh[k * TINY.classes + c]);
  for (let l = TINY.layers - 1; l >= 0; l--) {
    const gamma = w.get(`layer${l}.bn.gamma`)!;
    const v = w.get(`layer${l}.bn.runningVar`)!;
    const pre = g.map((gk, k) =>
      acts[l][k] > 0 && gk > 0 ? gk * gamma[k] / Math.sqrt(v[k] + BN_EPS) : 0
    );
    const W = w.get(`layer${l}.W`)!;
    const width = l === 0 ? TINY.genes : TINY.hidden;
    g = new Float64Array(width);
    for (let i = 0; i < width; i++) {
      for (let k = 0; k < TINY.hidden; k++) g[i] += W[i * TINY.hidden + k] * pre[k];
    }
  }
  return g;
}

/** dz_c/dx by central differences of the float64 forward (exact away from ReLU kinks). */
function fdGrad64(w: Host, x: Float64Array, c: number, h = 1e-6): Float64Array {
  return Float64Array.from(x, (_, g) => {
    const p = x.slice();
    const m = x.slice();
    p[g] += h;
    m[g] -= h;
    return (forward64(w, p).z[c] - forward64(w, m).z[c]) / (2 * h);
  });
}

function row(dense: Float64Array, i: number): Float64Array {
  return dense.slice(i * TINY.genes, (i + 1) * TINY.genes);
}

/** Every job's attribution row from the GPU, through chunks of 7 path rows. */
async function gpuRows(
  model: ScnymModel,
  X: Csr,
  jobs: { cells: Int32Array; classes: Int32Array },
  method: SaliencyMethod,
  extra: { steps?: number; background?: Csr; draws?: { ref: Uint32Array; alpha: Float32Array } },
) {
  const keep = Array.from(jobs.cells, (_, j) => j);
  const rt = await testRuntime();
  return await attribute(rt, model, X, jobs, { method, keep, rowBudget: 7, ...extra });
}

const JOBS = {
  cells: Int32Array.of(0, 1, 2, 3, 4, 2, 4),
  classes: Int32Array.of(0, 1, 2, 0, 1, 0, 2),
};

Deno.test("guided saliency matches the float64 rectified chain", gpuTest, async () => {
  const { model, host } = await tinyModel(11);
  const { csr, dense } = cells(new Rng(12), 5);
  zeroGrads(model.rt, model.params);
  const s = await gpuRows(model, csr, JOBS, "guided", {});
  // Only input gradients: the parameters' gradient buffers are left as they were.
  for (const p of model.params) assert.ok((await p.grad.read()).every((v) => v === 0), p.name);
  JOBS.cells.forEach((i, j) => {
    const want = guided64(host, row(dense, i), JOBS.classes[j]);
    assertClose(s.rows.get(j)!, want, { atol: 1e-5, rtol: 1e-4 }, `guided job ${j}`);
  });
  // The class sums are the sums of the jobs' rows.
  const want0 = guided64(host, row(dense, 0), 0).map((v, g) =>
    v + guided64(host, row(dense, 3), 0)[g] + guided64(host, row(dense, 2), 0)[g]
  );
  assertClose(s.sums.subarray(0, TINY.genes), want0, { atol: 1e-5, rtol: 1e-4 }, "class 0 sum");
  assert.deepEqual([...s.counts], [3, 2, 2]);
  // Guided differs from the plain gradient somewhere (else the test could not tell them apart).
  const differs = [...JOBS.cells].some((i, j) => {
    const plain = fdGrad64(host, row(dense, i), JOBS.classes[j]);
    return plain.some((v, g) => Math.abs(v - s.rows.get(j)![g]) > 1e-3);
  });
  assert.ok(differs, "guided differs from the plain gradient for some job");
  model.destroy();
});

Deno.test(
  "integrated gradients match a Riemann sum of finite-difference gradients",
  gpuTest,
  async () => {
    const { model, host } = await tinyModel(21);
    const { csr, dense } = cells(new Rng(22), 5);
    const steps = 5;
    const s = await gpuRows(model, csr, JOBS, "ig", { steps });
    JOBS.cells.forEach((i, j) => {
      const x = row(dense, i);
      const want = new Float64Array(TINY.genes);
      for (let t = 0; t < steps; t++) {
        const a = (t + 0.5) / steps;
        const grad = fdGrad64(host, x.map((v) => a * v), JOBS.classes[j]);
        grad.forEach((v, g) => want[g] += x[g] * v / steps);
      }
      assertClose(s.rows.get(j)!, want, { atol: 2e-5, rtol: 1e-4 }, `ig job ${j}`);
      // Completeness bookkeeping: total is the row's sum, delta the logit difference to zero input.
      const f = (v: Float64Array) => forward64(host, v).z[JOBS.classes[j]];
      assertClose([s.completeness!.delta[j]], [f(x) - f(new Float64Array(TINY.genes))], {
        atol: 1e-5,
      }, `delta ${j}`);
      assertClose([s.completeness!.total[j]], [want.reduce((a, b) => a + b, 0)], { atol: 1e-4 });
    });
    assert.ok(s.rows.get(1)!.some((v) => Math.abs(v) > 1e-2), "some attribution is non-zero");
    model.destroy();
  },
);

Deno.test(
  "expected gradients match the float64 computation with the same draws",
  gpuTest,
  async () => {
    const { model, host } = await tinyModel(31);
    const rng = new Rng(32);
    const { csr, dense } = cells(rng, 5);
    const bg = cells(rng, 4);
    const steps = 3;
    const draws = drawReferences(JOBS.cells.length, steps, 4, 7);
    const s = await gpuRows(model, csr, JOBS, "eg", { steps, background: bg.csr, draws });
    JOBS.cells.forEach((i, j) => {
      const x = row(dense, i);
      const want = new Float64Array(TINY.genes);
      for (let t = 0; t < steps; t++) {
        const ref = row(bg.dense, draws.ref[j * steps + t]);
        const a = draws.alpha[j * steps + t];
        const grad = fdGrad64(host, ref.map((r, g) => r + a * (x[g] - r)), JOBS.classes[j]);
        grad.forEach((v, g) => want[g] += (x[g] - ref[g]) * v / steps);
      }
      assertClose(s.rows.get(j)!, want, { atol: 2e-5, rtol: 1e-4 }, `eg job ${j}`);
    });
    // The same seed draws the same references; another seed others.
    assert.deepEqual(drawReferences(3, 2, 4, 7), drawReferences(3, 2, 4, 7));
    assert.notDeepEqual(drawReferences(3, 2, 4, 7).alpha, drawReferences(3, 2, 4, 8).alpha);
    model.destroy();
  },
);

Deno.test("the ig completeness gap shrinks as steps grow", gpuTest, async () => {
  const { model } = await tinyModel(41);
  const { csr } = cells(new Rng(42), 40);
  const jobs = {
    cells: Int32Array.from({ length: 120 }, (_, j) => j % 40),
    classes: Int32Array.from({ length: 120 }, (_, j) => Math.floor(j / 40)),
  };
  const rt = await testRuntime();
  const gap = async (steps: number) => {
    const s = await attribute(rt, model, csr, jobs, { method: "ig", steps });
    const c = s.completeness!;
    return c.total.reduce((a, t, j) => a + Math.abs(t - c.delta[j]), 0) / jobs.cells.length;
  };
  const gaps = [await gap(1), await gap(4), await gap(16), await gap(64)];
  // Midpoint sums of a piecewise-linear path converge as the kinks' share of cells shrinks.
  assert.ok(gaps[0] > 1e-2, `one step leaves a gap (${gaps})`);
  for (let k = 1; k < gaps.length; k++) assert.ok(gaps[k] < gaps[k - 1], `gaps ${gaps}`);
  assert.ok(gaps[3] < gaps[0] / 10, `gaps ${gaps}`);
  model.destroy();
});

Deno.test(
  "bad input: unknown class names list the model's classes; eg needs references",
  gpuTest,
  async () => {
    assert.throws(
      () => resolveClasses(["B", "NK", "Mk"], ["NK", "T cell"]),
      isScnym(/unknown class "T cell"; the model's classes: B, NK, Mk/),
    );
    assert.deepEqual(resolveClasses(["B", "NK", "Mk"], ["Mk", "B"]), [2, 0]);
    const { model } = await tinyModel(51);
    const { csr } = cells(new Rng(52), 3);
    const rt = await testRuntime();
    const jobs = { cells: Int32Array.of(0), classes: Int32Array.of(0) };
    await assert.rejects(attribute(rt, model, csr, jobs, { method: "eg" }), isScnym(/reference/));
    await assert.rejects(
      attribute(rt, model, csr, jobs, { method: "ig", steps: 0 }),
      isScnym(/steps 0/),
    );
    model.destroy();
  },
);

// ------------------------------------------------------------------ the command line

/** A saved tiny model over genes G0..G8 with classes B, NK, Mk, and a query of counts. */
async function cliFixture(dir: string) {
  const { model } = await tinyModel(61);
  const tensors = await model.download();
  model.destroy();
  const genes = Array.from({ length: TINY.genes }, (_, g) => `G${g}`);
  const path = `${dir}/m.scnym`;
  await saveModel(path, {
    toolVersion: "test",
    createdAt: "2024-01-01T00:00:00Z",
    seed: 0,
    config: resolveConfig("default", { model: { hidden: TINY.hidden, layers: TINY.layers } }),
    genes,
    classes: ["B", "NK", "Mk"],
    domains: [],
    normalisation: "counts->log1p_cpm",
    training: {},
  }, tensors);
  const rng = new Rng(62);
  const counts = (cols: number) => {
    const dense = Float32Array.from({ length: 40 * cols }, () => rng.int(4));
    return csrFromDense(dense, 40, cols);
  };
  const cellNames = Array.from({ length: 40 }, (_, i) => `c${i}`);
  const query = `${dir}/q.h5ad`;
  await writeH5ad(query, { X: counts(9), obs: dataFrame(cellNames), var: dataFrame(genes) });
  const partial = `${dir}/partial.h5ad`;
  await writeH5ad(partial, {
    X: counts(3),
    obs: dataFrame(cellNames),
    var: dataFrame(genes.slice(0, 3)),
  });
  return { model: path, query, partial };
}

Deno.test(
  "interpret CLI: outputs, unknown classes, missing genes as predict, nothing half-written",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "scnym-interpret-test-" });
    try {
      const f = await cliFixture(dir);
      const scnym = (...args: string[]) => runScript("cli.ts", args);
      const base = ["--model", f.model, "--query", f.query];
      const ok = await scnym(
        "interpret",
        ...base,
        "--method",
        "ig",
        "--steps",
        "8",
        "--out",
        `${dir}/s.json`,
        "--predictions",
        `${dir}/p.h5ad`,
        "--top",
        "4",
      );
      assert.equal(ok.code, 0, ok.stderr);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/s.json`));
      assert.equal(json.method, "ig");
      assert.equal(json.steps, 8);
      assert.ok(json.classes.every((c: { top: unknown[] }) => c.top.length <= 4));
      const uns = (await readH5ad(`${dir}/p.h5ad`)).uns.scNym_saliency as Record<string, unknown>;
      assert.deepEqual(uns.classes, json.classes.map((c: { name: string }) => c.name));
      assert.deepEqual([...listDir(dir)].filter((n) => n.includes("partial.h5ad.")), []);

      const before = listDir(dir);
      const bad = await scnym("interpret", ...base, "--class", "T cell", "--out", `${dir}/x.csv`);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /unknown class "T cell"; the model's classes: B, NK, Mk/);
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      // A query lacking most of the model's genes is refused with predict's own message.
      const q = ["--model", f.model, "--query", f.partial];
      const p = await scnym("predict", ...q, "--out", `${dir}/x.csv`);
      const i = await scnym("interpret", ...q, "--out", `${dir}/x.csv`);
      assert.equal(i.code, p.code);
      assert.notEqual(i.code, 0);
      const message = (s: string) => s.trim().split("\n").at(-1)!.replace(/^scnym \w+: /, "");
      assert.equal(message(i.stderr), message(p.stderr));
      assert.match(message(i.stderr), /3 of the model's 9 genes/);
      assert.deepEqual(listDir(dir), before, "nothing written by the failures");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

function listDir(dir: string): Set<string> {
  return new Set([...Deno.readDirSync(dir)].map((e) => e.name));
}

Deno.test("the report's saliency section: one bar chart per class, text escaped", () => {
  const cls = (name: string, genes: string[]) => ({
    name,
    cells: 3,
    top: genes.map((gene, i) => ({ gene, attribution: 1 - i / 4, expression: 2 })),
    completeness: { gap: 0.01, delta: 2 },
  });
  const html = saliencySection({
    method: "ig",
    steps: 50,
    cellSet: "predicted",
    classes: [cls("<B>", ["CD79A", "MS4A1"]), cls("NK", ["GNLY"])],
    uncertain: [{
      cell: 4,
      confidence: 0.3,
      predicted: { name: "NK", genes: ["GNLY"] },
      runnerUp: { name: "<B>", genes: ["CD79A"] },
    }],
  });
  assert.equal(html.match(/<svg/g)?.length, 2);
  assert.ok(!html.includes("<B>") && html.includes("&lt;B&gt;"));
  assert.match(html, /50 steps/);
  assert.match(html, /mean \|gap\|/);
  assert.match(html, /GNLY.*CD79A/s);
});
