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

/** The update, for a scalar or a vec4 element type (`T`). */
function adadeltaKernel(vec4: boolean) {
  const type = vec4 ? "vec4<f32>" : "f32";
  const buf = (access: "read" | "rw") => ({ access, type });
  return elementwiseKernel({
    name: vec4 ? "adadelta_vec4" : "adadelta",
    params: { lr: "f32", rho: "f32", eps: "f32", weightDecay: "f32" },
    buffers: { grad: buf("read"), param: buf("rw"), sqAvg: buf("rw"), accDelta: buf("rw") },
    body: `
  let g = grad[i] + p.weightDecay * param[i];
  let v = p.rho * sqAvg[i] + (1.0 - p.rho) * g * g;
  let u = accDelta[i];
  let d = sqrt(u + p.eps) / sqrt(v + p.eps) * g;
  sqAvg[i] = v;
  accDelta[i] = p.rho * u + (1.0 - p.rho) * d * d;
  param[i] = param[i] - p.lr * d;`,
  });
}

// The update is memory-bound (4 loads, 3 stores per element): vec4 accesses let CPU adapters
// move 16 bytes per lane per access instead of 4.
const ADADELTA = adadeltaKernel(false);
const ADADELTA_VEC4 = adadeltaKernel(true);

/**
 * One Adadelta step on `param` with gradient `grad`, updating `param`, `sqAvg` (square_avg) and
 * `accDelta` (acc_delta) in place. State tensors start at zero; all four share one shape.
 */
export function adadeltaStep(
  rt: Runtime,
  param: Tensor,
  grad: Tensor,
  sqAvg: Tensor,
  accDelta: Tensor,
  opts: AdadeltaStepOptions = {},
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
