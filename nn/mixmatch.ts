/**
 * The MixMatch pieces of a training step that are not differentiated (the tape-side MixUp is
 * `mix` in nn/ops.ts): augmenting labelled rows of a sparse batch, and the MixUp pairing with
 * its mixed targets built from sharpened teacher predictions and one-hot labels.
 */
import { augmentLog1pDrop } from "../kernels/augment.ts";
import { oneHot } from "../kernels/labels.ts";
import { type MixPlan, mixRows, mixupPlan } from "../kernels/mixup.ts";
import { sharpen, softmax } from "../kernels/softmax.ts";
import type { GpuCsr } from "../kernels/sparse.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";

export type { MixPlan } from "../kernels/mixup.ts";

/** A draw's randomness: the in-shader generator at (seed, stream). */
export interface Draw {
  seed: number;
  stream: number;
}

/**
 * log1p_drop augmentation, in place on rows [rowStart, rowEnd) of a log1p-valued batch: drop
 * each count with probability `p`, keep the cell's library size (see kernels/augment.ts).
 */
export function augment(
  rt: Runtime,
  batch: GpuCsr,
  rowStart: number,
  rowEnd: number,
  opts: Draw & { p: number },
): void {
  augmentLog1pDrop(rt, batch.indptr, batch.data, rowStart, rowEnd, opts);
}

/** Options of `mixMatchTargets`: MixMatch's sharpening and MixUp settings. */
export interface MixMatchOptions extends Draw {
  /** Sharpening temperature of the teacher's probabilities (0.5 in scNym). */
  temperature: number;
  /** MixUp's Beta(alpha, alpha). */
  alpha: number;
  /** Target rows whose teacher confidence is below this are left out of mixing. */
  minConfidence: number;
}

/**
 * MixMatch targets of a pool of nU target rows then nX labelled rows: the teacher's sharpened
 * probabilities (`teacherLogits` [nU, C]) above one-hot `labels` (u32 [nX]), paired and mixed by
 * one MixUp draw. `order` (u32 [nU + nX]) is a random permutation of the pool from the caller's
 * seeded generator. Returns the plan (mix the features with it too) and the mixed targets split
 * into the target rows (`top`) and the labelled rows (`bottom`).
 */
export function mixMatchTargets(
  rt: Runtime,
  teacherLogits: Tensor,
  labels: Tensor,
  order: Tensor,
  opts: MixMatchOptions,
): { plan: MixPlan; targets: { top: Tensor; bottom: Tensor } } {
  const [nU, C] = [teacherLogits.rows, teacherLogits.cols];
  const nX = labels.size;
  const sharp = sharpen(rt, softmax(rt, teacherLogits), opts.temperature);
  const pool = rt.tensor([nU + nX, C], "f32", "targets");
  rt.copy(sharp.probs, pool.view([nU, C]));
  oneHot(rt, labels, C, { out: pool, rowOffset: nU });
  const plan = mixupPlan(rt, sharp.confidence, order, nU, nX, {
    alpha: opts.alpha,
    minConfidence: opts.minConfidence,
    seed: opts.seed,
    stream: opts.stream,
  });
  return { plan, targets: mixRows(rt, pool, plan, nU) };
}
