/**
 * scNym training: MixMatch semi-supervision plus a domain adversary, as in the paper's
 * Algorithm 1 and the original implementation's defaults (see ../shared/paper), on the GPU.
 *
 * One step, every kernel recorded into one submission, nothing read back:
 *  1. upload the CSR rows of a target batch U and a labelled batch X (the "pool" [U ; X]);
 *  2. augment X in place (log1p_drop);
 *  3. h1 = pool W1 + b1 from the sparse rows (the widest layer, once per cell);
 *  4. teacher = the current model in eval mode on h1(U): softmax, sharpen (T = 0.5) and
 *     confidence -> pseudolabels; targets = [pseudolabels ; one-hot labels];
 *  5. MixUp of h1 and of the targets with one pairing (exact: mixing commutes with the first
 *     Linear); the mixed U rows, then the mixed X rows, through the training-mode network:
 *     squared-error consistency loss (weighted by lambda_ssl(epoch)) and soft cross-entropy;
 *  6. the adversary on the embeddings of the whole pool through gradient reversal (weight
 *     w(epoch)), soft cross-entropy against the cells' domains;
 *  7. backward through the tape, Adadelta on every parameter.
 * Losses accumulate in a small GPU buffer that is read once per epoch, together with the
 * early-stopping validation loss and accuracy.
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { augmentLog1pDrop, countCorrect, mixRows, mixupPlan, oneHot } from "../kernels/mixmatch.ts";
import { sharpen, softCrossEntropy, softmax, softmaxSquaredError } from "../kernels/softmax.ts";
import { Adadelta } from "../nn/adadelta.ts";
import { type ForwardMode, ScnymModel } from "../nn/model.ts";
import { mix, prefixRows } from "../nn/ops.ts";
import { Tape, Var, zeroGrads } from "../nn/tape.ts";
import { Runtime, type Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { formatDuration, Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { CsrUploadArea, labelledEpoch, splitLabelled, TargetStream } from "./batches.ts";
import { rampWeight, type ScnymConfig } from "./config.ts";
import { saveModel } from "./model_file.ts";
import { VERSION } from "../version.ts";

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
  normalisation: string;
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
}

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
  /** Everything that goes into the model file's header. */
  header: Parameters<typeof saveModel>[1];
  seconds: number;
  /** Per-kernel GPU time of the profiled epoch (see `TrainOptions.profileEpoch`). */
  profile?: { kernel: string; calls: number; ms: number }[];
}

/** Metric slots of the per-epoch GPU buffer. */
const M_SUP = 0, M_SSL = 1, M_ADV = 2, M_VAL_LOSS = 3, M_VAL_HITS = 4, M_SLOTS = 8;
/** Rows per chunk of eval-mode passes (validation, prediction). */
export const EVAL_CHUNK = 2048;

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

/** Trains an scNym model. See the module comment for one step; epochs as the original. */
export async function train(data: TrainingSet, opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const config = opts.config;
  const prep = prepareTrainingSet(data, config);
  const progress = opts.progress ?? new Progress();
  for (const w of prep.warnings) progress.log(`warning: ${w}`);
  const useSsl = config.ssl.enabled && prep.target.length > 0;
  const useDan = config.dan.enabled && prep.target.length > 0 && prep.domains.length >= 2;
  const rt = opts.rt ?? await Runtime.create();
  const rng = new Rng(opts.seed);

  const splits = splitLabelled(
    prep.labelled.map((i) => prep.classOf[i]),
    config.train.validationFraction,
    config.train.earlyStoppingFraction,
    rng,
  );
  const pick = (idx: number[]) => idx.map((k) => prep.labelled[k]);
  const trainCells = pick(splits.train);
  const stopCells = pick(splits.earlyStopping);
  const valCells = pick(splits.validation);
  const C = prep.classes.length;
  const D = prep.domains.length;
  const batchSize = Math.min(config.train.batchSize, trainCells.length);
  if (batchSize < 2) {
    throw new ScnymError(
      `training set: ${trainCells.length} labelled training cell(s) after the validation split; ` +
        "at least 2 are needed (BatchNorm)",
    );
  }

  const model = ScnymModel.create(rt, {
    genes: data.X.nCols,
    classes: C,
    hidden: config.model.hidden,
    layers: config.model.layers,
    dropout: config.model.dropout,
    domains: useDan ? D : 0,
    adversaryHidden: config.model.adversaryHidden,
  }, opts.seed);
  const best = ScnymModel.create(rt, model.shape, opts.seed);
  best.copyFrom(model);
  const optimizer = new Adadelta(rt, model.params, {
    lr: config.train.lr,
    rho: config.train.rho,
    eps: config.train.eps,
    weightDecay: config.train.weightDecay,
  });

  const metrics = rt.full([M_SLOTS], 0, "f32", "metrics").keep();
  const area = new CsrUploadArea(rt, true);
  const evalArea = new CsrUploadArea(rt, false);
  const maxPool = 2 * batchSize;
  const labelsBuf = rt.tensor([Math.max(maxPool, EVAL_CHUNK)], "u32", "labels").keep();
  const domainsBuf = rt.tensor([maxPool], "u32", "domains").keep();
  const orderBuf = rt.tensor([maxPool], "u32", "mixup order").keep();
  const targets = useSsl || useDan ? new TargetStream(prep.target, rng) : null;
  const seed = opts.seed >>> 0;
  let step = 0;

  /** Records one training step on labelled cells `xCells` (see the module comment). */
  const recordStep = (xCells: number[], lambdaSsl: number, danWeight: number) => {
    const nX = xCells.length;
    const uCells = targets ? targets.next(nX) : [];
    const nU = uCells.length;
    const n = nX + nU;
    // Pool order: [U ; X] with MixMatch (the teacher reads the U prefix), else [X ; U].
    const poolCells = useSsl ? [...uCells, ...xCells] : [...xCells, ...uCells];
    const xStart = useSsl ? nU : 0;
    const batch = area.upload(selectRows(data.X, poolCells));
    rt.write(labelsBuf, Uint32Array.from(xCells, (i) => prep.classOf[i]), "labels", 0);
    if (useDan) {
      rt.write(
        domainsBuf,
        Uint32Array.from(poolCells, (i) => prep.domainOf[i]),
        "domains",
        0,
      );
    }
    if (useSsl) rt.write(orderBuf, rng.permutation(n), "mixup order", 0);
    const labels = labelsBuf.view([nX]);
    const s = step++ * 32;
    rt.scope(() => {
      zeroGrads(rt, model.params);
      const tape = new Tape(rt);
      const mode = (k: number): ForwardMode => ({ training: true, seed, stream: s + 8 * k });
      augmentLog1pDrop(rt, batch.indptr, batch.data, xStart, xStart + nX, {
        p: config.ssl.augmentDropout,
        seed,
        stream: s + 30,
      });
      const h1 = model.inputLayer(tape, batch);
      const losses: { logits: Var; grad: Tensor }[] = [];
      let eligibleMean: Tensor | null = null;

      if (useSsl) {
        // Teacher: eval mode, no gradient, current weights.
        const off = new Tape(rt, false);
        const hU = new Var(h1.value.view([nU, h1.value.cols]), false);
        const teacher = model.classify(off, model.trunk(off, hU, { ...mode(3), training: false }));
        const sharp = sharpen(rt, softmax(rt, teacher.value), config.ssl.temperature);
        const pool = rt.tensor([n, C], "f32", "targets");
        rt.copy(sharp.probs, pool.view([nU, C]));
        oneHot(rt, labels, C, { out: pool, rowOffset: nU });
        const plan = mixupPlan(rt, sharp.confidence, orderBuf.view([n]), nU, nX, {
          alpha: config.ssl.mixupAlpha,
          minConfidence: config.ssl.minConfidence,
          seed,
          stream: s + 31,
        });
        eligibleMean = plan.eligibleMean;
        const mixedTargets = mixRows(rt, pool, plan, nU);
        const mixed = mix(tape, h1, plan, nU);
        // As the original: the unlabelled forward first, then the labelled one.
        const zU = model.classify(tape, model.trunk(tape, mixed.top, mode(0)));
        const ssl = softmaxSquaredError(rt, zU.value, mixedTargets.top, {
          rowWeight: plan.eligible.view([nU]),
          scale: lambdaSsl,
          lossAccumulator: { tensor: metrics, index: M_SSL },
        });
        losses.push({ logits: zU, grad: ssl.dlogits });
        const zX = model.classify(tape, model.trunk(tape, mixed.bottom, mode(1)));
        const sup = softCrossEntropy(rt, zX.value, mixedTargets.bottom, {
          lossAccumulator: { tensor: metrics, index: M_SUP },
        });
        losses.push({ logits: zX, grad: sup.dlogits });
      } else {
        const hX = prefixRows(tape, h1, nX);
        const zX = model.classify(tape, model.trunk(tape, hX, mode(1)));
        const sup = softCrossEntropy(rt, zX.value, oneHot(rt, labels, C), {
          lossAccumulator: { tensor: metrics, index: M_SUP },
        });
        losses.push({ logits: zX, grad: sup.dlogits });
      }

      if (useDan) {
        const emb = model.trunk(tape, h1, mode(2));
        const zD = model.adversaryLogits(tape, emb, danWeight);
        const dom = oneHot(rt, domainsBuf.view([n]), D);
        // With confident-only pseudolabels, unconfident target rows weigh 0 and the loss is the
        // mean over the rest (eligibleMean = eligible * n / count).
        const adv = softCrossEntropy(rt, zD.value, dom, {
          rowWeight: config.dan.useConfidentOnly && eligibleMean ? eligibleMean : undefined,
          lossAccumulator: { tensor: metrics, index: M_ADV },
        });
        losses.push({ logits: zD, grad: adv.dlogits });
      }

      for (const l of losses) l.logits.grad = l.grad;
      tape.backward();
      optimizer.step();
    });
    rt.flush();
  };

  /** Records eval-mode passes over `cells` adding loss (mean) and hits into the metrics. */
  const recordValidation = (cells: number[]) => {
    for (let a = 0; a < cells.length; a += EVAL_CHUNK) {
      const chunk = cells.slice(a, a + EVAL_CHUNK);
      const x = evalArea.upload(selectRows(data.X, chunk));
      rt.write(labelsBuf, Uint32Array.from(chunk, (i) => prep.classOf[i]), "labels", 0);
      rt.scope(() => {
        const off = new Tape(rt, false);
        const mode = { training: false, seed, stream: 0 };
        const z = model.classify(off, model.trunk(off, model.inputLayer(off, x), mode));
        const labels = labelsBuf.view([chunk.length]);
        softCrossEntropy(rt, z.value, oneHot(rt, labels, C), {
          scale: chunk.length / cells.length,
          lossAccumulator: { tensor: metrics, index: M_VAL_LOSS },
        });
        countCorrect(rt, z.value, labels, metrics, M_VAL_HITS);
      });
      rt.flush();
    }
  };

  const epochs = config.train.epochs;
  const minEpochs = Math.min(config.train.minEpochs, epochs - 1);
  const history: EpochRecord[] = [];
  let bestLoss = Infinity;
  let bestEpoch = -1;
  let waiting = 0;
  let stoppedEarly = false;
  let interrupted = false;
  let lastSave = 0;
  let dirty = false;
  let profile: TrainResult["profile"];

  const header = (): Parameters<typeof saveModel>[1] => ({
    toolVersion: VERSION,
    createdAt: new Date().toISOString(),
    seed: opts.seed,
    config,
    genes: data.genes,
    classes: prep.classes,
    domains: useDan ? prep.domains : [],
    normalisation: data.normalisation,
    training: {
      ...data.description,
      adapter: rt.gpu.description,
      cells: {
        train: trainCells.length,
        earlyStopping: stopCells.length,
        validation: valCells.length,
        target: prep.target.length,
      },
      semiSupervised: useSsl,
      adversary: useDan,
      bestEpoch,
      epochsRun: history.length,
      stoppedEarly,
      interrupted,
      warnings: prep.warnings,
      history,
    },
  });
  const saveBest = async () => {
    if (!opts.checkpointPath) return;
    await saveModel(opts.checkpointPath, header(), await best.download());
    lastSave = performance.now();
    dirty = false;
  };

  progress.log(
    `training on ${rt.gpu.description}: ${trainCells.length} labelled cells ` +
      `(+${stopCells.length} early-stopping, ${valCells.length} validation), ` +
      `${prep.target.length} target cells, ${data.X.nCols} genes, ${C} classes` +
      (useSsl ? ", MixMatch" : "") + (useDan ? `, adversary over ${D} domains` : "") +
      `, seed ${opts.seed}`,
  );
  for (let epoch = 0; epoch < epochs; epoch++) {
    const te = performance.now();
    const lambdaSsl = rampWeight(
      epoch,
      config.ssl.maxWeight,
      config.ssl.rampEpochs,
      config.ssl.rampShape,
    );
    const danWeight = rampWeight(epoch, config.dan.maxWeight, config.dan.rampEpochs, "sigmoid");
    const batches = labelledEpoch(
      trainCells,
      batchSize,
      rng,
      config.train.balanceClasses ? { classOf: prep.classOf } : undefined,
    );
    const profiling = epoch === opts.profileEpoch && rt.canProfile;
    if (profiling) rt.startProfile();
    for (const b of batches) recordStep(b, lambdaSsl, danWeight);
    if (profiling) profile = await rt.endProfile();
    recordValidation(stopCells);
    const m = await metrics.read();
    rt.fill(metrics, 0);
    const steps = batches.length;
    const rec: EpochRecord = {
      epoch,
      supLoss: m[M_SUP] / steps,
      sslLoss: m[M_SSL] / steps,
      advLoss: m[M_ADV] / steps,
      lambdaSsl,
      danWeight,
      valLoss: stopCells.length ? m[M_VAL_LOSS] : NaN,
      valAccuracy: stopCells.length ? m[M_VAL_HITS] / stopCells.length : NaN,
      seconds: (performance.now() - te) / 1000,
    };
    if (!Number.isFinite(rec.supLoss)) {
      throw new ScnymError(
        `training diverged at epoch ${epoch} (supervised loss ${rec.supLoss}); ` +
          "check the input for extreme values or lower train.lr",
      );
    }
    history.push(rec);
    opts.onEpoch?.(rec);

    // Early stopping on the held-out loss (the training loss when there is no such split).
    const score = stopCells.length ? rec.valLoss : rec.supLoss;
    if (score < bestLoss && epoch >= minEpochs) {
      bestLoss = score;
      bestEpoch = epoch;
      waiting = 0;
      best.copyFrom(model);
      dirty = true;
    } else {
      waiting++;
    }
    // Checkpoints are written at most every 10 s: a download costs a GPU sync.
    if (dirty && performance.now() - lastSave > 10_000) await saveBest();
    const done = epoch + 1;
    progress.update(
      `epoch ${done}/${epochs}  sup ${rec.supLoss.toFixed(3)}` +
        (useSsl ? `  ssl ${rec.sslLoss.toFixed(4)}` : "") +
        (useDan ? `  adv ${rec.advLoss.toFixed(3)}` : "") +
        (stopCells.length
          ? `  val loss ${rec.valLoss.toFixed(3)} acc ${(100 * rec.valAccuracy).toFixed(1)}%`
          : "") +
        (bestEpoch >= 0 ? `  best ${bestEpoch + 1}` : "") +
        `  ETA ${formatDuration(progress.eta(done, epochs))}`,
    );
    if (waiting > config.train.patience) {
      stoppedEarly = true;
      break;
    }
    if (opts.signal?.aborted) {
      interrupted = true;
      break;
    }
  }
  progress.done();
  if (bestEpoch >= 0) model.copyFrom(best);
  else best.copyFrom(model);
  if (dirty || bestEpoch < 0 || opts.checkpointPath) await saveBest();

  // Final, untouched validation split.
  let accuracy: number | null = null;
  if (valCells.length) {
    rt.fill(metrics, 0);
    recordValidation(valCells);
    accuracy = (await metrics.read())[M_VAL_HITS] / valCells.length;
  }
  const result: TrainResult = {
    model,
    classes: prep.classes,
    domains: useDan ? prep.domains : [],
    history,
    bestEpoch,
    stoppedEarly,
    interrupted,
    validation: { cells: valCells.length, accuracy },
    splits: {
      train: trainCells.length,
      earlyStopping: stopCells.length,
      validation: valCells.length,
      target: prep.target.length,
    },
    header: header(),
    seconds: (performance.now() - t0) / 1000,
    profile,
  };
  best.destroy();
  optimizer.destroy();
  area.release();
  evalArea.release();
  metrics.release();
  labelsBuf.release();
  domainsBuf.release();
  orderBuf.release();
  progress.log(
    `trained ${history.length} epochs in ${formatDuration(result.seconds)}` +
      (bestEpoch >= 0 ? `, kept epoch ${bestEpoch + 1}` : "") +
      (accuracy !== null ? `, held-out validation accuracy ${(100 * accuracy).toFixed(1)}%` : "") +
      (interrupted ? " (interrupted)" : stoppedEarly ? " (early stop)" : ""),
  );
  return result;
}
