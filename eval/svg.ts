/**
 * Standalone SVG pictures for evaluation: scatter plots (UMAP) coloured by category or by a
 * continuous value, a reliability diagram and a confusion-matrix heatmap. Every function returns
 * a complete `<svg>` string with an `xmlns`, no external fonts or references, so it can be saved
 * as a `.svg` file or inlined into HTML as is. Text is XML-escaped (labels come from user files).
 */
import { Rng } from "../util/rng.ts";
import type { Calibration, ConfusionMatrix } from "./metrics.ts";
import {
  type Attrs,
  blues,
  categoryColors,
  CHAR_W,
  clip,
  colorBar,
  el,
  escapeXml,
  label,
  pointStyle,
  px,
  svgOpen,
  tickLabel,
  ticks,
  TITLE,
  verticalLabel,
  viridis,
} from "./svg_primitives.ts";

/** Options shared by the scatter plots. */
export interface ScatterOptions {
  title: string;
  xLabel?: string;
  yLabel?: string;
  /** Side of the square plot area in px (default 440). */
  size?: number;
  /** Seed of the drawing order (so no category is always hidden under another). */
  seed?: number;
}

/** A square plot area and the maps from data to pixel coordinates. */
interface Frame {
  left: number;
  top: number;
  size: number;
  toX: (v: number) => number;
  toY: (v: number) => number;
}

/** Maps m x 2 coordinates into a square plot area with a 4% margin (axes scaled independently). */
function frameFor(coords: Float32Array, left: number, top: number, size: number): Frame {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < coords.length; i += 2) {
    x0 = Math.min(x0, coords[i]);
    x1 = Math.max(x1, coords[i]);
    y0 = Math.min(y0, coords[i + 1]);
    y1 = Math.max(y1, coords[i + 1]);
  }
  // A single point (or none) still needs a non-empty range.
  if (!(x1 > x0)) {
    [x0, x1] = [(Number.isFinite(x0) ? x0 : 0) - 1, (Number.isFinite(x0) ? x0 : 0) + 1];
  }
  if (!(y1 > y0)) {
    [y0, y1] = [(Number.isFinite(y0) ? y0 : 0) - 1, (Number.isFinite(y0) ? y0 : 0) + 1];
  }
  const pad = 0.04 * size;
  const inner = size - 2 * pad;
  return {
    left,
    top,
    size,
    toX: (v) => left + pad + ((v - x0) / (x1 - x0)) * inner,
    toY: (v) => top + pad + (1 - (v - y0) / (y1 - y0)) * inner,
  };
}

/** Title, frame and axis labels of a scatter plot (UMAP axes have no units, so no ticks). */
function scatterAxes(f: Frame, opts: ScatterOptions): string {
  const mid = f.size / 2;
  return label(f.left, 24, opts.title, TITLE) +
    el("rect", {
      x: f.left,
      y: f.top,
      width: f.size,
      height: f.size,
      fill: "none",
      stroke: "#999",
    }) +
    label(f.left + mid, f.top + f.size + 22, opts.xLabel ?? "UMAP 1", {
      "font-size": "13",
      "text-anchor": "middle",
    }) +
    verticalLabel(f.left - 12, f.top + mid, opts.yLabel ?? "UMAP 2", { "font-size": "13" });
}

/**
 * Least width of a scatter panel: the plot plus room for a legend or colour bar. Panels of equal
 * width scale alike when a page fits them to its columns, so their plots come out the same size.
 */
function panelWidth(f: Frame): number {
  return f.left + f.size + 230;
}

/** One circle per point, drawn in `order` (later points on top). */
function circles(
  f: Frame,
  coords: Float32Array,
  order: ArrayLike<number>,
  color: (i: number) => string,
): string {
  const { r, alpha } = pointStyle(coords.length / 2);
  const parts: string[] = [`<g fill-opacity="${alpha}">`];
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    parts.push(
      el("circle", { cx: f.toX(coords[2 * i]), cy: f.toY(coords[2 * i + 1]), r, fill: color(i) }),
    );
  }
  parts.push("</g>");
  return parts.join("");
}

/**
 * Scatter of m x 2 `coords` coloured by `labels` (one per point), with a legend listing each
 * category and its count. `categories` fixes the legend order and `colors` the colours (pass the
 * same to panels that should agree, e.g. predicted and true labels); by default, sorted labels.
 */
export function categoricalScatterSvg(
  coords: Float32Array,
  labels: readonly string[],
  opts: ScatterOptions & { categories?: readonly string[]; colors?: Map<string, string> },
): string {
  const m = coords.length / 2;
  const cats = opts.categories ? [...opts.categories] : [...new Set(labels)].sort();
  const colors = opts.colors ?? categoryColors(cats);
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const shown = cats.filter((c) => counts.has(c));
  const size = opts.size ?? 440;
  const f = frameFor(coords, 36, 40, size);
  // Legend: rows of 18 px, as many columns as the plot's height needs.
  const rowH = 18;
  const perCol = Math.max(1, Math.floor(size / rowH));
  const nCols = Math.max(1, Math.ceil(shown.length / perCol));
  const entries = shown.map((c) => `${clip(c, 30)} (${counts.get(c)})`);
  const colW = 22 + Math.max(0, ...entries.map((e) => e.length)) * 12 * CHAR_W + 12;
  const legendX = f.left + size + 20;
  const order = new Rng(opts.seed ?? 0).permutation(m);
  const parts = [
    svgOpen(Math.max(legendX + nCols * colW + 8, panelWidth(f)), f.top + size + 34, opts.title),
    scatterAxes(f, opts),
    circles(f, coords, order, (i) => colors.get(labels[i]) ?? "#888"),
  ];
  shown.forEach((c, k) => {
    const x = legendX + Math.floor(k / perCol) * colW;
    const y = f.top + 8 + (k % perCol) * rowH;
    parts.push(el("circle", { cx: x + 6, cy: y, r: 5.5, fill: colors.get(c) ?? "#888" }));
    parts.push(label(x + 17, y + 4, entries[k], { "font-size": "12" }));
  });
  parts.push("</svg>");
  return parts.join("");
}

/**
 * Scatter of m x 2 `coords` coloured by a continuous `values` (viridis) with a colour bar titled
 * `valueLabel`. The colour range is `min..max` (default: the data's range). With `lowOnTop`, low
 * values are drawn last so a few low-confidence cells are not buried under confident ones.
 */
export function continuousScatterSvg(
  coords: Float32Array,
  values: ArrayLike<number>,
  opts: ScatterOptions & { valueLabel: string; min?: number; max?: number; lowOnTop?: boolean },
): string {
  const m = coords.length / 2;
  let lo = opts.min ?? Infinity;
  let hi = opts.max ?? -Infinity;
  for (let i = 0; i < m; i++) {
    if (opts.min === undefined) lo = Math.min(lo, values[i]);
    if (opts.max === undefined) hi = Math.max(hi, values[i]);
  }
  if (!Number.isFinite(lo)) lo = 0;
  if (!(hi > lo)) hi = lo + 1;
  const size = opts.size ?? 440;
  const f = frameFor(coords, 36, 40, size);
  const order = Array.from({ length: m }, (_, i) => i);
  if (opts.lowOnTop) order.sort((a, b) => values[b] - values[a] || a - b);
  else new Rng(opts.seed ?? 0).shuffle(order);
  const t = (v: number) => (v - lo) / (hi - lo);
  const bar = { x: f.left + size + 28, y: f.top + 20, w: 16, h: size - 40 };
  // The gradient id depends on the value label so several colour bars can share one HTML page.
  const gradId = `cbar-${opts.valueLabel.replace(/\W/g, "")}`;
  const parts = [
    svgOpen(panelWidth(f), f.top + size + 34, opts.title),
    scatterAxes(f, opts),
    circles(f, coords, order, (i) => viridis(t(values[i]))),
    colorBar(gradId, bar.x, bar.y, bar.w, bar.h, viridis),
    label(bar.x + bar.w / 2, bar.y - 8, opts.valueLabel, {
      "font-size": "12",
      "text-anchor": "middle",
    }),
  ];
  for (const v of ticks(lo, hi, 4)) {
    const y = bar.y + (1 - t(v)) * bar.h;
    parts.push(
      el("line", { x1: bar.x + bar.w, x2: bar.x + bar.w + 4, y1: y, y2: y, stroke: "#666" }),
    );
    parts.push(label(bar.x + bar.w + 7, y + 4, tickLabel(v), { "font-size": "11" }));
  }
  parts.push("</svg>");
  return parts.join("");
}

/**
 * Reliability diagram: for each confidence bin with cells, a bar of the bin's accuracy next to the
 * diagonal of perfect calibration, the gap to the bin's mean confidence hatched red; underneath, a
 * histogram of how many cells fall in each bin. The title states the ECE.
 */
export function reliabilityDiagramSvg(cal: Calibration, opts: { title?: string } = {}): string {
  const left = 62;
  const top = 44;
  const w = 380;
  const h = 300;
  const histTop = top + h + 46;
  const histH = 70;
  const width = left + w + 150;
  const height = histTop + histH + 44;
  const X = (v: number) => left + v * w;
  const Y = (v: number) => top + (1 - v) * h;
  const total = cal.bins.reduce((s, b) => s + b.count, 0);
  const maxCount = Math.max(1, ...cal.bins.map((b) => b.count));
  const title = opts.title ?? `Reliability diagram (ECE = ${cal.ece.toFixed(3)})`;
  const small: Attrs = { "font-size": "11" };
  const parts = [
    svgOpen(width, height, title),
    // Hatching marks the gap between accuracy and confidence; unlike a translucent fill it stays
    // readable over the blue bar too (an under-confident bin).
    el(
      "defs",
      {},
      el(
        "pattern",
        {
          id: "gap-hatch",
          width: 5,
          height: 5,
          patternUnits: "userSpaceOnUse",
          patternTransform: "rotate(45)",
        },
        el("line", { x1: 0, y1: 0, x2: 0, y2: 5, stroke: "#d62728", "stroke-width": 2 }),
      ),
    ),
    label(left, 26, title, TITLE),
  ];
  for (const v of ticks(0, 1, 5)) {
    parts.push(el("line", { x1: left, x2: left + w, y1: Y(v), y2: Y(v), stroke: "#eee" }));
    parts.push(label(left - 6, Y(v) + 4, tickLabel(v), { ...small, "text-anchor": "end" }));
    parts.push(
      label(X(v), histTop + histH + 16, tickLabel(v), { ...small, "text-anchor": "middle" }),
    );
  }
  for (const b of cal.bins) {
    if (b.count === 0) continue;
    const x = X(b.lo) + 1;
    const bw = X(b.hi) - X(b.lo) - 2;
    parts.push(
      el("rect", { x, y: Y(b.accuracy), width: bw, height: Y(0) - Y(b.accuracy), fill: "#1f77b4" }),
    );
    const g0 = Math.min(b.accuracy, b.confidence);
    const g1 = Math.max(b.accuracy, b.confidence);
    parts.push(
      el("rect", {
        x,
        y: Y(g1),
        width: bw,
        height: Y(g0) - Y(g1),
        fill: "url(#gap-hatch)",
        stroke: "#d62728",
      }),
    );
    const hh = (b.count / maxCount) * histH;
    parts.push(el("rect", { x, y: histTop + histH - hh, width: bw, height: hh, fill: "#7f7f7f" }));
  }
  const lx = left + w + 16;
  parts.push(
    el("line", {
      x1: X(0),
      y1: Y(0),
      x2: X(1),
      y2: Y(1),
      stroke: "#444",
      "stroke-dasharray": "5 4",
    }),
    el("rect", { x: left, y: top, width: w, height: h, fill: "none", stroke: "#999" }),
    el("rect", { x: left, y: histTop, width: w, height: histH, fill: "none", stroke: "#999" }),
    label(left + w / 2, top + h + 30, "Confidence (max predicted probability)", {
      "font-size": "13",
      "text-anchor": "middle",
    }),
    verticalLabel(20, top + h / 2, "Accuracy", { "font-size": "13" }),
    verticalLabel(20, histTop + histH / 2, "Cells", { "font-size": "13" }),
    label(left - 6, histTop + 10, String(maxCount), { ...small, "text-anchor": "end" }),
    label(left - 6, histTop + histH, "0", { ...small, "text-anchor": "end" }),
    label(left + w / 2, histTop + histH + 34, `${total} cells in ${cal.bins.length} bins`, {
      "font-size": "12",
      "text-anchor": "middle",
      fill: "#555",
    }),
    el("rect", { x: lx, y: top + 4, width: 14, height: 12, fill: "#1f77b4" }),
    label(lx + 20, top + 14, "accuracy", { "font-size": "12" }),
    el("rect", {
      x: lx,
      y: top + 26,
      width: 14,
      height: 12,
      fill: "url(#gap-hatch)",
      stroke: "#d62728",
    }),
    label(lx + 20, top + 36, "gap to confidence", { "font-size": "12" }),
    el("line", {
      x1: lx,
      x2: lx + 14,
      y1: top + 54,
      y2: top + 54,
      stroke: "#444",
      "stroke-dasharray": "4 3",
    }),
    label(lx + 20, top + 58, "perfect calibration", { "font-size": "12" }),
    "</svg>",
  );
  return parts.join("");
}

/**
 * Confusion-matrix heatmap: rows true labels, columns predicted labels, each cell shaded by the
 * fraction of its true class (row-normalised, so small classes are as visible as large ones) and
 * labelled with its count when there is room. Rows with no true cells (labels only predicted)
 * are left white.
 */
export function confusionHeatmapSvg(cm: ConfusionMatrix, opts: { title?: string } = {}): string {
  const c = cm.labels.length;
  const cell = Math.max(12, Math.min(40, Math.floor(520 / Math.max(c, 1))));
  const names = cm.labels.map((l) => clip(l, 24));
  const labelW = Math.max(40, ...names.map((s) => s.length * 12 * CHAR_W)) + 12;
  const left = labelW + 30;
  const top = 44;
  const gridW = c * cell;
  // Column labels are rotated 45 degrees below the grid.
  const height = top + gridW + labelW * Math.SQRT1_2 + 40;
  const title = opts.title ?? "Confusion matrix";
  const parts = [svgOpen(left + gridW + 110, height, title), label(left, 26, title, TITLE)];
  const fontSize = Math.min(12, cell * 0.38);
  for (let i = 0; i < c; i++) {
    const rowSum = cm.counts[i].reduce((s, v) => s + v, 0);
    for (let j = 0; j < c; j++) {
      const n = cm.counts[i][j];
      const frac = rowSum ? n / rowSum : 0;
      const x = left + j * cell;
      const y = top + i * cell;
      // A <title> gives the exact numbers on hover in a browser.
      const tip = `${cm.labels[i]} -> ${cm.labels[j]}: ${n} (${(100 * frac).toFixed(1)}% of ${
        cm.labels[i]
      })`;
      const box = {
        x,
        y,
        width: cell,
        height: cell,
        fill: blues(frac),
        stroke: "#fff",
        "stroke-width": 0.5,
      };
      parts.push(el("rect", box, `<title>${escapeXml(tip)}</title>`));
      if (cell >= 18 && n > 0) {
        parts.push(label(x + cell / 2, y + cell / 2 + fontSize * 0.36, String(n), {
          "font-size": fontSize,
          "text-anchor": "middle",
          fill: frac > 0.55 ? "#fff" : "#222",
        }));
      }
    }
    parts.push(
      label(left - 6, top + i * cell + cell / 2 + 4, names[i], {
        "font-size": "12",
        "text-anchor": "end",
      }),
    );
    const lx = left + i * cell + cell / 2;
    const ly = top + gridW + 8;
    parts.push(label(lx, ly, names[i], {
      "font-size": "12",
      "text-anchor": "end",
      transform: `rotate(-45 ${px(lx)} ${px(ly)})`,
    }));
  }
  const bx = left + gridW + 24;
  const bh = Math.min(gridW, 200);
  parts.push(
    el("rect", { x: left, y: top, width: gridW, height: gridW, fill: "none", stroke: "#999" }),
    verticalLabel(14, top + gridW / 2, "True label", { "font-size": "13" }),
    label(left + gridW / 2, height - 10, "Predicted label", {
      "font-size": "13",
      "text-anchor": "middle",
    }),
    colorBar("cm-bar", bx, top, 14, bh, blues),
    ...ticks(0, 1, 4).map((v) =>
      label(bx + 19, top + (1 - v) * bh + 4, `${Math.round(v * 100)}%`, { "font-size": "11" })
    ),
    label(bx, top + bh + 18, "of true class", { "font-size": "11" }),
    "</svg>",
  );
  return parts.join("");
}
