/**
 * Host softmax in float64: the one CPU softmax of the project (temperature scaling, energy
 * scores, the logistic baseline, and the reference the WGSL softmax is tested against).
 * Stable as exp(z - max) / sum; the row's log-sum-exp, max + log(sum), comes with it.
 */

/**
 * Overwrites row z[base, base + cols) with its softmax and returns the row's log-sum-exp.
 */
export function softmaxRowInPlace(z: Float64Array, base: number, cols: number): number {
  let max = -Infinity;
  for (let c = 0; c < cols; c++) max = Math.max(max, z[base + c]);
  let sum = 0;
  for (let c = 0; c < cols; c++) sum += z[base + c] = Math.exp(z[base + c] - max);
  for (let c = 0; c < cols; c++) z[base + c] /= sum;
  return max + Math.log(sum);
}

/** Row softmax of logits / T (rows x `cols`, row-major): probabilities at temperature T. */
export function softmaxRows(logits: ArrayLike<number>, cols: number, T = 1): Float64Array {
  const out = Float64Array.from(logits, (z) => z / T);
  for (let base = 0; base < out.length; base += cols) softmaxRowInPlace(out, base, cols);
  return out;
}

/** Row log-sum-exp of logits / T (rows x `cols`, row-major). */
export function logSumExpRows(logits: ArrayLike<number>, cols: number, T = 1): Float64Array {
  const z = Float64Array.from(logits, (v) => v / T);
  return Float64Array.from(
    { length: z.length / cols },
    (_, r) => softmaxRowInPlace(z, r * cols, cols),
  );
}
