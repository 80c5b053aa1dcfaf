/**
 * Shared test helpers: one runtime per test process, seeded random data, closeness checks with
 * stated tolerances, and central finite differences for gradient checks.
 */
import { Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import type { Rng } from "../util/rng.ts";

let shared: Promise<Runtime> | null = null;

/**
 * The test runtime. With no adapter this throws (the error explains how to get Mesa's software
 * adapter): GPU tests must fail loudly in CI rather than skip silently.
 */
export function testRuntime(): Promise<Runtime> {
  if (!shared) {
    shared = Runtime.create();
    // Release the device before the process exits: a device torn down implicitly at exit, with
    // the software adapter's threads still alive, once aborted the test process after all passed.
    let ready: Runtime | null = null;
    shared.then((r) => ready = r, () => {});
    globalThis.addEventListener("unload", () => ready?.destroy());
  }
  return shared;
}

/**
 * Says that something optional a test needs (shared data, anndata, numpy, Chromium) is absent, and
 * returns false so the caller can mark its tests `ignore`. Under CI (`CI` set) it throws instead:
 * CI installs everything, so there a missing requirement is a broken setup, not a reason to skip.
 */
export function missing(what: string, how: string): false {
  const msg = `${what} is absent (${how})`;
  if (Deno.env.get("CI")) throw new Error(`CI must run every test, but ${msg}`);
  console.warn(`ignoring the tests that need it: ${msg}`);
  return false;
}

/** True when `/usr/bin/python3` imports `module` (Debian's python3-<module> packages). */
export function havePython(module: string): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", `import ${module}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** For `assert.throws`/`rejects`: the error is a `ScnymError` whose message matches `re`. */
export const isScnym = (re: RegExp) => (e: unknown): boolean =>
  e instanceof ScnymError && re.test(e.message);

/** Deno.test options for tests that use the GPU (the device outlives one test). */
export const gpuTest = { sanitizeResources: false, sanitizeOps: false } as const;

/** `n` standard-normal values (scaled by `scale`) from a seeded generator. */
export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** `n` uniform values in [lo, hi). */
export function randu(rng: Rng, n: number, lo = 0, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.uniform();
  return a;
}

/**
 * Asserts `|actual - expected| <= atol + rtol * |expected|` element-wise; the message names the
 * first offending index, the worst error, and the tolerance that was stated.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { rtol?: number; atol?: number },
  label = "values",
): void {
  const rtol = tol.rtol ?? 0;
  const atol = tol.atol ?? 0;
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length}, expected ${expected.length}`);
  }
  let worst = 0;
  let worstAt = -1;
  let firstBad = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const err = Math.abs(a - e);
    const bad = !(err <= atol + rtol * Math.abs(e)) || Number.isNaN(a) !== Number.isNaN(e);
    if (bad && firstBad < 0) firstBad = i;
    if (err > worst || Number.isNaN(err)) {
      worst = err;
      worstAt = i;
    }
  }
  if (firstBad >= 0) {
    throw new Error(
      `${label}: mismatch at [${firstBad}]: got ${actual[firstBad]}, expected ${
        expected[firstBad]
      }; worst |err| ${worst} at [${worstAt}] (rtol ${rtol}, atol ${atol}, n ${actual.length})`,
    );
  }
}

/**
 * Central finite differences of a scalar function: grad[i] ~ (f(x + h e_i) - f(x - h e_i)) / 2h.
 * Evaluate `f` in float64 (CPU references) so the estimate is accurate to ~h^2.
 * With `indices`, only those coordinates are estimated (the rest stay NaN).
 */
export function finiteDiff(
  f: (x: Float64Array) => number,
  x0: ArrayLike<number>,
  h = 1e-3,
  indices?: number[],
): Float64Array {
  const x = Float64Array.from(x0);
  const g = new Float64Array(x.length).fill(NaN);
  for (const i of indices ?? x.keys()) {
    const v = x[i];
    x[i] = v + h;
    const fp = f(x);
    x[i] = v - h;
    const fm = f(x);
    x[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Picks `k` distinct indices below `n` (all of them when n <= k), for spot gradient checks. */
export function sampleIndices(rng: Rng, n: number, k: number): number[] {
  if (n <= k) return [...Array(n).keys()];
  return [...rng.permutation(n).subarray(0, k)];
}

/** Sum of elementwise products, in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

const REPO = new URL("../", import.meta.url);

/** `deno run -A` arguments for a repository script (path from the repo root), as users run it. */
export function scriptArgs(script: string, args: string[]): string[] {
  const config = new URL("deno.json", REPO).pathname;
  return ["run", "-A", "--config", config, new URL(script, REPO).pathname, ...args];
}

/** Runs a repository script (e.g. `cli.ts`) in a subprocess; its exit code and output. */
export async function runScript(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: scriptArgs(script, args),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
