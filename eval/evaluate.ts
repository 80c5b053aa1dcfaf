/**
 * `evaluate`: every label-transfer metric for one set of predictions against the truth, as one
 * JSON-able object, plus a readable text rendering. The CLI reads files and aligns cells
 * (`alignCells`); this module only checks the arrays agree and computes.
 */
import { ScnymError } from "../util/errors.ts";
import {
  accuracy,
  auroc,
  brierScore,
  type Calibration,
  checkProbabilities,
  type ClassScores,
  classScores,
  type ConfusionMatrix,
  confusionMatrix,
  expectedCalibrationError,
  labelUnion,
  mean,
  median,
  negativeLogLikelihood,
  NLL_CLIP,
} from "./metrics.ts";

/** Inputs of `evaluate`; every per-cell array has one entry per cell, in the same order. */
export interface EvaluationInput {
  cellNames: string[];
  predicted: string[];
  /** Max softmax probability of each cell's prediction, 0..1. */
  confidence: Float32Array;
  /** Full class probabilities (n x C row-major over `classes`), for the Brier score and NLL. */
  probabilities?: { classes: string[]; values: Float32Array };
  truth: string[];
  /** The classes the model was trained on: true labels outside it are "unseen types". */
  trainingLabels?: string[];
  /** The model's confidence threshold (e.g. 0.9 in `new_identity_discovery`), reported too. */
  confidenceThreshold?: number;
  /** The model's novelty score per cell (`obs/scNym_novelty`; higher = more likely unseen). */
  novelty?: Float32Array;
  /** Number of equal-width confidence bins for the ECE (default 15). */
  nBins?: number;
}

/** Cells of types absent from training, and how well low confidence flags them. */
export interface UnseenTypes {
  /** True labels that are not among the training labels. */
  types: string[];
  /** Number of cells of those types. */
  count: number;
  /** For each threshold, how many unseen-type cells were predicted with confidence below it. */
  lowConfidence: { threshold: number; count: number; recall: number }[];
  /** AUROC of `1 - confidence` for "is an unseen type" (Mann-Whitney, ties count 1/2). */
  auroc: number | null;
  /** AUROC of the novelty score (scnym/calibration.ts), when the predictions carry one. */
  noveltyAuroc?: number | null;
  meanConfidenceUnseen: number;
  meanConfidenceSeen: number | null;
}

/** Everything `evaluate` reports; plain numbers, strings and arrays (JSON.stringify-able). */
export interface EvaluationResult {
  nCells: number;
  /** Fraction of all cells predicted correctly; unseen-type cells always count as wrong. */
  accuracy: number;
  /** Accuracy over cells of seen types only (when training labels are given). */
  accuracySeen: number | null;
  /** Mean of per-class F1 over `f1Classes`. */
  macroF1: number;
  /** Median of per-class F1 over `f1Classes` (Abdelaal et al. 2019). */
  medianF1: number;
  /** Classes averaged into macro/median F1: true classes, less unseen types when known. */
  f1Classes: string[];
  /** Scores of every true or predicted class, in `confusion.labels` order. */
  perClass: (ClassScores & { seen: boolean | null })[];
  /** Rows true label, columns predicted label. */
  confusion: ConfusionMatrix;
  calibration: Calibration & { nBins: number };
  /** Multi-class Brier score over all cells (null without probabilities). */
  brier: number | null;
  /** Mean NLL over cells whose true class is a model class (null without probabilities). */
  nll: { value: number; nCells: number; excluded: number; clip: number } | null;
  unseen: UnseenTypes | null;
  /** One sentence per choice a reader should know about (Brier/NLL on unseen types etc.). */
  notes: string[];
}

function checkLength(name: string, got: number, n: number) {
  if (got !== n) {
    throw new ScnymError(`evaluate: ${name} has ${got} entries but there are ${n} cells`);
  }
}

/**
 * Computes accuracy, macro/median F1, per-class scores, the confusion matrix, ECE, and with
 * probabilities the Brier score and NLL; with `trainingLabels`, the unseen-type section.
 * Throws a `ScnymError` when the arrays disagree in length, a label is empty, confidences are not
 * in 0..1, or the probabilities are malformed.
 */
export function evaluate(input: EvaluationInput): EvaluationResult {
  const n = input.cellNames.length;
  if (n === 0) throw new ScnymError("evaluate: no cells to evaluate");
  checkLength("predicted", input.predicted.length, n);
  checkLength("confidence", input.confidence.length, n);
  if (input.novelty) checkLength("novelty", input.novelty.length, n);
  checkLength("truth", input.truth.length, n);
  const blank = input.truth.findIndex((t) => typeof t !== "string" || t === "");
  if (blank >= 0) {
    throw new ScnymError(
      `evaluate: truth label of cell "${input.cellNames[blank]}" is missing; ` +
        "remove cells without a true label before evaluating",
    );
  }
  const { truth, predicted, confidence } = input;
  const badConf = confidence.findIndex((c) => !(c >= 0 && c <= 1));
  if (badConf >= 0) {
    throw new ScnymError(
      `evaluate: confidence of cell "${input.cellNames[badConf]}" is ${confidence[badConf]}, ` +
        "expected a probability in 0..1",
    );
  }
  const notes: string[] = [];

  const seenSet = input.trainingLabels ? new Set(input.trainingLabels) : null;
  const isSeen = (label: string) => seenSet ? seenSet.has(label) : null;
  const labels = labelUnion(truth, predicted);
  const confusion = confusionMatrix(truth, predicted, labels);
  const perClass = classScores(confusion).map((s) => ({ ...s, seen: isSeen(s.label) }));
  const f1Scores = perClass.filter((s) => s.support > 0 && s.seen !== false);
  if (seenSet) notes.push("Macro and median F1 average over seen true classes only.");

  const correct = truth.map((t, i) => t === predicted[i]);
  const nBins = input.nBins ?? 15;
  const calibration = { ...expectedCalibrationError(confidence, correct, nBins), nBins };

  let brier: number | null = null;
  let nll: EvaluationResult["nll"] = null;
  if (input.probabilities) {
    const { classes, values } = input.probabilities;
    if (new Set(classes).size !== classes.length) {
      throw new ScnymError("evaluate: probability class names are not unique");
    }
    checkProbabilities(values, n, classes.length, "evaluate");
    const col = new Map(classes.map((c, j) => [c, j]));
    const truthIndex = Int32Array.from(truth, (t) => col.get(t) ?? -1);
    brier = brierScore(values, n, classes.length, truthIndex);
    const r = negativeLogLikelihood(values, n, classes.length, truthIndex);
    nll = { value: r.nll, nCells: r.nCells, excluded: n - r.nCells, clip: NLL_CLIP };
    if (r.nCells < n) {
      notes.push(
        `${n - r.nCells} cells have a true class the model does not know: their Brier target is ` +
          "all zeros (they are scored on the probability they put anywhere) and they are left " +
          "out of the NLL.",
      );
    }
  }

  const unseen = seenSet
    ? unseenTypes(truth, confidence, seenSet, input.confidenceThreshold, input.novelty)
    : null;
  if (unseen && unseen.count === 0) notes.push("No cell has an unseen type, so there is no AUROC.");

  return {
    nCells: n,
    accuracy: accuracy(truth, predicted),
    accuracySeen: seenSet
      ? accuracy(
        truth.filter((t) => seenSet.has(t)),
        predicted.filter((_, i) => seenSet.has(truth[i])),
      )
      : null,
    macroF1: mean(f1Scores.map((s) => s.f1)),
    medianF1: median(f1Scores.map((s) => s.f1)),
    f1Classes: f1Scores.map((s) => s.label),
    perClass,
    confusion,
    calibration,
    brier,
    nll,
    unseen,
    notes,
  };
}

/**
 * The unseen-type section: cells whose true label is not in `seen`, how many of them fall below
 * 0.5 (and the model's threshold) in confidence, and the AUROC of `1 - confidence` for them.
 */
function unseenTypes(
  truth: readonly string[],
  confidence: Float32Array,
  seen: Set<string>,
  modelThreshold?: number,
  novelty?: Float32Array,
): UnseenTypes {
  const isUnseen = truth.map((t) => !seen.has(t));
  const types = [...new Set(truth.filter((_, i) => isUnseen[i]))].sort();
  const count = isUnseen.filter(Boolean).length;
  const thresholds = [0.5];
  if (modelThreshold !== undefined && modelThreshold !== 0.5) thresholds.push(modelThreshold);
  const confUnseen = [...confidence].filter((_, i) => isUnseen[i]);
  const confSeen = [...confidence].filter((_, i) => !isUnseen[i]);
  // In float64: 1 - c rounded to float32 could merge distinct confidences into ties.
  const a = auroc(Float64Array.from(confidence, (c) => 1 - c), isUnseen);
  return {
    types,
    count,
    lowConfidence: thresholds.map((threshold) => {
      const low = confUnseen.filter((c) => c < threshold).length;
      return { threshold, count: low, recall: count ? low / count : 0 };
    }),
    auroc: Number.isNaN(a) ? null : a,
    ...(novelty ? { noveltyAuroc: nanToNull(auroc(novelty, isUnseen)) } : {}),
    meanConfidenceUnseen: mean(confUnseen),
    meanConfidenceSeen: confSeen.length ? mean(confSeen) : null,
  };
}

function nanToNull(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}

/**
 * Maps the cells of a predictions file onto the cells of the truth file: `order[i]` is the row in
 * `truthCells` of prediction cell `i`. Refuses (ScnymError naming both files) different counts,
 * duplicate names, or names present on one side only, since a silent partial match would give
 * metrics on the wrong cells.
 */
export function alignCells(
  predictionCells: readonly string[],
  truthCells: readonly string[],
  files: { predictions: string; truth: string },
): Uint32Array {
  const where = `predictions ${files.predictions} vs truth ${files.truth}`;
  if (predictionCells.length !== truthCells.length) {
    throw new ScnymError(
      `evaluate: ${where}: ${predictionCells.length} predicted cells but ${truthCells.length} ` +
        "cells with truth; both must hold the same cells",
    );
  }
  const row = new Map<string, number>();
  truthCells.forEach((name, i) => {
    if (row.has(name)) {
      throw new ScnymError(`evaluate: ${files.truth}: cell name "${name}" repeats`);
    }
    row.set(name, i);
  });
  const order = new Uint32Array(predictionCells.length);
  const missing: string[] = [];
  const seen = new Set<string>();
  predictionCells.forEach((name, i) => {
    if (seen.has(name)) {
      throw new ScnymError(`evaluate: ${files.predictions}: cell name "${name}" repeats`);
    }
    seen.add(name);
    const r = row.get(name);
    if (r === undefined) missing.push(name);
    else order[i] = r;
  });
  if (missing.length) {
    const shown = missing.slice(0, 3).map((m) => `"${m}"`).join(", ");
    throw new ScnymError(
      `evaluate: ${where}: ${missing.length} predicted cells are not in the truth file ` +
        `(e.g. ${shown}); both must hold the same cell names`,
    );
  }
  return order;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function f3(x: number | null): string {
  return x === null ? "n/a" : x.toFixed(3);
}

/** Left-aligns the first column and right-aligns the rest, two spaces apart. */
function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (r: string[]) =>
    r.map((v, j) => (j === 0 ? v.padEnd(widths[j]) : v.padStart(widths[j]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A readable multi-section text rendering of an evaluation, for the terminal. */
export function formatEvaluation(r: EvaluationResult): string {
  const out: string[] = [];
  const summary: string[][] = [
    ["cells", String(r.nCells)],
    ["accuracy", pct(r.accuracy)],
  ];
  if (r.accuracySeen !== null) summary.push(["accuracy (seen types)", pct(r.accuracySeen)]);
  summary.push(
    ["macro F1", f3(r.macroF1)],
    ["median F1", f3(r.medianF1)],
    [`ECE (${r.calibration.nBins} bins)`, f3(r.calibration.ece)],
    ["Brier score", f3(r.brier)],
    ["NLL (nats)", r.nll ? `${f3(r.nll.value)} over ${r.nll.nCells} cells` : "n/a"],
  );
  out.push(textTable(["metric", "value"], summary));
  out.push("");
  out.push(textTable(
    ["class", "precision", "recall", "F1", "support", "predicted"],
    r.perClass.map((s) => [
      s.seen === false ? `${s.label} (unseen)` : s.label,
      f3(s.precision),
      f3(s.recall),
      f3(s.f1),
      String(s.support),
      String(s.predicted),
    ]),
  ));
  if (r.unseen) {
    const u = r.unseen;
    out.push("");
    out.push(
      `unseen types: ${u.types.length ? u.types.join(", ") : "none"} (${u.count} cells); ` +
        `AUROC of 1 - confidence: ${f3(u.auroc)}` +
        (u.noveltyAuroc !== undefined ? `, of the novelty score: ${f3(u.noveltyAuroc)}` : ""),
    );
    for (const l of u.lowConfidence) {
      out.push(`  confidence < ${l.threshold}: ${l.count} of ${u.count} (${pct(l.recall)})`);
    }
  }
  const labels = r.confusion.labels;
  if (labels.length <= 20) {
    out.push("");
    out.push("confusion matrix (rows true, columns predicted; columns numbered as rows):");
    out.push(textTable(
      ["true \\ predicted", ...labels.map((_, j) => String(j + 1))],
      labels.map((l, i) => [`${i + 1} ${l}`, ...r.confusion.counts[i].map(String)]),
    ));
  }
  for (const note of r.notes) out.push(`note: ${note}`);
  return out.join("\n");
}
