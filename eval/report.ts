/**
 * The evaluation report: one self-contained HTML page (inline CSS and SVG, no scripts, no fonts,
 * no network) that a biologist opens in a browser to judge a label transfer at a glance. The
 * caller passes everything in `ReportData`; sections whose data a run lacks (no truth labels, no
 * UMAP, no mixing) are left out rather than shown empty.
 */
import type { UmapResult } from "./embed.ts";
import type { EvaluationResult } from "./evaluate.ts";
import type { MixingResult } from "./mixing.ts";
import {
  barCell,
  card,
  factValue,
  type Figure,
  figureGrid,
  num,
  pct,
  REPORT_CSS,
  section,
  table,
} from "./report_html.ts";
import {
  categoricalScatterSvg,
  confusionHeatmapSvg,
  continuousScatterSvg,
  reliabilityDiagramSvg,
} from "./svg.ts";
import { type SaliencyReport, saliencySection } from "./saliency_section.ts";
import { categoryColors, escapeXml as esc } from "./svg_primitives.ts";

export type { Figure } from "./report_html.ts";

/** Everything the report shows. Per-cell arrays are in the same cell order. */
export interface ReportData {
  /** Page title (default "scNym label transfer report"). */
  title?: string;
  /** Run facts for the header, in display order: tool version, seed, config, datasets, ... */
  facts: Record<string, string | number | undefined>;
  /**
   * The cells shown in the UMAP panels and the prediction summary (usually training and target
   * cells together); the evaluation may cover a subset of them (the annotated target cells).
   */
  cells: {
    predicted: string[];
    /** Max softmax probability per cell. */
    confidence: Float32Array;
    /** Annotated labels of the target cells, when known. */
    truth?: string[];
    /** Domain (dataset/batch) of each cell, for the domain-coloured UMAP. */
    domain?: string[];
  };
  /** `evaluate(...)` of the same cells (needs truth). */
  evaluation?: EvaluationResult;
  /** 2-D UMAP of the learned features; `indices` pick the embedded cells from `cells`. */
  umap?: UmapResult;
  /**
   * The cells every number of the page is about (cards, calibration, confusion, the tables);
   * default all cells. The UMAPs and the domain mixing show every cell.
   */
  scope?: PageScope;
  /** Mixing entropy of the domains on each representation. */
  mixing?: { learnedUmap?: MixingResult; learned?: MixingResult; inputPca?: MixingResult };
  /** The model's confidence threshold, if it used one (shown next to low-confidence counts). */
  confidenceThreshold?: number;
  /** Extra sections of plain text (e.g. the training guard's decision), after the summary. */
  sections?: ReportSection[];
  /** Which genes drive the predictions (`--interpret`; eval/saliency_section.ts). */
  saliency?: SaliencyReport;
}

/** A section of plain text: title, a lead sentence and a table (all escaped when rendered). */
export interface ReportSection {
  title: string;
  lead: string;
  header: string[];
  rows: string[][];
}

/** The page's cells: a mask over `ReportData.cells` and what to call them ("target cells"). */
export interface PageScope {
  cells: boolean[];
  name: string;
}

/** What the annotated-type panel shows for cells without an annotation. */
export const NOT_ANNOTATED = "(not annotated)";

/** Picks the embedded cells' entries of a per-cell array. */
function pick<T>(a: ArrayLike<T>, idx: Uint32Array): T[] {
  return Array.from(idx, (i) => a[i]);
}

/**
 * The report's pictures: UMAPs coloured by predicted label, true label, domain and confidence
 * (those the data allows), the reliability diagram and the confusion heatmap (with an evaluation).
 * Predicted and true labels share one colour per cell type.
 */
export function reportFigures(data: ReportData): Figure[] {
  const figs: Figure[] = [];
  const { cells, umap, evaluation } = data;
  if (umap) {
    const idx = umap.indices;
    const m = idx.length;
    const nAll = cells.predicted.length;
    const subset = m < nAll ? ` Showing a random ${m} of ${nAll} cells.` : "";
    const types = [...new Set([...cells.predicted, ...(cells.truth ?? [])])]
      .filter((t) => t !== NOT_ANNOTATED).sort();
    // Cells without an annotation (e.g. a run's reference cells) are grey, not a cell type.
    const colors = categoryColors(types).set(NOT_ANNOTATED, "#d3d3d3");
    figs.push({
      id: "umap_predicted",
      title: "UMAP: predicted cell type",
      caption:
        "Each dot is a cell, placed by the model's learned features; colour is the predicted " +
        `type.${subset}`,
      svg: categoricalScatterSvg(umap.coords, pick(cells.predicted, idx), {
        title: "Predicted cell type",
        categories: types,
        colors,
      }),
    });
    if (cells.truth) {
      figs.push({
        id: "umap_truth",
        title: "UMAP: annotated cell type",
        caption:
          "The same cells coloured by their annotation (reference cells by the labels they were " +
          "trained with); colours match the predicted panel, so regions that change colour " +
          "between the two are mistakes.",
        svg: categoricalScatterSvg(umap.coords, pick(cells.truth, idx), {
          title: "Annotated cell type",
          categories: [...types, NOT_ANNOTATED],
          colors,
        }),
      });
    }
    if (cells.domain) {
      figs.push({
        id: "umap_domain",
        title: "UMAP: domain",
        caption:
          "Coloured by dataset of origin. Well-mixed colours mean the model places training " +
          "and target cells of one type together (what the domain adversary aims for).",
        svg: categoricalScatterSvg(umap.coords, pick(cells.domain, idx), { title: "Domain" }),
      });
    }
    figs.push({
      id: "umap_confidence",
      title: "UMAP: confidence",
      caption:
        "Coloured by the model's confidence (highest class probability); low-confidence cells " +
        "are drawn on top. Dark patches flag cells worth reviewing, or cell types the model never saw.",
      svg: continuousScatterSvg(umap.coords, pick(cells.confidence, idx), {
        title: "Prediction confidence",
        valueLabel: "confidence",
        min: 0,
        max: 1,
        lowOnTop: true,
      }),
    });
  }
  if (evaluation) {
    figs.push({
      id: "reliability",
      title: "Reliability diagram",
      caption: "Cells binned by confidence: a well-calibrated model's bars (accuracy) reach the " +
        "dashed diagonal (confidence). Bars below it mean over-confidence; the grey histogram shows " +
        "how many cells each bin holds.",
      svg: reliabilityDiagramSvg(evaluation.calibration),
    });
    figs.push({
      id: "confusion",
      title: "Confusion matrix",
      caption: "Rows are annotated types, columns predicted types; shading is the share of each " +
        "annotated type, numbers are cell counts. A perfect transfer is a dark diagonal.",
      svg: confusionHeatmapSvg(evaluation.confusion),
    });
  }
  return figs;
}

/** What each headline number means, in a sentence a biologist can act on. */
export const METRIC_MEANINGS = {
  accuracy: "Share of the page's cells (see the top) whose predicted type matches the " +
    "annotation (cells of types the model never saw count as wrong).",
  macroF1:
    "F1 (balance of precision and recall) averaged over cell types, so rare types count as " +
    "much as common ones. 1 is perfect.",
  medianF1: "The middle per-type F1 (Abdelaal et al. 2019): robust to one badly transferred type.",
  ece: "Average gap between confidence and actual accuracy over 15 confidence bins. 0 means a " +
    "cell called with 80% confidence is right 80% of the time.",
  brier: "Mean squared error of the predicted probabilities against the true type: 0 is certain " +
    "and right, 2 certain and wrong.",
  nll: "How surprised the model is by the annotated type, in nats (lower is better); confident " +
    "mistakes cost the most.",
  unseenAuroc: "Chance that a cell of a type absent from training gets lower confidence than a " +
    "cell of a known type: 1 is perfect flagging, 0.5 is chance.",
  noveltyAuroc: "Chance that a cell of a type absent from training gets a higher novelty score " +
    "(obs/scNym_novelty: Mahalanobis distance to the nearest reference type) than a cell of a " +
    "known type.",
  cells: "Cells that received a prediction (no annotation was given, so accuracy cannot be " +
    "measured).",
  meanConfidence: "Average of the highest class probability per cell.",
  lowConfidence: "Cells whose best class has probability below 0.5: candidates for review, or " +
    "for a cell type missing from the training data.",
  mixing: "Normalised entropy of the domains among each cell's nearest neighbours in the learned " +
    "embedding: 1 fully mixed, 0 separated.",
};

/** Indices of the page's cells (`data.scope`, default all). */
function pageCells(data: ReportData): number[] {
  const n = data.cells.predicted.length;
  const mask = data.scope?.cells;
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (!mask || mask[i]) idx.push(i);
  return idx;
}

/** The header line naming the page's denominator. */
function scopeLine(data: ReportData): string {
  const n = data.cells.predicted.length;
  const m = pageCells(data).length;
  const name = data.scope?.name ?? "cells";
  const rest = m < n
    ? ` of the ${n} shown; the UMAPs and the domain mixing also show the other ${n - m}`
    : "";
  return `<p class="scope">Every number on this page is over the same <b>${m} ${esc(name)}</b>` +
    `${rest}.</p>`;
}

function summaryCards(data: ReportData): string {
  const M = METRIC_MEANINGS;
  const e = data.evaluation;
  const conf = data.cells.confidence;
  const cells = pageCells(data);
  const n = cells.length;
  let low = 0;
  let sum = 0;
  for (const i of cells) {
    sum += conf[i];
    if (conf[i] < 0.5) low++;
  }
  const cards: string[] = [];
  if (e) {
    cards.push(
      card("Accuracy", pct(e.accuracy), M.accuracy),
      card("Macro F1", num(e.macroF1), M.macroF1),
      card("Median F1", num(e.medianF1), M.medianF1),
      card("Calibration error (ECE)", num(e.calibration.ece), M.ece),
    );
    if (e.brier !== null) cards.push(card("Brier score", num(e.brier), M.brier));
    if (e.nll) cards.push(card("Negative log-likelihood", num(e.nll.value), M.nll));
    if (e.unseen && e.unseen.count > 0) {
      cards.push(card("Unseen-type detection (AUROC)", num(e.unseen.auroc), M.unseenAuroc));
      if (e.unseen.noveltyAuroc !== undefined) {
        cards.push(card("Novelty score (AUROC)", num(e.unseen.noveltyAuroc), M.noveltyAuroc));
      }
    }
  } else {
    cards.push(card("Cells", String(n), M.cells));
  }
  cards.push(
    card("Mean confidence", num(n ? sum / n : NaN), M.meanConfidence),
    card("Low-confidence cells", `${low} (${pct(n ? low / n : 0)})`, M.lowConfidence),
  );
  const mix = data.mixing?.learnedUmap ?? data.mixing?.learned;
  if (mix) cards.push(card("Domain mixing", num(mix.normalised), `${M.mixing} (k = ${mix.k})`));
  return `<div class="cards">${cards.join("")}</div>`;
}

function predictionTable(data: ReportData): string {
  const { predicted, confidence } = data.cells;
  const cells = pageCells(data);
  const by = new Map<string, { n: number; sum: number; low: number }>();
  for (const i of cells) {
    const s = by.get(predicted[i]) ?? { n: 0, sum: 0, low: 0 };
    s.n++;
    s.sum += confidence[i];
    if (confidence[i] < 0.5) s.low++;
    by.set(predicted[i], s);
  }
  const rows = [...by.entries()].sort((a, b) => b[1].n - a[1].n).map(([label, s]) => [
    esc(label),
    String(s.n),
    pct(s.n / cells.length),
    barCell(s.sum / s.n),
    String(s.low),
  ]);
  return table(["predicted type", "cells", "share", "mean confidence", "confidence < 0.5"], rows);
}

function perClassTable(e: EvaluationResult): string {
  const rows = e.perClass.map((s) => [
    esc(s.label) + (s.seen === false ? ' <span class="unseen">(unseen)</span>' : ""),
    String(s.support),
    String(s.predicted),
    barCell(s.precision),
    barCell(s.recall),
    barCell(s.f1),
  ]);
  return table(
    ["cell type", "annotated cells", "predicted cells", "precision", "recall", "F1"],
    rows,
  );
}

function unseenSection(e: EvaluationResult, threshold?: number): string {
  const u = e.unseen;
  if (!u) return "";
  if (u.count === 0) {
    return section(
      "Unseen cell types",
      "Every annotated type of the target was in the training labels: nothing to discover here.",
    );
  }
  const rows = u.lowConfidence.map((l) => {
    const isModel = threshold !== undefined && l.threshold === threshold;
    return [
      `confidence &lt; ${l.threshold}${isModel ? " (model threshold)" : ""}`,
      `${l.count} of ${u.count}`,
      pct(l.recall),
    ];
  });
  const types = u.types.map(esc).join(", ");
  const lead = `${u.count} target cells are annotated with types absent from the training data ` +
    `(<b>${types}</b>). The model cannot name them, so it should at least be unsure: their mean ` +
    `confidence is ${num(u.meanConfidenceUnseen)} against ${num(u.meanConfidenceSeen)} for cells ` +
    `of known types, and the AUROC of low confidence for spotting them is <b>${num(u.auroc)}</b>` +
    (u.noveltyAuroc !== undefined
      ? `; that of the model's novelty score (distance to the nearest reference type in the ` +
        `learned features) is <b>${num(u.noveltyAuroc)}</b>.`
      : ".");
  return section(
    "Unseen cell types",
    lead,
    table(["flagged as", "unseen-type cells", "recall"], rows),
  );
}

function mixingSection(data: ReportData): string {
  const mx = data.mixing;
  if (!mx) return "";
  const entries: [string, MixingResult | undefined][] = [
    ["learned features, 2-D UMAP", mx.learnedUmap],
    ["learned features (full dimension)", mx.learned],
    ["input baseline: PCA of log1p-CPM", mx.inputPca],
  ];
  const present = entries.filter((e): e is [string, MixingResult] => e[1] !== undefined);
  if (!present.length) return "";
  const domains = present[0][1].domains;
  const header = ["representation", "k", "query cells", "entropy (nats)", "normalised"];
  const rows = present.map(([name, r]) => [
    esc(name),
    String(r.k),
    String(r.nQueries),
    num(r.mean),
    barCell(r.normalised),
    ...domains.map((d) => num(r.perDomain[d]?.normalised)),
  ]);
  const lead = "For each query cell, the domains of its k nearest neighbours (Euclidean, itself " +
    "excluded) give an entropy <i>H = &minus;&Sigma; p ln p</i>; the table shows its mean and the " +
    "mean divided by ln(number of domains), so 1 is as mixed as possible and 0 means " +
    "neighbourhoods hold one domain only. Compare the learned embedding with the input baseline: " +
    "a higher value means the model put matching cells of different datasets together. (Unequal " +
    "domain sizes keep even perfect mixing below 1.)";
  const perDomain = domains.map((d) => `normalised, ${d} cells`);
  return section("Domain mixing", lead, table([...header, ...perDomain], rows));
}

/** Renders the whole report as one HTML string (UTF-8; write it with `writeFileAtomic`). */
export function renderReport(data: ReportData): string {
  const title = data.title ?? "scNym label transfer report";
  const facts = Object.entries(data.facts)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${factValue(v!)}</dd>`).join("");
  const figs = reportFigures(data);
  const e = data.evaluation;
  const parts = [
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${esc(title)}</title><style>${REPORT_CSS}</style></head><body><main>`,
    `<h1>${esc(title)}</h1>`,
    facts ? `<dl class="facts">${facts}</dl>` : "",
    scopeLine(data),
    `<h2>At a glance</h2>`,
    summaryCards(data),
    ...(data.sections ?? []).map((s) =>
      section(s.title, esc(s.lead), table(s.header, s.rows.map((r) => r.map(esc))))
    ),
  ];
  if (data.umap) {
    const ids = ["umap_predicted", "umap_truth", "umap_domain", "umap_confidence"];
    parts.push(`<h2>Embedding</h2>`, figureGrid(figs, ids));
  }
  if (e) {
    const lead = "Precision: of the cells called this type, the share that truly are. Recall: of " +
      "the cells annotated as this type, the share found. F1 combines the two (1 is perfect, 0 " +
      "none right). Macro and median F1 above use the rows with annotated cells" +
      (e.unseen ? " of known types." : ".");
    parts.push(
      `<h2>Calibration and errors</h2>`,
      figureGrid(figs, ["reliability", "confusion"], true),
      section("Per cell type", lead, perClassTable(e)),
      unseenSection(e, data.confidenceThreshold),
    );
  }
  parts.push(mixingSection(data));
  if (data.saliency) parts.push(saliencySection(data.saliency));
  parts.push(`<h2>Predictions</h2>`, predictionTable(data));
  if (e?.notes.length) {
    const items = e.notes.map((n) => `<li>${esc(n)}</li>`).join("");
    parts.push(`<h2>Notes</h2><ul class="note">${items}</ul>`);
  }
  parts.push(
    `<p class="note">Self-contained page: no scripts and no network access; every picture is ` +
      `inline SVG.</p>`,
    `</main></body></html>\n`,
  );
  return parts.join("\n");
}
