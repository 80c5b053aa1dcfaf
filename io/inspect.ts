/**
 * `scnym inspect`: what a user wants to know about an input before training: its shape, how each
 * matrix is stored and what it holds (counts / log-normalised / scaled), the obs columns (with
 * value counts for categoricals) and the gene-name style. Matrices are scanned in row chunks, so
 * inspecting a large file needs memory for one chunk, not the whole matrix.
 */
import { findDuplicates, geneNameStyle } from "../data/align.ts";
import { matrixFlagValue } from "../data/normalize.ts";
import {
  asCategorical,
  categoryCounts,
  type Column,
  columnLength,
  type DataFrame,
} from "./anndata.ts";
import {
  detectFormat,
  inputFormat,
  type InputFormatName,
  type InspectedMatrix,
} from "./formats.ts";

/** One stored matrix, described. */
export interface MatrixReport {
  name: string;
  storage: string;
  shape: [number, number];
  /** Non-zero values. */
  nnz: number;
  /** `counts`, `log1p`, `scaled`, or `empty` when it holds no non-zero value. */
  kind: string;
  description: string;
  min: number;
  max: number;
  nonFinite: number;
}

/** One obs column, described. */
export interface ColumnReport {
  name: string;
  type: Column["kind"];
  /** Categoricals (and strings with few distinct values): number of categories. */
  nCategories?: number;
  /** The ~10 most frequent values with their counts. */
  top?: [string, number][];
  missing?: number;
}

/** Everything `inspect` reports, JSON-serialisable (`--json`). */
export interface InspectReport {
  file: string;
  format: InputFormatName;
  legacyLayout?: boolean;
  nObs: number;
  nVars: number;
  matrices: MatrixReport[];
  obs: ColumnReport[];
  genes: { style: string; examples: string[]; duplicates: string[] };
  /** What to do, e.g. "X is scaled: train on raw/X (--matrix raw) instead". */
  advice: string[];
}

function matrixReport({ name, storage, shape, stats: s }: InspectedMatrix): MatrixReport {
  const empty = s.count === 0 || s.nonZero === 0;
  return {
    name,
    storage,
    shape,
    nnz: s.nonZero,
    kind: empty ? "empty" : s.kind(),
    description: s.nonFinite ? `${s.describe()}; ${s.nonFinite} NaN/Inf values` : s.describe(),
    min: s.count ? s.min : 0,
    max: s.count ? s.max : 0,
    nonFinite: s.nonFinite,
  };
}

/** Describes the columns of a dataframe (value counts for categoricals and low-cardinality strings). */
export function describeColumns(df: DataFrame, top = 10): ColumnReport[] {
  return [...df.columns].map(([name, col]) => {
    const rep: ColumnReport = { name, type: col.kind };
    if (col.kind === "categorical" || col.kind === "string" || col.kind === "boolean") {
      const cat = asCategorical(col);
      if (col.kind === "string" && cat.categories.length > Math.max(50, columnLength(col) / 2)) {
        rep.nCategories = cat.categories.length;
        return rep; // an identifier-like column: counts would say nothing
      }
      const counts = categoryCounts(cat);
      rep.nCategories = cat.categories.length;
      rep.top = cat.categories.map((c, i) => [c, counts[i]] as [string, number])
        .sort((a, b) => b[1] - a[1]).slice(0, top);
      rep.missing = cat.codes.filter((c) => c < 0).length;
    }
    return rep;
  });
}

function advise(matrices: MatrixReport[]): string[] {
  const x = matrices[0];
  if (!x) return ["the file holds no expression matrix"];
  const usable = matrices.filter((m) => m.kind === "counts" || m.kind === "log1p");
  const out: string[] = [];
  if (x.nonFinite) out.push(`${x.name} has NaN/Inf values: fix them before training`);
  if (x.kind === "scaled" || x.kind === "empty") {
    out.push(
      usable.length
        ? `${x.name} is ${x.kind}: train on ${
          usable.map((m) => `${m.name} (--matrix ${matrixFlagValue(m.name)})`).join(" or ")
        } instead`
        : `${x.name} is ${x.kind} and no other matrix holds counts or log data: scNym cannot use it`,
    );
  } else if (x.kind === "counts") {
    out.push(`${x.name} holds raw counts: scNym will normalise them to log1p-CPM`);
  } else {
    out.push(`${x.name} is already log-normalised: it will be used as-is`);
  }
  return out;
}

function geneReport(names: string[]) {
  return {
    style: geneNameStyle(names),
    examples: names.slice(0, 5),
    duplicates: findDuplicates(names),
  };
}

/** Inspects a file of any of `INPUT_FORMATS` (`.h5ad`, 10x `.h5`, 10x mtx folder). */
export async function inspectFile(path: string): Promise<InspectReport> {
  const format = await detectFormat(path);
  const seen = await format.inspect(path);
  const matrices = seen.matrices.map(matrixReport);
  return {
    file: path,
    format: format.name,
    ...(seen.legacyLayout !== undefined ? { legacyLayout: seen.legacyLayout } : {}),
    nObs: seen.obs.index.length,
    nVars: seen.genes.length,
    matrices,
    obs: describeColumns(seen.obs),
    genes: geneReport(seen.genes),
    advice: advise(matrices),
  };
}

function thousands(n: number): string {
  return n.toLocaleString("en-US");
}

/** The report as text for a terminal. */
export function formatInspect(r: InspectReport): string {
  const lines: string[] = [];
  const kind = inputFormat(r.format).description;
  lines.push(`${r.file}: ${kind}${r.legacyLayout ? " (pre-0.7 anndata layout)" : ""}`);
  lines.push(`cells x genes: ${thousands(r.nObs)} x ${thousands(r.nVars)}`);
  lines.push("matrices:");
  const w = Math.max(...r.matrices.map((m) => m.name.length), 1);
  for (const m of r.matrices) {
    const density = m.shape[0] * m.shape[1] ? (100 * m.nnz) / (m.shape[0] * m.shape[1]) : 0;
    lines.push(
      `  ${m.name.padEnd(w)}  ${m.storage}  ${m.shape.join(" x ")}  nnz ${thousands(m.nnz)} ` +
        `(${density.toFixed(1)}%)  ${m.description}`,
    );
  }
  lines.push(r.obs.length ? "obs columns:" : "obs columns: (none)");
  const wc = Math.max(...r.obs.map((c) => c.name.length), 1);
  for (const c of r.obs) {
    let detail = c.type as string;
    if (c.top) {
      const more = (c.nCategories ?? 0) > c.top.length ? ", ..." : "";
      detail += ` (${c.nCategories}): ${c.top.map(([k, n]) => `${k} ${n}`).join(", ")}${more}`;
      if (c.missing) detail += `; ${c.missing} missing`;
    } else if (c.nCategories) detail += ` (${c.nCategories} distinct values)`;
    lines.push(`  ${c.name.padEnd(wc)}  ${detail}`);
  }
  const g = r.genes;
  lines.push(
    `genes: ${g.style} (e.g. ${g.examples.join(", ")}); ${
      g.duplicates.length
        ? `${g.duplicates.length} duplicate names (e.g. ${g.duplicates.slice(0, 5).join(", ")})`
        : "no duplicate names"
    }`,
  );
  for (const a of r.advice) lines.push(`advice: ${a}`);
  return lines.join("\n");
}
