/**
 * `scnym evaluate`: scores a predictions file (an `.h5ad` from `scnym predict`, or its CSV/TSV
 * table) against a truth column, prints the metrics as a table (or JSON), and with `--report`
 * writes the HTML report with UMAPs and domain mixing through `eval/pipeline.ts`.
 *
 * Everything is read and checked before anything is computed or written, so a refused input
 * (cells that do not match, a missing column, a file without predictions) leaves no output.
 */
import { normaliseForModel } from "../data/normalize.ts";
import { type EvaluationResult, formatEvaluation } from "../eval/evaluate.ts";
import {
  buildTransferReport,
  computeMixing,
  DEFAULT_MAX_UMAP_CELLS,
  evaluateAnnotated,
  figuresDir,
  mixingSummary,
  type TransferMixing,
  type TransferReportInput,
  writeTransferReport,
} from "../eval/pipeline.ts";
import { readH5ad } from "../io/h5ad_read.ts";
import { isHdf5File, type PredictionsFile, readPredictionsFile } from "../io/predictions.ts";
import { loadModel, type ModelHeader } from "../scnym/model_file.ts";
import { ScnymError } from "../util/errors.ts";
import { CLI_OVERWRITE_HINT, refuseExisting, writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import { numberFlag, requireFlag, runCommand, stringFlag, type Values } from "./common.ts";
import {
  alignedColumn,
  type CellColumns,
  obsColumns,
  readObs,
  tableColumns,
} from "./cell_columns.ts";

const HELP = `usage: scnym evaluate --predictions FILE [--truth COL] [options]

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

const OPTIONS = {
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
interface Options {
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
function readOptions(v: Values): Options {
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

/** The file that supplies `column`: the predictions' obs when it has it, else the truth file. */
function sourceOf(
  preds: PredictionsFile,
  truthSrc: CellColumns | null,
  column: string,
  flag = "--domains",
): CellColumns {
  const own = preds.obs ? obsColumns(preds.file, preds.obs) : null;
  if (own?.get(column)) return own;
  if (truthSrc) return truthSrc;
  if (own) return own; // for the "no such column" message
  throw new ScnymError(
    `${flag} ${column}: a CSV/TSV predictions table has no obs; give --truth-file`,
    2,
  );
}

/** Report facts from the model header: versions, seed, config and scalar training facts. */
function modelFacts(path: string, h: ModelHeader): Record<string, string | number | undefined> {
  const facts: Record<string, string | number | undefined> = {
    model: path,
    "model written by": `scnym-webgpu ${h.toolVersion}`,
    "model created": h.createdAt,
    "model seed": h.seed,
    "model config": h.config?.name,
  };
  for (const [k, v] of Object.entries(h.training ?? {})) {
    if (typeof v === "string" || typeof v === "number") facts[`training ${k}`] = v;
  }
  return facts;
}

/** Throws unless `a` and `b` hold the same class names (in any order). */
function checkSameClasses(a: string[], b: string[], what: string): void {
  const [sa, sb] = [new Set(a), new Set(b)];
  const onlyA = a.filter((c) => !sb.has(c));
  const onlyB = b.filter((c) => !sa.has(c));
  if (onlyA.length || onlyB.length) {
    const show = (xs: string[]) => xs.length ? xs.map((x) => `"${x}"`).join(", ") : "none";
    throw new ScnymError(
      `${what}: the model's classes differ from the predictions' (only in the model: ` +
        `${show(onlyA)}; only in the predictions: ${show(onlyB)}); is it the model that made them?`,
    );
  }
}

/**
 * The cells to score (`--cells`, see HELP); undefined for every cell. Defaults to the target
 * cells when the predictions record each cell's training split.
 */
function scoredCells(
  o: Options,
  preds: PredictionsFile,
  truthSrc: CellColumns | null,
): TransferReportInput["scope"] {
  const spec = o.cells ?? (preds.split ? "target" : "all");
  if (spec === "all") return undefined;
  let values: string[];
  let wanted: string[];
  let name: string;
  if (spec === "target") {
    if (!preds.split) {
      throw new ScnymError(
        `--cells target: ${preds.file} has no ${o.key}_split column (written by scnym train ` +
          "--predictions); use --cells all or --cells COL=VALUE",
        2,
      );
    }
    [values, wanted, name] = [preds.split, ["target"], `target cells (${o.key}_split = target)`];
  } else {
    const m = spec.match(/^([^=]+)=(.+)$/);
    if (!m) throw new ScnymError(`--cells ${spec}: expected all, target or COL=VALUE`, 2);
    values = alignedColumn(preds, sourceOf(preds, truthSrc, m[1], "--cells"), m[1], "cells");
    [wanted, name] = [m[2].split(","), `cells with ${m[1]} = ${m[2]}`];
  }
  const cells = values.map((v) => wanted.includes(v));
  if (!cells.includes(true)) {
    throw new ScnymError(`--cells ${spec}: no cell of ${preds.file} matches`);
  }
  return { cells, name };
}

/** What `run` computed, for printing and writing. */
interface Outcome {
  /** Which cells were scored, when not all of them. */
  scored?: string;
  evaluation: EvaluationResult | null;
  mixing: TransferMixing | null;
  written: string[];
}

/** The truth source: `--truth-file`, else the predictions' own obs (an `.h5ad` only). */
async function truthSource(o: Options, preds: PredictionsFile): Promise<CellColumns | null> {
  if (o.truthFile) {
    return isHdf5File(o.truthFile, "truth file")
      ? obsColumns(o.truthFile, await readObs(o.truthFile))
      : await tableColumns(o.truthFile);
  }
  if (!o.truth) return null;
  if (!preds.obs) {
    throw new ScnymError(
      `--truth ${o.truth} needs --truth-file FILE when the predictions are a CSV/TSV table`,
      2,
    );
  }
  return obsColumns(preds.file, preds.obs);
}

/** Truth per prediction cell (null where the column is empty); refuses an all-empty column. */
function readTruth(
  o: Options,
  preds: PredictionsFile,
  src: CellColumns,
  warn: (msg: string) => void,
): (string | null)[] {
  const truth = alignedColumn(preds, src, o.truth!, "truth").map((t) => (t === "" ? null : t));
  const missing = truth.filter((t) => t === null).length;
  if (missing === truth.length) {
    throw new ScnymError(`${src.file}: truth column "${o.truth}" has no value for any cell`);
  }
  if (missing) warn(`${missing} cells have no value in "${o.truth}" and are not scored`);
  return truth;
}

/** Domain per prediction cell; every cell needs one. */
function readDomains(
  o: Options,
  preds: PredictionsFile,
  truthSrc: CellColumns | null,
  warn: (msg: string) => void,
): string[] {
  const col = o.domains!;
  const src = sourceOf(preds, truthSrc, col);
  const domain = alignedColumn(preds, src, col, "domain");
  const blank = domain.findIndex((d) => d === "");
  if (blank >= 0) {
    const cell = preds.cellNames[blank];
    throw new ScnymError(
      `${src.file}: domain column "${col}" is empty for cell "${cell}"; every cell needs a domain`,
    );
  }
  if (new Set(domain).size < 2) warn(`"${col}" holds one domain only: no mixing entropy`);
  return domain;
}

/**
 * Reads and checks every input named by `o` into a pipeline input (without the input baseline).
 * Warnings are held back until all inputs pass, so a refused run prints its one error line only.
 */
async function readInputs(
  o: Options,
  emit: (msg: string) => void,
): Promise<{ input: TransferReportInput; h5ad: boolean }> {
  const pending: string[] = [];
  const warn = (msg: string) => void pending.push(msg);
  await refuseExisting([o.json, o.report], { overwrite: o.overwrite, hint: CLI_OVERWRITE_HINT });
  const preds = await readPredictionsFile(o.predictions, o.key);
  const truthSrc = await truthSource(o, preds);
  const truth = truthSrc ? readTruth(o, preds, truthSrc, warn) : undefined;
  const domain = o.domains ? readDomains(o, preds, truthSrc, warn) : undefined;
  const scope = scoredCells(o, preds, truthSrc);

  const facts: TransferReportInput["facts"] = {
    "scnym-webgpu": VERSION,
    generated: new Date().toISOString(),
    predictions: preds.file,
    truth: truthSrc ? `${truthSrc.file}: ${o.truth}` : undefined,
    domains: o.domains,
    "scored cells": scope
      ? `${scope.cells.filter((c) => c).length} ${scope.name} (--cells)`
      : `all ${preds.cellNames.length} cells`,
  };
  let trainingLabels = o.trainingLabels;
  let confidenceThreshold: number | undefined;
  if (o.model) {
    const { header } = await loadModel(o.model);
    if (preds.probabilities) checkSameClasses(header.classes, preds.probabilities.classes, o.model);
    trainingLabels = header.classes;
    confidenceThreshold = header.config?.predict?.unknownThreshold ?? undefined;
    Object.assign(facts, modelFacts(o.model, header));
  }
  for (const [k, v] of Object.entries(preds.run ?? {})) {
    if (typeof v !== "object") facts[`prediction ${k}`] = String(v);
  }
  facts["report seed"] = o.seed;
  pending.forEach(emit);
  const input: TransferReportInput = {
    facts,
    cellNames: preds.cellNames,
    predicted: preds.predicted,
    confidence: preds.confidence,
    probabilities: preds.probabilities,
    embedding: preds.embedding,
    truth,
    scope,
    domain,
    // The model's classes are its training labels, so the predictions' class names stand in.
    trainingLabels: trainingLabels ?? preds.probabilities?.classes,
    confidenceThreshold,
    seed: o.seed,
    maxUmapCells: o.umapCells,
    mixingK: o.mixingK,
    progress: new Progress({ quiet: o.quiet }),
  };
  return { input, h5ad: preds.obs !== undefined };
}

/** Reads the inputs, computes, writes the requested files; prints nothing on stdout. */
async function run(o: Options, warn: (msg: string) => void): Promise<Outcome> {
  const { input, h5ad } = await readInputs(o, warn);
  const scored = input.scope &&
    `${input.scope.cells.filter((c) => c).length} ${input.scope.name} (--cells all for every cell)`;
  if (h5ad && input.domain && new Set(input.domain).size >= 2) {
    input.input = await inputBaseline(o.predictions, warn);
  }
  if (!o.report) {
    const evaluation = evaluateAnnotated(input);
    const mixing = computeMixing(input);
    return { scored, evaluation, mixing, written: await writeJson(o, evaluation, mixing) };
  }
  const report = await buildTransferReport(input);
  const written = await writeTransferReport(o.report, report, { overwrite: o.overwrite });
  written.push(...await writeJson(o, report.evaluation, report.mixing));
  return { scored, evaluation: report.evaluation, mixing: report.mixing, written };
}

/**
 * The predictions file's X normalised like the model input (counts -> log1p-CPM), for the
 * input-PCA mixing baseline; undefined (with a warning) when X is not usable (e.g. scaled).
 */
async function inputBaseline(file: string, warn: (msg: string) => void) {
  const ad = await readH5ad(file);
  try {
    const norm = normaliseForModel(ad.X, { file, matrix: ad.matrix });
    norm.warnings.forEach(warn);
    return norm.X;
  } catch (e) {
    if (!(e instanceof ScnymError)) throw e;
    warn(`no input baseline for the mixing entropy: ${e.message}`);
    return undefined;
  }
}

/** Writes the evaluation (and mixing, when computed) as JSON to `--json FILE` (not for "-"). */
async function writeJson(
  o: Options,
  evaluation: EvaluationResult | null,
  mixing: TransferMixing | null,
): Promise<string[]> {
  if (!o.json || o.json === "-") return [];
  await writeFileAtomic(o.json, jsonText(evaluation, mixing), { overwrite: true }); // refused up front
  return [o.json];
}

function jsonText(evaluation: EvaluationResult | null, mixing: TransferMixing | null): string {
  return JSON.stringify(mixing ? { ...evaluation, mixing } : evaluation, null, 2) + "\n";
}

/** Runs `scnym evaluate` with `args` (after the subcommand); returns the process exit code. */
export function evaluateCommand(args: string[]): Promise<number> {
  return runCommand({ name: "evaluate", help: HELP, options: OPTIONS }, args, async (v) => {
    const o = readOptions(v);
    // Not the shared `warn`: evaluate's warnings name the command and --quiet silences them.
    const out = await run(o, (msg) => {
      if (!o.quiet) console.error(`scnym evaluate: warning: ${msg}`);
    });
    if (o.json === "-") console.log(jsonText(out.evaluation, out.mixing).trimEnd());
    else {
      if (out.scored && out.evaluation) console.log(`scored: ${out.scored}\n`);
      const table = out.evaluation ? formatEvaluation(out.evaluation) : "";
      const text = [table, mixingSummary(out.mixing)].filter((t) => t).join("\n\n");
      if (text) console.log(text);
    }
    if (!o.quiet) {
      const svgs = out.written.filter((p) => p.endsWith(".svg"));
      for (const p of out.written) if (!p.endsWith(".svg")) console.error(`wrote ${p}`);
      if (svgs.length) {
        console.error(`wrote ${svgs.length} figures (SVG) to ${figuresDir(o.report!)}`);
      }
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await evaluateCommand(Deno.args));
