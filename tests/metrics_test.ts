/**
 * Metric functions against hand-computed small cases (the arithmetic is in the comments), edge
 * cases of ECE and AUROC, and `evaluate`'s refusals. Exact-arithmetic cases use atol 1e-12
 * (float64 round-off of a few operations); cases fed float32 confidences use 1e-6 (float32
 * rounding of inputs like 0.81 is ~1e-8, accumulated over a handful of cells).
 */
import assert from "node:assert/strict";
import { alignCells, evaluate, formatEvaluation } from "../eval/evaluate.ts";
import {
  accuracy,
  auroc,
  brierScore,
  calibrationBinIndex,
  classScores,
  confusionMatrix,
  expectedCalibrationError,
  median,
  negativeLogLikelihood,
} from "../eval/metrics.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";

const near = (a: number, b: number, tol = 1e-12, what = "value") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b} (tol ${tol})`);

Deno.test("confusion matrix, accuracy and per-class F1 on a hand-computed case", () => {
  const truth = ["A", "A", "A", "B", "B", "C"];
  const pred = ["A", "A", "B", "B", "C", "C"];
  const cm = confusionMatrix(truth, pred);
  assert.deepEqual(cm.labels, ["A", "B", "C"]);
  // Rows true, columns predicted: A->A twice, A->B once; B->B, B->C; C->C.
  assert.deepEqual(cm.counts, [[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
  near(accuracy(truth, pred), 4 / 6);
  const s = classScores(cm);
  // A: TP 2, predicted 2, support 3 -> P 1, R 2/3, F1 2*2/(2+3) = 0.8.
  // B: TP 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 2/(2+2) = 0.5.
  // C: TP 1, predicted 2, support 1 -> P 1/2, R 1, F1 2/(2+1) = 2/3.
  const expected = [[1, 2 / 3, 0.8, 3, 2], [0.5, 0.5, 0.5, 2, 2], [0.5, 1, 2 / 3, 1, 2]];
  s.forEach((c, i) => {
    const [p, r, f, sup, np] = expected[i];
    near(c.precision, p, 1e-12, `${c.label} precision`);
    near(c.recall, r, 1e-12, `${c.label} recall`);
    near(c.f1, f, 1e-12, `${c.label} F1`);
    assert.equal(c.support, sup);
    assert.equal(c.predicted, np);
  });
  // Median of {0.8, 0.5, 2/3} is 2/3; of four values the mean of the middle two.
  near(median(s.map((c) => c.f1)), 2 / 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

Deno.test("a class that is never predicted has precision, recall and F1 0, not NaN", () => {
  const s = classScores(confusionMatrix(["A", "B"], ["A", "A"]));
  // A: TP 1, predicted 2, support 1 -> F1 2/(2+1). B: TP 0, predicted 0, support 1 -> all 0.
  near(s[0].f1, 2 / 3);
  assert.deepEqual([s[1].precision, s[1].recall, s[1].f1], [0, 0, 0]);
  // A predicted-only class: support 0, recall 0 (0/0 -> 0).
  const t = classScores(confusionMatrix(["A", "A"], ["A", "Z"]));
  assert.deepEqual([t[1].label, t[1].precision, t[1].recall, t[1].f1], ["Z", 0, 0, 0]);
});

Deno.test("ECE: hand-computed bins, one bin, all correct, all wrong", () => {
  // 15 bins (b/15, (b+1)/15]: 0.95 and 0.94 -> bin 14, 0.7 -> bin 10, 0.3 -> bin 4.
  assert.deepEqual([0.95, 0.94, 0.7, 0.3].map((c) => calibrationBinIndex(c, 15)), [14, 14, 10, 4]);
  // Bin 14: acc 1/2, conf 0.945 -> 2/4 * 0.445; bin 10: 1/4 * |1 - 0.7|; bin 4: 1/4 * |1 - 0.3|.
  // ECE = 0.2225 + 0.075 + 0.175 = 0.4725.
  const r = expectedCalibrationError([0.95, 0.94, 0.7, 0.3], [1, 0, 1, 1]);
  near(r.ece, 0.4725);
  assert.equal(r.bins.length, 15);
  assert.equal(r.bins[14].count, 2);
  near(r.bins[14].accuracy, 0.5);
  near(r.bins[14].confidence, 0.945);
  assert.equal(r.bins.reduce((s, b) => s + b.count, 0), 4);
  // One bin: |mean accuracy - mean confidence| = |3/4 - 0.7| = 0.05.
  near(expectedCalibrationError([0.9, 0.8, 0.6, 0.5], [1, 1, 0, 1], 1).ece, 0.05);
  // All correct: every bin has acc 1 >= conf, so ECE = 1 - mean confidence = 1 - 0.8.
  near(expectedCalibrationError([0.6, 0.8, 1.0], [1, 1, 1]).ece, 0.2);
  // All wrong: ECE = mean confidence.
  near(expectedCalibrationError([0.6, 0.8, 1.0], [0, 0, 0]).ece, 0.8);
  // Perfectly calibrated bins give 0: half right at confidence 0.5 (bin 7).
  near(expectedCalibrationError([0.5, 0.5], [1, 0]).ece, 0);
});

Deno.test("ECE bin edges are closed on the right, with 0 in the first bin", () => {
  assert.equal(calibrationBinIndex(0, 15), 0);
  assert.equal(calibrationBinIndex(1, 15), 14);
  assert.equal(calibrationBinIndex(2 / 15, 15), 1);
  assert.equal(calibrationBinIndex(2 / 15 + 1e-12, 15), 2);
  for (let b = 1; b <= 15; b++) {
    assert.equal(calibrationBinIndex(b / 15, 15), b - 1, `edge ${b}/15`);
  }
  assert.throws(() => expectedCalibrationError([1.2], [1]), ScnymError);
  assert.throws(() => expectedCalibrationError([0.5], [1], 0), ScnymError);
});

/** AUROC as the fraction of (positive, negative) pairs ordered right, ties 1/2 (O(n^2) reference). */
function aurocPairsRef(scores: number[], pos: boolean[]): number {
  let s = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!pos[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (pos[j]) continue;
      s += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      pairs++;
    }
  }
  return s / pairs;
}

Deno.test("AUROC: ties, perfect separation, hand case, and pair-counting reference", () => {
  assert.equal(auroc([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0]), 0.5);
  assert.equal(auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]), 1);
  assert.equal(auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]), 0);
  // scikit-learn's docstring example: 3 of 4 pairs ordered right.
  near(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  // Pairs (pos, neg): (.5,.5) tie 1/2, (.5,.2) 1, (.9,.5) 1, (.9,.2) 1 -> 3.5 / 4.
  near(auroc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]), 0.875);
  assert.ok(Number.isNaN(auroc([0.1, 0.2], [1, 1])));
  const rng = new Rng(7);
  for (const n of [2, 3, 17, 200]) {
    // Scores rounded to a few levels so that ties are common.
    const scores = Array.from({ length: n }, () => Math.round(rng.uniform() * 5) / 5);
    const pos = Array.from({ length: n }, (_, i) => i === 0 || (i !== 1 && rng.uniform() < 0.3));
    near(auroc(scores, pos), aurocPairsRef(scores, pos), 1e-12, `n=${n}`);
  }
});

Deno.test("Brier score and NLL, including a true class the model does not know", () => {
  const probs = [0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0, 1, 0];
  // Cell 0, true class 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.14.
  // Cell 1, true class unknown (-1): target all zeros -> 0.01 + 0.36 + 0.09 = 0.46.
  // Cell 2, true class 0 with p = 0: 1 + 1 + 0 = 2.  Mean = (0.14 + 0.46 + 2) / 3.
  near(brierScore(probs, 3, 3, [0, -1, 0]), 2.6 / 3);
  // NLL skips cell 1; cell 2's zero is clipped at 1e-12: (-ln 0.7 - ln 1e-12) / 2.
  const r = negativeLogLikelihood(probs, 3, 3, [0, -1, 0]);
  assert.equal(r.nCells, 2);
  near(r.nll, (-Math.log(0.7) - Math.log(1e-12)) / 2);
});

/** Six cells, two of an unseen type X; the numbers below are worked out by hand in the test. */
function smallCase() {
  return {
    cellNames: ["c0", "c1", "c2", "c3", "c4", "c5"],
    truth: ["A", "A", "B", "B", "X", "X"],
    predicted: ["A", "B", "B", "B", "A", "B"],
    confidence: new Float32Array([0.9, 0.5, 0.81, 0.7, 0.42, 0.55]),
    probabilities: {
      classes: ["A", "B", "C"],
      values: new Float32Array([
        ...[0.9, 0.1, 0],
        ...[0.45, 0.5, 0.05],
        ...[0.19, 0.81, 0],
        ...[0.3, 0.7, 0],
        ...[0.42, 0.3, 0.28],
        ...[0.25, 0.55, 0.2],
      ]),
    },
    trainingLabels: ["A", "B", "C"],
    confidenceThreshold: 0.9,
  };
}

Deno.test("evaluate: every number of a small case with an unseen type, by hand", () => {
  const r = evaluate(smallCase());
  const tol = 1e-6; // float32 inputs
  // Right: c0, c2, c3 -> 3/6; among seen cells (c0..c3) 3/4.
  near(r.accuracy, 0.5, tol, "accuracy");
  near(r.accuracySeen!, 0.75, tol, "accuracySeen");
  assert.deepEqual(r.confusion.labels, ["A", "B", "X"]);
  assert.deepEqual(r.confusion.counts, [[1, 1, 0], [0, 2, 0], [1, 1, 0]]);
  // A: TP 1, predicted 2 (c0, c4), support 2 -> F1 2/4. B: TP 2, predicted 4, support 2 -> 4/6.
  // X is unseen, so F1 averages over A and B: (0.5 + 2/3) / 2 = 7/12; median of two = same.
  assert.deepEqual(r.f1Classes, ["A", "B"]);
  near(r.macroF1, 7 / 12, tol, "macroF1");
  near(r.medianF1, 7 / 12, tol, "medianF1");
  assert.deepEqual(r.perClass.map((s) => s.seen), [true, true, false]);
  // Six distinct bins (0.9->13, 0.5->7, 0.81->12, 0.7->10, 0.42->6, 0.55->8), correct 1,0,1,1,0,0:
  // ECE = (0.1 + 0.5 + 0.19 + 0.3 + 0.42 + 0.55) / 6 = 2.06 / 6.
  near(r.calibration.ece, 2.06 / 6, tol, "ECE");
  // Brier: c0 .01+.01; c1 (truth A) .55^2+.5^2+.05^2 = .555; c2 .0361*2; c3 .09*2;
  // c4 (X, zero target) .42^2+.3^2+.28^2 = .3448; c5 .0625+.3025+.04 = .405 -> 1.577 / 6.
  near(r.brier!, 1.577 / 6, tol, "Brier");
  // NLL over seen cells c0..c3: -(ln .9 + ln .45 + ln .81 + ln .7) / 4.
  near(r.nll!.value, -(Math.log(0.9) + Math.log(0.45) + Math.log(0.81) + Math.log(0.7)) / 4, tol);
  assert.equal(r.nll!.nCells, 4);
  assert.equal(r.nll!.excluded, 2);
  // Unseen: X, 2 cells; confidence < 0.5: c4 only; < 0.9: both.
  const u = r.unseen!;
  assert.deepEqual(u.types, ["X"]);
  assert.equal(u.count, 2);
  assert.deepEqual(u.lowConfidence.map((l) => [l.threshold, l.count, l.recall]), [
    [0.5, 1, 0.5],
    [0.9, 2, 1],
  ]);
  // 1 - conf: unseen .58, .45; seen .1, .5, .19, .3. .58 beats all 4, .45 beats 3 -> 7/8.
  near(u.auroc!, 7 / 8, tol, "AUROC");
  near(u.meanConfidenceUnseen, (0.42 + 0.55) / 2, tol);
  near(u.meanConfidenceSeen!, (0.9 + 0.5 + 0.81 + 0.7) / 4, tol);
  // JSON-able: a round trip through JSON gives the same object (no NaN, no typed arrays).
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  const text = formatEvaluation(r);
  for (const s of ["accuracy", "50.0%", "macro F1", "X (unseen)", "AUROC", "0.875", "confusion"]) {
    assert.ok(text.includes(s), `text table lacks "${s}":\n${text}`);
  }
});

Deno.test("evaluate without probabilities or training labels leaves those sections null", () => {
  const { cellNames, truth, predicted, confidence } = smallCase();
  const r = evaluate({ cellNames, truth, predicted, confidence });
  assert.equal(r.brier, null);
  assert.equal(r.nll, null);
  assert.equal(r.unseen, null);
  assert.equal(r.accuracySeen, null);
  // Without training labels X counts as an ordinary class with F1 0: (0.5 + 2/3 + 0) / 3.
  near(r.macroF1, 7 / 18, 1e-12);
  // Training labels given but no unseen cell: AUROC is undefined, reported as null.
  const all = evaluate({
    cellNames,
    truth,
    predicted,
    confidence,
    trainingLabels: ["A", "B", "X"],
  });
  assert.equal(all.unseen!.count, 0);
  assert.equal(all.unseen!.auroc, null);
  assert.deepEqual(JSON.parse(JSON.stringify(all)), all);
});

Deno.test("evaluate refuses mismatched or malformed inputs with a clear error", () => {
  const base = smallCase();
  const cases: [string, () => unknown, RegExp][] = [
    [
      "short truth",
      () => evaluate({ ...base, truth: base.truth.slice(1) }),
      /truth has 5 entries but there are 6 cells/,
    ],
    [
      "short confidence",
      () => evaluate({ ...base, confidence: base.confidence.slice(2) }),
      /confidence has 4/,
    ],
    [
      "blank truth",
      () => evaluate({ ...base, truth: ["A", "", "B", "B", "X", "X"] }),
      /truth label of cell "c1" is missing/,
    ],
    [
      "no cells",
      () =>
        evaluate({
          ...base,
          cellNames: [],
          truth: [],
          predicted: [],
          confidence: new Float32Array(0),
        }),
      /no cells/,
    ],
    [
      "NaN confidence",
      () => evaluate({ ...base, confidence: new Float32Array([0.9, NaN, 0.8, 0.7, 0.4, 0.5]) }),
      /confidence of cell "c1" is NaN/,
    ],
    [
      "prob shape",
      () =>
        evaluate({
          ...base,
          probabilities: { classes: ["A", "B"], values: base.probabilities.values },
        }),
      /18 values, expected 6 cells x 2 classes/,
    ],
    [
      "prob sum",
      () =>
        evaluate({
          ...base,
          probabilities: {
            classes: ["A", "B", "C"],
            values: base.probabilities.values.map((v) => v * 0.5),
          },
        }),
      /cell 0 sum to 0\.500000, expected 1/,
    ],
    [
      "dup classes",
      () =>
        evaluate({
          ...base,
          probabilities: { classes: ["A", "A", "C"], values: base.probabilities.values },
        }),
      /not unique/,
    ],
  ];
  for (const [what, f, msg] of cases) {
    assert.throws(f, (e: unknown) => e instanceof ScnymError && msg.test(e.message), what);
  }
});

Deno.test("alignCells maps prediction cells onto truth rows and refuses mismatches", () => {
  const files = { predictions: "pred.csv", truth: "target.h5ad" };
  assert.deepEqual([...alignCells(["b", "c", "a"], ["a", "b", "c"], files)], [1, 2, 0]);
  const refuse = (p: string[], t: string[], msg: RegExp) =>
    assert.throws(
      () => alignCells(p, t, files),
      (e: unknown) => e instanceof ScnymError && msg.test(e.message),
    );
  refuse(["a", "b"], ["a", "b", "c"], /pred\.csv vs truth target\.h5ad: 2 predicted cells but 3/);
  refuse(
    ["a", "b", "x"],
    ["a", "b", "c"],
    /1 predicted cells are not in the truth file \(e\.g\. "x"\)/,
  );
  refuse(["a", "a", "b"], ["a", "b", "c"], /pred\.csv: cell name "a" repeats/);
  refuse(["a", "b", "c"], ["a", "b", "b"], /target\.h5ad: cell name "b" repeats/);
});
