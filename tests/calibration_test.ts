/**
 * Calibration math (scnym/calibration.ts) on constructed inputs: the temperature fit against a
 * brute-force grid, energy and Mahalanobis scores against direct float64 formulas (matrix
 * inverse by Gauss-Jordan, not the Cholesky route of the code), and the model-file round trip.
 * Tolerances: the fitted log T within one grid step (1e-3) of the grid's minimum; scores within
 * 1e-9 relative (float64 throughout) or 1e-4 where float32 statistics are involved.
 */
import assert from "node:assert/strict";
import {
  calibrationTensors,
  energyScore,
  fitNovelty,
  fitTemperature,
  meanNll,
  NO_CALIBRATION,
  noveltyScore,
  readCalibration,
} from "../scnym/calibration.ts";
import { Rng } from "../util/rng.ts";
import { softmaxRows } from "../util/softmax.ts";
import { isScnym } from "./helpers.ts";

/** Logits of n cells over C classes whose true class leads by `margin` plus noise. */
function constructed(n: number, C: number, margin: number, seed: number) {
  const rng = new Rng(seed);
  const logits = new Float64Array(n * C);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % C;
    for (let c = 0; c < C; c++) logits[i * C + c] = 3 * rng.normal();
    logits[i * C + labels[i]] += margin;
  }
  return { logits, labels };
}

Deno.test("fitTemperature finds the brute-force grid minimum of the NLL (over- and underconfident)", () => {
  const C = 4;
  for (const [margin, seed] of [[1, 1], [4, 2], [12, 3]]) {
    const { logits, labels } = constructed(300, C, margin, seed);
    const nll = (T: number) => meanNll(softmaxRows(logits, C, T), C, labels);
    let best = 0, bestNll = Infinity;
    for (let k = 0; k <= 6000; k++) {
      const logT = Math.log(1 / 20) + (k / 6000) * Math.log(400);
      const v = nll(Math.exp(logT));
      if (v < bestNll) [best, bestNll] = [logT, v];
    }
    const T = fitTemperature(logits, C, labels);
    assert.ok(
      Math.abs(Math.log(T) - best) <= 1e-3,
      `margin ${margin}: T ${T} vs ${Math.exp(best)}`,
    );
    assert.ok(nll(T) <= bestNll + 1e-9);
  }
  assert.equal(fitTemperature(new Float64Array(8), C, []), 1);
});

Deno.test("temperature scaling keeps every argmax", () => {
  const C = 5;
  const { logits } = constructed(200, C, 2, 4);
  const a = softmaxRows(logits, C, 1), b = softmaxRows(logits, C, 3.7);
  for (let i = 0; i < 200; i++) {
    const arg = (p: Float64Array) => {
      let k = 0;
      for (let c = 1; c < C; c++) if (p[i * C + c] > p[i * C + k]) k = c;
      return k;
    };
    assert.equal(arg(a), arg(b));
  }
});

Deno.test("energy score is -T log sum exp(z / T)", () => {
  const z = [1, 2, 3, -1000, 0.5, 0.5];
  const e = energyScore(z, 3, 2);
  assert.ok(Math.abs(e[0] - -2 * Math.log(Math.exp(0.5) + Math.exp(1) + Math.exp(1.5))) < 1e-12);
  // Stable for a large negative logit: its exp(-500) term vanishes, nothing overflows.
  assert.ok(Math.abs(e[1] - -2 * (0.25 + Math.log(2))) < 1e-12);
});

/** Inverse of a symmetric positive definite matrix by Gauss-Jordan (reference only). */
function inverse(S: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(S), inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    const p = a[c * n + c];
    for (let j = 0; j < n; j++) {
      [a[c * n + j], inv[c * n + j]] = [a[c * n + j] / p, inv[c * n + j] / p];
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r * n + c];
      for (let j = 0; j < n; j++) {
        a[r * n + j] -= f * a[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
  return inv;
}

Deno.test("Mahalanobis novelty matches the direct formula min_c (x - mu_c)^T (Sigma + lambda I)^-1 (x - mu_c)", () => {
  const rng = new Rng(9);
  const H = 6, C = 3, n = 90, ridge = 0.05;
  const X = new Float64Array(n * H), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % C;
    for (let h = 0; h < H; h++) X[i * H + h] = y[i] * (h % 3) + rng.normal() * (1 + h);
    X[i * H + H - 1] = 0; // a dead unit: the covariance is singular without the ridge
  }
  const stats = fitNovelty(X, H, y, C, ridge);
  // Reference: means, covariance, ridge, inverse, quadratic forms, all float64.
  const mu = new Float64Array(C * H), cnt = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    cnt[y[i]]++;
    for (let h = 0; h < H; h++) mu[y[i] * H + h] += X[i * H + h];
  }
  for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) mu[c * H + h] /= cnt[c];
  const S = new Float64Array(H * H);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < H; a++) {
      for (let b = 0; b < H; b++) {
        S[a * H + b] += (X[i * H + a] - mu[y[i] * H + a]) * (X[i * H + b] - mu[y[i] * H + b]) / n;
      }
    }
  }
  let tr = 0;
  for (let a = 0; a < H; a++) tr += S[a * H + a];
  for (let a = 0; a < H; a++) S[a * H + a] += ridge * tr / H;
  const P = inverse(S, H);
  const queries = Float64Array.from({ length: 20 * H }, () => 2 * rng.normal());
  const got = noveltyScore(stats, queries);
  for (let q = 0; q < 20; q++) {
    let want = Infinity;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let a = 0; a < H; a++) {
        for (let b = 0; b < H; b++) {
          s += (queries[q * H + a] - mu[c * H + a]) * P[a * H + b] *
            (queries[q * H + b] - mu[c * H + b]);
        }
      }
      want = Math.min(want, s);
    }
    assert.ok(
      Math.abs(got[q] - want) <= 1e-4 * Math.max(1, want),
      `cell ${q}: ${got[q]} vs ${want}`,
    );
  }
});

Deno.test("calibration round-trips through model-file tensors; absent record reads as T = 1", () => {
  const H = 4, C = 2;
  const X = Float64Array.from({ length: 40 * H }, (_, i) => Math.sin(i * 1.7) + (i % 3));
  const y = Int32Array.from({ length: 40 }, (_, i) => i % C);
  const cal = { temperature: 1.3, novelty: fitNovelty(X, H, y, C) };
  const tensors = new Map([...calibrationTensors(cal)].map(([k, t]) => [k, t.data]));
  const record = {
    temperature: 1.3,
    fittedTemperature: 1.3,
    temperatureCells: 10,
    nll: { before: 1, after: 0.9 },
    novelty: { kind: "mahalanobis" as const, ridge: 0.01, cells: 40 },
  };
  const back = readCalibration(record, tensors, { hidden: H, classes: C }, "m.scnym");
  assert.equal(back.temperature, 1.3);
  assert.deepEqual(noveltyScore(back.novelty!, X), noveltyScore(cal.novelty, X));
  assert.equal(
    readCalibration(undefined, new Map(), { hidden: H, classes: C }, "m"),
    NO_CALIBRATION,
  );
  assert.throws(
    () => readCalibration(record, new Map(), { hidden: H, classes: C }, "m.scnym"),
    isScnym(/m\.scnym: novelty statistics missing/),
  );
  assert.throws(
    () => readCalibration({ ...record, temperature: -1 }, tensors, { hidden: H, classes: C }, "m"),
    isScnym(/temperature -1/),
  );
});
