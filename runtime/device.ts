/**
 * Getting a GPUDevice, with every limit the adapter offers requested explicitly (a device gets
 * WebGPU's small defaults otherwise) and failures explained instead of a bare `null`.
 */
import { ScnymError } from "../util/errors.ts";

/** The adapter and device a runtime works on. */
export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** True for software adapters (Mesa llvmpipe/lavapipe, SwiftShader). */
  isFallback: boolean;
}

/** Every numeric limit the adapter reports, so the device may use the adapter's full range. */
function adapterLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  const proto = Object.getPrototypeOf(adapter.limits);
  for (const key of Object.keys(Object.getOwnPropertyDescriptors(proto))) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") out[key] = v;
  }
  return out;
}

/** True in a browser (the web page's worker), where the hints are about the browser. */
const inBrowser = typeof Deno === "undefined";

function noAdapterMessage(): string {
  if (inBrowser) {
    return "no WebGPU adapter found: this browser offers none (check that WebGPU is enabled, " +
      "e.g. chrome://gpu, and that the GPU driver is not blocklisted)";
  }
  const backend = Deno.env.get("DENO_WEBGPU_BACKEND");
  return [
    "no WebGPU adapter found: navigator.gpu.requestAdapter() returned null" +
    ` (DENO_WEBGPU_BACKEND=${backend ?? "<unset>"}).`,
    "On a machine without a GPU, install Mesa's software adapter and retry:",
    "  apt-get install libgl1-mesa-dri            (llvmpipe, Deno's default GL backend)",
    "  apt-get install mesa-vulkan-drivers        (lavapipe; then set DENO_WEBGPU_BACKEND=vulkan)",
    "With a GPU, check its driver; DENO_WEBGPU_BACKEND=vulkan|gl|metal|dx12 picks the backend.",
  ].join("\n");
}

/**
 * Mesa's GL/EGL loader prints "error: XDG_RUNTIME_DIR is invalid or not set" on machines without
 * a desktop session (servers, CI), which reads like a failure of ours; a private runtime dir
 * silences it. Best effort: without env permission nothing changes.
 */
function quietMesa(): void {
  try {
    if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
      Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync({ prefix: "scnym-xdg-" }));
    }
  } catch {
    // No --allow-env / --allow-write: the message stays, harmless.
  }
}

/**
 * On a Linux machine with no GPU (no /dev/dri render node) both of Deno's backends reach Mesa's
 * software rasteriser: Vulkan's lavapipe, picked first once mesa-vulkan-drivers is installed, and
 * GL's llvmpipe. The same training run takes ~1.2x the CPU time on lavapipe (measured with
 * bench/train_step.ts on Kang, both on Mesa 22.3), so without a choice of the user's
 * (DENO_WEBGPU_BACKEND) we ask for GL when its driver is installed. Results are bit-identical.
 */
function preferGlWithoutGpu(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("DENO_WEBGPU_BACKEND") !== undefined) return;
    const hasRenderNode = (() => {
      try {
        return [...Deno.readDirSync("/dev/dri")].some((e) => e.name.startsWith("renderD"));
      } catch {
        return false;
      }
    })();
    const arch = Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";
    const glDriver = `/usr/lib/${arch}-linux-gnu/dri/swrast_dri.so`;
    const hasGl = (() => {
      try {
        return Deno.statSync(glDriver).isFile;
      } catch {
        return false;
      }
    })();
    if (!hasRenderNode && hasGl) Deno.env.set("DENO_WEBGPU_BACKEND", "gl");
  } catch {
    // No --allow-env / --allow-read: Deno's default backend, slower but the same results.
  }
}

/** Requests an adapter and a device with the adapter's own limits. Throws a `ScnymError` if none. */
export async function requestGpu(
  opts: { powerPreference?: GPUPowerPreference } = {},
): Promise<Gpu> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new ScnymError(
      inBrowser
        ? "this browser has no WebGPU (navigator.gpu is undefined); use a recent Chrome, Edge or " +
          "Safari, or Firefox with WebGPU enabled"
        : "this Deno has no WebGPU (navigator.gpu is undefined); use Deno 2.x (e.g. `npx -y deno@2.9.6`)",
    );
  }
  quietMesa();
  preferGlWithoutGpu();
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: opts.powerPreference ?? "high-performance",
  });
  if (!adapter) throw new ScnymError(noAdapterMessage());
  let device: GPUDevice;
  try {
    // Timestamp queries let `Runtime.profile` time each kernel; optional everywhere.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
      ? ["timestamp-query"]
      : [];
    device = await adapter.requestDevice({
      requiredLimits: adapterLimits(adapter),
      requiredFeatures,
    });
  } catch (e) {
    throw new ScnymError(`WebGPU adapter found but requestDevice failed: ${(e as Error).message}`);
  }
  const info = adapter.info;
  return {
    adapter,
    device,
    // Browsers leave `description` empty (Chromium's SwiftShader: vendor "google", architecture
    // "swiftshader").
    description: info.description ||
      [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") || "unknown adapter",
    isFallback: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
}

/**
 * Whether the device is still usable. WebGPU reports failures asynchronously (device loss, WGSL
 * that does not compile, validation errors); the first one is kept and thrown at the next
 * dispatch, flush or wait, so a failure never passes silently and a wait never hangs on it.
 */
export class DeviceHealth {
  #failure: Error | null = null;
  /** Rejects once the device is lost; waits race against it. */
  readonly lost: Promise<never>;

  constructor(device: GPUDevice) {
    this.lost = device.lost.then((info) => {
      this.fail(
        new ScnymError(`GPU device lost (${info.reason}): ${info.message || "no details"}`),
      );
      throw this.#failure;
    });
    this.lost.catch(() => {});
    device.addEventListener("uncapturederror", (ev) => {
      this.fail(new Error(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`));
    });
  }

  /** The first failure seen, if any. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Records `e` unless an earlier failure is already recorded. */
  fail(e: Error): void {
    this.#failure ??= e;
  }

  /** Throws the recorded failure, if any. */
  check(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Waits for `p`, or rejects if the device is lost first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost]);
  }
}
