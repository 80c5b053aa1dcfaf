/**
 * Losses as tape ops. Each runs its fused kernel (loss and d loss / d logits in one pass,
 * kernels/softmax.ts) at once, returns the loss value (f32[1] on the GPU) and records a backward
 * that adds the stored gradient into the logits' gradient. A tape's backward therefore
 * differentiates the sum of every loss recorded on it: to weight a loss, give it a `scale`.
 *
 * A new loss is one fused kernel plus one function here, built on `lossOp`.
 */
import { oneHot } from "../kernels/labels.ts";
import {
  type LossResult,
  softCrossEntropy as softCrossEntropyKernel,
  softmaxSquaredError,
} from "../kernels/softmax.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import type { MetricSlot } from "./metrics.ts";
import type { Tape, Var } from "./tape.ts";

/** Options every loss takes. */
export interface LossOptions {
  /** Per-row weights w [B] (e.g. 0/1 for confident pseudolabels); default all 1. */
  rowWeight?: Tensor;
  /** Multiplies the loss and its gradient (e.g. a ramped loss weight); default 1. */
  scale?: number;
  /** Also adds the loss into this metric (read once per epoch). */
  metric?: MetricSlot;
}

type FusedLoss = (
  rt: Runtime,
  logits: Tensor,
  targets: Tensor,
  opts: { rowWeight?: Tensor; scale?: number; lossAccumulator?: MetricSlot },
) => LossResult;

/** Runs a fused loss on `logits` and records its gradient's way back into them. */
function lossOp(
  t: Tape,
  fused: FusedLoss,
  logits: Var,
  targets: Tensor,
  opts: LossOptions,
): Tensor {
  const { loss, dlogits } = fused(t.rt, logits.value, targets, {
    rowWeight: opts.rowWeight,
    scale: opts.scale,
    lossAccumulator: opts.metric,
  });
  if (t.needsGrad(logits)) t.record(() => t.addGrad(logits, dlogits));
  else dlogits.release();
  return loss;
}

/**
 * Soft-label cross-entropy: scale / B * sum_i w_i * sum_c -t_ic log softmax(z_i)_c (targets
 * [B, C] need not sum to 1, e.g. MixUp-mixed one-hot rows).
 */
export function softCrossEntropy(
  t: Tape,
  logits: Var,
  targets: Tensor,
  opts: LossOptions = {},
): Tensor {
  return lossOp(t, softCrossEntropyKernel, logits, targets, opts);
}

/** Cross-entropy against class codes `labels` (u32 [B], each below the logits' width). */
export function labelCrossEntropy(
  t: Tape,
  logits: Var,
  labels: Tensor,
  opts: LossOptions = {},
): Tensor {
  return softCrossEntropy(t, logits, oneHot(t.rt, labels, logits.value.cols), opts);
}

/**
 * MixMatch's consistency loss on (pseudo)labelled soft targets: the squared error between
 * softmax(z) and the targets, scale / B * sum_i w_i * sum_c (softmax(z_i)_c - t_ic)^2.
 */
export function consistencyLoss(
  t: Tape,
  logits: Var,
  targets: Tensor,
  opts: LossOptions = {},
): Tensor {
  return lossOp(t, softmaxSquaredError, logits, targets, opts);
}

/**
 * The domain adversary's loss: cross-entropy of its logits against each cell's domain code
 * (u32 [B]). With `rowWeight` = the MixUp plan's `eligibleMean`, rows without a confident
 * pseudolabel weigh 0 and the loss is the mean over the others.
 */
export function adversaryLoss(
  t: Tape,
  domainLogits: Var,
  domains: Tensor,
  opts: LossOptions = {},
): Tensor {
  return labelCrossEntropy(t, domainLogits, domains, opts);
}
