/**
 * The baselines a user would try instead of scNym, on the same reference/target partition as a
 * training run: a linear SVM and a logistic regression (eval/linear.ts, scikit-learn's
 * `LinearSVC()` / `LogisticRegression()` defaults) fitted on every labelled reference cell's
 * log1p-CPM (or the file's log-normalised values, as scNym gets them) and scored on every target
 * cell, unseen types counting as wrong. Deterministic: one run each.
 */
import { selectRows } from "../data/csr.ts";
import { evaluate } from "../eval/evaluate.ts";
import { fitLinearSvm, fitLogistic, type LinearFitInfo, predictLinear } from "../eval/linear.ts";
import type { LoadedTraining } from "../scnym/inputs.ts";

/** A baseline's scores on the target cells. */
export interface BaselineRun {
  config: "linear_svm" | "logistic";
  accuracy: number;
  macroF1: number;
  medianF1: number;
  /** From the logistic probabilities; null for the SVM (its scores are not probabilities). */
  ece: number | null;
  /** AUROC of 1 - max probability for the unseen types (logistic only, when there are any). */
  unseenAuroc: number | null;
  targetCells: number;
  fitSeconds: number;
  fit: LinearFitInfo;
}

/** Fits both baselines on the labelled reference cells of `loaded` and scores its target cells. */
export function linearBaselines(loaded: LoadedTraining): BaselineRun[] {
  const { set } = loaded;
  const ref = set.labels.flatMap((l, i) => !set.isTarget[i] && l !== null ? [i] : []);
  const target = set.isTarget.flatMap((t, i) => t && loaded.truth[i] !== null ? [i] : []);
  const classes = [...new Set(ref.map((i) => set.labels[i]!))].sort();
  const y = Int32Array.from(ref, (i) => classes.indexOf(set.labels[i]!));
  const Xref = selectRows(set.X, ref);
  const Xtarget = selectRows(set.X, target);
  const truth = target.map((i) => loaded.truth[i]!);
  const K = classes.length;
  return [["linear_svm", fitLinearSvm], ["logistic", fitLogistic]].map(([config, fit]) => {
    const t0 = performance.now();
    const model = (fit as typeof fitLogistic)(Xref, y, K);
    const fitSeconds = (performance.now() - t0) / 1000;
    const p = predictLinear(model, Xtarget);
    const probs = p.probabilities;
    const confidence = new Float32Array(target.length);
    if (probs) {
      for (let r = 0; r < target.length; r++) confidence[r] = probs[r * K + p.predicted[r]];
    }
    const ev = evaluate({
      cellNames: target.map((i) => loaded.cellNames[i]),
      predicted: Array.from(p.predicted, (k) => classes[k]),
      confidence,
      probabilities: probs ? { classes, values: Float32Array.from(probs) } : undefined,
      truth,
      trainingLabels: classes,
    });
    return {
      config: config as BaselineRun["config"],
      accuracy: ev.accuracy,
      macroF1: ev.macroF1,
      medianF1: ev.medianF1,
      ece: probs ? ev.calibration.ece : null,
      unseenAuroc: probs ? ev.unseen?.auroc ?? null : null,
      targetCells: ev.nCells,
      fitSeconds,
      fit: model.fit,
    };
  });
}
