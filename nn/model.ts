/**
 * scNym's networks on the GPU runtime.
 *
 * Classifier: genes -> [Linear -> BatchNorm1d -> Dropout -> ReLU] x layers -> Linear -> classes.
 * The embedding (reported as `X_scnym`, fed to the adversary) is the last hidden layer's output,
 * after its ReLU. Every hidden layer has its own weights (the original ties the extra layers).
 *
 * Adversary: embedding -> gradient reversal -> Linear -> ReLU -> Linear -> domains.
 *
 * The forward pass is split where scNym's training step needs to step in: `inputLayer` (the
 * sparse first Linear, whose output is mixed by MixUp: exact, since mixing commutes with a linear
 * map), `trunk` (BatchNorm onwards, up to the embedding) and `head`.
 */
import { scale } from "../kernels/activation.ts";
import { softmax } from "../kernels/softmax.ts";
import type { GpuCsr } from "../kernels/sparse.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { Rng } from "../util/rng.ts";
import { ScnymError } from "../util/errors.ts";
import {
  batchNorm,
  type BatchNormLayer,
  type Bf16Operands,
  dropoutRelu,
  gradReverse,
  linear,
  sparseLinear,
} from "./ops.ts";
import { Param, Tape, type Var } from "./tape.ts";

/** The sizes of a model. */
export interface ModelShape {
  genes: number;
  classes: number;
  hidden: number;
  /** Hidden layers (each Linear -> BatchNorm -> Dropout -> ReLU). */
  layers: number;
  dropout: number;
  /** Domains the adversary tells apart (0: no adversary). */
  domains: number;
  adversaryHidden: number;
}

interface HiddenLayer {
  W: Param;
  b: Param;
  bn: BatchNormLayer;
}

/**
 * Dropout randomness of one forward pass: hidden layer i uses stream `stream + i`, so a training
 * pass needs `layers` consecutive streams of its own (see scnym/random_streams.ts).
 */
export interface ForwardMode {
  training: boolean;
  seed: number;
  stream: number;
}

/** Eval mode draws nothing: no dropout, so no seed or stream is used. */
const EVAL_MODE: ForwardMode = { training: false, seed: 0, stream: 0 };

/** Classifier and adversary parameters living on the GPU. */
export class ScnymModel {
  readonly hiddenLayers: HiddenLayer[] = [];
  readonly head: { W: Param; b: Param };
  readonly adversary: { W1: Param; b1: Param; W2: Param; b2: Param } | null;
  /** Running statistics: persistent state that is not trained by gradients. */
  readonly buffers: Map<string, Tensor> = new Map();
  /** Every trainable parameter, classifier first. */
  readonly params: Param[] = [];

  private constructor(
    readonly rt: Runtime,
    readonly shape: ModelShape,
    init: (name: string, dims: number[], fanIn: number) => Float32Array,
  ) {
    const param = (name: string, dims: number[], fanIn: number) => {
      const p = new Param(name, rt.upload(init(name, dims, fanIn), dims, "f32", name));
      this.params.push(p);
      return p;
    };
    const buffer = (name: string, dims: number[], fanIn: number) => {
      const t = rt.upload(init(name, dims, fanIn), dims, "f32", name).keep();
      this.buffers.set(name, t);
      return t;
    };
    let width = shape.genes;
    for (let i = 0; i < shape.layers; i++) {
      const h = shape.hidden;
      this.hiddenLayers.push({
        W: param(`layer${i}.W`, [width, h], width),
        b: param(`layer${i}.b`, [h], width),
        bn: {
          gamma: param(`layer${i}.bn.gamma`, [h], 0),
          beta: param(`layer${i}.bn.beta`, [h], 0),
          runningMean: buffer(`layer${i}.bn.runningMean`, [h], 0),
          runningVar: buffer(`layer${i}.bn.runningVar`, [h], 0),
        },
      });
      width = h;
    }
    this.head = {
      W: param("head.W", [width, shape.classes], width),
      b: param("head.b", [shape.classes], width),
    };
    this.adversary = shape.domains > 0
      ? {
        W1: param("adversary.W1", [width, shape.adversaryHidden], width),
        b1: param("adversary.b1", [shape.adversaryHidden], width),
        W2: param("adversary.W2", [shape.adversaryHidden, shape.domains], shape.adversaryHidden),
        b2: param("adversary.b2", [shape.domains], shape.adversaryHidden),
      }
      : null;
  }

  /**
   * A freshly initialised model, as PyTorch initialises it: Linear weights and biases uniform in
   * +-1/sqrt(fan_in), BatchNorm scale 1 and shift 0, running mean 0 and variance 1.
   */
  static create(rt: Runtime, shape: ModelShape, seed: number): ScnymModel {
    checkShape(shape);
    const rng = new Rng(seed ^ 0x5eed);
    return new ScnymModel(rt, shape, (name, dims, fanIn) => {
      const n = dims.reduce((a, b) => a * b, 1);
      const a = new Float32Array(n);
      if (name.endsWith("bn.gamma") || name.endsWith("runningVar")) a.fill(1);
      else if (fanIn > 0) {
        const bound = 1 / Math.sqrt(fanIn);
        for (let i = 0; i < n; i++) a[i] = (2 * rng.uniform() - 1) * bound;
      }
      return a;
    });
  }

  /** A model from stored tensors (a model file); every tensor must be present with its shape. */
  static fromTensors(
    rt: Runtime,
    shape: ModelShape,
    tensors: Map<string, Float32Array>,
    source = "model",
  ): ScnymModel {
    checkShape(shape);
    return new ScnymModel(rt, shape, (name, dims) => {
      const t = tensors.get(name);
      const n = dims.reduce((a, b) => a * b, 1);
      if (!t) throw new ScnymError(`${source}: tensor ${name} is missing`);
      if (t.length !== n) {
        throw new ScnymError(`${source}: tensor ${name} has ${t.length} values, expected ${dims}`);
      }
      return t;
    });
  }

  /** Every persistent tensor by name: parameters and running statistics. */
  namedTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const p of this.params) out.set(p.name, p.value);
    for (const [k, t] of this.buffers) out.set(k, t);
    return out;
  }

  /**
   * Reads every persistent tensor back to the host (for saving), packed into one buffer first so
   * the whole model costs a single readback.
   */
  async download(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const named = [...this.namedTensors()];
    const total = named.reduce((s, [, t]) => s + t.size, 0);
    const packed = this.rt.tensor([total], "f32", "model download");
    let offset = 0;
    for (const [, t] of named) {
      this.rt.copy(t, packed, offset);
      offset += t.size;
    }
    const all = await packed.read() as Float32Array;
    packed.release();
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    offset = 0;
    for (const [name, t] of named) {
      out.set(name, { shape: [...t.shape], data: all.subarray(offset, offset + t.size) });
      offset += t.size;
    }
    return out;
  }

  /** Copies every persistent tensor of `src` (same shape) into this model, on the GPU. */
  copyFrom(src: ScnymModel): void {
    const theirs = src.namedTensors();
    for (const [name, t] of this.namedTensors()) this.rt.copy(theirs.get(name)!, t);
  }

  /**
   * The first Linear on a sparse batch (or on a dense `Var`). `opts` go to `sparseLinear`: an
   * input whose gradient to compute, rooms for bf16 operands.
   */
  inputLayer(t: Tape, x: GpuCsr | Var, opts: { input?: Var; bf16?: Bf16Operands } = {}): Var {
    const l = this.hiddenLayers[0];
    if ("nnz" in x) return sparseLinear(t, x, l.W, l.b, opts);
    return linear(t, x, l.W, l.b);
  }

  /** From the first Linear's output to the embedding (post-ReLU of the last hidden layer). */
  trunk(t: Tape, h1: Var, mode: ForwardMode): Var {
    let h = h1;
    this.hiddenLayers.forEach((l, i) => {
      if (i > 0) h = linear(t, h, l.W, l.b);
      h = batchNorm(t, h, l.bn, mode.training);
      h = dropoutRelu(t, h, {
        p: this.shape.dropout,
        seed: mode.seed,
        stream: mode.stream + i,
        training: mode.training,
      });
    });
    return h;
  }

  /** Class logits from the embedding. */
  classify(t: Tape, embedding: Var): Var {
    return linear(t, embedding, this.head.W, this.head.b);
  }

  /** Eval mode (running statistics, no dropout) from a sparse batch: logits and embedding. */
  evaluate(t: Tape, x: GpuCsr): { logits: Var; embedding: Var } {
    const embedding = this.trunk(t, this.inputLayer(t, x), EVAL_MODE);
    return { logits: this.classify(t, embedding), embedding };
  }

  /**
   * Prediction of a sparse batch: class probabilities softmax(logits / temperature) [B, C] (the
   * calibrated temperature of the model file; 1: the network's own), the logits [B, C] and the
   * embedding [B, hidden].
   */
  predict(x: GpuCsr, temperature = 1): { probs: Tensor; logits: Tensor; embedding: Tensor } {
    const { logits, embedding } = this.evaluate(new Tape(this.rt, false), x);
    const z = temperature === 1 ? logits.value : scale(this.rt, logits.value, 1 / temperature);
    return { probs: softmax(this.rt, z), logits: logits.value, embedding: embedding.value };
  }

  /** Domain logits from the embedding, through gradient reversal with `weight`. */
  adversaryLogits(t: Tape, embedding: Var, weight: number): Var {
    const a = this.adversary;
    if (!a) throw new Error("adversaryLogits: this model has no adversary");
    const h = linear(t, gradReverse(t, embedding, weight), a.W1, a.b1);
    const r = dropoutRelu(t, h, { p: 0, seed: 0, stream: 0, training: false });
    return linear(t, r, a.W2, a.b2);
  }

  /** Frees every GPU buffer of the model. */
  destroy(): void {
    for (const p of this.params) {
      p.value.release();
      p.grad.release();
    }
    for (const t of this.buffers.values()) t.release();
  }
}

function checkShape(s: ModelShape) {
  for (const k of ["genes", "classes", "hidden", "layers"] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) {
      throw new ScnymError(`model: ${k} is ${s[k]}, expected an integer >= 1`);
    }
  }
  if (s.classes < 2) throw new ScnymError(`model: ${s.classes} class; at least 2 are needed`);
}
