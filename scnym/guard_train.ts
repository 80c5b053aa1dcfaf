/**
 * Guarded training (`--config auto`, the default of `scnym train`): trains the guard's candidate
 * configurations on one split (same seed, same held-out cells), a logistic regression on the same
 * labelled cells as an independent voter, lets `decideGuard` (scnym/guard.ts) pick one candidate
 * without reading any target label, and keeps that candidate as an ordinary model whose header
 * records the decision. Costs two trainings (`default`, `no_ssl`) when they agree on the target
 * (rule 2 of the guard), else three plus one linear fit.
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { fitLogistic, predictLinear } from "../eval/linear.ts";
import { Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { type ConfigOverrides, resolveConfig, type ScnymConfig } from "./config.ts";
import {
  decidedWithoutNoDan,
  decideGuard,
  GUARD_CANDIDATES,
  type GuardCandidateName,
  type GuardDecision,
  type GuardModelOutputs,
} from "./guard.ts";
import { saveTrainedModel } from "./checkpoint.ts";
import { predictCells } from "./predict.ts";
import { train, type TrainOptions, type TrainResult } from "./train.ts";
import type { TrainingSet } from "./types.ts";

/** The name `--config` takes for guarded training. */
export const AUTO_CONFIG = "auto";

/** What the model file and the summary record about a guarded run. */
export interface GuardRecord extends GuardDecision {
  /** Per candidate: held-out accuracy, epoch kept, seconds (labels of the target: none read). */
  candidates: Partial<
    Record<GuardCandidateName, { bestEpoch: number; epochsRun: number; seconds: number }>
  >;
  /** The linear voter's fit; null when it was not needed (nor `no_dan`: rule 2 decided). */
  linearFit: { iterations: number; converged: boolean; seconds: number } | null;
  seconds: number;
}

/** One resolved configuration per candidate. */
export type GuardConfigs = Record<GuardCandidateName, ScnymConfig>;

/** The candidates' configurations, each with the same overrides deep-merged in. */
export function guardConfigs(overrides?: ConfigOverrides | unknown): GuardConfigs {
  return Object.fromEntries(
    GUARD_CANDIDATES.map((n) => [n, resolveConfig(n, overrides)]),
  ) as GuardConfigs;
}

/** Options of `trainGuarded`: those of `train`, with one resolved configuration per candidate. */
export interface GuardedOptions extends Omit<TrainOptions, "config"> {
  configs: GuardConfigs;
}

/** The kept candidate's result and the guard's record (null when training was interrupted). */
export interface GuardedResult {
  result: TrainResult;
  guard: GuardRecord | null;
}

/** Row indices of the cells of one split. */
function rowsOf(r: TrainResult, split: string): number[] {
  return r.cellSplit.flatMap((s, i) => s === split ? [i] : []);
}

/** The cells every candidate is scored on: held-out reference cells, then target cells. */
interface EvalSet {
  val: number[];
  target: number[];
  classes: string[];
  /** The labels of the held-out reference cells: the only labels the guard reads. */
  validationLabels: Int32Array;
  X: Csr;
  /** A probability matrix of `X`'s rows, split into the guard's two parts. */
  split: (p: ArrayLike<number>) => GuardModelOutputs;
}

function guardEvalSet(data: TrainingSet, base: TrainResult): EvalSet {
  const val = rowsOf(base, "validation");
  const target = rowsOf(base, "target");
  const classes = base.classes;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const C = classes.length;
  return {
    val,
    target,
    classes,
    validationLabels: Int32Array.from(val, (i) => classIndex.get(data.labels[i]!)!),
    X: selectRows(data.X, [...val, ...target]),
    split: (p) => ({
      validation: Array.prototype.slice.call(p, 0, val.length * C),
      target: Array.prototype.slice.call(p, val.length * C),
    }),
  };
}

/** The logistic-regression voter, fitted on the training and early-stopping cells. */
function fitLinearVoter(data: TrainingSet, base: TrainResult, ev: EvalSet) {
  const t0 = performance.now();
  const classIndex = new Map(ev.classes.map((c, i) => [c, i]));
  const fitRows = [...rowsOf(base, "train"), ...rowsOf(base, "early_stopping")];
  const linear = fitLogistic(
    selectRows(data.X, fitRows),
    Int32Array.from(fitRows, (i) => classIndex.get(data.labels[i]!)!),
    ev.classes.length,
  );
  const outputs = ev.split(predictLinear(linear, ev.X).probabilities!);
  const record = {
    iterations: linear.fit.iterations,
    converged: linear.fit.converged,
    seconds: (performance.now() - t0) / 1000,
  };
  return { outputs, record };
}

/**
 * Trains `default` and `no_ssl`, then `no_dan` and the linear voter only when the decision
 * needs them (`decidedWithoutNoDan`), decides, and keeps one (see the module comment).
 */
export async function trainGuarded(
  data: TrainingSet,
  opts: GuardedOptions,
): Promise<GuardedResult> {
  const t0 = performance.now();
  const progress = opts.progress ?? new Progress();
  const rt = opts.rt ?? await Runtime.create();
  if (!data.isTarget.some(Boolean)) {
    // Without target cells every candidate is the same supervised network: nothing to guard.
    progress.log("guard: no target cells, training default only");
    return {
      result: await train(data, { ...opts, rt, config: opts.configs.default }),
      guard: null,
    };
  }
  const results: Partial<Record<GuardCandidateName, TrainResult>> = {};
  const release = (keep?: TrainResult) => {
    for (const r of Object.values(results)) if (r !== keep) r.model.destroy();
  };
  try {
    // `no_dan` last, and only when the decision on the other two does not stand on its own.
    const order: GuardCandidateName[] = ["default", "no_ssl", "no_dan"];
    const outputs: Partial<Record<GuardCandidateName, GuardModelOutputs>> = {};
    let evalSet: EvalSet | null = null;
    let decision: GuardDecision | null = null;
    let linearFit: GuardRecord["linearFit"] = null;
    for (const name of order) {
      if (name === "no_dan" && decidedWithoutNoDan(decision!)) break;
      progress.log(`guard: candidate ${Object.keys(results).length + 1}: ${name}`);
      // Only the default writes checkpoints: Ctrl-C during it leaves its best model, as ever.
      const r = await train(data, {
        ...opts,
        rt,
        config: opts.configs[name],
        checkpointPath: name === "default" ? opts.checkpointPath : undefined,
      });
      results[name] = r;
      if (r.interrupted) {
        const kept = results.default!;
        release(kept);
        return { result: { ...kept, interrupted: true }, guard: null };
      }
      evalSet ??= guardEvalSet(data, r);
      if (rowsOf(r, "validation").join() !== evalSet.val.join()) {
        throw new ScnymError(`guard: ${name} was trained on another split than default`);
      }
      const p = await predictCells(rt, r.model, evalSet.X, { classes: evalSet.classes, progress });
      outputs[name] = evalSet.split(p.probabilities);
      if (name === "default") continue;
      let linear: GuardModelOutputs | undefined;
      if (name === "no_dan") {
        const fit = fitLinearVoter(data, results.default!, evalSet);
        linear = fit.outputs;
        linearFit = fit.record;
      }
      decision = decideGuard({
        classes: evalSet.classes.length,
        validationLabels: evalSet.validationLabels,
        candidates: outputs,
        linear,
      });
    }
    decision = decision!;
    const kept = results[decision.chosen]!;
    release(kept);
    const guard: GuardRecord = {
      ...decision,
      candidates: Object.fromEntries(
        Object.entries(results).map(([n, r]) => [n, {
          bestEpoch: r.bestEpoch,
          epochsRun: r.history.length,
          seconds: r.seconds,
        }]),
      ),
      linearFit,
      seconds: (performance.now() - t0) / 1000,
    };
    const header = { ...kept.header, training: { ...kept.header.training, guard } };
    if (opts.checkpointPath) {
      await saveTrainedModel(opts.checkpointPath, header, kept.model, kept.calibration);
    }
    progress.log(`guard: kept ${decision.chosen} (${decision.rule}): ${decision.reason}`);
    return { result: { ...kept, header, seconds: guard.seconds }, guard };
  } catch (e) {
    release();
    throw e;
  }
}

/** The guard's decision as a report section: one row per candidate plus the linear voter. */
export function guardSection(g: GuardRecord): {
  title: string;
  lead: string;
  header: string[];
  rows: string[][];
} {
  const pct = (x: number | null | undefined) =>
    x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`;
  const rows = GUARD_CANDIDATES.flatMap((n) => {
    const s = g.scores[n];
    if (!s) return [];
    return [[
      n + (n === g.chosen ? " (kept)" : ""),
      pct(s.validationAccuracy),
      s.temperature.toFixed(2),
      pct(s.agreementNoSsl),
      pct(s.agreementOthers),
      s.screenedOut ? "dropped" : "passed",
    ]];
  });
  if (g.linear) {
    rows.push([
      "logistic regression (voter)",
      pct(g.linear.validationAccuracy),
      "-",
      "-",
      pct(g.linear.agreementOthers),
      "-",
    ]);
  }
  return {
    title: "Configuration guard",
    lead:
      `Trained ${Object.keys(g.candidates).join(", ")} on one split and kept ${g.chosen} (rule: ` +
      `${g.rule}): ${g.reason}. No target label was read: the scores use the held-out ` +
      "reference cells' labels and the agreement of the models' predictions on the target cells.",
    header: [
      "candidate",
      "held-out reference accuracy",
      "temperature",
      "target agreement with no_ssl",
      "target agreement with the other models",
      "held-out screen",
    ],
    rows,
  };
}
