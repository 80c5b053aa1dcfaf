/**
 * Kernel timing with timestamp queries: while profiling, every dispatch gets a compute pass of
 * its own with timestamps written at its start and end (so batching is lost; for development and
 * benchmarks only).
 */
import type { Recorder } from "./recorder.ts";

/** Time spent in one kernel during a profile. */
export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

export class Profiler {
  /** Dispatches one profile can time (two queries each; a query set holds at most 4096). */
  static readonly CAPACITY = 2048;
  #querySet: GPUQuerySet;
  #resolve: GPUBuffer;
  #names: string[] = [];

  constructor(device: GPUDevice) {
    const n = Profiler.CAPACITY;
    this.#querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
    this.#resolve = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /**
   * A new compute pass for one dispatch of `kernel`, timestamped at its start and end; null once
   * the profile is full (later dispatches run untimed).
   */
  timedPass(recorder: Recorder, kernel: string): GPUComputePassEncoder | null {
    const i = this.#names.length;
    if (i >= Profiler.CAPACITY) return null;
    this.#names.push(kernel);
    return recorder.pass({
      timestampWrites: {
        querySet: this.#querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
  }

  /**
   * Records the resolve of every timestamp taken; returns the buffer and byte count to read back
   * (null when nothing was timed).
   */
  resolve(encoder: GPUCommandEncoder): { buffer: GPUBuffer; bytes: number } | null {
    const n = this.#names.length;
    if (n === 0) return null;
    encoder.resolveQuerySet(this.#querySet, 0, 2 * n, this.#resolve, 0);
    return { buffer: this.#resolve, bytes: 16 * n };
  }

  /** Milliseconds and calls per kernel from the resolved timestamps, slowest first. */
  totals(raw: Uint32Array): KernelTime[] {
    const totals = new Map<string, { calls: number; ms: number }>();
    this.#names.forEach((name, i) => {
      // u64 nanosecond timestamps as (lo, hi) u32 pairs.
      const t0 = raw[4 * i] + raw[4 * i + 1] * 2 ** 32;
      const t1 = raw[4 * i + 2] + raw[4 * i + 3] * 2 ** 32;
      const e = totals.get(name) ?? { calls: 0, ms: 0 };
      e.calls++;
      e.ms += Math.max(0, t1 - t0) / 1e6;
      totals.set(name, e);
    });
    return [...totals].map(([kernel, t]) => ({ kernel, ...t })).sort((a, b) => b.ms - a.ms);
  }

  destroy(): void {
    this.#querySet.destroy();
    this.#resolve.destroy();
  }
}
