/**
 * The guard's decision logic (scnym/guard.ts) on constructed inputs: agreement, the paired screen,
 * temperature fitting, and each rule of `decideGuard` deciding as documented.
 */
import assert from "node:assert/strict";
import {
  agreement,
  decideGuard,
  fitTemperature,
  type GuardModelOutputs,
  pairedWorseZ,
  temperatureScale,
} from "../scnym/guard.ts";
import { meanNll } from "../scnym/calibration.ts";
import { Rng } from "../util/rng.ts";
import { isScnym } from "./helpers.ts";

const C = 3;

/** One-hot-ish probabilities (0.9 on the class, the rest shared) for a list of classes. */
function probsOf(classes: number[], top = 0.9): number[] {
  return classes.flatMap((k) =>
    Array.from({ length: C }, (_, c) => c === k ? top : (1 - top) / (C - 1))
  );
}

/** `n` cells with classes cycling 0, 1, 2, ... */
const cycle = (n: number) => Array.from({ length: n }, (_, i) => i % C);

/** A model that predicts `target` on the target cells and gets validation cells right except
 * the first `valErrors`. */
function model(target: number[], valLabels: number[], valErrors = 0): GuardModelOutputs {
  const val = valLabels.map((k, i) => i < valErrors ? (k + 1) % C : k);
  return { validation: probsOf(val), target: probsOf(target) };
}

/** `truth` with the first `n` cells moved to class 0 (a collapse onto one reference type). */
const collapse = (truth: number[], n: number) => truth.map((k, i) => i < n ? 0 : k);
/** `truth` with every `every`-th cell off by one class (scattered, independent errors). */
const scatter = (truth: number[], every: number, phase = 0) =>
  truth.map((k, i) => (i + phase) % every === 0 ? (k + 1) % C : k);

Deno.test("agreement counts equal entries; the paired screen counts only discordant cells", () => {
  assert.equal(agreement([0, 1, 2, 2], [0, 1, 1, 2]), 0.75);
  assert.equal(agreement([], []), 1);
  assert.throws(() => agreement([0], [0, 1]), isScnym(/agreement/));
  const labels = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  // `best` right on all 9, `pred` wrong on 4: (4 - 0) / sqrt(4) = 2.
  assert.equal(pairedWorseZ(labels, [1, 1, 1, 1, 0, 0, 0, 0, 0], labels), 2);
  // Same mistakes: no evidence either way.
  assert.equal(pairedWorseZ(labels, [1, 0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0]), 0);
  // 3 only-best vs 1 only-pred: (3 - 1) / 2 = 1.
  assert.equal(pairedWorseZ(labels, [1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 2, 0, 0, 0, 0, 0]), 1);
});

Deno.test("temperature scaling: T = 1 is the identity; fitting recovers an overconfidence", () => {
  const p = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8];
  const same = temperatureScale(p, C, 1);
  p.forEach((x, i) => assert.ok(Math.abs(same[i] - x) < 1e-12));
  // Labels drawn from softmax(z); the model reports softmax(3 z): the fitted T should be ~3.
  const rng = new Rng(7);
  const n = 4000;
  const probs: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: C }, () => 1.5 * rng.normal());
    const soft = (k: number) => z.map((v) => Math.exp(k * v));
    const true1 = soft(1), sharp = soft(3);
    const s1 = true1.reduce((a, b) => a + b), s3 = sharp.reduce((a, b) => a + b);
    let u = rng.uniform() * s1, k = 0;
    while (k < C - 1 && (u -= true1[k]) > 0) k++;
    labels.push(k);
    probs.push(...sharp.map((v) => v / s3));
  }
  const T = fitTemperature(probs, C, labels);
  // Sampling noise on 4000 cells: within 10% of 3.
  assert.ok(Math.abs(T - 3) < 0.3, `T = ${T}`);
  assert.ok(meanNll(temperatureScale(probs, C, T), C, labels) < meanNll(probs, C, labels));
  assert.equal(fitTemperature(probs, C, []), 1);
});

const valLabels = cycle(60);
const truth = cycle(300);

Deno.test("rule 2: default kept when it and no_ssl (nearly) agree on the target", () => {
  const d = decideGuard({
    classes: C,
    validationLabels: valLabels,
    candidates: {
      default: model(truth, valLabels, 1),
      no_dan: model(scatter(truth, 10), valLabels, 2),
      no_ssl: model(scatter(truth, 40), valLabels),
    },
  });
  assert.equal(d.chosen, "default");
  assert.equal(d.rule, "agreement");
  assert.equal(d.scores.default!.agreementNoSsl, 1 - 8 / 300);
  assert.equal(d.scores.default!.agreementOthers, null);
});

Deno.test("rule 3: a default that collapses a type onto another strays from the consensus", () => {
  // default moves 60 target cells onto class 0; the others make scattered, different errors.
  const d = decideGuard({
    classes: C,
    validationLabels: valLabels,
    candidates: {
      default: model(collapse(truth, 90), valLabels),
      no_dan: model(scatter(truth, 15, 1), valLabels),
      no_ssl: model(scatter(truth, 12, 2), valLabels),
    },
    linear: model(scatter(truth, 9, 3), valLabels, 3),
  });
  assert.equal(d.rule, "consensus");
  assert.notEqual(d.chosen, "default");
  const s = d.scores;
  assert.ok(s.default!.agreementOthers! < s.no_dan!.agreementOthers!);
  assert.ok(d.linear && d.linear.agreementOthers !== null);
  assert.match(d.reason, /consensus/);
});

Deno.test("rule 3 keeps a default that disagrees with no_ssl but no more than the others do", () => {
  // Every model is wrong on a different 10% of the cells: default and no_ssl disagree on 20%,
  // yet default agrees with the others' consensus as well as any of them.
  const d = decideGuard({
    classes: C,
    validationLabels: valLabels,
    candidates: {
      default: model(scatter(truth, 10, 0), valLabels),
      no_dan: model(scatter(truth, 10, 3), valLabels),
      no_ssl: model(scatter(truth, 10, 5), valLabels),
    },
    linear: model(scatter(truth, 10, 7), valLabels),
  });
  assert.equal(d.rule, "consensus");
  assert.equal(d.chosen, "default");
  assert.ok(Math.abs(d.scores.default!.agreementNoSsl - 0.8) < 1e-12);
  assert.match(d.reason, /does not stray/);
});

Deno.test("rule 3 ties between alternatives go to the simpler one", () => {
  const d = decideGuard({
    classes: C,
    validationLabels: valLabels,
    candidates: {
      default: model(collapse(truth, 90), valLabels),
      no_dan: model(scatter(truth, 7), valLabels),
      no_ssl: model(scatter(truth, 11), valLabels),
    },
    linear: model(truth, valLabels),
  }, { screenZ: 2, agreeShare: 0.05, stray: 0.02, tie: 0.2 });
  assert.equal(d.rule, "consensus");
  assert.equal(d.chosen, "no_ssl");
  assert.match(d.reason, /default strays/);
});

Deno.test("rule 1: a candidate significantly worse on the held-out cells is dropped", () => {
  const d = decideGuard({
    classes: C,
    validationLabels: valLabels,
    candidates: {
      default: model(collapse(truth, 90), valLabels, 20),
      no_dan: model(collapse(truth, 90), valLabels, 20),
      no_ssl: model(truth, valLabels),
    },
  });
  assert.ok(d.scores.default!.screenedOut && d.scores.no_dan!.screenedOut);
  assert.equal(d.chosen, "no_ssl");
  assert.equal(d.rule, "only");
});

Deno.test("decideGuard needs the default and no_ssl candidates", () => {
  assert.throws(
    () =>
      decideGuard({
        classes: C,
        validationLabels: valLabels,
        candidates: { default: model(truth, valLabels) },
      }),
    isScnym(/no_ssl/),
  );
});
