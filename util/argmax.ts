/** Host-side argmax over row-major matrices (class probabilities, logits): first index on ties. */

/** Index of the largest of `x[row*cols .. row*cols+cols)` (the first on ties). */
export function argmaxRow(x: ArrayLike<number>, row: number, cols: number): number {
  const base = row * cols;
  let best = 0;
  for (let c = 1; c < cols; c++) if (x[base + c] > x[base + best]) best = c;
  return best;
}

/** `argmaxRow` of every row of an `rows x cols` matrix. */
export function argmaxRows(x: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmaxRow(x, r, cols);
  return out;
}
