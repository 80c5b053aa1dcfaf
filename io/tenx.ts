/**
 * 10x Genomics inputs: the Cell Ranger HDF5 matrix (`filtered_feature_bc_matrix.h5`, v3 layout
 * `matrix/{data,indices,indptr,shape,barcodes,features/...}` and the v2 layout `<genome>/{...,
 * genes, gene_names}`) and the MatrixMarket folder (`matrix.mtx[.gz]`, `features.tsv[.gz]` or
 * `genes.tsv[.gz]`, `barcodes.tsv[.gz]`). Cell labels come from a separate CSV joined on barcode.
 *
 * Cell Ranger stores genes x cells in CSC, which is cells x genes in CSR: rows are read directly.
 * Like scanpy (`gex_only=True`), only "Gene Expression" features are kept when types are given.
 */
import { type Csr, selectColumns } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { type AnnData, type Column, type DataFrame, dataFrame } from "./anndata.ts";
import {
  getDataset,
  type H5File,
  isDataset,
  isGroup,
  openH5,
  readNumeric,
  readStrings,
  toFloat64,
} from "./h5.ts";
import { MatrixReader, readAllRows } from "./matrix_reader.ts";
import { readMtxTriples, triplesToCsr } from "./mtx.ts";
import { parseDelimited, readTable, readText } from "./table.ts";

/** True when `f` looks like a Cell Ranger HDF5 matrix (v3 `matrix/` or a v2 genome group). */
export function tenxGroup(f: H5File): string | null {
  if (isGroup(f, "matrix") && isDataset(f, "matrix/indptr")) return "matrix";
  for (const k of f.keys()) {
    if (isGroup(f, k) && isDataset(f, `${k}/indptr`) && isDataset(f, `${k}/gene_names`)) return k;
  }
  return null;
}

/** Gene-expression features only (when feature types are known), with var built from the rest. */
function geneExpressionOnly(
  X: Csr,
  names: string[],
  ids: string[],
  types: string[] | null,
): { X: Csr; var: DataFrame } {
  let keep: Uint32Array | null = null;
  if (types && types.some((t) => t !== "Gene Expression")) {
    keep = Uint32Array.from(types.flatMap((t, i) => (t === "Gene Expression" ? [i] : [])));
  }
  const pick = <T>(a: T[]) => (keep ? Array.from(keep, (i) => a[i]) : a);
  const v = dataFrame(pick(names));
  v.columns.set("gene_ids", { kind: "string", values: pick(ids) });
  if (types) v.columns.set("feature_types", { kind: "string", values: pick(types) });
  return { X: keep ? selectColumns(X, keep) : X, var: v };
}

/** Reads a Cell Ranger `.h5` matrix as cells x genes (var index: gene symbols; `gene_ids` kept). */
export async function readTenxH5(path: string): Promise<AnnData> {
  const f = await openH5(path, "r");
  try {
    const g = tenxGroup(f);
    if (!g) {
      throw new ScnymError(
        `${path}: not a 10x Genomics HDF5 matrix (no matrix/ group with indptr)`,
      );
    }
    const shape = toFloat64(readNumeric(path, getDataset(f, `${g}/shape`)));
    if (shape.length !== 2) throw new ScnymError(`${path}: ${g}/shape should have 2 entries`);
    const [nGenes, nCells] = [shape[0], shape[1]];
    const v3 = isGroup(f, `${g}/features`);
    const names = readStrings(path, getDataset(f, v3 ? `${g}/features/name` : `${g}/gene_names`));
    const ids = readStrings(path, getDataset(f, v3 ? `${g}/features/id` : `${g}/genes`));
    const types = v3 && isDataset(f, `${g}/features/feature_type`)
      ? readStrings(path, getDataset(f, `${g}/features/feature_type`))
      : null;
    const barcodes = readStrings(path, getDataset(f, `${g}/barcodes`));
    if (names.length !== nGenes || barcodes.length !== nCells) {
      throw new ScnymError(
        `${path}: shape says ${nGenes} genes x ${nCells} cells, but there are ${names.length} ` +
          `feature names and ${barcodes.length} barcodes`,
      );
    }
    // Cell Ranger's CSC over genes is CSR over cells; its shape is a dataset, not an attribute.
    const reader = new MatrixReader(f, g, `${g} (10x)`, { format: "csr", shape: [nCells, nGenes] });
    const X = readAllRows(reader);
    const sel = geneExpressionOnly(X, names, ids, types);
    return {
      X: sel.X,
      obs: dataFrame(barcodes),
      var: sel.var,
      matrix: `${g} (10x)`,
      uns: {},
      source: path,
    };
  } finally {
    f.close();
  }
}

/** Reads barcodes / features of an mtx folder, trying the v3 then the v2 file names. */
async function findFile(dir: string, names: string[], what: string): Promise<string> {
  for (const n of names) {
    for (const p of [`${dir}/${n}`, `${dir}/${n}.gz`]) {
      if (await Deno.stat(p).then((s) => s.isFile, () => false)) return p;
    }
  }
  throw new ScnymError(`${dir}: no ${what} file (looked for ${names.join(", ")}, plain or .gz)`);
}

/** Reads a 10x MatrixMarket folder as cells x genes (var index: gene symbols). */
export async function readTenxMtxDir(dir: string): Promise<AnnData> {
  const st = await Deno.stat(dir).catch(() => null);
  if (!st) throw new ScnymError(`input folder not found: ${dir}`);
  if (!st.isDirectory) throw new ScnymError(`${dir}: expected a 10x MatrixMarket folder`);
  const mtxPath = await findFile(dir, ["matrix.mtx"], "matrix.mtx");
  const featPath = await findFile(dir, ["features.tsv", "genes.tsv"], "features.tsv / genes.tsv");
  const bcPath = await findFile(dir, ["barcodes.tsv"], "barcodes.tsv");
  const feats = parseDelimited(await readText(featPath), "\t");
  const barcodes = parseDelimited(await readText(bcPath), "\t").map((r) => r[0]);
  const t = await readMtxTriples(mtxPath);
  let X: Csr;
  if (t.rows === feats.length && t.cols === barcodes.length) X = triplesToCsr(t, "col");
  else if (t.rows === barcodes.length && t.cols === feats.length) X = triplesToCsr(t, "row");
  else {
    throw new ScnymError(
      `${mtxPath}: matrix is ${t.rows} x ${t.cols}, but there are ${feats.length} features and ` +
        `${barcodes.length} barcodes`,
    );
  }
  const ids = feats.map((r) => r[0]);
  const names = feats.map((r) => r[1] ?? r[0]);
  const types = feats.every((r) => r.length >= 3) ? feats.map((r) => r[2]) : null;
  const sel = geneExpressionOnly(X, names, ids, types);
  return {
    X: sel.X,
    obs: dataFrame(barcodes),
    var: sel.var,
    matrix: "matrix.mtx",
    uns: {},
    source: dir,
  };
}

/**
 * Adds the columns of a labels CSV/TSV to `ad.obs`, joined on the first column (cell barcode).
 * Cells absent from the table get missing values (unlabelled); a table that matches no cell is
 * refused, naming an example barcode from each side.
 */
export async function attachLabels(ad: AnnData, labelsPath: string): Promise<{ matched: number }> {
  const t = await readTable(labelsPath, "labels table");
  const row = new Map<string, number>();
  t.rows.forEach((r, i) => row.set(r[0], i));
  const at = ad.obs.index.map((bc) => row.get(bc) ?? -1);
  const matched = at.filter((i) => i >= 0).length;
  if (matched === 0) {
    throw new ScnymError(
      `${labelsPath}: no barcode matches the ${ad.obs.index.length} cells (e.g. table "${
        t.rows[0]?.[0]
      }" vs cells "${ad.obs.index[0]}")`,
    );
  }
  for (let j = 1; j < t.header.length; j++) {
    const categories: string[] = [];
    const lookup = new Map<string, number>();
    const codes = Int32Array.from(at, (i) => {
      const v = i < 0 ? "" : t.rows[i][j];
      if (v === "" || v === "NA" || v === "nan") return -1;
      let c = lookup.get(v);
      if (c === undefined) {
        lookup.set(v, c = categories.length);
        categories.push(v);
      }
      return c;
    });
    const col: Column = { kind: "categorical", codes, categories };
    ad.obs.columns.set(t.header[j], col);
  }
  return { matched };
}
