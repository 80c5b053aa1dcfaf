/**
 * Named running sums on the GPU (losses, validation hits): one small buffer that kernels add
 * into during an epoch and the host reads once at its end, so training never waits on the GPU
 * mid-epoch.
 */
import { countCorrect as countCorrectKernel } from "../kernels/labels.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";

/** Where a kernel adds a metric: element `index` of the metrics buffer. */
export interface MetricSlot {
  tensor: Tensor;
  index: number;
}

/** One GPU buffer of named f32 sums, zeroed at creation and by `reset`. */
export class Metrics<Name extends string> {
  readonly tensor: Tensor;

  constructor(readonly rt: Runtime, readonly names: readonly Name[]) {
    this.tensor = rt.full([names.length], 0, "f32", "metrics").keep();
  }

  /** The slot of metric `name`, for the kernels that accumulate into it. */
  slot(name: Name): MetricSlot {
    return { tensor: this.tensor, index: this.names.indexOf(name) };
  }

  /** Every metric's current sum (one readback). */
  async read(): Promise<Record<Name, number>> {
    const values = await this.tensor.read();
    return Object.fromEntries(this.names.map((n, i) => [n, values[i]])) as Record<Name, number>;
  }

  /** Records zeroing every sum. */
  reset(): void {
    this.rt.fill(this.tensor, 0);
  }

  /** Frees the buffer. */
  release(): void {
    this.tensor.release();
  }
}

/**
 * Adds to `metric` the number of rows of `logits` [n, C] whose argmax (first on ties) equals
 * `labels` (u32 [n]): accuracy without a readback.
 */
export function countCorrect(rt: Runtime, logits: Tensor, labels: Tensor, metric: MetricSlot) {
  countCorrectKernel(rt, logits, labels, metric.tensor, metric.index);
}
