/**
 * The in-memory AnnData we work with: a CSR cells x genes matrix, `obs`/`var` dataframes with
 * typed columns, and the few `uns` entries we need. Every reader (.h5ad, 10x .h5, mtx folder)
 * produces this, and the .h5ad writer consumes it.
 */
import type { Csr } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";

/** A dataframe column. Categorical code -1 means missing (pandas NaN), e.g. an unlabelled cell. */
export type Column =
  | { kind: "categorical"; codes: Int32Array; categories: string[]; ordered?: boolean }
  | { kind: "string"; values: string[] }
  | { kind: "numeric"; values: Float64Array }
  | { kind: "boolean"; values: Uint8Array };

/** A dataframe: a string index plus named columns in their file order. */
export interface DataFrame {
  index: string[];
  columns: Map<string, Column>;
}

/** A value under `uns` that we keep: scalars, string lists and nested dicts of those. */
export type UnsValue = string | number | boolean | string[] | number[] | { [k: string]: UnsValue };

/** Where the matrix came from inside its file: `X`, `raw/X` or `layers/<name>` (or a 10x path). */
export type MatrixName = string;

/** An AnnData object: cells x genes. */
export interface AnnData {
  /** Expression, cells x genes, always CSR in memory. */
  X: Csr;
  obs: DataFrame;
  var: DataFrame;
  /** Which stored matrix `X` holds (`X`, `raw/X`, `layers/counts`, ...). */
  matrix: MatrixName;
  /** Small `uns` entries (scalars, string lists, dicts of them); large arrays are skipped. */
  uns: Record<string, UnsValue>;
  /** Dense per-cell embeddings (row-major n x cols). */
  obsm?: Record<string, { data: Float32Array; cols: number }>;
  /** The file it was read from, for messages. */
  source?: string;
}

/** An empty dataframe over `index`. */
export function dataFrame(index: string[]): DataFrame {
  return { index, columns: new Map() };
}

/** A categorical column from string values (categories sorted, "" kept as a value). */
export function categoricalColumn(values: string[]): Column {
  const categories = [...new Set(values)].sort();
  const index = new Map(categories.map((c, i) => [c, i]));
  return { kind: "categorical", codes: Int32Array.from(values, (x) => index.get(x)!), categories };
}

/**
 * The one-line error for a column that is not there: names the file, where it was looked for
 * (`obs`, `table`), its role when it has one (`truth`, `label`) and the columns there are.
 */
export function missingColumnError(
  file: string,
  where: string,
  key: string,
  have: string[],
  role?: string,
): ScnymError {
  return new ScnymError(
    `${file}: ${where} has no ${role ? `${role} ` : ""}column "${key}"; columns are: ${
      have.length ? have.join(", ") : "(none)"
    }`,
  );
}

/** Column `key` of `obs`, or a `missingColumnError` listing the columns `obs` has. */
export function requireObsColumn(obs: DataFrame, key: string, file: string, role?: string): Column {
  const col = obs.columns.get(key);
  if (!col) throw missingColumnError(file, "obs", key, [...obs.columns.keys()], role);
  return col;
}

/** Number of rows of a column. */
export function columnLength(col: Column): number {
  return col.kind === "categorical" ? col.codes.length : col.values.length;
}

/** The string value of row `i` of a column (missing categoricals and NaNs give ""). */
export function cellText(col: Column, i: number): string {
  switch (col.kind) {
    case "categorical":
      return col.codes[i] < 0 ? "" : col.categories[col.codes[i]];
    case "string":
      return col.values[i];
    case "numeric":
      return Number.isNaN(col.values[i]) ? "" : String(col.values[i]);
    case "boolean":
      return col.values[i] ? "True" : "False";
  }
}

/**
 * A column as categorical: categoricals unchanged; strings, numbers and booleans become categories
 * in order of first appearance ("" and NaN become missing, code -1).
 */
export function asCategorical(col: Column): { codes: Int32Array; categories: string[] } {
  if (col.kind === "categorical") return col;
  const n = columnLength(col);
  const codes = new Int32Array(n);
  const lookup = new Map<string, number>();
  const categories: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = cellText(col, i);
    if (v === "") {
      codes[i] = -1;
      continue;
    }
    let c = lookup.get(v);
    if (c === undefined) {
      c = categories.length;
      categories.push(v);
      lookup.set(v, c);
    }
    codes[i] = c;
  }
  return { codes, categories };
}

/** Count of each category (index = code); missing codes are not counted. */
export function categoryCounts(col: { codes: Int32Array; categories: string[] }): number[] {
  const counts = new Array(col.categories.length).fill(0);
  for (const c of col.codes) if (c >= 0) counts[c]++;
  return counts;
}

/**
 * The labels of `key` in `obs` as codes + class names, for training. Throws a one-line error when
 * the column does not exist (listing the ones that do) or holds fewer than two classes.
 * Categories with no cell are dropped so every class has examples; code -1 marks unlabelled cells.
 */
export function labelColumn(
  ad: AnnData,
  key: string,
): { codes: Int32Array; classes: string[]; counts: number[] } {
  const file = ad.source ?? "input";
  const cat = asCategorical(requireObsColumn(ad.obs, key, file));
  const counts = categoryCounts(cat);
  const keep = counts.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0);
  if (keep.length < 2) {
    const only = keep.length
      ? `only one class ("${cat.categories[keep[0]]}")`
      : "no labelled cells";
    throw new ScnymError(`${file}: label column obs/${key} has ${only}; need at least 2 classes`);
  }
  const remap = new Int32Array(cat.categories.length).fill(-1);
  keep.forEach((old, i) => (remap[old] = i));
  const codes = cat.codes.map((c) => (c < 0 ? -1 : remap[c]));
  return { codes, classes: keep.map((i) => cat.categories[i]), counts: keep.map((i) => counts[i]) };
}
