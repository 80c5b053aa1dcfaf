/**
 * `scnym evaluate` end to end on small files written by our own writers (`writeH5ad`,
 * `writePredictions`, `writePredictionTable`, `saveModel`) in a temp dir: the printed table and
 * the JSON equal `evaluate(...)` on the same arrays; mismatched or incomplete inputs are refused
 * with one line on stderr, the right exit code and no output file; `--report` writes the HTML.
 */
import assert from "node:assert/strict";
import { csrFromDense } from "../data/csr.ts";
import { evaluateCommand } from "../commands/evaluate.ts";
import { evaluate, type EvaluationInput, formatEvaluation } from "../eval/evaluate.ts";
import { dataFrame } from "../io/anndata.ts";
import { writeH5ad, writePredictions } from "../io/h5ad_write.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { formatTable, writePredictionTable } from "../io/table.ts";
import { runScript } from "./helpers.ts";
import { resolveConfig } from "../scnym/config.ts";
import { saveModel } from "../scnym/model_file.ts";
import { Rng } from "../util/rng.ts";
import { listDir, tempDir } from "./io_shared.ts";

const CLASSES = ["B", "NK", "T cell, CD4"];
const N = 48;

/** Runs the command in-process, capturing what it prints. */
async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await evaluateCommand(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * A query `.h5ad` (counts, obs cell_type with an unseen type "Eryth" and one missing label,
 * obs condition ctrl/stim), its predictions `.h5ad` and CSV, and the arrays behind them.
 */
async function fixture(dir: string) {
  const rng = new Rng(7);
  const g = 9;
  const dim = 6;
  const cells = Array.from({ length: N }, (_, i) => `AAAC-${i}`);
  const typeCodes = new Int32Array(N);
  const counts = new Float32Array(N * g);
  const emb = new Float32Array(N * dim);
  const probs = new Float32Array(N * CLASSES.length);
  const predicted = new Int32Array(N);
  const confidence = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const t = i % 12 === 5 ? 3 : rng.int(3); // code 3 = Eryth, not a model class
    typeCodes[i] = t;
    for (let j = 0; j < g; j++) counts[i * g + j] = rng.poisson(j === t ? 20 : 2);
    for (let j = 0; j < dim; j++) emb[i * dim + j] = rng.normal() + (j === t ? 5 : 0);
    const logits = CLASSES.map((_, c) => rng.normal() + (c === t ? 2 : 0));
    const e = logits.map((z) => Math.exp(z));
    const s = e.reduce((a, b) => a + b);
    let best = 0;
    e.forEach((v, c) => {
      probs[i * 3 + c] = v / s;
      if (v > e[best]) best = c;
    });
    predicted[i] = best;
    confidence[i] = probs[i * 3 + best];
  }
  typeCodes[2] = -1; // one cell without annotation
  const obs = dataFrame(cells);
  obs.columns.set("cell_type", {
    kind: "categorical",
    codes: typeCodes,
    categories: [...CLASSES, "Eryth"],
  });
  obs.columns.set("condition", {
    kind: "string",
    values: cells.map((_, i) => (i < N / 2 ? "ctrl" : "stim")),
  });
  const query = `${dir}/query.h5ad`;
  await writeH5ad(query, {
    X: csrFromDense(counts, N, g),
    obs,
    var: dataFrame(Array.from({ length: g }, (_, j) => `G${j}`)),
  });
  const preds: PredictionOutputs = {
    classes: CLASSES,
    predicted,
    confidence,
    probabilities: probs,
    embedding: { data: emb, dim },
  };
  const predH5ad = `${dir}/pred.h5ad`;
  await writePredictions(query, predH5ad, preds, { seed: 0, config: "default" });
  const predCsv = `${dir}/pred.csv`;
  await writePredictionTable(predCsv, cells, preds);
  const truth = Array.from(typeCodes, (c) => (c < 0 ? null : [...CLASSES, "Eryth"][c]));
  return { query, predH5ad, predCsv, cells, preds, truth };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

/** `evaluate` input over the annotated cells, from the arrays (optionally as the CSV rounds). */
function expected(f: Fixture, extra: Partial<EvaluationInput>, csv = false): EvaluationInput {
  const round = (v: number) => (csv ? Math.fround(Number(v.toPrecision(6))) : v);
  const idx = f.truth.flatMap((t, i) => (t === null ? [] : [i]));
  return {
    cellNames: idx.map((i) => f.cells[i]),
    predicted: idx.map((i) => CLASSES[f.preds.predicted[i]]),
    confidence: Float32Array.from(idx, (i) => round(f.preds.confidence[i])),
    probabilities: {
      classes: CLASSES,
      values: Float32Array.from(
        idx.flatMap((i) => [0, 1, 2].map((c) => round(f.preds.probabilities[i * 3 + c]))),
      ),
    },
    truth: idx.map((i) => f.truth[i]!),
    trainingLabels: CLASSES,
    ...extra,
  };
}

/** A truth table `cell,<col>` over `rows` (cell index, label) at `path`. */
async function truthCsv(path: string, rows: [string, string][], col = "cell_type") {
  await Deno.writeTextFile(path, formatTable(["cell", col], rows.map((r) => [...r]), ","));
}

Deno.test("evaluate CLI: .h5ad predictions with obs truth print and write evaluate(...)", async () => {
  const [dir, done] = await tempDir();
  try {
    const f = await fixture(dir);
    const json = `${dir}/eval.json`;
    const r = await runCli([
      "--predictions",
      f.predH5ad,
      "--truth",
      "cell_type",
      "--json",
      json,
    ]);
    assert.equal(r.code, 0, r.err);
    // Training labels default to the class names stored with the predictions.
    const want = evaluate(expected(f, {}));
    assert.equal(want.nCells, N - 1);
    assert.ok(want.unseen!.count > 0, "fixture has unseen-type cells");
    assert.equal(r.out, formatEvaluation(want));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(json)), JSON.parse(JSON.stringify(want)));
    assert.match(r.err, /1 cells have no value in "cell_type" and are not scored/);
    assert.match(r.err, /wrote .*eval\.json/);

    // --json - replaces the table on stdout; --quiet silences stderr.
    const q = await runCli([
      "--predictions",
      f.predH5ad,
      "--truth",
      "cell_type",
      "--json",
      "-",
      "--quiet",
      "--training-labels",
      "B,NK",
    ]);
    assert.equal(q.code, 0, q.err);
    assert.equal(q.err, "");
    const want2 = evaluate(expected(f, { trainingLabels: ["B", "NK"] }));
    assert.deepEqual(JSON.parse(q.out), JSON.parse(JSON.stringify(want2)));
  } finally {
    await done();
  }
});

Deno.test("evaluate CLI: CSV predictions + shuffled truth table + model file", async () => {
  const [dir, done] = await tempDir();
  try {
    const f = await fixture(dir);
    // Truth rows in another order: cells are matched by name, not by position.
    const order = new Rng(1).permutation(N);
    const rows = Array.from(order, (i): [string, string] => [f.cells[i], f.truth[i] ?? ""]);
    await truthCsv(`${dir}/truth.csv`, rows);
    const model = `${dir}/m.scnym`;
    const config = resolveConfig("default", { predict: { unknownThreshold: 0.7 } });
    await saveModel(model, {
      toolVersion: "0.1.0",
      createdAt: "2024-01-01T00:00:00Z",
      seed: 5,
      config,
      genes: ["G0"],
      classes: [...CLASSES].reverse(),
      domains: [],
      normalisation: "counts->log1p_cpm",
      training: { reference: "ctrl.h5ad", labelKey: "cell_type" },
    }, new Map());
    const json = `${dir}/e.json`;
    const args = ["--predictions", f.predCsv, "--truth", "cell_type", "--truth-file"];
    const r = await runCli([...args, `${dir}/truth.csv`, "--model", model, "--json", json]);
    assert.equal(r.code, 0, r.err);
    // The CSV holds 6 significant digits; the expectation rounds the arrays the same way.
    const want = evaluate(
      expected(f, { trainingLabels: [...CLASSES].reverse(), confidenceThreshold: 0.7 }, true),
    );
    assert.equal(r.out, formatEvaluation(want));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(json)), JSON.parse(JSON.stringify(want)));
    assert.ok(r.out.includes("confidence < 0.7"), "model threshold reported");
  } finally {
    await done();
  }
});

Deno.test("evaluate CLI: mismatched or incomplete inputs -> one-line error, no output", async () => {
  const [dir, done] = await tempDir();
  try {
    const f = await fixture(dir);
    const all = f.cells.map((c, i): [string, string] => [c, f.truth[i] ?? ""]);
    await truthCsv(`${dir}/renamed.csv`, all.map(([c, t], i) => [i === 7 ? "other" : c, t]));
    await truthCsv(`${dir}/short.csv`, all.slice(1));
    await truthCsv(`${dir}/dup.csv`, all.map(([c, t], i) => [i === 3 ? f.cells[4] : c, t]));
    await truthCsv(`${dir}/othercol.csv`, all, "label");
    const model = `${dir}/other.scnym`;
    await saveModel(model, {
      toolVersion: "0.1.0",
      createdAt: "2024-01-01T00:00:00Z",
      seed: 0,
      config: resolveConfig("default"),
      genes: ["G0"],
      classes: ["B", "NK", "Mono"],
      domains: [],
      normalisation: "counts->log1p_cpm",
      training: {},
    }, new Map());
    await Deno.writeTextFile(`${dir}/existing.json`, "keep");
    const before = listDir(dir);
    const base = ["--predictions", f.predCsv, "--truth", "cell_type", "--json", `${dir}/o.json`];
    const cases: [string[], number, RegExp][] = [
      [
        [...base, "--truth-file", `${dir}/renamed.csv`],
        1,
        /pred\.csv vs truth .*renamed\.csv.*"AAAC-7"/,
      ],
      [
        [...base, "--truth-file", `${dir}/short.csv`],
        1,
        /48 predicted cells but 47 cells with truth/,
      ],
      [[...base, "--truth-file", `${dir}/dup.csv`], 1, /dup\.csv: cell name "AAAC-4" repeats/],
      [
        [...base, "--truth-file", `${dir}/othercol.csv`],
        1,
        /othercol\.csv: table has no truth column "cell_type"; columns are: label/,
      ],
      [
        ["--predictions", f.predH5ad, "--truth", "celltype"],
        1,
        /pred\.h5ad: obs has no truth column "celltype"; columns are: cell_type, condition/,
      ],
      // The query itself has no prediction fields.
      [
        ["--predictions", f.query, "--truth", "cell_type"],
        1,
        /query\.h5ad: obs has no column "scNym"/,
      ],
      [
        ["--predictions", f.predH5ad, "--truth", "cell_type", "--key", "pred"],
        1,
        /no column "pred"/,
      ],
      [
        ["--predictions", f.predCsv, "--truth", "cell_type", "--key", "pred"],
        1,
        /pred\.csv: no "pred" column/,
      ],
      [
        ["--predictions", f.predH5ad, "--truth", "cell_type", "--model", model],
        1,
        /only in the model: "Mono"/,
      ],
      [
        ["--predictions", f.predH5ad, "--truth", "cell_type", "--json", `${dir}/existing.json`],
        1,
        /already exists/,
      ],
      [
        ["--predictions", `${dir}/nope.h5ad`, "--truth", "cell_type"],
        1,
        /predictions file not found/,
      ],
      [["--predictions", f.predCsv, "--truth", "cell_type"], 2, /needs --truth-file/],
      [["--predictions", f.predH5ad, "--truth", "cell_type", "--bogus"], 2, /bogus/],
      [["--truth", "cell_type"], 2, /--predictions is required \(see scnym evaluate --help\)/],
      [["--predictions", f.predH5ad], 2, /nothing to do/],
      [
        ["--predictions", f.predH5ad, "--truth", "cell_type", "--seed", "x"],
        2,
        /--seed expects an integer >= 0/,
      ],
      [
        ["--predictions", f.predH5ad, "--truth", "cell_type", "--report", `${dir}/r.pdf`],
        2,
        /FILE\.html/,
      ],
      [
        ["--predictions", f.predH5ad, "--domains", "nosuch", "--report", `${dir}/r.html`],
        1,
        /no domain column "nosuch"/,
      ],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(args);
      const what = args.join(" ");
      assert.equal(r.code, code, `${what}: exit ${r.code}, stderr ${r.err}`);
      assert.equal(r.out, "", `${what}: nothing on stdout`);
      assert.equal(r.err.split("\n").length, 1, `${what}: one line, got:\n${r.err}`);
      assert.ok(r.err.startsWith("scnym evaluate: error: "), r.err);
      assert.match(r.err, re, what);
      assert.deepEqual(listDir(dir), before, `${what}: no output written`);
    }
    assert.equal(await Deno.readTextFile(`${dir}/existing.json`), "keep");
  } finally {
    await done();
  }
});

Deno.test("evaluate CLI: --report with domains writes HTML, SVGs, mixing in JSON", async () => {
  const [dir, done] = await tempDir();
  try {
    const f = await fixture(dir);
    const report = `${dir}/rep.html`;
    const json = `${dir}/e.json`;
    const r = await runCli([
      "--predictions",
      f.predH5ad,
      "--truth",
      "cell_type",
      "--domains",
      "condition",
      "--report",
      report,
      "--json",
      json,
      "--mixing-k",
      "10",
      "--quiet",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    const lines = r.out.split("\n").filter((l) => l.startsWith("domain mixing"));
    assert.equal(lines.length, 3, r.out);
    assert.ok(lines.every((l) => l.includes("k = 10")));
    const html = await Deno.readTextFile(report);
    for (const s of ["Domain mixing", "Unseen cell types", "Eryth", "UMAP: domain", "pred.h5ad"]) {
      assert.ok(html.includes(s), `report lacks ${s}`);
    }
    const figs = listDir(`${dir}/rep_figures`);
    assert.deepEqual(figs, [
      "confusion.svg",
      "reliability.svg",
      "umap_confidence.svg",
      "umap_domain.svg",
      "umap_predicted.svg",
      "umap_truth.svg",
    ]);
    const out = JSON.parse(await Deno.readTextFile(json));
    assert.equal(out.nCells, N - 1);
    assert.deepEqual(Object.keys(out.mixing), ["learnedUmap", "learned", "inputPca"]);
    assert.equal(out.mixing.learned.k, 10);
    assert.ok(lines[1].includes(out.mixing.learned.normalised.toFixed(3)));

    // Without truth: a report and mixing numbers, no table.
    const bare = await runCli([
      "--predictions",
      f.predH5ad,
      "--domains",
      "condition",
      "--report",
      `${dir}/bare.html`,
      "--quiet",
    ]);
    assert.equal(bare.code, 0, bare.err);
    assert.ok(!bare.out.includes("accuracy") && bare.out.includes("domain mixing"), bare.out);
    const bareHtml = await Deno.readTextFile(`${dir}/bare.html`);
    assert.ok(!bareHtml.includes("Reliability diagram") && bareHtml.includes("UMAP: domain"));
    // The same run again is refused (the report exists) unless --overwrite.
    const again = await runCli(["--predictions", f.predH5ad, "--report", `${dir}/bare.html`]);
    assert.equal(again.code, 1);
    assert.match(again.err, /bare\.html already exists/);
  } finally {
    await done();
  }
});

Deno.test("evaluate CLI as a process: exit codes, one-line errors, no stack trace, --help", async () => {
  const [dir, done] = await tempDir();
  try {
    const f = await fixture(dir);
    const run = async (args: string[]) => {
      const p = await runScript("commands/evaluate.ts", args);
      return { code: p.code, out: p.stdout, err: p.stderr };
    };
    const bad = await run(["--predictions", f.query, "--truth", "cell_type"]);
    assert.equal(bad.code, 1);
    assert.equal(bad.out, "");
    assert.equal(bad.err.trimEnd().split("\n").length, 1, bad.err);
    assert.ok(!/\bat (file|async)/.test(bad.err), "no stack trace");
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.ok(help.out.includes("usage: scnym evaluate") && help.out.includes("example:"));
    const ok = await run(["--predictions", f.predH5ad, "--truth", "cell_type"]);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out.trimEnd(), formatEvaluation(evaluate(expected(f, {}))));
  } finally {
    await done();
  }
});
