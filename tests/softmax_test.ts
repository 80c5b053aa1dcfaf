import assert from "node:assert/strict";
import {
  sharpen,
  sharpenRef,
  softCrossEntropy,
  softCrossEntropyRef,
  softmax,
  softmaxSquaredError,
  softmaxSquaredErrorRef,
} from "../kernels/softmax.ts";
import type { Tensor } from "../runtime/runtime.ts";
import { Rng } from "../util/rng.ts";
import { softmaxRows } from "../util/softmax.ts";
import {
  assertClose,
  finiteDiff,
  gpuTest,
  isScnym,
  randn,
  randu,
  sampleIndices,
  testRuntime,
} from "./helpers.ts";

// 1 row, ragged row counts (the kernels run 64 rows per workgroup), 1 and 2 classes, many.
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 7],
  [2, 2],
  [63, 5],
  [65, 10],
  [257, 33],
  [1000, 2],
  [3, 1000],
];

/**
 * f32 exp/log differ from float64 by a few ulp; a softmax value then errs by ~1e-6 relative
 * (logits up to ~|4|), so rtol 1e-5 with a small atol for the tiniest probabilities.
 */
const SOFTMAX_TOL = { rtol: 1e-5, atol: 1e-7 };

/** Random soft labels: rows of a Dirichlet-like distribution (some rows one-hot). */
function softTargets(rng: Rng, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (r % 3 === 0) {
      t[r * cols + rng.int(cols)] = 1;
      continue;
    }
    let s = 0;
    for (let c = 0; c < cols; c++) s += t[r * cols + c] = rng.gamma(0.5);
    for (let c = 0; c < cols; c++) t[r * cols + c] /= s || 1;
  }
  return t;
}

async function readF32(t: Tensor): Promise<Float32Array> {
  return await t.read() as Float32Array;
}

Deno.test("softmax matches the CPU reference and is stable for huge logits", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(1);
  for (const [rows, cols] of SHAPES) {
    const zs = randn(rng, rows * cols, 2);
    const z = rt.upload(zs, [rows, cols]);
    assertClose(
      await softmax(rt, z).read(),
      softmaxRows(zs, cols),
      SOFTMAX_TOL,
      `[${rows}x${cols}]`,
    );
    z.release();
  }
  // exp(1e4) overflows f32: only the max-subtracted form survives.
  const zs = new Float32Array([1e4, 1e4 - 1, -1e4, 0, -3e4, -3e4 + 2]);
  const z = rt.upload(zs, [2, 3]);
  const p = await softmax(rt, z).read();
  assert.ok(p.every(Number.isFinite), `finite: ${p}`);
  assertClose(p, softmaxRows(zs, 3), SOFTMAX_TOL, "huge logits");
  z.release();
});

Deno.test(
  "sharpen matches the CPU reference; confidence is the max before sharpening",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(2);
    for (const [rows, cols] of SHAPES) {
      const zs = randn(rng, rows * cols, 3);
      const q = softmaxRows(zs, cols);
      const qs = Float32Array.from(q);
      if (cols > 2) qs[0] = 0; // exact zeros must stay zero (pow(0, 1/T) is undefined in WGSL)
      const probs = rt.upload(qs, [rows, cols]);
      for (const T of [0.5, 1, 2]) {
        const got = sharpen(rt, probs, T);
        const want = sharpenRef(qs, rows, cols, T);
        // q^(1/T) through f32 pow (exp2/log2): ~1e-6 relative.
        assertClose(await got.probs.read(), want.probs, SOFTMAX_TOL, `[${rows}x${cols}] T=${T}`);
        assertClose(await got.confidence.read(), want.confidence, {}, "confidence"); // exact
        got.probs.release();
        got.confidence.release();
      }
      probs.release();
    }
    // T = 0.5 squares and renormalises: [0.6, 0.4] -> [0.36, 0.16] / 0.52.
    const probs = rt.upload(new Float32Array([0.6, 0.4]), [1, 2]);
    assertClose(await sharpen(rt, probs, 0.5).probs.read(), [0.36 / 0.52, 0.16 / 0.52], {
      rtol: 1e-6,
    }, "T=0.5");
  },
);

const LOSSES = [
  ["softCrossEntropy", softCrossEntropy, softCrossEntropyRef],
  ["softmaxSquaredError", softmaxSquaredError, softmaxSquaredErrorRef],
] as const;

Deno.test(
  "fused losses match the CPU references, with row weights and scale",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(3);
    for (const [name, gpuLoss, refLoss] of LOSSES) {
      for (const [rows, cols] of SHAPES) {
        const zs = randn(rng, rows * cols, 2);
        const ts = softTargets(rng, rows, cols);
        const ws = randu(rng, rows).map((v) => (v < 0.3 ? 0 : v)); // some rows excluded
        const z = rt.upload(zs, [rows, cols]);
        const t = rt.upload(ts, [rows, cols]);
        const w = rt.upload(ws);
        for (const opts of [{}, { rowWeight: w, scale: 0.7 }]) {
          const label = `${name} [${rows}x${cols}] ${"scale" in opts ? "weighted" : "plain"}`;
          const got = gpuLoss(rt, z, t, opts);
          const want = refLoss(
            zs,
            ts,
            rows,
            cols,
            "scale" in opts ? { rowWeight: ws, scale: 0.7 } : {},
          );
          // Row terms carry the softmax error (~1e-6 relative); the sum over rows adds f32
          // rounding of at most 1024 terms: rtol 2e-5.
          assertClose(
            await got.loss.read(),
            [want.loss],
            { rtol: 2e-5, atol: 1e-7 },
            `${label} loss`,
          );
          assertClose(
            await got.dlogits.read(),
            want.dlogits,
            { rtol: 1e-4, atol: 1e-7 },
            `${label} dz`,
          );
          got.loss.release();
          got.dlogits.release();
        }
        for (const x of [z, t, w]) x.release();
      }
    }
  },
);

Deno.test(
  "fused loss gradients equal finite differences of the float64 references",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    for (const [name, gpuLoss, refLoss] of LOSSES) {
      for (const [rows, cols] of [[1, 3], [5, 4], [70, 6]] as const) {
        const zs = randn(rng, rows * cols, 2);
        // Targets not summing to 1 exercise the general cross-entropy gradient.
        const ts = softTargets(rng, rows, cols).map((v, i) => (i % 5 === 0 ? 1.5 * v : v));
        const ws = randu(rng, rows);
        const z = rt.upload(zs, [rows, cols]);
        const t = rt.upload(ts, [rows, cols]);
        const w = rt.upload(ws);
        const dz = await gpuLoss(rt, z, t, { rowWeight: w, scale: 2 }).dlogits.read();
        const idx = sampleIndices(rng, rows * cols, 30);
        const f = (zz: Float64Array) =>
          refLoss(zz, ts, rows, cols, { rowWeight: ws, scale: 2 }).loss;
        const fd = finiteDiff(f, zs, 1e-4, idx);
        // Float64 central differences with h = 1e-4 err by ~h^2 * |f'''| ~ 1e-8; the GPU gradient
        // by ~1e-6 relative: atol 1e-6 (gradients are O(1/rows)).
        assertClose(
          idx.map((i) => dz[i]),
          idx.map((i) => fd[i]),
          { atol: 1e-6, rtol: 1e-4 },
          `${name} [${rows}x${cols}]`,
        );
        for (const x of [z, t, w]) x.release();
      }
    }
  },
);

Deno.test(
  "finite differences through the GPU losses agree with the GPU gradients",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(5);
    const [rows, cols] = [7, 5];
    for (const [name, gpuLoss] of LOSSES) {
      const zs = randn(rng, rows * cols);
      const ts = softTargets(rng, rows, cols);
      const t = rt.upload(ts, [rows, cols]);
      const lossAt = async (v: Float32Array) => {
        const z = rt.upload(v, [rows, cols]);
        const r = gpuLoss(rt, z, t);
        const l = (await r.loss.read())[0];
        for (const x of [z, r.loss, r.dlogits]) x.release();
        return l;
      };
      const z = rt.upload(zs, [rows, cols]);
      const dz = await gpuLoss(rt, z, t).dlogits.read();
      const h = 1e-2;
      for (const i of sampleIndices(rng, rows * cols, 10)) {
        const plus = zs.slice();
        plus[i] += h;
        const minus = zs.slice();
        minus[i] -= h;
        const fd = (await lossAt(plus) - await lossAt(minus)) / (2 * h);
        // Each f32 loss (~1) carries ~3e-7 rounding, divided by 2h: ~3e-5; the h^2 term of a
        // softmax loss adds ~h^2 |f'''| / 6 ~ 2e-5. atol 2e-4.
        assertClose([dz[i]], [fd], { atol: 2e-4 }, `${name} element ${i}`);
      }
      t.release();
      z.release();
    }
  },
);

Deno.test("losses add into a metrics slot; extreme logits stay finite", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(6);
  const [rows, cols] = [300, 4];
  const zs = randn(rng, rows * cols, 30); // saturated softmax
  const ts = softTargets(rng, rows, cols);
  const z = rt.upload(zs, [rows, cols]);
  const t = rt.upload(ts, [rows, cols]);
  const metrics = rt.upload(new Float32Array([10, 20, 30]));
  const a = softCrossEntropy(rt, z, t, { lossAccumulator: { tensor: metrics, index: 1 } });
  const b = softmaxSquaredError(rt, z, t, { lossAccumulator: { tensor: metrics, index: 1 } });
  const la = (await a.loss.read())[0];
  const lb = (await b.loss.read())[0];
  assert.ok(Number.isFinite(la) && Number.isFinite(lb));
  assert.ok((await readF32(a.dlogits)).every(Number.isFinite));
  assertClose(await metrics.read(), [10, 20 + la + lb, 30], { rtol: 1e-6 }, "metrics");
  assertClose(
    [la],
    [softCrossEntropyRef(zs, ts, rows, cols).loss],
    { rtol: 1e-4 },
    "saturated loss",
  );
  for (const x of [z, t, metrics, a.loss, a.dlogits, b.loss, b.dlogits]) x.release();
});

Deno.test("softmax ops reject bad shapes and parameters", gpuTest, async () => {
  const rt = await testRuntime();
  const z = rt.full([4, 3], 0);
  const check = (f: () => unknown, re: RegExp) => assert.throws(f, isScnym(re));
  check(
    () => softCrossEntropy(rt, z, rt.full([4, 2], 0)),
    /softCrossEntropy: targets is f32\[4x2\], expected f32\[4x3\]/,
  );
  check(
    () => softmaxSquaredError(rt, z, z, { rowWeight: rt.full([3], 1) }),
    /softmaxSquaredError: rowWeight is f32\[3\], expected f32\[4\]/,
  );
  check(
    () => softCrossEntropy(rt, z, z, { lossAccumulator: { tensor: rt.full([2], 0), index: 2 } }),
    /lossAccumulator is f32\[2\] with index 2/,
  );
  check(() => sharpen(rt, z, 0), /sharpen: temperature is 0/);
  check(() => softmax(rt, rt.full([12], 0)), /softmax: logits is f32\[12\], expected a 2-D/);
  check(
    () => softmax(rt, rt.tensor([3, 0])),
    /softmax: logits is f32\[3x0\], expected >= 1 column/,
  );
  z.release();
});
