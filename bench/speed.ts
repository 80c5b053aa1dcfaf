/**
 * Side by side: our training step on WebGPU against a PyTorch implementation of the same step
 * (bench/torch_reference.py: dense input, as the original scNym) on the same cells, in one run.
 *
 *   deno run -A bench/speed.ts [--datasets kang,kang1300,sim12k] [--epochs 12] [--seed 0]
 *                              [--threads 2] [--no-torch] [--python /usr/bin/python3]
 *                              [--extra-threads 1]  (also time PyTorch with these thread counts)
 *                              [--omp-wait-policy PASSIVE]  ("" leaves libgomp's default)
 *                              [--keep DIR]  (keep the PyTorch input in DIR/<dataset>)
 *
 * Datasets: `kang` (../shared/data Kang CTRL -> STIM, 13,215 genes), `kang1300` (the same cells,
 * the 1,300 genes of highest mean expression), `sim12k` (simulated, 5,727 labelled + 6,534 target
 * cells x 1,300 genes: 4,639 training cells after the 81/9/10 split, like the PBMC set).
 * Both sides train `--epochs` epochs with early stopping off (minEpochs 0, patience >= epochs);
 * seconds per epoch are medians over the epochs after the first (pipeline compilation, warm-up);
 * 12 epochs by default: single epochs of either side vary by up to 25% on a shared 2-core machine.
 * The labelled splits are the very ones `train` draws (same seed), written with the normalised
 * CSR into a temporary directory the Python side reads.
 *
 * Reported per dataset: s/epoch of both, the ratio (torch s/epoch over ours: > 1 means we are
 * faster), cells per second (labelled + target rows through the step), the analytic FLOP and
 * compulsory bytes of one of our steps (and the FLOP of the dense step), dispatches per step,
 * submissions and readbacks per epoch, and both target accuracies. The PyTorch child runs with
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (OpenBLAS picks its own kernels) and reports the
 * BLAS it loaded. JSON: bench/results/speed-<timestamp>.json. Benchmarks are not tests: nothing
 * here asserts a time.
 */
import { parseArgs } from "node:util";
import { nnz, selectRows } from "../data/csr.ts";
import { median } from "../eval/metrics.ts";
import { Runtime } from "../runtime/runtime.ts";
import { resolveConfig } from "../scnym/config.ts";
import { predictCells } from "../scnym/predict.ts";
import { prepareTrainingSet, train } from "../scnym/train.ts";
import { EVAL_CHUNK } from "../scnym/types.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import { loadDataset, SPEED_DATASETS, splitsOf } from "./speed_datasets.ts";
import { printSpeedTable } from "./speed_table.ts";
import { runTorch, torchAvailable, type TorchOptions, writeForTorch } from "./speed_torch.ts";
import { resolveInputLayout } from "../scnym/step_input.ts";
import { stepCost } from "./step_cost.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    datasets: { type: "string", default: SPEED_DATASETS.join(",") },
    epochs: { type: "string", default: "12" },
    seed: { type: "string", default: "0" },
    threads: { type: "string", default: "2" },
    "extra-threads": { type: "string", default: "1" },
    "omp-wait-policy": { type: "string", default: "PASSIVE" },
    python: { type: "string", default: "/usr/bin/python3" },
    "no-torch": { type: "boolean", default: false },
    /** Keep the PyTorch side's input in DIR/<dataset> (to rerun torch_reference.py alone). */
    keep: { type: "string" },
  },
});
const datasets = args.datasets!.split(",").map((s) => s.trim()).filter(Boolean);
for (const d of datasets) {
  if (!SPEED_DATASETS.includes(d)) {
    throw new Error(`unknown dataset ${d} (known: ${SPEED_DATASETS.join(", ")})`);
  }
}
const epochs = Number(args.epochs);
if (!(Number.isInteger(epochs) && epochs >= 2)) throw new Error("--epochs: an integer >= 2");
const seed = Number(args.seed);
const threads = Number(args.threads);
const extraThreads = args["extra-threads"]!.split(",").filter(Boolean).map(Number);
const torchOptions: TorchOptions = {
  python: args.python!,
  ompWaitPolicy: args["omp-wait-policy"]!,
  epochs,
};

const torchMissing = args["no-torch"]
  ? "--no-torch given"
  : await torchAvailable(torchOptions.python);
if (torchMissing) console.error(`skipping the PyTorch side: ${torchMissing}`);
const rt = await Runtime.create();
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outPath = new URL(`results/speed-${stamp}.json`, import.meta.url).pathname;
const results: Record<string, unknown>[] = [];
const progress = new Progress({ quiet: true });

for (const name of datasets) {
  const d = await loadDataset(name, seed);
  if (!d) continue;
  const config = resolveConfig("default", {
    train: { epochs, minEpochs: 0, patience: epochs },
  });
  const X = d.set.X;
  console.error(`${name}: ${X.nRows} cells x ${X.nCols} genes, ${nnz(X)} non-zeros`);

  // Ours. Counters per epoch from rt.stats (the epoch's steps, its early-stopping pass and its
  // one readback). The dispatches of an eval pass per 2,048-cell chunk come from what `train`
  // records after its last epoch: the final validation pass and nothing else (copies and clears
  // are not dispatches), which leaves the steps' share of an epoch. The profile of epoch 0 is a
  // cross-check only: its timestamp queries run out on long epochs.
  const snaps: { dispatches: number; submissions: number; readbacks: number }[] = [];
  const snap = () => ({
    dispatches: rt.stats.dispatches,
    submissions: rt.stats.submissions,
    readbacks: rt.stats.readbacks,
  });
  snaps.push(snap());
  const result = await train(d.set, {
    config,
    seed,
    rt,
    progress,
    profileEpoch: rt.canProfile ? 0 : undefined,
    onEpoch: () => snaps.push(snap()),
  });
  const finalPass = rt.stats.dispatches - snaps[snaps.length - 1].dispatches;
  const prep = prepareTrainingSet(d.set, config);
  const layout = resolveInputLayout("auto", d.set.X, rt, config.model.hidden);
  const steps = result.splits.train <= config.train.batchSize
    ? 1
    : Math.floor(result.splits.train / config.train.batchSize);
  const perEpoch = snaps.slice(1).map((s, e) => ({
    dispatches: s.dispatches - snaps[e].dispatches,
    submissions: s.submissions - snaps[e].submissions,
    readbacks: s.readbacks - snaps[e].readbacks,
  })).slice(1); // epoch 0 also holds the profile readback
  const profileCalls = result.profile?.reduce((a, p) => a + p.calls, 0);
  const chunks = (cells: number) => Math.ceil(cells / EVAL_CHUNK);
  const dispatchesPerEpoch = median(perEpoch.map((p) => p.dispatches));
  const dispatchesPerStep = result.validation.cells > 0
    ? (dispatchesPerEpoch -
      chunks(result.splits.earlyStopping) * finalPass / chunks(result.validation.cells)) / steps
    : null;
  const oursSec = median(result.history.slice(1).map((h) => h.seconds));
  const oursMin = Math.min(...result.history.slice(1).map((h) => h.seconds));
  const targetX = selectRows(X, prep.target);
  const pred = await predictCells(rt, result.model, targetX, { classes: result.classes });
  const oursAcc = prep.target.filter((i, k) => pred.labels[k] === d.truth[i]).length /
    prep.target.length;
  result.model.destroy();

  // Average non-zeros of a step: 256 labelled training cells + 256 target cells.
  const rowNnz = (cells: number[]) =>
    cells.reduce((a, i) => a + X.indptr[i + 1] - X.indptr[i], 0) / cells.length;
  const trainCells = splitsOf(prep, config, seed).train.map((k) => prep.labelled[k]);
  const nX = Math.min(config.train.batchSize, trainCells.length);
  const nU = nX;
  const nnzStep = nX * rowNnz(trainCells) + nU * rowNnz(prep.target);
  const { parts, denseFirstLayerFlop } = stepCost(
    {
      G: X.nCols,
      H: config.model.hidden,
      L: config.model.layers,
      C: result.classes.length,
      D: result.domains.length,
      A: config.model.adversaryHidden,
    },
    nX,
    nU,
    nnzStep,
    layout,
  );
  const flop = parts.reduce((a, p) => a + p.flop, 0);
  const bytes = parts.reduce((a, p) => a + p.bytes, 0);
  // Our first layer (sparse or densified), which the reference replaces by its dense one.
  const firstLayerFlop = parts.filter((p) => p.part.includes("W1")).reduce(
    (a, p) => a + p.flop,
    0,
  );
  const cellsPerEpoch = steps * (nX + nU);

  // The PyTorch reference on the same cells.
  // deno-lint-ignore no-explicit-any
  let torch: any = null;
  const extra: { threads: number; secondsPerEpoch: number; minSecondsPerEpoch: number }[] = [];
  const load0 = Deno.loadavg();
  if (!torchMissing) {
    const dir = args.keep
      ? `${args.keep}/${name}`
      : await Deno.makeTempDir({ prefix: "scnym-speed-" });
    await Deno.mkdir(dir, { recursive: true });
    try {
      await writeForTorch(dir, d, config, seed);
      console.error(`${name}: PyTorch reference, ${epochs} epochs ...`);
      torch = await runTorch(dir, threads, torchOptions);
      for (const t of extraThreads) {
        console.error(`${name}: PyTorch reference on ${t} thread(s) ...`);
        const x = await runTorch(dir, t, torchOptions);
        extra.push({
          threads: t,
          secondsPerEpoch: x.secondsPerEpoch,
          minSecondsPerEpoch: Math.min(...x.epochSeconds.slice(1)),
        });
      }
    } finally {
      if (!args.keep) await Deno.remove(dir, { recursive: true });
    }
  }
  const res = {
    dataset: name,
    description: d.description,
    cells: { ...result.splits, genes: X.nCols, nnz: nnz(X) },
    stepsPerEpoch: steps,
    // The machine's load (1-minute average) after our run and after the PyTorch run(s).
    loadavg: { afterOurs: load0[0], afterTorch: Deno.loadavg()[0] },
    ours: {
      secondsPerEpoch: oursSec,
      minSecondsPerEpoch: oursMin,
      epochSeconds: result.history.map((h) => h.seconds),
      cellsPerSecond: cellsPerEpoch / oursSec,
      targetAccuracy: oursAcc,
      dispatchesPerStep,
      dispatchesPerEpoch,
      profiledDispatchesEpoch0: profileCalls ?? null,
      submissionsPerEpoch: median(perEpoch.map((p) => p.submissions)),
      readbacksPerEpoch: Math.max(...perEpoch.map((p) => p.readbacks)),
      step: {
        nnz: nnzStep,
        gflop: flop / 1e9,
        mbytes: bytes / 1e6,
        inputLayout: layout,
        firstLayerShareOfFlop: firstLayerFlop / flop,
        effectiveGflops: flop * steps / oursSec / 1e9,
        parts: parts.map((p) => ({ ...p, gflop: p.flop / 1e9, mbytes: p.bytes / 1e6 })),
      },
      profileEpoch0: result.profile ?? null,
      history: result.history,
    },
    torch: torch
      ? {
        secondsPerEpoch: torch.secondsPerEpoch,
        minSecondsPerEpoch: Math.min(...torch.epochSeconds.slice(1)),
        epochSeconds: torch.epochSeconds,
        cellsPerSecond: cellsPerEpoch / torch.secondsPerEpoch,
        targetAccuracy: torch.targetAccuracy,
        stepsPerEpoch: torch.stepsPerEpoch,
        stepGflop: (flop - firstLayerFlop + denseFirstLayerFlop) / 1e9,
        threads: torch.threads,
        version: torch.torch,
        blas: torch.blas,
        history: torch.history,
        otherThreadCounts: extra,
      }
      : { skipped: torchMissing },
    ratio: torch ? torch.secondsPerEpoch / oursSec : null,
    // On a shared machine interference only ever adds time: the fastest epochs are the steadier
    // comparison of the two implementations (the median is what a user waits).
    ratioOfMinima: torch ? Math.min(...torch.epochSeconds.slice(1)) / oursMin : null,
    // Against PyTorch's fastest thread count in this run (medians).
    ratioVsBestTorch: torch
      ? Math.min(torch.secondsPerEpoch, ...extra.map((e) => e.secondsPerEpoch)) / oursSec
      : null,
  };
  results.push(res);
  console.error(
    `${name}: ours ${oursSec.toFixed(2)} s/epoch` +
      (torch ? `, torch ${torch.secondsPerEpoch.toFixed(2)} s/epoch` : ""),
  );
  await writeResults();
}

async function writeResults() {
  await writeFileAtomic(
    outPath,
    JSON.stringify(
      {
        name: "speed",
        date: new Date().toISOString(),
        command: `deno run -A bench/speed.ts ${Deno.args.join(" ")}`.trim(),
        version: VERSION,
        deno: Deno.version.deno,
        adapter: rt.gpu.description,
        epochs,
        seed,
        note: "ratio = torch s/epoch / ours s/epoch (> 1: ours faster); medians over epochs 2..N",
        results,
      },
      null,
      2,
    ) + "\n",
    { overwrite: true },
  );
}

printSpeedTable(results, { epochs, seed, adapter: rt.gpu.description, outPath });
rt.destroy();
