/**
 * MixUp on the GPU, so a MixMatch step reads nothing back:
 *
 * - `mixupPlan`: who is mixed with whom and how much. The pool is [U ; X] (target rows first,
 *   then labelled rows). Rows eligible for mixing are every labelled row and every target row
 *   whose teacher confidence reaches the threshold; they are paired by one uniformly random
 *   bijection of the eligible rows (a row may draw itself, as in the original's `randperm`), each
 *   with gamma = max(g, 1 - g), g ~ Beta(alpha, alpha), so every mixed row stays dominated by
 *   itself. Ineligible rows are left unmixed (partner = self, gamma = 1). The bijection matches
 *   the eligible rows in natural order to the eligible rows in a random order of the pool (drawn
 *   by the host's seeded generator and uploaded with the batch, a few KB); gamma is drawn
 *   in-shader.
 * - `mixRows` / `mixRowsBackward`: y_i = gamma_i x_i + (1 - gamma_i) x_partner(i), and its exact
 *   adjoint through the inverse pairing (no atomics).
 */
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { RNG_WGSL, rngBetaRef } from "./random.ts";
import {
  expectMatrix,
  expectShape,
  expectU32,
  type OutOptions,
  outputTensor,
  runVector,
  vectorKernel,
} from "./common.ts";

/** Largest pool `mixupPlan` handles (one invocation walks it sequentially). */
export const MAX_MIX_POOL = 1 << 16;
const PLAN_WG = 64;

/** The pairing of one MixUp draw, all on the GPU. */
export interface MixPlan {
  /** Rows in the pool: nU target rows, then nX labelled rows. */
  n: number;
  nU: number;
  /** u32[n]: the partner of each row. */
  partner: Tensor;
  /** u32[n]: the row whose partner is this row (the pairing is a bijection). */
  inverse: Tensor;
  /** f32[n]: weight of the row itself, in [0.5, 1]; 1 for rows left unmixed. */
  gamma: Tensor;
  /** f32[n]: 1 for rows that take part in mixing (confident target rows, labelled rows), else 0. */
  eligible: Tensor;
  /** f32[n]: `eligible` scaled to average 1 over the eligible rows (n / count), for mean losses. */
  eligibleMean: Tensor;
}

// No barriers: on CPU adapters a workgroup barrier costs far more than this kernel's arithmetic.
// Invocation 0 walks the pool sequentially (2n steps) to match rows; every invocation derives
// eligibility, gamma and the eligible count for its own rows independently.
const MIXUP_PLAN = defineKernel({
  name: "mixup_plan",
  workgroupSize: [PLAN_WG],
  params: {
    n: "u32",
    nU: "u32",
    hasConf: "u32",
    minConf: "f32",
    alpha: "f32",
    seed: "u32",
    stream: "u32",
  },
  buffers: {
    conf: "read",
    order: { access: "read", type: "u32" },
    partner: { access: "rw", type: "u32" },
    inverse: { access: "rw", type: "u32" },
    gamma: "rw",
    eligible: "rw",
    eligibleMean: "rw",
    // Scratch list of eligible rows. A storage buffer, not workgroup memory: llvmpipe takes
    // minutes to compile a kernel with a large workgroup array.
    sorted: { access: "rw", type: "u32" },
  },
  code: `${RNG_WGSL}

fn is_eligible(i: u32) -> bool {
  if (i >= p.nU || p.hasConf == 0u) { return true; }
  return conf[i] >= p.minConf;
}

@compute @workgroup_size(WG_X) fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  if (lid == 0u) {
    // The eligible rows in the random order, then the r-th eligible row (natural order) is
    // paired with the r-th of those: a uniformly random bijection of the eligible rows.
    var r = 0u;
    for (var j = 0u; j < p.n; j++) {
      let q = order[j];
      if (is_eligible(q)) { sorted[r] = q; r++; }
    }
    r = 0u;
    for (var i = 0u; i < p.n; i++) {
      if (is_eligible(i)) {
        let q = sorted[r];
        r++;
        partner[i] = q;
        inverse[q] = i;
      } else {
        partner[i] = i;
        inverse[i] = i;
      }
    }
  }
  var count = 0u;
  for (var i = 0u; i < p.n; i++) { if (is_eligible(i)) { count++; } }
  let mean_scale = f32(p.n) / f32(max(count, 1u));
  for (var i = lid; i < p.n; i += WG_X) {
    if (is_eligible(i)) {
      let g = rng_beta(p.seed, p.stream, i, p.alpha, p.alpha);
      gamma[i] = max(g, 1.0 - g);
      eligible[i] = 1.0;
      eligibleMean[i] = mean_scale;
    } else {
      gamma[i] = 1.0;
      eligible[i] = 0.0;
      eligibleMean[i] = 0.0;
    }
  }
}`,
});

/**
 * Draws a MixUp pairing for a pool of `nU` target rows followed by `nX` labelled rows. Target
 * rows with `conf < minConfidence` are left out (with `conf` null every row takes part).
 * `order` (u32[n]) is a random permutation of the pool drawn by the caller's seeded generator;
 * gamma comes from the in-shader generator at (seed, stream).
 */
export function mixupPlan(
  rt: Runtime,
  conf: Tensor | null,
  order: Tensor,
  nU: number,
  nX: number,
  opts: { alpha: number; minConfidence: number; seed: number; stream: number },
): MixPlan {
  const op = "mixupPlan";
  const n = nU + nX;
  if (n < 1 || n > MAX_MIX_POOL) {
    throw new ScnymError(`${op}: pool of ${n} rows; supported 1..${MAX_MIX_POOL}`);
  }
  if (!(opts.alpha > 0)) throw new ScnymError(`${op}: alpha ${opts.alpha}, expected > 0`);
  expectU32(op, "seed", opts.seed);
  expectU32(op, "stream", opts.stream);
  if (conf) expectShape(op, "conf", conf, [nU]);
  expectShape(op, "order", order, [n], "u32");
  const partner = rt.tensor([n], "u32", op);
  const inverse = rt.tensor([n], "u32", op);
  const gamma = rt.tensor([n], "f32", op);
  const eligible = rt.tensor([n], "f32", op);
  const eligibleMean = rt.tensor([n], "f32", op);
  // A placeholder keeps the binding valid when there is no confidence to read (it must not be
  // one of the outputs: a buffer cannot be bound read-only and writable in one dispatch).
  const hasConf = conf !== null && nU > 0;
  const confT = hasConf ? conf : rt.tensor([1], "f32", op);
  const sorted = rt.tensor([n], "u32", op);
  rt.dispatch(MIXUP_PLAN, {
    conf: confT,
    order,
    partner,
    inverse,
    gamma,
    eligible,
    eligibleMean,
    sorted,
  }, {
    n,
    nU,
    hasConf: hasConf ? 1 : 0,
    minConf: opts.minConfidence,
    alpha: opts.alpha,
    seed: opts.seed,
    stream: opts.stream,
  }, [1]);
  if (!hasConf) confT.release();
  sorted.release();
  return { n, nU, partner, inverse, gamma, eligible, eligibleMean };
}

/** CPU reference of `mixupPlan` (gamma via the f64 Beta twin: close to, not bit-equal with, f32). */
export function mixupPlanRef(
  conf: ArrayLike<number> | null,
  order: ArrayLike<number>,
  nU: number,
  nX: number,
  opts: { alpha: number; minConfidence: number; seed: number; stream: number },
): { partner: number[]; gamma: number[]; eligible: number[] } {
  const n = nU + nX;
  const elig = (i: number) => i >= nU || !conf || conf[i] >= opts.minConfidence;
  const sorted = Array.from(order).filter(elig);
  const partner: number[] = [];
  const gamma: number[] = [];
  let r = 0;
  for (let i = 0; i < n; i++) {
    if (elig(i)) {
      partner.push(sorted[r++]);
      const g = rngBetaRef(opts.seed, opts.stream, i, opts.alpha, opts.alpha);
      gamma.push(Math.max(g, 1 - g));
    } else {
      partner.push(i);
      gamma.push(1);
    }
  }
  return { partner, gamma, eligible: Array.from({ length: n }, (_, i) => elig(i) ? 1 : 0) };
}

// `vectorKernel`s over the elements of x: with F % 4 == 0 an invocation mixes 4 neighbouring
// values (T = vec4<f32>, F counted in vec4s); gamma and the pairing stay per row. 256-wide
// workgroups: the scalar builds took 12-15% longer with 64 on llvmpipe ([256x257]: 323
// against 281 us).
const MIX_WG = { scalar: 256, vec4: 256 };
const MIX_ROWS = vectorKernel({
  name: "mix_rows",
  params: { f: "u32", nTop: "u32" },
  buffers: {
    x: "read",
    partner: { access: "read", type: "u32" },
    gamma: { access: "read", type: "f32" },
    top: "rw",
    bottom: "rw",
  },
  body: `
  let row = i / p.f;
  let c = i % p.f;
  let g = gamma[row];
  let v = g * x[i] + (1.0 - g) * x[partner[row] * p.f + c];
  if (row < p.nTop) { top[i] = v; } else { bottom[i - p.nTop * p.f] = v; }`,
  workgroupSizes: MIX_WG,
});

/**
 * Mixes the rows of `x` [n, F] by `plan`, returning the mixed rows split into the first `nTop`
 * (`top`) and the rest (`bottom`), which feed separate forward passes.
 */
export function mixRows(
  rt: Runtime,
  x: Tensor,
  plan: MixPlan,
  nTop: number,
): { top: Tensor; bottom: Tensor } {
  const op = "mixRows";
  const [n, f] = expectMatrix(op, "x", x);
  if (n !== plan.n) throw new ScnymError(`${op}: x has ${n} rows, the plan ${plan.n}`);
  if (nTop < 1 || nTop >= n) throw new ScnymError(`${op}: nTop ${nTop} of ${n} rows`);
  const top = rt.tensor([nTop, f], "f32", op);
  const bottom = rt.tensor([n - nTop, f], "f32", op);
  const buffers = { x, partner: plan.partner, gamma: plan.gamma, top, bottom };
  runVector(rt, MIX_ROWS, n * f, buffers, { f, nTop }, ["f"]);
  return { top, bottom };
}

const MIX_ROWS_BACKWARD = vectorKernel({
  name: "mix_rows_backward",
  params: { f: "u32", nTop: "u32", accumulate: "u32" },
  buffers: {
    dTop: "read",
    dBottom: "read",
    inverse: { access: "read", type: "u32" },
    gamma: { access: "read", type: "f32" },
    dx: "rw",
  },
  helpers: `
fn dy_at(row: u32, c: u32) -> T {
  if (row < p.nTop) { return dTop[row * p.f + c]; }
  return dBottom[(row - p.nTop) * p.f + c];
}`,
  body: `
  let j = i / p.f;
  let c = i % p.f;
  // Row j enters its own mix with weight gamma_j and its inverse partner's with 1 - gamma.
  let k = inverse[j];
  var v = gamma[j] * dy_at(j, c) + (1.0 - gamma[k]) * dy_at(k, c);
  if (p.accumulate != 0u) { v += dx[i]; }
  dx[i] = v;`,
  workgroupSizes: MIX_WG,
});

/** The adjoint of `mixRows`: dx [n, F] from the gradients of `top` and `bottom`. */
export function mixRowsBackward(
  rt: Runtime,
  dTop: Tensor,
  dBottom: Tensor,
  plan: MixPlan,
  opts: OutOptions = {},
): Tensor {
  const op = "mixRowsBackward";
  const [nTop, f] = expectMatrix(op, "dTop", dTop);
  expectShape(op, "dBottom", dBottom, [plan.n - nTop, f]);
  const dx = outputTensor(rt, op, [plan.n, f], opts, [dTop, dBottom]);
  const buffers = { dTop, dBottom, inverse: plan.inverse, gamma: plan.gamma, dx };
  const params = { f, nTop, accumulate: opts.accumulate ? 1 : 0 };
  runVector(rt, MIX_ROWS_BACKWARD, plan.n * f, buffers, params, ["f"]);
  return dx;
}

/** CPU reference of `mixRows` (unsplit). */
export function mixRowsRef(
  x: ArrayLike<number>,
  f: number,
  partner: ArrayLike<number>,
  gamma: ArrayLike<number>,
): Float64Array {
  const n = partner.length;
  const y = new Float64Array(n * f);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < f; c++) {
      y[i * f + c] = gamma[i] * x[i * f + c] + (1 - gamma[i]) * x[partner[i] * f + c];
    }
  }
  return y;
}
