/**
 * SVG primitives for the evaluation pictures: escaping, elements and labels, colour palettes and
 * ramps, the `<svg>` frame and axis ticks. The chart types built from them are in svg.ts.
 */
const FONT = "Helvetica, Arial, sans-serif";
/** Average glyph width of FONT as a fraction of the font size, for layout estimates. */
export const CHAR_W = 0.58;

/** Escapes the five XML special characters. */
export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** Shortens `s` to at most `max` characters with an ellipsis. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}\u2026`;
}

/** A coordinate formatted for an SVG attribute (one decimal is sub-pixel enough). */
export function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Attribute values: numbers are coordinates (rounded by `px`), strings are escaped verbatim. */
export type Attrs = Record<string, string | number | undefined>;

/** One SVG element; `body` is raw markup (escape text first). */
export function el(tag: string, attrs: Attrs, body?: string): string {
  let s = `<${tag}`;
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) s += ` ${k}="${typeof v === "number" ? px(v) : escapeXml(v)}"`;
  }
  return body === undefined ? `${s}/>` : `${s}>${body}</${tag}>`;
}

/** A text element holding `s` (escaped). */
export function label(x: number, y: number, s: string, attrs: Attrs = {}): string {
  return el("text", { x, y, ...attrs }, escapeXml(s));
}

/** A centred axis title rotated to read bottom-up, centred on (x, y). */
export function verticalLabel(x: number, y: number, s: string, attrs: Attrs = {}): string {
  return label(x, y, s, {
    "text-anchor": "middle",
    transform: `rotate(-90 ${px(x)} ${px(y)})`,
    ...attrs,
  });
}

/** A vertical colour bar: gradient `color(t)` from t = 1 at the top to 0 at the bottom. */
export function colorBar(
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
export function svgOpen(width: number, height: number, title: string): string {
  const open =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px(width)}" height="${px(height)}" ` +
    `viewBox="0 0 ${px(width)} ${px(height)}" font-family="${FONT}" role="img" ` +
    `aria-label="${escapeXml(title)}">`;
  return open + el("rect", { width: "100%", height: "100%", fill: "#fff" });
}

export const TITLE: Attrs = { "font-size": "16", "font-weight": "bold" };

/** Tick values from `lo` to `hi` in `n` equal intervals. */
export function ticks(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

/** A short label for a tick value. */
export function tickLabel(v: number): string {
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(2).replace(/0$/, "");
}
