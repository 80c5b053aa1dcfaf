/**
 * Validation during training: eval-mode passes over held-out labelled cells, in chunks, adding
 * the mean cross-entropy and the number of correct predictions into the run's metrics (read with
 * the epoch's other sums, so validation costs no extra readback).
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { CsrUploadArea } from "../nn/gpu_csr.ts";
import { labelCrossEntropy } from "../nn/losses.ts";
import { countCorrect } from "../nn/metrics.ts";
import type { ScnymModel } from "../nn/model.ts";
import { Tape } from "../nn/tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { EVAL_CHUNK, type TrainingMetrics } from "./types.ts";

/** Records validation passes of a model; owns its upload buffers. */
export class Validation {
  readonly #area: CsrUploadArea;
  readonly #labels: Tensor;

  constructor(
    readonly rt: Runtime,
    readonly model: ScnymModel,
    readonly X: Csr,
    /** Class code per cell. */
    readonly classOf: Int32Array,
    readonly metrics: TrainingMetrics,
  ) {
    this.#area = new CsrUploadArea(rt, false);
    this.#labels = rt.tensor([EVAL_CHUNK], "u32", "labels").keep();
  }

  /** Records passes over `cells`, adding their mean loss to `valLoss` and hits to `valHits`. */
  record(cells: number[]): void {
    const rt = this.rt;
    for (let a = 0; a < cells.length; a += EVAL_CHUNK) {
      const chunk = cells.slice(a, a + EVAL_CHUNK);
      const x = this.#area.upload(selectRows(this.X, chunk));
      rt.write(this.#labels, Uint32Array.from(chunk, (i) => this.classOf[i]), "labels", 0);
      rt.scope(() => {
        const off = new Tape(rt, false);
        const { logits } = this.model.evaluate(off, x);
        const labels = this.#labels.view([chunk.length]);
        labelCrossEntropy(off, logits, labels, {
          scale: chunk.length / cells.length,
          metric: this.metrics.slot("valLoss"),
        });
        countCorrect(rt, logits.value, labels, this.metrics.slot("valHits"));
      });
      rt.flush();
    }
  }

  /** Frees the upload buffers. */
  release(): void {
    this.#area.release();
    this.#labels.release();
  }
}
