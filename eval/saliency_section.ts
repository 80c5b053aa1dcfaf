/**
 * The report's saliency section (`scnym interpret`, `--interpret` of train and predict): one bar
 * chart per explained class of its top genes by mean attribution (SVG, like the other figures),
 * with each gene's mean expression in those cells written beside its bar, and a table of the
 * least confident cells' top genes for their predicted and runner-up class.
 *
 * The data type is structural, so scnym/interpret.ts's `Interpretation` fits it without eval/
 * importing scnym/.
 */
import { type Figure, figureGrid, num, section, table } from "./report_html.ts";
import { CHAR_W, clip, el, escapeXml as esc, label, svgOpen, TITLE } from "./svg_primitives.ts";

/** What the section shows (an `Interpretation` of scnym/interpret.ts). */
export interface SaliencyReport {
  method: string;
  steps: number;
  cellSet: string;
  classes: {
    name: string;
    cells: number;
    top: { gene: string; attribution: number; expression: number }[];
    completeness: { gap: number; delta: number } | null;
  }[];
  uncertain: {
    cell: number;
    confidence: number;
    predicted: { name: string; genes: string[] };
    runnerUp: { name: string; genes: string[] };
  }[];
}

const METHOD_TEXT: Record<string, string> = {
  guided: "guided (rectified) backpropagation of the class logit, as in the paper",
  ig: "integrated gradients of the class logit from a zero baseline",
  eg: "expected gradients of the class logit, with reference cells drawn from the query",
};

const CELLS_TEXT: Record<string, string> = {
  predicted: "the cells predicted as each class",
  all: "all cells, for every class",
  "low-confidence": "the cells predicted as each class with low confidence",
};

/** Bars shown per class. */
const BARS = 10;

/** A horizontal bar chart of a class's top genes (attribution), mean expression on the right. */
export function saliencyBarsSvg(c: SaliencyReport["classes"][number]): string {
  const top = c.top.slice(0, BARS);
  const [W, rowH, left, right, head] = [300, 18, 78, 44, 30];
  const H = head + rowH * Math.max(1, top.length) + 8;
  const max = Math.max(1e-12, ...top.map((g) => Math.abs(g.attribution)));
  const span = W - left - right;
  const parts = [svgOpen(W, H, `top genes of ${c.name}`)];
  parts.push(label(6, 18, clip(`${c.name} (${c.cells} cells)`, 40), TITLE));
  parts.push(label(W - 4, 18, "expr", { "font-size": "10", "text-anchor": "end", fill: "#555" }));
  top.forEach((g, i) => {
    const y = head + i * rowH;
    const w = span * Math.abs(g.attribution) / max;
    const fill = g.attribution >= 0 ? "#3b6fb6" : "#c4504a";
    parts.push(
      label(left - 4, y + 12, clip(g.gene, Math.floor((left - 6) / (11 * CHAR_W))), {
        "font-size": "11",
        "text-anchor": "end",
      }),
      el("rect", { x: left, y: y + 2, width: Math.max(w, 0.5), height: rowH - 5, fill }),
      label(W - 4, y + 12, num(g.expression, 2), {
        "font-size": "10",
        "text-anchor": "end",
        fill: "#555",
      }),
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

/** The section's HTML: lead, one figure per class, completeness and low-confidence tables. */
export function saliencySection(s: SaliencyReport): string {
  const figs: Figure[] = s.classes.map((c, i) => ({
    id: `saliency_${i}`,
    title: c.name,
    caption: `top ${Math.min(BARS, c.top.length)} genes by mean attribution; ` +
      "grey: mean normalised expression in these cells",
    svg: saliencyBarsSvg(c),
  }));
  const steps = s.method === "guided"
    ? ""
    : `, ${s.steps} ${s.method === "ig" ? "steps" : "draws"}`;
  const lead = `Genes ranked by their mean attribution (${esc(METHOD_TEXT[s.method] ?? s.method)}` +
    `${steps}) over ${esc(CELLS_TEXT[s.cellSet] ?? s.cellSet)}. ` +
    "Known markers near the top mean the model uses the biology a curator would; blue bars push " +
    "towards the class, red ones away.";
  const parts = [
    section("Which genes drive the predictions", lead),
    figureGrid(figs, figs.map((f) => f.id), true),
  ];
  const compl = s.classes.filter((c) => c.completeness);
  if (compl.length) {
    parts.push(
      `<p class="lead">Completeness: the attributions of a cell should sum to its score minus ` +
        `the baseline's; the mean gap is shown beside the mean score difference.</p>`,
      table(
        ["class", "cells", "mean |gap|", "mean |score difference|"],
        compl.map((
          c,
        ) => [
          esc(c.name),
          String(c.cells),
          num(c.completeness!.gap, 4),
          num(c.completeness!.delta),
        ]),
      ),
    );
  }
  if (s.uncertain.length) {
    parts.push(
      `<p class="lead">The least confident cells, with their top genes for the class predicted ` +
        `and for the runner-up: why the model hesitated.</p>`,
      table(
        ["cell", "confidence", "predicted", "its top genes", "runner-up", "its top genes"],
        s.uncertain.map((u) => [
          String(u.cell),
          num(u.confidence),
          esc(u.predicted.name),
          esc(u.predicted.genes.join(", ")),
          esc(u.runnerUp.name),
          esc(u.runnerUp.genes.join(", ")),
        ]),
      ),
    );
  }
  return parts.join("\n");
}
