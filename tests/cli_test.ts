/**
 * The command line end to end, as a user runs it (subprocesses of cli.ts on simulated data):
 * simulate -> train -> predict -> evaluate, the bad inputs of the training issue, and Ctrl-C
 * during training leaving a loadable model.
 */
import assert from "node:assert/strict";
import { writeSimulation } from "../commands/simulate.ts";
import { simulate } from "../data/simulate.ts";
import { csrFromDense, csrToDense } from "../data/csr.ts";
import { categoricalColumn, dataFrame } from "../io/anndata.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { loadModel } from "../scnym/model_file.ts";
import { readPredictionsFile } from "../io/predictions.ts";
import { readTable } from "../io/table.ts";
import { queryAlignFlags } from "../commands/common.ts";
import { ScnymError } from "../util/errors.ts";
import { runScript, scriptArgs } from "./helpers.ts";

/** Runs `scnym ...args`; returns exit code and output. */
const scnym = (...args: string[]) => runScript("cli.ts", args);

/** `train` arguments for the simulated file: target = the "target" domain, model to `out`. */
const trainSim = (out: string, ...more: string[]) => [
  "train",
  "--reference",
  data,
  "--labels",
  "cell_type",
  "--target-where",
  "domain=target",
  "--out",
  out,
  ...more,
];

const opts = { sanitizeResources: false, sanitizeOps: false } as const;
const dir = await Deno.makeTempDir({ prefix: "scnym-cli-test-" });
const data = `${dir}/sim.h5ad`;
const sim = simulate({ cellsPerDomain: [300, 300], genes: 300, types: 4, seed: 3 });
await writeSimulation(data, sim);

/** Writes a variant of the simulated file with other cell types / values. */
async function variant(
  name: string,
  edit: { cellType?: string[]; values?: (dense: Float32Array) => void },
): Promise<string> {
  const path = `${dir}/${name}.h5ad`;
  const obs = dataFrame(sim.cellNames);
  obs.columns.set("cell_type", categoricalColumn(edit.cellType ?? sim.cellType));
  obs.columns.set("domain", categoricalColumn(sim.domain));
  let X = sim.counts;
  if (edit.values) {
    const dense = csrToDense(X);
    edit.values(dense);
    X = csrFromDense(dense, X.nRows, X.nCols);
  }
  await writeH5ad(path, { X, obs, var: dataFrame(sim.geneNames) });
  return path;
}

const fast = ["--config", `${dir}/fast.json`];
await Deno.writeTextFile(
  `${dir}/fast.json`,
  JSON.stringify({ base: "default", train: { epochs: 4, batchSize: 64, minEpochs: 1 } }),
);

Deno.test("simulate -> train -> predict -> evaluate", opts, async () => {
  const model = `${dir}/m.scnym`;
  const train = await scnym(...trainSim(model, "--seed", "1", ...fast));
  assert.equal(train.code, 0, train.stderr);
  const header = (await loadModel(model)).header;
  assert.equal(header.seed, 1);
  assert.equal(header.config.train.epochs, 4);
  const summary = JSON.parse(await Deno.readTextFile(`${model}.json`));
  assert.equal(summary.seed, 1);
  assert.equal(summary.history.length, 4);

  const pred = await scnym("predict", "--model", model, "--query", data, "--out", `${dir}/p.csv`);
  assert.equal(pred.code, 0, pred.stderr);
  assert.match(pred.stderr, /genes found: 300 \/ 300 model genes/);
  const table = await readTable(`${dir}/p.csv`);
  assert.equal(table.rows.length, 600);
  assert.deepEqual(table.header.slice(0, 3), ["cell", "scNym", "confidence"]);

  const ev = await scnym(
    "evaluate",
    "--predictions",
    `${dir}/p.csv`,
    "--truth-file",
    data,
    "--truth",
    "cell_type",
  );
  assert.equal(ev.code, 0, ev.stderr);
  const acc = Number(ev.stdout.match(/accuracy\s+([0-9.]+)/i)?.[1]);
  // Four well-separated simulated types: even 4 epochs get most cells right.
  assert.ok(acc > 0.8, ev.stdout);
});

Deno.test("training refuses bad inputs with one clear line and writes nothing", opts, async () => {
  const cases: [string, string[], RegExp][] = [
    [
      "label column missing",
      ["--reference", data, "--labels", "nope", "--target-where", "domain=target"],
      /obs.*"nope"|nope.*not found/,
    ],
    [
      "one labelled class",
      [
        "--reference",
        await variant("oneclass", { cellType: sim.cellType.map(() => "T") }),
        "--labels",
        "cell_type",
        "--target-where",
        "domain=target",
      ],
      /one (cell type|class)/,
    ],
    [
      "no labelled cells",
      ["--reference", data, "--labels", "cell_type", "--target-where", "domain=source,target"],
      /no labelled cells/,
    ],
    [
      "missing labels",
      [
        "--reference",
        await variant("missing", {
          cellType: sim.cellType.map((t, i) => (i === 5 ? "" : t)),
        }),
        "--labels",
        "cell_type",
        "--target-where",
        "domain=target",
      ],
      /missing for 1 reference cell/,
    ],
    [
      "NaN in X",
      [
        "--reference",
        await variant("nan", { values: (d) => d[17] = NaN }),
        "--labels",
        "cell_type",
        "--target-where",
        "domain=target",
      ],
      /NaN/,
    ],
    [
      "missing file",
      ["--reference", `${dir}/absent.h5ad`, "--labels", "cell_type"],
      /not found/,
    ],
  ];
  for (const [what, args, message] of cases) {
    const out = `${dir}/bad-${what.replaceAll(" ", "_")}.scnym`;
    const r = await scnym("train", ...args, "--out", out, ...fast, "--quiet");
    assert.equal(r.code, 1, `${what}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, what);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace`);
    assert.equal(
      await Deno.stat(out).then(() => true, () => false),
      false,
      `${what}: wrote ${out}`,
    );
  }
});

Deno.test("fewer target cells than the batch size trains (no hang)", opts, async () => {
  // Target: the target-domain cells of one type (~75) against a batch of 128 labelled cells.
  await Deno.writeTextFile(
    `${dir}/big_batch.json`,
    JSON.stringify({ train: { epochs: 2, batchSize: 128, minEpochs: 0 } }),
  );
  const typ = sim.cellType[sim.domain.indexOf("target")];
  const nTarget = sim.cellType.filter((t, i) => t === typ && sim.domain[i] === "target").length;
  assert.ok(nTarget < 128, `${nTarget} target cells`);
  const onlyTarget = await variant("onetype", {
    cellType: sim.cellType.map((t, i) => sim.domain[i] === "target" ? (t === typ ? "T" : "X") : t),
  });
  const r = await scnym(
    "train",
    "--reference",
    onlyTarget,
    "--labels",
    "cell_type",
    "--reference-where",
    "domain=source",
    "--target-where",
    "cell_type=T",
    "--out",
    `${dir}/small.scnym`,
    "--config",
    `${dir}/big_batch.json`,
  );
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("multi-domain training: one adversary over every value of --domains", opts, async () => {
  const three = simulate({
    cellsPerDomain: [150, 150, 150],
    domainNames: ["tech_a", "tech_b", "tech_c"],
    genes: 200,
    types: 3,
    seed: 4,
  });
  const path = `${dir}/three.h5ad`;
  await writeSimulation(path, three);
  const model = `${dir}/three.scnym`;
  const r = await scnym(
    "train",
    "--reference",
    path,
    "--labels",
    "cell_type",
    "--target-where",
    "domain=tech_c",
    "--domains",
    "domain",
    "--out",
    model,
    ...fast,
  );
  assert.equal(r.code, 0, r.stderr);
  const m = await loadModel(model);
  assert.deepEqual(m.header.domains, ["tech_a", "tech_b", "tech_c"]);
  assert.deepEqual(m.tensors.get("adversary.b2")?.length, 3);
});

Deno.test("Ctrl-C during training leaves the best model so far loadable", opts, async () => {
  const model = `${dir}/interrupted.scnym`;
  await Deno.writeTextFile(
    `${dir}/long.json`,
    JSON.stringify({ train: { epochs: 400, batchSize: 64, minEpochs: 0, patience: 1000 } }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: scriptArgs("cli.ts", trainSim(model, "--config", `${dir}/long.json`)),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Wait until a checkpoint exists, then interrupt.
  const t0 = Date.now();
  while (!(await Deno.stat(model).then(() => true, () => false))) {
    if (Date.now() - t0 > 120_000) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGINT");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 130, stderr);
  assert.match(stderr, /interrupted/);
  const m = await loadModel(model);
  assert.ok(m.header.genes.length === 300);
  assert.equal(m.header.training.interrupted, true);
});

Deno.test(
  "train with stderr into a file: progress lines there, a summary on stdout",
  opts,
  async () => {
    const model = `${dir}/logged.scnym`;
    const log = `${dir}/train.log`;
    const epochs = `${dir}/epochs.jsonl`;
    // As a batch job runs it: stderr redirected to a file by the shell (not a terminal, not a pipe).
    const args = scriptArgs("cli.ts", trainSim(model, ...fast, "--log-json", epochs));
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", 'exec "$0" "$@" 2>"$SCNYM_TEST_LOG"', Deno.execPath(), ...args],
      env: { SCNYM_TEST_LOG: log },
      stdout: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = await Deno.readTextFile(log);
    assert.equal(out.code, 0, stderr);
    // The first epoch's status line always shows; later ones at most every 15 s.
    assert.match(stderr, /^epoch 1\/4 {2}sup [0-9.]+ .*val loss [0-9.]+ acc [0-9.]+% .*ETA \S+$/m);
    assert.match(stderr, /^trained 4 epochs in \S+, kept epoch \d, held-out validation accuracy/m);
    assert.doesNotMatch(stderr, /\r/, "no terminal rewrites in a log file");
    assert.match(stdout, /^epochs: 4 \(all epochs\); best epoch: [1-4]$/m);
    assert.match(
      stdout,
      /^validation accuracy \(held-out labelled cells\): [0-9.]+% of \d+ cells$/m,
    );
    const counts = stdout.match(/^target predictions \((\d+) cells\): (.*)$/m);
    assert.ok(counts, stdout);
    assert.equal(Number(counts[1]), sim.domain.filter((d) => d === "target").length);
    const perClass = [...counts[2].matchAll(/(\S+) (\d+) \(/g)].map((m) => Number(m[2]));
    assert.equal(perClass.reduce((a, b) => a + b, 0), Number(counts[1]));
    assert.match(stdout, /^time: \S+ training; model: .*logged\.scnym$/m);

    const lines = (await Deno.readTextFile(epochs)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.epoch), [0, 1, 2, 3]);
    for (const l of lines) {
      assert.ok(Number.isFinite(l.supLoss) && l.valAccuracy >= 0 && l.valAccuracy <= 1, l);
      assert.ok(l.elapsedSeconds >= l.seconds, l);
    }
    const summary = JSON.parse(await Deno.readTextFile(`${model}.json`));
    assert.deepEqual(
      lines.map((l) => l.supLoss),
      summary.history.map((h: { supLoss: number }) => h.supLoss),
    );

    // A model trained to the end: predict has no interrupted/early-model warning.
    const full = await scnym(
      "predict",
      "--model",
      `${dir}/logged.scnym`,
      "--query",
      data,
      "--out",
      `${dir}/logged.csv`,
    );
    assert.doesNotMatch(full.stderr, /interrupted|early model/);

    const quiet = await scnym(...trainSim(`${dir}/quiet.scnym`, ...fast, "--quiet"));
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /epoch|trained/);
    assert.match(quiet.stdout, /^epochs: 4 /m);
  },
);

Deno.test("an unknown option is one line naming the closest option, exit 2", opts, async () => {
  const cases: [string[], string][] = [
    [
      ["train", "--label", "cell_type"],
      "scnym train: error: unknown option --label; did you mean --labels?",
    ],
    [
      ["predict", "--min-gene-fractoin", "0.5"],
      "scnym predict: error: unknown option --min-gene-fractoin; did you mean --min-gene-fraction?",
    ],
    [
      ["evaluate", "--predicitons", "p.h5ad"],
      "scnym evaluate: error: unknown option --predicitons; did you mean --predictions?",
    ],
    [
      ["train", "--frobnicate"],
      "scnym train: error: unknown option --frobnicate (see scnym train --help)",
    ],
    [["trian"], 'scnym: error: unknown command "trian"; did you mean train?'],
  ];
  for (const [args, line] of cases) {
    const r = await scnym(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stderr, `${line}\n`);
  }
});

Deno.test(
  "predict and inspect warn when the model was interrupted before any checkpoint",
  opts,
  async () => {
    const model = `${dir}/early.scnym`;
    // Epochs before minEpochs never qualify as a checkpoint: Ctrl-C in the first epochs leaves
    // the last epoch's weights with bestEpoch -1.
    await Deno.writeTextFile(
      `${dir}/early.json`,
      JSON.stringify({ train: { epochs: 400, batchSize: 64, minEpochs: 300, patience: 1000 } }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: scriptArgs("cli.ts", trainSim(model, "--config", `${dir}/early.json`)),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(child.stdout).text();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let stderr = "";
    // "training on" comes after the Ctrl-C handler is installed.
    while (!stderr.includes("training on")) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    child.kill("SIGINT");
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    assert.equal((await child.status).code, 130, stderr);
    assert.match(await stdout, /^epochs: \d+ \(interrupted\); best epoch: none/m);
    const header = (await loadModel(model)).header;
    assert.equal(header.training.bestEpoch, -1);

    const pred = await scnym("predict", "--model", model, "--query", data, "--out", `${dir}/e.csv`);
    assert.equal(pred.code, 0, pred.stderr);
    assert.match(
      pred.stderr,
      /^warning: .*early\.scnym is an interrupted model .*: \d+ of 400 epochs trained, no epoch qualified as a checkpoint.*validation accuracy [0-9.]+%/m,
    );
    const inspect = await scnym("inspect", model);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(
      inspect.stderr,
      /^warning: .*early\.scnym is an interrupted model .*of 400 epochs/m,
    );
    assert.match(inspect.stdout, /^training: \d+ of 400 epochs \(interrupted\), kept epoch none$/m);
  },
);

Deno.test(
  "train --predictions records each cell's split; evaluate scores the target",
  opts,
  async () => {
    const model = `${dir}/split.scnym`;
    const preds = `${dir}/split_pred.h5ad`;
    const train = await scnym(...trainSim(model, ...fast, "--predictions", preds, "--quiet"));
    assert.equal(train.code, 0, train.stderr);
    const r = await readPredictionsFile(preds);
    const summary = JSON.parse(await Deno.readTextFile(`${model}.json`));
    const count = (v: string) => r.split!.filter((s) => s === v).length;
    assert.deepEqual(
      [count("train"), count("early_stopping"), count("validation"), count("target")],
      [
        summary.splits.train,
        summary.splits.earlyStopping,
        summary.splits.validation,
        summary.splits.target,
      ],
    );
    r.split!.forEach((s, i) =>
      assert.equal(s === "target", sim.domain[i] === "target", `cell ${i}`)
    );

    const score = async (...more: string[]) => {
      const ev = await scnym("evaluate", "--predictions", preds, "--truth", "cell_type", ...more);
      assert.equal(ev.code, 0, ev.stderr);
      return { cells: Number(ev.stdout.match(/^cells\s+(\d+)$/m)?.[1]), out: ev.stdout };
    };
    const byDefault = await score();
    assert.equal(byDefault.cells, 300, byDefault.out);
    assert.match(byDefault.out, /^scored: 300 target cells \(scNym_split = target\)/m);
    assert.equal((await score("--cells", "target")).cells, 300);
    assert.equal((await score("--cells", "all")).cells, 600);
    assert.equal((await score("--cells", "domain=source")).cells, 300);
    const bad = await scnym(
      "evaluate",
      "--predictions",
      preds,
      "--truth",
      "cell_type",
      "--cells",
      "x",
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--cells x: expected all, target or COL=VALUE/);
  },
);

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});

Deno.test(
  "gene-matching flags: one parser, offered by train, predict and interpret",
  opts,
  async () => {
    assert.deepEqual(queryAlignFlags({ "min-gene-fraction": "0.5", "make-unique": true }), {
      ignoreCase: false,
      stripEnsemblVersion: false,
      makeUnique: true,
      minFraction: 0.5,
    });
    // Without the flag, alignGenes' own default (0.8) applies.
    assert.equal(queryAlignFlags({}).minFraction, undefined);
    assert.throws(
      () => queryAlignFlags({ "min-gene-fraction": "1.5" }),
      (e: unknown) => e instanceof ScnymError && /--min-gene-fraction expects/.test(e.message),
    );
    for (const cmd of ["train", "predict", "interpret"]) {
      const r = await scnym(cmd, "--help");
      for (const flag of ["--ignore-case", "--strip-ensembl-version", "--make-unique"]) {
        assert.ok(r.stdout.includes(flag), `${cmd} --help lacks ${flag}`);
      }
    }
  },
);
