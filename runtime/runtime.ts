/**
 * The tensor runtime: GPU tensors, a size-bucketed buffer pool, a pipeline cache, and a command
 * recorder that batches every dispatch until a readback (or an explicit `flush`) needs them run.
 *
 * Ordering rules that keep this correct without fences:
 * - All dispatches go into one open compute pass; WebGPU orders dispatches within a pass and
 *   submissions on the queue, so a buffer released to the pool can be reused by the next op.
 * - `queue.writeBuffer` takes effect before any *unsubmitted* commands, so `upload` into an
 *   existing tensor flushes first when commands are pending.
 * - Uniform parameters live in one arena buffer written once per flush, just before the submit.
 */
import { ScnymError } from "../util/errors.ts";
import { type Gpu, requestGpu } from "./device.ts";
import { defineKernel, type Kernel } from "./kernel.ts";

/** Element type of a tensor. */
export type DType = "f32" | "u32" | "i32";

type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** Counters for tests and benchmarks ("a step allocates nothing after warm-up"). */
export interface RuntimeStats {
  /** GPU buffers created (pool misses). */
  buffersCreated: number;
  /** Bytes held by the pool, in use or free. */
  bytesHeld: number;
  dispatches: number;
  submissions: number;
  readbacks: number;
  pipelinesCompiled: number;
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
  get released(): boolean {
    return this.#released || (this.base?.released ?? false);
  }

  /** Returns the buffer to the pool. The tensor must not be used afterwards. */
  release(): void {
    if (this.#released || this.base) return;
    this.#released = true;
    this.rt._recycle(this);
  }

  /** Removes the tensor from the scope it was created in, so the scope's end keeps it alive. */
  keep(): this {
    this.rt._unscope(this);
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

/** Options for creating a runtime. */
export interface RuntimeOptions {
  /** Reuse an existing adapter/device instead of requesting one. */
  gpu?: Gpu;
  /** Bytes of uniform arena before a forced flush (default 1 MiB). */
  uniformArenaBytes?: number;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to one of four buckets per power of two (at most 25% waste). */
export function bucketBytes(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (n <= 4096) return Math.ceil(n / 256) * 256;
  const pow = 2 ** Math.floor(Math.log2(n));
  const step = pow / 4;
  return Math.ceil(n / step) * step;
}

interface PipelineEntry {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  uniformBytes: number;
}

/** Owns a GPUDevice and everything allocated on it. */
export class Runtime {
  readonly gpu: Gpu;
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly stats: RuntimeStats = {
    buffersCreated: 0,
    bytesHeld: 0,
    dispatches: 0,
    submissions: 0,
    readbacks: 0,
    pipelinesCompiled: 0,
  };

  #free = new Map<number, GPUBuffer[]>();
  #pipelines = new Map<string, PipelineEntry>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 1;
  #scopes: Set<Tensor>[] = [];
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #uniformArena: GPUBuffer;
  #uniformHost: ArrayBuffer;
  #uniformU32: Uint32Array;
  #uniformI32: Int32Array;
  #uniformF32: Float32Array;
  #uniformUsed = 0;
  #uniformAlign: number;
  #staging: GPUBuffer[] = [];
  #fatal: Error | null = null;
  #lost: Promise<never>;

  private constructor(gpu: Gpu, opts: RuntimeOptions) {
    this.gpu = gpu;
    this.device = gpu.device;
    this.limits = gpu.device.limits;
    this.#uniformAlign = Math.max(256, this.limits.minUniformBufferOffsetAlignment);
    const arena = opts.uniformArenaBytes ?? 1 << 20;
    this.#uniformArena = this.device.createBuffer({
      size: arena,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#uniformHost = new ArrayBuffer(arena);
    this.#uniformU32 = new Uint32Array(this.#uniformHost);
    this.#uniformI32 = new Int32Array(this.#uniformHost);
    this.#uniformF32 = new Float32Array(this.#uniformHost);
    // A lost device must surface as an error at the next wait, never as a hang.
    this.#lost = this.device.lost.then((info) => {
      const msg = `GPU device lost (${info.reason}): ${info.message || "no details"}`;
      this.#fatal ??= new ScnymError(msg);
      throw this.#fatal;
    });
    this.#lost.catch(() => {});
    this.device.addEventListener("uncapturederror", (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.#fatal ??= new Error(`WebGPU error: ${err.message}`);
    });
  }

  /** Requests a device (or wraps `opts.gpu`) and returns a runtime on it. */
  static async create(opts: RuntimeOptions = {}): Promise<Runtime> {
    return new Runtime(opts.gpu ?? await requestGpu(), opts);
  }

  // ---------------------------------------------------------------- tensors and the pool

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
    const t = new Tensor(this, this.#acquire(bucketBytes(bytes)), shape, dtype);
    this.#scopes.at(-1)?.add(t);
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
    const fits = offset === undefined
      ? data.length === t.size
      : offset >= 0 && offset + data.length <= t.size;
    if (!fits) {
      throw new ScnymError(
        `${op}: ${data.length} values at offset ${offset ?? 0} for tensor ${t.describe()}`,
      );
    }
    if (data.length === 0) return;
    const typed = t.dtype === "f32"
      ? (data instanceof Float32Array ? data : Float32Array.from(data))
      : t.dtype === "u32"
      ? (data instanceof Uint32Array ? data : Uint32Array.from(data))
      : (data instanceof Int32Array ? data : Int32Array.from(data));
    if (this.#encoder) this.flush();
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
    if (t.size === 0) return;
    if (value === 0) {
      this.#endPass();
      this.#enc().clearBuffer(t.buffer, 0, t.size * 4);
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
    const fits = dstOffset === undefined
      ? src.size === dst.size
      : dstOffset >= 0 && dstOffset + src.size <= dst.size;
    if (!fits || src.dtype !== dst.dtype) {
      throw new ScnymError(
        `copy: ${src.describe()} into ${dst.describe()} at offset ${dstOffset ?? 0}`,
      );
    }
    if (src.size === 0) return;
    this.#endPass();
    this.#enc().copyBufferToBuffer(src.buffer, 0, dst.buffer, (dstOffset ?? 0) * 4, src.size * 4);
  }

  /**
   * Runs `fn` in a scope: every tensor created inside (and not `keep()`ed or returned in
   * `keepers`) is released when it ends. Scopes nest.
   */
  scope<T>(fn: () => T): T {
    this.#scopes.push(new Set());
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#closeScope(new Set());
      throw e;
    }
    this.#closeScope(collectTensors(result));
    return result;
  }

  #closeScope(keep: Set<Tensor>) {
    const scope = this.#scopes.pop()!;
    const parent = this.#scopes.at(-1);
    for (const t of scope) {
      if (keep.has(t)) parent?.add(t);
      else t.release();
    }
  }

  /** @internal */
  _unscope(t: Tensor): void {
    for (const s of this.#scopes) s.delete(t);
  }

  /** @internal */
  _recycle(t: Tensor): void {
    this._unscope(t);
    const size = t.buffer.size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(t.buffer);
  }

  #acquire(size: number): GPUBuffer {
    const hit = this.#free.get(size)?.pop();
    if (hit) return hit;
    this.stats.buffersCreated++;
    this.stats.bytesHeld += size;
    const b = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    this.#bufferIds.set(b, this.#nextBufferId++);
    return b;
  }

  /** Frees every pooled buffer that is not in use (e.g. after a large one-off computation). */
  trimPool(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.stats.bytesHeld -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
    this.#bindGroups.clear();
  }

  // ---------------------------------------------------------------- dispatch

  #pipeline(k: Kernel): PipelineEntry {
    let e = this.#pipelines.get(k.source);
    if (e) return e;
    const [wx, wy, wz] = k.workgroupSize;
    if (wx * wy * wz > this.limits.maxComputeInvocationsPerWorkgroup) {
      throw new ScnymError(
        `${k.name}: workgroup ${wx}x${wy}x${wz} exceeds maxComputeInvocationsPerWorkgroup ` +
          `${this.limits.maxComputeInvocationsPerWorkgroup}`,
      );
    }
    const module = this.device.createShaderModule({ label: k.name, code: k.source });
    module.getCompilationInfo().then((info) => {
      const errors = info.messages.filter((m) => m.type === "error");
      if (errors.length) {
        this.#fatal ??= new Error(
          `WGSL of kernel ${k.name} does not compile:\n` +
            errors.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`).join("\n"),
        );
      }
    }).catch(() => {});
    const layout = this.device.createBindGroupLayout({
      label: k.name,
      entries: [
        {
          binding: 0,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: "uniform", hasDynamicOffset: true },
        },
        ...k.bufferAccess.map((a, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: {
            type: (a === "read" ? "read-only-storage" : "storage") as GPUBufferBindingType,
          },
        })),
      ],
    });
    const pipeline = this.device.createComputePipeline({
      label: k.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    const uniformBytes = Math.max(16, Math.ceil((k.paramNames.length * 4) / 16) * 16);
    e = { id: this.#pipelines.size + 1, pipeline, layout, uniformBytes };
    this.#pipelines.set(k.source, e);
    this.stats.pipelinesCompiled++;
    return e;
  }

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
    if (this.#fatal) throw this.#fatal;
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxDim || gy > maxDim || gz > maxDim) {
      throw new ScnymError(
        `${kernel.name}: ${gx}x${gy}x${gz} workgroups exceed maxComputeWorkgroupsPerDimension ` +
          `${maxDim}`,
      );
    }
    const entry = this.#pipeline(kernel);

    // Uniform parameters go into the arena; flush when it is full.
    if (this.#uniformUsed + this.#uniformAlign > this.#uniformHost.byteLength) this.flush();
    const offset = this.#uniformUsed;
    const base = offset / 4;
    kernel.paramNames.forEach((name, i) => {
      const v = params[name];
      if (v === undefined || !Number.isFinite(v)) {
        throw new Error(`${kernel.name}: parameter ${name} is ${v}`);
      }
      const t = kernel.paramTypes[i];
      if (t === "f32") this.#uniformF32[base + i] = v;
      else if (t === "i32") this.#uniformI32[base + i] = v;
      else this.#uniformU32[base + i] = v >>> 0;
    });
    this.#uniformUsed += this.#uniformAlign;

    const bufs = kernel.bufferNames.map((name) => {
      const t = buffers[name];
      if (!t) throw new Error(`${kernel.name}: buffer ${name} not given`);
      if (t.released) throw new Error(`${kernel.name}: buffer ${name} was released`);
      return t.buffer;
    });
    const key = `${entry.id}|${bufs.map((b) => this.#bufferIds.get(b)).join(",")}`;
    let bg = this.#bindGroups.get(key);
    if (!bg) {
      if (this.#bindGroups.size > 20000) this.#bindGroups.clear();
      bg = this.device.createBindGroup({
        layout: entry.layout,
        entries: [
          { binding: 0, resource: { buffer: this.#uniformArena, size: entry.uniformBytes } },
          ...bufs.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.#bindGroups.set(key, bg);
    }
    const pass = this.#profile ? this.#profiledPass(kernel.name) : this.#computePass();
    pass.setPipeline(entry.pipeline);
    pass.setBindGroup(0, bg, [offset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.#profile) this.#endPass();
    this.stats.dispatches++;
  }

  // ---------------------------------------------------------------- profiling

  #profile: { querySet: GPUQuerySet; names: string[]; resolve: GPUBuffer } | null = null;
  /** Dispatches one profile can time (two queries each; a query set holds at most 4096). */
  static readonly #PROFILE_CAPACITY = 2048;

  /** A pass of its own for one dispatch, with timestamps at its start and end. */
  #profiledPass(name: string): GPUComputePassEncoder {
    this.#endPass();
    const prof = this.#profile!;
    const i = prof.names.length;
    if (i >= Runtime.#PROFILE_CAPACITY) return this.#computePass();
    prof.names.push(name);
    this.#pass = this.#enc().beginComputePass({
      timestampWrites: {
        querySet: prof.querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
    return this.#pass;
  }

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
    const n = Runtime.#PROFILE_CAPACITY;
    this.#profile = {
      querySet: this.device.createQuerySet({ type: "timestamp", count: 2 * n }),
      names: [],
      resolve: this.device.createBuffer({
        size: 16 * n,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
    };
  }

  /** Ends profiling; milliseconds and dispatch counts per kernel name, slowest first. */
  async endProfile(): Promise<{ kernel: string; calls: number; ms: number }[]> {
    const prof = this.#profile;
    if (!prof) throw new Error("endProfile without startProfile");
    this.#endPass();
    const n = prof.names.length;
    this.#profile = null;
    const totals = new Map<string, { calls: number; ms: number }>();
    if (n > 0) {
      this.#enc().resolveQuerySet(prof.querySet, 0, 2 * n, prof.resolve, 0);
      const ticks = this.tensor([4 * n], "u32", "profile");
      this.#endPass();
      this.#enc().copyBufferToBuffer(prof.resolve, 0, ticks.buffer, 0, 16 * n);
      const raw = await this.read(ticks) as Uint32Array;
      ticks.release();
      prof.names.forEach((name, i) => {
        // u64 nanosecond timestamps as (lo, hi) u32 pairs.
        const t0 = raw[4 * i] + raw[4 * i + 1] * 2 ** 32;
        const t1 = raw[4 * i + 2] + raw[4 * i + 3] * 2 ** 32;
        const e = totals.get(name) ?? { calls: 0, ms: 0 };
        e.calls++;
        e.ms += Math.max(0, t1 - t0) / 1e6;
        totals.set(name, e);
      });
    }
    prof.querySet.destroy();
    prof.resolve.destroy();
    return [...totals].map(([kernel, t]) => ({ kernel, ...t })).sort((a, b) => b.ms - a.ms);
  }

  #enc(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#enc().beginComputePass();
  }

  #endPass() {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** Submits everything recorded so far in one command buffer. */
  flush(): void {
    if (this.#fatal) throw this.#fatal;
    if (!this.#encoder) return;
    this.#endPass();
    if (this.#uniformUsed > 0) {
      this.device.queue.writeBuffer(this.#uniformArena, 0, this.#uniformHost, 0, this.#uniformUsed);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#uniformUsed = 0;
    this.stats.submissions++;
  }

  /** Flushes and waits until the GPU is idle. Throws if the device was lost or erred. */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.#lost]);
    if (this.#fatal) throw this.#fatal;
  }

  /** Copies `t` to the host (flushes pending work first). */
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array> {
    if (t.released) throw new Error(`read: tensor ${t.describe()} was released`);
    const bytes = t.size * 4;
    const out = t.dtype === "f32"
      ? new Float32Array(t.size)
      : t.dtype === "u32"
      ? new Uint32Array(t.size)
      : new Int32Array(t.size);
    if (bytes === 0) return out;
    const staging = this.#takeStaging(bytes);
    this.#endPass();
    this.#enc().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    this.stats.readbacks++;
    try {
      await Promise.race([staging.mapAsync(GPUMapMode.READ, 0, bytes), this.#lost]);
    } catch (e) {
      throw this.#fatal ?? new ScnymError(
        `GPU readback of ${t.describe()} failed (${(e as Error).message}); the GPU device may ` +
          "have been lost or reset",
      );
    }
    if (this.#fatal) throw this.#fatal;
    new Uint8Array(out.buffer).set(new Uint8Array(staging.getMappedRange(0, bytes)));
    staging.unmap();
    this.#staging.push(staging);
    return out;
  }

  #takeStaging(bytes: number): GPUBuffer {
    const i = this.#staging.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.#staging.splice(i, 1)[0];
    return this.device.createBuffer({
      size: bucketBytes(bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** Reads several tensors with one flush (each still one copy). */
  async readAll(ts: Tensor[]): Promise<(Float32Array | Uint32Array | Int32Array)[]> {
    const out = [];
    for (const t of ts) out.push(await this.read(t));
    return out;
  }

  /** Releases the device; the runtime is unusable afterwards. */
  destroy(): void {
    this.trimPool();
    this.#uniformArena.destroy();
    for (const b of this.#staging) b.destroy();
    this.device.destroy();
  }
}

function toBits(value: number, dtype: DType): number {
  if (dtype === "f32") return new Uint32Array(new Float32Array([value]).buffer)[0];
  return value >>> 0;
}

/** Tensors reachable from a scope's return value (a tensor, an array or a plain object). */
function collectTensors(v: unknown, out = new Set<Tensor>(), depth = 0): Set<Tensor> {
  if (v instanceof Tensor) out.add(v);
  else if (depth < 4 && v && typeof v === "object") {
    for (const x of Array.isArray(v) ? v : Object.values(v)) collectTensors(x, out, depth + 1);
  }
  return out;
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
