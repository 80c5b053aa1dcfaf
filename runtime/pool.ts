/**
 * The buffer pool: storage buffers in size buckets, reused instead of created, so a training step
 * allocates nothing after warm-up. A buffer returned here may be handed out by the very next
 * `acquire`; that is safe because WebGPU runs dispatches and submissions in recording order.
 */
import type { RuntimeStats } from "./stats.ts";

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to one of four buckets per power of two (at most 25% waste). */
export function bucketBytes(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (n <= 4096) return Math.ceil(n / 256) * 256;
  const pow = 2 ** Math.floor(Math.log2(n));
  const step = pow / 4;
  return Math.ceil(n / step) * step;
}

/** Free storage buffers by bucket size. */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();

  constructor(readonly device: GPUDevice, readonly stats: RuntimeStats) {}

  /** A buffer of at least `bytes` (its bucket's size): a free one if any, else a new one. */
  acquire(bytes: number): GPUBuffer {
    const size = bucketBytes(bytes);
    const hit = this.#free.get(size)?.pop();
    if (hit) return hit;
    this.stats.buffersCreated++;
    this.stats.bytesHeld += size;
    return this.device.createBuffer({ size, usage: STORAGE_USAGE });
  }

  /** Makes `buffer` available to the next `acquire` of its bucket. */
  recycle(buffer: GPUBuffer): void {
    let list = this.#free.get(buffer.size);
    if (!list) this.#free.set(buffer.size, list = []);
    list.push(buffer);
  }

  /** Destroys every free buffer (buffers in use stay). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.stats.bytesHeld -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }
}
