/**
 * The HTML building blocks of the evaluation report (eval/report.ts): its stylesheet, number
 * formatting, headline cards, tables, sections, the figure grid and the header facts. They know
 * nothing of `ReportData`; report.ts decides what goes on the page and in which order.
 */
import { escapeXml as esc } from "./svg_primitives.ts";

/** One picture of the report, also worth saving as its own `.svg` file. */
export interface Figure {
  /** File-name-safe id, e.g. `umap_predicted`. */
  id: string;
  title: string;
  /** One or two sentences saying what to look for. */
  caption: string;
  svg: string;
}

/** `x` (a share, 0..1) as a percentage with one decimal. */
export function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** `x` with `digits` decimals, "n/a" when it is missing or not finite. */
export function num(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits);
}

/** The page's stylesheet, inlined in its `<head>` (the page loads nothing). */
export const REPORT_CSS = `
body{font-family:Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f7f9;line-height:1.45}
main{max-width:1800px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.facts{display:grid;grid-template-columns:max-content auto;gap:2px 18px;font-size:14px;margin:12px 0}
.facts dt{color:#666}.facts dd{margin:0;font-family:Menlo,Consolas,monospace;overflow-wrap:anywhere}
table.json{font-size:12px}table.json td{padding:1px 8px;text-align:left}
p.scope{background:#fff;border-left:4px solid #4a7ab5;padding:6px 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.card .v{font-size:26px;font-weight:bold}.card .k{font-size:14px;font-weight:bold;color:#444}
.card p{margin:4px 0 0;font-size:13px;color:#555}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;align-items:start}
figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:8px}
figcaption{font-size:13px;color:#555;max-width:600px;padding:4px 6px}
figure svg{display:block;width:100%;height:auto}
.figs.natural{display:flex;flex-wrap:wrap}
.natural figure{flex:1 1 var(--w);min-width:min(var(--w),100%)}
.natural figure svg{width:100%;max-width:calc(2 * var(--w))}
table{border-collapse:collapse;background:#fff;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#eef1f5}
td:first-child,th:first-child{text-align:left}
td.bar{background-image:linear-gradient(90deg,#9ecae1 var(--w),transparent var(--w));min-width:80px}
.unseen{color:#b22}.note{font-size:13px;color:#555}
p.lead{max-width:900px}
`;

/** A headline number: its label, value and a sentence saying what it means. */
export function card(label: string, value: string, explain: string): string {
  return `<div class="card"><div class="k">${esc(label)}</div><div class="v">${esc(value)}</div>` +
    `<p>${esc(explain)}</p></div>`;
}

/** An HTML table; cells are HTML already (callers escape text), a cell may be a whole `<td>`. */
export function table(header: string[], rows: string[][]): string {
  const head = `<tr>${header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>`;
  const cell = (c: string) => c.startsWith("<td") ? c : `<td>${c}</td>`;
  const body = rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("");
  return `<table>${head}${body}</table>`;
}

/** A table cell showing `x` (0..1) with a proportional bar behind it. */
export function barCell(x: number): string {
  const w = (100 * Math.max(0, Math.min(1, x))).toFixed(1);
  return `<td class="bar" style="--w:${w}%">${x.toFixed(3)}</td>`;
}

/** A section: heading, an explanatory paragraph (HTML), then the body (HTML). */
export function section(title: string, lead: string, body = ""): string {
  return `<h2>${esc(title)}</h2>\n<p class="lead">${lead}</p>\n${body}`;
}

/**
 * The figures with the given ids, each in a `<figure>` with its caption: scaled to equal columns,
 * or (`natural`, for figures whose text must stay legible, e.g. a large confusion matrix) never
 * below their natural size, growing to share the row's width and wrapping onto new rows.
 */
export function figureGrid(figs: Figure[], ids: string[], natural = false): string {
  const html = figs.filter((f) => ids.includes(f.id)).map((f) => {
    const caption = `<b>${esc(f.title)}.</b> ${esc(f.caption)}`;
    // Natural figures grow to share the row's width, never below their own (legible) width.
    const w = natural ? Number(f.svg.match(/<svg[^>]*\swidth="([\d.]+)"/)?.[1]) : NaN;
    const style = Number.isFinite(w) ? ` style="--w:${w}px"` : "";
    return `<figure id="fig-${f.id}"${style}>${f.svg}<figcaption>${caption}</figcaption></figure>`;
  });
  return `<div class="figs${natural ? " natural" : ""}">${html.join("")}</div>`;
}

/**
 * A header fact as HTML. A JSON object (e.g. a run's configuration) becomes a small table of its
 * leaves (`train.epochs  100`) instead of one line running off the page.
 */
export function factValue(v: string | number): string {
  const text = String(v);
  let json: unknown;
  if (typeof v === "string" && text.startsWith("{")) {
    try {
      json = JSON.parse(text);
    } catch { /* not JSON: shown as text */ }
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return esc(text);
  const rows: string[] = [];
  const walk = (o: Record<string, unknown>, path: string) => {
    for (const [k, x] of Object.entries(o)) {
      const key = path ? `${path}.${k}` : k;
      if (typeof x === "object" && x !== null && !Array.isArray(x)) {
        walk(x as Record<string, unknown>, key);
      } else {
        const shown = typeof x === "string" ? x : JSON.stringify(x);
        rows.push(`<tr><td>${esc(key)}</td><td>${esc(shown)}</td></tr>`);
      }
    }
  };
  walk(json as Record<string, unknown>, "");
  return `<table class="json">${rows.join("")}</table>`;
}
