/**
 * Where an interpretation goes: a table (CSV/TSV: one row per class and ranked gene; JSON: the
 * rankings, completeness and low-confidence cells), `uns/scNym_saliency` of a predictions
 * `.h5ad`, and a one-screen summary.
 */
import { addSaliency } from "../io/h5ad_saliency.ts";
import { writeFileAtomic } from "../util/fs.ts";
import type { Interpretation } from "./interpret.ts";

/** The rankings as CSV (or TSV with `sep` "\t"): class, rank, gene, attribution, expression. */
export function saliencyTable(s: Interpretation, sep = ","): string {
  const quote = (v: string) => /[",\t\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
  const lines = [["class", "rank", "gene", "attribution", "mean_expression", "cells", "method"]];
  for (const c of s.classes) {
    c.top.forEach((g, i) =>
      lines.push([
        c.name,
        String(i + 1),
        g.gene,
        g.attribution.toPrecision(6),
        g.expression.toPrecision(6),
        String(c.cells),
        s.method,
      ])
    );
  }
  return lines.map((l) => l.map(quote).join(sep)).join("\n") + "\n";
}

/** The interpretation as JSON, without the full classes x genes matrix. */
export function saliencyJson(s: Interpretation): string {
  const { matrix: _m, genes: _g, ...rest } = s;
  return JSON.stringify(rest, null, 1) + "\n";
}

/** Writes the table to `path` (.json, .tsv or else CSV), atomically. */
export async function writeSaliencyTable(
  path: string,
  s: Interpretation,
  opts: { overwrite: boolean },
): Promise<void> {
  const text = /\.json$/i.test(path)
    ? saliencyJson(s)
    : saliencyTable(s, /\.tsv$/i.test(path) ? "\t" : ",");
  await writeFileAtomic(path, text, opts);
}

/** Adds the matrix to a predictions `.h5ad` as `uns/scNym_saliency`. */
export async function writeSaliencyUns(path: string, s: Interpretation): Promise<void> {
  await addSaliency(path, {
    values: s.matrix,
    classes: s.classes.map((c) => c.name),
    genes: s.genes,
    params: { method: s.method, steps: s.steps, cells: s.cellSet, seed: s.seed },
  });
}

/** A few lines for the terminal: each class's top genes, and the completeness gap. */
export function saliencySummary(s: Interpretation, genes = 10): string {
  return s.classes.map((c) => {
    const gap = c.completeness
      ? ` (completeness gap ${c.completeness.gap.toPrecision(2)} of ` +
        `|score difference| ${c.completeness.delta.toPrecision(3)})`
      : "";
    const top = c.top.slice(0, genes).map((g) => g.gene).join(" ");
    return `${c.name} [${c.cells} cells]: ${top}${gap}`;
  }).join("\n");
}
