/**
 * Adadelta over a list of parameters, PyTorch semantics (`torch.optim.Adadelta`, coupled L2
 * weight decay), with its two running averages per parameter kept on the GPU.
 */
import { packBf16 } from "../kernels/bf16.ts";
import { adadeltaStep } from "../kernels/optim.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import type { Param } from "./tape.ts";

/** Adadelta hyper-parameters. */
export interface AdadeltaOptions {
  lr: number;
  rho: number;
  eps: number;
  weightDecay: number;
}

/** One optimizer over every parameter of the classifier and the adversary. */
export class Adadelta {
  #state: { p: Param; sqAvg: Tensor; accDelta: Tensor }[];

  /**
   * `bf16Copies`: parameters whose bf16 copy (kernels/bf16.ts) is kept in the given u32 tensor:
   * written now and by every update, so it always matches the parameter.
   */
  constructor(
    readonly rt: Runtime,
    params: Param[],
    readonly opts: AdadeltaOptions,
    readonly bf16Copies: ReadonlyMap<Param, Tensor> = new Map(),
  ) {
    this.#state = params.map((p) => ({
      p,
      sqAvg: rt.full(p.value.shape, 0, "f32", "adadelta state").keep(),
      accDelta: rt.full(p.value.shape, 0, "f32", "adadelta state").keep(),
    }));
    for (const [p, copy] of bf16Copies) packBf16(rt, p.value, copy);
  }

  /** Records one update of every parameter from its accumulated gradient. */
  step(): void {
    for (const s of this.#state) {
      adadeltaStep(this.rt, s.p.value, s.p.grad, s.sqAvg, s.accDelta, {
        ...this.opts,
        bf16Copy: this.bf16Copies.get(s.p),
      });
    }
  }

  /** Frees the optimizer state. */
  destroy(): void {
    for (const s of this.#state) {
      s.sqAvg.release();
      s.accDelta.release();
    }
  }
}
