/**
 * The command line of `scnym evaluate`: its help text, its flags, and their parsing into checked
 * options (every refusal a usage error, before any file is read).
 */
import { DEFAULT_MAX_UMAP_CELLS } from "../eval/pipeline.ts";
import { ScnymError } from "../util/errors.ts";
import { numberFlag, requireFlag, stringFlag, type Values } from "./common.ts";

/** The `scnym evaluate --help` text. */
export const EVALUATE_HELP = `usage: scnym evaluate --predictions FILE [--truth COL] [options]

Scores predictions against annotated cell types: accuracy, macro/median F1, per-class
precision/recall/F1, confusion matrix, calibration (ECE, 15 bins), Brier score, NLL, and with
the training labels the detection of cell types the model never saw (AUROC of 1 - confidence).
With --domains, the entropy of domain mixing on the learned features and on the input.

inputs:
  --predictions FILE     .h5ad written by \`scnym predict\` (obs/<key>, obs/<key>_confidence,
                         uns/<key>_probabilities, obsm/X_<key>) or its CSV/TSV table
                         (cell, <key>, confidence, p_<class>...)
  --truth COL            column with the annotated cell types: an obs column of the predictions
                         .h5ad, or of --truth-file; cells with an empty value are not scored
  --truth-file FILE      .h5ad (obs column COL) or CSV/TSV (a "cell" column, else the first
                         one, plus COL); cells are matched by name and must be the same cells
  --model FILE           the model file: its classes are the training labels (for the unseen
                         types) and its run facts go into the report
  --training-labels A,B  the training labels, instead of --model (default: the class names
                         stored with the predictions)
  --domains COL          obs column (predictions .h5ad or --truth-file) naming each cell's
                         domain (dataset, batch, technology), for the mixing entropy
  --key NAME             prefix of the prediction fields (default scNym)
  --cells all|target|COL=V
                         the cells to score: target = those obs/<key>_split marks as target
                         (the default when the predictions have that column, as written by
                         \`scnym train --predictions\`: the reference cells it trained on are not
                         scored), all = every cell (the default otherwise), COL=V[,V2] = the
                         cells with one of these values in an obs column (predictions .h5ad or
                         --truth-file); the UMAPs and mixing still show every cell

outputs (default: a readable table on stdout):
  --json FILE            the evaluation as JSON ("-" for stdout, replacing the table), with
                         a "mixing" field when --domains is given
  --report FILE.html     self-contained HTML report, its figures as SVG in FILE_figures/
  --overwrite            replace existing output files
  --seed N               seed of the UMAP and the subsamples (default 0)
  --umap-cells N         embed at most N cells in the UMAP (default ${DEFAULT_MAX_UMAP_CELLS})
  --mixing-k N           neighbours of the mixing entropy (default 100)
  --quiet                no progress lines or warnings on stderr
  -h, --help

example:
  scnym evaluate --predictions stim_pred.h5ad --truth cell_type --model ctrl.scnym \\
    --domains condition --report stim_report.html --json stim_eval.json`;

/** The flags `scnym evaluate` accepts, for `runCommand`. */
export const EVALUATE_FLAGS = {
  predictions: { type: "string" },
  truth: { type: "string" },
  "truth-file": { type: "string" },
  model: { type: "string" },
  "training-labels": { type: "string" },
  domains: { type: "string" },
  key: { type: "string" },
  cells: { type: "string" },
  json: { type: "string" },
  report: { type: "string" },
  overwrite: { type: "boolean" },
  seed: { type: "string" },
  "umap-cells": { type: "string" },
  "mixing-k": { type: "string" },
  quiet: { type: "boolean" },
} as const;

/** Parsed and checked command-line options. */
export interface EvaluateOptions {
  predictions: string;
  truth?: string;
  truthFile?: string;
  model?: string;
  trainingLabels?: string[];
  domains?: string;
  key: string;
  cells?: string;
  json?: string;
  report?: string;
  overwrite: boolean;
  seed: number;
  umapCells: number;
  mixingK: number;
  quiet: boolean;
}

/**
 * Checks the flags' combinations and values; every refusal is a usage error (exit 2, which
 * `runCommand` follows with a pointer to --help).
 */
export function readEvaluateOptions(v: Values): EvaluateOptions {
  const predictions = requireFlag(v, "predictions");
  const truth = stringFlag(v, "truth");
  const truthFile = stringFlag(v, "truth-file");
  const model = stringFlag(v, "model");
  const labelList = stringFlag(v, "training-labels");
  const domains = stringFlag(v, "domains");
  const json = stringFlag(v, "json");
  const report = stringFlag(v, "report");
  if (truthFile && !truth) {
    throw new ScnymError("--truth-file needs --truth COL (the column to use)", 2);
  }
  if (model && labelList) throw new ScnymError("give --model or --training-labels, not both", 2);
  if (json !== undefined && !truth) {
    throw new ScnymError("--json needs --truth (there is nothing to score)", 2);
  }
  if (!truth && !report && !domains) {
    throw new ScnymError(
      "nothing to do: give --truth COL to score the predictions, or --report / --domains",
      2,
    );
  }
  const trainingLabels = labelList?.split(",").map((s) => s.trim()).filter((s) => s);
  if (trainingLabels && trainingLabels.length === 0) {
    throw new ScnymError("--training-labels is empty", 2);
  }
  if (report && !/\.html?$/i.test(report)) {
    throw new ScnymError(`--report ${report}: expected FILE.html`, 2);
  }
  return {
    predictions,
    truth,
    truthFile,
    model,
    trainingLabels,
    domains,
    key: stringFlag(v, "key") ?? "scNym",
    cells: stringFlag(v, "cells"),
    json,
    report,
    overwrite: Boolean(v.overwrite),
    seed: numberFlag(v, "seed", { min: 0, integer: true }) ?? 0,
    umapCells: numberFlag(v, "umap-cells", { min: 3, integer: true }) ?? DEFAULT_MAX_UMAP_CELLS,
    mixingK: numberFlag(v, "mixing-k", { min: 1, integer: true }) ?? 100,
    quiet: Boolean(v.quiet),
  };
}
