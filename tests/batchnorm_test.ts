import assert from "node:assert/strict";
import {
  batchNormEval,
  batchNormEvalBackward,
  batchNormEvalBackwardRef,
  batchNormEvalRef,
  type BatchNormState,
  batchNormTrain,
  batchNormTrainBackward,
  batchNormTrainBackwardRef,
  batchNormTrainRef,
} from "../kernels/batchnorm.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { Rng } from "../util/rng.ts";
import {
  assertClose,
  dot,
  finiteDiff,
  gpuTest,
  isScnym,
  randn,
  randu,
  sampleIndices,
  testRuntime,
} from "./helpers.ts";

// Batch sizes 2..1024, features 1..1000, ragged against the 64-wide workgroups. Feature counts
// that are multiples of 4 (1000, 256) run the vec4 builds, the others the scalar builds.
const SHAPES: [number, number][] = [
  [2, 1],
  [2, 1000],
  [7, 3],
  [65, 33],
  [256, 256],
  [1024, 1],
  [1024, 1000],
];

interface HostState {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

function hostState(rng: Rng, cols: number): HostState {
  return {
    gamma: randn(rng, cols).map((v) => 1 + 0.5 * v),
    beta: randn(rng, cols),
    runningMean: randn(rng, cols),
    runningVar: randu(rng, cols, 0.5, 2),
  };
}

function upload(rt: Runtime, s: HostState): BatchNormState {
  return {
    gamma: rt.upload(s.gamma),
    beta: rt.upload(s.beta),
    runningMean: rt.upload(s.runningMean),
    runningVar: rt.upload(s.runningVar),
  };
}

/** The first `keep` columns of a row-major matrix with `cols` columns (a vector: one row). */
function firstCols(a: ArrayLike<number>, cols: number, keep: number): Float32Array {
  const rows = a.length / cols;
  return Float32Array.from(
    { length: rows * keep },
    (_, i) => a[Math.floor(i / keep) * cols + i % keep],
  );
}

function releaseAll(...ts: (Tensor | BatchNormState)[]) {
  for (const t of ts) {
    if ("release" in t) t.release();
    else for (const u of Object.values(t)) u.release();
  }
}

/** Activations with a large common offset, which a one-pass variance would get wrong. */
function activations(rng: Rng, n: number): Float32Array {
  return randn(rng, n, 2).map((v) => v + 5);
}

/**
 * Conditioning of batch norm in f32: x - mean carries ~2 ulp of max|x| of its column, which is
 * a relative error kappa = 2^-22 * max|x| * invstd of xhat (large when the column's spread is
 * small against its offset, e.g. two rows with nearly equal values). Tolerances below scale
 * with kappa per feature on top of plain f32 rounding.
 */
function kappa(xs: ArrayLike<number>, rows: number, cols: number, invstd: ArrayLike<number>) {
  return Float64Array.from({ length: cols }, (_, f) => {
    let m = 0;
    for (let r = 0; r < rows; r++) m = Math.max(m, Math.abs(xs[r * cols + f]));
    return 2 ** -22 * m * invstd[f];
  });
}

/** Element-wise |actual - expected| <= tol[i]; the message names the first failure. */
function assertWithin(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: (i: number) => number,
  label: string,
) {
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol(i))) {
      assert.fail(`${label}: [${i}] got ${actual[i]}, expected ${expected[i]}, tol ${tol(i)}`);
    }
  }
}

Deno.test(
  "training forward matches the CPU reference, including running statistics",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(1);
    for (const [rows, cols] of SHAPES) {
      const xs = activations(rng, rows * cols);
      const hs = hostState(rng, cols);
      const x = rt.upload(xs, [rows, cols]);
      const bn = upload(rt, hs);
      const got = batchNormTrain(rt, x, bn);
      const want = batchNormTrainRef(xs, rows, cols, hs);
      const label = `[${rows}x${cols}]`;
      // Sums of <= 1024 f32 values of |x| <= ~13: the mean errs by <= ~1e-6 relative. invstd
      // and y inherit the conditioning kappa (see above); y is O(5), so 2e-5 of plain rounding.
      const k = kappa(xs, rows, cols, want.invstd);
      assertClose(await got.mean.read(), want.mean, { rtol: 2e-6, atol: 1e-6 }, `mean ${label}`);
      const invstd = await got.invstd.read();
      const invTol = (f: number) => (1e-5 + 8 * k[f]) * want.invstd[f];
      assertWithin(invstd, want.invstd, invTol, `invstd ${label}`);
      assertWithin(await got.y.read(), want.y, (i) => {
        const f = i % cols;
        const xhat = Math.abs(want.y[i] - hs.beta[f]) / Math.abs(hs.gamma[f]);
        return 2e-5 + 8 * k[f] * Math.abs(hs.gamma[f]) * (1 + xhat);
      }, `y ${label}`);
      const rm = await bn.runningMean.read();
      const rv = await bn.runningVar.read();
      assertClose(rm, want.runningMean, { rtol: 1e-5, atol: 1e-6 }, `running mean ${label}`);
      assertClose(rv, want.runningVar, { rtol: 1e-5 }, `running var ${label}`);
      releaseAll(x, bn, got.y, got.mean, got.invstd);
    }
  },
);

Deno.test(
  "training backward matches the CPU reference and accumulates dgamma/dbeta",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(2);
    for (const [rows, cols] of SHAPES) {
      const xs = activations(rng, rows * cols);
      const dys = randn(rng, rows * cols);
      const hs = hostState(rng, cols);
      const x = rt.upload(xs, [rows, cols]);
      const dy = rt.upload(dys, [rows, cols]);
      const bn = upload(rt, hs);
      const fwd = batchNormTrain(rt, x, bn);
      const prior = randn(rng, cols);
      const dgamma = rt.upload(prior);
      const dbeta = rt.upload(prior);
      const got = batchNormTrainBackward(rt, dy, x, bn.gamma, fwd, {
        dgamma,
        dbeta,
        accumulate: true,
      });
      const want = batchNormTrainBackwardRef(dys, xs, rows, cols, hs.gamma);
      const label = `[${rows}x${cols}]`;
      // Column sums of <= 1024 terms of size ~|dy| * |xhat| <= ~15: atol 1e-4 absolute (the
      // sums grow like sqrt(B)); dx = k * (B dy - sdy - xhat sdyx) cancels terms of size ~B|dy|
      // down to ~|dy|, so its error is ~B * 1e-7 * |dy| relative to O(1) values: atol 2e-4.
      // Everything built on xhat also carries its conditioning kappa (see above), times the
      // column's sum of |dy| (1 + |xhat|) <= 8 |dy| for these inputs.
      const { invstd } = batchNormTrainRef(xs, rows, cols, hs);
      const k = kappa(xs, rows, cols, invstd);
      const weight = new Float64Array(cols);
      for (let i = 0; i < rows * cols; i++) weight[i % cols] += 8 * Math.abs(dys[i]);
      assertWithin(
        await dgamma.read(),
        want.dgamma.map((v, f) => v + prior[f]),
        (f) => 1e-4 + 1e-5 * Math.abs(want.dgamma[f]) + 4 * k[f] * weight[f],
        `dgamma ${label}`,
      );
      assertClose(
        await dbeta.read(),
        want.dbeta.map((v, f) => v + prior[f]),
        { atol: 1e-4, rtol: 1e-5 },
        `dbeta ${label}`,
      );
      assertWithin(await got.dx.read(), want.dx, (i) => {
        const f = i % cols;
        const scale = Math.abs(hs.gamma[f]) * invstd[f] / rows;
        return 2e-4 + 1e-4 * Math.abs(want.dx[i]) + 4 * k[f] * scale * weight[f];
      }, `dx ${label}`);
      releaseAll(x, dy, bn, fwd.y, fwd.mean, fwd.invstd, got.dx, dgamma, dbeta);
    }
  },
);

Deno.test(
  "training backward equals finite differences of the float64 forward",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(3);
    for (const [rows, cols] of [[2, 3], [9, 4], [130, 5]] as const) {
      const xs = activations(rng, rows * cols);
      const rs = randn(rng, rows * cols);
      const hs = hostState(rng, cols);
      const x = rt.upload(xs, [rows, cols]);
      const r = rt.upload(rs, [rows, cols]);
      const bn = upload(rt, hs);
      const fwd = batchNormTrain(rt, x, bn);
      const got = batchNormTrainBackward(rt, r, x, bn.gamma, fwd);
      const [dx, dgamma, dbeta] = await rt.readAll([got.dx, got.dgamma, got.dbeta]);
      // L = sum(r * y): float64 central differences with h = 1e-4 are accurate to ~1e-8 here;
      // the GPU gradients carry f32 rounding (see the previous test): atol 2e-4.
      const tol = { atol: 2e-4, rtol: 1e-4 };
      const loss = (xx: ArrayLike<number>, s: HostState | Record<string, ArrayLike<number>>) =>
        dot(batchNormTrainRef(xx, rows, cols, s as HostState).y, rs);
      const ix = sampleIndices(rng, rows * cols, 20);
      const fdx = finiteDiff((xx) => loss(xx, hs), xs, 1e-4, ix);
      assertClose(ix.map((i) => dx[i]), ix.map((i) => fdx[i]), tol, `dx [${rows}x${cols}]`);
      const fdg = finiteDiff((g) => loss(xs, { ...hs, gamma: g }), hs.gamma, 1e-4);
      assertClose(dgamma, fdg, tol, `dgamma [${rows}x${cols}]`);
      const fdb = finiteDiff((b) => loss(xs, { ...hs, beta: b }), hs.beta, 1e-4);
      assertClose(dbeta, fdb, tol, `dbeta [${rows}x${cols}]`);
      releaseAll(x, r, bn, fwd.y, fwd.mean, fwd.invstd, got.dx, got.dgamma, got.dbeta);
    }
  },
);

Deno.test(
  "finite differences through the GPU training forward agree with the GPU backward",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    const [rows, cols] = [6, 3];
    const xs = randn(rng, rows * cols);
    const rs = randn(rng, rows * cols);
    const hs = hostState(rng, cols);
    const bn = upload(rt, hs);
    const r = rt.upload(rs, [rows, cols]);
    const lossAt = async (v: Float32Array) => {
      const x = rt.upload(v, [rows, cols]);
      const f = batchNormTrain(rt, x, bn);
      const l = dot(await f.y.read(), rs);
      releaseAll(x, f.y, f.mean, f.invstd);
      return l;
    };
    const x = rt.upload(xs, [rows, cols]);
    const fwd = batchNormTrain(rt, x, bn);
    const dx = await batchNormTrainBackward(rt, r, x, bn.gamma, fwd).dx.read();
    const h = 1e-2;
    for (const i of sampleIndices(rng, rows * cols, 10)) {
      const plus = xs.slice();
      plus[i] += h;
      const minus = xs.slice();
      minus[i] -= h;
      const fd = (await lossAt(plus) - await lossAt(minus)) / (2 * h);
      // L sums 18 f32 outputs of size ~2: rounding ~1e-6 per evaluation, / 2h -> 1e-4; the h^2
      // term of a normalisation over 6 rows is ~h^2 * |L'''| ~ 1e-4 too: atol 2e-3.
      assertClose([dx[i]], [fd], { atol: 2e-3 }, `element ${i}`);
    }
    releaseAll(bn, r, x, fwd.y, fwd.mean, fwd.invstd);
  },
);

Deno.test(
  "eval forward and backward match the CPU references and finite differences",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(5);
    for (const [rows, cols] of [[1, 1], [1, 300], ...SHAPES]) {
      const xs = activations(rng, rows * cols);
      const dys = randn(rng, rows * cols);
      const hs = hostState(rng, cols);
      const x = rt.upload(xs, [rows, cols]);
      const dy = rt.upload(dys, [rows, cols]);
      const bn = upload(rt, hs);
      const label = `[${rows}x${cols}]`;
      // A few roundings of O(10) values: atol 1e-5 on outputs of size ~10.
      const y = batchNormEval(rt, x, bn);
      assertClose(
        await y.read(),
        batchNormEvalRef(xs, rows, cols, hs),
        { atol: 1e-5, rtol: 1e-6 },
        `y ${label}`,
      );
      // Running statistics are untouched in eval mode.
      assert.deepEqual(await bn.runningMean.read(), hs.runningMean);
      const dx = batchNormEvalBackward(rt, dy, bn.gamma, bn.runningVar);
      const dxs = await dx.read();
      const want = batchNormEvalBackwardRef(dys, rows, cols, hs.gamma, hs.runningVar);
      assertClose(dxs, want, { atol: 1e-6, rtol: 1e-6 }, `dx ${label}`);
      if (rows * cols <= 20_000) {
        // Affine in x: the float64 difference quotient is the exact gradient.
        const idx = sampleIndices(rng, rows * cols, 10);
        const fd = finiteDiff(
          (xx) => dot(batchNormEvalRef(xx, rows, cols, hs), dys),
          xs,
          1e-3,
          idx,
        );
        assertClose(
          idx.map((i) => dxs[i]),
          idx.map((i) => fd[i]),
          { atol: 1e-5, rtol: 1e-5 },
          `fd ${label}`,
        );
      }
      releaseAll(x, dy, bn, y, dx);
    }
  },
);

Deno.test(
  "the vec4 builds give the scalar builds' bits (F features against the same plus one)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(7);
    const [rows, F] = [37, 256]; // F % 4 == 0: vec4; F + 1 features take the scalar builds
    const xs = activations(rng, rows * (F + 1));
    const dys = randn(rng, rows * (F + 1));
    const hs = hostState(rng, F + 1);
    const run = async (cols: number) => {
      const [x, dy] = [xs, dys].map((a) => rt.upload(firstCols(a, F + 1, cols), [rows, cols]));
      const bn = upload(rt, {
        gamma: firstCols(hs.gamma, F + 1, cols),
        beta: firstCols(hs.beta, F + 1, cols),
        runningMean: firstCols(hs.runningMean, F + 1, cols),
        runningVar: firstCols(hs.runningVar, F + 1, cols),
      });
      const fwd = batchNormTrain(rt, x, bn);
      const bwd = batchNormTrainBackward(rt, dy, x, bn.gamma, fwd);
      const outs = [
        fwd.y,
        fwd.mean,
        fwd.invstd,
        bn.runningMean,
        bn.runningVar,
        bwd.dx,
        bwd.dgamma,
        bwd.dbeta,
        batchNormEval(rt, x, bn),
        batchNormEvalBackward(rt, dy, bn.gamma, bn.runningVar),
      ];
      const got = await rt.readAll(outs);
      releaseAll(x, dy, bn, ...outs.slice(0, 3), ...outs.slice(5));
      // The first F features, as bits (-0 against +0 would count).
      return got.map((a) => new Uint32Array(firstCols(a, cols, F).buffer));
    };
    const vec4 = await run(F);
    const scalar = await run(F + 1);
    const names = ["y", "mean", "invstd", "runningMean", "runningVar", "dx", "dgamma", "dbeta"];
    [...names, "eval y", "eval dx"].forEach((name, k) =>
      assert.deepEqual(vec4[k], scalar[k], name)
    );
  },
);

Deno.test(
  "batch norm rejects one-row training batches, bad shapes and aliasing",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const bn = upload(rt, hostState(new Rng(6), 3));
    const x = rt.full([4, 3], 1);
    const check = (f: () => unknown, re: RegExp) => assert.throws(f, isScnym(re));
    check(
      () => batchNormTrain(rt, rt.full([1, 3], 1), bn),
      /batchNormTrain: x is f32\[1x3\], expected at least 2 rows/,
    );
    check(
      () => batchNormTrain(rt, rt.full([4, 2], 1), bn),
      /batchNormTrain: gamma is f32\[3\], expected f32\[2\]/,
    );
    check(
      () => batchNormTrain(rt, x, { ...bn, runningVar: bn.runningMean }),
      /runningMean and runningVar are the same tensor/,
    );
    check(() => batchNormEval(rt, x, bn, { eps: 0 }), /batchNormEval: eps is 0/);
    const fwd = batchNormTrain(rt, x, bn);
    check(
      () => batchNormTrainBackward(rt, x, x, bn.gamma, fwd, { accumulate: true }),
      /accumulate needs an out/,
    );
    check(
      () => batchNormTrainBackward(rt, rt.full([4, 4], 1), x, bn.gamma, fwd),
      /batchNormTrainBackward: dy is f32\[4x4\], expected f32\[4x3\]/,
    );
    check(
      () => batchNormEvalBackward(rt, x, bn.gamma, bn.runningVar, { out: x }),
      /out f32\[4x3\] is also an input/,
    );
    releaseAll(bn, x, fwd.y, fwd.mean, fwd.invstd);
  },
);
