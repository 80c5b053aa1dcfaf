/**
 * Dense matrix products: `out = alpha * op(a) op(b) (+ bias) (+ out)` for row-major f32 matrices,
 * in the three layouts a linear layer needs (NN forward, NT input gradient, TN weight gradient)
 * plus TT for completeness.
 *
 * One generated WGSL kernel per variant (layout, which operands can be read as vec4, ragged K,
 * bias, accumulate, tile). Each invocation keeps a TM x TN register tile of outputs and walks K
 * four steps at a time, reading each operand as vec4 along its contiguous axis; a workgroup
 * covers (TM * WG_Y) x (TN * WG_X) outputs. No shared memory: on Mesa's llvmpipe (the software
 * adapter) every non-uniform load is a loop over the SIMD lanes and costs far more than an FMA,
 * so what counts is FMAs per loaded value, TM * TN / (TM + TN), which the register tile sets.
 * That is why software adapters get a 16x16 tile; real GPUs get 8x8 (64 accumulators, the usual
 * upper end before register spills), where the cache provides the reuse shared memory would.
 *
 * Long K is split into dispatches of K_CHUNK steps that add into `out`, so the slices of a and b
 * a chunk touches stay in cache while every workgroup that shares them runs.
 *
 * Ragged edges: rows and columns past the matrix are clamped for loads (every load is in bounds
 * and branch-free) and skipped at the store; a K that is not a multiple of 4 ends with a scalar
 * tail loop; dimensions that are not multiples of 4 are read as scalars.
 */
import { defineKernel, type Kernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { expectNoAlias } from "./common.ts";

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use a^T: `a` is stored [K, M]. */
  transA?: boolean;
  /** Use b^T: `b` is stored [N, K]. */
  transB?: boolean;
  /** f32[N], added to every row of the product. */
  bias?: Tensor;
  /** Where to write the [M, N] result (a new tensor otherwise). Must not be `a`, `b` or bias. */
  out?: Tensor;
  /** Add the product to the current contents of `out` (which must be given). */
  accumulate?: boolean;
  /** Scale of the product (not of the bias or of the accumulated `out`); default 1. */
  alpha?: number;
  /**
   * Register tile per invocation: "large" (16x16) or "standard" (8x8). Default: "large" on
   * software adapters (a narrow tile there when N <= 32, see `defaultTile`), "standard" on
   * GPUs. Every tile gives the same bits.
   */
  tile?: MatmulTile;
}

/** Name of a register-tile configuration (see `MatmulOptions.tile`). */
export type MatmulTile = "standard" | "large";

/** Register tile per invocation and workgroup shape. TM and TN are multiples of 4. */
interface Tile {
  tm: number;
  tn: number;
  wgX: number;
  wgY: number;
}

// WG_X = 8 is one SIMD vector of llvmpipe (256-bit) and a quarter warp elsewhere; neighbouring
// invocations take neighbouring vec4 columns of b.
const TILES: Record<MatmulTile, Tile> = {
  standard: { tm: 8, tn: 8, wgX: 8, wgY: 8 },
  large: { tm: 16, tn: 16, wgX: 8, wgY: 4 },
};

/**
 * The tile when none is asked for: "large" on software adapters, "standard" on GPUs, except for
 * narrow products on software adapters (N <= 32: the classifier head, the adversary's 2-way
 * output), where a workgroup of those tiles would cover 128 columns and compute mostly clamped
 * copies of the last one: there one invocation covers all N columns (or half of them) of 8 rows.
 * Measured on llvmpipe: 512 x 256 x 2 ~7x and 256 x 256 x 12 ~2.5x faster. Results are the same
 * bits with any tile: each output is the same chain of FMAs over k.
 */
function defaultTile(software: boolean, N: number): Tile {
  if (!software) return TILES.standard;
  if (N > 32) return TILES.large;
  const tn = Math.min(16, 4 * Math.ceil(N / 4));
  return { tm: 8, tn, wgX: Math.ceil(N / tn), wgY: 8 };
}

/** K steps per dispatch (a multiple of 4, so only the last chunk can have a ragged tail). */
const K_CHUNK = 512;

/** Everything that changes the generated WGSL. */
interface Variant {
  transA: boolean;
  transB: boolean;
  /** `a` is read as vec4 along its contiguous axis (K, or M when transposed). */
  vecA: boolean;
  vecB: boolean;
  /** `out` is read/written as vec4 (N % 4 == 0). */
  vecC: boolean;
  /** K % 4 != 0: a scalar loop finishes the last K % 4 steps. */
  kTail: boolean;
  bias: boolean;
  accumulate: boolean;
}

/**
 * Records `out = alpha * op(a) op(b) (+ bias broadcast over rows) (+ out if accumulate)` and
 * returns `out`. `a` is [M, K] ([K, M] with transA), `b` is [K, N] ([N, K] with transB).
 */
export function matmul(rt: Runtime, a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const shapes = () =>
    `a ${a.describe()}${transA ? "^T" : ""} x b ${b.describe()}${transB ? "^T" : ""}`;
  for (const [name, t] of [["a", a], ["b", b]] as const) {
    if (t.shape.length !== 2 || t.dtype !== "f32") {
      throw new ScnymError(`matmul: ${name} must be a 2-D f32 matrix, got ${t.describe()}`);
    }
  }
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, N] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== kb) {
    throw new ScnymError(`matmul: inner dimensions differ (${K} vs ${kb}) in ${shapes()}`);
  }
  if (M === 0 || N === 0 || K === 0) {
    throw new ScnymError(`matmul: empty dimension (M=${M}, N=${N}, K=${K}) in ${shapes()}`);
  }
  if (opts.bias && (opts.bias.size !== N || opts.bias.dtype !== "f32")) {
    throw new ScnymError(
      `matmul: bias must be f32 with ${N} values for ${shapes()}, got ${opts.bias.describe()}`,
    );
  }
  const out = opts.out;
  if (opts.accumulate && !out) throw new ScnymError("matmul: accumulate needs an `out` tensor");
  if (out) {
    if (out.shape.length !== 2 || out.rows !== M || out.cols !== N || out.dtype !== "f32") {
      throw new ScnymError(
        `matmul: out must be f32[${M}x${N}] for ${shapes()}, got ${out.describe()}`,
      );
    }
    expectNoAlias("matmul", { out }, [a, b, opts.bias]);
  }
  const t = opts.tile ? TILES[opts.tile] : defaultTile(rt.gpu.isFallback, N);
  const groups = [Math.ceil(N / (t.tn * t.wgX)), Math.ceil(M / (t.tm * t.wgY)), 1];
  const maxGroups = rt.limits.maxComputeWorkgroupsPerDimension;
  if (groups[0] > maxGroups || groups[1] > maxGroups) {
    throw new ScnymError(
      `matmul: ${M}x${N} output needs ${groups[0]}x${groups[1]} workgroups, over this adapter's ` +
        `maxComputeWorkgroupsPerDimension of ${maxGroups} (${shapes()})`,
    );
  }
  const c = out ?? rt.tensor([M, N], "f32", "matmul");
  const variant: Variant = {
    transA,
    transB,
    vecA: (transA ? M : K) % 4 === 0,
    vecB: (transB ? K : N) % 4 === 0,
    vecC: N % 4 === 0,
    kTail: K % 4 !== 0,
    bias: opts.bias !== undefined,
    accumulate: opts.accumulate ?? false,
  };
  const buffers: Record<string, Tensor> = { a, b, c };
  if (opts.bias) buffers.bias = opts.bias;
  const alpha = opts.alpha ?? 1;
  // Long K runs as several dispatches of K_CHUNK steps, each adding into `out`: the slices of a
  // and b one chunk touches stay in cache while the workgroups that share them run.
  for (let k0 = 0; k0 < K; k0 += K_CHUNK) {
    const first = k0 === 0;
    const v = first ? variant : { ...variant, bias: false, accumulate: true };
    const k1 = Math.min(K, k0 + K_CHUNK);
    rt.dispatch(matmulKernel(v, t), buffers, { M, N, K, k0, k1, alpha }, groups);
  }
  return c;
}

// ------------------------------------------------------------------------- WGSL generation

const kernels = new Map<string, Kernel>();

function matmulKernel(v: Variant, t: Tile): Kernel {
  const key = JSON.stringify([v, t]);
  let k = kernels.get(key);
  if (!k) kernels.set(key, k = buildKernel(v, t));
  return k;
}

/** `n` lines from `f(0..n-1)`. */
const lines = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/** `vec4<f32>(f(0), f(1), f(2), f(3))`. */
const quad = (f: (r: number) => string) => `vec4<f32>(${lines(4, f, ", ")})`;

/**
 * How one operand is read. Each invocation needs, per k step, TM values of a (its rows) and TN
 * values of b (its columns), grouped in quads of 4. `setup` runs once before the K loop;
 * `block` once per 4 k steps (k = first step); `step(kk)` per step; `value` names the quad of
 * step kk (0..3) for quad q. The tail versions read a single step at k.
 */
interface Reader {
  setup: string;
  block: string;
  step: (kk: number) => string;
  value: (q: number, kk: number) => string;
  tailStep: string;
  tailValue: (q: number) => string;
}

/**
 * Reader for the operand contiguous along K (a not transposed, b transposed): one row per
 * output index i, read as a vec4 covering 4 k steps; the quad for step kk gathers component kk.
 */
function alongK(name: string, idx: string, count: number, vec: boolean): Reader {
  const off = (i: number) => `${name}o${i}`;
  return {
    setup: lines(count, (i) => `let ${off(i)} = ${idx}${i} * ${vec ? "(p.K / 4u)" : "p.K"};`),
    block: lines(
      count,
      (i) =>
        `let ${name}${i} = ${
          vec ? `${name}[${off(i)} + k / 4u]` : quad((r) => `${name}[${off(i)} + k + ${r}u]`)
        };`,
    ),
    step: () => "",
    value: (q, kk) => quad((r) => `${name}${4 * q + r}[${kk}]`),
    // Only used when K % 4 != 0, and then this operand is scalar (its rows are not 16-byte
    // aligned), so plain element reads are right.
    tailStep: "",
    tailValue: (q) => quad((r) => `${name}[${off(4 * q + r)} + k]`),
  };
}

/**
 * Reader for the operand contiguous along its output index (a transposed, b not transposed):
 * each k step reads the quads as vec4 rows of the stored matrix.
 */
function alongOut(
  name: string,
  idx: string,
  quad0: (q: number) => string,
  dim: string,
  count: number,
  vec: boolean,
): Reader {
  const quads = count / 4;
  const load = (q: number, k: string) =>
    vec
      ? `${name}[(${k}) * (p.${dim} / 4u) + ${name}q${q}]`
      : quad((r) => `${name}[(${k}) * p.${dim} + ${idx}${4 * q + r}]`);
  return {
    // Clamped quad index: quads past the edge re-read the last one (results are not stored).
    setup: vec
      ? lines(quads, (q) => `let ${name}q${q} = min(${quad0(q)}, p.${dim} / 4u - 1u);`)
      : "",
    block: "",
    step: (kk: number) => lines(quads, (q) => `let ${name}${kk}_${q} = ${load(q, `k + ${kk}u`)};`),
    value: (q: number, kk: number) => `${name}${kk}_${q}`,
    tailStep: lines(quads, (q) => `let ${name}t_${q} = ${load(q, "k")};`),
    tailValue: (q: number) => `${name}t_${q}`,
  };
}

function buildKernel(v: Variant, t: Tile): Kernel {
  const { tm, tn } = t;
  const qn = tn / 4;
  // Rows of this invocation: row0 + i (contiguous). Columns: quad j of 4 columns is
  // cq0 + j * WG_X, so that neighbouring invocations read neighbouring vec4s of b.
  const rowQuad = (q: number) => `row0 / 4u + ${q}u`;
  const colQuad = (q: number) => `cq0 + ${q}u * WG_X`;
  const A: Reader = v.transA
    ? alongOut("a", "r", rowQuad, "M", tm, v.vecA)
    : alongK("a", "r", tm, v.vecA);
  const B: Reader = v.transB
    ? alongK("b", "n", tn, v.vecB)
    : alongOut("b", "n", colQuad, "N", tn, v.vecB);
  // a's value for row i, step kk, is one component of a quad.
  const aVal = (i: number, kk: number) => `${A.value(i >> 2, kk)}[${i & 3}]`;
  const aTail = (i: number) => `${A.tailValue(i >> 2)}[${i & 3}]`;
  const acc = (i: number, q: number) => `acc${i}_${q}`;
  const fmas = (av: (i: number) => string, bv: (q: number) => string) =>
    lines(
      tm,
      (i) =>
        `{ let s = ${av(i)}; ${
          lines(qn, (q) => `${acc(i, q)} = fma(vec4<f32>(s), ${bv(q)}, ${acc(i, q)});`, " ")
        } }`,
    );

  const blockBody = [
    A.block,
    B.block,
    ...[0, 1, 2, 3].map((kk) =>
      `{\n${A.step(kk)}\n${B.step(kk)}\n${fmas((i) => aVal(i, kk), (q) => B.value(q, kk))}\n}`
    ),
  ].join("\n");
  const tail = v.kTail
    ? `for (var k = kEnd4; k < p.k1; k++) {
${A.tailStep}
${B.tailStep}
${fmas(aTail, B.tailValue)}
}`
    : "";

  const store = lines(tm, (i) => {
    const row = `row0 + ${i}u`;
    const perQuad = lines(qn, (q) => {
      if (v.vecC) {
        const idx = `(${row}) * (p.N / 4u) + ${colQuad(q)}`;
        const bias = v.bias ? ` + ${quad((r) => `bias[n${4 * q + r}]`)}` : "";
        const old = v.accumulate ? ` + c[${idx}]` : "";
        return `if (${colQuad(q)} < p.N / 4u) { c[${idx}] = p.alpha * ${acc(i, q)}${bias}${old}; }`;
      }
      return lines(4, (r) => {
        const col = `(${colQuad(q)}) * 4u + ${r}u`;
        const idx = `(${row}) * p.N + ${col}`;
        const bias = v.bias ? ` + bias[n${4 * q + r}]` : "";
        const old = v.accumulate ? ` + c[${idx}]` : "";
        return `if (${col} < p.N) { c[${idx}] = p.alpha * ${acc(i, q)}[${r}]${bias}${old}; }`;
      });
    });
    return `if (${row} < p.M) {\n${perQuad}\n}`;
  });

  const code = `
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = (wid.y * WG_Y + lid.y) * ${tm}u;
  let cq0 = wid.x * WG_X * ${qn}u + lid.x;
  // Clamped row and column indices: loads past the edge re-read the last row/column.
${lines(tm, (i) => `  let r${i} = min(row0 + ${i}u, p.M - 1u);`)}
${lines(tn, (j) => `  let n${j} = min((${colQuad(j >> 2)}) * 4u + ${j & 3}u, p.N - 1u);`)}
${A.setup}
${B.setup}
${lines(tm, (i) => lines(qn, (q) => `  var ${acc(i, q)} = vec4<f32>(0.0);`))}
  // This dispatch covers k in [k0, k1); full blocks of 4 first, then the tail (if any).
  let kEnd4 = p.k0 + ((p.k1 - p.k0) & ~3u);
  for (var k = p.k0; k < kEnd4; k += 4u) {
${blockBody}
  }
${tail}
${store}
}`;
  const vec = (on: boolean) => on ? "vec4<f32>" : "f32";
  const name = `matmul_${v.transA ? "t" : "n"}${v.transB ? "t" : "n"}` +
    `${v.vecA ? "" : "_sa"}${v.vecB ? "" : "_sb"}${v.vecC ? "" : "_sc"}${v.kTail ? "_kt" : ""}` +
    `${v.bias ? "_bias" : ""}${v.accumulate ? "_acc" : ""}_${tm}x${tn}` +
    (t.wgX === 8 ? "" : `_wg${t.wgX}x${t.wgY}`);
  const buffers: Record<string, { access: "read" | "rw"; type: string }> = {
    a: { access: "read", type: vec(v.vecA) },
    b: { access: "read", type: vec(v.vecB) },
    c: { access: "rw", type: vec(v.vecC) },
  };
  if (v.bias) buffers.bias = { access: "read", type: "f32" };
  return defineKernel({
    name,
    workgroupSize: [t.wgX, t.wgY],
    params: { M: "u32", N: "u32", K: "u32", k0: "u32", k1: "u32", alpha: "f32" },
    buffers,
    code,
  });
}

// ------------------------------------------------------------------------- CPU reference

/**
 * CPU reference of `matmul` in float64: `alpha * op(a) op(b) (+ bias) (+ c0)`, with a [M, K]
 * ([K, M] if transA) and b [K, N] ([N, K] if transB), all row-major. Returns [M, N].
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { M: number; N: number; K: number },
  opts: {
    transA?: boolean;
    transB?: boolean;
    bias?: ArrayLike<number>;
    c0?: ArrayLike<number>;
    alpha?: number;
  } = {},
): Float64Array {
  const { M, N, K } = dims;
  const alpha = opts.alpha ?? 1;
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = opts.transA ? a[k * M + i] : a[i * K + k];
        const bv = opts.transB ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      out[i * N + j] = alpha * s + (opts.bias?.[j] ?? 0) + (opts.c0?.[i * N + j] ?? 0);
    }
  }
  return out;
}
