/**
 * Host-side batching: labelled splits and the two minibatch streams of a training epoch (the GPU
 * side of a batch is `CsrUploadArea`, nn/gpu_csr.ts).
 */
import type { Rng } from "../util/rng.ts";

/** Indices (into the labelled cells) of the three labelled splits. */
export interface LabelledSplits {
  train: number[];
  earlyStopping: number[];
  validation: number[];
}

/**
 * Splits labelled cells (given by their class codes) into train / early-stopping / validation,
 * stratified by class so rare classes are spread over the splits in proportion and a class
 * with a single cell stays in training. Fractions as in the original: 10% held out for final
 * validation, then 10% of the rest for early stopping (81 / 9 / 10).
 */
export function splitLabelled(
  classOf: ArrayLike<number>,
  validationFraction: number,
  earlyStoppingFraction: number,
  rng: Rng,
): LabelledSplits {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < classOf.length; i++) {
    const c = classOf[i];
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(i);
  }
  const out: LabelledSplits = { train: [], earlyStopping: [], validation: [] };
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const cells = rng.shuffle(byClass.get(c)!);
    // Rounding per class could empty the training split of a tiny class: keep one there.
    const nVal = Math.min(Math.round(cells.length * validationFraction), cells.length - 1);
    const rest = cells.length - nVal;
    const nStop = Math.min(Math.round(rest * earlyStoppingFraction), rest - 1);
    out.validation.push(...cells.slice(0, nVal));
    out.earlyStopping.push(...cells.slice(nVal, nVal + nStop));
    out.train.push(...cells.slice(nVal + nStop));
  }
  return out;
}

/** Most cells an early-stopping or validation split keeps (the rest join training). */
export const HELD_OUT_CAP = 10_000;

/**
 * `cells` cut to `cap` by an even stride (the splits are grouped by class, so every class keeps
 * its share), and the cells left out; unchanged (and nothing left out) at or below `cap`.
 */
export function capHeldOut(cells: number[], cap: number): [number[], number[]] {
  if (cells.length <= cap) return [cells, []];
  const keep = new Uint8Array(cells.length);
  for (let j = 0; j < cap; j++) keep[Math.floor(j * cells.length / cap)] = 1;
  return [cells.filter((_, i) => keep[i]), cells.filter((_, i) => !keep[i])];
}

/**
 * The labelled batches of one epoch: a shuffled pass in batches of `batchSize`, the last
 * incomplete batch dropped (as the original). With fewer cells than one batch, one batch of
 * all of them. With class balancing, the pass is `n` draws with replacement weighted
 * 1/count(class).
 */
export function labelledEpoch(
  cells: number[],
  batchSize: number,
  rng: Rng,
  balance?: { classOf: ArrayLike<number> },
): number[][] {
  let order: number[];
  if (balance) {
    const counts = new Map<number, number>();
    for (const i of cells) {
      counts.set(balance.classOf[i], (counts.get(balance.classOf[i]) ?? 0) + 1);
    }
    const cum: number[] = [];
    let total = 0;
    for (const i of cells) cum.push(total += 1 / counts.get(balance.classOf[i])!);
    order = cells.map(() => {
      const u = rng.uniform() * total;
      let lo = 0;
      let hi = cum.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      return cells[lo];
    });
  } else {
    order = rng.shuffle([...cells]);
  }
  if (order.length <= batchSize) return [order];
  const batches: number[][] = [];
  for (let s = 0; s + batchSize <= order.length; s += batchSize) {
    batches.push(order.slice(s, s + batchSize));
  }
  return batches;
}

/**
 * The unlabelled (target) stream: shuffled passes over the target cells, concatenated without
 * end, so batches continue across epochs. A target smaller than a batch simply wraps (the
 * original waits forever for a full batch there).
 */
export class TargetStream {
  #order: number[] = [];
  #pos = 0;
  constructor(readonly cells: number[], readonly rng: Rng) {
    if (cells.length === 0) throw new Error("TargetStream: no target cells");
  }

  /** The next `n` target cells. */
  next(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (this.#pos >= this.#order.length) {
        this.#order = this.rng.shuffle([...this.cells]);
        this.#pos = 0;
      }
      out.push(this.#order[this.#pos++]);
    }
    return out;
  }
}
