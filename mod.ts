/**
 * scnym-webgpu: scNym cell-type label transfer (MixMatch semi-supervision + domain adversary) in
 * TypeScript on Deno, with hand-written WGSL kernels on any WebGPU adapter.
 *
 * The quickest way in mirrors the command line:
 *
 * ```ts
 * import { predictFile, trainFromFiles } from "./mod.ts";
 * const { result } = await trainFromFiles({
 *   reference: "kang.h5ad", labels: "cell_type", targetWhere: "condition=STIM",
 *   config: "default", seed: 0, out: "kang.scnym",
 * });
 * const { prediction } = await predictFile({ model: "kang.scnym", query: "stim.h5ad" });
 * console.log(prediction.labels.slice(0, 5), prediction.confidence.slice(0, 5));
 * ```
 *
 * The layers below are exported too: the GPU runtime and kernels' autograd (`Runtime`, `Tape`,
 * `ScnymModel`), data handling (`readExpression`, `normaliseForModel`, `alignGenes`), training
 * and prediction on in-memory data (`train`, `predictCells`), and evaluation (`evaluate`,
 * `mixingEntropy`, `buildTransferReport`).
 *
 * @module
 */

// ----------------------------------------------------------------- high level (mirrors the CLI)
export {
  predictFile,
  type PredictFileOptions,
  type PredictFileResult,
  trainFromFiles,
  type TrainFromFilesOptions,
} from "./scnym/api.ts";
export {
  interpretFile,
  type InterpretFileOptions,
  type InterpretFileResult,
} from "./scnym/interpret_file.ts";
export {
  type CellSet,
  type ClassSaliency,
  type Interpretation,
  interpretCells,
  type InterpretOptions,
} from "./scnym/interpret.ts";
export {
  attribute,
  type AttributionSums,
  SALIENCY_METHODS,
  type SaliencyMethod,
} from "./nn/attribution.ts";
export {
  type ConfigName,
  type ConfigOverrides,
  isConfigName,
  mergeConfig,
  NAMED_CONFIGS,
  rampWeight,
  resolveConfig,
  type ScnymConfig,
} from "./scnym/config.ts";
export { type LoadedTraining, loadTrainingData, type TrainingInputs } from "./scnym/inputs.ts";
export { type CellSplit, train, type TrainOptions, type TrainResult } from "./scnym/train.ts";
export type { EpochRecord, TrainingSet } from "./scnym/types.ts";
export {
  type CellPredictions,
  type LoadedModel,
  loadTrainedModel,
  predictCells,
  subsetPrediction,
  UNKNOWN,
} from "./scnym/predict.ts";
export {
  isTablePath,
  type PredictionSink,
  type StreamedOutput,
  streamPredictionOutput,
  writablePrediction,
  writePredictionOutput,
} from "./scnym/outputs.ts";
export {
  parseShard,
  type Shard,
  shardRows,
  StreamingPrediction,
  type StreamingPredictionOptions,
} from "./scnym/predict_stream.ts";
export { type MergeOptions, mergePredictions, modelDigest } from "./scnym/merge.ts";
export {
  decodeModel,
  encodeModel,
  loadModel,
  type ModelFile,
  type ModelHeader,
  saveModel,
} from "./scnym/model_file.ts";

// ----------------------------------------------------------------- data and files
export {
  type Csr,
  csrFromDense,
  csrToDense,
  selectColumns,
  selectRows,
  vstack,
} from "./data/csr.ts";
export { simulate, type SimulatedData, type SimulateOptions } from "./data/simulate.ts";
export {
  checkMatrix,
  log1pCpm,
  type Normalisation,
  type NormalisedMatrix,
  normaliseForModel,
} from "./data/normalize.ts";
export {
  alignGenes,
  alignmentReport,
  applyAlignment,
  type GeneAlignment,
  intersectGenes,
} from "./data/align.ts";
export type { AnnData, Column, DataFrame } from "./io/anndata.ts";
export { type ExpressionInput, readExpression } from "./io/read.ts";
export { H5adFile, readH5ad } from "./io/h5ad_read.ts";
export { MatrixReader } from "./io/matrix_reader.ts";
export { writeH5ad, writePredictions } from "./io/h5ad_write.ts";
export { readTenxH5, readTenxMtxDir } from "./io/tenx.ts";
export {
  type PredictionOutputs,
  type PredictionsFile,
  readPredictionsFile,
} from "./io/predictions.ts";
export { formatInspect, inspectFile } from "./io/inspect.ts";

// ----------------------------------------------------------------- evaluation and reports
export {
  evaluate,
  type EvaluationInput,
  type EvaluationResult,
  formatEvaluation,
} from "./eval/evaluate.ts";
export { mixingEntropy, type MixingResult } from "./eval/mixing.ts";
export { pca, umapEmbed } from "./eval/embed.ts";
export { type PageScope, renderReport, type ReportData } from "./eval/report.ts";
export {
  buildTransferReport,
  type TransferReport,
  type TransferReportInput,
  writeTransferReport,
} from "./eval/pipeline.ts";

// ----------------------------------------------------------------- GPU runtime and autograd
export { type DType, Runtime, type RuntimeStats, Tensor } from "./runtime/runtime.ts";
export { defineKernel, type Kernel, type KernelSpec } from "./runtime/kernel.ts";
export { type Gpu, requestGpu } from "./runtime/device.ts";
export { Param, Tape, Var, zeroGrads } from "./nn/tape.ts";
export { type ModelShape, ScnymModel } from "./nn/model.ts";
export { Adadelta, type AdadeltaOptions } from "./nn/adadelta.ts";

// ----------------------------------------------------------------- misc
export { ScnymError } from "./util/errors.ts";
export { Rng } from "./util/rng.ts";
export { VERSION } from "./version.ts";
