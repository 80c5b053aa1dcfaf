/**
 * Mixing entropy: exact k-NN against a sort-everything reference on ragged sizes, a hand-computed
 * 1-D case, and the two constructed extremes (random domains -> normalised ~1; separated
 * clusters -> exactly 0).
 */
import assert from "node:assert/strict";
import { mixingEntropy, nearestNeighbors } from "../eval/mixing.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { randn } from "./helpers.ts";

/** k nearest neighbours by sorting all distances (float64, self excluded, ties by index). */
function nearestNeighborsRef(
  x: Float32Array,
  n: number,
  d: number,
  q: number,
  k: number,
): number[] {
  const dist = (j: number) => {
    let s = 0;
    for (let t = 0; t < d; t++) s += (x[q * d + t] - x[j * d + t]) ** 2;
    return s;
  };
  return [...Array(n).keys()]
    .filter((j) => j !== q)
    .map((j) => [dist(j), j])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .slice(0, k)
    .map((p) => p[1]);
}

Deno.test("nearestNeighbors matches a full sort on ragged shapes (blocks of 64 queries)", () => {
  const rng = new Rng(3);
  // n = 2 (k = 1 only), 1 query, query counts that are not multiples of the 64-query block.
  for (const [n, d, k, nq] of [[2, 1, 1, 2], [9, 3, 4, 1], [130, 17, 10, 130], [200, 2, 199, 70]]) {
    const x = randn(rng, n * d);
    const queries = rng.permutation(n).slice(0, nq);
    const nn = nearestNeighbors(x, n, d, queries, k);
    for (let i = 0; i < nq; i++) {
      assert.deepEqual(
        [...nn.subarray(i * k, (i + 1) * k)],
        nearestNeighborsRef(x, n, d, queries[i], k),
        `n=${n} d=${d} k=${k} query ${queries[i]}`,
      );
    }
  }
  // Ties (duplicated points) resolve by the lower index, as in the reference.
  const dup = new Float32Array([0, 0, 0, 1, 1, 0]);
  assert.deepEqual([...nearestNeighbors(dup, 6, 1, [3], 4)], nearestNeighborsRef(dup, 6, 1, 3, 4));
});

Deno.test("mixing entropy of a hand-computed 1-D case (k = 2)", () => {
  // Positions 0 1 2 | 10 11 12, domains a b a | b a b. Neighbours (self excluded):
  // 0 -> {1 b, 2 a}: ln 2;  1 -> {0 a, 2 a}: 0;  2 -> {1 b, 0 a}: ln 2;
  // 3 -> {4 a, 5 b}: ln 2;  4 -> {3 b, 5 b}: 0;  5 -> {4 a, 3 b}: ln 2.
  // Mean = 4 ln 2 / 6, normalised by ln 2 -> 2/3; each domain has one zero among its 3 -> 2/3.
  const x = new Float32Array([0, 1, 2, 10, 11, 12]);
  const r = mixingEntropy(x, 6, 1, ["a", "b", "a", "b", "a", "b"], { k: 2 });
  assert.ok(Math.abs(r.mean - (4 * Math.LN2) / 6) < 1e-12, `mean ${r.mean}`);
  assert.ok(Math.abs(r.normalised - 2 / 3) < 1e-12, `normalised ${r.normalised}`);
  assert.deepEqual(r.domains, ["a", "b"]);
  for (const dom of ["a", "b"]) {
    assert.equal(r.perDomain[dom].nQueries, 3);
    assert.ok(Math.abs(r.perDomain[dom].normalised - 2 / 3) < 1e-12);
  }
  // Integer domain codes give the same numbers.
  const r2 = mixingEntropy(x, 6, 1, new Int32Array([0, 1, 0, 1, 0, 1]), { k: 2 });
  assert.equal(r2.mean, r.mean);
});

Deno.test("randomly assigned domains are fully mixed; separated clusters give exactly 0", () => {
  const rng = new Rng(11);
  const n = 600;
  const d = 5;
  const x = randn(rng, n * d);
  // Domains independent of position: each neighbourhood of k = 100 is a Binomial(100, 1/2) draw,
  // whose plug-in entropy is ln 2 - ~1/(2k), i.e. ~0.993 normalised; 0.97 leaves room for noise.
  const two = Array.from({ length: n }, () => (rng.uniform() < 0.5 ? "ctrl" : "stim"));
  const mixed = mixingEntropy(x, n, d, two);
  assert.equal(mixed.k, 100);
  assert.ok(mixed.normalised > 0.97 && mixed.normalised <= 1, `two domains: ${mixed.normalised}`);
  const three = Array.from({ length: n }, (_, i) => `d${i % 3}`);
  const m3 = mixingEntropy(x, n, d, three);
  assert.ok(m3.normalised > 0.97 && m3.normalised <= 1, `three domains: ${m3.normalised}`);
  // Two clusters 1000 apart, 150 cells each (> k + 1): every neighbourhood is one domain.
  const sep = randn(rng, 300 * d);
  for (let i = 150; i < 300; i++) sep[i * d] += 1000;
  const dom = Array.from({ length: 300 }, (_, i) => (i < 150 ? "ctrl" : "stim"));
  const s = mixingEntropy(sep, 300, d, dom);
  assert.equal(s.mean, 0);
  assert.equal(s.normalised, 0);
});

Deno.test("query subsets are seeded, k is capped at n - 1, bad inputs are refused", () => {
  const rng = new Rng(5);
  const n = 150;
  const x = randn(rng, n * 3);
  const dom = Array.from({ length: n }, (_, i) => (i % 2 ? "a" : "b"));
  const a = mixingEntropy(x, n, 3, dom, { k: 10, queryCells: 40, seed: 1 });
  const b = mixingEntropy(x, n, 3, dom, { k: 10, queryCells: 40, seed: 1 });
  const c = mixingEntropy(x, n, 3, dom, { k: 10, queryCells: 40, seed: 2 });
  assert.equal(a.nQueries, 40);
  assert.equal(a.mean, b.mean);
  assert.notEqual(a.mean, c.mean);
  assert.equal(a.perDomain.a.nQueries + a.perDomain.b.nQueries, 40);
  assert.equal(mixingEntropy(x.subarray(0, 15), 5, 3, ["a", "b", "a", "b", "a"]).k, 4);
  const refuse = (f: () => unknown, msg: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof ScnymError && msg.test(e.message));
  refuse(() => mixingEntropy(x, n, 3, dom.slice(1)), /149 domain labels for 150 cells/);
  refuse(() => mixingEntropy(x, n, 4, dom), /450 values, expected 150x4/);
  refuse(() => mixingEntropy(x, n, 3, dom.map(() => "a")), /at least two domains, got 1 \(a\)/);
  refuse(() => mixingEntropy(x, n, 3, dom, { k: 0 }), /k must be a positive integer/);
});
