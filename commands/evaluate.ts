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
import { runCommand } from "./common.ts";
import {
  alignedColumn,
  type CellColumns,
  obsColumns,
  readObs,
  tableColumns,
} from "./cell_columns.ts";
import {
  EVALUATE_FLAGS,
  EVALUATE_HELP,
  type EvaluateOptions,
  readEvaluateOptions,
} from "./evaluate_options.ts";

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
 * The cells to score (`--cells`, see EVALUATE_HELP); undefined for every cell. Defaults to the
 * target cells when the predictions record each cell's training split.
 */
function scoredCells(
  o: EvaluateOptions,
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
async function truthSource(
  o: EvaluateOptions,
  preds: PredictionsFile,
): Promise<CellColumns | null> {
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
  o: EvaluateOptions,
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
  o: EvaluateOptions,
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
  o: EvaluateOptions,
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
    novelty: preds.novelty,
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
async function run(o: EvaluateOptions, warn: (msg: string) => void): Promise<Outcome> {
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
  o: EvaluateOptions,
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
  return runCommand(
    { name: "evaluate", help: EVALUATE_HELP, options: EVALUATE_FLAGS },
    args,
    async (v) => {
      const o = readEvaluateOptions(v);
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
    },
  );
}

if (import.meta.main) Deno.exit(await evaluateCommand(Deno.args));
