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
 * floor for a kernel that keeps reused rows in cache. `input` is the first layer's layout
 * (scnym/step_input.ts): "dense" multiplies the densified pool, "sparse-bf16" reads W1 and dY as
 * bf16 (half the bytes; W1's copy written by Adadelta).
 */
export function stepCost(
  s: { G: number; H: number; L: number; C: number; D: number; A: number },
  nX: number,
  nU: number,
  nnzStep: number,
  input: "sparse" | "sparse-bf16" | "dense" = "sparse",
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
  if (input === "dense") {
    // Densify (write the pool), then two dense products over it.
    add(
      "dense W1 forward (densify + matmul)",
      2 * n * G * H,
      csr + 4 * (2 * n * G + G * H + n * H),
    );
    add("dense W1 gradient (matmul X^T dY)", 2 * n * G * H, 4 * (n * G + n * H + 2 * G * H));
  } else {
    const w = input === "sparse-bf16" ? 2 : 4;
    add("sparse W1 forward (spmm)", 2 * nnzStep * H, csr + G * H * w + n * H * 4);
    // Weight gradient: the CSC view of the batch, dY, and W1.grad read + written (accumulate).
    add(
      "sparse W1 gradient (spmm_t)",
      2 * nnzStep * H,
      csr + nnzStep * 8 + (G + 1) * 4 + n * H * w + 2 * G * H * 4,
    );
  }
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
  // Adadelta: read p, g, two accumulators; write p and both accumulators. Plus zeroing g (and
  // W1's bf16 copy).
  add("Adadelta + zero grads", 12 * P, P * 4 * 8 + (input === "sparse-bf16" ? G * H * 2 : 0));
  // The dense reference's first layer: teacher U, mixed U, mixed X, adversary pool forward;
  // weight gradient of the three training passes (no input gradient).
  const denseFirstLayerFlop = 2 * (nU + nU + nX + n) * G * H + 2 * (nU + nX + n) * G * H;
  return { parts, denseFirstLayerFlop };
}
