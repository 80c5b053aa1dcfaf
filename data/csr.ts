/**
 * Compressed sparse row matrices: how expression matrices live in memory, from the file reader to
 * the batch upload. Cells are rows, genes are columns; nothing here densifies a whole matrix.
 */

/** A cells x genes matrix in CSR form. `indptr` has nRows + 1 entries. */
export interface Csr {
  nRows: number;
  nCols: number;
  indptr: Uint32Array;
  indices: Uint32Array;
  data: Float32Array;
}

/** Number of stored entries. */
export function nnz(m: Csr): number {
  return m.indptr[m.nRows];
}

/** An nRows x nCols matrix with room for `capacity` entries (all rows empty until filled). */
export function emptyCsr(nRows: number, nCols: number, capacity = 0): Csr {
  return {
    nRows,
    nCols,
    indptr: new Uint32Array(nRows + 1),
    indices: new Uint32Array(capacity),
    data: new Float32Array(capacity),
  };
}

/** CSR from a dense row-major array (zeros dropped). */
export function csrFromDense(dense: ArrayLike<number>, nRows: number, nCols: number): Csr {
  let count = 0;
  for (let i = 0; i < nRows * nCols; i++) if (dense[i] !== 0) count++;
  const m = emptyCsr(nRows, nCols, count);
  let k = 0;
  for (let r = 0; r < nRows; r++) {
    for (let c = 0; c < nCols; c++) {
      const v = dense[r * nCols + c];
      if (v !== 0) {
        m.indices[k] = c;
        m.data[k++] = v;
      }
    }
    m.indptr[r + 1] = k;
  }
  return m;
}

/** Dense row-major copy, repeated columns added (tests and small matrices only). */
export function csrToDense(m: Csr): Float32Array {
  const out = new Float32Array(m.nRows * m.nCols);
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      out[r * m.nCols + m.indices[k]] += m.data[k];
    }
  }
  return out;
}

/** The rows `rows` (in that order, repeats allowed) as a new CSR matrix. */
export function selectRows(m: Csr, rows: ArrayLike<number>): Csr {
  let total = 0;
  for (let i = 0; i < rows.length; i++) total += m.indptr[rows[i] + 1] - m.indptr[rows[i]];
  const out = emptyCsr(rows.length, m.nCols, total);
  let k = 0;
  for (let i = 0; i < rows.length; i++) {
    const a = m.indptr[rows[i]];
    const b = m.indptr[rows[i] + 1];
    out.indices.set(m.indices.subarray(a, b), k);
    out.data.set(m.data.subarray(a, b), k);
    k += b - a;
    out.indptr[i + 1] = k;
  }
  return out;
}

/**
 * `indptr[start..end]` rebased to start at 0: the row pointers of rows [start, end) of a matrix
 * whose entries `indptr[start]..indptr[end]` are cut out (in memory or from a file).
 */
export function rowPointerSlice(
  indptr: ArrayLike<number>,
  start: number,
  end: number,
): Uint32Array {
  const out = new Uint32Array(end - start + 1);
  const lo = indptr[start];
  for (let r = start; r <= end; r++) out[r - start] = indptr[r] - lo;
  return out;
}

/** Rows [start, end) as a new CSR matrix (copies). */
export function sliceRows(m: Csr, start: number, end: number): Csr {
  const lo = m.indptr[start];
  const hi = m.indptr[end];
  return {
    nRows: end - start,
    nCols: m.nCols,
    indptr: rowPointerSlice(m.indptr, start, end),
    indices: m.indices.slice(lo, hi),
    data: m.data.slice(lo, hi),
  };
}

/**
 * Copies all rows of `part` into `out` from row `firstRow` on; the rows before it must be filled
 * already (their entries end at `out.indptr[firstRow]`) and `out` must have room for the entries.
 */
export function setRows(out: Csr, firstRow: number, part: Csr): void {
  const base = out.indptr[firstRow];
  const n = nnz(part);
  out.indices.set(part.indices.subarray(0, n), base);
  out.data.set(part.data.subarray(0, n), base);
  for (let r = 1; r <= part.nRows; r++) out.indptr[firstRow + r] = base + part.indptr[r];
}

/** Rows stacked: all rows of the first matrix, then of the next, ... (same number of columns). */
export function vstack(...parts: Csr[]): Csr {
  if (parts.length === 0) throw new Error("vstack: no matrices");
  const nCols = parts[0].nCols;
  for (const p of parts) {
    if (p.nCols !== nCols) throw new Error(`vstack: ${nCols} vs ${p.nCols} columns`);
  }
  const nRows = parts.reduce((s, p) => s + p.nRows, 0);
  const total = parts.reduce((s, p) => s + nnz(p), 0);
  const out = emptyCsr(nRows, nCols, total);
  let row = 0;
  for (const p of parts) {
    setRows(out, row, p);
    row += p.nRows;
  }
  return out;
}

/**
 * The gene-major (CSC) view of a CSR matrix, as positions into the CSR arrays: for column c,
 * entries `colptr[c]..colptr[c+1]` give `rowOf` (the row) and `posOf` (the index into
 * `data`/`indices`). Storing positions instead of values lets the GPU read values that were
 * changed in place (augmentation) after the view was built. Rows within a column are ascending.
 */
export interface CscView {
  colptr: Uint32Array;
  rowOf: Uint32Array;
  posOf: Uint32Array;
}

/** Builds the CSC view by a counting sort over columns (O(nnz + nCols)). */
export function cscView(m: Csr): CscView {
  const n = nnz(m);
  const colptr = new Uint32Array(m.nCols + 1);
  for (let k = 0; k < n; k++) colptr[m.indices[k] + 1]++;
  for (let c = 0; c < m.nCols; c++) colptr[c + 1] += colptr[c];
  const next = colptr.slice(0, m.nCols);
  const rowOf = new Uint32Array(n);
  const posOf = new Uint32Array(n);
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      const d = next[m.indices[k]]++;
      rowOf[d] = r;
      posOf[d] = k;
    }
  }
  return { colptr, rowOf, posOf };
}

/**
 * The columns `cols` of `m`, in that order (-1 gives an empty column; each source column at most
 * once). Columns stay ascending within each row (the CSR convention) by a counting sort over the
 * new columns: O(nnz + columns), no per-row sorting.
 */
export function selectColumns(m: Csr, cols: ArrayLike<number>): Csr {
  const nNew = cols.length;
  const toNew = new Int32Array(m.nCols).fill(-1);
  for (let j = 0; j < nNew; j++) {
    const c = cols[j];
    if (c >= m.nCols) throw new Error(`selectColumns: column ${c} of a ${m.nCols}-column matrix`);
    if (c >= 0) toNew[c] = j;
  }
  // Pass 1: entries per new column; pass 2: scatter (row-ascending within each column).
  const colptr = new Uint32Array(nNew + 1);
  const rowCount = new Uint32Array(m.nRows + 1);
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      const j = toNew[m.indices[k]];
      if (j >= 0) {
        colptr[j + 1]++;
        rowCount[r + 1]++;
      }
    }
  }
  for (let j = 0; j < nNew; j++) colptr[j + 1] += colptr[j];
  const kept = colptr[nNew];
  const colRow = new Uint32Array(kept);
  const colVal = new Float32Array(kept);
  const next = colptr.slice(0, nNew);
  for (let r = 0; r < m.nRows; r++) {
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      const j = toNew[m.indices[k]];
      if (j < 0) continue;
      const d = next[j]++;
      colRow[d] = r;
      colVal[d] = m.data[k];
    }
  }
  // Transpose back: walking columns in order fills each row with ascending columns.
  const indptr = new Uint32Array(m.nRows + 1);
  for (let r = 0; r < m.nRows; r++) indptr[r + 1] = indptr[r] + rowCount[r + 1];
  const fill = indptr.slice(0, m.nRows);
  const indices = new Uint32Array(kept);
  const data = new Float32Array(kept);
  for (let j = 0; j < nNew; j++) {
    for (let d = colptr[j]; d < colptr[j + 1]; d++) {
      const at = fill[colRow[d]]++;
      indices[at] = j;
      data[at] = colVal[d];
    }
  }
  return { nRows: m.nRows, nCols: nNew, indptr, indices, data };
}
