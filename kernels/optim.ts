/**
 * Adadelta, exactly as `torch.optim.Adadelta` computes it (Zeiler 2012 with PyTorch's placement
 * of eps and of the learning rate), updating a parameter and its two state tensors in place:
 *
 *   g' = g + weight_decay * p
 *   v  = rho * v + (1 - rho) * g'^2                 (square_avg)
 *   d  = sqrt(u + eps) / sqrt(v + eps) * g'
 *   u  = rho * u + (1 - rho) * d^2                  (acc_delta)
 *   p  = p - lr * d
 */
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { BF16_WGSL } from "./bf16.ts";
import { elementwiseKernel, expectNoAlias, expectShape, runElementwise } from "./common.ts";

/** Hyper-parameters of Adadelta. */
export interface AdadeltaStepOptions {
  /** Learning rate (default 1.0, PyTorch's and scNym's). */
  lr?: number;
  /** Decay of both running averages (default 0.9). */
  rho?: number;
  /** Added inside both square roots (default 1e-6). */
  eps?: number;
  /** L2 penalty added to the gradient (default 1e-4, scNym's; PyTorch's default is 0). */
  weightDecay?: number;
}

/** scNym's settings (lr 1, rho 0.9, eps 1e-6, weight decay 1e-4). */
export const ADADELTA_DEFAULTS: Required<AdadeltaStepOptions> = {
  lr: 1.0,
  rho: 0.9,
  eps: 1e-6,
  weightDecay: 1e-4,
};

/**
 * The update, for a scalar or a vec4 element type; with `bf16`, also writes the updated
 * parameter's bf16 copy (vec4 only: two u32 per element), which the sparse input products read
 * (kernels/bf16.ts): one more store here instead of a separate pass over the weights.
 */
function adadeltaKernel(vec4: boolean, bf16: boolean) {
  const type = vec4 ? "vec4<f32>" : "f32";
  const buf = (access: "read" | "rw") => ({ access, type });
  const buffers: Record<string, { access: "read" | "rw"; type: string }> = {
    grad: buf("read"),
    param: buf("rw"),
    sqAvg: buf("rw"),
    accDelta: buf("rw"),
  };
  if (bf16) buffers.copy = { access: "rw", type: "vec2<u32>" };
  // The parameter is loaded once: the compiler cannot merge two loads around the stores.
  return elementwiseKernel({
    name: `adadelta${vec4 ? "_vec4" : ""}${bf16 ? "_bf16" : ""}`,
    params: { lr: "f32", rho: "f32", eps: "f32", weightDecay: "f32" },
    buffers,
    helpers: bf16 ? BF16_WGSL : "",
    body: `
  let w = param[i];
  let g = grad[i] + p.weightDecay * w;
  let v = p.rho * sqAvg[i] + (1.0 - p.rho) * g * g;
  let u = accDelta[i];
  let d = sqrt(u + p.eps) / sqrt(v + p.eps) * g;
  sqAvg[i] = v;
  accDelta[i] = p.rho * u + (1.0 - p.rho) * d * d;
  let updated = w - p.lr * d;
  param[i] = updated;${
      bf16 ? "\n  copy[i] = vec2<u32>(bf16_pair(updated.xy), bf16_pair(updated.zw));" : ""
    }`,
  });
}

// The update is memory-bound (4 loads, 3 stores per element): vec4 accesses let CPU adapters
// move 16 bytes per lane per access instead of 4.
const ADADELTA = adadeltaKernel(false, false);
const ADADELTA_VEC4 = adadeltaKernel(true, false);
const ADADELTA_VEC4_BF16 = adadeltaKernel(true, true);

/**
 * One Adadelta step on `param` with gradient `grad`, updating `param`, `sqAvg` (square_avg) and
 * `accDelta` (acc_delta) in place. State tensors start at zero; all four share one shape. With
 * `bf16Copy` (u32, param.size / 2 elements; param.size % 4 == 0), also writes the updated
 * parameter rounded to bf16 there, as `packBf16` would.
 */
export function adadeltaStep(
  rt: Runtime,
  param: Tensor,
  grad: Tensor,
  sqAvg: Tensor,
  accDelta: Tensor,
  opts: AdadeltaStepOptions & { bf16Copy?: Tensor } = {},
): void {
  const op = "adadeltaStep";
  const d = ADADELTA_DEFAULTS;
  const o = {
    lr: opts.lr ?? d.lr,
    rho: opts.rho ?? d.rho,
    eps: opts.eps ?? d.eps,
    weightDecay: opts.weightDecay ?? d.weightDecay,
  };
  expectShape(op, "param", param, param.shape);
  for (const [name, t] of [["grad", grad], ["sqAvg", sqAvg], ["accDelta", accDelta]] as const) {
    expectShape(op, name, t, param.shape);
  }
  for (const [name, v] of Object.entries(o)) {
    if (!Number.isFinite(v) || v < 0) {
      throw new ScnymError(`${op}: ${name} is ${v}, expected a finite number >= 0`);
    }
  }
  if (o.rho > 1) throw new ScnymError(`${op}: rho is ${o.rho}, expected <= 1`);
  expectNoAlias(op, { param, sqAvg, accDelta }, { grad });
  const vec4 = param.size % 4 === 0;
  const n = vec4 ? param.size / 4 : param.size;
  const copy = opts.bf16Copy;
  if (copy) {
    if (!vec4 || copy.dtype !== "u32" || copy.size < param.size / 2) {
      throw new ScnymError(
        `${op}: bf16Copy must be u32 with ${param.size / 2} values for ${param.describe()} ` +
          `(size a multiple of 4), got ${copy.describe()}`,
      );
    }
    expectNoAlias(op, { copy }, [param, grad, sqAvg, accDelta]);
    runElementwise(rt, ADADELTA_VEC4_BF16, n, { grad, param, sqAvg, accDelta, copy }, o);
    return;
  }
  runElementwise(rt, vec4 ? ADADELTA_VEC4 : ADADELTA, n, { grad, param, sqAvg, accDelta }, o);
}

/** CPU reference of `adadeltaStep` (float64), updating the three arrays in place. */
export function adadeltaStepRef(
  param: Float64Array,
  grad: ArrayLike<number>,
  sqAvg: Float64Array,
  accDelta: Float64Array,
  opts: AdadeltaStepOptions = {},
): void {
  const d = ADADELTA_DEFAULTS;
  const [lr, rho, eps] = [opts.lr ?? d.lr, opts.rho ?? d.rho, opts.eps ?? d.eps];
  const weightDecay = opts.weightDecay ?? d.weightDecay;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] + weightDecay * param[i];
    sqAvg[i] = rho * sqAvg[i] + (1 - rho) * g * g;
    const delta = Math.sqrt(accDelta[i] + eps) / Math.sqrt(sqAvg[i] + eps) * g;
    accDelta[i] = rho * accDelta[i] + (1 - rho) * delta * delta;
    param[i] -= lr * delta;
  }
}
