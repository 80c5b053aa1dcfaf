/**
 * The tensor handle: a shape and dtype over a pooled GPU buffer, or a view sharing another
 * tensor's buffer. Lifetime (scopes, keep, release) is the runtime's business; a tensor only
 * knows whether it is still alive and refuses to be used once it is not.
 */
import { ScnymError } from "../util/errors.ts";
import type { Runtime } from "./runtime.ts";

/** Element type of a tensor. */
export type DType = "f32" | "u32" | "i32";

/** The host array type for a dtype. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** The typed-array class holding `dtype` elements on the host. */
export function arrayTypeOf(
  dtype: DType,
): Float32ArrayConstructor | Uint32ArrayConstructor | Int32ArrayConstructor {
  return dtype === "f32" ? Float32Array : dtype === "u32" ? Uint32Array : Int32Array;
}

/** A dense, row-major f32/u32/i32 array living in a GPU buffer. */
export class Tensor {
  #released = false;
  /** @internal use `Runtime.tensor`/`Runtime.upload` to create tensors. */
  constructor(
    readonly rt: Runtime,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** The tensor this one views (shares the buffer with); views never own their buffer. */
    readonly base: Tensor | null = null,
  ) {}

  /**
   * A view of the first `prod(shape)` elements with another shape, sharing the buffer: e.g. the
   * first B rows of a [2B, F] matrix. Valid while this tensor is alive; releasing it is a no-op.
   */
  view(shape: readonly number[]): Tensor {
    this.assertAlive("view");
    const size = shape.reduce((a, b) => a * b, 1);
    if (size > this.size) {
      throw new ScnymError(`view: [${shape.join("x")}] is larger than ${this.describe()}`);
    }
    return new Tensor(this.rt, this.buffer, shape, this.dtype, this.base ?? this);
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** First dimension (rows of a matrix). */
  get rows(): number {
    return this.shape[0];
  }
  /** Product of all dimensions but the first (columns of a matrix). */
  get cols(): number {
    return this.shape.slice(1).reduce((a, b) => a * b, 1);
  }
  /** True once this tensor (or the one it views) went back to the pool. */
  get released(): boolean {
    return this.#released || (this.base?.released ?? false);
  }

  /**
   * Throws a `ScnymError` naming `op` and the tensor's `role` if it was released: its buffer may
   * already hold another tensor's data.
   */
  assertAlive(op: string, role = "tensor"): void {
    if (this.released) throw new ScnymError(`${op}: ${role} ${this.describe()} was released`);
  }

  /** Returns the buffer to the pool. The tensor must not be used afterwards; twice is a no-op. */
  release(): void {
    if (this.#released || this.base) return;
    this.#released = true;
    this.rt._recycle(this);
  }

  /**
   * Takes the tensor out of every enclosing scope: the caller now owns it and must `release()`
   * it. On a view this keeps the tensor it views (`base`), which is the one to release.
   */
  keep(): this {
    this.assertAlive("keep");
    this.rt._unscope(this.base ?? this);
    return this;
  }

  /** Copies the tensor to the host. Flushes pending work; counts as one readback. */
  read(): Promise<Float32Array | Uint32Array | Int32Array> {
    return this.rt.read(this);
  }

  /** A readable description for error messages, e.g. `f32[256x2000]`. */
  describe(): string {
    return `${this.dtype}[${this.shape.join("x")}]`;
  }
}
