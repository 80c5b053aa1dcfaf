/**
 * PCA (randomized, implicitly centred, sparse) against a dense float64 reference and, where
 * python3-numpy is installed, numpy's SVD; its building blocks (Jacobi eigen, Gram-Schmidt) by
 * their defining identities; and the seeded UMAP wrapper.
 */
import assert from "node:assert/strict";
import { type Csr, csrFromDense, csrToDense } from "../data/csr.ts";
import {
  orthonormalizeColumns,
  pca,
  symmetricEigen,
  umapEmbed,
  umapProgressLine,
} from "../eval/embed.ts";
import { Progress } from "../util/progress.ts";
import { nearestNeighbors } from "../eval/mixing.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, havePython, missing, randn } from "./helpers.ts";

Deno.test("symmetricEigen: A V = V diag(w), V^T V = I, values descending (1x1 to 30x30)", () => {
  const rng = new Rng(1);
  for (const m of [1, 2, 7, 30]) {
    const g = randn(rng, m * m);
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) a[i * m + j] = g[i * m + j] + g[j * m + i];
    }
    const { values: w, vectors: v } = symmetricEigen(a, m);
    const av = new Float64Array(m * m);
    const vw = new Float64Array(m * m);
    const vtv = new Float64Array(m * m);
    const eye = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      eye[i * m + i] = 1;
      for (let j = 0; j < m; j++) {
        for (let k = 0; k < m; k++) {
          av[i * m + j] += a[i * m + k] * v[k * m + j];
          vtv[i * m + j] += v[k * m + i] * v[k * m + j];
        }
        vw[i * m + j] = v[i * m + j] * w[j];
      }
    }
    // Jacobi converges to float64 round-off; entries are O(1..10), so 1e-10 is loose but firm.
    assertClose(av, vw, { atol: 1e-10 }, `A V = V W, m=${m}`);
    assertClose(vtv, eye, { atol: 1e-12 }, `V^T V, m=${m}`);
    for (let i = 1; i < m; i++) assert.ok(w[i - 1] >= w[i], `descending at ${i}`);
  }
});

Deno.test("orthonormalizeColumns: orthonormal, same span, dependent columns zeroed", () => {
  const rng = new Rng(2);
  const rows = 50;
  const cols = 6;
  const a = Float64Array.from(randn(rng, rows * cols));
  // Column 4 = column 0 + column 1: dependent, so it must come out as zero.
  for (let i = 0; i < rows; i++) a[i * cols + 4] = a[i * cols] + a[i * cols + 1];
  const orig = Float64Array.from(a);
  const m = { rows, cols, a };
  orthonormalizeColumns(m);
  for (let b = 0; b < cols; b++) {
    for (let c = 0; c < cols; c++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += a[i * cols + b] * a[i * cols + c];
      const want = b === c && b !== 4 ? 1 : 0;
      assert.ok(Math.abs(dot - want) < 1e-12, `Q^T Q [${b},${c}] = ${dot}`);
    }
  }
  // Column 5 lies in the span of the first 6 orthonormal columns: its residual is ~0.
  const resid = new Float64Array(rows);
  for (let i = 0; i < rows; i++) resid[i] = orig[i * cols + 5];
  for (let b = 0; b < cols; b++) {
    let dot = 0;
    for (let i = 0; i < rows; i++) dot += a[i * cols + b] * orig[i * cols + 5];
    for (let i = 0; i < rows; i++) resid[i] -= dot * a[i * cols + b];
  }
  assertClose(resid, new Float64Array(rows), { atol: 1e-12 }, "residual of column 5");
});

/**
 * A sparse n x g matrix with a geometrically decaying spectrum (rank-r signal, scales 10 * 0.7^i)
 * plus small noise, with ~60% of entries zeroed so the CSR path and the implicit centring matter.
 */
function decayingSparse(rng: Rng, n: number, g: number, r: number): Csr {
  const u = randn(rng, n * r);
  const v = randn(rng, r * g);
  const dense = new Float32Array(n * g);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < g; j++) {
      if (rng.uniform() < 0.6) continue;
      let s = 3 + 0.01 * rng.normal(); // an offset so that centring matters
      for (let t = 0; t < r; t++) s += 10 * 0.7 ** t * u[i * r + t] * v[t * g + j];
      dense[i * g + j] = s;
    }
  }
  return csrFromDense(dense, n, g);
}

/** Dense reference PCA: eigen-decomposition of the g x g covariance of the centred matrix. */
function pcaRef(x: Csr): { variance: Float64Array; vectors: Float64Array } {
  const { nRows: n, nCols: g } = x;
  const d = csrToDense(x);
  const mean = new Float64Array(g);
  for (let i = 0; i < n; i++) for (let j = 0; j < g; j++) mean[j] += d[i * g + j] / n;
  const cov = new Float64Array(g * g);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < g; a++) {
      const xa = d[i * g + a] - mean[a];
      for (let b = 0; b < g; b++) cov[a * g + b] += (xa * (d[i * g + b] - mean[b])) / (n - 1);
    }
  }
  const { values, vectors } = symmetricEigen(cov, g);
  return { variance: values, vectors };
}

Deno.test("pca matches the dense covariance eigen-decomposition on ragged small matrices", () => {
  const rng = new Rng(4);
  for (const [n, g, k] of [[83, 47, 5], [40, 61, 12], [2, 9, 3], [30, 1, 1]]) {
    const x = decayingSparse(rng, n, g, Math.min(8, g));
    const r = pca(x, k, 9);
    const kk = Math.min(k, n - 1, g);
    assert.equal(r.nComponents, kk);
    const ref = pcaRef(x);
    // With 7 subspace iterations and 10 extra directions the leading variances converge to ~1e-9
    // relative on a spectrum decaying by 0.7 per component; 1e-6 states "same numbers".
    assertClose(
      r.explainedVariance,
      ref.variance.subarray(0, kk),
      { rtol: 1e-6, atol: 1e-9 },
      `variance ${n}x${g}`,
    );
    for (let c = 0; c < kk; c++) {
      // Same direction up to sign: |<v, v_ref>| = 1 (float32 storage of loadings -> 1e-5).
      let dot = 0;
      for (let j = 0; j < g; j++) dot += r.components[c * g + j] * ref.vectors[j * g + c];
      assert.ok(
        Math.abs(Math.abs(dot) - 1) < 1e-5,
        `${n}x${g} component ${c}: |cos| = ${Math.abs(dot)}`,
      );
    }
    // Scores are the centred data projected on the components.
    const dense = csrToDense(x);
    const want = new Float64Array(n * kk);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < kk; c++) {
        for (let j = 0; j < g; j++) {
          want[i * kk + c] += (dense[i * g + j] - r.mean[j]) * r.components[c * g + j];
        }
      }
    }
    // Float32 storage of scores and loadings: ~1e-7 relative of O(10) values.
    assertClose(r.scores, want, { rtol: 1e-5, atol: 1e-5 }, `scores ${n}x${g}`);
    let total = 0;
    for (let j = 0; j < g; j++) total += ref.variance[j];
    assertClose(r.explainedVarianceRatio, ref.variance.subarray(0, kk).map((v) => v / total), {
      rtol: 1e-6,
    });
  }
  const a = pca(decayingSparse(new Rng(1), 50, 30, 5), 4, 3);
  const b = pca(decayingSparse(new Rng(1), 50, 30, 5), 4, 3);
  assert.deepEqual(a.scores, b.scores, "same seed, same result");
  assert.throws(() => pca(decayingSparse(rng, 1, 5, 2), 2), ScnymError);
});

const hasNumpy = havePython("numpy") ||
  missing("/usr/bin/python3 with numpy", "apt-get install python3-numpy");

Deno.test({
  name: "pca explained variances agree with numpy's SVD of the centred matrix",
  ignore: !hasNumpy,
  fn: async () => {
    const x = decayingSparse(new Rng(8), 300, 120, 20);
    const r = pca(x, 10, 0);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/x.json`,
        JSON.stringify({ n: 300, g: 120, x: [...csrToDense(x)] }),
      );
      const script = [
        "import json, sys, numpy as np",
        "d = json.load(open(sys.argv[1]))",
        "x = np.array(d['x'], dtype=np.float64).reshape(d['n'], d['g'])",
        "s = np.linalg.svd(x - x.mean(0), compute_uv=False)",
        "print(json.dumps((s ** 2 / (d['n'] - 1)).tolist()))",
      ].join("\n");
      const out = await new Deno.Command("/usr/bin/python3", {
        args: ["-c", script, `${dir}/x.json`],
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const numpyVar: number[] = JSON.parse(new TextDecoder().decode(out.stdout));
      // Masking 60% of entries adds a flat noise floor under the 0.7-decaying signal, so later
      // components sit close together (178.17 vs 174.27) and converge slowly: after 7 subspace
      // iterations the top 5 agree to ~1e-9 relative and components 6-10 to ~1e-4 (measured
      // 7e-5 worst). A wrong centring or a lost direction would be off by percents.
      assertClose(
        r.explainedVariance.subarray(0, 5),
        numpyVar.slice(0, 5),
        { rtol: 1e-6 },
        "top 5",
      );
      assertClose(r.explainedVariance, numpyVar.slice(0, 10), { rtol: 2e-4 }, "top 10");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Three Gaussian blobs 30 apart in 20 dimensions, 50 cells each. */
function blobs(rng: Rng): { x: Float32Array; label: number[] } {
  const n = 150;
  const d = 20;
  const x = randn(rng, n * d);
  const label = Array.from({ length: n }, (_, i) => i % 3);
  for (let i = 0; i < n; i++) x[i * d + label[i]] += 30;
  return { x, label };
}

Deno.test("umapEmbed is seeded, keeps clusters apart, subsamples and reports progress", () => {
  const { x, label } = blobs(new Rng(6));
  let last = -1;
  let total = 0;
  const opts = { seed: 42, nEpochs: 120 };
  const a = umapEmbed(x, 150, 20, {
    ...opts,
    onProgress: (e, t) => {
      assert.ok(e === last + 1, `epochs in order: ${e} after ${last}`);
      last = e;
      total = t;
    },
  });
  assert.equal(total, 120);
  assert.equal(last, 120);
  assert.equal(a.coords.length, 300);
  assert.ok(a.coords.every(Number.isFinite));
  assert.deepEqual([...a.indices], [...Array(150).keys()]);
  const b = umapEmbed(x, 150, 20, opts);
  assert.deepEqual(a.coords, b.coords, "same seed -> same embedding");
  const c = umapEmbed(x, 150, 20, { ...opts, seed: 43 });
  assert.notDeepEqual(a.coords, c.coords, "another seed -> another embedding");
  // Every cell's nearest neighbour in 2-D is from its own blob (the blobs are 30 sd apart).
  const nn = nearestNeighbors(a.coords, 150, 2, [...Array(150).keys()], 1);
  const same = label.filter((l, i) => label[nn[i]] === l).length;
  assert.equal(same, 150, `${same}/150 nearest neighbours in the same blob`);
  // Subsampling: a seeded, sorted subset of distinct rows.
  const s = umapEmbed(x, 150, 20, { ...opts, maxCells: 60 });
  assert.equal(s.indices.length, 60);
  assert.equal(s.coords.length, 120);
  assert.ok(s.indices.every((v, i) => i === 0 || v > s.indices[i - 1]), "ascending, distinct");
  assert.deepEqual(umapEmbed(x, 150, 20, { ...opts, maxCells: 60 }).indices, s.indices);
  // Tiny inputs: 3 cells work (neighbours capped at 2); 2 cells are refused.
  assert.equal(umapEmbed(x.subarray(0, 60), 3, 20, opts).coords.length, 6);
  assert.throws(() => umapEmbed(x.subarray(0, 40), 2, 20, opts), ScnymError);
  assert.throws(() => umapEmbed(x, 150, 19, opts), ScnymError);
});

Deno.test("umapProgressLine reports every 10 epochs and ends the line", () => {
  const lines: string[] = [];
  let ended = 0;
  class Capture extends Progress {
    override update(line: string) {
      lines.push(line);
    }
    override done() {
      ended++;
    }
  }
  const { x } = blobs(new Rng(2));
  umapEmbed(x, 150, 20, { seed: 1, nEpochs: 25, onProgress: umapProgressLine(new Capture()) });
  // Epoch 0 (graph built), 10, 20 and the last, 25.
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(lines[0], /neighbour graph built, optimising 25 epochs/);
  assert.match(lines[3], /epoch 25\/25/);
  assert.equal(ended, 1);
});
