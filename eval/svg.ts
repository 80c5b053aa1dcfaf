/**
 * Standalone SVG pictures for evaluation: scatter plots (UMAP) coloured by category or by a
 * continuous value, a reliability diagram and a confusion-matrix heatmap. Every function returns
 * a complete `<svg>` string with an `xmlns`, no external fonts or references, so it can be saved
 * as a `.svg` file or inlined into HTML as is. Text is XML-escaped (labels come from user files).
 */
import { Rng } from "../util/rng.ts";
import type { Calibration, ConfusionMatrix } from "./metrics.ts";

const FONT = "Helvetica, Arial, sans-serif";
/** Average glyph width of FONT as a fraction of the font size, for layout estimates. */
const CHAR_W = 0.58;

/** Escapes the five XML special characters. */
export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** Shortens `s` to at most `max` characters with an ellipsis. */
function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}\u2026`;
}

/** A coordinate formatted for an SVG attribute (one decimal is sub-pixel enough). */
function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Attribute values: numbers are coordinates (rounded by `px`), strings are escaped verbatim. */
type Attrs = Record<string, string | number | undefined>;

/** One SVG element; `body` is raw markup (escape text first). */
function el(tag: string, attrs: Attrs, body?: string): string {
  let s = `<${tag}`;
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) s += ` ${k}="${typeof v === "number" ? px(v) : escapeXml(v)}"`;
  }
  return body === undefined ? `${s}/>` : `${s}>${body}</${tag}>`;
}

/** A text element holding `s` (escaped). */
function label(x: number, y: number, s: string, attrs: Attrs = {}): string {
  return el("text", { x, y, ...attrs }, escapeXml(s));
}

/** A centred axis title rotated to read bottom-up, centred on (x, y). */
function verticalLabel(x: number, y: number, s: string, attrs: Attrs = {}): string {
  return label(x, y, s, {
    "text-anchor": "middle",
    transform: `rotate(-90 ${px(x)} ${px(y)})`,
    ...attrs,
  });
}

/** A vertical colour bar: gradient `color(t)` from t = 1 at the top to 0 at the bottom. */
function colorBar(
  id: string,
  x: number,
  y: number,
  w: number,
  h: number,
  color: (t: number) => string,
) {
  const stops = ticks(0, 1, 8)
    .map((s) => el("stop", { offset: s.toFixed(3), "stop-color": color(1 - s) }))
    .join("");
  return el("defs", {}, el("linearGradient", { id, x1: "0", y1: "0", x2: "0", y2: "1" }, stops)) +
    el("rect", { x, y, width: w, height: h, fill: `url(#${id})`, stroke: "#999" });
}

// scanpy's default 20-colour palette (Vega category20, reordered so neighbours differ); past 20
// categories, dark saturated colours from the Kelly/"godsnot" list that the light tab20 half
// lacks; past 32, golden-angle hues.
// deno-fmt-ignore
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2", "#b5bd61",
  "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
  "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31",
  "#006fa6", "#a30059", "#7a4900", "#0000a6", "#004d43", "#5a0007", "#1b4400", "#4a3b53",
  "#ba0900", "#6b7900", "#00c2a0", "#b903aa",
];

/** `n` distinguishable colours for categories (CSS colour strings). */
export function palette(n: number): string[] {
  const out = PALETTE.slice(0, n);
  for (let i = out.length; i < n; i++) {
    const hue = (i * 137.508) % 360; // golden angle: successive hues land far apart
    out.push(`hsl(${hue.toFixed(0)},${i % 2 ? 55 : 75}%,${i % 3 ? 40 : 55}%)`);
  }
  return out;
}

/** Colour of each category, from `palette` in the given order (share it across panels). */
export function categoryColors(categories: readonly string[]): Map<string, string> {
  const p = palette(categories.length);
  return new Map(categories.map((c, i) => [c, p[i]]));
}

/** Linear interpolation through evenly spaced hex colour stops, t in [0, 1]. */
function rampColor(stops: readonly string[], t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = parseInt(stops[i].slice(1), 16);
  const b = parseInt(stops[i + 1].slice(1), 16);
  const ch = (shift: number) =>
    Math.round(((a >> shift) & 255) * (1 - f) + ((b >> shift) & 255) * f).toString(16).padStart(
      2,
      "0",
    );
  return `#${ch(16)}${ch(8)}${ch(0)}`;
}

/** matplotlib's viridis at 9 evenly spaced points (perceptually uniform, colour-blind safe). */
const VIRIDIS = [
  "#440154",
  "#472c7a",
  "#3b518b",
  "#2c718e",
  "#21908d",
  "#27ad81",
  "#5cc863",
  "#aadc32",
  "#fde725",
];
/** matplotlib's Blues at 9 points (white to dark blue), for counts and fractions. */
const BLUES = [
  "#f7fbff",
  "#deebf7",
  "#c6dbef",
  "#9ecae1",
  "#6baed6",
  "#4292c6",
  "#2171b5",
  "#08519c",
  "#08306b",
];

/** The viridis colour of t in [0, 1]. */
export function viridis(t: number): string {
  return rampColor(VIRIDIS, t);
}

/** The Blues colour of t in [0, 1]. */
export function blues(t: number): string {
  return rampColor(BLUES, t);
}

/**
 * Point radius and opacity for `m` points on a ~440 px plot: large and opaque for a few hundred
 * cells, small and translucent for tens of thousands so dense regions stay readable.
 */
export function pointStyle(m: number): { r: number; alpha: number } {
  const r = Math.min(4, Math.max(0.9, 4 * (300 / Math.max(m, 1)) ** 0.3));
  const alpha = Math.min(0.9, Math.max(0.35, 0.9 * (1000 / Math.max(m, 1)) ** 0.2));
  return { r: Math.round(r * 10) / 10, alpha: Math.round(alpha * 100) / 100 };
}

/** The opening `<svg>` tag (with a white background) for a picture of the given size. */
function svgOpen(width: number, height: number, title: string): string {
  const open =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px(width)}" height="${px(height)}" ` +
    `viewBox="0 0 ${px(width)} ${px(height)}" font-family="${FONT}" role="img" ` +
    `aria-label="${escapeXml(title)}">`;
  return open + el("rect", { width: "100%", height: "100%", fill: "#fff" });
}

const TITLE: Attrs = { "font-size": "16", "font-weight": "bold" };

/** Tick values from `lo` to `hi` in `n` equal intervals. */
function ticks(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

/** A short label for a tick value. */
function tickLabel(v: number): string {
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(2).replace(/0$/, "");
}

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
