/**
 * The report pipeline: from per-cell predictions (plus, when known, truth, domains, the learned
 * embedding and the normalised input) to the evaluation, the domain-mixing numbers, a seeded UMAP
 * and the rendered HTML report. `scnym evaluate --report` and `scnym train --report` both come
 * through here, so a report means the same thing whichever command wrote it.
 */
import type { Csr } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { refuseExisting, writeFileAtomic } from "../util/fs.ts";
import type { Progress } from "../util/progress.ts";
import { pca, umapEmbed, umapProgressLine, type UmapResult } from "./embed.ts";
import { evaluate, type EvaluationResult } from "./evaluate.ts";
import { mixingEntropy, type MixingResult } from "./mixing.ts";
import {
  type Figure,
  NOT_ANNOTATED,
  type PageScope,
  renderReport,
  reportFigures,
  type ReportSection,
} from "./report.ts";
import type { SaliencyReport } from "./saliency_section.ts";

export { NOT_ANNOTATED };

/** Everything a transfer report can show; per-cell arrays share one cell order. */
export interface TransferReportInput {
  /** Header facts: tool version, seed, config, reference/query files, label column, ... */
  facts: Record<string, string | number | undefined>;
  /** All cells to show (typically reference + target cells of a training run, or the query). */
  cellNames: string[];
  predicted: string[];
  confidence: Float32Array;
  /** The model's novelty score per cell (higher = more likely unseen), when it has one. */
  novelty?: Float32Array;
  /** Class probabilities, n x C row-major over `classes`. */
  probabilities?: { classes: string[]; values: Float32Array };
  /** Learned features (the model's 256-d embedding), n x dims row-major. */
  embedding?: { data: Float32Array; dims: number };
  /** Truth per cell; null for cells that are not evaluated (e.g. reference cells). */
  truth?: (string | null)[];
  /**
   * The cells the numbers are about (accuracy, calibration, confidence, the predictions table),
   * e.g. the target cells of a training run; the UMAPs and the domain mixing show every cell.
   * Default: every cell. `name` says which cells they are, in the report header ("target cells").
   */
  scope?: PageScope;
  /**
   * The labels reference cells were trained with (null for others): the annotated-type UMAP
   * shows them as labelled training cells. Never scored.
   */
  trainingAnnotation?: (string | null)[];
  /** Domain per cell (reference/target, or a technology/donor column). */
  domain?: string[];
  /** Classes the model was trained on (truth labels outside it are "unseen types"). */
  trainingLabels?: string[];
  /** Normalised input expression (log1p) of the same cells, for the input-PCA mixing baseline. */
  input?: Csr;
  confidenceThreshold?: number;
  /** Extra plain-text sections (e.g. the training guard's decision). */
  sections?: ReportSection[];
  /** The saliency section (`--interpret`). */
  saliency?: SaliencyReport;
  seed: number;
  /** Subsample UMAP to at most this many cells (default 10,000). */
  maxUmapCells?: number;
  /** k of the mixing entropy (default 100, capped at cells - 1). */
  mixingK?: number;
  /** Query cells of the mixing entropy (default: all up to 5,000, then a seeded 5,000). */
  mixingQueryCells?: number;
  progress?: Progress;
}

/** Domain mixing on each representation that had data; absent keys were not computed. */
export type TransferMixing = {
  learnedUmap?: MixingResult;
  learned?: MixingResult;
  inputPca?: MixingResult;
};

/** The built report and the numbers behind it. */
export interface TransferReport {
  html: string;
  figures: Figure[];
  /** Over the cells whose truth is not null; null when no cell has truth. */
  evaluation: EvaluationResult | null;
  /** Null when there are no domains or fewer than two. */
  mixing: TransferMixing | null;
  /** Null without an embedding (or with fewer than 3 cells). */
  umap: UmapResult | null;
}

/** Default UMAP subsample: umap-js takes minutes past ~10k cells. */
export const DEFAULT_MAX_UMAP_CELLS = 10_000;
/** Default number of mixing-entropy query cells; a few thousand estimate the mean well. */
export const DEFAULT_MIXING_QUERY_CELLS = 5_000;
/** Dimensions of the input baseline's PCA. */
export const INPUT_PCA_DIMS = 50;

/** Throws a ScnymError naming `op` and `field` unless `got === want`. */
function checkCount(op: string, field: string, got: number, want: number, unit = "entries") {
  if (got !== want) {
    throw new ScnymError(`${op}: ${field} has ${got} ${unit}, expected ${want} (one per cell)`);
  }
}

/** Checks every per-cell array of `input` against the number of cells. */
function checkInput(input: TransferReportInput): void {
  const op = "buildTransferReport";
  const n = input.cellNames.length;
  if (n === 0) throw new ScnymError(`${op}: no cells`);
  checkCount(op, "predicted", input.predicted.length, n);
  checkCount(op, "confidence", input.confidence.length, n);
  if (input.novelty) checkCount(op, "novelty", input.novelty.length, n);
  if (input.truth) checkCount(op, "truth", input.truth.length, n);
  if (input.scope) checkCount(op, "scope", input.scope.cells.length, n);
  if (input.trainingAnnotation) {
    checkCount(op, "trainingAnnotation", input.trainingAnnotation.length, n);
  }
  if (input.domain) checkCount(op, "domain", input.domain.length, n);
  if (input.input) checkCount(op, "input matrix", input.input.nRows, n, "rows");
  if (input.probabilities) {
    const c = input.probabilities.classes.length;
    checkCount(op, `probabilities (x ${c} classes)`, input.probabilities.values.length, n * c);
  }
  if (input.embedding) {
    const { data, dims } = input.embedding;
    if (!(Number.isInteger(dims) && dims >= 1)) {
      throw new ScnymError(`${op}: embedding dims must be a positive integer, got ${dims}`);
    }
    checkCount(op, `embedding (x ${dims} dims)`, data.length, n * dims, "values");
  }
}

/** Picks rows `idx` of an n x c row-major matrix. */
function pickRows(a: Float32Array, c: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * c);
  idx.forEach((i, r) => out.set(a.subarray(i * c, (i + 1) * c), r * c));
  return out;
}

/** Indices of the cells in `input.scope` (all cells without one) that have a truth label. */
function annotatedInScope(input: TransferReportInput, truth: (string | null)[]): number[] {
  const idx: number[] = [];
  truth.forEach((t, i) => {
    if (t !== null && t !== "" && (input.scope?.cells[i] ?? true)) idx.push(i);
  });
  return idx;
}

/**
 * `evaluate` over the cells of `input.scope` whose truth is neither null nor empty (the
 * reference cells of a training run, or unannotated query cells, are left out); null when there
 * are none.
 */
export function evaluateAnnotated(input: TransferReportInput): EvaluationResult | null {
  const truth = input.truth;
  if (!truth) return null;
  const idx = annotatedInScope(input, truth);
  if (idx.length === 0) return null;
  const probs = input.probabilities;
  return evaluate({
    cellNames: idx.map((i) => input.cellNames[i]),
    predicted: idx.map((i) => input.predicted[i]),
    confidence: Float32Array.from(idx, (i) => input.confidence[i]),
    novelty: input.novelty && Float32Array.from(idx, (i) => input.novelty![i]),
    probabilities: probs && {
      classes: probs.classes,
      values: pickRows(probs.values, probs.classes.length, idx),
    },
    truth: idx.map((i) => truth[i] as string),
    trainingLabels: input.trainingLabels,
    confidenceThreshold: input.confidenceThreshold,
  });
}

/** True when `domain` names at least two distinct domains. */
function twoDomains(domain: readonly string[] | undefined): domain is string[] {
  return !!domain && new Set(domain).size >= 2;
}

/**
 * The seeded 2-D UMAP of the learned embedding (subsampled to `maxUmapCells`), with a progress
 * line; null without an embedding or with fewer than 3 cells.
 */
export function learnedUmap(input: TransferReportInput): UmapResult | null {
  const emb = input.embedding;
  const n = input.cellNames.length;
  if (!emb || n < 3) return null;
  const maxCells = input.maxUmapCells ?? DEFAULT_MAX_UMAP_CELLS;
  input.progress?.log(`UMAP of ${Math.min(n, maxCells)} of ${n} cells (${emb.dims}-d features)`);
  return umapEmbed(emb.data, n, emb.dims, {
    seed: input.seed,
    maxCells,
    onProgress: input.progress ? umapProgressLine(input.progress) : undefined,
  });
}

/**
 * Mixing entropy of `input.domain` on the UMAP of the learned features (when `umap` is given),
 * on the learned features themselves, and on PCA-50 of the normalised input (each when its data
 * is present). Null with fewer than two domains. Seeded by `input.seed`.
 */
export function computeMixing(
  input: TransferReportInput,
  umap: UmapResult | null = null,
): TransferMixing | null {
  const domain = input.domain;
  const n = input.cellNames.length;
  if (!twoDomains(domain) || n < 2) return null;
  const nq = input.mixingQueryCells ??
    (n > DEFAULT_MIXING_QUERY_CELLS ? DEFAULT_MIXING_QUERY_CELLS : undefined);
  const opts = { k: input.mixingK ?? 100, queryCells: nq, seed: input.seed };
  const log = (what: string) => input.progress?.update(`mixing entropy: ${what}`);
  const out: TransferMixing = {};
  if (umap) {
    const m = umap.indices.length;
    const dom = Array.from(umap.indices, (i) => domain[i]);
    // A small subsample can hold one domain only; then there is nothing to measure on it.
    if (twoDomains(dom)) {
      log("UMAP of the learned features");
      out.learnedUmap = mixingEntropy(umap.coords, m, 2, dom, {
        ...opts,
        queryCells: nq !== undefined && nq < m ? nq : undefined,
      });
    }
  }
  if (input.embedding) {
    log(`learned features (${input.embedding.dims}-d)`);
    out.learned = mixingEntropy(input.embedding.data, n, input.embedding.dims, domain, opts);
  }
  if (input.input) {
    log(`PCA-${INPUT_PCA_DIMS} of the input`);
    const p = pca(input.input, INPUT_PCA_DIMS, input.seed);
    out.inputPca = mixingEntropy(p.scores, n, p.nComponents, domain, opts);
  }
  input.progress?.done();
  return Object.keys(out).length ? out : null;
}

/**
 * Evaluates the annotated cells, embeds the learned features with UMAP, measures domain mixing
 * and renders the HTML report with its figures. Deterministic for a given input and seed.
 * Throws a ScnymError when a per-cell array does not have one entry per cell.
 */
export function buildTransferReport(input: TransferReportInput): Promise<TransferReport> {
  // The work is synchronous CPU work; the executor turns any throw into a rejection.
  return new Promise((resolve) => resolve(buildReport(input)));
}

function buildReport(input: TransferReportInput): TransferReport {
  checkInput(input);
  const evaluation = evaluateAnnotated(input);
  const umap = learnedUmap(input);
  const mixing = computeMixing(input, umap);
  const truth = input.truth;
  const trained = input.trainingAnnotation?.some((l) => l) ? input.trainingAnnotation : undefined;
  const data = {
    facts: input.facts,
    cells: {
      predicted: input.predicted,
      confidence: input.confidence,
      // Only worth a panel when some cell is annotated; reference cells show the labels they
      // were trained with, other cells without an annotation are NOT_ANNOTATED.
      truth: (evaluation && truth) || trained
        ? input.cellNames.map((_, i) => truth?.[i] || trained?.[i] || NOT_ANNOTATED)
        : undefined,
      domain: input.domain,
    },
    scope: pageScope(input, evaluation !== null),
    evaluation: evaluation ?? undefined,
    umap: umap ?? undefined,
    mixing: mixing ?? undefined,
    confidenceThreshold: input.confidenceThreshold,
    sections: input.sections,
    saliency: input.saliency,
  };
  return { html: renderReport(data), figures: reportFigures(data), evaluation, mixing, umap };
}

/**
 * The cells every number of the page is about, and how the header names them: the scope's cells,
 * and of those only the annotated ones when the page has an evaluation (so accuracy, confidence
 * and the predictions table share one denominator).
 */
function pageScope(input: TransferReportInput, evaluated: boolean): PageScope {
  const n = input.cellNames.length;
  const inScope = input.scope?.cells ?? new Array<boolean>(n).fill(true);
  const name = input.scope?.name ?? "cells";
  if (!evaluated || !input.truth) return { cells: inScope, name };
  const cells = new Array<boolean>(n).fill(false);
  for (const i of annotatedInScope(input, input.truth)) cells[i] = true;
  const dropped = inScope.filter((x) => x).length - cells.filter((x) => x).length;
  return { cells, name: dropped ? `annotated ${name}` : name };
}

/** One line per representation: normalised mixing entropy, nats, k and query cells. */
export function mixingSummary(mixing: TransferMixing | null): string {
  if (!mixing) return "";
  const names: [keyof TransferMixing, string][] = [
    ["learnedUmap", "learned features, 2-D UMAP"],
    ["learned", "learned features"],
    ["inputPca", `input baseline, PCA-${INPUT_PCA_DIMS}`],
  ];
  const width = Math.max(...names.map(([, s]) => s.length));
  const lines: string[] = [];
  for (const [key, name] of names) {
    const r = mixing[key];
    if (!r) continue;
    lines.push(
      `domain mixing, ${name.padEnd(width)}  ${r.normalised.toFixed(3)} normalised ` +
        `(${r.mean.toFixed(3)} nats / ln ${r.domains.length}), k = ${r.k}, ` +
        `${r.nQueries} query cells`,
    );
  }
  return lines.join("\n");
}

/** Where `writeTransferReport` puts the SVG files of the report at `path`. */
export function figuresDir(path: string): string {
  return `${path.replace(/\.html?$/i, "")}_figures`;
}

/**
 * Writes the HTML report to `path` and each figure as `<path minus .html>_figures/<id>.svg`, every
 * file atomically (temporary file, then rename), the HTML last so its presence means the figures
 * are complete. Refuses, before writing anything, when any of these files exists, unless
 * `overwrite`. Returns the paths written, HTML first.
 */
export async function writeTransferReport(
  path: string,
  report: TransferReport,
  opts: { overwrite?: boolean } = {},
): Promise<string[]> {
  const dir = figuresDir(path);
  const svgs = report.figures.map((f) => ({ path: `${dir}/${f.id}.svg`, svg: f.svg }));
  await refuseExisting([path, ...svgs.map((s) => s.path)], { overwrite: !!opts.overwrite });
  if (svgs.length) {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new ScnymError(`cannot create ${dir}: ${(e as Error).message}`);
    }
  }
  // Every file was checked above, before anything was written.
  for (const s of svgs) await writeFileAtomic(s.path, s.svg + "\n", { overwrite: true });
  await writeFileAtomic(path, report.html, { overwrite: true });
  return [path, ...svgs.map((s) => s.path)];
}
