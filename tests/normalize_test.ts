import assert from "node:assert/strict";
import { csrFromDense, csrToDense } from "../data/csr.ts";
import {
  checkMatrix,
  LOG1P_CPM_MAX,
  log1pCpm,
  matrixStats,
  normaliseForModel,
} from "../data/normalize.ts";
import { Rng } from "../util/rng.ts";
import { assertClose } from "./helpers.ts";

const ORIGIN = { file: "t.h5ad", matrix: "X" };

/** Dense float64 reference of log1p-CPM, written independently of the CSR loop. */
function log1pCpmDense(dense: Float32Array, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let r = 0; r < n; r++) {
    let total = 0;
    for (let c = 0; c < m; c++) total += dense[r * m + c];
    for (let c = 0; c < m; c++) {
      out[r * m + c] = total > 0 ? Math.log(1 + (1e6 * dense[r * m + c]) / total) : 0;
    }
  }
  return out;
}

function randomCounts(rng: Rng, n: number, m: number): Float32Array {
  const d = new Float32Array(n * m);
  for (let i = 0; i < d.length; i++) if (rng.uniform() < 0.3) d[i] = 1 + rng.int(50);
  return d;
}

Deno.test("log1pCpm matches a dense float64 reference (ragged shapes, 1 row, zero-total rows)", () => {
  const rng = new Rng(1);
  for (const [n, m] of [[1, 1], [1, 37], [17, 5], [64, 129], [3, 1000]]) {
    const dense = randomCounts(rng, n, m);
    if (n > 2) dense.fill(0, m, 2 * m); // a cell with no counts
    const got = log1pCpm(csrFromDense(dense, n, m));
    // float64 math rounded once to float32: relative error <= 2^-24 ~ 6e-8.
    assertClose(csrToDense(got), log1pCpmDense(dense, n, m), { rtol: 1e-7, atol: 0 }, `${n}x${m}`);
    for (const v of got.data) assert.ok(Number.isFinite(v));
  }
});

Deno.test("a one-count cell reaches the log1p-CPM maximum ln(1e6 + 1)", () => {
  const got = log1pCpm(csrFromDense([0, 5, 0], 1, 3));
  assertClose(got.data, [LOG1P_CPM_MAX], { rtol: 1e-7 }, "max");
});

Deno.test("classification: counts / log1p / scaled, and the log1p-CPM range", () => {
  assert.equal(matrixStats(csrFromDense([0, 1, 2, 7], 2, 2)).kind(), "counts");
  const log = matrixStats(csrFromDense([0, 1.5, 2.25, 13.8], 2, 2));
  assert.equal(log.kind(), "log1p");
  assert.ok(log.inLog1pCpmRange());
  const high = matrixStats(csrFromDense([0, 1.5, 2.25, 17.3], 2, 2));
  assert.equal(high.kind(), "log1p");
  assert.ok(!high.inLog1pCpmRange());
  assert.equal(matrixStats(csrFromDense([0, -0.5, 2, 1], 2, 2)).kind(), "scaled");
});

Deno.test("normaliseForModel: counts normalised, log data as-is with warnings, scaled refused", () => {
  const counts = csrFromDense([0, 1, 2, 7], 2, 2);
  const a = normaliseForModel(counts, ORIGIN);
  assert.equal(a.normalisation, "counts->log1p_cpm");
  assert.deepEqual(a.warnings, []);
  const log = csrFromDense([0, 1.5, 2.25, 17.3], 2, 2);
  const b = normaliseForModel(log, ORIGIN);
  assert.equal(b.normalisation, "log_normalised_as_is");
  assert.equal(b.X, log);
  assert.equal(b.warnings.length, 2); // as-is, and above the log1p-CPM range
  assert.match(b.warnings[1], /exceeds ln\(1e6\+1\)/);
  const scaled = csrFromDense([0, -0.5, 2, 1], 2, 2);
  assert.throws(
    () => normaliseForModel(scaled, { ...ORIGIN, alternatives: ["raw/X", "layers/counts"] }),
    /t\.h5ad: X is scaled .*use --matrix raw or --matrix counts instead/,
  );
  assert.throws(
    () => normaliseForModel(scaled, ORIGIN),
    /adata\.raw or a counts layer, chosen with --matrix raw/,
  );
});

Deno.test("checkMatrix: empty, all-zero, NaN and Inf are refused naming the position", () => {
  assert.throws(
    () => checkMatrix(csrFromDense([], 0, 5), ORIGIN),
    /t\.h5ad: X is empty \(0 cells x 5 genes\)/,
  );
  assert.throws(() => checkMatrix(csrFromDense([], 4, 0), ORIGIN), /is empty/);
  assert.throws(() => checkMatrix(csrFromDense([0, 0, 0, 0], 2, 2), ORIGIN), /no non-zero value/);
  const nan = csrFromDense([1, 0, 0, 2, NaN, 3], 3, 2);
  assert.throws(() => checkMatrix(nan, ORIGIN), /1 NaN\/Inf value\(s\), first at cell 2 gene 0/);
  const inf = csrFromDense([1, 0, 0, Infinity], 2, 2);
  assert.throws(() => checkMatrix(inf, ORIGIN), /first at cell 1 gene 1 \(Infinity\)/);
});
