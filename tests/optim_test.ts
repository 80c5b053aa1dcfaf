import assert from "node:assert/strict";
import { roundBf16 } from "../kernels/bf16.ts";
import { ADADELTA_DEFAULTS, adadeltaStep, adadeltaStepRef } from "../kernels/optim.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, gpuTest, isScnym, randn, testRuntime } from "./helpers.ts";

Deno.test("adadeltaStep follows the float64 reference over many steps", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(1);
  const settings = [
    {},
    { lr: 0.5, rho: 0.95, eps: 1e-4, weightDecay: 0 },
    { weightDecay: 0.1 },
  ];
  // [1], [7, 3] and [257, 65] take the scalar kernel, [4] and [2000, 256] the vec4 one.
  for (const shape of [[1], [4], [1, 1], [7, 3], [257, 65], [2000, 256]]) {
    for (const opts of settings) {
      const n = shape.reduce((a, b) => a * b, 1);
      const p0 = randn(rng, n);
      const param = rt.upload(p0, shape);
      const sqAvg = rt.full(shape, 0);
      const accDelta = rt.full(shape, 0);
      const want = { p: Float64Array.from(p0), v: new Float64Array(n), u: new Float64Array(n) };
      const grad = rt.tensor(shape);
      for (let step = 0; step < 12; step++) {
        // Gradients of varying scale, including exact zeros (decay alone moves the weight).
        const gs = randn(rng, n, step % 3 === 0 ? 10 : 0.1).map((v, i) => (i % 11 === 0 ? 0 : v));
        rt.write(grad, gs);
        adadeltaStep(rt, param, grad, sqAvg, accDelta, opts);
        adadeltaStepRef(want.p, gs, want.v, want.u, opts);
      }
      // Each step rounds a handful of f32 operations (~1e-7 relative each) into the state, and
      // the steps compound them mildly over 12 steps: rtol 1e-5 on the states. The parameter
      // moves by lr * delta per step (|delta| ~ 1e-3 .. 1e-2 this early), so its absolute error
      // stays below ~1e-7 * |p| + 12 * 1e-5 * |delta|: atol 1e-6 with rtol 1e-6.
      const label = `${JSON.stringify(shape)} ${JSON.stringify(opts)}`;
      assertClose(await param.read(), want.p, { rtol: 1e-6, atol: 1e-6 }, `param ${label}`);
      assertClose(await sqAvg.read(), want.v, { rtol: 1e-5, atol: 1e-12 }, `sqAvg ${label}`);
      assertClose(await accDelta.read(), want.u, { rtol: 1e-5, atol: 1e-14 }, `accDelta ${label}`);
      for (const t of [param, sqAvg, accDelta, grad]) t.release();
    }
  }
});

Deno.test(
  "adadeltaStep with a bf16 copy updates exactly as without and writes the copy of the result",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    for (const shape of [[4], [13, 12], [300, 256]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const p0 = randn(rng, n);
      const [plain, fused] = [0, 1].map(() => ({
        param: rt.upload(p0, shape),
        sqAvg: rt.full(shape, 0),
        accDelta: rt.full(shape, 0),
      }));
      const copy = rt.tensor([n / 2], "u32");
      const grad = rt.tensor(shape);
      for (let step = 0; step < 3; step++) {
        rt.write(grad, randn(rng, n, 0.1));
        for (const s of [plain, fused]) {
          adadeltaStep(rt, s.param, grad, s.sqAvg, s.accDelta, {
            bf16Copy: s === fused ? copy : undefined,
          });
        }
      }
      const [a, b, words] = await rt.readAll([plain.param, fused.param, copy]);
      assert.deepEqual(b, a, `param ${shape}`);
      const got = Float32Array.from(
        { length: n },
        (_, i) =>
          new Float32Array(
            Uint32Array.of(i % 2 ? words[i >> 1] & 0xffff0000 : words[i >> 1] << 16).buffer,
          )[0],
      );
      assert.deepEqual(got, Float32Array.from(a, roundBf16), `bf16 copy ${shape}`);
      for (const s of [plain, fused]) for (const t of Object.values(s)) t.release();
      copy.release();
      grad.release();
    }
    const p = rt.full([6], 0);
    assert.throws(
      () =>
        adadeltaStep(rt, p, rt.full([6], 0), rt.full([6], 0), rt.full([6], 0), {
          bf16Copy: rt.tensor([3], "u32"),
        }),
      /bf16Copy must be u32 with 3 values .* \(size a multiple of 4\)/,
    );
  },
);

Deno.test("adadelta's first step from zero state has the closed form sqrt(eps / (eps + (1-rho) g^2)) g", () => {
  // A check of the reference itself, independent of its loop: with u = v = 0 initially,
  // delta = sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g.
  const { rho, eps, weightDecay } = ADADELTA_DEFAULTS;
  const p = Float64Array.of(0.5, -2, 0);
  const g = [1, 0.001, -3];
  const v = new Float64Array(3);
  const u = new Float64Array(3);
  const p0 = Float64Array.from(p);
  adadeltaStepRef(p, g, v, u);
  for (let i = 0; i < 3; i++) {
    const gg = g[i] + weightDecay * p0[i];
    const delta = Math.sqrt(eps) / Math.sqrt((1 - rho) * gg * gg + eps) * gg;
    assert.ok(Math.abs(p[i] - (p0[i] - delta)) < 1e-15, `param ${i}`);
    assert.ok(Math.abs(u[i] - (1 - rho) * delta * delta) < 1e-18, `accDelta ${i}`);
  }
});

Deno.test(
  "adadeltaStep rejects mismatched shapes, aliasing and bad hyper-parameters",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const p = rt.full([4, 3], 1);
    const g = rt.full([4, 3], 1);
    const s1 = rt.full([4, 3], 0);
    const s2 = rt.full([4, 3], 0);
    const check = (f: () => unknown, re: RegExp) => assert.throws(f, isScnym(re));
    check(
      () => adadeltaStep(rt, p, rt.full([12], 1), s1, s2),
      /adadeltaStep: grad is f32\[12\], expected f32\[4x3\]/,
    );
    check(() => adadeltaStep(rt, p, g, s1, s1), /sqAvg and accDelta are the same tensor/);
    check(() => adadeltaStep(rt, p, p, s1, s2), /param and grad are the same tensor/);
    check(() => adadeltaStep(rt, p, g, s1, s2, { rho: 1.5 }), /adadeltaStep: rho is 1.5/);
    check(() => adadeltaStep(rt, p, g, s1, s2, { lr: NaN }), /adadeltaStep: lr is NaN/);
    for (const t of [p, g, s1, s2]) t.release();
  },
);
