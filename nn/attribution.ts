/**
 * Input attributions of a trained model on the GPU, batched: a list of jobs (cell, target class)
 * is cut into chunks of at most ROW_BUDGET path rows (jobs x steps), and each chunk is one
 * forward and one backward pass from the first layer's output.
 *
 * - guided: rectified (guided) backpropagation of the class logit at the cell itself; the
 *   saliency of gene g is dz/dx_g (dense over genes: it is d W^T, d the gradient at the first
 *   layer's output, so only d is read back).
 * - ig: integrated gradients from the zero baseline, midpoint Riemann sum over `steps` points:
 *   x_g * mean_s dz/dx_g(a_s x), a_s = (s + 0.5) / steps. Non-zero only where the cell
 *   expresses g.
 * - eg: expected gradients: mean over `steps` draws (x'_d a reference cell, a_d ~ U(0, 1)) of
 *   (x - x'_d)_g dz/dx_g(x'_d + a_d (x - x'_d)).
 *
 * The first layer is linear, so every path point is built from u = x W (see kernels/saliency.ts)
 * and the gene-level product d W^T is taken only at the stored genes (`sampledRowDot`).
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { oneHot } from "../kernels/labels.ts";
import { matmul } from "../kernels/matmul.ts";
import { lerpRows, meanRowGroups, sampledRowDot } from "../kernels/saliency.ts";
import { spmm } from "../kernels/spmm.ts";
import { type GpuCsr, releaseCsr, uploadCsr } from "./gpu_csr.ts";
import type { ScnymModel } from "./model.ts";
import { Tape, Var } from "./tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";

/** The attribution methods. */
export const SALIENCY_METHODS = ["guided", "ig", "eg"] as const;
/** An attribution method (see the module comment). */
export type SaliencyMethod = typeof SALIENCY_METHODS[number];

/** Path rows per chunk: [rows, hidden] f32 tensors stay at 16 MiB for hidden 256. */
export const ROW_BUDGET = 16384;
/** Stored entries of the gathered reference rows per chunk (eg): 32 MiB per array. */
const NNZ_BUDGET = 8 << 20;

/** What to attribute: job j explains logit `classes[j]` of cell `cells[j]`. */
export interface AttributionJobs {
  cells: Int32Array;
  classes: Int32Array;
}

/** Options of `attribute`. */
export interface AttributeOptions {
  method: SaliencyMethod;
  /** ig: Riemann points; eg: draws per cell (default 100 for ig, 50 for eg). */
  steps?: number;
  /** eg: reference cells (normalised, the model's genes); required for eg. */
  background?: Csr;
  /** eg: the draws, to reproduce them (default: drawn from `seed`). */
  draws?: { ref: Uint32Array; alpha: Float32Array };
  seed?: number;
  /** Path rows per chunk (default ROW_BUDGET; tests make it small to cross chunk borders). */
  rowBudget?: number;
  /** Jobs whose gene-level attribution rows to return. */
  keep?: number[];
  progress?: Progress;
}

/** Attributions summed per target class, and the rows asked for. */
export interface AttributionSums {
  method: SaliencyMethod;
  steps: number;
  genes: number;
  /** Sum over jobs of each target class of the attribution, classes x genes (float64). */
  sums: Float64Array;
  /** Jobs per target class. */
  counts: Int32Array;
  /** Gene-level attribution of each kept job. */
  rows: Map<number, Float32Array>;
  /**
   * ig/eg: per job, the sum of the attributions over genes and the score difference it should
   * equal (completeness): logit at the cell minus logit at the baseline (eg: mean over draws).
   */
  completeness: { total: Float64Array; delta: Float64Array } | null;
}

/** The eg draws of `jobs` x `steps`: a reference index below `m` and a ~ U(0, 1) for each. */
export function drawReferences(jobs: number, steps: number, m: number, seed: number) {
  const rng = new Rng(seed ^ 0xe9);
  const ref = new Uint32Array(jobs * steps);
  const alpha = new Float32Array(jobs * steps);
  for (let i = 0; i < ref.length; i++) {
    ref[i] = Math.floor(rng.uniform() * m);
    alpha[i] = rng.uniform();
  }
  return { ref, alpha };
}

/** Attributes every job (see the module comment); batched over jobs x steps on the GPU. */
export async function attribute(
  rt: Runtime,
  model: ScnymModel,
  X: Csr,
  jobs: AttributionJobs,
  opts: AttributeOptions,
): Promise<AttributionSums> {
  const { method } = opts;
  const G = model.shape.genes;
  const C = model.shape.classes;
  const H = model.shape.hidden;
  if (X.nCols !== G) throw new ScnymError(`interpret: ${X.nCols} genes, the model has ${G}`);
  const S = method === "guided" ? 1 : opts.steps ?? (method === "ig" ? 100 : 50);
  if (!Number.isInteger(S) || S < 1) throw new ScnymError(`interpret: steps ${S} must be >= 1`);
  const nJobs = jobs.cells.length;
  const bg = method === "eg" ? opts.background : undefined;
  if (method === "eg" && (!bg || bg.nRows === 0)) {
    throw new ScnymError("interpret: expected gradients need reference cells");
  }
  if (bg && bg.nCols !== G) throw new ScnymError(`interpret: background has ${bg.nCols} genes`);
  const draws = bg ? opts.draws ?? drawReferences(nJobs, S, bg.nRows, opts.seed ?? 0) : null;
  const W = model.hiddenLayers[0].W.value;
  const b = model.hiddenLayers[0].b.value;
  const keep = new Set(opts.keep ?? []);
  const out: AttributionSums = {
    method,
    steps: S,
    genes: G,
    sums: new Float64Array(C * G),
    counts: new Int32Array(C),
    rows: new Map(),
    completeness: method === "guided"
      ? null
      : { total: new Float64Array(nJobs), delta: new Float64Array(nJobs) },
  };
  for (let j = 0; j < nJobs; j++) out.counts[jobs.classes[j]]++;
  // Baseline: the zero input (ig) or the reference cells (eg), as first-layer outputs and logits.
  const base = bg ? uploadCsr(rt, bg) : null;
  const uref = rt.scope(() => (base ? spmm(rt, base, W) : rt.full([1, H], 0)).keep());
  const zref = await baselineLogits(rt, model, uref);
  const guidedSums = method === "guided" ? new Float64Array(C * H) : null;
  const guidedRows = new Map<number, Float32Array>();
  const meanRefNnz = bg ? Math.max(1, bg.indptr[bg.nRows] / bg.nRows) : 1;
  const perChunk = Math.max(
    1,
    Math.min(
      Math.floor((opts.rowBudget ?? ROW_BUDGET) / S),
      bg ? Math.floor(NNZ_BUDGET / (S * meanRefNnz)) : 1e9,
    ),
  );
  const progress = opts.progress ?? new Progress();
  try {
    for (let j0 = 0; j0 < nJobs; j0 += perChunk) {
      const j1 = Math.min(nJobs, j0 + perChunk);
      const J = j1 - j0;
      const xc = selectRows(X, jobs.cells.subarray(j0, j1));
      const rows = pathRows(jobs.classes, j0, j1, S, method, draws);
      const { ref } = rows;
      const refRows = draws ? selectRows(bg!, ref) : null;
      const gx = uploadCsr(rt, xc);
      const gref = refRows ? uploadCsr(rt, refRows) : null;
      const res = rt.scope(() =>
        chunkPass(rt, model, { x: gx, uref, W, b, S, guided: method === "guided" }, {
          ...rows,
          gref,
        })
      );
      const read = await rt.readAll([
        res.gbar,
        res.logits,
        ...(res.own ? [res.own] : []),
        ...(res.refVals ? [res.refVals] : []),
      ]);
      for (const t of Object.values(res)) (t as Tensor | null)?.release();
      releaseCsr(gx);
      if (gref) releaseCsr(gref);
      const [gbar, logits] = read as Float32Array[];
      for (let j = 0; j < J; j++) {
        const job = j0 + j;
        const c = jobs.classes[job];
        if (guidedSums) {
          for (let k = 0; k < H; k++) guidedSums[c * H + k] += gbar[j * H + k];
          if (keep.has(job)) guidedRows.set(job, gbar.slice(j * H, (j + 1) * H));
          continue;
        }
        const row = keep.has(job) ? new Float32Array(G) : null;
        let total = 0;
        const add = (gene: number, v: number) => {
          out.sums[c * G + gene] += v;
          total += v;
          if (row) row[gene] += v;
        };
        const own = read[2] as Float32Array;
        for (let e = xc.indptr[j]; e < xc.indptr[j + 1]; e++) add(xc.indices[e], own[e]);
        let zBase = zref[c];
        if (refRows) {
          const refVals = read[3] as Float32Array;
          zBase = 0;
          for (let s = 0; s < S; s++) {
            const r = j * S + s;
            for (let e = refRows.indptr[r]; e < refRows.indptr[r + 1]; e++) {
              add(refRows.indices[e], refVals[e]);
            }
            zBase += zref[ref[r] * C + c] / S;
          }
        }
        out.completeness!.total[job] = total;
        out.completeness!.delta[job] = logits[j * C + c] - zBase;
        if (row) out.rows.set(job, row);
      }
      progress.update(`interpreting (${method}): ${j1}/${nJobs} cell-class pairs`);
    }
  } finally {
    uref.release();
    if (base) releaseCsr(base);
  }
  progress.done();
  if (guidedSums) await guidedToGenes(rt, W, guidedSums, guidedRows, out);
  return out;
}

/**
 * The path rows of jobs j0..j1 (S per job, job-major): target class, the job's row in the chunk,
 * the interpolation weight (guided 1; ig the midpoints (s + 0.5) / S; eg the draws) and the
 * reference row (eg; 0 otherwise).
 */
function pathRows(
  classes: Int32Array,
  j0: number,
  j1: number,
  S: number,
  method: SaliencyMethod,
  draws: { ref: Uint32Array; alpha: Float32Array } | null,
) {
  const R = (j1 - j0) * S;
  const labels = new Uint32Array(R);
  const cell = new Uint32Array(R);
  const alpha = new Float32Array(R);
  const ref = new Uint32Array(R);
  for (let r = 0; r < R; r++) {
    const j = Math.floor(r / S);
    const s = r % S;
    labels[r] = classes[j0 + j];
    cell[r] = j;
    if (draws) {
      alpha[r] = draws.alpha[j0 * S + r];
      ref[r] = draws.ref[j0 * S + r];
    } else alpha[r] = method === "guided" ? 1 : (s + 0.5) / S;
  }
  return { labels, cell, alpha, ref };
}

/** The logits of first-layer outputs `u` + bias (rows of the baseline), read back. */
async function baselineLogits(rt: Runtime, model: ScnymModel, u: Tensor): Promise<Float32Array> {
  const m = u.shape[0];
  const z = rt.scope(() => {
    const path = {
      cell: rt.full([m], 0, "u32"),
      ref: rt.upload(Uint32Array.from({ length: m }, (_, i) => i), [m], "u32"),
      alpha: rt.full([m], 0),
    };
    const h1 = lerpRows(rt, u, u, path, model.hiddenLayers[0].b.value);
    return logitsOf(model, new Tape(rt, false), new Var(h1, false)).value;
  });
  const zs = await z.read() as Float32Array;
  z.release();
  return zs;
}

function logitsOf(model: ScnymModel, tape: Tape, h1: Var): Var {
  return model.classify(tape, model.trunk(tape, h1, { training: false, seed: 0, stream: 0 }));
}

/**
 * One chunk: path rows from the first layer's output, the logits' backward seeded with each
 * row's target class, the gradient averaged per job, and the gene-level attributions (ig/eg).
 */
function chunkPass(
  rt: Runtime,
  model: ScnymModel,
  c: { x: GpuCsr; uref: Tensor; W: Tensor; b: Tensor; S: number; guided: boolean },
  rows: {
    labels: Uint32Array;
    cell: Uint32Array;
    alpha: Float32Array;
    ref: Uint32Array;
    gref: GpuCsr | null;
  },
) {
  const R = rows.labels.length;
  const J = c.x.nRows;
  const C = model.shape.classes;
  const u = spmm(rt, c.x, c.W);
  const path = {
    cell: rt.upload(rows.cell, [R], "u32"),
    ref: rt.upload(rows.ref, [R], "u32"),
    alpha: rt.upload(rows.alpha, [R]),
  };
  const h1 = new Var(lerpRows(rt, u, c.uref, path, c.b), true);
  const tape = new Tape(rt);
  tape.guided = c.guided;
  // Only the input gradient is wanted: no weight gradients (a third of the backward's work).
  tape.paramGrads = false;
  const z = logitsOf(model, tape, h1);
  z.grad = oneHot(rt, rt.upload(rows.labels, [R], "u32"), C);
  tape.backward();
  const g = h1.grad!;
  const gbar = c.S === 1 ? g : meanRowGroups(rt, g, c.S);
  // Logits at the cells themselves (a = 1), for the completeness check.
  const ones = {
    cell: rt.upload(Uint32Array.from({ length: J }, (_, j) => j), [J], "u32"),
    ref: rt.full([J], 0, "u32"),
    alpha: rt.full([J], 1),
  };
  const zero = rt.full([1, u.shape[1]], 0);
  const logits = logitsOf(
    model,
    new Tape(rt, false),
    new Var(lerpRows(rt, u, zero, ones, c.b), false),
  );
  return {
    gbar,
    logits: logits.value,
    own: c.guided ? null : sampledRowDot(rt, c.x, gbar, c.W),
    refVals: rows.gref ? sampledRowDot(rt, rows.gref, g, c.W, -1 / c.S) : null,
  };
}

/** Guided saliency at the genes: the hidden-space sums and kept rows times W^T. */
async function guidedToGenes(
  rt: Runtime,
  W: Tensor,
  sums: Float64Array,
  rows: Map<number, Float32Array>,
  out: AttributionSums,
): Promise<void> {
  const H = W.shape[1];
  const G = W.shape[0];
  const kept = [...rows.keys()];
  const hidden = new Float32Array((sums.length / H + kept.length) * H);
  hidden.set(Float32Array.from(sums));
  kept.forEach((job, i) => hidden.set(rows.get(job)!, sums.length + i * H));
  const genes = rt.scope(() =>
    matmul(rt, rt.upload(hidden, [hidden.length / H, H]), W, { transB: true })
  );
  const all = await genes.read() as Float32Array;
  genes.release();
  const C = sums.length / H;
  for (let i = 0; i < C * G; i++) out.sums[i] = all[i];
  kept.forEach((job, i) => out.rows.set(job, all.slice((C + i) * G, (C + i + 1) * G)));
}
