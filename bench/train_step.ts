/**
 * Where a training step's time goes: trains a few epochs (Kang CTRL -> STIM from ../shared/data
 * when present, else simulated data of the same size), times every kernel of one epoch with GPU
 * timestamps, and reports per-step and per-epoch figures.
 *
 *   deno run -A bench/train_step.ts [--epochs 3] [--config default]
 *                                    [--input-layout auto|sparse|sparse-bf16|dense]
 *
 * Results: a table on stdout and bench/results/train_step-<timestamp>.json, with kernel launches
 * (dispatches) per step, command submissions and readbacks per epoch, and the effective rate of
 * the sparse input layer (its FLOPs estimated from the mean stored entries per cell).
 */
import { parseArgs } from "node:util";
import { type Csr, nnz } from "../data/csr.ts";
import { log1pCpm } from "../data/normalize.ts";
import { simulate } from "../data/simulate.ts";
import { readH5ad } from "../io/h5ad_read.ts";
import { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { resolveConfig } from "../scnym/config.ts";
import type { InputLayout } from "../scnym/step_input.ts";
import { train, type TrainResult } from "../scnym/train.ts";
import { writeFileAtomic } from "../util/fs.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "3" },
    config: { type: "string", default: "default" },
    "input-layout": { type: "string", default: "auto" },
  },
});
const epochs = Number(args.epochs);
const inputLayout = args["input-layout"] as InputLayout;
const profileEpoch = epochs - 1;
const rt = await Runtime.create();
if (!rt.canProfile) {
  console.error("skipped: this adapter has no timestamp-query feature, kernels cannot be timed");
  Deno.exit(0);
}
const kang = new URL("../../shared/data/kang_ifnb_sub_2000.h5ad", import.meta.url).pathname;
const haveKang = await Deno.stat(kang).then(() => true, () => false);
let result: TrainResult;
let dataset: string;
/** Mean stored entries per cell: a training step's sparse products do ~2 * nnz * hidden each. */
let nnzPerCell: number;
const overrides = { train: { epochs, minEpochs: 0 } };
/** Runtime counters at the end of every epoch: launches, submissions, readbacks per epoch. */
const counters: { dispatches: number; submissions: number; readbacks: number }[] = [];
const onEpoch = () => {
  const { dispatches, submissions, readbacks } = rt.stats;
  counters.push({ dispatches, submissions, readbacks });
};
const perCell = (m: Csr) => nnz(m) / Math.max(1, m.nRows);
if (haveKang) {
  dataset = "kang_ifnb_sub_2000 (CTRL -> STIM), 13,215 genes";
  ({ result } = await trainFromFiles({
    reference: kang,
    labels: "cell_type",
    targetWhere: "condition=STIM",
    config: args.config,
    overrides,
    seed: 0,
    rt,
    profileEpoch,
    inputLayout,
    onEpoch,
  }));
  nnzPerCell = perCell((await readH5ad(kang)).X);
} else {
  console.error(`${kang} is absent: using simulated data of the same size`);
  dataset = "simulated 1000 + 1000 cells, 13,215 genes";
  const sim = simulate({ cellsPerDomain: [1000, 1000], genes: 13215, types: 12, seed: 0 });
  nnzPerCell = perCell(sim.counts);
  result = await train({
    X: log1pCpm(sim.counts),
    genes: sim.geneNames,
    labels: sim.cellType,
    isTarget: sim.domain.map((d) => d === "target"),
    normalisation: "counts->log1p_cpm",
  }, {
    config: resolveConfig(args.config, overrides),
    seed: 0,
    rt,
    profileEpoch,
    onEpoch,
    inputLayout,
  });
}

const profile = result.profile ?? [];
const totalMs = profile.reduce((s, p) => s + p.ms, 0);
const steps = Math.max(1, Math.floor(result.splits.train / result.header.config.train.batchSize));
const epochSeconds = result.history[profileEpoch].seconds;
// The profile covers the training steps only (validation runs after it): its calls are the
// step's kernel launches. Readbacks and submissions come from an epoch that was not profiled
// (reading the timestamps back is one more readback).
const dispatchesPerStep = profile.reduce((s, p) => s + p.calls, 0) / steps;
const plain = Math.max(0, profileEpoch - 1);
const delta = (k: "dispatches" | "submissions" | "readbacks") =>
  counters[plain][k] - (plain > 0 ? counters[plain - 1][k] : 0);
const perEpoch = plain > 0
  ? {
    epoch: plain + 1,
    dispatches: delta("dispatches"),
    submissions: delta("submissions"),
    readbacks: delta("readbacks"),
  }
  : null;
// Sparse input layer: forward X W1 and weight gradient X^T dY, each 2 * nnz * hidden FLOPs for
// the step's labelled + target rows (MixMatch and the adversary reuse this one product).
const { hidden } = result.header.config.model;
const poolRows = 2 * result.header.config.train.batchSize;
const sparseFlopsPerStep = 2 * nnzPerCell * poolRows * hidden;
const isWeightGrad = (k: string) => k.startsWith("spmm_t");
const isForward = (k: string) => k.startsWith("spmm") && !isWeightGrad(k);
const sparseRate = (which: (k: string) => boolean) => {
  const ms = profile.filter((p) => which(p.kernel)).reduce((s, p) => s + p.ms, 0);
  return ms > 0 ? sparseFlopsPerStep / (ms / steps) / 1e6 : null;
};
const sparse = {
  nnzPerCell,
  rowsPerStep: poolRows,
  flopsPerProduct: sparseFlopsPerStep,
  forwardGflops: sparseRate(isForward),
  weightGradGflops: sparseRate(isWeightGrad),
};
console.log(`${dataset} on ${rt.gpu.description}, config ${args.config}`);
console.log(
  `epoch ${profileEpoch + 1}: ${epochSeconds.toFixed(2)} s wall, ${steps} steps, ` +
    `${(totalMs / steps).toFixed(1)} ms GPU time per step (kernels timed one pass each)`,
);
console.log(
  `kernel launches per step: ${dispatchesPerStep.toFixed(0)}` +
    (perEpoch
      ? `; epoch ${perEpoch.epoch} (unprofiled): ${perEpoch.dispatches} launches, ` +
        `${perEpoch.submissions} submissions, ${perEpoch.readbacks} readback(s)`
      : " (run >= 3 epochs for per-epoch submissions and readbacks)"),
);
console.log(
  `sparse input layer: ${nnzPerCell.toFixed(0)} entries per cell x ${poolRows} rows x ` +
    `${hidden} = ${(sparseFlopsPerStep / 1e6).toFixed(0)} MFLOP per product; ` +
    `forward ${sparse.forwardGflops?.toFixed(2) ?? "-"} GFLOP/s, ` +
    `weight gradient ${sparse.weightGradGflops?.toFixed(2) ?? "-"} GFLOP/s`,
);
console.log("kernel".padEnd(34) + "calls".padStart(7) + "ms".padStart(10) + "share".padStart(8));
for (const p of profile) {
  console.log(
    p.kernel.padEnd(34) + String(p.calls).padStart(7) + p.ms.toFixed(1).padStart(10) +
      `${(100 * p.ms / totalMs).toFixed(1)}%`.padStart(8),
  );
}
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const out = new URL(`results/train_step-${stamp}.json`, import.meta.url).pathname;
await writeFileAtomic(
  out,
  JSON.stringify(
    {
      name: "train_step",
      date: new Date().toISOString(),
      command: `deno run -A bench/train_step.ts ${Deno.args.join(" ")}`.trim(),
      deno: Deno.version.deno,
      adapter: rt.gpu.description,
      dataset,
      config: args.config,
      stepsPerEpoch: steps,
      epochSeconds,
      gpuMsPerStep: totalMs / steps,
      dispatchesPerStep,
      perEpoch,
      sparse,
      kernels: profile,
      history: result.history,
    },
    null,
    2,
  ) + "\n",
  { overwrite: true },
);
console.log(`written to ${out}`);
rt.destroy();
