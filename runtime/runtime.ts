/**
 * The tensor runtime: a facade over the device and its parts, each in its own module: tensors
 * (`tensor.ts`), the buffer pool (`pool.ts`) and scopes (`scopes.ts`), the command recorder that
 * batches every dispatch until a readback or an explicit `flush` needs them run (`recorder.ts`),
 * the pipeline and bind-group caches (`pipelines.ts`), the uniform arena (`uniforms.ts`),
 * readback (`readback.ts`) and the kernel profiler (`profiler.ts`).
 *
 * Ordering rules that keep this correct without fences:
 * - All dispatches go into one open compute pass; WebGPU orders dispatches within a pass and
 *   submissions on the queue, so a buffer released to the pool can be reused by the next op.
 * - `queue.writeBuffer` takes effect before any *unsubmitted* commands, so `write` into an
 *   existing tensor flushes first when commands are pending.
 * - Uniform parameters live in one arena buffer written once per flush, just before the submit.
 */
import { ScnymError } from "../util/errors.ts";
import { DeviceHealth, type Gpu, requestGpu } from "./device.ts";
import { defineKernel, type Kernel } from "./kernel.ts";
import { PipelineCache } from "./pipelines.ts";
import { BufferPool } from "./pool.ts";
import { type KernelTime, Profiler } from "./profiler.ts";
import { Readback } from "./readback.ts";
import { Recorder } from "./recorder.ts";
import { ScopeStack } from "./scopes.ts";
import { emptyStats, type RuntimeStats } from "./stats.ts";
import { arrayTypeOf, type DType, Tensor, type TypedArrayFor } from "./tensor.ts";
import { UniformArena } from "./uniforms.ts";

export { bucketBytes } from "./pool.ts";
export type { KernelTime } from "./profiler.ts";
export type { RuntimeStats } from "./stats.ts";
export { type DType, Tensor } from "./tensor.ts";

/** Options for creating a runtime. */
export interface RuntimeOptions {
  /** Reuse an existing adapter/device instead of requesting one. */
  gpu?: Gpu;
  /** Bytes of uniform arena before a forced flush (default 1 MiB). */
  uniformArenaBytes?: number;
}

/** Owns a GPUDevice and everything allocated on it. */
export class Runtime {
  readonly gpu: Gpu;
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly stats: RuntimeStats = emptyStats();

  #health: DeviceHealth;
  #pool: BufferPool;
  #scopes = new ScopeStack();
  #recorder: Recorder;
  #uniforms: UniformArena;
  #pipelines: PipelineCache;
  #readback: Readback;
  #profiler: Profiler | null = null;

  private constructor(gpu: Gpu, opts: RuntimeOptions) {
    this.gpu = gpu;
    this.device = gpu.device;
    this.limits = gpu.device.limits;
    this.#health = new DeviceHealth(this.device);
    this.#pool = new BufferPool(this.device, this.stats);
    this.#recorder = new Recorder(this.device);
    this.#uniforms = new UniformArena(this.device, opts.uniformArenaBytes ?? 1 << 20);
    this.#pipelines = new PipelineCache(
      this.device,
      this.#health,
      this.stats,
      this.#uniforms.buffer,
    );
    this.#readback = new Readback(
      this.device,
      this.#health,
      this.stats,
      this.#recorder,
      () => this.flush(),
    );
  }

  /** Requests a device (or wraps `opts.gpu`) and returns a runtime on it. */
  static async create(opts: RuntimeOptions = {}): Promise<Runtime> {
    return new Runtime(opts.gpu ?? await requestGpu(), opts);
  }

  // ---------------------------------------------------------------- tensors

  /** A new tensor of `shape` with undefined contents. `op` names the caller for errors. */
  tensor(shape: readonly number[], dtype: DType = "f32", op = "tensor"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new ScnymError(`${op}: invalid shape [${shape.join(", ")}]`);
      }
    }
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    const max = this.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new ScnymError(
        `${op}: tensor ${dtype}[${shape.join("x")}] needs ${bytes} bytes, over this adapter's ` +
          `maxStorageBufferBindingSize of ${max} bytes (${this.gpu.description})`,
      );
    }
    const t = new Tensor(this, this.#pool.acquire(bytes), shape, dtype);
    this.#scopes.adopt(t);
    return t;
  }

  /** A new tensor holding `data` (uploaded now). */
  upload<D extends DType = "f32">(
    data: ArrayLike<number> | TypedArrayFor<D>,
    shape: readonly number[] = [data.length],
    dtype?: D,
    op = "upload",
  ): Tensor {
    const dt: DType = dtype ??
      (data instanceof Uint32Array ? "u32" : data instanceof Int32Array ? "i32" : "f32");
    const t = this.tensor(shape, dt, op);
    this.write(t, data, op);
    return t;
  }

  /**
   * Overwrites `t` (from element `offset` on) with `data`. Without an offset the element counts
   * must match. Flushes first if work is pending (see the ordering rules above).
   */
  write(t: Tensor, data: ArrayLike<number>, op = "write", offset?: number): void {
    t.assertAlive(op, "target");
    const fits = offset === undefined
      ? data.length === t.size
      : offset >= 0 && offset + data.length <= t.size;
    if (!fits) {
      throw new ScnymError(
        `${op}: ${data.length} values at offset ${offset ?? 0} for tensor ${t.describe()}`,
      );
    }
    if (data.length === 0) return;
    const Typed = arrayTypeOf(t.dtype);
    const typed = data instanceof Typed ? data : Typed.from(data);
    if (this.#recorder.pending) this.flush();
    this.device.queue.writeBuffer(t.buffer, (offset ?? 0) * 4, typed as Float32Array<ArrayBuffer>);
  }

  /** A tensor filled with `value`, on the GPU (no upload of the whole array). */
  full(shape: readonly number[], value: number, dtype: DType = "f32", op = "full"): Tensor {
    const t = this.tensor(shape, dtype, op);
    this.fill(t, value);
    return t;
  }

  /** Records a fill of `t` with `value` (clearBuffer for zero, a tiny kernel otherwise). */
  fill(t: Tensor, value: number): void {
    t.assertAlive("fill");
    if (t.size === 0) return;
    if (value === 0) {
      this.#recorder.encoder().clearBuffer(t.buffer, 0, t.size * 4);
      return;
    }
    this.dispatch(FILL_KERNEL, { out: t }, { n: t.size, bits: toBits(value, t.dtype) }, [
      ...this.groups1d(t.size, 256),
    ]);
  }

  /**
   * Records a copy of all of `src` into `dst`: with `dstOffset` (elements), into that part of a
   * larger `dst`; otherwise the element counts must match.
   */
  copy(src: Tensor, dst: Tensor, dstOffset?: number): void {
    src.assertAlive("copy", "source");
    dst.assertAlive("copy", "destination");
    const fits = dstOffset === undefined
      ? src.size === dst.size
      : dstOffset >= 0 && dstOffset + src.size <= dst.size;
    if (!fits || src.dtype !== dst.dtype) {
      throw new ScnymError(
        `copy: ${src.describe()} into ${dst.describe()} at offset ${dstOffset ?? 0}`,
      );
    }
    if (src.size === 0) return;
    this.#recorder.encoder().copyBufferToBuffer(
      src.buffer,
      0,
      dst.buffer,
      (dstOffset ?? 0) * 4,
      src.size * 4,
    );
  }

  // ---------------------------------------------------------------- lifetimes

  /**
   * Runs `fn` in a scope. Every tensor created inside is released when the scope ends, except:
   * - tensors in `fn`'s result, reachable through arrays and plain objects (any depth, e.g.
   *   `return [probs, emb]` or `return { loss, dlogits }`); they move to the enclosing scope (at
   *   the outermost level, the caller releases them). Returning a view keeps what it views.
   * - tensors `keep()`ed inside; they leave every scope and the caller must release them.
   * A tensor of this scope held by the result any other way (in a Map or Set, or a field of a
   * class instance such as a `Var`) throws a `ScnymError` naming where it is, rather than being
   * released silently. Scopes nest; when `fn` throws, all its tensors are released.
   */
  scope<T>(fn: () => T): T {
    return this.#scopes.run(fn);
  }

  /** @internal what `Tensor.keep` calls. */
  _unscope(t: Tensor): void {
    this.#scopes.disown(t);
  }

  /** @internal what `Tensor.release` calls. */
  _recycle(t: Tensor): void {
    this.#scopes.disown(t);
    this.#pool.recycle(t.buffer);
  }

  /** Frees every pooled buffer that is not in use (e.g. after a large one-off computation). */
  trimPool(): void {
    // Commands still recorded may use free buffers: submit them before destroying any.
    this.flush();
    this.#pool.trim();
    this.#pipelines.clearBindGroups();
  }

  // ---------------------------------------------------------------- dispatch

  /** Workgroup counts covering `n` invocations in 1-D, folded into y past 65535 groups. */
  groups1d(n: number, wgSize: number): [number, number, number] {
    const groups = Math.max(1, Math.ceil(n / wgSize));
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxDim) return [groups, 1, 1];
    const y = Math.ceil(groups / maxDim);
    return [Math.ceil(groups / y), y, 1];
  }

  /**
   * Records one dispatch of `kernel` with the given buffers (by name), uniform parameters and
   * workgroup counts. Nothing runs until the next flush.
   */
  dispatch(
    kernel: Kernel,
    buffers: Record<string, Tensor>,
    params: Record<string, number>,
    groups: readonly number[],
  ): void {
    this.#health.check();
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxDim || gy > maxDim || gz > maxDim) {
      throw new ScnymError(
        `${kernel.name}: ${gx}x${gy}x${gz} workgroups exceed maxComputeWorkgroupsPerDimension ` +
          `${maxDim}`,
      );
    }
    const entry = this.#pipelines.pipeline(kernel);
    if (this.#uniforms.full) this.flush();
    const offset = this.#uniforms.push(kernel, params);
    const bufs = kernel.bufferNames.map((name) => {
      const t = buffers[name];
      if (!t) throw new Error(`${kernel.name}: buffer ${name} not given`);
      t.assertAlive(kernel.name, `buffer ${name}`);
      return t.buffer;
    });
    const bindGroup = this.#pipelines.bindGroup(entry, bufs);
    const pass = this.#profiler?.timedPass(this.#recorder, kernel.name) ?? this.#recorder.pass();
    pass.setPipeline(entry.pipeline);
    pass.setBindGroup(0, bindGroup, [offset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.#profiler) this.#recorder.endPass();
    this.stats.dispatches++;
  }

  /** Submits everything recorded so far in one command buffer. */
  flush(): void {
    this.#health.check();
    const commands = this.#recorder.finish();
    if (!commands) return;
    this.#uniforms.upload(this.device.queue);
    this.device.queue.submit([commands]);
    this.stats.submissions++;
  }

  /** Flushes and waits until the GPU is idle. Throws if the device was lost or erred. */
  async sync(): Promise<void> {
    this.flush();
    await this.#health.race(this.device.queue.onSubmittedWorkDone());
    this.#health.check();
  }

  // ---------------------------------------------------------------- readback

  /** Copies `t` to the host (flushes pending work first). */
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array> {
    return (await this.readAll([t]))[0];
  }

  /** Copies every tensor of `ts` to the host with one flush and one wait. */
  async readAll(ts: readonly Tensor[]): Promise<(Float32Array | Uint32Array | Int32Array)[]> {
    for (const t of ts) t.assertAlive("read");
    const data = await this.#readback.read(
      ts.map((t) => ({ buffer: t.buffer, bytes: t.size * 4, label: t.describe() })),
    );
    return ts.map((t, i) => new (arrayTypeOf(t.dtype))(data[i]));
  }

  // ---------------------------------------------------------------- profiling

  /** True when the device can time kernels (the `timestamp-query` feature). */
  get canProfile(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * Times every dispatch recorded until `endProfile` (one compute pass each, so batching is
   * lost while profiling). For development and benchmarks, not for production runs.
   */
  startProfile(): void {
    if (!this.canProfile) throw new ScnymError("profiling needs the timestamp-query feature");
    this.flush();
    this.#profiler = new Profiler(this.device);
  }

  /** Ends profiling; milliseconds and dispatch counts per kernel name, slowest first. */
  async endProfile(): Promise<KernelTime[]> {
    const profiler = this.#profiler;
    if (!profiler) throw new ScnymError("endProfile without startProfile");
    this.#profiler = null;
    try {
      const timestamps = profiler.resolve(this.#recorder.encoder());
      if (!timestamps) return [];
      const [raw] = await this.#readback.read([{ ...timestamps, label: "profile timestamps" }]);
      return profiler.totals(new Uint32Array(raw));
    } finally {
      profiler.destroy();
    }
  }

  /** Releases the device; the runtime is unusable afterwards. */
  destroy(): void {
    // No flush: whatever is still recorded dies with the device (which may have failed).
    this.#pool.trim();
    this.#pipelines.clearBindGroups();
    this.#uniforms.destroy();
    this.#readback.destroy();
    this.device.destroy();
  }
}

function toBits(value: number, dtype: DType): number {
  if (dtype === "f32") return new Uint32Array(new Float32Array([value]).buffer)[0];
  return value >>> 0;
}

/** Fills a buffer with one 32-bit pattern (f32 or integer), so `fill` works for every dtype. */
const FILL_KERNEL = defineKernel({
  name: "fill",
  workgroupSize: [256],
  params: { n: "u32", bits: "u32" },
  buffers: { out: { access: "rw", type: "u32" } },
  code: `
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < p.n) { out[i] = p.bits; }
}`,
});
