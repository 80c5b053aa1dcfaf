/**
 * The analytic cost model of bench/speed.ts: FLOP and compulsory bytes of one of our training
 * steps, per part, and the FLOP of the dense reference's first layer.
 */

/** FLOP and compulsory bytes of one part of a step. */
export interface Cost {
  part: string;
  flop: number;
  bytes: number;
}

/**
 * FLOP and compulsory bytes (each operand read once, each output written once; f32/u32 = 4 B)
 * of one MixMatch + adversary step as scnym/step.ts records it: one sparse first layer over the
 * pool [U ; X] and its weight gradient; dense layers of the teacher (eval, U), the mixed U and
 * mixed X passes and the adversary pass over the pool (training mode, with backward: dX and dW
 * each as many FLOP as the forward); elementwise chains counted coarsely; Adadelta and zeroing
 * the gradients on every parameter. The sparse rows' weights are counted once (all of W1), the
 * floor for a kernel that keeps reused rows in cache.
 */
export function stepCost(
  s: { G: number; H: number; L: number; C: number; D: number; A: number },
  nX: number,
  nU: number,
  nnzStep: number,
): { parts: Cost[]; denseFirstLayerFlop: number } {
  const { G, H, L, C, D, A } = s;
  const n = nX + nU;
  const parts: Cost[] = [];
  const add = (part: string, flop: number, bytes: number) => {
    const p = parts.find((q) => q.part === part);
    if (p) {
      p.flop += flop;
      p.bytes += bytes;
    } else parts.push({ part, flop, bytes });
  };
  const csr = nnzStep * 8 + (n + 1) * 4;
  add("sparse W1 forward (spmm)", 2 * nnzStep * H, csr + G * H * 4 + n * H * 4);
  // Weight gradient: the CSC view of the batch, dY, and W1.grad read + written (accumulate).
  add(
    "sparse W1 gradient (spmm_t)",
    2 * nnzStep * H,
    csr + nnzStep * 8 + (G + 1) * 4 + n * H * 4 + 2 * G * H * 4,
  );
  const mm = (m: number, k: number, nn: number, backward: boolean) => {
    add("dense forward", 2 * m * k * nn, 4 * (m * k + k * nn + m * nn));
    if (backward) {
      add("dense backward", 2 * m * k * nn, 4 * (m * k + m * nn + 2 * k * nn)); // dW (accumulate)
      add("dense backward", 2 * m * k * nn, 4 * (m * nn + k * nn + m * k)); // dX
    }
  };
  // Elementwise: BN (two passes over x), dropout+ReLU, their backward; per hidden activation.
  const ew = (rows: number, training: boolean) => {
    const e = rows * H;
    if (training) add("elementwise (BN, dropout-ReLU, fwd+bwd)", 24 * e, 4 * e * 12);
    else add("elementwise (BN, dropout-ReLU, fwd+bwd)", 4 * e, 4 * e * 4);
  };
  const trunk = (rows: number, training: boolean) => {
    for (let l = 0; l < L; l++) {
      if (l > 0) mm(rows, H, H, training);
      ew(rows, training);
    }
  };
  trunk(nU, false); // teacher
  mm(nU, H, C, false);
  for (const rows of [nU, nX]) {
    trunk(rows, true);
    mm(rows, H, C, true);
  }
  trunk(n, true); // adversary pass over the pool
  mm(n, H, A, true);
  mm(n, A, D, true);
  add("elementwise (BN, dropout-ReLU, fwd+bwd)", 6 * n * H, 4 * n * H * 8); // MixUp of h1 + adjoint
  const P = G * H + H + (L - 1) * (H * H + H) + 2 * L * H + H * C + C + H * A + A + A * D + D;
  // Adadelta: read p, g, two accumulators; write p and both accumulators. Plus zeroing g.
  add("Adadelta + zero grads", 12 * P, P * 4 * 8);
  // The dense reference's first layer: teacher U, mixed U, mixed X, adversary pool forward;
  // weight gradient of the three training passes (no input gradient).
  const denseFirstLayerFlop = 2 * (nU + nU + nX + n) * G * H + 2 * (nU + nX + n) * G * H;
  return { parts, denseFirstLayerFlop };
}
