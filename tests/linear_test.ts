/**
 * The linear baselines (eval/linear.ts) and their optimiser (eval/lbfgs.ts): L-BFGS finds a known
 * minimum; the logistic gradient matches central finite differences; both models learn simulated
 * cell types and lower their objectives to an optimum; and on a small problem they agree with
 * scikit-learn's `LogisticRegression()` / `LinearSVC()` on the unscaled matrix (the pipeline they
 * mirror), in predictions and coefficients, within the tolerances stated at each check.
 */
import assert from "node:assert/strict";
import { type Csr, csrToDense, selectRows } from "../data/csr.ts";
import { log1pCpm } from "../data/normalize.ts";
import { simulate } from "../data/simulate.ts";
import { minimiseLbfgs } from "../eval/lbfgs.ts";
import {
  fitLinearSvm,
  fitLogistic,
  logisticObjective,
  predictLinear,
  svmPrimalObjective,
} from "../eval/linear.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, finiteDiff, havePython, missing, randn, sampleIndices } from "./helpers.ts";

/** Simulated log1p-CPM cells with integer types; cells of domain 0 then domain 1. */
function simulated(seed: number, cells: number[], genes: number, types: number) {
  const sim = simulate({ cellsPerDomain: cells, genes, types, seed, markersPerType: 10 });
  const names = [...new Set(sim.cellType)].sort();
  const y = Int32Array.from(sim.cellType, (t) => names.indexOf(t));
  return { X: log1pCpm(sim.counts), y, nClasses: names.length, domain: sim.domain };
}

function rowsWhere(flags: boolean[]): number[] {
  return flags.map((f, i) => f ? i : -1).filter((i) => i >= 0);
}

function accuracyOf(pred: Int32Array, y: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) right++;
  return right / pred.length;
}

Deno.test("minimiseLbfgs finds the minimum of an ill-conditioned quadratic", () => {
  // f(x) = sum_i c_i (x_i - i)^2 / 2 with curvatures 1..1e3: minimum at x_i = i, value 0.
  const n = 20;
  const c = Float64Array.from({ length: n }, (_, i) => 10 ** (3 * i / (n - 1)));
  const res = minimiseLbfgs(
    (x, g) => {
      let f = 0;
      for (let i = 0; i < n; i++) {
        g[i] = c[i] * (x[i] - i);
        f += 0.5 * c[i] * (x[i] - i) ** 2;
      }
      return f;
    },
    new Float64Array(n),
    { gradTol: 1e-8 },
  );
  assert.ok(res.converged, `converged (${res.iterations} iterations, |g| ${res.gradMax})`);
  // |g| < 1e-8 with curvature >= 1 bounds every |x_i - i| by 1e-8.
  assertClose(res.x, Float64Array.from({ length: n }, (_, i) => i), { atol: 1e-8 }, "argmin");
  for (let i = 1; i < res.trace.length; i++) assert.ok(res.trace[i] <= res.trace[i - 1]);
});

Deno.test("logistic objective gradient matches central finite differences", () => {
  const { X, y, nClasses } = simulated(3, [40], 30, 3);
  const rng = new Rng(4);
  const nParams = X.nCols * nClasses + nClasses;
  const params = Float64Array.from(randn(rng, nParams, 0.1));
  const grad = new Float64Array(nParams);
  const C = 0.5;
  logisticObjective(X, y, nClasses, C, params, grad);
  // 40 weights at random and every intercept.
  const nW = nParams - nClasses;
  const idx = [
    ...sampleIndices(rng, nW, 40),
    ...Array.from({ length: nClasses }, (_, k) => nW + k),
  ];
  const fd = finiteDiff((p) => logisticObjective(X, y, nClasses, C, p), params, 1e-5, idx);
  // Float64 objective, h = 1e-5: truncation ~h^2 * f''' ~ 1e-10, round-off ~1e-16 / h = 1e-11.
  assertClose(idx.map((i) => grad[i]), idx.map((i) => fd[i]), { atol: 1e-8 }, "gradient");
});

Deno.test("logistic regression and linear SVM learn simulated cell types", () => {
  const { X, y, nClasses, domain } = simulated(5, [400, 300], 400, 5);
  const train = rowsWhere(domain.map((d) => d === "source"));
  const test = rowsWhere(domain.map((d) => d === "target"));
  const Xtr = selectRows(X, train);
  const ytr = Int32Array.from(train, (i) => y[i]);
  const Xte = selectRows(X, test);
  const yte = Int32Array.from(test, (i) => y[i]);
  for (const fit of [fitLogistic, fitLinearSvm]) {
    const model = fit(Xtr, ytr, nClasses);
    assert.ok(model.fit.converged, `${model.kind} converged`);
    const p = predictLinear(model, Xte);
    // Chance is 0.2; 10 markers per type with a log fold change of ~2 separate types well
    // even across the simulated batch effect.
    const acc = accuracyOf(p.predicted, yte);
    assert.ok(acc > 0.9, `${model.kind}: target accuracy ${acc}`);
    if (model.kind === "logistic") {
      assert.ok(p.probabilities !== null);
      for (let r = 0; r < Xte.nRows; r++) {
        let s = 0;
        for (let k = 0; k < nClasses; k++) s += p.probabilities[r * nClasses + k];
        assert.ok(Math.abs(s - 1) < 1e-12, `probabilities of cell ${r} sum to ${s}`);
      }
    } else assert.equal(p.probabilities, null);
  }
});

Deno.test("the fits lower their objectives to a minimum", () => {
  const { X, y, nClasses } = simulated(6, [150], 80, 3);
  const lr = fitLogistic(X, y, nClasses);
  assert.ok(lr.trace.length > 2);
  for (let i = 1; i < lr.trace.length; i++) {
    assert.ok(lr.trace[i] <= lr.trace[i - 1], `objective rose at iteration ${i}`);
  }
  assert.ok(lr.trace.at(-1)! < 0.5 * lr.trace[0], `${lr.trace[0]} -> ${lr.trace.at(-1)}`);
  // At a minimum, any small move raises the objective (both objectives are strictly convex).
  const rng = new Rng(7);
  const params = new Float64Array([...lr.weights, ...lr.bias]);
  const best = logisticObjective(X, y, nClasses, 1, params);
  const svm = fitLinearSvm(X, y, nClasses, { tol: 1e-6 });
  for (let trial = 0; trial < 5; trial++) {
    const moved = params.map((v) => v + 1e-3 * rng.normal());
    assert.ok(logisticObjective(X, y, nClasses, 1, moved) > best, "logistic at its minimum");
    for (let k = 0; k < nClasses; k++) {
      const w = new Float64Array(X.nCols + 1);
      for (let g = 0; g < X.nCols; g++) w[g] = svm.weights[g * nClasses + k];
      w[X.nCols] = svm.bias[k];
      const at = svmPrimalObjective(X, y, k, 1, w);
      assert.ok(at < X.nRows, `class ${k}: below the objective at w = 0 (${at})`);
      const wMoved = w.map((v) => v + 1e-3 * rng.normal());
      assert.ok(svmPrimalObjective(X, y, k, 1, wMoved) > at, `svm class ${k} at its minimum`);
    }
  }
});

Deno.test("linear fits are deterministic and refuse bad labels", () => {
  const { X, y, nClasses } = simulated(8, [60], 40, 3);
  assert.deepEqual(fitLinearSvm(X, y, nClasses).weights, fitLinearSvm(X, y, nClasses).weights);
  assert.deepEqual(fitLogistic(X, y, nClasses).weights, fitLogistic(X, y, nClasses).weights);
  const bad = y.slice();
  bad[3] = nClasses;
  assert.throws(() => fitLogistic(X, bad, nClasses), ScnymError);
  assert.throws(() => fitLinearSvm(X, y.subarray(1), nClasses), ScnymError);
  const model = fitLogistic(X, y, nClasses);
  assert.throws(() => predictLinear(model, { ...X, nCols: X.nCols + 1 }), ScnymError);
});

const hasSklearn = havePython("sklearn") ||
  missing("/usr/bin/python3 with scikit-learn", "apt-get install python3-sklearn");

/** scikit-learn's fit of `model` ("lr" or "svc") on X, y: coef (K x G), intercept, predictions. */
async function sklearnFit(model: string, X: Csr, y: Int32Array, Xq: Csr) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/d.json`,
      JSON.stringify({
        n: X.nRows,
        g: X.nCols,
        x: [...csrToDense(X)],
        y: [...y],
        nq: Xq.nRows,
        xq: [...csrToDense(Xq)],
      }),
    );
    const script = [
      "import json, sys, numpy as np",
      "from sklearn.linear_model import LogisticRegression",
      "from sklearn.svm import LinearSVC",
      "d = json.load(open(sys.argv[1]))",
      "x = np.array(d['x'], dtype=np.float64).reshape(d['n'], d['g'])",
      "xq = np.array(d['xq'], dtype=np.float64).reshape(d['nq'], d['g'])",
      // Tight tolerances so that both sides are at the (unique) optimum, not at their own
      // stopping points (sklearn's lbfgs also stops on a relative decrease of 64 eps, which on
      // this nearly separable problem leaves weights 7e-4 off; newton-cg reaches |grad| 1e-11).
      "m = (LogisticRegression(solver='newton-cg', tol=1e-10, max_iter=1000)",
      "     if sys.argv[2] == 'lr' else",
      "     LinearSVC(tol=1e-8, max_iter=100000, random_state=0))",
      "m.fit(x, np.array(d['y']))",
      "print(json.dumps({'coef': m.coef_.tolist(), 'intercept': m.intercept_.tolist(),",
      "  'pred': m.predict(xq).tolist()}))",
    ].join("\n");
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", script, `${dir}/d.json`, model],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout)) as {
      coef: number[][];
      intercept: number[];
      pred: number[];
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Softmax intercepts are defined up to a common shift: compare them centred. */
function centred(b: ArrayLike<number>): number[] {
  const m = Array.from(b).reduce((s, v) => s + v, 0) / b.length;
  return Array.from(b, (v) => v - m);
}

Deno.test({
  name: "logistic regression and linear SVM agree with scikit-learn on a small problem",
  ignore: !hasSklearn,
  fn: async () => {
    const { X, y, nClasses, domain } = simulated(9, [200, 300], 120, 4);
    const train = rowsWhere(domain.map((d) => d === "source"));
    const query = rowsWhere(domain.map((d) => d === "target"));
    const Xtr = selectRows(X, train);
    const ytr = Int32Array.from(train, (i) => y[i]);
    const Xq = selectRows(X, query);
    const fits = [
      ["lr", fitLogistic(Xtr, ytr, nClasses, { tol: 1e-9 })],
      ["svc", fitLinearSvm(Xtr, ytr, nClasses, { tol: 1e-8, maxIter: 100000 })],
    ] as const;
    for (const [name, model] of fits) {
      const sk = await sklearnFit(name, Xtr, ytr, Xq);
      const ours = predictLinear(model, Xq).predicted;
      const same = accuracyOf(ours, sk.pred);
      assert.ok(same >= 0.99, `${name}: same prediction on ${same} of the query cells`);
      // Both sides solve the same strictly convex problem to a tight tolerance. Weights are up
      // to ~0.3 here; the logistic optimum is flat along nearly separating directions, so its
      // weights agree to 1e-4 (measured worst 1.2e-5), the SVM's to 1e-7 (measured 8e-10).
      // Logistic intercepts (|b| ~10, unpenalised) inherit the flatness: 1e-3 relative (measured
      // worst 4.7e-3 absolute, 5e-4 relative).
      const tol = name === "lr" ? { atol: 1e-4, rtol: 1e-3 } : { atol: 1e-7 };
      const coef = new Float64Array(Xtr.nCols * nClasses);
      for (let k = 0; k < nClasses; k++) {
        for (let g = 0; g < Xtr.nCols; g++) coef[g * nClasses + k] = sk.coef[k][g];
      }
      assertClose(model.weights, coef, tol, `${name} weights`);
      const bias = name === "lr" ? centred(model.bias) : Array.from(model.bias);
      const skBias = name === "lr" ? centred(sk.intercept) : sk.intercept;
      assertClose(bias, skBias, tol, `${name} intercepts`);
    }
  },
});
