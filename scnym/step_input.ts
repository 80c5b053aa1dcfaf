/**
 * How a training step feeds its batch to the input layer, the widest product of the step:
 * over the stored entries in f32 ("sparse"), the same with W and dY read as bf16
 * ("sparse-bf16", see kernels/bf16.ts), or over a densified batch ("dense"). "auto" picks by the
 * data's stored fraction and the adapter.
 */
import { type Csr, nnz } from "../data/csr.ts";
import { CsrUploadArea, densify, type GpuCsr } from "../nn/gpu_csr.ts";
import type { ScnymModel } from "../nn/model.ts";
import type { Bf16Operands } from "../nn/ops.ts";
import { type Param, type Tape, Var } from "../nn/tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";

/** The input layer's product (see the module comment). */
export type InputLayout = "auto" | "sparse" | "sparse-bf16" | "dense";

/**
 * Stored fraction of X above which the input layer multiplies a densified batch with the tiled
 * dense kernel instead of walking the stored entries. A stored entry costs the sparse kernel one
 * loaded W value per multiply-add, the tiled kernel reuses each loaded value many times; on
 * llvmpipe a stored entry costs ~5-8 dense elements (`deno task bench`: on Kang's 1,300 top
 * genes, 32% stored, the layer's two products take 22 ms per step densely against 56 ms sparse;
 * on Kang's 13,215 genes, 5% stored, the dense ones would do 6.9 GFLOP, ~3.5x the sparse time).
 * Below 512 genes with ascending columns both products add the same terms in the same order.
 */
export const DENSE_INPUT_DENSITY = 0.15;

/** True when X's stored fraction makes the dense input product the faster one. */
export function prefersDenseInput(X: Csr): boolean {
  return nnz(X) > DENSE_INPUT_DENSITY * X.nRows * X.nCols;
}

/**
 * W1 size (f32 bytes) from which "auto" reads bf16 operands on a software adapter: past the
 * caches, where the sparse products are the largest part of a step (Kang, 13,215 genes: 13.5 MB).
 * Below it they are a small part and bf16 would add rounding for little time.
 */
export const BF16_MIN_W1_BYTES = 4 << 20;

/**
 * "auto" made concrete: dense above `DENSE_INPUT_DENSITY`; below it, bf16 operands on software
 * adapters when W1 is at least `BF16_MIN_W1_BYTES`, where every loaded component costs a scalar
 * load per SIMD lane and bf16 reads half the components (Kang on llvmpipe, `deno run -A
 * bench/train_step.ts --input-layout ...`: the forward product 1.7x, the weight gradient 1.5x
 * faster; same accuracy, `bench/accuracy.ts`), f32 otherwise and on GPUs, where loads are cheap.
 */
export function resolveInputLayout(
  layout: InputLayout,
  X: Csr,
  rt: Runtime,
  hidden: number,
): Exclude<InputLayout, "auto"> {
  if (layout !== "auto") return layout;
  if (prefersDenseInput(X)) return "dense";
  const large = X.nCols * hidden * 4 >= BF16_MIN_W1_BYTES;
  return rt.gpu.isFallback && large && hidden % 8 === 0 ? "sparse-bf16" : "sparse";
}

/** A step's input: the batch upload area and the input layer in the chosen layout. */
export class StepInput {
  readonly layout: Exclude<InputLayout, "auto">;
  readonly #area: CsrUploadArea;
  readonly #bf16: Bf16Operands | null = null;

  /** `maxRows`: the most rows a batch has (the bf16 dY room is sized for it). */
  constructor(
    readonly rt: Runtime,
    model: ScnymModel,
    X: Csr,
    layout: InputLayout,
    maxRows: number,
  ) {
    const hidden = model.shape.hidden;
    this.layout = resolveInputLayout(layout, X, rt, hidden);
    // The dense weight gradient reads the densified batch: no CSC view to build and upload.
    this.#area = new CsrUploadArea(rt, this.layout !== "dense");
    if (this.layout === "sparse-bf16") {
      const W1 = model.hiddenLayers[0].W;
      const room = rt.tensor([W1.value.size / 2], "u32", "bf16 W1").keep();
      this.#bf16 = {
        w: { rows: W1.value.rows, cols: W1.value.cols, packed: room },
        dy: rt.tensor([Math.ceil(maxRows * hidden / 2)], "u32", "bf16 dY").keep(),
      };
      this.bf16Copies.set(W1, room);
    }
  }

  /**
   * The bf16 copies of parameters the optimizer keeps current (W1's with "sparse-bf16"): hand
   * them to `Adadelta`, which writes them when it starts and with every update.
   */
  readonly bf16Copies = new Map<Param, Tensor>();

  /** Uploads the batch's rows (valid until the next upload). */
  upload(rows: Csr): GpuCsr {
    return this.#area.upload(rows);
  }

  /** The first Linear on `batch`, recorded on `tape`. */
  forward(tape: Tape, model: ScnymModel, batch: GpuCsr): Var {
    if (this.layout === "dense") {
      return model.inputLayer(tape, new Var(densify(this.rt, batch), false));
    }
    return model.inputLayer(tape, batch, { bf16: this.#bf16 ?? undefined });
  }

  /** Frees the upload area and the bf16 rooms. */
  release(): void {
    this.#area.release();
    if (this.#bf16) { for (const t of [this.#bf16.w.packed, this.#bf16.dy]) t.release(); }
  }
}
