/**
 * Differentiable ops: each runs its forward kernels now and records its backward kernels on the
 * tape. Together they express scNym's networks; see `nn/model.ts`.
 */
import {
  axpy,
  dropoutRelu as dropoutReluKernel,
  dropoutReluBackward,
  gradReverseBackward,
  relu as reluKernel,
  reluBackward,
} from "../kernels/activation.ts";
import {
  batchNormEval,
  batchNormEvalBackward,
  type BatchNormState,
  batchNormTrain,
  batchNormTrainBackward,
} from "../kernels/batchnorm.ts";
import { matmul } from "../kernels/matmul.ts";
import { type MixPlan, mixRows, mixRowsBackward } from "../kernels/mixup.ts";
import { sumCols } from "../kernels/reduce.ts";
import { type Bf16Matrix, packBf16 } from "../kernels/bf16.ts";
import type { GpuCsr } from "../kernels/sparse.ts";
import { spmm, spmmTransposed } from "../kernels/spmm.ts";
import type { Tensor } from "../runtime/runtime.ts";
import { type Param, type Tape, Var } from "./tape.ts";

/** y = x W + b, with W stored [in, out]. */
export function linear(t: Tape, x: Var, W: Param, b: Param): Var {
  const y = new Var(matmul(t.rt, x.value, W.value, { bias: b.value }), t.needsGrad(x, W, b));
  if (y.requiresGrad) {
    t.record(() => {
      const dy = y.grad!;
      if (t.paramGrads) {
        matmul(t.rt, x.value, dy, { transA: true, ...t.paramSlot(W) });
        sumCols(t.rt, dy, t.paramSlot(b));
      }
      if (x.requiresGrad) {
        t.setGrad(x, matmul(t.rt, dy, W.value, { transB: true, ...t.gradSlot(x) }));
      }
    });
  }
  return y;
}

/**
 * The bf16 operands `sparseLinear`'s products read instead of the f32 ones (kernels/bf16.ts):
 * W's copy for the forward product (its owner keeps it current: see `Adadelta`'s bf16Copies),
 * and a u32 room of at least dY.size / 2 elements where the weight gradient's dY is packed.
 */
export interface Bf16Operands {
  w: Bf16Matrix;
  dy: Tensor;
}

/**
 * y = X W + b for a sparse CSR input X (the gene-expression layer). With `input`, X's dense
 * gradient dX = dY W^T is also computed into `input.grad` (saliency); X itself is data. With
 * `bf16`, the sparse products read W and dY rounded to bf16 (see `Bf16Operands`).
 */
export function sparseLinear(
  t: Tape,
  x: GpuCsr,
  W: Param,
  b: Param,
  opts: { input?: Var; bf16?: Bf16Operands } = {},
): Var {
  const { input, bf16 } = opts;
  const w = bf16 ? bf16.w : W.value;
  const y = new Var(spmm(t.rt, x, w, { bias: b.value }), t.needsGrad(W, b, input));
  if (y.requiresGrad) {
    t.record(() => {
      const dy = y.grad!;
      if (t.paramGrads) {
        const src = bf16 ? packBf16(t.rt, dy, bf16.dy) : dy;
        spmmTransposed(t.rt, x, src, t.paramSlot(W));
        sumCols(t.rt, dy, t.paramSlot(b));
      }
      if (input) {
        t.setGrad(input, matmul(t.rt, dy, W.value, { transB: true, ...t.gradSlot(input) }));
      }
    });
  }
  return y;
}

/** A BatchNorm1d layer: learned scale/shift (parameters) and running statistics (state). */
export interface BatchNormLayer {
  gamma: Param;
  beta: Param;
  runningMean: Tensor;
  runningVar: Tensor;
}

function bnState(bn: BatchNormLayer): BatchNormState {
  return {
    gamma: bn.gamma.value,
    beta: bn.beta.value,
    runningMean: bn.runningMean,
    runningVar: bn.runningVar,
  };
}

/**
 * BatchNorm1d: batch statistics (and a running-statistics update) when training, running
 * statistics otherwise. Training mode differentiates w.r.t. x, gamma and beta; eval mode w.r.t. x
 * only (all that input gradients for saliency need: eval mode never trains).
 */
export function batchNorm(t: Tape, x: Var, bn: BatchNormLayer, training: boolean): Var {
  const rt = t.rt;
  if (!training) {
    const y = new Var(batchNormEval(rt, x.value, bnState(bn)), t.needsGrad(x));
    if (y.requiresGrad) {
      t.record(() => {
        t.setGrad(
          x,
          batchNormEvalBackward(rt, y.grad!, bn.gamma.value, bn.runningVar, t.gradSlot(x)),
        );
      });
    }
    return y;
  }
  const fwd = batchNormTrain(rt, x.value, bnState(bn));
  const y = new Var(fwd.y, t.needsGrad(x, bn.gamma, bn.beta));
  if (y.requiresGrad) {
    t.record(() => {
      // One flag for both outputs: adding into zeros is exact, so either needing it is enough.
      const [g, b] = [t.paramSlot(bn.gamma), t.paramSlot(bn.beta)];
      const { dx } = batchNormTrainBackward(rt, y.grad!, x.value, bn.gamma.value, fwd, {
        dgamma: g.out,
        dbeta: b.out,
        accumulate: g.accumulate || b.accumulate,
      });
      if (x.requiresGrad) t.addGrad(x, dx);
      else dx.release();
    });
  }
  return y;
}

/**
 * relu(dropout(x)) in one kernel when training (`p` > 0, mask from `seed`/`stream`), plain ReLU
 * otherwise. Backward honours the tape's guided-backprop switch.
 */
export function dropoutRelu(
  t: Tape,
  x: Var,
  opts: { p: number; seed: number; stream: number; training: boolean },
): Var {
  const rt = t.rt;
  const drop = opts.training && opts.p > 0;
  const out = drop
    ? dropoutReluKernel(rt, x.value, { p: opts.p, seed: opts.seed, stream: opts.stream })
    : reluKernel(rt, x.value);
  const y = new Var(out, t.needsGrad(x));
  if (y.requiresGrad) {
    t.record(() => {
      const slot = { ...t.gradSlot(x), guided: t.guided };
      t.setGrad(
        x,
        drop
          ? dropoutReluBackward(rt, y.value, y.grad!, opts.p, slot)
          : reluBackward(rt, y.value, y.grad!, slot),
      );
    });
  }
  return y;
}

/**
 * Gradient reversal: identity forward, -weight * gradient backward, so the layers before it
 * learn to fool whatever is trained after it (the domain adversary).
 */
export function gradReverse(t: Tape, x: Var, weight: number): Var {
  const y = new Var(x.value, t.needsGrad(x));
  if (y.requiresGrad) {
    t.record(() => t.setGrad(x, gradReverseBackward(t.rt, y.grad!, weight, t.gradSlot(x))));
  }
  return y;
}

/** MixUp of the rows of `x` by `plan`, split after `nTop` rows (see `kernels/mixup.ts`). */
export function mix(t: Tape, x: Var, plan: MixPlan, nTop: number): { top: Var; bottom: Var } {
  const { top, bottom } = mixRows(t.rt, x.value, plan, nTop);
  const need = t.needsGrad(x);
  const vt = new Var(top, need);
  const vb = new Var(bottom, need);
  if (need) {
    t.record(() => {
      // A half that no loss reached has no gradient; zeros stand in for it.
      const dt = vt.grad ?? t.rt.full(top.shape, 0);
      const db = vb.grad ?? t.rt.full(bottom.shape, 0);
      t.setGrad(x, mixRowsBackward(t.rt, dt, db, plan, t.gradSlot(x)));
    });
  }
  return { top: vt, bottom: vb };
}

/** The first `rows` rows of `x` (a view: no copy); backward adds into those rows' gradient. */
export function prefixRows(t: Tape, x: Var, rows: number): Var {
  const cols = x.value.cols;
  const y = new Var(x.value.view([rows, cols]), t.needsGrad(x));
  if (y.requiresGrad) {
    t.record(() => {
      x.grad ??= t.rt.full(x.value.shape, 0, "f32", "prefixRows");
      axpy(t.rt, 1, y.grad!, x.grad.view([rows, cols]));
    });
  }
  return y;
}
