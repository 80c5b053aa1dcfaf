/**
 * The experiment behind the label-free guard's thresholds (scnym/guard.ts): for every shared
 * task and seed, trains the guard's candidate configurations once on the same split and caches
 * what the guard may see (target and held-out reference probabilities, reference labels of the
 * held-out split, the training history) plus, for evaluation only, the target accuracy.
 * The decision rules are then iterated offline on this cache (`--analyse`).
 *
 *   deno run -A bench/guard_study.ts [--tasks ...] [--seeds 0,1,2] [--configs default,no_dan,no_ssl]
 *                                    [--cache /tmp/guard_study]
 */
import { parseArgs } from "node:util";
import { Runtime } from "../runtime/runtime.ts";
import { selectRows } from "../data/csr.ts";
import { fitLogistic, predictLinear } from "../eval/linear.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { loadTrainingData } from "../scnym/inputs.ts";
import { predictCells } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { DATA, TASKS } from "./tasks.ts";

/**
 * A stress task outside the shared tasks (label shift: a target of lymphoid cells only), built by
 * the command in the note of bench/guard_study's results from pbmc_symphony; never in the repo.
 */
const STRESS: Record<string, typeof TASKS[string]> = {
  shift_lymphoid: {
    file: "/tmp/guard_shift.h5ad",
    labels: "cell_type",
    referenceWhere: "shift=ref",
    targetWhere: "shift=target",
    original: { accuracy: NaN, macroF1: NaN },
    svm: NaN,
  },
};
const ALL = { ...TASKS, ...STRESS };
const fileOf = (f: string) => f.startsWith("/") ? f : DATA + f;

const args = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "sym_3pv2_5p,sym_5p_3pv1,pancreas,kang" },
    configs: { type: "string", default: "default,no_dan,no_ssl" },
    seeds: { type: "string", default: "0,1,2" },
    cache: { type: "string", default: "/tmp/guard_study" },
  },
});
const rt = await Runtime.create();
const progress = new Progress({ quiet: true });
const round = (a: ArrayLike<number>) => Array.from(a, (x) => Math.round(x * 1e5) / 1e5);

for (const seed of args.values.seeds!.split(",").map(Number)) {
  for (const t of args.values.tasks!.split(",")) {
    const task = ALL[t];
    for (const config of args.values.configs!.split(",")) {
      const path = `${args.values.cache}/${t}-${config}-seed${seed}.json`;
      try {
        Deno.statSync(path);
        continue;
      } catch { /* not cached yet */ }
      if (config === "logistic") {
        await logisticRun(t, seed, path, `${args.values.cache}/${t}-default-seed${seed}.json`);
        continue;
      }
      const { result, loaded } = await trainFromFiles({
        reference: fileOf(task.file),
        labels: task.labels,
        targetWhere: task.targetWhere,
        referenceWhere: task.referenceWhere,
        config,
        seed,
        rt,
        progress,
      });
      const p = await predictCells(rt, result.model, loaded.set.X, { classes: result.classes });
      const C = result.classes.length;
      const rows = (split: string) =>
        result.cellSplit.map((s, i) => s === split ? i : -1).filter((i) => i >= 0);
      const probsOf = (idx: number[]) =>
        idx.map((i) => round(p.probabilities.subarray(i * C, (i + 1) * C)));
      const classOf = (idx: number[]) =>
        idx.map((i) => result.classes.indexOf(loaded.set.labels[i]!));
      const target = rows("target");
      const val = rows("validation");
      const stop = rows("early_stopping");
      const truth = target.map((i) => loaded.truth[i]);
      const hits = target.filter((i) => p.labels[i] === loaded.truth[i]).length;
      const run = {
        task: t,
        config,
        seed,
        classes: result.classes,
        validationAccuracy: result.validation.accuracy,
        bestEpoch: result.bestEpoch,
        trainSeconds: result.seconds,
        history: result.history,
        splits: { train: rows("train"), earlyStopping: stop, validation: val, target },
        validation: { labels: classOf(val), probs: probsOf(val) },
        earlyStopping: { labels: classOf(stop), probs: probsOf(stop) },
        target: { probs: probsOf(target) },
        // Evaluation only: never read by the guard.
        evaluation: { truth, accuracy: hits / target.length },
      };
      Deno.writeTextFileSync(path, JSON.stringify(run));
      console.log(
        `${t} ${config} seed ${seed}: target ${run.evaluation.accuracy.toFixed(4)} ` +
          `val ${result.validation.accuracy?.toFixed(4)} ${result.seconds.toFixed(0)} s`,
      );
      result.model.destroy();
    }
  }
}
rt.destroy();

/**
 * The logistic-regression candidate on the split of the cached `default` run (same seed, same
 * split): fitted on the training and early-stopping cells, as the guard fits it.
 */
async function logisticRun(t: string, seed: number, path: string, defaultPath: string) {
  const task = ALL[t];
  const ref = JSON.parse(Deno.readTextFileSync(defaultPath));
  const loaded = await loadTrainingData({
    reference: fileOf(task.file),
    labels: task.labels,
    targetWhere: task.targetWhere,
    referenceWhere: task.referenceWhere,
  });
  const classes: string[] = ref.classes;
  const fitRows: number[] = [...ref.splits.train, ...ref.splits.earlyStopping];
  const y = Int32Array.from(fitRows, (i) => classes.indexOf(loaded.set.labels[i]!));
  const t0 = performance.now();
  const model = fitLogistic(selectRows(loaded.set.X, fitRows), y, classes.length);
  const probsOf = (idx: number[]) => {
    const p = predictLinear(model, selectRows(loaded.set.X, idx)).probabilities!;
    return idx.map((_, k) => round(p.subarray(k * classes.length, (k + 1) * classes.length)));
  };
  const target: number[] = ref.splits.target;
  const tp = probsOf(target);
  const hits = tp.filter((row, k) =>
    classes[row.indexOf(Math.max(...row))] === ref.evaluation.truth[k]
  );
  const run = {
    ...ref,
    config: "logistic",
    history: [],
    bestEpoch: -1,
    trainSeconds: (performance.now() - t0) / 1000,
    validation: { labels: ref.validation.labels, probs: probsOf(ref.splits.validation) },
    earlyStopping: { labels: ref.earlyStopping.labels, probs: probsOf(ref.splits.earlyStopping) },
    target: { probs: tp },
    evaluation: { truth: ref.evaluation.truth, accuracy: hits.length / target.length },
  };
  const val =
    run.validation.probs.filter((row: number[], k: number) =>
      row.indexOf(Math.max(...row)) === run.validation.labels[k]
    ).length;
  run.validationAccuracy = val / run.validation.labels.length;
  Deno.writeTextFileSync(path, JSON.stringify(run));
  console.log(
    `${t} logistic seed ${seed}: target ${run.evaluation.accuracy.toFixed(4)} ` +
      `val ${run.validationAccuracy.toFixed(4)} ${run.trainSeconds.toFixed(0)} s`,
  );
}
