/**
 * Compiled pipelines and bind groups, cached. A pipeline is compiled once per kernel source; a
 * bind group once per (pipeline, buffers) combination, which repeats every training step because
 * the pool hands the same buffers to the same ops.
 */
import { ScnymError } from "../util/errors.ts";
import type { DeviceHealth } from "./device.ts";
import type { Kernel } from "./kernel.ts";
import type { RuntimeStats } from "./stats.ts";

/** A compiled kernel: its pipeline, bind-group layout and uniform slot size. */
export interface PipelineEntry {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  uniformBytes: number;
}

/** Bind groups cached before the cache starts over (bounds memory if buffers keep changing). */
const MAX_BIND_GROUPS = 20000;

export class PipelineCache {
  #pipelines = new Map<string, PipelineEntry>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 1;

  constructor(
    readonly device: GPUDevice,
    readonly health: DeviceHealth,
    readonly stats: RuntimeStats,
    /** The uniform arena's buffer, bound at binding 0 of every bind group. */
    readonly uniforms: GPUBuffer,
  ) {}

  /** The pipeline of `k`, compiled on first use. */
  pipeline(k: Kernel): PipelineEntry {
    let e = this.#pipelines.get(k.source);
    if (e) return e;
    const limits = this.device.limits;
    const [wx, wy, wz] = k.workgroupSize;
    if (wx * wy * wz > limits.maxComputeInvocationsPerWorkgroup) {
      throw new ScnymError(
        `${k.name}: workgroup ${wx}x${wy}x${wz} exceeds maxComputeInvocationsPerWorkgroup ` +
          `${limits.maxComputeInvocationsPerWorkgroup}`,
      );
    }
    const module = this.device.createShaderModule({ label: k.name, code: k.source });
    module.getCompilationInfo().then((info) => {
      const errors = info.messages.filter((m) => m.type === "error");
      if (errors.length) {
        this.health.fail(
          new Error(
            `WGSL of kernel ${k.name} does not compile:\n` +
              errors.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`).join("\n"),
          ),
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

  /** The bind group of `entry` with `buffers` at bindings 1.. (the uniform arena at 0). */
  bindGroup(entry: PipelineEntry, buffers: GPUBuffer[]): GPUBindGroup {
    const key = `${entry.id}|${buffers.map((b) => this.#bufferId(b)).join(",")}`;
    let bg = this.#bindGroups.get(key);
    if (!bg) {
      if (this.#bindGroups.size > MAX_BIND_GROUPS) this.#bindGroups.clear();
      bg = this.device.createBindGroup({
        layout: entry.layout,
        entries: [
          { binding: 0, resource: { buffer: this.uniforms, size: entry.uniformBytes } },
          ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.#bindGroups.set(key, bg);
    }
    return bg;
  }

  /** Forgets every bind group (after buffers were destroyed). */
  clearBindGroups(): void {
    this.#bindGroups.clear();
  }

  #bufferId(b: GPUBuffer): number {
    let id = this.#bufferIds.get(b);
    if (id === undefined) this.#bufferIds.set(b, id = this.#nextBufferId++);
    return id;
  }
}
