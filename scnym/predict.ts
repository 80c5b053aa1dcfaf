/**
 * Prediction with a trained model: eval-mode passes over chunks of cells, returning labels,
 * confidence (the largest class probability), every class probability and the embedding.
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { type GpuCsr, releaseCsr, uploadCsr } from "../nn/gpu_csr.ts";
import { ScnymModel } from "../nn/model.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { argmaxRow } from "../util/argmax.ts";
import { ScnymError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { type Calibration, cellNovelty, NO_CALIBRATION, readCalibration } from "./calibration.ts";
import { loadModel, type ModelHeader } from "./model_file.ts";
import { EVAL_CHUNK } from "./types.ts";

/** The label given to cells below the confidence threshold. */
export const UNKNOWN = "Unknown";

/** Per-cell outputs of a model. */
export interface CellPredictions {
  classes: string[];
  /** Predicted class per cell (`Unknown` below the threshold, when one is set). */
  labels: string[];
  /** Largest class probability per cell. */
  confidence: Float32Array;
  /** Class probabilities, cells x classes, row-major (at the model's calibrated temperature). */
  probabilities: Float32Array;
  /**
   * The network's logits, cells x classes, row-major (before the temperature); absent from
   * predictions read back from files.
   */
  logits?: Float32Array;
  /** The learned embedding (last hidden layer, post-ReLU), cells x hidden, row-major. */
  embedding: Float32Array;
  hidden: number;
  /**
   * Novelty per cell, higher = more likely a type the reference lacks (scnym/calibration.ts,
   * `cellNovelty`); null or absent when the model file has no novelty statistics.
   */
  novelty?: Float32Array | null;
  /** The threshold used for `Unknown` (null: none). */
  unknownThreshold: number | null;
}

/** A model file loaded onto the GPU. */
export interface LoadedModel {
  model: ScnymModel;
  header: ModelHeader;
  /** Temperature and novelty statistics (`NO_CALIBRATION` for files written before them). */
  calibration: Calibration;
}

/** Loads and checks a model file, rebuilding the network from the *saved* configuration. */
export async function loadTrainedModel(rt: Runtime, path: string): Promise<LoadedModel> {
  const file = await loadModel(path);
  const h = file.header;
  const c = h.config;
  if (!c?.model) throw new ScnymError(`${path}: model file has no model configuration`);
  const model = ScnymModel.fromTensors(
    rt,
    {
      genes: h.genes.length,
      classes: h.classes.length,
      hidden: c.model.hidden,
      layers: c.model.layers,
      dropout: c.model.dropout,
      domains: h.domains.length,
      adversaryHidden: c.model.adversaryHidden,
    },
    file.tensors,
    path,
  );
  const shape = { hidden: c.model.hidden, classes: h.classes.length };
  return {
    model,
    header: h,
    calibration: readCalibration(h.calibration, file.tensors, shape, path),
  };
}

/** The model itself, loaded from its file when given as a path. */
export async function modelOf(rt: Runtime, model: string | LoadedModel): Promise<LoadedModel> {
  return typeof model === "string" ? await loadTrainedModel(rt, model) : model;
}

/** Probabilities, logits and embedding of one chunk in eval mode, read back to the host. */
async function forwardChunk(
  rt: Runtime,
  model: ScnymModel,
  x: GpuCsr,
  temperature: number,
): Promise<{ probs: Float32Array; logits: Float32Array; embedding: Float32Array }> {
  // The scope frees the pass's intermediates; the three results are read, then freed.
  const out = rt.scope(() => model.predict(x, temperature));
  const [p, z, e] = await rt.readAll([out.probs, out.logits, out.embedding]);
  for (const t of [out.probs, out.logits, out.embedding]) t.release();
  return { probs: p as Float32Array, logits: z as Float32Array, embedding: e as Float32Array };
}

/**
 * Predicts every row of `X` (normalised like the training data, columns = the model's genes).
 * `unknownThreshold` labels cells below that confidence `Unknown`.
 */
export async function predictCells(
  rt: Runtime,
  model: ScnymModel,
  X: Csr,
  opts: {
    classes: string[];
    unknownThreshold?: number | null;
    progress?: Progress;
    /** The model file's calibration (`LoadedModel.calibration`); none: T = 1. */
    calibration?: Calibration;
  },
): Promise<CellPredictions> {
  const { classes } = opts;
  const calibration = opts.calibration ?? NO_CALIBRATION;
  if (X.nCols !== model.shape.genes) {
    throw new ScnymError(
      `predict: ${X.nCols} genes in the query, the model has ${model.shape.genes}`,
    );
  }
  const C = classes.length;
  const H = model.shape.hidden;
  const n = X.nRows;
  const probabilities = new Float32Array(n * C);
  const logits = new Float32Array(n * C);
  const embedding = new Float32Array(n * H);
  const progress = opts.progress ?? new Progress();
  for (let a = 0; a < n; a += EVAL_CHUNK) {
    const b = Math.min(n, a + EVAL_CHUNK);
    const rows = Array.from({ length: b - a }, (_, i) => a + i);
    const x = uploadCsr(rt, selectRows(X, rows));
    const out = await forwardChunk(rt, model, x, calibration.temperature);
    releaseCsr(x);
    probabilities.set(out.probs, a * C);
    logits.set(out.logits, a * C);
    embedding.set(out.embedding, a * H);
    progress.update(`predicting: ${b}/${n} cells`);
  }
  progress.done();
  const threshold = opts.unknownThreshold ?? null;
  const confidence = new Float32Array(n);
  const labels: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const best = argmaxRow(probabilities, i, C);
    confidence[i] = probabilities[i * C + best];
    labels[i] = threshold !== null && confidence[i] < threshold ? UNKNOWN : classes[best];
  }
  return {
    classes,
    labels,
    confidence,
    probabilities,
    logits,
    embedding,
    hidden: H,
    novelty: cellNovelty(calibration, embedding),
    unknownThreshold: threshold,
  };
}

/** The prediction of the cells `rows` (in that order). */
export function subsetPrediction(p: CellPredictions, rows: number[]): CellPredictions {
  const C = p.classes.length;
  const H = p.hidden;
  const probabilities = new Float32Array(rows.length * C);
  const logits = p.logits && new Float32Array(rows.length * C);
  const embedding = new Float32Array(rows.length * H);
  rows.forEach((r, k) => {
    probabilities.set(p.probabilities.subarray(r * C, (r + 1) * C), k * C);
    logits?.set(p.logits!.subarray(r * C, (r + 1) * C), k * C);
    embedding.set(p.embedding.subarray(r * H, (r + 1) * H), k * H);
  });
  return {
    ...p,
    labels: rows.map((r) => p.labels[r]),
    confidence: Float32Array.from(rows, (r) => p.confidence[r]),
    probabilities,
    logits,
    embedding,
    novelty: p.novelty && Float32Array.from(rows, (r) => p.novelty![r]),
  };
}

/** The predictions of consecutive chunks of cells as one (chunk-wise fields concatenated). */
export function concatPredictions(parts: CellPredictions[]): CellPredictions {
  if (parts.length === 1) return parts[0];
  const cat = (arrays: (Float32Array | null | undefined)[]) => {
    if (arrays.some((x) => !x)) return undefined;
    const out = new Float32Array(arrays.reduce((s, x) => s + x!.length, 0));
    let at = 0;
    for (const x of arrays) {
      out.set(x!, at);
      at += x!.length;
    }
    return out;
  };
  return {
    ...parts[0],
    labels: parts.flatMap((p) => p.labels),
    confidence: cat(parts.map((p) => p.confidence))!,
    probabilities: cat(parts.map((p) => p.probabilities))!,
    embedding: cat(parts.map((p) => p.embedding))!,
    logits: cat(parts.map((p) => p.logits)),
    novelty: cat(parts.map((p) => p.novelty)) ?? null,
  };
}
