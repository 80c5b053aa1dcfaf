/**
 * The side-by-side reference for `deno task bench`: the same dense products through
 * tfjs-core + tfjs-backend-webgpu, on their own device of the same adapter. Bench-only
 * dependency: nothing outside bench/ imports tfjs.
 */
// Pinned inline on purpose: a bench-only dependency stays out of the project's import map.
// deno-lint-ignore no-import-prefix
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
// deno-lint-ignore no-import-prefix
import type { WebGPUBackend } from "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";

/** tfjs version strings, for the results file. */
export const TFJS_VERSIONS = { core: "4.22.0", webgpu: "4.22.0" };

/** Starts tfjs on WebGPU; throws unless the active backend really is "webgpu". */
export async function initTfjs(): Promise<void> {
  // Never run small ops on the CPU: every product here must be measured on the GPU.
  tf.env().set("WEBGPU_CPU_FORWARD", false);
  const ok = await tf.setBackend("webgpu");
  await tf.ready();
  if (!ok || tf.getBackend() !== "webgpu") {
    throw new Error(`tfjs did not start on WebGPU (backend: ${tf.getBackend()})`);
  }
  // A WebGPU validation error drops work silently and would show up as absurd speed.
  (tf.backend() as unknown as WebGPUBackend).device.addEventListener("uncapturederror", (ev) => {
    deviceError ??= (ev as GPUUncapturedErrorEvent).error.message;
  });
}

let deviceError: string | undefined;

function throwOnDeviceError(): void {
  if (deviceError) throw new Error(`tfjs WebGPU error: ${deviceError}`);
}

/** Dense operands for one product, uploaded to tfjs's device. */
export interface TfjsProduct {
  /** Records one product (result kept until `dispose`). */
  run(): void;
  /** Submits everything recorded and waits for the GPU: the tfjs twin of `rt.sync()`. */
  sync(): Promise<void>;
  /** The last result, to cross-check against ours. */
  lastResult(): Promise<Float32Array>;
  /** Frees the results recorded so far (call outside timed regions). */
  disposeResults(): void;
  dispose(): void;
}

/** Uploads `a` and `b` (shapes as stored) and returns a runner of `op(a) op(b)`. */
export function tfjsProduct(
  a: Float32Array,
  aShape: [number, number],
  b: Float32Array,
  bShape: [number, number],
  transA: boolean,
  transB: boolean,
): TfjsProduct {
  const ta = tf.tensor2d(a, aShape);
  const tb = tf.tensor2d(b, bShape);
  const results: tf.Tensor[] = [];
  const backend = () => tf.backend() as unknown as WebGPUBackend;
  return {
    run: () => {
      results.push(tf.matMul(ta, tb, transA, transB));
    },
    sync: async () => {
      const be = backend();
      // What tfjs does itself every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches: end the open
      // compute pass, then submit (submitting with the pass open is a validation error and
      // silently drops the whole batch). The encoder exists only when work is pending.
      be.endComputePassEncoder();
      if ((be as unknown as { commandEncoder: unknown }).commandEncoder) be.submitQueue();
      await be.queue.onSubmittedWorkDone();
      throwOnDeviceError();
    },
    lastResult: async () => {
      const data = (await results[results.length - 1].data()) as Float32Array;
      throwOnDeviceError();
      return data;
    },
    disposeResults: () => {
      for (const t of results.splice(0)) t.dispose();
    },
    dispose() {
      this.disposeResults();
      ta.dispose();
      tb.dispose();
    },
  };
}
