/**
 * `scnym train`: trains a model on labelled reference cells and unlabelled target cells, writes
 * the model file (the best model so far is kept there during training, so Ctrl-C leaves a usable
 * model), and optionally predictions (every cell of the file holding the target, each with its
 * training split) and an HTML report.
 */
import { resolveConfig, type ScnymConfig } from "../scnym/config.ts";
import { AUTO_CONFIG, guardConfigs, type GuardRecord, guardSection } from "../scnym/guard_train.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { predictCells, subsetPrediction } from "../scnym/predict.ts";
import type { TrainResult } from "../scnym/train.ts";
import type { EpochRecord } from "../scnym/types.ts";
import { interpretCells } from "../scnym/interpret.ts";
import { writePredictionOutput } from "../scnym/outputs.ts";
import { ScnymError } from "../util/errors.ts";
import { CLI_OVERWRITE_HINT, refuseExisting, writeFileAtomic } from "../util/fs.ts";
import { formatDuration, Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import {
  GENE_MATCH_OPTIONS,
  geneMatchFlags,
  numberFlag,
  requireFlag,
  runCommand,
  stringFlag,
  warn,
} from "./common.ts";
import { readConfigArg, reportForRun } from "./shared.ts";

const HELP =
  `usage: scnym train --reference REF --labels COL (--query QUERY | --target-where COL=VALUE)
                   --out MODEL [options]

Trains scNym (MixMatch semi-supervision + domain adversary) to transfer the cell-type labels of
REF to the unlabelled target cells, on the GPU (any WebGPU adapter; Mesa's software one works).

inputs (.h5ad, 10x .h5 or 10x mtx folder):
  --reference FILE        labelled cells
  --labels COL            obs column with the cell types of the reference
  --query FILE            unlabelled target cells in a second file (genes are inner-joined)
  --target-where COL=V    or: target cells are the reference file's cells with COL == V
                          (several values: COL=V1,V2); all other cells must be labelled
  --reference-where COL=V labelled cells are only the reference file's cells with COL == V
                          (others are left out), e.g. one technology of several
  --domains COL           obs column of each cell's domain (technology, donor, batch) for a
                          multi-domain adversary (default: reference vs target)
  --matrix NAME           matrix to use: X (default), raw, or a layer name
  --reference-labels CSV  labels table for 10x inputs (barcode column first)
  --query-labels CSV      same, for the query
  --ignore-case           match gene names case-insensitively
  --strip-ensembl-version match ENSG00000141510.12 to ENSG00000141510
  --make-unique           make duplicate gene names unique (GENE, GENE-1, ...) instead of failing

training:
  --config NAME|FILE      auto (the default): a label-free guard trains default, no_dan and
                          no_ssl on one split and keeps the one the target cells and the
                          held-out reference cells support (3 trainings; its scores and reason
                          go to stderr, MODEL.json and the report); or force one: default |
                          no_new_identity | new_identity_discovery | no_dan | no_ssl, or a JSON
                          file of overrides ({"base": "no_dan", "train": {...}}; base "auto"
                          applies them to every candidate)
  --epochs N              maximum epochs (default 100; early stopping may end sooner)
  --seed N                random seed (default 0); recorded in every output
  --unknown-threshold P   label cells below confidence P "Unknown" in the predictions

outputs:
  --out MODEL             model file to write (e.g. model.scnym)
  --predictions FILE      predictions for every cell of the file holding the target cells (the
                          query, or with --target-where the reference file itself): .h5ad (a
                          copy with obs/scNym etc.) or .csv/.tsv; obs/scNym_split says what
                          each cell was in training (train, early_stopping, validation,
                          target), and scnym evaluate scores only the target cells by default
  --report FILE.html      HTML report (UMAP, mixing, and accuracy when target labels exist)
  --truth COL             target annotation column for the report (default: --labels)
  --interpret             add to the report the genes that drive each class (guided backprop;
                          see scnym interpret)
  --overwrite             replace existing output files
  --quiet                 no progress on stderr (a terminal gets a live status line, a log
                          file a status line every 15 s); the summary still goes to stdout
  --log-json FILE         one JSON line per epoch (losses, validation accuracy, seconds) for
                          pipelines

example:
  scnym train --reference kang.h5ad --labels cell_type --target-where condition=STIM \\
              --out kang.scnym --predictions kang_pred.h5ad --report kang.html`;

const OPTIONS = {
  reference: { type: "string" },
  labels: { type: "string" },
  query: { type: "string" },
  "target-where": { type: "string" },
  "reference-where": { type: "string" },
  domains: { type: "string" },
  matrix: { type: "string" },
  "reference-labels": { type: "string" },
  "query-labels": { type: "string" },
  ...GENE_MATCH_OPTIONS,
  config: { type: "string" },
  epochs: { type: "string" },
  seed: { type: "string" },
  "unknown-threshold": { type: "string" },
  out: { type: "string" },
  predictions: { type: "string" },
  report: { type: "string" },
  interpret: { type: "boolean" },
  truth: { type: "string" },
  overwrite: { type: "boolean" },
  quiet: { type: "boolean" },
  "log-json": { type: "string" },
} as const;

/** Runs `scnym train`; returns the exit code. */
export function trainCommand(args: string[]): Promise<number> {
  return runCommand({ name: "train", help: HELP, options: OPTIONS }, args, async (v) => {
    const reference = requireFlag(v, "reference");
    const labels = requireFlag(v, "labels");
    const out = requireFlag(v, "out");
    const query = stringFlag(v, "query");
    const targetWhere = stringFlag(v, "target-where");
    const overwrite = Boolean(v.overwrite);
    const seed = numberFlag(v, "seed", { min: 0, max: 2 ** 32 - 1, integer: true }) ?? 0;
    const epochs = numberFlag(v, "epochs", { min: 1, integer: true });
    const threshold = numberFlag(v, "unknown-threshold", { min: 0, max: 1 });
    const { name, overrides } = await readConfigArg(stringFlag(v, "config") ?? AUTO_CONFIG);
    const adjust = (config: ScnymConfig) => {
      if (epochs !== undefined) config.train.epochs = epochs;
      if (threshold !== undefined) config.predict.unknownThreshold = threshold;
      return config;
    };
    const configs = name === AUTO_CONFIG ? guardConfigs(overrides) : null;
    if (configs) Object.values(configs).forEach(adjust);
    const forced = configs ? null : adjust(resolveConfig(name, overrides));
    const predictionsPath = stringFlag(v, "predictions");
    const reportPath = stringFlag(v, "report");
    if (v.interpret && !reportPath) {
      throw new ScnymError("--interpret adds a section to the report: give --report too", 2);
    }
    const logJson = stringFlag(v, "log-json");
    await refuseExisting([out, predictionsPath, reportPath, logJson], {
      overwrite,
      hint: CLI_OVERWRITE_HINT,
    });
    if (!query && !targetWhere) {
      warn([
        "no --query or --target-where: training on labelled cells only (no MixMatch, no adversary)",
      ]);
    }

    const progress = new Progress({ quiet: Boolean(v.quiet) });
    // Ctrl-C: finish the epoch, keep the best model written so far, exit 130. A second Ctrl-C
    // exits at once; the model file is only ever replaced atomically, so it stays loadable.
    const abort = new AbortController();
    const onInt = () => {
      if (abort.signal.aborted) Deno.exit(130);
      console.error("\ninterrupted: stopping after this epoch (Ctrl-C again to quit now)");
      abort.abort();
    };
    Deno.addSignalListener("SIGINT", onInt);
    const t0 = performance.now();
    // One line per epoch, written as it ends, so a pipeline can follow the file while it grows.
    const epochLog = logJson
      ? Deno.openSync(logJson, { write: true, create: true, truncate: true })
      : undefined;
    const encoder = new TextEncoder();
    const onEpoch = (rec: EpochRecord) => {
      const elapsedSeconds = (performance.now() - t0) / 1000;
      epochLog?.writeSync(encoder.encode(JSON.stringify({ ...rec, elapsedSeconds }) + "\n"));
    };
    let run;
    try {
      run = await trainFromFiles({
        reference,
        labels,
        query,
        targetWhere,
        referenceWhere: stringFlag(v, "reference-where"),
        domains: stringFlag(v, "domains"),
        truth: stringFlag(v, "truth"),
        matrix: stringFlag(v, "matrix"),
        referenceLabels: stringFlag(v, "reference-labels"),
        queryLabels: stringFlag(v, "query-labels"),
        geneMatch: geneMatchFlags(v),
        config: configs ?? forced!,
        seed,
        out,
        progress,
        signal: abort.signal,
        onEpoch,
        onLoaded: (l) => warn(l.warnings),
      });
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
      epochLog?.close();
    }
    const { result, loaded, rt, config, guard } = run;
    const summary = {
      tool: "scnym-webgpu",
      version: VERSION,
      seed,
      config,
      guard,
      model: out,
      classes: result.classes,
      domains: result.domains,
      splits: result.splits,
      bestEpoch: result.bestEpoch,
      stoppedEarly: result.stoppedEarly,
      interrupted: result.interrupted,
      validationAccuracy: result.validation.accuracy,
      calibration: result.header.calibration ?? null,
      seconds: result.seconds,
      adapter: rt.gpu.description,
      history: result.history,
    };
    // The summary belongs to the model at `out`, which was refused above unless --overwrite.
    await writeFileAtomic(`${out}.json`, JSON.stringify(summary, null, 2) + "\n", {
      overwrite: true,
    });
    if (result.interrupted) {
      console.log(trainingSummary(result, out, null, guard));
      console.error(`interrupted; the best model so far is in ${out}`);
      return 130;
    }

    // Predict every cell (reference and target): the summary counts the target's predictions,
    // and the report shows both in one embedding.
    const all = await predictCells(rt, result.model, loaded.set.X, {
      classes: result.classes,
      unknownThreshold: config.predict.unknownThreshold,
      progress,
      calibration: result.calibration,
    });
    const targetLabels = all.labels.filter((_, i) => loaded.set.isTarget[i]);
    if (predictionsPath || reportPath) {
      const run = {
        tool: "scnym-webgpu",
        version: VERSION,
        seed,
        config: JSON.stringify(config),
        model: out,
        normalisation: loaded.set.normalisation,
      };
      if (predictionsPath) {
        // The cells of the file that holds the target: the query, or the reference itself.
        const rows = loaded.origin.map((o, i) => (query ? o === "query" : true) ? i : -1)
          .filter((i) => i >= 0);
        const sub = subsetPrediction(all, rows);
        const split = rows.map((i) => result.cellSplit[i] ?? "unused");
        const w = await writePredictionOutput(
          predictionsPath,
          query ?? reference,
          rows.map((i) => loaded.cellNames[i]),
          sub,
          run,
          { overwrite, split },
        );
        warn(w);
        console.error(`predictions written to ${predictionsPath}`);
      }
      if (reportPath) {
        await reportForRun(reportPath, {
          loaded,
          prediction: all,
          trainingLabels: result.classes,
          facts: {
            "tool version": VERSION,
            seed,
            config: guard ? `auto (guard kept ${config.name})` : config.name,
            reference,
            query: query ?? `${reference} (${targetWhere ?? "no target"})`,
            "label column": labels,
            epochs: `${result.history.length} (kept ${result.bestEpoch + 1})`,
            adapter: rt.gpu.description,
          },
          seed,
          overwrite,
          progress,
          sections: guard ? [guardSection(guard)] : undefined,
          saliency: v.interpret
            ? await interpretCells(rt, result.model, loaded.set.X, all, loaded.set.genes, {
              method: "guided",
              seed,
              progress,
            })
            : undefined,
        });
        console.error(`report written to ${reportPath}`);
      }
    }
    console.error(`model written to ${out} (summary: ${out}.json)`);
    console.log(trainingSummary(result, out, targetLabels, guard));
    return 0;
  });
}

/**
 * The run in a few lines for stdout (printed even with --quiet): epochs, the epoch kept, held-out
 * validation accuracy, the target cells' predicted labels (null: not predicted) and the time.
 */
function trainingSummary(
  r: TrainResult,
  out: string,
  targetLabels: string[] | null,
  guard: GuardRecord | null,
): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const how = r.interrupted ? "interrupted" : r.stoppedEarly ? "early stop" : "all epochs";
  const lines = [
    `configuration: ${r.header.config.name}` +
    (guard ? ` (kept by the guard, ${guard.rule}: ${guard.reason})` : ""),
    `epochs: ${r.history.length} (${how}); best epoch: ` +
    (r.bestEpoch >= 0 ? String(r.bestEpoch + 1) : "none (the last epoch's weights were kept)"),
    "validation accuracy (held-out labelled cells): " +
    (r.validation.accuracy === null
      ? "n/a (no validation cells)"
      : `${pct(r.validation.accuracy)} of ${r.validation.cells} cells`),
  ];
  if (targetLabels === null) lines.push("target predictions: not made (interrupted)");
  else if (targetLabels.length === 0) lines.push("target predictions: no target cells");
  else {
    const counts = new Map<string, number>();
    for (const l of targetLabels) counts.set(l, (counts.get(l) ?? 0) + 1);
    const sorted = [...counts].sort((a, b) => b[1] - a[1]);
    lines.push(
      `target predictions (${targetLabels.length} cells): ` +
        sorted.map(([l, n]) => `${l} ${n} (${pct(n / targetLabels.length)})`).join(", "),
    );
  }
  lines.push(`time: ${formatDuration(r.seconds)} training; model: ${out}`);
  return lines.join("\n");
}

if (import.meta.main) Deno.exit(await trainCommand(Deno.args));
