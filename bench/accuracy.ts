/**
 * Transfer accuracy on the real datasets of ../shared/data (or $SCNYM_DATA): for each task, the
 * baselines a user would try instead (a linear SVM and a logistic regression on log1p-CPM, fitted
 * on every labelled reference cell; bench/baselines.ts, deterministic, one run), then scNym with
 * each configuration and seed. Every method scores all target cells of the same reference/target
 * partition (unseen types count as wrong). For scNym also the calibration, unseen-type AUROC,
 * domain mixing of the learned features and, when the label-free guard ran (`--configs auto`), its
 * choice. The original scNym's figures are recorded ones (it cannot run here). Results go to
 * bench/results/accuracy-<date>.json (rewritten after every run); a markdown table of means over
 * seeds ends the output.
 *
 *   deno run -A bench/accuracy.ts [--tasks kang,sym_3pv2_5p,sym_5p_3pv1,pancreas]
 *                                 [--configs default,no_dan,no_ssl | none (baselines only)]
 *                                 [--seeds 0,1,2]
 *                                 [--report-dir DIR]  (HTML report of each run)
 *                                 [--overrides JSON]  (deep-merged into every configuration)
 */
import { parseArgs } from "node:util";
import { selectRows } from "../data/csr.ts";
import { buildTransferReport, writeTransferReport } from "../eval/pipeline.ts";
import { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { loadTrainingData } from "../scnym/inputs.ts";
import { predictCells, subsetPrediction } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import { linearBaselines } from "./baselines.ts";
import { DATA, TASKS } from "./tasks.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: Object.keys(TASKS).join(",") },
    configs: { type: "string", default: "default" },
    seeds: { type: "string", default: "0,1,2" },
    "report-dir": { type: "string" },
    epochs: { type: "string" },
    overrides: { type: "string" },
    label: { type: "string" },
  },
});
const tasks = args.values.tasks!.split(",");
const configs = args.values.configs === "none" ? [] : args.values.configs!.split(",");
const seeds = args.values.seeds!.split(",").map(Number);
for (const t of tasks) if (!TASKS[t]) throw new Error(`unknown task ${t}`);
try {
  Deno.statSync(DATA);
} catch {
  console.error(
    `skipped: ${DATA} is absent (the shared datasets are needed for this benchmark; ` +
      "set SCNYM_DATA to their folder)",
  );
  Deno.exit(0);
}

const BASELINES = ["linear_svm", "logistic"];
const rt = configs.length ? await Runtime.create() : null;
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outPath = new URL(`results/accuracy-${stamp}.json`, import.meta.url).pathname;
const runs: Record<string, unknown>[] = [];
const progress = new Progress({ quiet: true });
const configName = (c: string) => args.values.label ? `${c}+${args.values.label}` : c;

const write = () =>
  Deno.writeTextFileSync(
    outPath,
    JSON.stringify(
      {
        name: "accuracy",
        date: new Date().toISOString(),
        command: `deno run -A bench/accuracy.ts ${Deno.args.join(" ")}`.trim(),
        version: VERSION,
        adapter: rt?.gpu.description ?? null,
        runs,
        summary: summarise(),
      },
      null,
      2,
    ) + "\n",
  );

/** Mean of the runs' values, or null when any run has none (e.g. the SVM's ECE). */
function mean(xs: unknown[]): number | null {
  if (!xs.length || xs.some((x) => typeof x !== "number")) return null;
  return (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
}

function summarise() {
  const out: Record<string, Record<string, unknown>> = {};
  for (const t of tasks) {
    for (const name of [...BASELINES, ...configs.map(configName)]) {
      const rs = runs.filter((r) => r.task === t && r.config === name);
      if (!rs.length) continue;
      const avg = (key: string) => mean(rs.map((r) => r[key]));
      out[`${t}/${name}`] = {
        runs: rs.length,
        accuracy: avg("accuracy"),
        macroF1: avg("macroF1"),
        ece: avg("ece"),
        unseenAuroc: avg("unseenAuroc"),
        noveltyAuroc: avg("noveltyAuroc"),
        mixingLearned: avg("mixingLearned"),
        mixingLearnedUmap: avg("mixingLearnedUmap"),
        guardChoices: rs.some((r) => r.guard) ? rs.map((r) => guardChoice(r.guard)) : null,
        originalRecorded: TASKS[t].original,
        seconds: avg("trainSeconds") ?? avg("fitSeconds"),
      };
    }
  }
  return out;
}

/** The guard's chosen configuration, from whichever field its record names it in. */
function guardChoice(guard: unknown): string | null {
  const g = guard as { chosen?: string; choice?: string } | null | undefined;
  return g?.chosen ?? g?.choice ?? null;
}

const f3 = (x: unknown) => typeof x === "number" ? x.toFixed(3) : "-";

/** Means over seeds as a markdown table, one block of rows per task. */
function markdown(): string {
  const summary = summarise();
  const lines = [
    "| task | method | runs | accuracy | macro-F1 | ECE | guard choice |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const t of tasks) {
    const o = TASKS[t].original;
    lines.push(
      `| ${t} | original scNym (recorded) | - | ${f3(o.accuracy)} | ${f3(o.macroF1)} | - | - |`,
    );
    for (const [key, s] of Object.entries(summary)) {
      if (!key.startsWith(`${t}/`)) continue;
      const choices = (s.guardChoices as string[] | null)?.join(", ") ?? "-";
      lines.push(
        `| ${t} | ${key.slice(t.length + 1)} | ${s.runs} | ${f3(s.accuracy)} | ${f3(s.macroF1)} | ${
          f3(s.ece)
        } | ${choices} |`,
      );
    }
  }
  return lines.join("\n");
}

for (const t of tasks) {
  const task = TASKS[t];
  const inputs = {
    reference: DATA + task.file,
    labels: task.labels,
    targetWhere: task.targetWhere,
    referenceWhere: task.referenceWhere,
  };
  for (const b of linearBaselines(await loadTrainingData(inputs))) {
    const run = { task: t, kind: "baseline", ...b };
    runs.push(run);
    console.log(JSON.stringify(run));
    write();
  }
  for (const config of configs) {
    for (const seed of seeds) {
      const overrides = args.values.overrides ? JSON.parse(args.values.overrides) : {};
      if (args.values.epochs) {
        overrides.train = { ...overrides.train, epochs: Number(args.values.epochs) };
      }
      const trained = await trainFromFiles({
        ...inputs,
        config,
        overrides,
        seed,
        rt: rt!,
        progress,
      });
      const { result, loaded } = trained;
      // The guard's record, when this version of trainFromFiles returns one.
      const guard = (trained as { guard?: unknown }).guard ?? null;
      const used = loaded.set.isTarget.map((tg, i) => tg || loaded.set.labels[i] !== null);
      const p = await predictCells(rt!, result.model, loaded.set.X, {
        classes: result.classes,
        calibration: result.calibration,
      });
      const idx = used.map((u, i) => u ? i : -1).filter((i) => i >= 0);
      const report = await buildTransferReport({
        facts: { task: t, config, seed, version: VERSION },
        cellNames: idx.map((i) => loaded.cellNames[i]),
        predicted: idx.map((i) => p.labels[i]),
        confidence: Float32Array.from(idx, (i) => p.confidence[i]),
        novelty: p.novelty ? Float32Array.from(idx, (i) => p.novelty![i]) : undefined,
        embedding: { data: subsetPrediction(p, idx).embedding, dims: p.hidden },
        truth: idx.map((i) => loaded.truth[i]),
        domain: idx.map((i) => loaded.set.isTarget[i] ? "target" : "reference"),
        trainingLabels: result.classes,
        input: selectRows(loaded.set.X, idx),
        seed,
      });
      if (args.values["report-dir"]) {
        await writeTransferReport(
          `${args.values["report-dir"]}/${t}-${config}-seed${seed}.html`,
          report,
          { overwrite: true },
        );
      }
      const ev = report.evaluation!;
      const run = {
        task: t,
        kind: "scnym",
        config: configName(config),
        overrides,
        resolvedConfig: result.header.config,
        seed,
        accuracy: ev.accuracy,
        macroF1: ev.macroF1,
        medianF1: ev.medianF1,
        ece: ev.calibration.ece,
        unseenAuroc: ev.unseen?.auroc ?? null,
        noveltyAuroc: ev.unseen?.noveltyAuroc ?? null,
        temperature: result.calibration.temperature,
        unseenCells: ev.unseen?.count ?? 0,
        targetCells: ev.nCells,
        mixingLearned: report.mixing?.learned?.normalised ?? null,
        mixingLearnedUmap: report.mixing?.learnedUmap?.normalised ?? null,
        mixingInputPca: report.mixing?.inputPca?.normalised ?? null,
        bestEpoch: result.bestEpoch,
        epochsRun: result.history.length,
        trainSeconds: result.seconds,
        validationAccuracy: result.validation.accuracy,
        guard,
      };
      runs.push(run);
      console.log(JSON.stringify(run));
      write();
      result.model.destroy();
    }
  }
}
console.log(JSON.stringify(summarise(), null, 2));
console.log(`written to ${outPath}\n`);
console.log(markdown());
