/**
 * `deno task bench`: GFLOP/s of the products scNym runs, ours next to tfjs-backend-webgpu on the
 * same adapter in the same run, and the sparse input layer against our dense one.
 *
 *   deno task bench [--quick] [--name matmul] [--seed 1]
 *
 * Timing: after a warm-up, each measurement records `reps` products into one submission,
 * bracketed by syncs (a sync alone costs ~10 ms on a software adapter, so one per product would
 * time the sync), with `reps` chosen so one batch lasts about BATCH_MS; the reported time is the
 * median over batches. tfjs is timed the same way (its queue submitted and awaited per batch),
 * right after ours for each shape. The process CPU time per product is recorded too: on a
 * software adapter it is the work of the GPU threads, and it is far less disturbed than wall time
 * when other processes share the cores.
 * Results: a table on stdout and bench/results/<name>-<timestamp>.json.
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { csrFromDense } from "../data/csr.ts";
import { matmul } from "../kernels/matmul.ts";
import { releaseCsr, uploadCsr } from "../kernels/sparse.ts";
import { spmm, spmmTransposed } from "../kernels/spmm.ts";
import { Runtime } from "../runtime/runtime.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { initTfjs, TFJS_VERSIONS, tfjsProduct } from "./tfjs_ref.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    name: { type: "string", default: "matmul" },
    seed: { type: "string", default: "1" },
  },
});
const BATCH_MS = args.quick ? 120 : 300;
const BATCHES = args.quick ? 3 : 5;

// ------------------------------------------------------------------------- timing

/** One measurement: per-product wall and CPU milliseconds (medians over batches). */
interface Timing {
  medianMs: number;
  gflops: number;
  medianCpuMs: number;
  batchesMs: number[];
  reps: number;
}

/**
 * Times `run` (records one product) with `sync` waiting for the GPU: a warm-up, an estimate of
 * the time per product, then BATCHES batches of `reps` products. `cleanup` runs after each
 * batch, outside the timed region.
 */
async function measure(
  flops: number,
  run: () => void,
  sync: () => Promise<void>,
  cleanup: () => void = () => {},
): Promise<Timing> {
  run();
  await sync();
  cleanup();
  let t0 = performance.now();
  run();
  run();
  await sync();
  const estimate = (performance.now() - t0) / 2;
  cleanup();
  const reps = Math.max(1, Math.min(500, Math.ceil(BATCH_MS / estimate)));
  const batchesMs: number[] = [];
  const cpuMs: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    await sync();
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let r = 0; r < reps; r++) run();
    await sync();
    const cpu = process.cpuUsage(cpu0);
    batchesMs.push((performance.now() - t0) / reps);
    cpuMs.push((cpu.user + cpu.system) / 1000 / reps);
    cleanup();
  }
  const medianMs = median(batchesMs);
  return { medianMs, gflops: flops / medianMs / 1e6, medianCpuMs: median(cpuMs), batchesMs, reps };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Cost of one empty sync (part of every batch, not subtracted). */
async function syncCost(rt: Runtime): Promise<number> {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await rt.sync();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** The 1-minute load average: other processes competing for the cores slow everything. */
function loadAverage(): number | null {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return null;
  }
}

/** Largest |x - y| relative to the largest |y|. */
function relDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return diff / (scale || 1);
}

function normals(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

// ------------------------------------------------------------------------- dense: ours vs tfjs

interface DenseShape {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** Ours adds into `out` (as the weight gradient does); tfjs has no such option. */
  accumulate?: boolean;
}

// The products of one scNym training step (batch 256, 256 hidden units).
const DENSE: DenseShape[] = [
  { name: "input 2k fwd X W", M: 256, N: 256, K: 2000, transA: false, transB: false },
  { name: "input 20k fwd X W", M: 256, N: 256, K: 20_000, transA: false, transB: false },
  {
    name: "input 20k wgrad X^T dY",
    M: 20_000,
    N: 256,
    K: 256,
    transA: true,
    transB: false,
    accumulate: true,
  },
  { name: "input 20k dgrad dY W^T", M: 256, N: 20_000, K: 256, transA: false, transB: true },
  { name: "hidden fwd", M: 256, N: 256, K: 256, transA: false, transB: false },
  { name: "hidden dgrad", M: 256, N: 256, K: 256, transA: false, transB: true },
  { name: "hidden wgrad", M: 256, N: 256, K: 256, transA: true, transB: false, accumulate: true },
];

async function benchDense(rt: Runtime, rng: Rng, s: DenseShape, progress: Progress) {
  const { M, N, K, transA, transB } = s;
  const aShape: [number, number] = transA ? [K, M] : [M, K];
  const bShape: [number, number] = transB ? [N, K] : [K, N];
  const a = normals(rng, M * K);
  const b = normals(rng, K * N);
  const flops = 2 * M * N * K;

  const A = rt.upload(a, aShape);
  const B = rt.upload(b, bShape);
  const out = rt.tensor([M, N]);
  // The cross-check (without accumulate) shows both sides compute the same product.
  const oursResult = await matmul(rt, A, B, { transA, transB, out }).read();
  progress.update(`${s.name}: ours`);
  const ours = await measure(
    flops,
    () => matmul(rt, A, B, { transA, transB, out, accumulate: s.accumulate }),
    () => rt.sync(),
  );
  for (const t of [A, B, out]) t.release();

  progress.update(`${s.name}: tfjs`);
  const ref = tfjsProduct(a, aShape, b, bShape, transA, transB);
  ref.run();
  const tfjsResult = await ref.lastResult();
  ref.disposeResults();
  const tfjs = await measure(flops, ref.run, ref.sync, ref.disposeResults);
  ref.dispose();
  return {
    ...s,
    layout: `${transA ? "T" : "N"}${transB ? "T" : "N"}`,
    flops,
    ours,
    tfjs,
    ratio: tfjs.medianMs / ours.medianMs,
    cpuRatio: tfjs.medianCpuMs / ours.medianCpuMs,
    relDiffVsTfjs: relDiff(oursResult, tfjsResult),
  };
}

// ------------------------------------------------------------------------- sparse vs dense

async function benchSparse(rt: Runtime, rng: Rng, G: number, density: number, progress: Progress) {
  const M = 256;
  const N = 256;
  const dense = new Float32Array(M * G);
  for (let i = 0; i < dense.length; i++) {
    if (rng.uniform() < density) dense[i] = 3 * rng.uniform() + 1e-3;
  }
  const csr = csrFromDense(dense, M, G);
  const nnz = csr.indptr[M];
  const x = uploadCsr(rt, csr, { withCsc: true });
  const X = rt.upload(dense, [M, G]);
  const W = rt.upload(normals(rng, G * N), [G, N]);
  const dY = rt.upload(normals(rng, M * N), [M, N]);
  const Y = rt.tensor([M, N]);
  const dW = rt.tensor([G, N]);
  const sync = () => rt.sync();
  const denseFlops = 2 * M * N * G;
  const sparseFlops = 2 * nnz * N;

  const passes = [
    {
      pass: "fwd X W",
      out: Y,
      sparse: () => spmm(rt, x, W, { out: Y }),
      dense: () => matmul(rt, X, W, { out: Y }),
    },
    {
      pass: "wgrad X^T dY",
      out: dW,
      sparse: () => spmmTransposed(rt, x, dY, { out: dW }),
      dense: () => matmul(rt, X, dY, { transA: true, out: dW }),
    },
  ];
  const results = [];
  for (const p of passes) {
    p.sparse();
    const sparseResult = await p.out.read();
    p.dense();
    const denseResult = await p.out.read();
    progress.update(`sparse ${G} ${p.pass}: sparse`);
    const sparse = await measure(sparseFlops, p.sparse, sync);
    progress.update(`sparse ${G} ${p.pass}: dense`);
    const denseTiming = await measure(denseFlops, p.dense, sync);
    results.push({
      name: `input ${G / 1000}k ${p.pass}`,
      G,
      M,
      N,
      density,
      nnz,
      sparse,
      dense: denseTiming,
      effectiveDenseGflops: denseFlops / sparse.medianMs / 1e6,
      speedup: denseTiming.medianMs / sparse.medianMs,
      cpuSpeedup: denseTiming.medianCpuMs / sparse.medianCpuMs,
      relDiffSparseVsDense: relDiff(sparseResult, denseResult),
    });
  }
  releaseCsr(x);
  for (const t of [X, W, dY, Y, dW]) t.release();
  return results;
}

// ------------------------------------------------------------------------- report

type DenseResult = Awaited<ReturnType<typeof benchDense>>;
type SparseResult = Awaited<ReturnType<typeof benchSparse>>[number];

const pad = (s: string | number, n: number) => String(s).padStart(n);
const fix = (x: number, d = 2) => x.toFixed(d);

function printTables(dense: DenseResult[], sparse: SparseResult[]): void {
  console.log(
    `\n${"dense product".padEnd(24)} op ${pad("M", 6)} ${pad("N", 6)} ${pad("K", 6)} ` +
      `${pad("ours ms", 9)} ${pad("GFLOP/s", 8)} ${pad("tfjs ms", 9)} ${pad("GFLOP/s", 8)} ` +
      `${pad("ratio", 6)} ${pad("cpu", 5)}`,
  );
  for (const d of dense) {
    console.log(
      `${d.name.padEnd(24)} ${d.layout} ${pad(d.M, 6)} ${pad(d.N, 6)} ${pad(d.K, 6)} ` +
        `${pad(fix(d.ours.medianMs), 9)} ${pad(fix(d.ours.gflops), 8)} ` +
        `${pad(fix(d.tfjs.medianMs), 9)} ${pad(fix(d.tfjs.gflops), 8)} ` +
        `${pad(fix(d.ratio), 6)} ${pad(fix(d.cpuRatio, 1), 5)}`,
    );
  }
  console.log(
    `\n${"sparse input layer, 5%".padEnd(24)} ${pad("nnz", 8)} ${pad("sparse ms", 10)} ` +
      `${pad("GFLOP/s", 8)} ${pad("eff.dense", 9)} ${pad("dense ms", 9)} ${pad("GFLOP/s", 8)} ` +
      `${pad("speedup", 8)} ${pad("cpu", 5)}`,
  );
  for (const s of sparse) {
    console.log(
      `${s.name.padEnd(24)} ${pad(s.nnz, 8)} ${pad(fix(s.sparse.medianMs), 10)} ` +
        `${pad(fix(s.sparse.gflops), 8)} ${pad(fix(s.effectiveDenseGflops), 9)} ` +
        `${pad(fix(s.dense.medianMs), 9)} ${pad(fix(s.dense.gflops), 8)} ` +
        `${pad(fix(s.speedup), 8)} ${pad(fix(s.cpuSpeedup, 1), 5)}`,
    );
  }
  console.log(
    "\nratio = tfjs ms / ours ms, speedup = dense ms / sparse ms (median wall time); cpu = the " +
      "same\nfrom process CPU time per product. Sparse GFLOP/s counts 2 nnz N; eff.dense counts " +
      "2 M N G.",
  );
}

async function main() {
  const progress = new Progress();
  const rt = await Runtime.create();
  await initTfjs();
  const rng = new Rng(Number(args.seed));
  const started = new Date();
  const syncMs = await syncCost(rt);
  const loadBefore = loadAverage();

  const dense: DenseResult[] = [];
  for (const s of DENSE) dense.push(await benchDense(rt, rng, s, progress));
  const sparse: SparseResult[] = [];
  for (const G of [2000, 20_000]) sparse.push(...await benchSparse(rt, rng, G, 0.05, progress));
  progress.done();
  const loadAfter = loadAverage();

  console.log(
    `adapter: ${rt.gpu.description}; Deno ${Deno.version.deno}; ${started.toISOString()}`,
  );
  console.log(
    `timing: median of ${BATCHES} batches of ~${BATCH_MS} ms (one sync ~${fix(syncMs, 1)} ms); ` +
      `load average ${loadBefore} -> ${loadAfter} on ${navigator.hardwareConcurrency} cores`,
  );
  printTables(dense, sparse);

  const report = {
    name: args.name,
    date: started.toISOString(),
    command: `deno run -A bench/run.ts ${Deno.args.join(" ")}`.trim(),
    deno: Deno.version.deno,
    adapter: rt.gpu.description,
    fallbackAdapter: rt.gpu.isFallback,
    tfjs: TFJS_VERSIONS,
    timing: {
      batchMs: BATCH_MS,
      batches: BATCHES,
      statistic: "median",
      syncMs,
      loadAverage: [loadBefore, loadAfter],
      cores: navigator.hardwareConcurrency,
    },
    dense,
    sparse,
  };
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const path = new URL(`${args.name}-${stamp}.json`, dir).pathname;
  await writeFileAtomic(path, JSON.stringify(report, null, 2) + "\n", { overwrite: true });
  console.log(`\nwrote ${path}`);
  rt.destroy();
}

await main();
