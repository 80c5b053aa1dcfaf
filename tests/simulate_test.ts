/**
 * The simulator: seeded determinism, well-formed CSR counts and annotations, target-only cell
 * types confined to the last domain, and negative-binomial draws with the stated moments.
 */
import assert from "node:assert/strict";
import { negativeBinomial, simulate } from "../data/simulate.ts";
import { Rng } from "../util/rng.ts";
import { isScnym } from "./helpers.ts";

const SMALL = { cellsPerDomain: [120, 80, 50], genes: 300, types: 4, targetOnlyTypes: 2 };

Deno.test("simulate is deterministic in its seed", () => {
  const a = simulate({ ...SMALL, seed: 3 });
  const b = simulate({ ...SMALL, seed: 3 });
  assert.deepEqual(a, b);
  const c = simulate({ ...SMALL, seed: 4 });
  assert.notDeepEqual(c.counts.data, a.counts.data);
  assert.notDeepEqual(c.cellType, a.cellType);
});

Deno.test("simulate returns well-formed counts and annotations", () => {
  const s = simulate({ ...SMALL, seed: 5 });
  const m = s.counts;
  const n = 250;
  assert.equal(m.nRows, n);
  assert.equal(m.nCols, 300);
  assert.equal(m.indptr.length, n + 1);
  assert.equal(m.indptr[0], 0);
  const nnz = m.indptr[n];
  assert.equal(m.indices.length, nnz);
  assert.equal(m.data.length, nnz);
  for (let r = 0; r < n; r++) {
    assert.ok(m.indptr[r + 1] > m.indptr[r], `cell ${r} has counts`);
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      // Genes strictly ascending within a cell; stored values are positive integer counts.
      if (k > m.indptr[r]) assert.ok(m.indices[k] > m.indices[k - 1], `cell ${r} order`);
      assert.ok(m.indices[k] < 300);
      assert.ok(m.data[k] >= 1 && Number.isInteger(m.data[k]), `count ${m.data[k]}`);
    }
  }
  // Sparse like droplet data, but not empty.
  const density = nnz / (n * 300);
  assert.ok(density > 0.05 && density < 0.9, `density ${density}`);
  assert.equal(s.cellNames.length, n);
  assert.equal(new Set(s.cellNames).size, n);
  assert.equal(s.cellNames[0], "cell_000");
  assert.equal(s.geneNames.length, 300);
  assert.equal(new Set(s.geneNames).size, 300);
  assert.deepEqual(s.domain, [
    ...Array(120).fill("source"),
    ...Array(80).fill("target"),
    ...Array(50).fill("domain2"),
  ]);
  assert.equal(s.cellType.length, n);
  // Defaults are filled in and recorded.
  assert.equal(s.options.markersPerType, 25);
  assert.equal(s.options.seed, 5);
  assert.deepEqual(s.options.domainNames, ["source", "target", "domain2"]);
  const named = simulate({ cellsPerDomain: [5, 6], domainNames: ["ref", "query"], genes: 200 });
  assert.deepEqual(new Set(named.domain), new Set(["ref", "query"]));
});

Deno.test("target-only cell types appear in the last domain and nowhere else", () => {
  const s = simulate({ ...SMALL, seed: 6 });
  const typesIn = (d: string) => new Set(s.cellType.filter((_, i) => s.domain[i] === d));
  const shared = ["type_0", "type_1", "type_2", "type_3"];
  for (const d of ["source", "target"]) {
    assert.deepEqual([...typesIn(d)].sort(), shared, d);
  }
  // 50 cells drawn over 6 types: each appears with probability 1 - (5/6)^50 > 0.9999.
  assert.deepEqual([...typesIn("domain2")].sort(), ["novel_0", "novel_1", ...shared]);
  assert.throws(
    () => simulate({ cellsPerDomain: [10], targetOnlyTypes: 1, genes: 500 }),
    isScnym(/simulate: target-only types need at least two domains/),
  );
});

Deno.test("simulate refuses impossible options, naming them", () => {
  const refuse = (o: Parameters<typeof simulate>[0], re: RegExp) =>
    assert.throws(() => simulate(o), isScnym(re));
  refuse({ cellsPerDomain: [] }, /simulate: at least one domain/);
  refuse({ cellsPerDomain: [10, 0] }, /simulate: cells per domain must be integers >= 1, got 10,0/);
  refuse({ cellsPerDomain: [10, 2.5] }, /cells per domain must be integers/);
  refuse({ cellsPerDomain: [10, 10], domainNames: ["a"] }, /1 domain names for 2 domains/);
  refuse({ types: 0 }, /types must be >= 1, got 0/);
  refuse({ genes: 100, types: 6 }, /100 genes cannot hold 6 types x 25 markers/);
});

/** Sample mean, variance and fourth central moment. */
function moments(x: number[]) {
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  let m2 = 0;
  let m4 = 0;
  for (const v of x) {
    const d = v - mean;
    m2 += d * d;
    m4 += d ** 4;
  }
  return { mean, variance: m2 / (n - 1), m4: m4 / n };
}

Deno.test("negativeBinomial has mean mu and variance mu + mu^2 / r", () => {
  const rng = new Rng(7);
  const n = 20_000;
  // Both branches: inversion (mu <= 50) and the gamma-Poisson mixture (mu > 50, including its
  // normal-approximated Poisson beyond 60); r = 1 / 0.3 is the simulator's default dispersion.
  for (const [mu, r] of [[0.05, 1 / 0.3], [2, 1 / 0.3], [30, 1 / 0.3], [40, 0.5], [200, 1 / 0.3]]) {
    const x = Array.from({ length: n }, () => negativeBinomial(rng, mu, r));
    assert.ok(x.every((v) => Number.isInteger(v) && v >= 0), `mu ${mu}: non-negative integers`);
    const { mean, variance, m4 } = moments(x);
    const sigma2 = mu + (mu * mu) / r;
    // Five standard errors: the sample mean's is sqrt(sigma^2 / n), the sample variance's is
    // sqrt((m4 - sigma^4) / n), estimated from the sample's fourth moment. A chance failure
    // has probability < 1e-6 per check; a wrong parameterisation (e.g. variance mu + mu^2 r,
    // or Poisson) is off by many more.
    const seMean = Math.sqrt(sigma2 / n);
    assert.ok(Math.abs(mean - mu) < 5 * seMean, `mu ${mu} r ${r}: mean ${mean}`);
    const seVar = Math.sqrt(Math.max(m4 - variance * variance, 0) / n);
    assert.ok(
      Math.abs(variance - sigma2) < 5 * seVar,
      `mu ${mu} r ${r}: variance ${variance}, expected ${sigma2} +- ${5 * seVar}`,
    );
  }
  assert.equal(negativeBinomial(rng, 0, 3), 0);
  assert.equal(negativeBinomial(rng, -1, 3), 0);
});
