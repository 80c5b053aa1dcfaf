/** The console table of bench/speed.ts: one row per dataset, then the PyTorch setup and notes. */

/** Prints the results of a speed run (the records bench/speed.ts writes to JSON). */
// deno-lint-ignore no-explicit-any
export function printSpeedTable(r: any[], run: {
  epochs: number;
  seed: number;
  adapter: string;
  outPath: string;
}): void {
  const { epochs, seed, outPath } = run;
  const f = (x: number | null | undefined, digits = 2) =>
    x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
  const rows = [
    [
      "dataset",
      "train/target x genes",
      "steps",
      "ours s/ep",
      "torch s/ep",
      "ratio",
      "ratio(min)",
      "vs best",
      "ours cells/s",
      "torch cells/s",
      "GFLOP/step",
      "MB/step",
      "disp/step",
      "rb/epoch",
      "acc ours/torch",
    ],
    ...r.map((x) => [
      x.dataset,
      `${x.cells.train}/${x.cells.target} x ${x.cells.genes}`,
      String(x.stepsPerEpoch),
      f(x.ours.secondsPerEpoch),
      f(x.torch.secondsPerEpoch),
      f(x.ratio),
      f(x.ratioOfMinima),
      f(x.ratioVsBestTorch),
      f(x.ours.cellsPerSecond, 0),
      f(x.torch.cellsPerSecond, 0),
      f(x.ours.step.gflop, 3),
      f(x.ours.step.mbytes, 0),
      f(x.ours.dispatchesPerStep, 0),
      String(x.ours.readbacksPerEpoch),
      `${f(x.ours.targetAccuracy, 3)}/${f(x.torch.targetAccuracy, 3)}`,
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  console.log(`speed: ${epochs} epochs, seed ${seed}, ours on ${run.adapter}`);
  if (r.length && r[0].torch.threads) {
    const bl = r[0].torch.blas?.threadpool?.find((t: { user_api: string }) =>
      t.user_api === "blas"
    );
    console.log(
      `torch ${r[0].torch.version}, ${r[0].torch.threads} threads, ` +
        `OMP_WAIT_POLICY=${r[0].torch.blas?.env?.OMP_WAIT_POLICY ?? "(default)"}, BLAS ` +
        (bl
          ? `${bl.internal_api} ${bl.version} ${bl.architecture} (${bl.num_threads} threads)`
          : "?"),
    );
  }
  for (const row of rows) console.log(row.map((v, c) => v.padStart(widths[c])).join("  "));
  for (const x of r) {
    console.log(
      `${x.dataset}: 1-min load average ${f(x.loadavg.afterOurs)} after ours, ` +
        `${f(x.loadavg.afterTorch)} after PyTorch (2 cores; > 2 means other work competed)`,
    );
    for (const e of x.torch.otherThreadCounts ?? []) {
      console.log(
        `${x.dataset}: torch on ${e.threads} thread(s) ${f(e.secondsPerEpoch)} s/epoch ` +
          `(min ${f(e.minSecondsPerEpoch)}), ratio ${
            f(e.secondsPerEpoch / x.ours.secondsPerEpoch)
          }`,
      );
    }
  }
  console.log(
    "s/ep: median over epochs 2..N; ratio = torch s/epoch / ours s/epoch (> 1: ours faster), " +
      "ratio(min) the same for the fastest epochs; vs best: against PyTorch's fastest thread " +
      "count; cells/s = batch rows (labelled + target) / s",
  );
  if (r.length) console.log(`written to ${outPath}`);
  else console.log("no dataset ran");
}
