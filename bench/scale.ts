/**
 * Atlas-scale benchmark: peak memory and cells per second of one training epoch on a 100k-cell x
 * 20k-gene reference and of predicting a 1M-cell x 20k-gene query (with and without the
 * embedding), each a `scnym` process measured by `/usr/bin/time -v` (peak RSS = its "Maximum
 * resident set size"). The data are real Kang cells tiled with seeded noise (bench/gen_large.ts),
 * kept under --dir and removed afterwards unless --keep.
 *
 *   deno task bench:scale [--dir /tmp/scnym_scale] [--cells 1000000] [--keep]
 *
 * Needs ~6 GB of free disk for the 1M query and its annotated copy. JSON in bench/results/.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string", default: "/tmp/scnym_scale" },
    cells: { type: "string", default: "1000000" },
    reference: { type: "string", default: "100000" },
    keep: { type: "boolean", default: false },
    seed: { type: "string", default: "1" },
  },
});
const dir = values.dir!;
await Deno.mkdir(dir, { recursive: true });
const here = (p: string) => new URL(p, import.meta.url).pathname;
const deno = Deno.execPath();

/** Runs `deno run -A script ...args` under /usr/bin/time -v: seconds, peak RSS, stderr. */
async function measured(script: string, args: string[]) {
  const t0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-v", deno, "run", "-A", "--config", here("../deno.json"), here(script), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${script} ${args.join(" ")} failed:\n${stderr.slice(-2000)}`);
  const kb = Number(stderr.match(/Maximum resident set size \(kbytes\): (\d+)/)?.[1]);
  return { seconds, peakRssMiB: Math.round(kb / 1024), stderr };
}

const size = async (p: string) => (await Deno.stat(p)).size / 2 ** 20;
const ref = `${dir}/ref_${values.reference}.h5ad`;
const query = `${dir}/query_${values.cells}.h5ad`;
for (const [path, cells] of [[ref, values.reference!], [query, values.cells!]]) {
  if (await Deno.stat(path).then(() => true, () => false)) continue;
  console.log(`generating ${path} ...`);
  await measured("gen_large.ts", ["--cells", cells, "--seed", values.seed!, "--out", path]);
}

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: `${navigator.hardwareConcurrency} CPU threads, ${Deno.build.os}`,
  reference: { path: ref, cells: Number(values.reference), genes: 20000, mib: await size(ref) },
  query: { path: query, cells: Number(values.cells), genes: 20000, mib: await size(query) },
};

// One training epoch (no guard: one named configuration, one epoch, no early-stopping wait).
const config = `${dir}/one_epoch.json`;
await Deno.writeTextFile(
  config,
  JSON.stringify({ base: "default", train: { epochs: 1, minEpochs: 1 } }),
);
const model = `${dir}/model.scnym`;
const tr = await measured("../cli.ts", [
  "train",
  "--reference",
  ref,
  "--labels",
  "cell_type",
  "--target-where",
  "condition=STIM",
  "--config",
  config,
  "--seed",
  "0",
  "--out",
  model,
  "--overwrite",
]);
results.trainOneEpoch = {
  seconds: tr.seconds,
  peakRssMiB: tr.peakRssMiB,
  cellsPerSecond: Number(values.reference) / tr.seconds,
};
console.log("train, one epoch:", results.trainOneEpoch);

for (const embedding of ["float32", "none"]) {
  const out = `${dir}/pred_${embedding}.h5ad`;
  const r = await measured("../cli.ts", [
    "predict",
    "--model",
    model,
    "--query",
    query,
    "--out",
    out,
    "--embedding",
    embedding,
    "--overwrite",
  ]);
  const m = r.stderr.match(/\(([\d.]+) s, (\d+) cells\/s\)/);
  const entry = {
    seconds: r.seconds,
    peakRssMiB: r.peakRssMiB,
    predictSeconds: Number(m?.[1]),
    cellsPerSecond: Number(m?.[2]),
    outputMiB: await size(out),
    addedMiB: (await size(out)) - (await size(query)),
  };
  results[`predict_embedding_${embedding}`] = entry;
  console.log(`predict (embedding ${embedding}):`, entry);
  await Deno.remove(out);
}

const file = here(`results/scale-${new Date().toISOString().replaceAll(":", "-")}.json`);
await Deno.writeTextFile(file, JSON.stringify(results, null, 1) + "\n");
console.log(`wrote ${file}`);
if (!values.keep) await Deno.remove(dir, { recursive: true });
