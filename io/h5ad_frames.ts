/**
 * The dataframes (`obs`, `var`) and `uns` of an `.h5ad`, in both layouts: current (anndata >= 0.7:
 * one element per column, categoricals as `codes` + `categories`, 0.7's `__categories/<col>`) and
 * legacy (< 0.7: compound datasets whose categorical codes name `uns/<col>_categories`).
 */
import { ScnymError } from "../util/errors.ts";
import type { Column, DataFrame, UnsValue } from "./anndata.ts";
import {
  attr,
  encodingType,
  getDataset,
  type H5Dataset,
  type H5File,
  type H5Group,
  isBoolDataset,
  isDataset,
  isGroup,
  isNumericDataset,
  isStringDataset,
  type NumericArray,
  readNumeric,
  readStrings,
  strAttr,
  toFloat64,
} from "./h5.ts";

function numbersToStrings(a: NumericArray): string[] {
  return Array.from(a as ArrayLike<number | bigint>, (v) => String(v));
}

/** Categories as strings, whether stored as strings or numbers. */
function readCategories(file: string, d: H5Dataset): string[] {
  return isStringDataset(d) ? readStrings(file, d) : numbersToStrings(readNumeric(file, d));
}

function codesToInt32(a: NumericArray): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

function readColumnDataset(file: string, d: H5Dataset): Column {
  if (isStringDataset(d)) return { kind: "string", values: readStrings(file, d) };
  if (isBoolDataset(d)) {
    return { kind: "boolean", values: Uint8Array.from(readNumeric(file, d) as Int8Array) };
  }
  if (isNumericDataset(d)) return { kind: "numeric", values: toFloat64(readNumeric(file, d)) };
  throw new ScnymError(`${file}: column ${d.path} has unsupported type ${JSON.stringify(d.dtype)}`);
}

function readColumnGroup(file: string, g: H5Group): Column | null {
  const enc = encodingType(g);
  if (enc === "categorical") {
    const categories = readCategories(file, getDataset(g, "categories"));
    const codes = codesToInt32(readNumeric(file, getDataset(g, "codes")));
    return { kind: "categorical", codes, categories, ordered: !!attr(g, "ordered") };
  }
  if (enc === "nullable-integer" || enc === "nullable-boolean") {
    const values = toFloat64(readNumeric(file, getDataset(g, "values")));
    const mask = readNumeric(file, getDataset(g, "mask"));
    if (enc === "nullable-boolean") {
      // A missing boolean has no representation here; treat it as false.
      return { kind: "boolean", values: Uint8Array.from(values, (v, i) => (mask[i] ? 0 : v)) };
    }
    for (let i = 0; i < values.length; i++) if (mask[i]) values[i] = NaN;
    return { kind: "numeric", values };
  }
  return null; // unknown element kinds (e.g. nested dataframes) are skipped
}

/** A current-layout (anndata >= 0.7) dataframe group at `path`. */
export function readDataFrameGroup(f: H5File, path: string): DataFrame {
  const file = f.filename;
  const g = f.get(path) as H5Group;
  const indexName = strAttr(g, "_index") ?? "_index";
  const keys = g.keys();
  if (!keys.includes(indexName)) {
    throw new ScnymError(`${file}: ${path} has no index dataset "${indexName}"`);
  }
  const idxDs = g.get(indexName) as H5Dataset;
  const index = isStringDataset(idxDs)
    ? readStrings(file, idxDs)
    : numbersToStrings(readNumeric(file, idxDs));
  const order = attr(g, "column-order");
  const names = Array.isArray(order) ? order.map(String) : [];
  for (const k of keys) {
    if (k !== indexName && k !== "__categories" && !names.includes(k)) names.push(k);
  }
  const columns = new Map<string, Column>();
  for (const name of names) {
    const node = g.get(name);
    if (node === null) continue;
    let col: Column | null;
    if (isGroup(g, name)) col = readColumnGroup(file, node as H5Group);
    else {
      col = readColumnDataset(file, node as H5Dataset);
      // anndata 0.7 categoricals: codes here, names in `__categories/<name>`.
      const cats = `${name}`;
      if (col.kind === "numeric" && isDataset(g, `__categories/${cats}`)) {
        col = {
          kind: "categorical",
          codes: Int32Array.from(col.values),
          categories: readCategories(file, getDataset(g, `__categories/${cats}`)),
          ordered: !!attr(node as H5Dataset, "ordered"),
        };
      }
    }
    if (col) columns.set(name, col);
  }
  return { index, columns };
}

/**
 * Pre-0.7 dataframes: one compound dataset whose `index` member is the index; categorical columns
 * store codes and their names sit in `uns/<column>_categories`.
 */
/** A pre-0.7 dataframe: a compound dataset at `path`, categories under `uns/<col>_categories`. */
export function readLegacyDataFrame(f: H5File, path: string): DataFrame {
  const file = f.filename;
  const d = f.get(path) as H5Dataset;
  const ct = d.metadata.compound_type as { members: { name: string; type: number }[] } | undefined;
  if (!ct) throw new ScnymError(`${file}: ${path} is a dataset but not a table (compound type)`);
  const rows = (d.value ?? []) as unknown[][];
  const members = ct.members;
  const indexAt = Math.max(0, members.findIndex((m) => m.name === "index" || m.name === "_index"));
  const cell = (v: unknown) => (typeof v === "bigint" ? Number(v) : v);
  const index = rows.map((r) => String(r[indexAt]));
  const columns = new Map<string, Column>();
  members.forEach((m, j) => {
    if (j === indexAt) return;
    const catsPath = `uns/${m.name}_categories`;
    if (isDataset(f, catsPath)) {
      columns.set(m.name, {
        kind: "categorical",
        codes: Int32Array.from(rows, (r) => Number(cell(r[j]))),
        categories: readCategories(file, getDataset(f, catsPath)),
      });
    } else if (m.type === 3) {
      columns.set(m.name, { kind: "string", values: rows.map((r) => String(r[j])) });
    } else if (m.type === 8) {
      columns.set(m.name, { kind: "boolean", values: Uint8Array.from(rows, (r) => Number(r[j])) });
    } else {
      columns.set(m.name, {
        kind: "numeric",
        values: Float64Array.from(rows, (r) => Number(cell(r[j]))),
      });
    }
  });
  return { index, columns };
}

// ---------------------------------------------------------------------------------------------
// uns

const UNS_MAX_ELEMS = 10_000;

/** The small entries of an `uns` group (scalars, string lists, nested dicts). */
export function readUnsGroup(g: H5Group): Record<string, UnsValue> {
  const out: Record<string, UnsValue> = {};
  for (const k of g.keys()) {
    const node = g.get(k);
    if (node === null) continue;
    if (isGroup(g, k)) {
      const enc = encodingType(node as H5Group);
      if (enc === null || enc === "dict") out[k] = readUnsGroup(node as H5Group);
      continue;
    }
    const d = node as H5Dataset;
    const shape = d.shape ?? [];
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length > 1 || size > UNS_MAX_ELEMS) continue;
    if (isStringDataset(d)) {
      const v = d.value;
      out[k] = shape.length === 0 ? String(v) : (v as string[]).map(String);
    } else if (isNumericDataset(d) || isBoolDataset(d)) {
      const v = d.value;
      if (shape.length === 0) {
        out[k] = isBoolDataset(d) ? !!Number(v) : Number(v as number | bigint);
      } else out[k] = Array.from(v as ArrayLike<number | bigint>, Number);
    }
  }
  return out;
}
