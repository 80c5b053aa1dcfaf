/**
 * One training step, the paper's Algorithm 1 with the original's defaults, every kernel recorded
 * into one submission and nothing read back:
 *  1. upload the CSR rows of a target batch U and a labelled batch X (the "pool" [U ; X]);
 *  2. augment X in place (log1p_drop);
 *  3. h1 = pool W1 + b1 from the sparse rows (the widest layer, once per cell);
 *  4. teacher = the current model in eval mode on h1(U): softmax, sharpen (T = 0.5) and
 *     confidence -> pseudolabels; targets = [pseudolabels ; one-hot labels];
 *  5. MixUp of h1 and of the targets with one pairing (exact: mixing commutes with the first
 *     Linear); the mixed U rows, then the mixed X rows, through the training-mode network:
 *     squared-error consistency loss (weighted by lambda_ssl(epoch)) and soft cross-entropy;
 *  6. the adversary on the embeddings of the whole pool through gradient reversal (weight
 *     w(epoch)), cross-entropy against the cells' domains;
 *  7. backward through the tape, Adadelta on every parameter.
 * Losses add into the run's metrics buffer (read once per epoch).
 */
import { type Csr, selectRows } from "../data/csr.ts";
import { Adadelta } from "../nn/adadelta.ts";
import {
  adversaryLoss,
  consistencyLoss,
  labelCrossEntropy,
  softCrossEntropy,
} from "../nn/losses.ts";
import { augment, mixMatchTargets } from "../nn/mixmatch.ts";
import type { ForwardMode, ScnymModel } from "../nn/model.ts";
import { mix, prefixRows } from "../nn/ops.ts";
import { Tape, Var, zeroGrads } from "../nn/tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import type { Rng } from "../util/rng.ts";
import type { TargetStream } from "./batches.ts";
import type { ScnymConfig } from "./config.ts";
import { RandomStreams, type StreamBlock } from "./random_streams.ts";
import { type InputLayout, StepInput } from "./step_input.ts";
import type { TrainingMetrics } from "./types.ts";

/** What the steps of a run share. */
export interface StepSetup {
  /** Every cell's normalised expression; batches are rows of it. */
  X: Csr;
  /** Class code per cell (labelled cells) and domain code per cell (cells in use). */
  classOf: Int32Array;
  domainOf: Int32Array;
  config: ScnymConfig;
  seed: number;
  /** Labelled cells per step, at most. */
  batchSize: number;
  useSsl: boolean;
  useDan: boolean;
  /** The unlabelled stream (null without target cells). */
  targets: TargetStream | null;
  /** The run's generator (MixUp orders). */
  rng: Rng;
  metrics: TrainingMetrics;
  /** How the input layer reads a batch (default "auto"; see scnym/step_input.ts). */
  inputLayout?: InputLayout;
}

/** Records training steps: owns the optimizer and the step's persistent upload buffers. */
export class TrainingStep {
  readonly #optimizer: Adadelta;
  readonly #input: StepInput;
  readonly #labels: Tensor;
  readonly #domains: Tensor;
  readonly #order: Tensor;
  readonly #streams: RandomStreams;
  #step = 0;

  constructor(readonly rt: Runtime, readonly model: ScnymModel, readonly s: StepSetup) {
    const t = s.config.train;
    const maxPool = 2 * s.batchSize;
    this.#input = new StepInput(rt, model, s.X, s.inputLayout ?? "auto", maxPool);
    this.#optimizer = new Adadelta(rt, model.params, {
      lr: t.lr,
      rho: t.rho,
      eps: t.eps,
      weightDecay: t.weightDecay,
    }, this.#input.bf16Copies);
    this.#labels = rt.tensor([s.batchSize], "u32", "labels").keep();
    this.#domains = rt.tensor([maxPool], "u32", "domains").keep();
    this.#order = rt.tensor([maxPool], "u32", "mixup order").keep();
    this.#streams = RandomStreams.forModel(model.shape.layers);
  }

  /** Records one step on labelled cells `xCells` with this epoch's loss weights. */
  record(xCells: number[], lambdaSsl: number, danWeight: number): void {
    const { rt, model, s } = this;
    const nX = xCells.length;
    const uCells = s.targets ? s.targets.next(nX) : [];
    const nU = uCells.length;
    const n = nX + nU;
    // Pool order: [U ; X] with MixMatch (the teacher reads the U prefix), else [X ; U].
    const poolCells = s.useSsl ? [...uCells, ...xCells] : [...xCells, ...uCells];
    const xStart = s.useSsl ? nU : 0;
    const batch = this.#input.upload(selectRows(s.X, poolCells));
    rt.write(this.#labels, Uint32Array.from(xCells, (i) => s.classOf[i]), "labels", 0);
    if (s.useDan) {
      rt.write(this.#domains, Uint32Array.from(poolCells, (i) => s.domainOf[i]), "domains", 0);
    }
    if (s.useSsl) rt.write(this.#order, s.rng.permutation(n), "mixup order", 0);
    const labels = this.#labels.view([nX]);
    const step = this.#step++;
    const stream = (block: StreamBlock) => this.#streams.of(step, block);
    rt.scope(() => {
      zeroGrads(rt, model.params);
      const tape = new Tape(rt);
      augment(rt, batch, xStart, xStart + nX, {
        p: s.config.ssl.augmentDropout,
        seed: s.seed,
        stream: stream("augment"),
      });
      const h1 = this.#input.forward(tape, model, batch);
      const eligibleMean = s.useSsl
        ? this.#mixMatch(tape, h1, labels, nU, lambdaSsl, stream)
        : this.#supervised(tape, h1, labels, stream);
      if (s.useDan) {
        const emb = model.trunk(tape, h1, this.#mode(stream("adversary")));
        const zD = model.adversaryLogits(tape, emb, danWeight);
        adversaryLoss(tape, zD, this.#domains.view([n]), {
          rowWeight: s.config.dan.useConfidentOnly && eligibleMean ? eligibleMean : undefined,
          metric: s.metrics.slot("adv"),
        });
      }
      tape.backward();
      this.#optimizer.step();
    });
    rt.flush();
  }

  #mode(stream: number): ForwardMode {
    return { training: true, seed: this.s.seed, stream };
  }

  /**
   * Steps 4-5 with MixMatch: the unlabelled forward first, then the labelled one (as the
   * original). Returns the plan's `eligibleMean` (for a confident-only adversary).
   */
  #mixMatch(
    tape: Tape,
    h1: Var,
    labels: Tensor,
    nU: number,
    lambdaSsl: number,
    stream: (block: StreamBlock) => number,
  ): Tensor {
    const { rt, model, s } = this;
    const ssl = s.config.ssl;
    // Teacher: eval mode, no gradient, current weights.
    const off = new Tape(rt, false);
    const hU = new Var(h1.value.view([nU, h1.value.cols]), false);
    const teacherMode = { ...this.#mode(stream("teacher")), training: false };
    const teacher = model.classify(off, model.trunk(off, hU, teacherMode));
    const order = this.#order.view([nU + labels.size]);
    const { plan, targets } = mixMatchTargets(rt, teacher.value, labels, order, {
      temperature: ssl.temperature,
      alpha: ssl.mixupAlpha,
      minConfidence: ssl.minConfidence,
      seed: s.seed,
      stream: stream("mixup"),
    });
    const mixed = mix(tape, h1, plan, nU);
    const zU = model.classify(tape, model.trunk(tape, mixed.top, this.#mode(stream("forwardU"))));
    consistencyLoss(tape, zU, targets.top, {
      rowWeight: plan.eligible.view([nU]),
      scale: lambdaSsl,
      metric: s.metrics.slot("ssl"),
    });
    const zX = model.classify(
      tape,
      model.trunk(tape, mixed.bottom, this.#mode(stream("forwardX"))),
    );
    softCrossEntropy(tape, zX, targets.bottom, { metric: s.metrics.slot("sup") });
    return plan.eligibleMean;
  }

  /** Steps 4-5 without MixMatch: the labelled rows alone, plain cross-entropy. */
  #supervised(
    tape: Tape,
    h1: Var,
    labels: Tensor,
    stream: (block: StreamBlock) => number,
  ): null {
    const { model, s } = this;
    const hX = prefixRows(tape, h1, labels.size);
    const zX = model.classify(tape, model.trunk(tape, hX, this.#mode(stream("forwardX"))));
    labelCrossEntropy(tape, zX, labels, { metric: s.metrics.slot("sup") });
    return null;
  }

  /** Frees the optimizer state and the step's buffers. */
  release(): void {
    this.#optimizer.destroy();
    this.#input.release();
    for (const t of [this.#labels, this.#domains, this.#order]) t.release();
  }
}
