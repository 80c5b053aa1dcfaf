/**
 * The uniform arena: every dispatch's parameters in one buffer, one aligned slot each, bound with
 * a dynamic offset. The host copy is written to the GPU once per flush, just before the submit
 * (`queue.writeBuffer` takes effect before the commands submitted after it), instead of one
 * buffer or one write per dispatch.
 */
import type { Kernel } from "./kernel.ts";

export class UniformArena {
  /** The GPU buffer every bind group uses at binding 0. */
  readonly buffer: GPUBuffer;
  #host: ArrayBuffer;
  #u32: Uint32Array;
  #i32: Int32Array;
  #f32: Float32Array;
  #used = 0;
  /** Bytes per slot: the device's dynamic-offset alignment (at least 256). */
  readonly #slot: number;

  constructor(device: GPUDevice, bytes: number) {
    this.#slot = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.buffer = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#host = new ArrayBuffer(bytes);
    this.#u32 = new Uint32Array(this.#host);
    this.#i32 = new Int32Array(this.#host);
    this.#f32 = new Float32Array(this.#host);
  }

  /** True when one more slot does not fit until the next `upload`. */
  get full(): boolean {
    return this.#used + this.#slot > this.#host.byteLength;
  }

  /** Writes `kernel`'s parameters into the next slot; returns the slot's byte offset. */
  push(kernel: Kernel, params: Record<string, number>): number {
    const offset = this.#used;
    const base = offset / 4;
    kernel.paramNames.forEach((name, i) => {
      const v = params[name];
      if (v === undefined || !Number.isFinite(v)) {
        throw new Error(`${kernel.name}: parameter ${name} is ${v}`);
      }
      const t = kernel.paramTypes[i];
      if (t === "f32") this.#f32[base + i] = v;
      else if (t === "i32") this.#i32[base + i] = v;
      else this.#u32[base + i] = v >>> 0;
    });
    this.#used += this.#slot;
    return offset;
  }

  /** Writes the used slots to the GPU and starts over; call just before submitting. */
  upload(queue: GPUQueue): void {
    if (this.#used > 0) queue.writeBuffer(this.buffer, 0, this.#host, 0, this.#used);
    this.#used = 0;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}
