/**
 * The command recorder: one encoder collecting everything until the next flush, with one compute
 * pass kept open across dispatches (WebGPU orders dispatches within a pass, so consecutive ops
 * need no pass boundary). Copies, clears and query resolves end the open pass.
 */
export class Recorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;

  constructor(readonly device: GPUDevice) {}

  /** True when commands were recorded since the last `finish`. */
  get pending(): boolean {
    return this.#encoder !== null;
  }

  /** The encoder, with no compute pass open: for copies, clears and query resolves. */
  encoder(): GPUCommandEncoder {
    this.endPass();
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  /**
   * The open compute pass, or a new one. With `desc` (e.g. timestamp writes), always a new pass
   * with that descriptor.
   */
  pass(desc?: GPUComputePassDescriptor): GPUComputePassEncoder {
    if (this.#pass && !desc) return this.#pass;
    return this.#pass = this.encoder().beginComputePass(desc);
  }

  /** Ends the open compute pass, if any. */
  endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Everything recorded, as one command buffer (null if nothing was); starts over. */
  finish(): GPUCommandBuffer | null {
    if (!this.#encoder) return null;
    this.endPass();
    const commands = this.#encoder.finish();
    this.#encoder = null;
    return commands;
  }
}
