/**
 * Sparse batches on the GPU for the layers above `nn/`: the one validated CSR upload
 * (`uploadCsr`, kernels/sparse.ts) and an upload area that feeds it buffers kept between steps.
 */
import type { Csr } from "../data/csr.ts";
import { type CsrField, type GpuCsr, uploadCsr } from "../kernels/sparse.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";

export { densify, type GpuCsr, releaseCsr, uploadCsr } from "../kernels/sparse.ts";

/**
 * A CSR batch area on the GPU that keeps its buffers between steps (growing when a batch needs
 * more room), so a training step's upload allocates nothing in the steady state.
 */
export class CsrUploadArea {
  #buffers = new Map<CsrField, Tensor>();

  constructor(readonly rt: Runtime, readonly withCsc: boolean) {}

  #room(field: CsrField, n: number, dtype: "u32" | "f32"): Tensor {
    const t = this.#buffers.get(field);
    if (t && t.size >= n) return t;
    t?.release();
    // Grow by half again, so slowly drifting batch sizes settle quickly.
    const grown = this.rt.tensor([Math.max(16, Math.ceil(n * 1.5))], dtype, "batch upload").keep();
    this.#buffers.set(field, grown);
    return grown;
  }

  /** Uploads `m` (validated; with its CSC view if asked); valid until the next upload. */
  upload(m: Csr): GpuCsr {
    return uploadCsr(this.rt, m, {
      withCsc: this.withCsc,
      room: (field, n, dtype) => this.#room(field, n, dtype),
    });
  }

  /** Frees the area's buffers. */
  release(): void {
    for (const t of this.#buffers.values()) t.release();
    this.#buffers.clear();
  }
}
