import assert from "node:assert/strict";
import { matmul, matmulRef, type MatmulTile } from "../kernels/matmul.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, gpuTest, randn, testRuntime } from "./helpers.ts";

/** f32 unit roundoff. */
const U = 2 ** -24;

/**
 * Tolerance for a length-K f32 dot product of standard-normal terms (each |a b| ~ 1), scaled by
 * |alpha|. A running f32 sum rounds K times, each time by up to u/2 of a partial sum of size
 * ~sqrt(k), so its error can grow like ~0.2 u K: the tolerance has to grow linearly with K.
 * 8 u K is a wide margin (the worst error measured at K = 20,000 is ~1.5% of it), yet a single
 * missing or wrong term (size ~0.6 on average) is still ~60x above it there, so a dropped tail
 * step, a chunk added twice or a wrong index cannot pass. The rtol covers the f32 rounding of
 * the bias and of the accumulated `out` added in the epilogue.
 */
function dotTolerance(K: number, alpha = 1) {
  return { atol: 8 * U * K * Math.abs(alpha) + 1e-7, rtol: 4 * U };
}

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
  accumulate?: boolean;
  alpha?: number;
  tile?: MatmulTile;
}

/** Both register tiles: the adapter picks one by default, the other must be right too. */
const TILES: MatmulTile[] = ["standard", "large"];

/**
 * ... and the adapter's default (undefined), which on software adapters is a narrow tile for
 * N <= 32 (an invocation across all columns of 8 rows) and "large" otherwise.
 */
const ALL_TILES = [...TILES, undefined];

/** Runs one product on the GPU and checks it against the float64 reference. */
async function check(rt: Runtime, rng: Rng, c: Case): Promise<void> {
  const { M, N, K } = c;
  const a = randn(rng, M * K);
  const b = randn(rng, K * N);
  const bias = c.bias ? randn(rng, N) : undefined;
  // A junk-filled `out` also checks that a non-accumulating product overwrites it.
  const c0 = randn(rng, M * N);
  const tensors = rt.scope(() => {
    const A = rt.upload(a, c.transA ? [K, M] : [M, K]);
    const B = rt.upload(b, c.transB ? [N, K] : [K, N]);
    const out = rt.upload(c0, [M, N]);
    const result = matmul(rt, A, B, {
      transA: c.transA,
      transB: c.transB,
      bias: bias ? rt.upload(bias) : undefined,
      out,
      accumulate: c.accumulate,
      alpha: c.alpha,
      tile: c.tile,
    });
    assert.equal(result, out);
    return out;
  });
  const got = await tensors.read();
  tensors.release();
  const expected = matmulRef(a, b, { M, N, K }, {
    transA: c.transA,
    transB: c.transB,
    bias,
    c0: c.accumulate ? c0 : undefined,
    alpha: c.alpha,
  });
  const layout = `${c.transA ? "T" : "N"}${c.transB ? "T" : "N"}`;
  const label = `${layout} M=${M} N=${N} K=${K} bias=${!!c.bias} acc=${!!c.accumulate} ` +
    `alpha=${c.alpha ?? 1} tile=${c.tile ?? "default"}`;
  assertClose(got, expected, dotTolerance(K, c.alpha), label);
}

const LAYOUTS = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];

// Shapes chosen to hit every kernel variant: dimensions that are and are not multiples of 4
// (vec4 vs scalar reads of a, b, out; K tail loop), smaller than one 64x64 workgroup tile and
// ragged past it, a single row and a single column.
const SHAPES: [number, number, number][] = [
  [1, 7, 3],
  [1, 256, 200],
  [5, 12, 9],
  [33, 8, 4],
  [64, 64, 64],
  [130, 1, 6],
  [70, 130, 1],
  [257, 255, 1000],
  [100, 68, 37],
];

Deno.test("matmul: all layouts on ragged shapes match the float64 reference", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(1);
  for (const tile of ALL_TILES) {
    for (const [M, N, K] of SHAPES) {
      for (const layout of LAYOUTS) await check(rt, rng, { M, N, K, ...layout, tile });
    }
  }
});

Deno.test(
  "matmul: every tile gives the same bits (each output is one chain of FMAs over k)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(7);
    for (const [M, N, K] of [[512, 2, 256], [70, 21, 13]]) {
      for (const layout of LAYOUTS) {
        const a = randn(rng, M * K);
        const b = randn(rng, K * N);
        const bias = randn(rng, N);
        const outs = rt.scope(() => {
          const A = rt.upload(a, layout.transA ? [K, M] : [M, K]);
          const B = rt.upload(b, layout.transB ? [N, K] : [K, N]);
          const bb = rt.upload(bias);
          return ALL_TILES.map((tile) => matmul(rt, A, B, { ...layout, bias: bb, tile }));
        });
        const [standard, ...others] = await rt.readAll(outs);
        for (const o of others) {
          assert.deepEqual(
            o,
            standard,
            `${JSON.stringify(layout)} ${M}x${N}x${K}`,
          );
        }
        for (const o of outs) o.release();
      }
    }
  },
);

Deno.test("matmul: bias, accumulate and alpha in every layout", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(2);
  for (const tile of TILES) {
    for (const [M, N, K] of [[1, 7, 3], [37, 64, 50], [66, 21, 13]] as const) {
      for (const layout of LAYOUTS) {
        const c = { M, N, K, ...layout, tile };
        await check(rt, rng, { ...c, bias: true });
        await check(rt, rng, { ...c, accumulate: true });
        await check(rt, rng, { ...c, bias: true, accumulate: true, alpha: -0.37 });
        await check(rt, rng, { ...c, alpha: 2.5 });
      }
    }
  }
});

Deno.test("matmul: long K (20,000 genes) in the layouts of the input layer", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(3);
  // Long K runs in chunks that add into `out`: bias and the accumulated `out` must enter once,
  // alpha must scale every chunk, and only the last chunk has the K % 4 tail.
  for (const tile of TILES) {
    await check(rt, rng, { M: 3, N: 17, K: 20_000, bias: true, tile });
    await check(rt, rng, { M: 8, N: 12, K: 20_003, transA: true, accumulate: true, tile });
    await check(rt, rng, { M: 1, N: 5, K: 20_001, transB: true, tile });
    await check(rt, rng, {
      M: 20,
      N: 36,
      K: 4_099,
      bias: true,
      accumulate: true,
      alpha: 0.7,
      tile,
    });
  }
});

Deno.test("matmul: a random-shape sweep", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(4);
  for (let i = 0; i < 24; i++) {
    const dim = () => 1 + rng.int(rng.uniform() < 0.3 ? 8 : 150);
    await check(rt, rng, {
      M: dim(),
      N: dim(),
      K: dim(),
      ...LAYOUTS[i % 4],
      bias: rng.uniform() < 0.5,
      accumulate: rng.uniform() < 0.5,
      alpha: rng.uniform() < 0.5 ? 1 : rng.normal(),
      tile: TILES[(i >> 2) % 2],
    });
  }
});

Deno.test("matmul: bad shapes and sizes over the limits throw ScnymError", gpuTest, async () => {
  const rt = await testRuntime();
  const isMatmulError = (...parts: string[]) => (e: unknown) =>
    e instanceof ScnymError && e.message.startsWith("matmul") &&
    parts.every((p) => e.message.includes(p));
  rt.scope(() => {
    const a = rt.tensor([4, 5]);
    const b = rt.tensor([6, 3]);
    assert.throws(() => matmul(rt, a, b), isMatmulError("f32[4x5]", "f32[6x3]", "5 vs 6"));
    const b2 = rt.tensor([5, 3]);
    assert.throws(
      () => matmul(rt, a, b2, { bias: rt.tensor([4]) }),
      isMatmulError("bias", "3 values"),
    );
    assert.throws(
      () => matmul(rt, a, b2, { out: rt.tensor([3, 4]) }),
      isMatmulError("f32[4x3]", "f32[3x4]"),
    );
    assert.throws(() => matmul(rt, a, b2, { accumulate: true }), isMatmulError("accumulate"));
    const sq = rt.tensor([5, 5]);
    assert.throws(() => matmul(rt, sq, sq, { out: sq }), isMatmulError("is also an input"));
    assert.throws(() => matmul(rt, rt.tensor([20]), b2), isMatmulError("2-D"));
  });
  // Output over the binding size: named by the tensor allocation with op "matmul".
  const maxBytes = rt.limits.maxStorageBufferBindingSize;
  const n = Math.ceil(Math.sqrt(maxBytes / 4)) + 16;
  rt.scope(() => {
    const a = rt.tensor([n, 1]);
    const b = rt.tensor([1, n]);
    assert.throws(() => matmul(rt, a, b), isMatmulError(`${n}x${n}`, String(maxBytes)));
  });
  // More output rows than workgroups per dimension allow.
  const maxGroups = rt.limits.maxComputeWorkgroupsPerDimension;
  const rows = maxGroups * 256 + 1; // past any tile height the kernel may use
  if (rows * 4 <= maxBytes) {
    rt.scope(() => {
      const a = rt.tensor([rows, 1]);
      const b = rt.tensor([1, 1]);
      assert.throws(() => matmul(rt, a, b), isMatmulError(`${rows}x1`, String(maxGroups)));
    });
  }
});
