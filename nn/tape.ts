/**
 * Reverse-mode autograd over GPU tensors, micrograd-style but one node per op instead of per
 * scalar. Each op (in `nn/ops.ts`) runs its forward kernels at once and pushes a closure that
 * runs its backward kernels; `Tape.backward` replays the closures in reverse. The classifier,
 * the adversary (through gradient reversal) and input gradients for saliency all come from this
 * one mechanism.
 *
 * Gradients accumulate: the first contribution to a `Var` becomes its gradient tensor, later
 * ones are added into it (kernels take `{ out, accumulate }`). Parameters own a persistent
 * gradient buffer that `zeroGrads` clears once per step, so a training step allocates nothing
 * for them; ops write into it through `Tape.paramSlot`, which lets the first contribution after
 * a clear overwrite instead of adding to zeros (the same values, one read of the buffer less:
 * for W1 that is a pass over 13 MB on Kang).
 */
import { axpy } from "../kernels/activation.ts";
import type { OutOptions } from "../kernels/common.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";

/** A value in the graph: a tensor, and its gradient once backward has reached it. */
export class Var {
  grad: Tensor | null = null;
  constructor(readonly value: Tensor, readonly requiresGrad: boolean) {}
}

/** A trainable parameter: persistent value and gradient buffers, and a name for model files. */
export class Param extends Var {
  override grad: Tensor;
  /** The gradient buffer holds zeros (cleared by `zeroGrads`, nothing added since). */
  gradIsZero = false;
  constructor(readonly name: string, value: Tensor) {
    super(value, true);
    this.grad = value.rt.tensor(value.shape, "f32", `grad of ${name}`);
    value.keep();
    this.grad.keep();
  }
}

/** Records backward closures of ops executed while it is active. */
export class Tape {
  #ops: (() => void)[] = [];
  /** Guided backprop: ReLU backward also zeroes negative incoming gradients (saliency). */
  guided = false;
  /** Whether backward computes parameter gradients (off when only input gradients are wanted). */
  paramGrads = true;

  /** With `enabled` false (inference), ops record nothing and their outputs need no gradient. */
  constructor(readonly rt: Runtime, readonly enabled = true) {}

  /** Whether an op with these inputs must record its backward. */
  needsGrad(...inputs: (Var | null | undefined)[]): boolean {
    return this.enabled && inputs.some((v) => v?.requiresGrad);
  }

  /** Pushes an op's backward closure. */
  record(backward: () => void): void {
    this.#ops.push(backward);
  }

  /** Number of recorded ops (for tests and profiles). */
  get length(): number {
    return this.#ops.length;
  }

  /**
   * Runs every recorded backward in reverse order: the losses of nn/losses.ts seed their logits'
   * gradients, so this differentiates their sum (other outputs: set their `grad` first). The
   * tape is empty afterwards.
   */
  backward(): void {
    const ops = this.#ops;
    this.#ops = [];
    for (let i = ops.length - 1; i >= 0; i--) ops[i]();
  }

  /**
   * Where a kernel should write `v`'s gradient: into the existing gradient with accumulation, or
   * (first contribution) into a new tensor that `setGrad` then adopts.
   */
  gradSlot(v: Var): OutOptions {
    return v.grad ? { out: v.grad, accumulate: true } : {};
  }

  /**
   * Where a kernel should add a contribution to parameter `p`'s gradient: `p.grad`, overwritten
   * when it still holds the zeros `zeroGrads` wrote (x + 0 is x), accumulated otherwise. Call it
   * once per contribution, when recording the kernel that writes it.
   */
  paramSlot(p: Param): { out: Tensor; accumulate: boolean } {
    const accumulate = !p.gradIsZero;
    p.gradIsZero = false;
    return { out: p.grad, accumulate };
  }

  /** Adopts `g` as `v`'s gradient when `v` had none (a result written through `gradSlot`). */
  setGrad(v: Var, g: Tensor): void {
    if (!v.grad) v.grad = g;
    else if (v.grad !== g) throw new Error("setGrad: gradient written outside its slot");
  }

  /** Adds a freshly computed gradient tensor `g` into `v`'s gradient (adopting it if first). */
  addGrad(v: Var, g: Tensor): void {
    if (!v.grad) v.grad = g;
    else axpy(this.rt, 1, g, v.grad);
  }
}

/** Clears the gradient buffers of `params` (start of a step). */
export function zeroGrads(rt: Runtime, params: Param[]): void {
  for (const p of params) {
    rt.fill(p.grad, 0);
    p.gradIsZero = true;
  }
}
