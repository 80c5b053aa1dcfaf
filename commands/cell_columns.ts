/**
 * Per-cell columns for `scnym evaluate`, from an `.h5ad`'s obs or a CSV/TSV table, and their
 * values in the order of the prediction cells (matched by cell name).
 */
import { alignCells } from "../eval/evaluate.ts";
import { cellText, type DataFrame, missingColumnError } from "../io/anndata.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import type { PredictionsFile } from "../io/predictions.ts";
import { readTable } from "../io/table.ts";

/** Cells and named columns of a file that can supply truth or domains. */
export interface CellColumns {
  file: string;
  /** What the columns are called in messages: `obs` or `column`. */
  where: string;
  cells: string[];
  columns: string[];
  /** Values of a column, "" for missing ones; undefined when there is no such column. */
  get(name: string): string[] | undefined;
}

/** The obs dataframe of an `.h5ad`, without reading its matrix. */
export async function readObs(file: string): Promise<DataFrame> {
  const h = await H5adFile.open(file);
  try {
    return h.obs();
  } finally {
    h.close();
  }
}

/** The columns of an `.h5ad`'s obs. */
export function obsColumns(file: string, obs: DataFrame): CellColumns {
  return {
    file,
    where: "obs",
    cells: obs.index,
    columns: [...obs.columns.keys()],
    get(name) {
      const col = obs.columns.get(name);
      return col && obs.index.map((_, i) => cellText(col, i));
    },
  };
}

/** A table's columns; the cell names are the "cell" column, else the first column. */
export async function tableColumns(file: string): Promise<CellColumns> {
  const t = await readTable(file, "cell table");
  const cellCol = Math.max(0, t.header.indexOf("cell"));
  return {
    file,
    where: "table",
    cells: t.rows.map((r) => r[cellCol]),
    columns: t.header.filter((_, j) => j !== cellCol),
    get(name) {
      const j = t.header.indexOf(name);
      return j < 0 || j === cellCol ? undefined : t.rows.map((r) => r[j]);
    },
  };
}

/** Values of column `name`, or a ScnymError naming the file, the column and the ones there are. */
export function requireColumn(src: CellColumns, name: string, role: string): string[] {
  const v = src.get(name);
  if (!v) throw missingColumnError(src.file, src.where, name, src.columns, role);
  return v;
}

/**
 * Values of `column` in `src`, in the order of the prediction cells: matched by name through
 * `alignCells` when `src` is another file (same cells required), taken as they are otherwise.
 */
export function alignedColumn(
  preds: PredictionsFile,
  src: CellColumns,
  column: string,
  role: string,
): string[] {
  const values = requireColumn(src, column, role);
  if (src.file === preds.file) return values;
  const order = alignCells(preds.cellNames, src.cells, {
    predictions: preds.file,
    truth: src.file,
  });
  return Array.from(order, (r) => values[r]);
}
