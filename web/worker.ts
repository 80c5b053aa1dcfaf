/**
 * The page's worker: it holds the dropped file, reads it and trains with the same code as the CLI
 * (`trainFromFiles`, `predictCells`, `writePredictionOutput`), so the page stays responsive. Files
 * live in h5wasm's in-memory file system, which a `MemoryFs` gives the readers' checks and the
 * writers instead of Deno's file system: the annotated `.h5ad` is written there, then handed over.
 */
/// <reference lib="webworker" />
import h5wasm from "h5wasm/node"; // the web build maps this to h5wasm's browser build (web/imports.json)
import { cellText, columnLength } from "../io/anndata.ts";
import { h5Ready } from "../io/h5.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import type { RunInfo } from "../io/h5ad_write.ts";
import { formatTable, predictionTableHeader, predictionTableRows } from "../io/table.ts";
import { Runtime } from "../runtime/runtime.ts";
import { buildRunReport } from "../commands/shared.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { guardSection } from "../scnym/guard_train.ts";
import { encodeTrainedModel } from "../scnym/checkpoint.ts";
import { writablePrediction, writePredictionOutput } from "../scnym/outputs.ts";
import { type CellPredictions, predictCells, subsetPrediction } from "../scnym/predict.ts";
import { type EmscriptenFs, MemoryFs, useHostFs } from "../util/host_fs.ts";
import { ScnymError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import type { FileRole, FromWorker, ObsColumnInfo, RunSummary, ToWorker } from "./protocol.ts";
import { targetSummary } from "./summary.ts";

/** h5wasm's in-memory file system, installed as the readers' and writers' file system. */
const memoryFs: Promise<MemoryFs> = h5Ready().then(async () => {
  const module = await h5wasm.ready as unknown as { FS: EmscriptenFs };
  const fs = new MemoryFs(module.FS);
  useHostFs(fs);
  return fs;
});
let runtime: Promise<Runtime> | null = null;
let stop: AbortController | null = null;

function post(msg: FromWorker): void {
  (self as unknown as Worker).postMessage(msg);
}

/** The GPU runtime, created once; its adapter is reported to the page. */
function gpu(): Promise<Runtime> {
  return runtime ??= Runtime.create().then((rt) => {
    const limits = rt.device.limits;
    post({
      type: "adapter",
      description: rt.gpu.description,
      isFallback: rt.gpu.isFallback,
      limits: {
        maxBufferSize: limits.maxBufferSize,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      },
    });
    return rt;
  });
}

/** The files loaded, by role. */
const loadedFiles: Partial<Record<FileRole, string>> = {};

/** Stores the file and reports its shape and obs columns (as `inspect` lists them). */
async function openFile(role: FileRole, name: string, bytes: Uint8Array): Promise<void> {
  const fs = await memoryFs;
  // The file this one replaces leaves memory (unless the other role uses it too).
  const old = loadedFiles[role];
  delete loadedFiles[role];
  if (old && !Object.values(loadedFiles).includes(old)) await fs.remove(old);
  await fs.writeFile(name, bytes);
  loadedFiles[role] = name;
  const h = await H5adFile.open(name);
  try {
    const obs = h.obs();
    const columns: ObsColumnInfo[] = [...obs.columns].map(([key, col]) => {
      const values = new Set<string>();
      for (let i = 0; i < columnLength(col) && values.size < 50; i++) values.add(cellText(col, i));
      return { name: key, values: [...values].sort() };
    });
    const info = h.matrix("X").info;
    post({ type: "file", role, name, cells: info.shape[0], genes: info.shape[1], columns });
  } finally {
    h.close();
  }
}

/** Where the annotated copy is written (outside "/", where the dropped files live). */
const ANNOTATED = "/tmp/scnym_annotated.h5ad";

/**
 * The CLI's `--predictions FILE.h5ad`: a copy of `source` with scNym's outputs, written by the
 * same writer into memory, returned as bytes (the in-memory file is removed).
 */
async function annotatedH5ad(
  source: string,
  cells: string[],
  prediction: CellPredictions,
  run: RunInfo,
  split: string[] | undefined,
): Promise<Uint8Array> {
  const fs = await memoryFs;
  const warnings = await writePredictionOutput(ANNOTATED, source, cells, prediction, run, {
    overwrite: true,
    split,
  });
  warnings.forEach((w) => post({ type: "log", text: `warning: ${w}\n` }));
  try {
    return fs.fs.readFile(ANNOTATED);
  } finally {
    await fs.remove(ANNOTATED);
  }
}

async function trainOnFile(msg: Extract<ToWorker, { type: "train" }>): Promise<void> {
  const rt = await gpu();
  stop = new AbortController();
  const progress = new Progress({ write: (text) => post({ type: "log", text }), logEvery: 0 });
  const reference = loadedFiles.reference!;
  const query = msg.targetWhere ? undefined : loadedFiles.query;
  const { result, loaded, config, guard } = await trainFromFiles({
    reference,
    query,
    labels: msg.labels,
    targetWhere: msg.targetWhere || undefined,
    config: msg.config,
    overrides: { train: { epochs: msg.epochs } },
    seed: msg.seed,
    rt,
    progress,
    signal: stop.signal,
    onLoaded: (l) => l.warnings.forEach((w) => post({ type: "log", text: `warning: ${w}\n` })),
    onEpoch: (r) => post({ type: "epoch", ...r }),
  });
  const all = await predictCells(rt, result.model, loaded.set.X, {
    classes: result.classes,
    unknownThreshold: config.predict.unknownThreshold,
    progress,
    calibration: result.calibration,
  });
  const { counts, targetAccuracy } = targetSummary(loaded, all.labels);
  // As the CLI's --predictions: the cells of the file that holds the target.
  const rows = loaded.origin.map((o, i) => (query ? o === "query" : true) ? i : -1)
    .filter((i) => i >= 0);
  const sub = writablePrediction(subsetPrediction(all, rows));
  sub.split = rows.map((i) => result.cellSplit[i] ?? "unused");
  const header = predictionTableHeader(all.classes, { split: true, novelty: !!sub.novelty });
  const cells = rows.map((i) => loaded.cellNames[i]);
  const csv = formatTable(header, [], ",") + predictionTableRows(cells, 0, sub, ",");
  post({ type: "log", text: "writing the annotated .h5ad...\n" });
  const h5ad = await annotatedH5ad(query ?? reference, cells, subsetPrediction(all, rows), {
    tool: "scnym-webgpu",
    version: VERSION,
    seed: msg.seed,
    config: JSON.stringify(config),
    model: "model.scnym",
    normalisation: loaded.set.normalisation,
  }, sub.split);
  // As the CLI names it: `auto` says which configuration the label-free guard kept.
  const configName = guard ? `auto (guard kept ${config.name})` : config.name;
  if (guard) post({ type: "log", text: `guard: kept ${config.name}: ${guard.reason}\n` });
  const summary: RunSummary = {
    seed: msg.seed,
    config: configName,
    epochsRun: result.history.length,
    bestEpoch: result.bestEpoch,
    interrupted: result.interrupted,
    validationAccuracy: result.validation.accuracy,
    targetCells: loaded.set.isTarget.filter(Boolean).length,
    counts,
    targetAccuracy,
    seconds: result.seconds,
    csv,
    h5ad,
    model: await encodeTrainedModel(result.header, result.model, result.calibration),
    report: "",
  };
  post({ type: "log", text: "building the report (UMAP of the learned features)...\n" });
  summary.report = (await buildRunReport({
    loaded,
    prediction: all,
    trainingLabels: result.classes,
    facts: {
      "tool version": VERSION,
      seed: msg.seed,
      config: configName,
      reference,
      query: query ?? `${reference} (${msg.targetWhere})`,
      "label column": msg.labels,
      epochs: `${result.history.length} (kept ${result.bestEpoch + 1})`,
      adapter: rt.gpu.description,
    },
    seed: msg.seed,
    overwrite: false,
    progress,
    sections: guard ? [guardSection(guard)] : undefined,
  })).html;
  post({ type: "done", summary });
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    if (msg.type === "file") await openFile(msg.role, msg.name, new Uint8Array(msg.bytes));
    else if (msg.type === "train") await trainOnFile(msg);
    else stop?.abort();
  } catch (e) {
    // A ScnymError is one clear line; anything else is a bug, shown with its stack.
    const message = e instanceof ScnymError
      ? e.message
      : e instanceof Error
      ? `${e.message}\n${e.stack}`
      : String(e);
    post({ type: "error", message });
  }
};
gpu().catch((e) => post({ type: "error", message: (e as Error).message }));
