/**
 * The library counterparts of `scnym train` and `scnym predict`: from file names to a trained
 * model or to predictions, with the same checks and reports as the command line.
 */
import {
  alignGenes,
  type AlignOptions,
  applyAlignment,
  type GeneAlignment,
} from "../data/align.ts";
import type { Csr } from "../data/csr.ts";
import { type Normalisation, normaliseForModel } from "../data/normalize.ts";
import type { AnnData } from "../io/anndata.ts";
import { readExpression } from "../io/read.ts";
import { Runtime } from "../runtime/runtime.ts";
import type { Progress } from "../util/progress.ts";
import { type ConfigOverrides, resolveConfig, type ScnymConfig } from "./config.ts";
import { type LoadedTraining, loadTrainingData, type TrainingInputs } from "./inputs.ts";
import { type CellPredictions, type LoadedModel, modelOf, predictCells } from "./predict.ts";
import {
  AUTO_CONFIG,
  type GuardConfigs,
  guardConfigs,
  type GuardRecord,
  trainGuarded,
} from "./guard_train.ts";
import { train, type TrainOptions, type TrainResult } from "./train.ts";

/** Options of `trainFromFiles`. */
export interface TrainFromFilesOptions
  extends TrainingInputs, Pick<TrainOptions, "onEpoch" | "profileEpoch" | "inputLayout"> {
  /**
   * `auto` (the default): the label-free guard trains `default`, `no_dan` and `no_ssl` and keeps
   * one (scnym/guard.ts); or the name of a configuration, or a resolved one, which is trained as
   * it is; or resolved configurations of the guard's candidates ...
   */
  config?: string | ScnymConfig | GuardConfigs;
  /** ... deep-merged with these overrides (with a name only). */
  overrides?: ConfigOverrides;
  seed?: number;
  /** Model file to write (the best model so far is kept there during training). */
  out?: string;
  rt?: Runtime;
  progress?: Progress;
  signal?: AbortSignal;
  /** Called once the data are read (before training), e.g. to show their warnings. */
  onLoaded?: (loaded: LoadedTraining) => void;
}

/** What `trainFromFiles` returns. */
export interface TrainFromFilesResult {
  result: TrainResult;
  loaded: LoadedTraining;
  /** The configuration of the model kept. */
  config: ScnymConfig;
  /** The guard's decision and scores (null: a configuration was forced, or training stopped). */
  guard: GuardRecord | null;
  rt: Runtime;
}

/** Reads the inputs and trains; returns the training result and the loaded data. */
export async function trainFromFiles(opts: TrainFromFilesOptions): Promise<TrainFromFilesResult> {
  const spec = opts.config ?? AUTO_CONFIG;
  const configs = spec === AUTO_CONFIG
    ? guardConfigs(opts.overrides)
    : typeof spec === "object" && !("name" in spec)
    ? spec
    : null;
  const config = configs
    ? null
    : typeof spec === "object"
    ? spec as ScnymConfig
    : resolveConfig(spec as string, opts.overrides);
  const loaded = await loadTrainingData(opts);
  opts.onLoaded?.(loaded);
  const rt = opts.rt ?? await Runtime.create();
  const common = {
    seed: opts.seed ?? 0,
    rt,
    checkpointPath: opts.out,
    progress: opts.progress,
    signal: opts.signal,
    onEpoch: opts.onEpoch,
    profileEpoch: opts.profileEpoch,
    inputLayout: opts.inputLayout,
  };
  if (configs) {
    const { result, guard } = await trainGuarded(loaded.set, { ...common, configs });
    return { result, loaded, config: result.header.config, guard, rt };
  }
  const result = await train(loaded.set, { ...common, config: config! });
  return { result, loaded, config: config!, guard: null, rt };
}

/** Options of `predictFile`. */
export interface PredictFileOptions extends AlignOptions {
  /** A model file path, or a model already loaded on `rt`. */
  model: string | LoadedModel;
  query: string;
  matrix?: string;
  /** Labels CSV/TSV to attach to a 10x query (barcode column first). */
  queryLabels?: string;
  /** Overrides the model's own `Unknown` threshold (null: none). */
  unknownThreshold?: number | null;
  rt?: Runtime;
  progress?: Progress;
}

/** What `predictFile` returns. */
export interface PredictFileResult {
  prediction: CellPredictions;
  loaded: LoadedModel;
  /** The query as read (before normalisation and gene alignment). */
  query: AnnData;
  /** The normalised query over the model's genes, as the model saw it. */
  X: Csr;
  alignment: GeneAlignment;
  normalisation: Normalisation;
  warnings: string[];
  threshold: number | null;
  rt: Runtime;
}

/** A file read, normalised as the model's training data was, and aligned to the model's genes. */
export interface QueryForModel {
  query: AnnData;
  X: Csr;
  alignment: GeneAlignment;
  normalisation: Normalisation;
  warnings: string[];
}

/**
 * Reads `file`, normalises it as the training data was and looks up the model's genes (refusing
 * below `minFraction`, default 0.8): what the model sees of a query or of reference cells.
 */
export async function readForModel(
  file: string,
  header: LoadedModel["header"],
  opts: Omit<PredictFileOptions, "model" | "query">,
): Promise<QueryForModel> {
  const input = await readExpression(file, { matrix: opts.matrix, labels: opts.queryLabels });
  const q = input.data;
  const norm = normaliseForModel(q.X, {
    file,
    matrix: q.matrix,
    alternatives: input.alternatives,
  });
  const warnings = [...norm.warnings];
  if (norm.normalisation !== header.normalisation) {
    warnings.push(
      `the model was trained on ${header.normalisation} data but the query is ` +
        `${norm.normalisation}: predictions may be off`,
    );
  }
  const alignment = alignGenes(header.genes, q.var.index, { queryName: file, ...opts });
  const X = applyAlignment(norm.X, alignment);
  return { query: q, X, alignment, normalisation: norm.normalisation, warnings };
}

/**
 * Labels every cell of a query file: normalises it as the training data was, looks up the
 * model's genes (refusing below `minFraction`, default 0.8), predicts in eval mode.
 */
export async function predictFile(opts: PredictFileOptions): Promise<PredictFileResult> {
  const rt = opts.rt ?? await Runtime.create();
  const loaded = await modelOf(rt, opts.model);
  const { header } = loaded;
  const { query: q, X, alignment, normalisation, warnings } = await readForModel(
    opts.query,
    header,
    opts,
  );
  const threshold = opts.unknownThreshold !== undefined
    ? opts.unknownThreshold
    : header.config.predict?.unknownThreshold ?? null;
  const prediction = await predictCells(rt, loaded.model, X, {
    classes: header.classes,
    unknownThreshold: threshold,
    progress: opts.progress,
    calibration: loaded.calibration,
  });
  return {
    prediction,
    loaded,
    query: q,
    X,
    alignment,
    normalisation,
    warnings,
    threshold,
    rt,
  };
}
