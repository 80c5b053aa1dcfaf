import assert from "node:assert/strict";
import { augmentLog1pDrop, augmentLog1pDropRef } from "../kernels/augment.ts";
import { countCorrect, countCorrectRef, oneHot } from "../kernels/labels.ts";
import { mixRows, mixRowsBackward, mixRowsRef, mixupPlan, mixupPlanRef } from "../kernels/mixup.ts";
import { Rng } from "../util/rng.ts";
import {
  assertClose,
  dot,
  finiteDiff,
  gpuTest,
  randn,
  randu,
  sampleIndices,
  testRuntime,
} from "./helpers.ts";

const cases: [number, number, number][] = [
  // nU, nX, minConfidence share
  [1, 1, 0],
  [3, 5, 0.5],
  [256, 256, 0],
  [256, 256, 0.9],
  [100, 412, 0.3],
  [1000, 1000, 0.5],
];

Deno.test(
  "mixupPlan matches its CPU reference and pairs eligible rows bijectively",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(11);
    for (const [nU, nX, minConfidence] of cases) {
      const conf = randu(rng, nU);
      const opts = { alpha: 0.3, minConfidence, seed: 7, stream: nU * 31 + nX };
      const order = rng.permutation(nU + nX);
      const plan = mixupPlan(rt, rt.upload(conf), rt.upload(order), nU, nX, opts);
      const [partner, inverse, gamma, eligible, eligibleMean] = await rt.readAll([
        plan.partner,
        plan.inverse,
        plan.gamma,
        plan.eligible,
        plan.eligibleMean,
      ]);
      const ref = mixupPlanRef(conf, order, nU, nX, opts);
      const label = `nU ${nU} nX ${nX} minConf ${minConfidence}`;
      assert.deepEqual([...partner], ref.partner, `${label}: partner`);
      assert.deepEqual([...eligible], ref.eligible, `${label}: eligible`);
      // gamma: f32 shader Beta vs f64 twin from the same uniforms; the log-gamma path loses a few
      // ulps, so 1e-4 absolute (gamma lies in [0.5, 1]).
      assertClose(gamma, ref.gamma, { atol: 1e-4 }, `${label}: gamma`);
      const n = nU + nX;
      const count = ref.eligible.reduce((a, b) => a + b, 0);
      for (let i = 0; i < n; i++) {
        assert.equal(inverse[partner[i]], i, `${label}: inverse of partner at ${i}`);
        assert.ok(gamma[i] >= 0.5 && gamma[i] <= 1, `${label}: gamma ${gamma[i]}`);
        assert.ok(Math.abs(eligibleMean[i] - (ref.eligible[i] * n) / count) < 1e-4 * n);
        if (!ref.eligible[i]) assert.equal(partner[i], i);
        else {assert.equal(
            ref.eligible[partner[i]],
            1,
            `${label}: eligible rows pair among themselves`,
          );}
      }
    }
  },
);

Deno.test(
  "mixupPlan: labelled rows pair with target rows too; gamma varies by stream",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const opts = { alpha: 0.3, minConfidence: 0, seed: 1, stream: 0 };
    const order = rt.upload(new Rng(5).permutation(512));
    const a = mixupPlan(rt, null, order, 256, 256, opts);
    const b = mixupPlan(rt, null, order, 256, 256, { ...opts, stream: 1 });
    const partner = await a.partner.read();
    let cross = 0;
    for (let i = 256; i < 512; i++) if (partner[i] < 256) cross++;
    // A uniform bijection pairs about half the labelled rows with target rows (sd ~8).
    assert.ok(cross > 90 && cross < 166, `cross pairs ${cross}`);
    assert.notDeepEqual([...(await a.gamma.read())], [...(await b.gamma.read())]);
  },
);

Deno.test("mixRows and mixRowsBackward match the reference and are adjoint", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(3);
  // f = 256 runs the vec4 builds (F % 4 == 0), the others the scalar builds.
  for (const [nU, nX, f] of [[1, 1, 1], [5, 3, 7], [256, 256, 256], [31, 97, 13]]) {
    const n = nU + nX;
    const plan = mixupPlan(rt, rt.upload(randu(rng, nU)), rt.upload(rng.permutation(n)), nU, nX, {
      alpha: 0.3,
      minConfidence: 0.4,
      seed: 5,
      stream: f,
    });
    const x = randn(rng, n * f);
    const { top, bottom } = mixRows(rt, rt.upload(x, [n, f]), plan, nU);
    const [partner, gamma] = await rt.readAll([plan.partner, plan.gamma]);
    const want = mixRowsRef(x, f, partner, gamma);
    const got = new Float32Array([...(await top.read()), ...(await bottom.read())]);
    // One fused multiply-add in f32: relative 1e-6 plus a small absolute floor.
    assertClose(got, want, { rtol: 1e-5, atol: 1e-6 }, `mixRows ${nU}+${nX}x${f}`);

    // Backward: <dy, M x> = <M^T dy, x>, and finite differences of the reference.
    const dy = randn(rng, n * f);
    const dx = await mixRowsBackward(
      rt,
      rt.upload(dy.subarray(0, nU * f), [nU, f]),
      rt.upload(dy.subarray(nU * f), [nX, f]),
      plan,
    ).read();
    const idx = sampleIndices(rng, n * f, 200);
    const fd = finiteDiff((xx) => dot(mixRowsRef(xx, f, partner, gamma), dy), x, 1e-3, idx);
    // The map is linear, so central differences are exact up to f64 rounding; f32 GPU sums of
    // two products: 1e-5 relative.
    assertClose(
      idx.map((i) => dx[i]),
      idx.map((i) => fd[i]),
      { rtol: 1e-4, atol: 1e-5 },
      `mixRowsBackward ${nU}+${nX}x${f}`,
    );

    // Accumulate adds onto what is there.
    const base = rt.full([n, f], 2);
    const acc = await mixRowsBackward(
      rt,
      rt.upload(dy.subarray(0, nU * f), [nU, f]),
      rt.upload(dy.subarray(nU * f), [nX, f]),
      plan,
      { out: base, accumulate: true },
    ).read();
    assertClose(acc, Array.from(dx, (v) => v + 2), { rtol: 1e-6, atol: 1e-6 }, "accumulate");
  }
});

Deno.test(
  "mixRows and its backward: the vec4 builds give the scalar builds' bits (F against F + 1)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    const [nU, nX, F] = [40, 24, 256]; // vec4; F + 1 columns take the scalar builds
    const n = nU + nX;
    const plan = mixupPlan(rt, rt.upload(randu(rng, nU)), rt.upload(rng.permutation(n)), nU, nX, {
      alpha: 0.3,
      minConfidence: 0.4,
      seed: 2,
      stream: 9,
    });
    const [xs, dys, priors] = [randn(rng, n * F), randn(rng, n * F), randn(rng, n * F)];
    const run = async (cols: number) => {
      // The same columns, plus a column of ones when cols = F + 1.
      const widen = (a: Float32Array, rows: number) =>
        Float32Array.from(
          { length: rows * cols },
          (_, i) => i % cols < F ? a[Math.floor(i / cols) * F + i % cols] : 1,
        );
      const { top, bottom } = mixRows(rt, rt.upload(widen(xs, n), [n, cols]), plan, nU);
      const dTop = rt.upload(widen(dys.subarray(0, nU * F), nU), [nU, cols]);
      const dBottom = rt.upload(widen(dys.subarray(nU * F), nX), [nX, cols]);
      const dx = rt.upload(widen(priors, n), [n, cols]);
      mixRowsBackward(rt, dTop, dBottom, plan, { out: dx, accumulate: true });
      // The first F columns, as bits (-0 against +0 would count).
      return (await rt.readAll([top, bottom, dx])).map((a) =>
        new Uint32Array(a.buffer).filter((_, i) => i % cols < F)
      );
    };
    const vec4 = await run(F);
    const scalar = await run(F + 1);
    ["top", "bottom", "dx"].forEach((name, k) => assert.deepEqual(vec4[k], scalar[k], name));
  },
);

Deno.test("oneHot writes the requested row range only", gpuTest, async () => {
  const rt = await testRuntime();
  const out = rt.full([5, 3], -1);
  oneHot(rt, rt.upload(new Uint32Array([2, 0]), [2], "u32"), 3, { out, rowOffset: 2 });
  assert.deepEqual([...(await out.read())], [
    -1,
    -1,
    -1,
    -1,
    -1,
    -1,
    0,
    0,
    1,
    1,
    0,
    0,
    -1,
    -1,
    -1,
  ]);
});

Deno.test(
  "augmentLog1pDrop matches the reference; zeros and unselected rows untouched",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(9);
    // Rows of varied length, including an empty row and a one-entry row.
    const lengths = [0, 1, 5, 64, 65, 700, 3, 2000];
    const indptr = new Uint32Array(lengths.length + 1);
    lengths.forEach((l, i) => indptr[i + 1] = indptr[i] + l);
    const data = randu(rng, indptr[lengths.length], 0.1, 6);
    const opts = { p: 0.3, seed: 4, stream: 17 };
    const d = rt.upload(data);
    augmentLog1pDrop(rt, rt.upload(indptr), d, 1, lengths.length, opts);
    const got = await d.read();
    const want = augmentLog1pDropRef(indptr, data, 1, lengths.length, opts);
    // exp/log in f32 over values up to e^6: relative 1e-4 (llvmpipe's exp/log are within a few ulp).
    assertClose(got, want, { rtol: 1e-4, atol: 1e-4 }, "augmented values");
    let dropped = 0;
    for (let j = 0; j < got.length; j++) if (got[j] === 0) dropped++;
    const rate = dropped / got.length;
    assert.ok(Math.abs(rate - 0.3) < 0.05, `drop rate ${rate}`);
    // Library size is preserved for rows that kept something.
    for (let r = 2; r < lengths.length; r++) {
      let before = 0;
      let after = 0;
      for (let j = indptr[r]; j < indptr[r + 1]; j++) {
        before += Math.expm1(data[j]);
        after += Math.expm1(got[j]);
      }
      assert.ok(Math.abs(after - before) <= 1e-3 * before, `row ${r}: ${after} vs ${before}`);
    }
  },
);

Deno.test("countCorrect adds argmax hits to a metrics slot", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(2);
  const n = 777;
  const c = 9;
  const logits = randn(rng, n * c);
  const labels = Uint32Array.from({ length: n }, () => rng.int(c));
  const metrics = rt.full([4], 0);
  countCorrect(rt, rt.upload(logits, [n, c]), rt.upload(labels), metrics, 2);
  countCorrect(rt, rt.upload(logits, [n, c]), rt.upload(labels), metrics, 2);
  const m = await metrics.read();
  assert.equal(m[2], 2 * countCorrectRef(logits, labels, c));
  assert.equal(m[0], 0);
});
