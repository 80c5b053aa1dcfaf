/**
 * scNym training: MixMatch semi-supervision plus a domain adversary, as in the paper's
 * Algorithm 1 and the original implementation's defaults (see ../shared/paper), on the GPU.
 *
 * `train` is the epoch loop: draw the epoch's batches, record one step per batch (scnym/step.ts),
 * validate on the early-stopping split (scnym/validation.ts), read the epoch's sums (one
 * readback), keep the best weights and checkpoint them (scnym/checkpoint.ts), stop early when the
 * held-out loss stops improving.
 */
import { Runtime } from "../runtime/runtime.ts";
import { ScnymModel } from "../nn/model.ts";
import { Metrics } from "../nn/metrics.ts";
import { ScnymError } from "../util/errors.ts";
import { formatDuration, Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { capHeldOut, HELD_OUT_CAP, labelledEpoch, splitLabelled, TargetStream } from "./batches.ts";
import { buildHeader, Checkpoint, type HeaderFields, type RunProgress } from "./checkpoint.ts";
import type { Calibration } from "./calibration.ts";
import { rampWeight, type ScnymConfig } from "./config.ts";
import { fitCalibration } from "./fit_calibration.ts";
import { TrainingStep } from "./step.ts";
import type { InputLayout } from "./step_input.ts";
import { type EpochRecord, TRAINING_METRICS, type TrainingSet } from "./types.ts";
import { Validation } from "./validation.ts";

// The type of `TrainResult.history`, for the callers of `train`.
export type { EpochRecord } from "./types.ts";

/** Options of `train`. */
export interface TrainOptions {
  config: ScnymConfig;
  seed: number;
  /** Runtime to train on (created when absent). */
  rt?: Runtime;
  /** Writes the best model so far here (atomically) whenever it improves, and at the end. */
  checkpointPath?: string;
  /** Progress output (default: stderr when it is a terminal). */
  progress?: Progress;
  /** Stops training after the current epoch when aborted (Ctrl-C); the best model is kept. */
  signal?: AbortSignal;
  /** Called after every epoch. */
  onEpoch?: (record: EpochRecord) => void;
  /** Time every kernel of this epoch (0-based; needs timestamp queries) into `result.profile`. */
  profileEpoch?: number;
  /** The input layer's product (default "auto", by the data's density; see `InputLayout`). */
  inputLayout?: InputLayout;
}

/** What a cell was for in training (written as `obs/scNym_split` with the predictions). */
export type CellSplit = "train" | "early_stopping" | "validation" | "target";

/** The outcome of training. */
export interface TrainResult {
  model: ScnymModel;
  classes: string[];
  domains: string[];
  history: EpochRecord[];
  /** Epoch whose weights were kept (-1: the last epoch, when no checkpoint qualified). */
  bestEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  /** Accuracy on the held-out validation cells (never used for training or stopping). */
  validation: { cells: number; accuracy: number | null };
  splits: { train: number; earlyStopping: number; validation: number; target: number };
  /** Per cell of the training set, the split it was in (null: neither labelled nor target). */
  cellSplit: (CellSplit | null)[];
  /** Everything that goes into the model file's header. */
  header: HeaderFields;
  /** Temperature and novelty statistics, as stored in the model file (scnym/calibration.ts). */
  calibration: Calibration;
  seconds: number;
  /** Per-kernel GPU time of the profiled epoch (see `TrainOptions.profileEpoch`). */
  profile?: { kernel: string; calls: number; ms: number }[];
}

interface Prepared {
  classes: string[];
  domains: string[];
  /** Indices into the data's cells. */
  labelled: number[];
  target: number[];
  classOf: Int32Array;
  domainOf: Int32Array;
  warnings: string[];
}

/** Checks the training set and derives classes, domains and the cell groups. */
export function prepareTrainingSet(data: TrainingSet, config: ScnymConfig): Prepared {
  const n = data.X.nRows;
  if (data.labels.length !== n || data.isTarget.length !== n) {
    throw new ScnymError(
      `training set: ${n} cells but ${data.labels.length} labels / ${data.isTarget.length} flags`,
    );
  }
  if (data.genes.length !== data.X.nCols) {
    throw new ScnymError(`training set: ${data.X.nCols} genes in X, ${data.genes.length} names`);
  }
  const labelled: number[] = [];
  const target: number[] = [];
  for (let i = 0; i < n; i++) {
    if (data.isTarget[i]) target.push(i);
    else if (data.labels[i] !== null) labelled.push(i);
  }
  if (labelled.length === 0) throw new ScnymError("training set: no labelled cells to train on");
  const classes = [...new Set(labelled.map((i) => data.labels[i]!))].sort();
  if (classes.length < 2) {
    throw new ScnymError(
      `training set: only one cell type among the labelled cells (${classes[0]}); ` +
        "a classifier needs at least two",
    );
  }
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const classOf = new Int32Array(n).fill(-1);
  for (const i of labelled) classOf[i] = classIndex.get(data.labels[i]!)!;

  const used = [...labelled, ...target];
  const domainName = (i: number) =>
    data.domains ? data.domains[i] : data.isTarget[i] ? "target" : "reference";
  const domains = [...new Set(used.map(domainName))].sort();
  const domainIndex = new Map(domains.map((d, i) => [d, i]));
  const domainOf = new Int32Array(n).fill(-1);
  for (const i of used) domainOf[i] = domainIndex.get(domainName(i))!;

  const warnings: string[] = [];
  if (target.length === 0 && (config.ssl.enabled || config.dan.enabled)) {
    warnings.push("no target cells: MixMatch and the domain adversary are off (supervised only)");
  }
  if (config.dan.enabled && target.length > 0 && domains.length < 2) {
    warnings.push("only one domain among the cells: the domain adversary is off");
  }
  return { classes, domains, labelled, target, classOf, domainOf, warnings };
}

/** The split of each of `n` cells, from the cell indices of each split. */
function cellSplits(n: number, groups: [CellSplit, number[]][]): (CellSplit | null)[] {
  const out = new Array<CellSplit | null>(n).fill(null);
  for (const [split, cells] of groups) for (const i of cells) out[i] = split;
  return out;
}

/** Trains an scNym model. See scnym/step.ts for one step; epochs as the original. */
export async function train(data: TrainingSet, opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const config = opts.config;
  const prep = prepareTrainingSet(data, config);
  const progress = opts.progress ?? new Progress();
  for (const w of prep.warnings) progress.log(`warning: ${w}`);
  const useSsl = config.ssl.enabled && prep.target.length > 0;
  const useDan = config.dan.enabled && prep.target.length > 0 && prep.domains.length >= 2;
  const rng = new Rng(opts.seed);
  const splits = splitLabelled(
    prep.labelled.map((i) => prep.classOf[i]),
    config.train.validationFraction,
    config.train.earlyStoppingFraction,
    rng,
  );
  const pick = (idx: number[]) => idx.map((k) => prep.labelled[k]);
  // Held-out splits above HELD_OUT_CAP cells are subsampled (the rest trains), so a large
  // reference's per-epoch validation cost stays bounded; smaller references are untouched.
  const [stopCells, stopRest] = capHeldOut(pick(splits.earlyStopping), HELD_OUT_CAP);
  const [valCells, valRest] = capHeldOut(pick(splits.validation), HELD_OUT_CAP);
  const trainCells = [...pick(splits.train), ...stopRest, ...valRest];
  const batchSize = Math.min(config.train.batchSize, trainCells.length);
  if (batchSize < 2) {
    throw new ScnymError(
      `training set: ${trainCells.length} labelled training cell(s) after the validation split; ` +
        "at least 2 are needed (BatchNorm)",
    );
  }
  const cells = {
    train: trainCells.length,
    earlyStopping: stopCells.length,
    validation: valCells.length,
    target: prep.target.length,
  };
  const C = prep.classes.length;
  const D = prep.domains.length;
  const rt = opts.rt ?? await Runtime.create();
  let failed = false;
  const model = ScnymModel.create(rt, {
    genes: data.X.nCols,
    classes: C,
    hidden: config.model.hidden,
    layers: config.model.layers,
    dropout: config.model.dropout,
    domains: useDan ? D : 0,
    adversaryHidden: config.model.adversaryHidden,
  }, opts.seed);
  const run: RunProgress = { bestEpoch: -1, history: [], stoppedEarly: false, interrupted: false };
  const facts = {
    seed: opts.seed,
    config,
    data,
    classes: prep.classes,
    domains: useDan ? prep.domains : [],
    adapter: rt.gpu.description,
    cells,
    semiSupervised: useSsl,
    adversary: useDan,
    warnings: prep.warnings,
  };
  const header = () => buildHeader(facts, run);
  // Everything below is freed however training ends (a divergence error included).
  const owned: { release(): void }[] = [];
  const own = <T extends { release(): void }>(r: T): T => (owned.push(r), r);
  try {
    const checkpoint = own(new Checkpoint(model, opts.seed, opts.checkpointPath, header));
    const metrics = own(new Metrics(rt, TRAINING_METRICS));
    const step = own(
      new TrainingStep(rt, model, {
        X: data.X,
        classOf: prep.classOf,
        domainOf: prep.domainOf,
        config,
        seed: opts.seed >>> 0,
        batchSize,
        useSsl,
        useDan,
        targets: useSsl || useDan ? new TargetStream(prep.target, rng) : null,
        rng,
        metrics,
        inputLayout: opts.inputLayout,
      }),
    );
    const validation = own(new Validation(rt, model, data.X, prep.classOf, metrics));
    const epochs = config.train.epochs;
    const minEpochs = Math.min(config.train.minEpochs, epochs - 1);
    let bestLoss = Infinity;
    let waiting = 0;
    let profile: TrainResult["profile"];

    progress.log(
      `training on ${rt.gpu.description}: ${trainCells.length} labelled cells ` +
        `(+${stopCells.length} early-stopping, ${valCells.length} validation), ` +
        `${prep.target.length} target cells, ${data.X.nCols} genes, ${C} classes` +
        (useSsl ? ", MixMatch" : "") + (useDan ? `, adversary over ${D} domains` : "") +
        `, seed ${opts.seed}`,
    );
    for (let epoch = 0; epoch < epochs; epoch++) {
      const te = performance.now();
      const ssl = config.ssl;
      const lambdaSsl = rampWeight(epoch, ssl.maxWeight, ssl.rampEpochs, ssl.rampShape);
      const danWeight = rampWeight(epoch, config.dan.maxWeight, config.dan.rampEpochs, "sigmoid");
      const balance = config.train.balanceClasses ? { classOf: prep.classOf } : undefined;
      const batches = labelledEpoch(trainCells, batchSize, rng, balance);
      const profiling = epoch === opts.profileEpoch && rt.canProfile;
      if (profiling) rt.startProfile();
      for (const b of batches) step.record(b, lambdaSsl, danWeight);
      if (profiling) profile = await rt.endProfile();
      validation.record(stopCells);
      const m = await metrics.read();
      metrics.reset();
      const steps = batches.length;
      const rec: EpochRecord = {
        epoch,
        supLoss: m.sup / steps,
        sslLoss: m.ssl / steps,
        advLoss: m.adv / steps,
        lambdaSsl,
        danWeight,
        valLoss: stopCells.length ? m.valLoss : NaN,
        valAccuracy: stopCells.length ? m.valHits / stopCells.length : NaN,
        seconds: (performance.now() - te) / 1000,
      };
      if (!Number.isFinite(rec.supLoss)) {
        throw new ScnymError(
          `training diverged at epoch ${epoch} (supervised loss ${rec.supLoss}); ` +
            "check the input for extreme values or lower train.lr",
        );
      }
      run.history.push(rec);
      opts.onEpoch?.(rec);

      // Early stopping on the held-out loss (the training loss when there is no such split).
      const score = stopCells.length ? rec.valLoss : rec.supLoss;
      if (score < bestLoss && epoch >= minEpochs) {
        bestLoss = score;
        run.bestEpoch = epoch;
        waiting = 0;
        checkpoint.improved();
      } else {
        waiting++;
      }
      await checkpoint.saveIfDue();
      progress.update(epochLine(rec, epochs, run.bestEpoch, progress, {
        ssl: useSsl,
        adv: useDan,
        val: stopCells.length > 0,
      }));
      if (waiting > config.train.patience) {
        run.stoppedEarly = true;
        break;
      }
      if (opts.signal?.aborted) {
        run.interrupted = true;
        break;
      }
    }
    progress.done();
    checkpoint.restoreBest(run.bestEpoch >= 0);
    // Calibration of the kept weights on the held-out reference cells (scnym/fit_calibration.ts).
    const fitted = await fitCalibration(rt, model, data.X, prep.classOf, {
      heldOut: [...stopCells, ...valCells],
      train: trainCells,
    }, prep.classes);
    run.calibration = fitted.record;
    checkpoint.calibration = fitted.calibration;
    await checkpoint.save();

    // Final, untouched validation split.
    let accuracy: number | null = null;
    if (valCells.length) {
      metrics.reset();
      validation.record(valCells);
      accuracy = (await metrics.read()).valHits / valCells.length;
    }
    const result: TrainResult = {
      model,
      classes: prep.classes,
      domains: facts.domains,
      history: run.history,
      bestEpoch: run.bestEpoch,
      stoppedEarly: run.stoppedEarly,
      interrupted: run.interrupted,
      validation: { cells: valCells.length, accuracy },
      splits: cells,
      cellSplit: cellSplits(data.X.nRows, [
        ["train", trainCells],
        ["early_stopping", stopCells],
        ["validation", valCells],
        ["target", prep.target],
      ]),
      header: header(),
      calibration: fitted.calibration,
      seconds: (performance.now() - t0) / 1000,
      profile,
    };
    progress.log(
      `trained ${run.history.length} epochs in ${formatDuration(result.seconds)}` +
        (run.bestEpoch >= 0 ? `, kept epoch ${run.bestEpoch + 1}` : "") +
        (accuracy !== null
          ? `, held-out validation accuracy ${(100 * accuracy).toFixed(1)}%`
          : "") +
        (run.interrupted ? " (interrupted)" : run.stoppedEarly ? " (early stop)" : ""),
    );
    return result;
  } catch (e) {
    model.destroy();
    failed = true;
    throw e;
  } finally {
    // Submit what is recorded first: a buffer freed with commands pending on it could be
    // destroyed (trimPool) before they run.
    rt.flush();
    for (const r of owned.reverse()) r.release();
    // A runtime made here serves only the returned model: nothing is left to use it after an error.
    if (failed && !opts.rt) rt.destroy();
  }
}

/** The progress line after an epoch. */
function epochLine(
  rec: EpochRecord,
  epochs: number,
  bestEpoch: number,
  progress: Progress,
  show: { ssl: boolean; adv: boolean; val: boolean },
): string {
  const done = rec.epoch + 1;
  return `epoch ${done}/${epochs}  sup ${rec.supLoss.toFixed(3)}` +
    (show.ssl ? `  ssl ${rec.sslLoss.toFixed(4)}` : "") +
    (show.adv ? `  adv ${rec.advLoss.toFixed(3)}` : "") +
    (show.val
      ? `  val loss ${rec.valLoss.toFixed(3)} acc ${(100 * rec.valAccuracy).toFixed(1)}%`
      : "") +
    (bestEpoch >= 0 ? `  best ${bestEpoch + 1}` : "") +
    `  ETA ${formatDuration(progress.eta(done, epochs))}`;
}
