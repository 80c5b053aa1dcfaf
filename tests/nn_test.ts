/**
 * Autograd through composed ops and the model: backward gradients against central finite
 * differences of the GPU forward, gradient reversal, MixUp/prefix routing, input gradients
 * (plain and guided) and the model's initialisation.
 */
import assert from "node:assert/strict";
import { csrFromDense } from "../data/csr.ts";
import { type MixPlan, mixRowsRef } from "../kernels/mixup.ts";
import { softCrossEntropy, softCrossEntropyRef } from "../kernels/softmax.ts";
import { type GpuCsr, releaseCsr, uploadCsr } from "../kernels/sparse.ts";
import { type ModelShape, ScnymModel } from "../nn/model.ts";
import { linear, mix, prefixRows } from "../nn/ops.ts";
import { Param, Tape, Var, zeroGrads } from "../nn/tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { Rng } from "../util/rng.ts";
import {
  assertClose,
  dot,
  finiteDiff,
  gpuTest,
  isScnym,
  randn,
  randu,
  sampleIndices,
  testRuntime,
} from "./helpers.ts";

/** The small model of the gradient checks (ragged sizes: no dimension is a tile multiple). */
const SMALL: ModelShape = {
  genes: 30,
  classes: 4,
  hidden: 16,
  layers: 2,
  dropout: 0.5,
  domains: 3,
  adversaryHidden: 8,
};
const BATCH = 12;
/** Dropout masks depend only on (seed, stream, element): every evaluation draws the same ones. */
const TRAIN_MODE = { training: true, seed: 1234, stream: 40 };

/**
 * A sparse log1p-like batch and its dense copy: row 0 is empty (a cell without counts) and the
 * last 3 genes are never expressed (their sparse-layer weights must get no gradient).
 */
function sparseBatch(rng: Rng, rows: number, genes: number, density: number) {
  const dense = new Float32Array(rows * genes);
  for (let i = genes; i < rows * genes; i++) {
    if (i % genes < genes - 3 && rng.uniform() < density) dense[i] = 0.5 + 3 * rng.uniform();
  }
  return { dense, csr: csrFromDense(dense, rows, genes) };
}

/** Random soft targets: rows of non-negative values summing to 1. */
function softTargets(rng: Rng, rows: number, cols: number): Float32Array {
  const t = randu(rng, rows * cols, 0.05, 1);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += t[r * cols + c];
    for (let c = 0; c < cols; c++) t[r * cols + c] /= s;
  }
  return t;
}

/** One-hot rows for codes `codes`. */
function oneHotHost(codes: number[], cols: number): Float32Array {
  const t = new Float32Array(codes.length * cols);
  codes.forEach((c, r) => t[r * cols + c] = 1);
  return t;
}

type Losses = { ce: number; adv: number };

/** Everything the gradient checks of the small model share. */
interface Fixture {
  rt: Runtime;
  model: ScnymModel;
  x: GpuCsr;
  /** Genes with at least one stored value in the batch (the others get no W gradient). */
  usedGenes: number[];
  targets: Float32Array;
  domains: Float32Array;
  targetsT: Tensor;
  domainsT: Tensor;
}

/** Random running statistics and affine parameters, so eval-mode BatchNorm is not identity. */
function randomiseBatchNorm(rt: Runtime, model: ScnymModel, rng: Rng) {
  for (const l of model.hiddenLayers) {
    const h = model.shape.hidden;
    rt.write(l.bn.gamma.value, randu(rng, h, 0.5, 1.5));
    rt.write(l.bn.beta.value, randn(rng, h, 0.3));
    rt.write(l.bn.runningMean, randn(rng, h, 0.2));
    rt.write(l.bn.runningVar, randu(rng, h, 0.3, 2));
  }
}

async function smallFixture(seed: number): Promise<Fixture> {
  const rt = await testRuntime();
  const rng = new Rng(seed);
  const model = ScnymModel.create(rt, SMALL, seed);
  // Gradients of gamma/beta are checked away from the identity initialisation.
  randomiseBatchNorm(rt, model, rng);
  const { csr } = sparseBatch(rng, BATCH, SMALL.genes, 0.35);
  const used = new Set(csr.indices);
  const targets = softTargets(rng, BATCH, SMALL.classes);
  const domains = oneHotHost(
    Array.from({ length: BATCH }, (_, i) => i % SMALL.domains),
    SMALL.domains,
  );
  return {
    rt,
    model,
    x: uploadCsr(rt, csr, { withCsc: true }),
    usedGenes: [...used].sort((a, b) => a - b),
    targets,
    domains,
    targetsT: rt.upload(targets, [BATCH, SMALL.classes]),
    domainsT: rt.upload(domains, [BATCH, SMALL.domains]),
  };
}

function releaseFixture(f: Fixture) {
  f.model.destroy();
  releaseCsr(f.x);
  f.targetsT.release();
  f.domainsT.release();
}

/** The network of a training step: one embedding feeding the classifier and the adversary. */
function forward(f: Fixture, tape: Tape, weight: number) {
  const emb = f.model.trunk(tape, f.model.inputLayer(tape, f.x), TRAIN_MODE);
  return { z: f.model.classify(tape, emb), zD: f.model.adversaryLogits(tape, emb, weight) };
}

/** Both losses (classifier soft CE, adversary CE) of one GPU forward, in float64 on the host. */
async function lossesOf(f: Fixture): Promise<Losses> {
  const rt = f.rt;
  const out = rt.scope(() => {
    const o = forward(f, new Tape(rt, false), 0);
    return [o.z.value, o.zD.value];
  });
  const [z, zD] = await rt.readAll(out);
  out.forEach((t) => t.release());
  return {
    ce: softCrossEntropyRef(z, f.targets, BATCH, SMALL.classes).loss,
    adv: softCrossEntropyRef(zD, f.domains, BATCH, SMALL.domains).loss,
  };
}

/**
 * Backward gradients of every parameter with reversal weight `weight`: the classifier's soft CE
 * seeds the class logits (unless `adversaryOnly`), the adversary's CE the domain logits.
 */
async function gradients(
  f: Fixture,
  weight: number,
  adversaryOnly = false,
): Promise<Map<string, Float32Array>> {
  const rt = f.rt;
  zeroGrads(rt, f.model.params);
  rt.scope(() => {
    const tape = new Tape(rt);
    const { z, zD } = forward(f, tape, weight);
    z.grad = adversaryOnly
      ? rt.full(z.value.shape, 0)
      : softCrossEntropy(rt, z.value, f.targetsT).dlogits;
    zD.grad = softCrossEntropy(rt, zD.value, f.domainsT).dlogits;
    tape.backward();
  });
  const out = new Map<string, Float32Array>();
  for (const p of f.model.params) out.set(p.name, await p.grad.read() as Float32Array);
  return out;
}

/** Both losses with one coordinate of a parameter moved by +h and by -h (then restored). */
async function lossesAround(f: Fixture, name: string, index: number, h: number) {
  const p = f.model.params.find((q) => q.name === name)!;
  const v0 = (await p.value.read())[index];
  const at = async (v: number) => {
    f.rt.write(p.value, [v], "fd", index);
    return await lossesOf(f);
  };
  const plus = await at(v0 + h);
  const minus = await at(v0 - h);
  f.rt.write(p.value, [v0], "fd", index);
  return { plus, minus };
}

/** The coordinates checked per parameter: the sparse layer's W only at genes the batch uses. */
function coordinates(f: Fixture, rng: Rng): [string, number[]][] {
  const H = SMALL.hidden;
  const wIdx = sampleIndices(rng, f.usedGenes.length, 4).map((k) =>
    f.usedGenes[k] * H + rng.int(H)
  );
  return [
    ["layer0.W", wIdx],
    ["layer0.bn.gamma", sampleIndices(rng, H, 3)],
    ["layer0.bn.beta", sampleIndices(rng, H, 2)],
    ["layer1.W", sampleIndices(rng, H * H, 3)],
    ["layer1.bn.gamma", sampleIndices(rng, H, 2)],
    ["head.W", sampleIndices(rng, H * SMALL.classes, 3)],
    ["head.b", sampleIndices(rng, SMALL.classes, 2)],
    ["adversary.W1", sampleIndices(rng, H * SMALL.adversaryHidden, 3)],
    ["adversary.b1", sampleIndices(rng, SMALL.adversaryHidden, 2)],
    ["adversary.W2", sampleIndices(rng, SMALL.adversaryHidden * SMALL.domains, 2)],
    ["adversary.b2", [0, 2]],
  ];
}

/**
 * Compares backward gradients `got(name, i)` with central differences (step `h`) of
 * `objective` at the coordinates of `coordinates` (parameters it maps to null are skipped).
 * ReLUs make the network piecewise smooth; a kink inside [x - h, x + h] is recognised by the
 * one-sided quotients disagreeing, |f(x+h) - 2 f(x) + f(x-h)| / h > `kink` (for a piecewise
 * linear stretch the central quotient's error is half that), and such coordinates are skipped.
 * Returns how many coordinates were compared and skipped, and the largest gradient compared.
 */
async function checkAgainstFd(
  f: Fixture,
  rng: Rng,
  objective: (l: Losses, name: string) => number | null,
  got: (name: string, i: number) => number,
  opts: { h: number; kink: number; tol: { atol: number; rtol: number } },
): Promise<{ compared: number; skipped: number; largest: number }> {
  const base = await lossesOf(f);
  let compared = 0;
  let skipped = 0;
  let largest = 0;
  for (const [name, idx] of coordinates(f, rng)) {
    if (objective(base, name) === null) continue;
    const g: number[] = [];
    const fd: number[] = [];
    for (const i of idx) {
      const { plus, minus } = await lossesAround(f, name, i, opts.h);
      const [fp, f0, fm] = [plus, base, minus].map((l) => objective(l, name)!);
      if (Math.abs(fp - 2 * f0 + fm) / opts.h > opts.kink) {
        skipped++;
        continue;
      }
      g.push(got(name, i));
      fd.push((fp - fm) / (2 * opts.h));
    }
    assertClose(g, fd, opts.tol, name);
    compared += g.length;
    largest = Math.max(largest, ...fd.map(Math.abs));
  }
  return { compared, skipped, largest };
}

// The GPU forward is f32: logits carry ~1e-7 relative rounding, so a loss of size ~1.5 differs
// by ~1e-8 to 1e-7 between evaluations from rounding alone; over 2h = 5e-4 that is up to ~2e-4
// in the quotient (measured on smooth coordinates: < 4e-5). Larger steps cross ReLU kinks more
// often (h = 1e-2 crossed one in a third of the coordinates). Smooth coordinates have
// |f(x+h) - 2f(x) + f(x-h)| / h = h |f''| + rounding, measured < 2e-4; a kink whose error could
// exceed atol shows as > 2 atol and is skipped. In the first fixture one layer-1 ReLU input sits
// 2.6e-5 from zero, so 3 of 28 coordinates upstream of it are skipped (measured 1.2e-3 to 3e-3).
// A wrong gradient (sign, factor, missing path) is off by O(gradient), 1e-3 to 1e-1 here.
const FD = { h: 2.5e-4, kink: 6e-4, tol: { atol: 3e-4, rtol: 1e-2 } };

Deno.test(
  "model gradients (sparse input, BatchNorm and dropout in training mode, reversed adversary) " +
    "match finite differences",
  gpuTest,
  async () => {
    const f = await smallFixture(11);
    const w = 0.3;
    const g = await gradients(f, w);
    // The adversary learns its own loss; everything before the reversal learns the classifier's
    // loss minus w times the adversary's.
    const { compared, skipped, largest } = await checkAgainstFd(
      f,
      new Rng(12),
      (l, name) => name.startsWith("adversary.") ? l.adv : l.ce - w * l.adv,
      (name, i) => g.get(name)![i],
      FD,
    );
    // The check means something only if most coordinates were compared and the gradients are
    // well above the tolerance.
    assert.ok(skipped <= 6 && compared >= 22, `${compared} compared, ${skipped} at kinks`);
    assert.ok(largest > 50 * FD.tol.atol, `largest checked gradient ${largest}`);
    // Genes absent from the batch get exactly no gradient in the sparse layer.
    const unused = [...Array(SMALL.genes).keys()].filter((c) => !f.usedGenes.includes(c));
    assert.ok(unused.length > 0, "the batch should leave some genes unused");
    const gw = g.get("layer0.W")!;
    for (const c of unused) {
      for (let j = 0; j < SMALL.hidden; j++) assert.equal(gw[c * SMALL.hidden + j], 0);
    }
    releaseFixture(f);
  },
);

Deno.test(
  "gradient reversal: the adversary gets its normal gradient, the trunk -w times it",
  gpuTest,
  async () => {
    const f = await smallFixture(21);
    const g0 = await gradients(f, 0);
    const gw = await gradients(f, 0.3);
    const g2 = await gradients(f, 0.6);
    const only0 = await gradients(f, 0, true);
    for (const p of f.model.params) {
      if (p.name.startsWith("adversary.")) {
        // The adversary sits after the reversal: its gradient does not depend on the weight.
        assert.deepEqual(gw.get(p.name), g0.get(p.name), p.name);
        assert.deepEqual(g2.get(p.name), g0.get(p.name), p.name);
      } else {
        // With weight 0 the trunk gets nothing from the adversary path.
        assert.ok(only0.get(p.name)!.every((v) => v === 0), `${p.name} at weight 0`);
        // The adversary path's share is linear in the weight: g(0.6) - g(0) = 2 (g(0.3) - g(0)).
        // Both sides are differences of f32 sums of a dozen terms: atol 1e-6 on values ~1e-2.
        const d1 = gw.get(p.name)!.map((v, i) => v - g0.get(p.name)![i]);
        const d2 = g2.get(p.name)!.map((v, i) => v - g0.get(p.name)![i]);
        assertClose(d2, d1.map((v) => 2 * v), { atol: 1e-6, rtol: 1e-4 }, p.name);
      }
    }
    // Against finite differences of the adversary's own loss: the trunk's share is that
    // gradient with the opposite sign, scaled by the weight.
    const { compared, largest } = await checkAgainstFd(
      f,
      new Rng(22),
      (l, name) => name.startsWith("adversary.") ? null : -0.3 * l.adv,
      (name, i) => gw.get(name)![i] - g0.get(name)![i],
      FD,
    );
    assert.ok(compared >= 15, `${compared} coordinates compared`);
    assert.ok(largest > 10 * FD.tol.atol, `largest checked gradient ${largest}`);
    releaseFixture(f);
  },
);

/**
 * A MixUp pairing made on the host (a random bijection, gamma in [0.5, 1]): the ops are tested
 * here, not `mixupPlan` (tests/mixmatch_test.ts), whose shader takes minutes to compile on a
 * cold llvmpipe cache.
 */
function handPlan(rt: Runtime, rng: Rng, nU: number, nX: number) {
  const n = nU + nX;
  const partner = Array.from(rng.permutation(n));
  const inverse = new Uint32Array(n);
  partner.forEach((q, i) => inverse[q] = i);
  const gamma = Array.from(randu(rng, n, 0.5, 1));
  const plan: MixPlan = {
    n,
    nU,
    partner: rt.upload(Uint32Array.from(partner), [n]),
    inverse: rt.upload(inverse, [n]),
    gamma: rt.upload(Float32Array.from(gamma), [n]),
    eligible: rt.full([n], 1),
    eligibleMean: rt.full([n], 1),
  };
  const release = () => {
    for (const t of [plan.partner, plan.inverse, plan.gamma, plan.eligible, plan.eligibleMean]) {
      t.release();
    }
  };
  // The reference mixes with the f32 gammas the GPU sees.
  return { plan, partner, gamma: Array.from(Float32Array.from(gamma)), release };
}

Deno.test(
  "mix and prefixRows route gradients back to the rows they came from",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(31);
    // Pool of nU + nX rows, F features; the loss reads the mixed top rows, a prefix of the
    // mixed bottom rows, and a prefix of x itself (so x's gradient gets three contributions).
    for (const [nU, nX, F, k, m] of [[3, 4, 5, 2, 1], [1, 6, 3, 6, 7], [5, 2, 1, 1, 2]]) {
      for (const prefixFirst of [false, true]) {
        const n = nU + nX;
        const xs = randn(rng, n * F);
        const r1 = randn(rng, nU * F);
        const r2 = randn(rng, k * F);
        const r3 = randn(rng, m * F);
        const { plan, partner, gamma, release } = handPlan(rt, rng, nU, nX);
        const x = new Var(rt.upload(xs, [n, F]), true);
        const label = `nU ${nU} nX ${nX} F ${F} k ${k} m ${m} prefix ${
          prefixFirst ? "first" : "last"
        }`;
        const top = rt.scope(() => {
          const tape = new Tape(rt);
          // Backward runs in reverse: prefixRows(x) either starts x's gradient or adds into it.
          const px = prefixFirst ? prefixRows(tape, x, m) : null;
          const mixed = mix(tape, x, plan, nU);
          const pb = prefixRows(tape, mixed.bottom, k);
          const py = px ?? prefixRows(tape, x, m);
          mixed.top.grad = rt.upload(r1, [nU, F]);
          pb.grad = rt.upload(r2, [k, F]);
          py.grad = rt.upload(r3, [m, F]);
          tape.backward();
          x.grad!.keep();
          return mixed.top.value;
        });
        const loss = (v: ArrayLike<number>) => {
          const y = mixRowsRef(v, F, partner, gamma);
          return dot(y.subarray(0, nU * F), r1) + dot(y.subarray(nU * F, (nU + k) * F), r2) +
            dot(Float64Array.prototype.slice.call(v, 0, m * F), r3);
        };
        // Mixing is linear: the float64 difference quotient is exact up to rounding (~1e-15).
        const fd = finiteDiff(loss, xs, 1e-3);
        assertClose(await x.grad!.read(), fd, { atol: 1e-5, rtol: 1e-5 }, label);
        // The forward itself: f32 products of values ~1, one rounding each.
        assertClose(
          await top.read(),
          mixRowsRef(xs, F, partner, gamma).subarray(0, nU * F),
          { atol: 1e-6, rtol: 1e-6 },
          `${label} top`,
        );
        top.release();
        x.grad!.release();
        x.value.release();
        release();
      }
    }
  },
);

Deno.test(
  "a mixed half that no loss reaches contributes nothing to the gradient",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(32);
    const [nU, nX, F] = [3, 5, 4];
    const n = nU + nX;
    const xs = randn(rng, n * F);
    const r = randn(rng, nU * F);
    const { plan, partner, gamma, release } = handPlan(rt, rng, nU, nX);
    const x = new Var(rt.upload(xs, [n, F]), true);
    rt.scope(() => {
      const tape = new Tape(rt);
      const mixed = mix(tape, x, plan, nU);
      mixed.top.grad = rt.upload(r, [nU, F]);
      tape.backward();
      x.grad!.keep();
    });
    const fd = finiteDiff(
      (v) => dot(mixRowsRef(v, F, partner, gamma).subarray(0, nU * F), r),
      xs,
      1e-3,
    );
    assertClose(await x.grad!.read(), fd, { atol: 1e-5, rtol: 1e-5 }, "top only");
    x.grad!.release();
    x.value.release();
    release();
  },
);

Deno.test(
  "input gradients (saliency) in eval mode match finite differences, dense and sparse paths",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(41);
    const shape = { ...SMALL, domains: 0 };
    const model = ScnymModel.create(rt, shape, 41);
    randomiseBatchNorm(rt, model, rng);
    const B = 5;
    const { dense, csr } = sparseBatch(rng, B, shape.genes, 0.4);
    const cls = 2;
    const mode = { training: false, seed: 0, stream: 0 };
    // The gradient of the sum over rows of logit `cls`: rows are independent in eval mode, so
    // row i of the input gradient is d z[i, cls] / d x[i, :].
    const seed = oneHotHost(Array(B).fill(cls), shape.classes);

    const saliency = async (sparse: boolean) => {
      const x = new Var(rt.upload(dense, [B, shape.genes]), true);
      const gx = sparse ? uploadCsr(rt, csr, { withCsc: true }) : null;
      rt.scope(() => {
        const tape = new Tape(rt);
        const h1 = gx ? model.inputLayer(tape, gx, { input: x }) : model.inputLayer(tape, x);
        const z = model.classify(tape, model.trunk(tape, h1, mode));
        z.grad = rt.upload(seed, [B, shape.classes]);
        tape.backward();
        x.grad!.keep();
      });
      const g = await x.grad!.read();
      x.grad!.release();
      x.value.release();
      if (gx) releaseCsr(gx);
      return g;
    };
    const logitSum = async (v: Float32Array) => {
      const z = rt.scope(() => {
        const tape = new Tape(rt, false);
        const x = new Var(rt.upload(v, [B, shape.genes]), false);
        return model.classify(tape, model.trunk(tape, model.inputLayer(tape, x), mode)).value;
      });
      const zs = await z.read();
      z.release();
      return dot(zs, seed);
    };

    const dense1 = await saliency(false);
    const idx = sampleIndices(rng, B * shape.genes, 12);
    const h = 1e-2;
    const fd: number[] = [];
    for (const i of idx) {
      const plus = dense.slice();
      plus[i] += h;
      const minus = dense.slice();
      minus[i] -= h;
      fd.push((await logitSum(plus) - await logitSum(minus)) / (2 * h));
    }
    // Eval mode is piecewise linear in x, so the quotient is exact away from ReLU kinks; what
    // remains is f32 rounding of logits ~1 (~1e-7 each, five rows summed) over 2h: ~3e-5.
    assertClose(idx.map((i) => dense1[i]), fd, { atol: 2e-4, rtol: 1e-3 }, "dense saliency");
    assert.ok(fd.some((v) => Math.abs(v) > 1e-2), "some checked input gradient is non-zero");
    // The sparse input layer with an input Var yields the same gradient, for every gene
    // (stored or not): dX = dY W^T does not depend on the sparsity of X.
    assertClose(await saliency(true), dense1, { atol: 1e-6, rtol: 1e-5 }, "sparse saliency");
    model.destroy();
  },
);

Deno.test(
  "guided backprop zeroes negative gradients at ReLUs (hand-computed case)",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    // genes 2 -> hidden 3 -> classes 2. Row 0: x = [1, 1], pre-activations [2, 1, -2]; row 1:
    // x = [-1, 0], pre-activations [-1, -2, 1]. BatchNorm eval with mean 0, var 1, gamma 1, beta 0
    // scales by s = 1/sqrt(1 + eps).
    const tensors = new Map<string, Float32Array>([
      ["layer0.W", Float32Array.of(1, 2, -1, 1, -1, -1)],
      ["layer0.b", new Float32Array(3)],
      ["layer0.bn.gamma", Float32Array.of(1, 1, 1)],
      ["layer0.bn.beta", new Float32Array(3)],
      ["layer0.bn.runningMean", new Float32Array(3)],
      ["layer0.bn.runningVar", Float32Array.of(1, 1, 1)],
      ["head.W", Float32Array.of(1, 0.5, -1, 0.5, 5, 0.5)],
      ["head.b", new Float32Array(2)],
    ]);
    const shape = {
      genes: 2,
      classes: 2,
      hidden: 3,
      layers: 1,
      dropout: 0.5,
      domains: 0,
      adversaryHidden: 1,
    };
    const model = ScnymModel.fromTensors(rt, shape, tensors, "hand model");
    const s = 1 / Math.sqrt(1 + 1e-5);
    const inputGrad = async (cls: number, guided: boolean) => {
      const x = new Var(rt.upload([1, 1, -1, 0], [2, 2]), true);
      rt.scope(() => {
        const tape = new Tape(rt);
        tape.guided = guided;
        const mode = { training: false, seed: 0, stream: 0 };
        const z = model.classify(tape, model.trunk(tape, model.inputLayer(tape, x), mode));
        z.grad = rt.upload(oneHotHost([cls, cls], 2), [2, 2]);
        tape.backward();
        x.grad!.keep();
      });
      const g = await x.grad!.read();
      x.grad!.release();
      x.value.release();
      return g;
    };
    // Class 0: dz/dh = [1, -1, 5]. Row 0 has units 1 and 2 active: plain dx = s W [1, -1, 0] =
    // s [-1, 2]; guided drops the negative -1 of unit 2: s W [1, 0, 0] = s [1, 1]. Row 1 has only
    // unit 3 active, with a positive incoming gradient: both give s W [0, 0, 5] = s [-5, -5].
    // Class 1: dz/dh = [0.5, 0.5, 0.5], all positive: guided equals plain.
    const tol = { atol: 1e-6 };
    assertClose(await inputGrad(0, false), [-s, 2 * s, -5 * s, -5 * s], tol, "plain, class 0");
    assertClose(await inputGrad(0, true), [s, s, -5 * s, -5 * s], tol, "guided, class 0");
    const plain1 = [1.5 * s, 0, -0.5 * s, -0.5 * s];
    assertClose(await inputGrad(1, false), plain1, tol, "plain, class 1");
    assertClose(await inputGrad(1, true), plain1, tol, "guided, class 1");
    model.destroy();
  },
);

Deno.test("a disabled tape records nothing and its outputs need no gradient", gpuTest, async () => {
  const f = await smallFixture(51);
  const rt = f.rt;
  rt.scope(() => {
    const off = new Tape(rt, false);
    const { z, zD } = forward(f, off, 0.3);
    assert.equal(off.length, 0);
    assert.equal(z.requiresGrad, false);
    assert.equal(zD.requiresGrad, false);
    assert.equal(off.needsGrad(f.model.params[0]), false);
    // The same network on an enabled tape records every op, and backward empties the tape.
    const on = new Tape(rt);
    const o = forward(f, on, 0.3);
    assert.ok(o.z.requiresGrad && o.zD.requiresGrad);
    assert.ok(on.length > 10, `${on.length} ops recorded`);
    o.z.grad = rt.full(o.z.value.shape, 0);
    o.zD.grad = rt.full(o.zD.value.shape, 0);
    on.backward();
    assert.equal(on.length, 0);
  });
  // Data without gradient through an enabled tape and no parameter: nothing to record.
  const on = new Tape(rt);
  const y = prefixRows(on, new Var(f.targetsT, false), 2);
  assert.equal(y.requiresGrad, false);
  assert.equal(on.length, 0);
  await rt.sync();
  releaseFixture(f);
});

Deno.test(
  "ScnymModel.create initialises as PyTorch: U(+-1/sqrt(fan_in)), BatchNorm identity",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const shape: ModelShape = {
      genes: 2000,
      classes: 5,
      hidden: 64,
      layers: 2,
      dropout: 0.5,
      domains: 3,
      adversaryHidden: 32,
    };
    const model = ScnymModel.create(rt, shape, 7);
    const t = await model.download();
    const fanIn: Record<string, number> = {
      "layer0.W": 2000,
      "layer0.b": 2000,
      "layer1.W": 64,
      "layer1.b": 64,
      "head.W": 64,
      "head.b": 64,
      "adversary.W1": 64,
      "adversary.b1": 64,
      "adversary.W2": 32,
      "adversary.b2": 32,
    };
    assert.deepEqual(
      [...t.keys()].sort(),
      [
        ...Object.keys(fanIn),
        ...[0, 1].flatMap((i) =>
          ["gamma", "beta", "runningMean", "runningVar"].map((k) => `layer${i}.bn.${k}`)
        ),
      ].sort(),
    );
    assert.deepEqual(t.get("layer0.W")!.shape, [2000, 64]);
    assert.deepEqual(t.get("adversary.W2")!.shape, [32, 3]);
    for (const [name, fan] of Object.entries(fanIn)) {
      const a = t.get(name)!.data;
      const bound = 1 / Math.sqrt(fan);
      let sum = 0;
      let sq = 0;
      let max = 0;
      for (const v of a) {
        sum += v;
        sq += v * v;
        max = Math.max(max, Math.abs(v));
      }
      assert.ok(max <= bound, `${name}: max |w| ${max} above ${bound}`);
      if (a.length >= 1000) {
        // U(-a, a): mean 0 with standard error a / sqrt(3n); E[w^2] = a^2/3 with standard error
        // a^2 sqrt(4/45 / n). Five standard errors: fails by chance with probability < 1e-6.
        const n = a.length;
        const se = bound / Math.sqrt(3 * n);
        assert.ok(Math.abs(sum / n) < 5 * se, `${name}: mean ${sum / n}`);
        const seSq = bound * bound * Math.sqrt(4 / 45 / n);
        assert.ok(
          Math.abs(sq / n - bound * bound / 3) < 5 * seSq,
          `${name}: mean square ${sq / n}`,
        );
        // The largest of n >= 1000 uniforms is within 1% of the bound with probability 1 - 0.99^n.
        assert.ok(max > 0.99 * bound, `${name}: max |w| ${max}`);
      }
    }
    for (const i of [0, 1]) {
      assert.ok(t.get(`layer${i}.bn.gamma`)!.data.every((v) => v === 1));
      assert.ok(t.get(`layer${i}.bn.beta`)!.data.every((v) => v === 0));
      assert.ok(t.get(`layer${i}.bn.runningMean`)!.data.every((v) => v === 0));
      assert.ok(t.get(`layer${i}.bn.runningVar`)!.data.every((v) => v === 1));
    }
    // Seeded: the same seed gives the same weights, another seed others; copyFrom copies all.
    const same = ScnymModel.create(rt, shape, 7);
    const other = ScnymModel.create(rt, shape, 8);
    assert.deepEqual(await same.download(), t);
    assert.notDeepEqual((await other.download()).get("head.W"), t.get("head.W"));
    other.copyFrom(model);
    assert.deepEqual(await other.download(), t);
    for (const m of [model, same, other]) m.destroy();
  },
);

Deno.test(
  "model construction refuses bad shapes and incomplete tensors, naming them",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const shape = {
      genes: 3,
      classes: 2,
      hidden: 2,
      layers: 1,
      dropout: 0,
      domains: 0,
      adversaryHidden: 1,
    };
    assert.throws(() => ScnymModel.create(rt, { ...shape, classes: 1 }, 0), isScnym(/1 class/));
    assert.throws(() => ScnymModel.create(rt, { ...shape, hidden: 0 }, 0), isScnym(/hidden is 0/));
    assert.throws(
      () => ScnymModel.create(rt, { ...shape, layers: 1.5 }, 0),
      isScnym(/layers is 1.5/),
    );
    const fresh = ScnymModel.create(rt, shape, 0);
    const full = await fresh.download();
    fresh.destroy();
    const tensors = new Map([...full].map(([k, v]) => [k, v.data]));
    const missing = new Map(tensors);
    missing.delete("head.b");
    assert.throws(
      () => ScnymModel.fromTensors(rt, shape, missing, "m.scnym"),
      isScnym(/m\.scnym: tensor head\.b is missing/),
    );
    const wrong = new Map(tensors);
    wrong.set("layer0.W", new Float32Array(5));
    assert.throws(
      () => ScnymModel.fromTensors(rt, shape, wrong, "m.scnym"),
      isScnym(/m\.scnym: tensor layer0\.W has 5 values, expected 3,2/),
    );
    const m = ScnymModel.fromTensors(rt, shape, tensors, "m.scnym");
    assert.deepEqual(await m.download(), full);
    m.destroy();
  },
);

Deno.test(
  "parameter gradients: the first contribution after zeroGrads overwrites, later ones add",
  gpuTest,
  async () => {
    // zeroGrads clears the buffers, then paramSlot lets the first kernel overwrite them (adding
    // to zeros would give the same values). Junk written after the clear, which no correct
    // program does, makes the difference visible: overwritten by the first backward, kept and
    // added to by a second one without zeroGrads.
    const rt = await testRuntime();
    const rng = new Rng(21);
    const W = new Param("W", rt.upload(randn(rng, 6 * 3), [6, 3]));
    const b = new Param("b", rt.upload(randn(rng, 3), [3]));
    const x = rt.upload(randn(rng, 4 * 6), [4, 6]);
    const seed = randn(rng, 4 * 3);
    const backward = () => {
      const tape = new Tape(rt);
      const y = linear(tape, new Var(x, false), W, b);
      y.grad = rt.upload(seed, [4, 3]);
      tape.backward();
    };
    zeroGrads(rt, [W, b]);
    rt.write(W.grad, new Float32Array(18).fill(1000));
    backward();
    const once = await W.grad.read();
    assert.ok(once.every((v) => Math.abs(v) < 100), `junk kept: ${once}`);
    backward();
    const twice = await W.grad.read();
    assertClose(twice, once.map((v) => 2 * v), { atol: 1e-6, rtol: 1e-6 }, "second adds");
    for (const t of [W.value, W.grad, b.value, b.grad, x]) t.release();
  },
);
