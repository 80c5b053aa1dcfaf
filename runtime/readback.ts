/**
 * Reading GPU buffers back to the host. Several buffers are read with one submission and one
 * wait: each is copied into a mappable staging buffer, the copies are submitted together, and all
 * stagings are mapped at once. Staging buffers are reused across reads.
 */
import { ScnymError } from "../util/errors.ts";
import { bucketBytes } from "./pool.ts";
import type { DeviceHealth } from "./device.ts";
import type { Recorder } from "./recorder.ts";
import type { RuntimeStats } from "./stats.ts";

/** A buffer to read: its first `bytes`, and a label for errors (e.g. `f32[4x3]`). */
export interface ReadSource {
  buffer: GPUBuffer;
  bytes: number;
  label: string;
}

export class Readback {
  #staging: GPUBuffer[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly health: DeviceHealth,
    readonly stats: RuntimeStats,
    readonly recorder: Recorder,
    /** Submits everything recorded (the runtime's flush). */
    readonly flush: () => void,
  ) {}

  /** The contents of every source, after one flush and one wait. */
  async read(sources: readonly ReadSource[]): Promise<ArrayBuffer[]> {
    const staged = sources.map(({ buffer, bytes }) => {
      if (bytes === 0) return null;
      const staging = this.#take(bytes);
      this.recorder.encoder().copyBufferToBuffer(buffer, 0, staging, 0, bytes);
      return staging;
    });
    if (staged.every((s) => s === null)) return sources.map(() => new ArrayBuffer(0));
    this.flush();
    this.stats.readbacks++;
    try {
      await this.health.race(
        Promise.all(staged.map((s, i) => s?.mapAsync(GPUMapMode.READ, 0, sources[i].bytes))),
      );
    } catch (e) {
      throw this.health.failure ?? new ScnymError(
        `GPU readback of ${sources.map((s) => s.label).join(", ")} failed ` +
          `(${(e as Error).message}); the GPU device may have been lost or reset`,
      );
    }
    this.health.check();
    return staged.map((staging, i) => {
      if (!staging) return new ArrayBuffer(0);
      const data = staging.getMappedRange(0, sources[i].bytes).slice(0);
      staging.unmap();
      this.#staging.push(staging);
      return data;
    });
  }

  /** A free staging buffer of at least `bytes`, or a new one. */
  #take(bytes: number): GPUBuffer {
    const i = this.#staging.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.#staging.splice(i, 1)[0];
    return this.device.createBuffer({
      size: bucketBytes(bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  destroy(): void {
    for (const b of this.#staging) b.destroy();
    this.#staging = [];
  }
}
