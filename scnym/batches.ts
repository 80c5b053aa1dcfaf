/**
 * Host-side batching: labelled splits, the two minibatch streams of a training epoch, and a
 * persistent GPU upload area so that a step's batch reuses the same buffers every time.
 */
import { cscView, type Csr, nnz } from "../data/csr.ts";
import type { GpuCsr } from "../kernels/sparse.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
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

/**
 * A CSR batch area on the GPU that keeps its buffers between steps (growing when a batch needs
 * more room), so a training step's upload allocates nothing in the steady state.
 */
export class CsrUploadArea {
  #indptr: Tensor | null = null;
  #indices: Tensor | null = null;
  #data: Tensor | null = null;
  #colptr: Tensor | null = null;
  #rowOf: Tensor | null = null;
  #posOf: Tensor | null = null;

  constructor(readonly rt: Runtime, readonly withCsc: boolean) {}

  #room(t: Tensor | null, n: number, dtype: "u32" | "f32"): Tensor {
    if (t && t.size >= n) return t;
    t?.release();
    // Grow by half again, so slowly drifting batch sizes settle quickly.
    return this.rt.tensor([Math.max(16, Math.ceil(n * 1.5))], dtype, "batch upload").keep();
  }

  /** Uploads `m` (with its CSC view if asked) into the area; valid until the next upload. */
  upload(m: Csr): GpuCsr {
    const n = nnz(m);
    const rt = this.rt;
    this.#indptr = this.#room(this.#indptr, m.nRows + 1, "u32");
    this.#indices = this.#room(this.#indices, n, "u32");
    this.#data = this.#room(this.#data, n, "f32");
    rt.write(this.#indptr, m.indptr.subarray(0, m.nRows + 1), "batch upload", 0);
    rt.write(this.#indices, m.indices.subarray(0, n), "batch upload", 0);
    rt.write(this.#data, m.data.subarray(0, n), "batch upload", 0);
    const x: GpuCsr = {
      nRows: m.nRows,
      nCols: m.nCols,
      nnz: n,
      indptr: this.#indptr,
      indices: this.#indices,
      data: this.#data,
    };
    if (this.withCsc) {
      const v = cscView(m);
      this.#colptr = this.#room(this.#colptr, m.nCols + 1, "u32");
      this.#rowOf = this.#room(this.#rowOf, n, "u32");
      this.#posOf = this.#room(this.#posOf, n, "u32");
      rt.write(this.#colptr, v.colptr, "batch upload", 0);
      rt.write(this.#rowOf, v.rowOf, "batch upload", 0);
      rt.write(this.#posOf, v.posOf, "batch upload", 0);
      x.csc = { colptr: this.#colptr, rowOf: this.#rowOf, posOf: this.#posOf };
    }
    return x;
  }

  /** Frees the area's buffers. */
  release(): void {
    for (
      const t of [this.#indptr, this.#indices, this.#data, this.#colptr, this.#rowOf, this.#posOf]
    ) {
      t?.release();
    }
  }
}
