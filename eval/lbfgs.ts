/**
 * Limited-memory BFGS (Nocedal & Wright 2006, algorithm 7.4, two-loop recursion) for smooth convex
 * objectives in float64: what the linear baselines (eval/linear.ts) are fitted with. No randomness,
 * so a fit is a pure function of its inputs.
 *
 * The line search backtracks from step 1 (Armijo condition, c1 = 1e-4), which is enough on the
 * convex objectives used here; a pair (s, y) with too little curvature is skipped rather than let
 * the inverse-Hessian estimate lose positive definiteness.
 */

/** `f(x)`, writing the gradient into `grad` (same length as x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

/** Stopping rules of `minimiseLbfgs`. */
export interface LbfgsOptions {
  /** Stop when max |gradient| falls below this (default 1e-6). */
  gradTol?: number;
  /** At most this many iterations (default 500). */
  maxIter?: number;
  /** Pairs (s, y) remembered (default 10). */
  memory?: number;
}

/** The minimiser's result: the point, its value, and how the run ended. */
export interface LbfgsResult {
  x: Float64Array;
  value: number;
  /** Objective value after each iteration (index 0: the starting point). Non-increasing. */
  trace: number[];
  iterations: number;
  /** max |gradient| at `x`. */
  gradMax: number;
  /** True when `gradTol` was reached (not the iteration limit or a stalled line search). */
  converged: boolean;
}

function dotf(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Minimises `f` from `x0` (not modified). */
export function minimiseLbfgs(
  f: Objective,
  x0: Float64Array,
  opts: LbfgsOptions = {},
): LbfgsResult {
  const gradTol = opts.gradTol ?? 1e-6;
  const maxIter = opts.maxIter ?? 500;
  const m = opts.memory ?? 10;
  const n = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let value = f(x, g);
  const trace = [value];
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dir = new Float64Array(n);
  const alpha = new Float64Array(m);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);
  let iter = 0;
  let converged = maxAbs(g) < gradTol;
  while (!converged && iter < maxIter) {
    // Two-loop recursion: dir = -H g with H the implicit inverse-Hessian estimate.
    dir.set(g);
    for (let j = S.length - 1; j >= 0; j--) {
      alpha[j] = rho[j] * dotf(S[j], dir);
      const y = Y[j];
      for (let i = 0; i < n; i++) dir[i] -= alpha[j] * y[i];
    }
    // Initial scaling gamma = s'y / y'y (first step: 1 / |g|, a unit-length move).
    const last = S.length - 1;
    const gamma = last >= 0 ? 1 / (rho[last] * dotf(Y[last], Y[last])) : 1 / Math.sqrt(dotf(g, g));
    for (let i = 0; i < n; i++) dir[i] *= gamma;
    for (let j = 0; j < S.length; j++) {
      const beta = rho[j] * dotf(Y[j], dir);
      const s = S[j];
      for (let i = 0; i < n; i++) dir[i] += (alpha[j] - beta) * s[i];
    }
    for (let i = 0; i < n; i++) dir[i] = -dir[i];
    let slope = dotf(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < n; i++) dir[i] = -g[i] / Math.sqrt(dotf(g, g));
      slope = dotf(g, dir);
    }
    let step = 1;
    let valueNew = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * dir[i];
      valueNew = f(xNew, gNew);
      if (valueNew <= value + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(valueNew <= value)) break; // the line search stalled: x is as good as rounding allows
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dotf(s, y);
    if (sy > 1e-12 * Math.sqrt(dotf(s, s) * dotf(y, y))) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    const decrease = value - valueNew;
    value = valueNew;
    trace.push(value);
    iter++;
    converged = maxAbs(g) < gradTol;
    if (decrease <= 1e-15 * Math.abs(value)) break; // no further progress possible
  }
  return { x, value, trace, iterations: iter, gradMax: maxAbs(g), converged };
}
