import assert from "node:assert/strict";
import {
  axpy,
  type DropoutMask,
  dropoutRelu,
  dropoutReluBackward,
  dropoutReluBackwardRef,
  dropoutReluRef,
  gradReverseBackward,
  relu,
  reluBackward,
  reluBackwardRef,
  reluRef,
  scale,
  scaleRef,
} from "../kernels/activation.ts";
import { runVector, vectorKernel } from "../kernels/common.ts";
import { Rng } from "../util/rng.ts";
import {
  assertClose,
  dot,
  finiteDiff,
  gpuTest,
  isScnym,
  randn,
  sampleIndices,
  testRuntime,
} from "./helpers.ts";

// 1 row, ragged (not multiples of the 64-wide workgroup), a column, and a large one. Sizes that
// are multiples of 4 ([1x300], [1000x1], [512x1999]) run the vec4 builds, the others the scalar.
const SHAPES: [number, number][] = [[1, 1], [1, 300], [7, 3], [257, 65], [1000, 1], [512, 1999]];

// Elementwise f32 results are the exactly rounded f64 result: relative error <= 2^-24.
const F32_ROUNDING = { rtol: 2 ** -23 };

/** Elementwise a + b in float64. */
function plus(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

// Finite differences re-evaluate the whole float64 reference per coordinate; on the largest
// shape that costs seconds and checks nothing the smaller shapes do not.
const FD_MAX_ELEMENTS = 20_000;

/** Random data with no value within `gap` of zero, so finite differences never cross a kink. */
function awayFromZero(rng: Rng, n: number, gap: number): Float32Array {
  return randn(rng, n).map((v) => (v >= 0 ? v + gap : v - gap));
}

Deno.test(
  "relu and reluBackward (plain and guided) match the CPU references",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(2);
    for (const [rows, cols] of SHAPES) {
      const xs = randn(rng, rows * cols);
      xs[0] = 0; // ReLU'(0) = 0, as in PyTorch
      const dys = randn(rng, rows * cols);
      const x = rt.upload(xs, [rows, cols]);
      const dy = rt.upload(dys, [rows, cols]);
      const y = relu(rt, x);
      const ys = await y.read();
      assertClose(ys, reluRef(xs), {}, `relu [${rows}x${cols}]`); // a max is exact
      for (const guided of [false, true]) {
        const dx = await reluBackward(rt, y, dy, { guided }).read();
        assertClose(dx, reluBackwardRef(ys, dys, guided), {}, `reluBackward guided=${guided}`);
      }
      for (const t of [x, dy, y]) t.release();
    }
  },
);

Deno.test(
  "reluBackward is the gradient of relu (finite differences) and accumulates",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(3);
    const [rows, cols] = [33, 17];
    const h = 1e-3;
    const xs = awayFromZero(rng, rows * cols, 4 * h);
    const rs = randn(rng, rows * cols);
    const x = rt.upload(xs, [rows, cols]);
    const r = rt.upload(rs, [rows, cols]);
    const y = relu(rt, x);
    const prior = randn(rng, rows * cols);
    const dx = rt.upload(prior, [rows, cols]);
    reluBackward(rt, y, r, { out: dx, accumulate: true });
    const got = await dx.read();
    const idx = sampleIndices(rng, rows * cols, 60);
    const fd = finiteDiff((xx) => dot(reluRef(xx), rs), xs, h, idx);
    // Piecewise linear away from the kink: the float64 estimate is exact to ~1e-12; the GPU adds
    // one f32 rounding of prior + r (|.| < ~8): atol 1e-6.
    assertClose(
      idx.map((i) => got[i] - prior[i]),
      idx.map((i) => fd[i]),
      { atol: 1e-6 },
      "relu gradient",
    );
    for (const t of [x, r, y, dx]) t.release();
  },
);

Deno.test(
  "dropoutRelu and its backward match the CPU references and are gradients",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    const h = 1e-3;
    for (const [rows, cols] of SHAPES) {
      for (const p of [0, 0.1, 0.5]) {
        const mask: DropoutMask = { p, seed: 1234, stream: rows * 7 + cols };
        const xs = awayFromZero(rng, rows * cols, 4 * h);
        const dys = randn(rng, rows * cols);
        const x = rt.upload(xs, [rows, cols]);
        const dy = rt.upload(dys, [rows, cols]);
        const label = `[${rows}x${cols}] p=${p}`;
        // The mask is bit-exact (host twin of the RNG, so dropped elements must be exactly 0);
        // kept values differ by f32 rounding of x/(1-p).
        const y = dropoutRelu(rt, x, mask);
        const ys = await y.read();
        assertClose(ys, dropoutReluRef(xs, mask), F32_ROUNDING, label);
        for (const guided of [false, true]) {
          const dx = await dropoutReluBackward(rt, y, dy, p, { guided }).read();
          const want = dropoutReluBackwardRef(ys, dys, p, guided);
          assertClose(dx, want, F32_ROUNDING, `backward guided=${guided} ${label}`);
        }
        // Piecewise linear and x stays 4h from the kink: the float64 finite difference equals
        // the gradient up to ~1e-10.
        const dx = await dropoutReluBackward(rt, y, dy, p).read();
        const idx = rows * cols <= FD_MAX_ELEMENTS ? sampleIndices(rng, rows * cols, 20) : [];
        const fd = finiteDiff((xx) => dot(dropoutReluRef(xx, mask), dys), xs, h, idx);
        assertClose(
          idx.map((i) => dx[i]),
          idx.map((i) => fd[i]),
          { atol: 1e-6, rtol: 1e-6 },
          label,
        );
        for (const t of [x, dy, y]) t.release();
      }
    }
  },
);

Deno.test(
  "dropout masks are deterministic, and other streams or seeds give independent masks",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(5);
    const n = 200_003;
    // Positive inputs: relu changes nothing, so y == 0 means dropped.
    const xs = awayFromZero(rng, n, 0.01).map(Math.abs);
    const x = rt.upload(xs, [1, n]);
    const mask = { p: 0.5, seed: 99, stream: 3 };
    const y1 = await dropoutRelu(rt, x, mask).read();
    const y2 = await dropoutRelu(rt, x, mask).read();
    assert.deepEqual(y1, y2, "same seed and stream give identical bits");
    for (const other of [{ ...mask, stream: 4 }, { ...mask, seed: 100 }]) {
      const y3 = await dropoutRelu(rt, x, other).read();
      // Independent masks agree on a position with probability 1/2: ~n/2 +- 5 sd of n/4.
      const agree = y3.filter((v, i) => (v === 0) === (y1[i] === 0)).length;
      assert.ok(Math.abs(agree - n / 2) < 5 * Math.sqrt(n / 4), `masks agree at ${agree} of ${n}`);
    }
    x.release();
  },
);

Deno.test(
  "dropout drops a binomial fraction p; p = 0 is the identity, p = 1 gives zeros",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const n = 1 << 20;
    const x = rt.full([1024, 1024], 1); // positive: relu changes nothing
    for (const p of [0.1, 0.5, 0.9]) {
      const y = await dropoutRelu(rt, x, { p, seed: 7, stream: 1 }).read() as Float32Array;
      const dropped = y.filter((v) => v === 0).length;
      const sd = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(dropped - n * p) < 5 * sd, `p=${p}: dropped ${dropped} of ${n}`);
      // Survivors are scaled to keep the expectation: the mean stays 1 within 5 sd.
      const mean = y.reduce((s, v) => s + v, 0) / n;
      assert.ok(Math.abs(mean - 1) < 5 * sd / (n * (1 - p)), `p=${p}: mean ${mean}`);
    }
    assert.ok(
      (await dropoutRelu(rt, x, { p: 0, seed: 7, stream: 1 }).read()).every((v) => v === 1),
    );
    assert.ok(
      (await dropoutRelu(rt, x, { p: 1, seed: 7, stream: 1 }).read()).every((v) => v === 0),
    );
    x.release();
  },
);

Deno.test(
  "dropoutRelu: finite differences through the GPU forward agree with the GPU backward",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(7);
    const [rows, cols] = [19, 23];
    const h = 1e-2;
    const xs = awayFromZero(rng, rows * cols, 4 * h);
    const rs = randn(rng, rows * cols);
    const mask = { p: 0.5, seed: 3, stream: 8 };
    const r = rt.upload(rs, [rows, cols]);
    const x = rt.upload(xs, [rows, cols]);
    const y = dropoutRelu(rt, x, mask);
    const dx = await dropoutReluBackward(rt, y, r, mask.p).read();
    // L(x) = sum(r * dropoutRelu(x)), evaluated from GPU outputs.
    const loss = async (v: Float32Array) => {
      const t = rt.upload(v, [rows, cols]);
      const out = dropoutRelu(rt, t, mask);
      const l = dot(await out.read(), rs);
      t.release();
      out.release();
      return l;
    };
    for (const i of sampleIndices(rng, rows * cols, 12)) {
      const plus = xs.slice();
      plus[i] += h;
      const minus = xs.slice();
      minus[i] -= h;
      const fd = (await loss(plus) - await loss(minus)) / (2 * h);
      // Only element i changes, and x_i +- h is rounded to f32 (|x| < 5: error <= 2.4e-7), so
      // the estimate errs by ~|r_i| * 2 * 2.4e-7 / 0.02 ~ 5e-5 at most: atol 2e-4.
      assertClose([dx[i]], [fd], { atol: 2e-4 }, `element ${i}`);
    }
    for (const t of [r, x, y]) t.release();
  },
);

Deno.test(
  "scale, axpy and gradient reversal match references and accumulate",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(8);
    for (const [rows, cols] of SHAPES) {
      const as = randn(rng, rows * cols);
      const bs = randn(rng, rows * cols);
      const a = rt.upload(as, [rows, cols]);
      const b = rt.upload(bs, [rows, cols]);
      const label = `[${rows}x${cols}]`;
      assertClose(
        await scale(rt, a, -2.5).read(),
        scaleRef(as, -2.5),
        F32_ROUNDING,
        `scale ${label}`,
      );
      // Gradient reversal: dx = -w dy, added into an existing gradient.
      const g = rt.upload(bs, [rows, cols]);
      gradReverseBackward(rt, a, 0.1, { out: g, accumulate: true });
      const want = plus(bs, scaleRef(as, -0.1));
      // Two roundings (the product, then the sum): 2 ulp of the larger operand.
      const tol = { atol: 2 * 2 ** -24 * 5, rtol: 2 ** -22 };
      assertClose(await g.read(), want, tol, `gradReverse ${label}`);
      // axpy in place: b += 3 a.
      axpy(rt, 3, a, b);
      assertClose(await b.read(), plus(bs, scaleRef(as, 3)), {
        atol: 4 * 2 ** -24 * 20,
        rtol: 2 ** -22,
      }, `axpy ${label}`);
      for (const t of [a, b, g]) t.release();
    }
  },
);

// Writes i * 1000 + cols into every value of index i: the output shows which build ran and
// what `cols` it was given.
const WIDTH_PROBE = vectorKernel({
  name: "test_width_probe",
  params: { cols: "u32" },
  buffers: { out: "rw" },
  body: `  out[i] = T(f32(i * 1000u + p.cols));`,
});

Deno.test(
  "runVector takes the vec4 build iff n and the named counts are multiples of 4",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const probe = async (n: number, cols: number) => {
      const out = rt.tensor([n]);
      runVector(rt, WIDTH_PROBE, n, { out }, { cols }, ["cols"]);
      const got = [...await out.read()];
      out.release();
      return got;
    };
    // vec4: two indices of 4 values each, cols passed in vec4s.
    assert.deepEqual(await probe(8, 12), [3, 3, 3, 3, 1003, 1003, 1003, 1003]);
    const scalar = (n: number, cols: number) =>
      Array.from({ length: n }, (_, i) => i * 1000 + cols);
    assert.deepEqual(await probe(8, 6), scalar(8, 6), "a count not a multiple of 4");
    assert.deepEqual(await probe(9, 12), scalar(9, 12), "n not a multiple of 4");
  },
);

Deno.test(
  "the vec4 builds give the scalar builds' bits (n values against the same plus one)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(9);
    const n = 4 * 1031; // vec4; n + 1 values take the scalar builds
    const xs = randn(rng, n + 1);
    xs[0] = 0;
    const dys = randn(rng, n + 1);
    const priors = randn(rng, n + 1);
    const mask = { p: 0.3, seed: 5, stream: 6 };
    const run = async (len: number) => {
      const [x, dy, acc] = [xs, dys, priors].map((a) => rt.upload(a.subarray(0, len), [1, len]));
      const y = dropoutRelu(rt, x, mask);
      dropoutReluBackward(rt, y, dy, mask.p, { guided: true, out: acc, accumulate: true });
      axpy(rt, -0.7, dy, acc);
      const outs = [relu(rt, x), y, reluBackward(rt, x, dy), scale(rt, x, 1 / 3), acc];
      const got = await rt.readAll(outs);
      for (const t of [x, dy, ...outs]) t.release();
      // Same bits, not just equal values (-0 against +0 would count).
      return got.map((a) => new Uint32Array(a.buffer, 0, n));
    };
    const vec4 = await run(n);
    const scalar = await run(n + 1);
    const names = ["relu", "dropoutRelu", "reluBackward", "scale", "accumulated backward+axpy"];
    names.forEach((name, k) => assert.deepEqual(vec4[k], scalar[k], name));
  },
);

Deno.test("activation ops reject mismatched shapes, aliasing and bad rates", gpuTest, async () => {
  const rt = await testRuntime();
  const x = rt.full([4, 3], 1);
  const y = rt.full([3, 4], 1);
  assert.throws(() => axpy(rt, 1, x, y), isScnym(/axpy: y is f32\[3x4\], expected f32\[4x3\]/));
  assert.throws(() => relu(rt, x, { out: x }), isScnym(/relu: out f32\[4x3\] is also an input/));
  assert.throws(() => reluBackward(rt, x, y), isScnym(/reluBackward: dy/));
  assert.throws(
    () => scale(rt, x, 2, { accumulate: true }),
    isScnym(/scale: accumulate needs an out/),
  );
  assert.throws(
    () => dropoutRelu(rt, x, { p: 1.5, seed: 1, stream: 1 }),
    isScnym(/dropoutRelu: p is 1.5/),
  );
  assert.throws(
    () => dropoutRelu(rt, x, { p: 0.5, seed: -1, stream: 1 }),
    isScnym(/dropoutRelu: seed/),
  );
  assert.throws(() => dropoutReluBackward(rt, x, x, 2), isScnym(/dropoutReluBackward: p is 2/));
  assert.throws(() => scale(rt, x, NaN), isScnym(/scale: factor is NaN/));
  x.release();
  y.release();
});
