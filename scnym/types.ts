/** Types and constants shared by the modules of training and by prediction. */
import type { Normalisation } from "../data/normalize.ts";
import type { Csr } from "../data/csr.ts";
import type { Metrics } from "../nn/metrics.ts";

/** What training needs: one matrix holding labelled and target cells, already normalised. */
export interface TrainingSet {
  /** Normalised expression (log1p CPM or log-normalised), cells x genes. */
  X: Csr;
  genes: string[];
  /** Cell-type label per cell; null for cells without one. */
  labels: (string | null)[];
  /** True for the unlabelled target cells (their labels, if any, are not used). */
  isTarget: boolean[];
  /** Domain per cell (technology, donor, ...); default: "reference" vs "target". */
  domains?: string[];
  /** How X was normalised, recorded in the model file. */
  normalisation: Normalisation;
  /** Facts for the record (input files, label column, ...), stored in the model file. */
  description?: Record<string, unknown>;
}

/** One epoch's numbers, as shown in the progress line and stored in the model file. */
export interface EpochRecord {
  epoch: number;
  /** Mean supervised cross-entropy over the epoch's steps. */
  supLoss: number;
  /** Mean lambda_ssl-weighted consistency loss. */
  sslLoss: number;
  /** Mean adversary cross-entropy. */
  advLoss: number;
  lambdaSsl: number;
  danWeight: number;
  /** Early-stopping split: mean cross-entropy and accuracy (eval mode). */
  valLoss: number;
  valAccuracy: number;
  seconds: number;
}

/** Rows per chunk of eval-mode passes (validation, prediction). */
export const EVAL_CHUNK = 2048;

/** The per-epoch sums a training run accumulates on the GPU (see nn/metrics.ts). */
export const TRAINING_METRICS = ["sup", "ssl", "adv", "valLoss", "valHits"] as const;
export type TrainingMetrics = Metrics<typeof TRAINING_METRICS[number]>;
