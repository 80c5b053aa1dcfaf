import assert from "node:assert/strict";
import { sumAll, sumAllRef, sumCols, sumColsRef } from "../kernels/reduce.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, gpuTest, isScnym, randn, testRuntime } from "./helpers.ts";

/**
 * Tolerance of an f32 sum: recursive summation in which each value passes through at most
 * `chain` additions errs by at most chain * 2^-24 * sum|x| (Higham's gamma_k bound; the
 * data's own rounding to f32 is exact here because inputs are f32 already).
 */
function sumTol(chain: number, absSum: number): number {
  return chain * 2 ** -24 * absSum + 1e-30;
}

/** Column sums of |x| (the scale of each column sum's rounding error). */
function absColSums(x: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c] += Math.abs(x[r * cols + c]);
  }
  return out;
}

Deno.test("sumAll matches the float64 sum for 1 to millions of elements", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(1);
  for (const n of [1, 2, 255, 256, 257, 4097, 65_536, 65_537, 1_000_003, 3_000_000]) {
    const data = randn(rng, n);
    const x = rt.upload(data);
    const got = (await sumAll(rt, x).read())[0];
    const want = sumAllRef(data);
    // Longest chain: <= 1024 sequential adds per invocation and pass, 3 passes at most.
    const tol = sumTol(3 * 1024, sumAllRef(data.map(Math.abs)));
    assert.ok(Math.abs(got - want) <= tol, `n ${n}: got ${got}, want ${want}, tol ${tol}`);
    x.release();
  }
});

Deno.test(
  "sumAll scales, accumulates and writes into a slot of a metrics buffer",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const data = randn(new Rng(2), 70_001);
    const x = rt.upload(data);
    const metrics = rt.upload(new Float32Array([1, 2, 3, 4]));
    sumAll(rt, x, { out: metrics, outIndex: 2, scale: 0.5, accumulate: true });
    sumAll(rt, x, { out: metrics, outIndex: 3, scale: -2 });
    const got = await metrics.read();
    const s = sumAllRef(data);
    const tol = sumTol(3 * 1024, sumAllRef(data.map(Math.abs))) * 2;
    assertClose(got, [1, 2, 3 + 0.5 * s, -2 * s], { atol: tol, rtol: 1e-6 }, "metrics");
    const empty = sumAll(rt, rt.tensor([0]));
    assert.deepEqual([...await empty.read()], [0]);
    x.release();
    metrics.release();
  },
);

// Column counts that are multiples of 4 run the vec4 build of sum_cols, the others the scalar.
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 1000],
  [3000, 8],
  [7, 3],
  [257, 65],
  [1000, 1],
  [3, 100_003],
  [2049, 5],
  [5000, 3],
  [300_000, 2],
  [1, 2_100_000],
];

Deno.test(
  "sumCols matches the CPU reference, including tall inputs summed in two passes",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(4);
    for (const [rows, cols] of SHAPES) {
      const data = randn(rng, rows * cols);
      const x = rt.upload(data, [rows, cols]);
      const got = await sumCols(rt, x).read();
      const want = sumColsRef(data, rows, cols);
      // Per row block: 2048/8 = 256 sequential adds and a 3-level tree; then the same again
      // over the blocks' partial sums.
      const abs = absColSums(data, rows, cols);
      for (let c = 0; c < cols; c++) {
        const tol = sumTol(2 * 1024, abs[c]);
        if (!(Math.abs(got[c] - want[c]) <= tol)) {
          assert.fail(`sumCols [${rows}x${cols}] col ${c}: ${got[c]} vs ${want[c]} (tol ${tol})`);
        }
      }
      x.release();
    }
  },
);

Deno.test(
  "sumCols scales and accumulates (the bias-gradient case)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(5);
    for (const [rows, cols] of [[1, 7], [256, 256], [3000, 33]]) {
      const data = randn(rng, rows * cols);
      const prior = randn(rng, cols);
      const x = rt.upload(data, [rows, cols]);
      const out = rt.upload(prior);
      sumCols(rt, x, { out, accumulate: true, scale: 0.25 });
      const want = sumColsRef(data, rows, cols).map((v, c) => prior[c] + 0.25 * v);
      // Same chain as above on sums of |x| <= 3000 * 4; a plain relative bound is simpler here.
      assertClose(
        await out.read(),
        want,
        { atol: 1e-3, rtol: 1e-5 },
        `sumCols acc [${rows}x${cols}]`,
      );
      x.release();
      out.release();
    }
  },
);

Deno.test(
  "sumCols: the vec4 build gives the scalar build's bits (F columns against F + 1)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(6);
    const F = 256; // vec4; F + 1 columns take the scalar build
    for (const rows of [256, 3000]) {
      const data = randn(rng, rows * F);
      const prior = randn(rng, F + 1);
      const run = async (cols: number) => {
        // The same columns, plus a column of ones when cols = F + 1.
        const xs = Float32Array.from(
          { length: rows * cols },
          (_, i) => i % cols < F ? data[Math.floor(i / cols) * F + i % cols] : 1,
        );
        const x = rt.upload(xs, [rows, cols]);
        const out = rt.upload(prior.subarray(0, cols));
        sumCols(rt, x, { out, accumulate: true, scale: 0.3 });
        const got = await out.read();
        x.release();
        out.release();
        return new Uint32Array(got.buffer, 0, F);
      };
      assert.deepEqual(await run(F), await run(F + 1), `[${rows}x${F}]`);
    }
  },
);

Deno.test(
  "reductions reject bad shapes, aliasing and accumulate without out",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const x = rt.full([4, 3], 1);
    assert.throws(() => sumCols(rt, x, { accumulate: true }), isScnym(/sumCols: accumulate needs/));
    assert.throws(
      () => sumCols(rt, x, { out: rt.tensor([4]) }),
      isScnym(/sumCols: out is f32\[4\], expected f32\[3\]/),
    );
    assert.throws(
      () => sumCols(rt, rt.tensor([12])),
      isScnym(/sumCols: x is f32\[12\], expected a 2-D/),
    );
    assert.throws(
      () => sumAll(rt, x, { out: rt.tensor([2]), outIndex: 2 }),
      isScnym(/sumAll: out/),
    );
    const v = rt.full([3], 1);
    assert.throws(
      () => sumAll(rt, v, { out: v }),
      isScnym(/sumAll: out f32\[3\] is also an input/),
    );
    const zeros = rt.tensor([0, 5]);
    assert.deepEqual([...await sumCols(rt, zeros).read()], [0, 0, 0, 0, 0]);
  },
);
