/**
 * Where a training step's time goes: trains a few epochs (Kang CTRL -> STIM from ../shared/data
 * when present, else simulated data of the same size), times every kernel of one epoch with GPU
 * timestamps, and reports per-step and per-epoch figures.
 *
 *   deno run -A bench/train_step.ts [--epochs 3] [--config default]
 *
 * Results: a table on stdout and bench/results/train_step-<timestamp>.json.
 */
import { parseArgs } from "node:util";
import { log1pCpm } from "../data/normalize.ts";
import { simulate } from "../data/simulate.ts";
import { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { resolveConfig } from "../scnym/config.ts";
import { train, type TrainResult } from "../scnym/train.ts";
import { writeFileAtomic } from "../util/fs.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "3" },
    config: { type: "string", default: "default" },
  },
});
const epochs = Number(args.epochs);
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
const overrides = { train: { epochs, minEpochs: 0 } };
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
  }));
} else {
  console.error(`${kang} is absent: using simulated data of the same size`);
  dataset = "simulated 1000 + 1000 cells, 13,215 genes";
  const sim = simulate({ cellsPerDomain: [1000, 1000], genes: 13215, types: 12, seed: 0 });
  result = await train({
    X: log1pCpm(sim.counts),
    genes: sim.geneNames,
    labels: sim.cellType,
    isTarget: sim.domain.map((d) => d === "target"),
    normalisation: "counts->log1p_cpm",
  }, { config: resolveConfig(args.config, overrides), seed: 0, rt, profileEpoch });
}

const profile = result.profile ?? [];
const totalMs = profile.reduce((s, p) => s + p.ms, 0);
const steps = Math.max(1, Math.floor(result.splits.train / result.header.config.train.batchSize));
const epochSeconds = result.history[profileEpoch].seconds;
console.log(`${dataset} on ${rt.gpu.description}, config ${args.config}`);
console.log(
  `epoch ${profileEpoch + 1}: ${epochSeconds.toFixed(2)} s wall, ${steps} steps, ` +
    `${(totalMs / steps).toFixed(1)} ms GPU time per step (kernels timed one pass each)`,
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
