/**
 * Checkpointing during training: a GPU copy of the best weights so far, written to the model
 * file at most every 10 s (a download costs a GPU sync) and once at the end (with the
 * calibration), with the header built from the run's fixed facts and its progress so far.
 */
import { ScnymModel } from "../nn/model.ts";
import { VERSION } from "../version.ts";
import { type Calibration, type CalibrationRecord, calibrationTensors } from "./calibration.ts";
import type { ScnymConfig } from "./config.ts";
import { encodeModel, saveModel } from "./model_file.ts";
import type { EpochRecord, TrainingSet } from "./types.ts";

/** Everything that goes into a model file's header. */
export type HeaderFields = Parameters<typeof saveModel>[1];

/** Facts of a run, fixed before its first epoch. */
export interface RunFacts {
  seed: number;
  config: ScnymConfig;
  data: TrainingSet;
  classes: string[];
  /** The adversary's domains (empty when it is off). */
  domains: string[];
  adapter: string;
  cells: { train: number; earlyStopping: number; validation: number; target: number };
  semiSupervised: boolean;
  adversary: boolean;
  warnings: string[];
}

/** What a run has done so far. */
export interface RunProgress {
  /** Fitted once the best weights are final (see `TrainResult.calibration`). */
  calibration?: CalibrationRecord;
  /** Epoch whose weights are kept (-1: none yet). */
  bestEpoch: number;
  history: EpochRecord[];
  stoppedEarly: boolean;
  interrupted: boolean;
}

/** The model file header of a run at this point. */
export function buildHeader(f: RunFacts, p: RunProgress): HeaderFields {
  return {
    toolVersion: VERSION,
    createdAt: new Date().toISOString(),
    seed: f.seed,
    config: f.config,
    genes: f.data.genes,
    classes: f.classes,
    domains: f.domains,
    normalisation: f.data.normalisation,
    training: {
      ...f.data.description,
      adapter: f.adapter,
      cells: f.cells,
      semiSupervised: f.semiSupervised,
      adversary: f.adversary,
      bestEpoch: p.bestEpoch,
      epochsRun: p.history.length,
      stoppedEarly: p.stoppedEarly,
      interrupted: p.interrupted,
      warnings: f.warnings,
      history: p.history,
    },
    ...(p.calibration ? { calibration: p.calibration } : {}),
  };
}

/** A trained model's tensors: its weights plus the calibration's novelty statistics. */
async function trainedTensors(
  model: ScnymModel,
  calibration: Calibration | null,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const tensors = await model.download();
  if (calibration) { for (const [k, t] of calibrationTensors(calibration)) tensors.set(k, t); }
  return tensors;
}

/** A trained model's file as bytes (what `saveTrainedModel` writes; the web page downloads it). */
export async function encodeTrainedModel(
  header: HeaderFields,
  model: ScnymModel,
  calibration: Calibration | null,
): Promise<Uint8Array> {
  return encodeModel(header, await trainedTensors(model, calibration));
}

/** Writes a trained model's file: its weights plus the calibration's novelty statistics. */
export async function saveTrainedModel(
  path: string,
  header: HeaderFields,
  model: ScnymModel,
  calibration: Calibration | null,
): Promise<void> {
  await saveModel(path, header, await trainedTensors(model, calibration));
}

/** Checkpoints are written at most this often (ms): each one downloads the whole model. */
const SAVE_INTERVAL_MS = 10_000;

/** The best weights of a run (on the GPU) and their model file. */
export class Checkpoint {
  readonly best: ScnymModel;
  /** Set once training is over, before the last save. */
  calibration: Calibration | null = null;
  #lastSave = 0;
  #dirty = false;

  /** Starts from `model`'s current weights; without `path` nothing is written. */
  constructor(
    readonly model: ScnymModel,
    seed: number,
    readonly path: string | undefined,
    readonly header: () => HeaderFields,
  ) {
    this.best = ScnymModel.create(model.rt, model.shape, seed);
    this.best.copyFrom(model);
  }

  /** Keeps the model's current weights as the best. */
  improved(): void {
    this.best.copyFrom(this.model);
    this.#dirty = true;
  }

  /** Writes the best weights if they changed and the last write is old enough. */
  async saveIfDue(): Promise<void> {
    if (this.#dirty && performance.now() - this.#lastSave > SAVE_INTERVAL_MS) await this.save();
  }

  /** Writes the best weights now (when there is a path). */
  async save(): Promise<void> {
    if (!this.path) return;
    await saveTrainedModel(this.path, this.header(), this.best, this.calibration);
    this.#lastSave = performance.now();
    this.#dirty = false;
  }

  /**
   * End of training: the model takes the best weights (`kept`), or they become the model's
   * last ones when no epoch qualified. The caller then calibrates and `save`s.
   */
  restoreBest(kept: boolean): void {
    if (kept) this.model.copyFrom(this.best);
    else this.best.copyFrom(this.model);
  }

  /** Frees the best-weights copy. */
  release(): void {
    this.best.destroy();
  }
}
