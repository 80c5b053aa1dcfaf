/**
 * Losses as tape ops (nn/losses.ts): each returns the value of its float64 reference and, through
 * the tape, the gradient of central finite differences of that reference; several losses on one
 * tape add their gradients; a disabled tape records nothing but still feeds the metrics.
 *
 * Tolerances: the GPU runs in f32 on values of order 1, so values agree to rtol 1e-5 (+ atol
 * 1e-6); gradients are compared with f64 finite differences (h = 1e-3, error ~h^2 * |f'''|) at
 * atol 2e-5 + rtol 1e-3.
 */
import assert from "node:assert/strict";
import { softCrossEntropyRef, softmaxSquaredErrorRef } from "../kernels/softmax.ts";
import {
  adversaryLoss,
  consistencyLoss,
  labelCrossEntropy,
  type LossOptions,
  softCrossEntropy,
} from "../nn/losses.ts";
import { Metrics } from "../nn/metrics.ts";
import { linear } from "../nn/ops.ts";
import { Param, Tape, Var } from "../nn/tape.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, finiteDiff, gpuTest, randn, randu, testRuntime } from "./helpers.ts";

const B = 7;
const F = 5;
const C = 3;
const VALUE_TOL = { rtol: 1e-5, atol: 1e-6 };
const GRAD_TOL = { rtol: 1e-3, atol: 2e-5 };

type Ref = (
  z: ArrayLike<number>,
  t: ArrayLike<number>,
  rows: number,
  cols: number,
  o: { rowWeight?: ArrayLike<number>; scale?: number },
) => { loss: number };

/** A loss under test: the tape op and its reference on host logits, with dense targets. */
interface Case {
  name: string;
  op: (t: Tape, z: Var, opts: LossOptions) => Tensor;
  ref: Ref;
  targets: Float32Array;
  weighted: boolean;
}

/** z = x W + b in float64 (the logits the GPU linear layer computes). */
function logitsRef(x: ArrayLike<number>, W: ArrayLike<number>, b: ArrayLike<number>) {
  const z = new Float64Array(B * C);
  for (let r = 0; r < B; r++) {
    for (let c = 0; c < C; c++) {
      let s = b[c];
      for (let k = 0; k < F; k++) s += x[r * F + k] * W[k * C + c];
      z[r * C + c] = s;
    }
  }
  return z;
}

/** The four losses on shared targets; `release` frees the targets. */
function cases(rt: Runtime, rng: Rng): { list: Case[]; release(): void } {
  const soft = randu(rng, B * C, 0.05, 1);
  const codes = Uint32Array.from({ length: B }, (_, i) => (i * 2) % C);
  const oneHot = new Float32Array(B * C);
  codes.forEach((c, r) => oneHot[r * C + c] = 1);
  const labels = rt.upload(codes, [B], "u32");
  const softT = rt.upload(soft, [B, C]);
  // name, op, reference, host targets, whether row weights and a scale are applied.
  const list: Case[] = ([
    ["softCrossEntropy", (t, z, o) => softCrossEntropy(t, z, softT, o), softCrossEntropyRef, soft],
    [
      "consistencyLoss",
      (t, z, o) => consistencyLoss(t, z, softT, o),
      softmaxSquaredErrorRef,
      soft,
      1,
    ],
    [
      "labelCrossEntropy",
      (t, z, o) => labelCrossEntropy(t, z, labels, o),
      softCrossEntropyRef,
      oneHot,
    ],
    ["adversaryLoss", (t, z, o) => adversaryLoss(t, z, labels, o), softCrossEntropyRef, oneHot, 1],
  ] as [string, Case["op"], Ref, Float32Array, number?][]).map(([name, op, ref, targets, w]) => ({
    name,
    op,
    ref,
    targets,
    weighted: w === 1,
  }));
  return { list, release: () => [labels, softT].forEach((t) => t.release()) };
}

Deno.test(
  "each loss op matches its float64 reference in value and, through the tape, in gradient",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(21);
    const x = randn(rng, B * F);
    const W0 = randn(rng, F * C, 0.8);
    const b0 = randn(rng, C, 0.3);
    // Ragged 0/1/fractional row weights and a scale, as the step uses them.
    const weights = Float32Array.from({ length: B }, (_, i) => [1, 0, 0.5][i % 3]);
    const all = cases(rt, rng);
    for (const c of all.list) {
      const metrics = new Metrics(rt, ["loss"]);
      const xT = rt.upload(x, [B, F]);
      const wT = c.weighted ? rt.upload(weights, [B]) : undefined;
      const W = new Param("W", rt.upload(W0, [F, C]));
      const b = new Param("b", rt.upload(b0, [C]));
      rt.fill(W.grad, 0);
      rt.fill(b.grad, 0);
      const scale = c.weighted ? 0.7 : 1;
      const opts = { rowWeight: wT, scale, metric: metrics.slot("loss") };
      const refOf = (Wv: ArrayLike<number>) =>
        c.ref(logitsRef(x, Wv, b0), c.targets, B, C, {
          rowWeight: c.weighted ? weights : undefined,
          scale,
        }).loss;

      const tape = new Tape(rt);
      const z = linear(tape, new Var(xT, false), W, b);
      const loss = c.op(tape, z, opts);
      tape.backward();
      const expected = refOf(W0);
      assertClose(await loss.read(), [expected], VALUE_TOL, `${c.name} value`);
      assertClose([(await metrics.read()).loss], [expected], VALUE_TOL, `${c.name} metric`);
      const fd = finiteDiff(refOf, W0);
      assertClose(await W.grad.read(), fd, GRAD_TOL, `${c.name} dW`);

      for (const t of [xT, wT, W.value, W.grad, b.value, b.grad, loss, z.value, z.grad]) {
        t?.release();
      }
      metrics.release();
    }
    all.release();
  },
);

Deno.test(
  "losses on the same logits add their gradients; a disabled tape records nothing",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(22);
    const all = cases(rt, rng);
    const [soft, , label] = all.list;
    const z0 = randn(rng, B * C, 1.5);
    const z = new Var(rt.upload(z0, [B, C]), true);
    const tape = new Tape(rt);
    const losses = [soft.op(tape, z, {}), label.op(tape, z, { scale: 2 })];
    assert.equal(tape.length, 2);
    tape.backward();
    const sum = (zv: ArrayLike<number>) =>
      softCrossEntropyRef(zv, soft.targets, B, C, {}).loss +
      softCrossEntropyRef(zv, label.targets, B, C, { scale: 2 }).loss;
    assertClose(await z.grad!.read(), finiteDiff(sum, z0), GRAD_TOL, "dz of the sum");

    const off = new Tape(rt, false);
    const metrics = new Metrics(rt, ["a", "b"]);
    const zOff = new Var(z.value, false);
    losses.push(soft.op(off, zOff, { metric: metrics.slot("b") }));
    assert.equal(off.length, 0);
    assert.equal(zOff.grad, null);
    const m = await metrics.read();
    assert.equal(m.a, 0);
    assertClose([m.b], [softCrossEntropyRef(z0, soft.targets, B, C).loss], VALUE_TOL, "metric");
    for (const t of [...losses, z.value, z.grad!, metrics.tensor]) t.release();
    all.release();
  },
);
