/**
 * Transfer accuracy on the real datasets of ../shared/data: trains with each configuration and
 * seed, predicts every cell, and scores the target cells (all of them; unseen types count as
 * wrong). Also the calibration, unseen-type AUROC and domain-mixing entropy of the learned
 * features. Results go to bench/results/accuracy-<date>.json (rewritten after every run).
 *
 *   deno run -A bench/accuracy.ts [--tasks kang,sym_3pv2_5p,sym_5p_3pv1,pancreas]
 *                                 [--configs default,no_dan,no_ssl] [--seeds 0,1,2]
 *                                 [--report-dir DIR]  (HTML report of each run)
 *                                 [--overrides JSON]  (deep-merged into every configuration)
 */
import { parseArgs } from "node:util";
import { selectRows } from "../data/csr.ts";
import { buildTransferReport, writeTransferReport } from "../eval/pipeline.ts";
import { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { predictCells, subsetPrediction } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";

const DATA = new URL("../../shared/data/", import.meta.url).pathname;

/** The benchmark tasks of the training issue, with the original scNym's scores. */
const TASKS: Record<string, {
  file: string;
  labels: string;
  targetWhere: string;
  referenceWhere?: string;
  original: { accuracy: number; macroF1: number };
  svm: number;
}> = {
  kang: {
    file: "kang_ifnb_sub_2000.h5ad",
    labels: "cell_type",
    targetWhere: "condition=STIM",
    original: { accuracy: 0.866, macroF1: 0.677 },
    svm: 0.875,
  },
  sym_3pv2_5p: {
    file: "pbmc_symphony_3tech_1200.h5ad",
    labels: "cell_type",
    referenceWhere: "tech=3pv2",
    targetWhere: "tech=5p",
    original: { accuracy: 0.959, macroF1: 0.843 },
    svm: 0.965,
  },
  sym_5p_3pv1: {
    file: "pbmc_symphony_3tech_1200.h5ad",
    labels: "cell_type",
    referenceWhere: "tech=5p",
    targetWhere: "tech=3pv1",
    original: { accuracy: 0.903, macroF1: 0.613 },
    svm: 0.903,
  },
  pancreas: {
    file: "pancreas_wang_xin_1175.h5ad",
    labels: "cell_type",
    targetWhere: "study=xin",
    original: { accuracy: 0.986, macroF1: 0.989 },
    svm: 0.985,
  },
};

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
const configs = args.values.configs!.split(",");
const seeds = args.values.seeds!.split(",").map(Number);
for (const t of tasks) if (!TASKS[t]) throw new Error(`unknown task ${t}`);
try {
  Deno.statSync(DATA);
} catch {
  console.error(`skipped: ${DATA} is absent (the shared datasets are needed for this benchmark)`);
  Deno.exit(0);
}

const rt = await Runtime.create();
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outPath = new URL(`results/accuracy-${stamp}.json`, import.meta.url).pathname;
const runs: Record<string, unknown>[] = [];
const progress = new Progress({ quiet: true });

const write = () =>
  Deno.writeTextFileSync(
    outPath,
    JSON.stringify(
      {
        name: "accuracy",
        date: new Date().toISOString(),
        command: `deno run -A bench/accuracy.ts ${Deno.args.join(" ")}`.trim(),
        version: VERSION,
        adapter: rt.gpu.description,
        runs,
        summary: summarise(),
      },
      null,
      2,
    ) + "\n",
  );

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function summarise() {
  const out: Record<string, unknown> = {};
  for (const t of tasks) {
    for (const c of configs) {
      const name = args.values.label ? `${c}+${args.values.label}` : c;
      const rs = runs.filter((r) => r.task === t && r.config === name) as Record<
        string,
        number
      >[];
      if (!rs.length) continue;
      out[`${t}/${name}`] = {
        seeds: rs.length,
        accuracy: mean(rs.map((r) => r.accuracy)),
        macroF1: mean(rs.map((r) => r.macroF1)),
        ece: mean(rs.map((r) => r.ece)),
        mixingLearned: mean(rs.map((r) => r.mixingLearned)),
        mixingLearnedUmap: mean(rs.map((r) => r.mixingLearnedUmap)),
        mixingInputPca: mean(rs.map((r) => r.mixingInputPca)),
        unseenAuroc: rs[0].unseenAuroc === null ? null : mean(rs.map((r) => r.unseenAuroc)),
        original: TASKS[t].original,
        svm: TASKS[t].svm,
        trainSeconds: mean(rs.map((r) => r.trainSeconds)),
      };
    }
  }
  return out;
}

for (const t of tasks) {
  const task = TASKS[t];
  for (const config of configs) {
    for (const seed of seeds) {
      const overrides = args.values.overrides ? JSON.parse(args.values.overrides) : {};
      if (args.values.epochs) {
        overrides.train = { ...overrides.train, epochs: Number(args.values.epochs) };
      }
      const { result, loaded } = await trainFromFiles({
        reference: DATA + task.file,
        labels: task.labels,
        targetWhere: task.targetWhere,
        referenceWhere: task.referenceWhere,
        config,
        overrides,
        seed,
        rt,
        progress,
      });
      const used = loaded.set.isTarget.map((tg, i) => tg || loaded.set.labels[i] !== null);
      const p = await predictCells(rt, result.model, loaded.set.X, { classes: result.classes });
      const idx = used.map((u, i) => u ? i : -1).filter((i) => i >= 0);
      const report = await buildTransferReport({
        facts: { task: t, config, seed, version: VERSION },
        cellNames: idx.map((i) => loaded.cellNames[i]),
        predicted: idx.map((i) => p.labels[i]),
        confidence: Float32Array.from(idx, (i) => p.confidence[i]),
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
        config: args.values.label ? `${config}+${args.values.label}` : config,
        overrides,
        resolvedConfig: result.header.config,
        seed,
        accuracy: ev.accuracy,
        macroF1: ev.macroF1,
        medianF1: ev.medianF1,
        ece: ev.calibration.ece,
        unseenAuroc: ev.unseen?.auroc ?? null,
        unseenCells: ev.unseen?.count ?? 0,
        targetCells: ev.nCells,
        mixingLearned: report.mixing?.learned?.normalised ?? null,
        mixingLearnedUmap: report.mixing?.learnedUmap?.normalised ?? null,
        mixingInputPca: report.mixing?.inputPca?.normalised ?? null,
        bestEpoch: result.bestEpoch,
        epochsRun: result.history.length,
        trainSeconds: result.seconds,
        validationAccuracy: result.validation.accuracy,
      };
      runs.push(run);
      console.log(JSON.stringify(run));
      write();
      result.model.destroy();
    }
  }
}
console.log(JSON.stringify(summarise(), null, 2));
console.log(`written to ${outPath}`);
