import assert from "node:assert/strict";
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { elementwiseKernel, runElementwise } from "../kernels/common.ts";
import {
  RNG_WGSL,
  rngBetaRef,
  rngGammaRef,
  rngKey,
  rngNormalRef,
  rngU32,
  rngUniform,
} from "../kernels/random.ts";
import { Rng } from "../util/rng.ts";
import { gpuTest, testRuntime } from "./helpers.ts";

// Raw rng_u32 values, so the hash itself is compared with its host twin.
const RAW_U32 = defineKernel({
  name: "test_rng_u32",
  workgroupSize: [64],
  params: { n: "u32", seed: "u32", stream: "u32" },
  buffers: { out: { access: "rw", type: "u32" } },
  code: `${RNG_WGSL}
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < p.n) { out[i] = rng_u32(p.seed, p.stream, i); }
}`,
});

// The keyed form, with the key hashed on the host, must give the same values.
const RAW_U32_KEYED = defineKernel({
  name: "test_rng_u32_keyed",
  workgroupSize: [64],
  params: { n: "u32", key: "u32" },
  buffers: { out: { access: "rw", type: "u32" } },
  code: `${RNG_WGSL}
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < p.n) { out[i] = rng_u32_keyed(p.key, i); }
}`,
});

async function gpuU32(
  rt: Runtime,
  n: number,
  seed: number,
  stream: number,
  keyed = false,
): Promise<Uint32Array> {
  const out = rt.tensor([n], "u32");
  if (keyed) {
    const key = rngKey(seed, stream);
    rt.dispatch(RAW_U32_KEYED, { out }, { n, key }, rt.groups1d(n, 64));
  } else rt.dispatch(RAW_U32, { out }, { n, seed, stream }, rt.groups1d(n, 64));
  const v = await out.read() as Uint32Array;
  out.release();
  return v;
}

/** Distribution codes of the test-only `RANDOM` kernel. */
const Dist = { Uniform: 0, Normal: 1, Gamma: 2, Beta: 3 } as const;
type Dist = typeof Dist[keyof typeof Dist];

// Test-only: out[i] = one draw with counter i from the production WGSL samplers that dropout,
// augmentation (rng_uniform) and MixUp (rng_beta) call in-shader. The (seed, stream) forms are
// used on purpose (not the keyed ones), so values compare with the host twins directly.
const RANDOM = elementwiseKernel({
  name: "test_random",
  params: { seed: "u32", stream: "u32", dist: "u32", a: "f32", b: "f32" },
  buffers: { out: "rw" },
  helpers: RNG_WGSL,
  body: `
  switch (p.dist) {
    case ${Dist.Uniform}u: { out[i] = rng_uniform(p.seed, p.stream, i); }
    case ${Dist.Normal}u: { out[i] = rng_normal(p.seed, p.stream, i); }
    case ${Dist.Gamma}u: { out[i] = rng_gamma(p.seed, p.stream, i, p.a); }
    default: { out[i] = rng_beta(p.seed, p.stream, i, p.a, p.b); }
  }`,
});

/** `n` GPU draws of `dist` (shape parameters a, b) at (seed, stream), counters 0 .. n-1. */
async function draws(
  rt: Runtime,
  dist: Dist,
  n: number,
  seed: number,
  stream: number,
  a = 0,
  b = 0,
): Promise<Float64Array> {
  const out = rt.tensor([n]);
  runElementwise(rt, RANDOM, n, { out }, { seed, stream, dist, a, b });
  const v = Float64Array.from(await out.read());
  out.release();
  return v;
}

const uniform = (rt: Runtime, n: number, seed: number, stream: number) =>
  draws(rt, Dist.Uniform, n, seed, stream);

/**
 * Wilson-Hilferty approximation of the chi-square quantile with `df` degrees of freedom at
 * standard-normal quantile z (accurate to well under 1% for df >= 100, far finer than needed).
 */
function chiSquareQuantile(df: number, z: number): number {
  const s = 2 / (9 * df);
  return df * (1 - s + z * Math.sqrt(s)) ** 3;
}

/** Pearson chi-square statistic of equal-probability bins. */
function chiSquare(counts: ArrayLike<number>, n: number): number {
  const expected = n / counts.length;
  let chi = 0;
  for (let i = 0; i < counts.length; i++) chi += (counts[i] - expected) ** 2 / expected;
  return chi;
}

// Both tails at p = 1e-6 each: too uneven fails, and so does "too even" (e.g. a counter).
const Z_TAIL = 4.75;
function assertChiSquare(counts: ArrayLike<number>, n: number, label: string) {
  const chi = chiSquare(counts, n);
  const df = counts.length - 1;
  const lo = chiSquareQuantile(df, -Z_TAIL);
  const hi = chiSquareQuantile(df, Z_TAIL);
  assert.ok(
    chi > lo && chi < hi,
    `${label}: chi2 ${chi.toFixed(1)} (df ${df}) outside [${lo}, ${hi}]`,
  );
}

function histogram(u: ArrayLike<number>, bins: number): Uint32Array {
  const h = new Uint32Array(bins);
  for (let i = 0; i < u.length; i++) h[Math.floor(u[i] * bins)]++;
  return h;
}

/** 2-D histogram of pairs (a[i], b[i]): independence and uniformity together. */
function pairHistogram(a: ArrayLike<number>, b: ArrayLike<number>, bins: number): Uint32Array {
  const h = new Uint32Array(bins * bins);
  for (let i = 0; i < a.length; i++) h[Math.floor(a[i] * bins) * bins + Math.floor(b[i] * bins)]++;
  return h;
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function moments(x: ArrayLike<number>): { mean: number; variance: number } {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] / x.length;
  let variance = 0;
  for (let i = 0; i < x.length; i++) variance += (x[i] - mean) ** 2 / x.length;
  return { mean, variance };
}

/**
 * Asserts sample mean and variance within 5 standard errors of the true values; `mu4` is the
 * true fourth central moment (the variance of the sample variance is (mu4 - var^2) / n).
 */
function assertMoments(
  x: ArrayLike<number>,
  truth: { mean: number; variance: number; mu4: number },
  label: string,
) {
  const n = x.length;
  const { mean, variance } = moments(x);
  const seMean = Math.sqrt(truth.variance / n);
  const seVar = Math.sqrt((truth.mu4 - truth.variance ** 2) / n);
  assert.ok(
    Math.abs(mean - truth.mean) < 5 * seMean,
    `${label}: mean ${mean}, expected ${truth.mean} +- ${5 * seMean}`,
  );
  assert.ok(
    Math.abs(variance - truth.variance) < 5 * seVar,
    `${label}: variance ${variance}, expected ${truth.variance} +- ${5 * seVar}`,
  );
}

/**
 * GPU samplers vs their float64 host references on the same draws. f32 log/cos/exp differ from
 * float64 by a few ulp (observed worst relative error ~7e-6 on llvmpipe), hence rtol/atol 5e-5.
 * A rejection step that rounding decides the other way changes a value completely; that is
 * legitimate but rare (none in 1e5 draws here), so up to 1e-4 of the values may differ.
 */
function assertMostlyClose(gpu: Float64Array, ref: (i: number) => number, label: string) {
  let bad = 0;
  let first = "";
  for (let i = 0; i < gpu.length; i++) {
    const r = ref(i);
    if (!(Math.abs(gpu[i] - r) <= 5e-5 + 5e-5 * Math.abs(r))) {
      if (!bad) first = `[${i}] gpu ${gpu[i]} ref ${r}`;
      bad++;
    }
  }
  assert.ok(bad <= gpu.length * 1e-4, `${label}: ${bad} of ${gpu.length} differ, first ${first}`);
}

Deno.test(
  "rng_u32 and rng_uniform on the GPU equal the host twins bit for bit",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    for (const [seed, stream] of [[0, 0], [1, 0], [123, 0xffffffff], [0xffffffff, 7]]) {
      const n = 70_001;
      const g = await gpuU32(rt, n, seed, stream);
      const gk = await gpuU32(rt, n, seed, stream, true);
      for (let i = 0; i < n; i++) {
        if (g[i] !== rngU32(seed, stream, i) || gk[i] !== g[i]) {
          assert.fail(
            `rng_u32(${seed}, ${stream}, ${i}): gpu ${g[i]}, host ${rngU32(seed, stream, i)}`,
          );
        }
      }
      const u = await uniform(rt, 70_007, seed, stream);
      for (let i = 0; i < u.length; i++) {
        if (u[i] !== rngUniform(seed, stream, i)) {
          assert.fail(
            `rng_uniform(${seed}, ${stream}, ${i}): gpu ${u[i]}, host ${
              rngUniform(seed, stream, i)
            }`,
          );
        }
      }
    }
  },
);

Deno.test("uniform values fill [0, 1) evenly (chi-square, both tails)", gpuTest, async () => {
  const rt = await testRuntime();
  const n = 1 << 20;
  const u = await uniform(rt, n, 42, 5);
  assert.ok(u.every((v) => v >= 0 && v < 1));
  assertChiSquare(histogram(u, 1000), n, "1000 bins");
  // The checker itself must reject a non-random but perfectly even sequence.
  const counter = Float64Array.from({ length: n }, (_, i) => (i % 1000) / 1000 + 1e-9);
  const chi = chiSquare(histogram(counter, 1000), n);
  assert.ok(chi < chiSquareQuantile(999, -Z_TAIL), "a counter is too even to pass");
});

Deno.test("neighbouring counters, streams and seeds are independent", gpuTest, async () => {
  const rt = await testRuntime();
  const n = 1 << 20;
  const base = await uniform(rt, n + 1, 9, 100);
  const nextStream = await uniform(rt, n, 9, 101);
  const nextSeed = await uniform(rt, n, 10, 100);
  const cases: [string, Float64Array, Float64Array][] = [
    ["counter i vs i+1", base.subarray(0, n), base.subarray(1, n + 1)],
    ["stream s vs s+1", base.subarray(0, n), nextStream],
    ["seed s vs s+1", base.subarray(0, n), nextSeed],
  ];
  for (const [label, a, b] of cases) {
    // 64 x 64 joint bins: dependence between the pair shows up as uneven cells.
    assertChiSquare(pairHistogram(a, b, 64), n, label);
    // |r| of independent samples has standard deviation 1/sqrt(n); 5 sigma.
    const r = correlation(a, b);
    assert.ok(Math.abs(r) < 5 / Math.sqrt(n), `${label}: correlation ${r}`);
  }
  // The pair test must catch a generator whose neighbours are related.
  const rng = new Rng(1);
  const lagged = Float64Array.from(base.subarray(0, n), (v) => (v + 0.3 * rng.uniform()) % 1);
  const chi = chiSquare(pairHistogram(base.subarray(0, n), lagged, 64), n);
  assert.ok(chi > chiSquareQuantile(4095, Z_TAIL), "related neighbours are detected");
});

Deno.test("every input bit flips about half of the output bits (host twin)", () => {
  const popcount = (v: number) => {
    let c = 0;
    for (let x = v >>> 0; x; x &= x - 1) c++;
    return c;
  };
  // Mean Hamming distance over 2000 inputs per bit: ideal 16 with sd 2/sqrt(2000) = 0.045, so
  // +-0.35 is a wide margin that still rejects weak mixing (which is off by whole bits).
  const samples = 2000;
  for (const which of ["seed", "stream", "counter"] as const) {
    for (let bit = 0; bit < 32; bit++) {
      let total = 0;
      for (let k = 0; k < samples; k++) {
        const x = [k * 7919 + 3, k * 104729 + 11, k * 1299709 + 5];
        const y = [...x];
        const j = which === "seed" ? 0 : which === "stream" ? 1 : 2;
        y[j] = (y[j] ^ (1 << bit)) >>> 0;
        total += popcount(rngU32(x[0], x[1], x[2]) ^ rngU32(y[0], y[1], y[2]));
      }
      const mean = total / samples;
      assert.ok(Math.abs(mean - 16) < 0.35, `${which} bit ${bit}: mean flipped bits ${mean}`);
    }
  }
});

Deno.test(
  "same seed gives the same bits; another stream or seed gives other values",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const n = 50_000;
    const a = await draws(rt, Dist.Beta, n, 77, 1, 0.3, 0.3);
    const b = await draws(rt, Dist.Beta, n, 77, 1, 0.3, 0.3);
    assert.deepEqual(a, b);
    const u1 = await uniform(rt, n, 77, 1);
    const u2 = await uniform(rt, n, 77, 1);
    assert.deepEqual(u1, u2);
    for (const [seed, stream] of [[77, 2], [78, 1]]) {
      const other = await uniform(rt, n, seed, stream);
      // Two independent 24-bit streams coincide at a position with probability 2^-24.
      const same = other.filter((v, i) => v === u1[i]).length;
      assert.ok(same <= 2, `seed ${seed} stream ${stream}: ${same} equal values`);
    }
  },
);

Deno.test("normal draws: host reference agreement and moments", gpuTest, async () => {
  const rt = await testRuntime();
  const n = 1 << 18;
  const z = await draws(rt, Dist.Normal, n, 3, 4);
  assertMostlyClose(z, (i) => rngNormalRef(3, 4, i), "normal vs host");
  assertMoments(z, { mean: 0, variance: 1, mu4: 3 }, "N(0,1)");
  // Tail mass: P(|z| > 3) = 0.0027; binomial sd sqrt(n p (1-p)) ~ 26; 5 sd.
  const tail = z.filter((v) => Math.abs(v) > 3).length;
  assert.ok(Math.abs(tail - n * 0.0027) < 5 * Math.sqrt(n * 0.0027), `|z| > 3: ${tail}`);
});

Deno.test(
  "gamma draws: host reference agreement and moments (shape < 1 and >= 1)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const n = 1 << 18;
    for (const k of [0.3, 1, 2.5]) {
      const g = await draws(rt, Dist.Gamma, n, 11, 2, k);
      assertMostlyClose(g, (i) => rngGammaRef(11, 2, i, k), `gamma(${k}) vs host`);
      assert.ok(g.every((v) => v >= 0 && Number.isFinite(v)), `gamma(${k}) values are finite`);
      // Gamma(k, 1): mean k, variance k, excess kurtosis 6/k.
      assertMoments(g, { mean: k, variance: k, mu4: (3 + 6 / k) * k * k }, `gamma(${k})`);
    }
  },
);

Deno.test("Beta(0.3, 0.3): host reference agreement and moments", gpuTest, async () => {
  const rt = await testRuntime();
  const n = 1 << 18;
  const a = 0.3;
  const x = await draws(rt, Dist.Beta, n, 5, 6, a, a);
  assertMostlyClose(x, (i) => rngBetaRef(5, 6, i, a, a), "beta vs host");
  assert.ok(x.every((v) => v >= 0 && v <= 1));
  // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)), excess kurtosis -6 / (2a + 3).
  const variance = 1 / (4 * (2 * a + 1));
  const mu4 = (3 - 6 / (2 * a + 3)) * variance ** 2;
  assertMoments(x, { mean: 0.5, variance, mu4 }, "Beta(0.3, 0.3)");
  // An asymmetric case checks that a and b are not swapped: mean a / (a + b).
  const y = await draws(rt, Dist.Beta, n, 5, 7, 2, 0.5);
  const { mean } = moments(y);
  const v = (2 * 0.5) / (2.5 ** 2 * 3.5);
  assert.ok(Math.abs(mean - 0.8) < 5 * Math.sqrt(v / n), `Beta(2, 0.5) mean ${mean}`);
});
