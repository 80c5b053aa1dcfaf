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
  /** Class probabilities, cells x classes, row-major. */
  probabilities: Float32Array;
  /** The learned embedding (last hidden layer, post-ReLU), cells x hidden, row-major. */
  embedding: Float32Array;
  hidden: number;
  /** The threshold used for `Unknown` (null: none). */
  unknownThreshold: number | null;
}

/** A model file loaded onto the GPU. */
export interface LoadedModel {
  model: ScnymModel;
  header: ModelHeader;
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
  return { model, header: h };
}

/** Probabilities and embedding of one chunk in eval mode, read back to the host. */
async function forwardChunk(
  rt: Runtime,
  model: ScnymModel,
  x: GpuCsr,
): Promise<{ probs: Float32Array; embedding: Float32Array }> {
  // The scope frees the pass's intermediates; the two results are read, then freed.
  const { probs, embedding } = rt.scope(() => model.predict(x));
  const [p, e] = await rt.readAll([probs, embedding]);
  probs.release();
  embedding.release();
  return { probs: p as Float32Array, embedding: e as Float32Array };
}

/**
 * Predicts every row of `X` (normalised like the training data, columns = the model's genes).
 * `unknownThreshold` labels cells below that confidence `Unknown`.
 */
export async function predictCells(
  rt: Runtime,
  model: ScnymModel,
  X: Csr,
  opts: { classes: string[]; unknownThreshold?: number | null; progress?: Progress },
): Promise<CellPredictions> {
  const { classes } = opts;
  if (X.nCols !== model.shape.genes) {
    throw new ScnymError(
      `predict: ${X.nCols} genes in the query, the model has ${model.shape.genes}`,
    );
  }
  const C = classes.length;
  const H = model.shape.hidden;
  const n = X.nRows;
  const probabilities = new Float32Array(n * C);
  const embedding = new Float32Array(n * H);
  const progress = opts.progress ?? new Progress();
  for (let a = 0; a < n; a += EVAL_CHUNK) {
    const b = Math.min(n, a + EVAL_CHUNK);
    const rows = Array.from({ length: b - a }, (_, i) => a + i);
    const x = uploadCsr(rt, selectRows(X, rows));
    const out = await forwardChunk(rt, model, x);
    releaseCsr(x);
    probabilities.set(out.probs, a * C);
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
    embedding,
    hidden: H,
    unknownThreshold: threshold,
  };
}

/** The prediction of the cells `rows` (in that order). */
export function subsetPrediction(p: CellPredictions, rows: number[]): CellPredictions {
  const C = p.classes.length;
  const H = p.hidden;
  const probabilities = new Float32Array(rows.length * C);
  const embedding = new Float32Array(rows.length * H);
  rows.forEach((r, k) => {
    probabilities.set(p.probabilities.subarray(r * C, (r + 1) * C), k * C);
    embedding.set(p.embedding.subarray(r * H, (r + 1) * H), k * H);
  });
  return {
    ...p,
    labels: rows.map((r) => p.labels[r]),
    confidence: Float32Array.from(rows, (r) => p.confidence[r]),
    probabilities,
    embedding,
  };
}
