/**
 * The label-free guard's decision: which of the candidate configurations trained on one split
 * (`default`, `no_dan`, `no_ssl`) to keep, from what needs no target label: each candidate's
 * predictions on the held-out reference cells (whose labels are known) and on the target cells
 * (whose labels are never read), plus a linear model's as an independent voter.
 *
 * The rules (thresholds calibrated in bench/guard_study.ts, see its note):
 * 1. screen: a candidate significantly worse than the best on the held-out reference cells
 *    (paired sign test, z >= 2) is dropped; on a few dozen cells nothing finer is measurable;
 * 2. agreement: if `default` and the supervised-only `no_ssl` disagree on few target cells, the
 *    semi-supervised components changed little and nothing contradicts them: keep `default`;
 *    (|err(A) - err(B)| <= dis(A, B) for any two models, so default is then provably close);
 * 3. consensus (after EnsV, Hu et al. NeurIPS 2024): each screened candidate's target predictions
 *    are compared with the consensus (mean temperature-scaled probabilities) of the other
 *    candidates and the linear model. `default` is kept unless it strays from the others by more
 *    than `stray` compared with the best alternative: a model pulled onto wrong types disagrees
 *    with models that were not (err(A) + err(B) >= dis(A, B)); then the alternative agreeing best
 *    with the others is kept, near-ties going to the simpler one.
 *
 * Pure functions on probability matrices (cells x classes, row-major): no GPU, no files.
 */
import { argmaxRows } from "../util/argmax.ts";
import { ScnymError } from "../util/errors.ts";
import { softmaxRows } from "../util/softmax.ts";
import { fitTemperature as fitLogitTemperature } from "./calibration.ts";

/** The configurations the guard trains, from the most to the least elaborate. */
export const GUARD_CANDIDATES = ["default", "no_dan", "no_ssl"] as const;
export type GuardCandidateName = typeof GUARD_CANDIDATES[number];

/** One model's predictions, as the guard sees them. */
export interface GuardModelOutputs {
  /** Class probabilities of the held-out reference cells (`validationLabels` order). */
  validation: ArrayLike<number>;
  /** Class probabilities of the target cells (same cells, same order, for every model). */
  target: ArrayLike<number>;
}

/** What the guard decides from. */
export interface GuardInput {
  classes: number;
  /** Class index of each held-out reference cell (the only labels the guard reads). */
  validationLabels: ArrayLike<number>;
  /** The trained candidates; `default` and `no_ssl` must be there. */
  candidates: Partial<Record<GuardCandidateName, GuardModelOutputs>>;
  /** A linear model's outputs: a voter in the consensus, never picked. */
  linear?: GuardModelOutputs;
}

/** The guard's thresholds. */
export interface GuardThresholds {
  /** Rule 1: drop a candidate this many standard errors worse than the best (paired). */
  screenZ: number;
  /** Rule 2: keep `default` when it disagrees with `no_ssl` on at most this share of targets. */
  agreeShare: number;
  /** Rule 3: keep `default` unless an alternative agrees with the others by this much more. */
  stray: number;
  /** Rule 3: alternatives within this much agreement of the best count as tied (simpler wins). */
  tie: number;
}

/** The thresholds calibrated on the shared tasks (bench/guard_study.ts). */
export const GUARD_THRESHOLDS: GuardThresholds = {
  screenZ: 2,
  agreeShare: 0.05,
  stray: 0.02,
  tie: 0.01,
};

/** The label-free scores of one candidate. */
export interface GuardScores {
  /** Accuracy on the held-out reference cells. */
  validationAccuracy: number;
  /** Temperature fitted on the held-out reference cells (probabilities are scaled by it). */
  temperature: number;
  /** Share of target cells on which it agrees with `no_ssl`. */
  agreementNoSsl: number;
  /**
   * Share of target cells on which it agrees with the consensus of the other models (the other
   * screened candidates and the linear voter); null when rule 3 was not reached.
   */
  agreementOthers: number | null;
  /** Dropped by the screen (rule 1). */
  screenedOut: boolean;
}

/** The guard's decision. */
export interface GuardDecision {
  chosen: GuardCandidateName;
  /** Which rule decided: "agreement" (2), "consensus" (3), or "only" (one candidate left). */
  rule: "agreement" | "consensus" | "only";
  /** One sentence: why. */
  reason: string;
  scores: Partial<Record<GuardCandidateName, GuardScores>>;
  /** The linear voter's held-out accuracy and agreement with the others, when there was one. */
  linear?: { validationAccuracy: number; agreementOthers: number | null };
  thresholds: GuardThresholds;
}

/** Share of rows on which two label vectors agree. */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new ScnymError(`agreement: ${a.length} vs ${b.length} cells`);
  if (a.length === 0) return 1;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/**
 * Paired sign-test statistic of `pred` against `best` on labelled cells: (cells only `best` gets
 * right - cells only `pred` gets right) / sqrt(their sum); 0 when they never differ.
 */
export function pairedWorseZ(
  labels: ArrayLike<number>,
  pred: ArrayLike<number>,
  best: ArrayLike<number>,
): number {
  let onlyBest = 0, onlyPred = 0;
  for (let i = 0; i < labels.length; i++) {
    const b = best[i] === labels[i], p = pred[i] === labels[i];
    if (b && !p) onlyBest++;
    else if (p && !b) onlyPred++;
  }
  const n = onlyBest + onlyPred;
  return n === 0 ? 0 : (onlyBest - onlyPred) / Math.sqrt(n);
}

/** Logits (up to a per-row shift) of probabilities: log p, clipped at 1e-12. */
function logOf(p: ArrayLike<number>): Float64Array {
  return Float64Array.from(p, (x) => Math.log(Math.max(x, 1e-12)));
}

/** `softmax(log(p) / T)` per row: probabilities at temperature T (log p are logits up to a shift). */
export function temperatureScale(p: ArrayLike<number>, C: number, T: number): Float64Array {
  return softmaxRows(logOf(p), C, T);
}

/**
 * The temperature minimising the held-out NLL of probabilities `p` (Guo et al. 2017; see
 * `fitTemperature` of scnym/calibration.ts, here on log p); 1 without labelled cells.
 */
export function fitTemperature(p: ArrayLike<number>, C: number, labels: ArrayLike<number>): number {
  return fitLogitTemperature(logOf(p), C, labels);
}

/**
 * True when a decision taken on `default` and `no_ssl` alone stands whatever `no_dan` would say,
 * so `no_dan` (and the linear voter) need not be trained: rule 2 fired. The only way a third
 * candidate could have changed it is by screening `default` out (rule 1) while `default` and
 * `no_ssl` agree on the target; on the guard study's 15 task-seed runs that never happened and
 * the decisions were identical (bench/guard_analyse.ts applies this same test).
 */
export function decidedWithoutNoDan(d: GuardDecision): boolean {
  return d.rule === "agreement";
}

/** Row-wise mean of equally shaped probability matrices. */
export function meanProbabilities(ps: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(ps[0].length);
  for (const p of ps) for (let i = 0; i < out.length; i++) out[i] += p[i] / ps.length;
  return out;
}

/** Decides which candidate to keep; see the module comment for the rules. */
export function decideGuard(
  input: GuardInput,
  th: GuardThresholds = GUARD_THRESHOLDS,
): GuardDecision {
  const C = input.classes;
  const labels = input.validationLabels;
  const names = GUARD_CANDIDATES.filter((n) => input.candidates[n]);
  if (!input.candidates.default || !input.candidates.no_ssl) {
    throw new ScnymError("guard: the default and no_ssl candidates are both needed");
  }
  const outputs = names.map((n) => input.candidates[n]!);
  const nTarget = outputs[0].target.length / C;
  const valPred = outputs.map((o) => argmaxRows(o.validation, labels.length, C));
  const tgtPred = outputs.map((o) => argmaxRows(o.target, nTarget, C));
  const noSsl = tgtPred[names.indexOf("no_ssl")];
  const valAcc = valPred.map((p) => agreement(p, labels));
  const bestVal = valPred[valAcc.indexOf(Math.max(...valAcc))];
  const scores: GuardDecision["scores"] = {};
  names.forEach((n, k) => {
    scores[n] = {
      validationAccuracy: valAcc[k],
      temperature: fitTemperature(outputs[k].validation, C, labels),
      agreementNoSsl: agreement(tgtPred[k], noSsl),
      agreementOthers: null,
      screenedOut: pairedWorseZ(labels, valPred[k], bestVal) >= th.screenZ,
    };
  });
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const kept = names.filter((n) => !scores[n]!.screenedOut);
  const dropped = names.filter((n) => scores[n]!.screenedOut);
  const droppedText = dropped.length
    ? `; ${dropped.join(", ")} significantly worse on the held-out reference cells`
    : "";
  const decision = (
    chosen: GuardCandidateName,
    rule: GuardDecision["rule"],
    reason: string,
    linear?: GuardDecision["linear"],
  ): GuardDecision => ({
    chosen,
    rule,
    reason: reason + droppedText,
    scores,
    linear,
    thresholds: th,
  });

  if (kept.length === 1) return decision(kept[0], "only", `only ${kept[0]} passed the screen`);
  const dis = 1 - scores.default!.agreementNoSsl;
  if (kept.includes("default") && dis <= th.agreeShare) {
    return decision(
      "default",
      "agreement",
      `default and no_ssl disagree on ${pct(dis)} of the target cells (at most ` +
        `${pct(th.agreeShare)}), so default's error is within ${pct(dis)} of no_ssl's`,
    );
  }

  // Each voter at its fitted temperature; a candidate is compared with the others' consensus.
  const voters = new Map<string, { probs: Float64Array; pred: ArrayLike<number> }>();
  for (const n of kept) {
    const probs = temperatureScale(input.candidates[n]!.target, C, scores[n]!.temperature);
    voters.set(n, { probs, pred: tgtPred[names.indexOf(n)] });
  }
  let linear: GuardDecision["linear"];
  if (input.linear) {
    const T = fitTemperature(input.linear.validation, C, labels);
    const probs = temperatureScale(input.linear.target, C, T);
    voters.set("linear", { probs, pred: argmaxRows(input.linear.target, nTarget, C) });
    const lv = argmaxRows(input.linear.validation, labels.length, C);
    linear = { validationAccuracy: agreement(lv, labels), agreementOthers: null };
  }
  const others = (self: string) => {
    const rest = [...voters].filter(([n]) => n !== self).map(([, v]) => v.probs);
    return agreement(voters.get(self)!.pred, argmaxRows(meanProbabilities(rest), nTarget, C));
  };
  for (const n of kept) scores[n]!.agreementOthers = others(n);
  if (linear) linear.agreementOthers = others("linear");
  const agreeText = [...kept.map((n) => `${n} ${pct(scores[n]!.agreementOthers!)}`)]
    .concat(linear ? [`linear ${pct(linear.agreementOthers!)}`] : []).join(", ");
  const lead = `default and no_ssl disagree on ${pct(dis)} of the target cells; agreement ` +
    `with the other models' consensus: ${agreeText}`;
  const alternatives = kept.filter((n) => n !== "default");
  const bestAlt = Math.max(...alternatives.map((n) => scores[n]!.agreementOthers!));
  if (kept.includes("default") && scores.default!.agreementOthers! >= bestAlt - th.stray) {
    return decision(
      "default",
      "consensus",
      `${lead}; default does not stray from the others by more than ${pct(th.stray)}`,
      linear,
    );
  }
  // Simplest first among the near-tied alternatives.
  const chosen = [...alternatives].reverse()
    .find((n) => scores[n]!.agreementOthers! >= bestAlt - th.tie)!;
  return decision(
    chosen,
    "consensus",
    `${lead}; ` +
      (kept.includes("default")
        ? `default strays from the others by more than ${pct(th.stray)}, `
        : "") +
      `${chosen} agrees best with the others`,
    linear,
  );
}
