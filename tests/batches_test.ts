/**
 * Host-side batching: stratified labelled splits, the labelled epoch (drop-last, small sets,
 * class balancing), the endless target stream, and the persistent GPU upload area.
 */
import assert from "node:assert/strict";
import { cscView, type Csr, csrFromDense } from "../data/csr.ts";
import { CsrUploadArea } from "../nn/gpu_csr.ts";
import { labelledEpoch, splitLabelled, TargetStream } from "../scnym/batches.ts";
import { Rng } from "../util/rng.ts";
import { gpuTest, randu, testRuntime } from "./helpers.ts";

/** Class codes: `counts[c]` cells of class c, interleaved so classes are not contiguous. */
function classCodes(counts: number[], rng: Rng): number[] {
  const codes = counts.flatMap((n, c) => Array(n).fill(c));
  return rng.shuffle(codes);
}

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

Deno.test("splitLabelled: stratified 81/9/10 split covering every cell once", () => {
  const rng = new Rng(1);
  const counts = [1000, 200, 50, 5, 2, 1];
  const codes = classCodes(counts, rng);
  const s = splitLabelled(codes, 0.1, 0.1, rng);
  // A partition of all labelled cells.
  assert.deepEqual(
    sorted([...s.train, ...s.earlyStopping, ...s.validation]),
    [...codes.keys()],
  );
  // Per class: round(10%) held out for validation, round(10%) of the rest for early stopping,
  // always leaving at least one cell in training.
  const perClass = (idx: number[], c: number) => idx.filter((i) => codes[i] === c).length;
  const expected: Record<number, [number, number, number]> = {
    0: [810, 90, 100], // 1000 cells: exactly 81 / 9 / 10
    1: [162, 18, 20],
    2: [40, 5, 5], // 50: 5 validation, round(4.5) = 5 early stopping
    3: [4, 0, 1], // 5: round(0.5) = 1 validation, then round(0.4) = 0 early stopping
    4: [2, 0, 0], // 2: round(0.2) = 0 each
    5: [1, 0, 0], // 1 cell: stays in training
  };
  counts.forEach((_, c) => {
    assert.deepEqual(
      [perClass(s.train, c), perClass(s.earlyStopping, c), perClass(s.validation, c)],
      expected[c],
      `class ${c}`,
    );
  });
  // Seeded: the same seed gives the same split, another seed another one.
  const again = splitLabelled(codes, 0.1, 0.1, new Rng(7));
  assert.deepEqual(splitLabelled(codes, 0.1, 0.1, new Rng(7)), again);
  assert.notDeepEqual(splitLabelled(codes, 0.1, 0.1, new Rng(8)).validation, again.validation);
});

Deno.test("splitLabelled: a class with one or two cells keeps one in training at any fraction", () => {
  const codes = [0, 0, 0, 0, 1, 2, 2];
  const s = splitLabelled(codes, 0.6, 0.6, new Rng(2));
  for (const c of [0, 1, 2]) {
    assert.ok(s.train.some((i) => codes[i] === c), `class ${c} has a training cell`);
  }
  assert.deepEqual(s.train.filter((i) => codes[i] === 1), [4]);
  assert.deepEqual(sorted([...s.train, ...s.earlyStopping, ...s.validation]), [...codes.keys()]);
  // No held-out fractions: everything trains.
  const all = splitLabelled(codes, 0, 0, new Rng(3));
  assert.deepEqual(sorted(all.train), [...codes.keys()]);
  assert.equal(all.validation.length + all.earlyStopping.length, 0);
});

Deno.test("labelledEpoch drops the last partial batch and shuffles without repeats", () => {
  const cells = Array.from({ length: 100 }, (_, i) => 1000 + i);
  const rng = new Rng(4);
  const batches = labelledEpoch(cells, 32, rng);
  assert.deepEqual(batches.map((b) => b.length), [32, 32, 32]);
  const seen = batches.flat();
  assert.equal(new Set(seen).size, 96, "no cell twice in an epoch");
  assert.ok(seen.every((c) => c >= 1000 && c < 1100));
  assert.notDeepEqual(seen, cells.slice(0, 96), "the order is shuffled");
  // The next epoch draws another order (and so drops other cells).
  assert.notDeepEqual(labelledEpoch(cells, 32, rng).flat(), seen);
  // An exact multiple keeps every cell.
  assert.deepEqual(sorted(labelledEpoch(cells.slice(0, 64), 32, rng).flat()), cells.slice(0, 64));
  // The caller's array is left alone.
  assert.deepEqual(cells, Array.from({ length: 100 }, (_, i) => 1000 + i));
});

Deno.test("labelledEpoch: fewer cells than a batch give one batch of all of them", () => {
  const rng = new Rng(5);
  const cells = [3, 1, 4, 15, 9, 2, 6];
  for (const batch of [7, 8, 256]) {
    const b = labelledEpoch(cells, batch, rng);
    assert.equal(b.length, 1);
    assert.deepEqual(sorted(b[0]), sorted(cells));
  }
});

Deno.test("labelledEpoch with class balancing draws classes about equally", () => {
  const rng = new Rng(6);
  // 900 cells of class 0, 100 of class 1 (indices into classOf), 60 of class 2.
  const classOf = new Int32Array(1060);
  for (let i = 900; i < 1000; i++) classOf[i] = 1;
  for (let i = 1000; i < 1060; i++) classOf[i] = 2;
  const cells = [...classOf.keys()];
  const batches = labelledEpoch(cells, 50, rng, { classOf });
  // n draws with replacement, cut into full batches: 1060 -> 21 batches of 50.
  assert.equal(batches.length, 21);
  assert.ok(batches.every((b) => b.length === 50));
  const drawn = batches.flat();
  const count = [0, 1, 2].map((c) => drawn.filter((i) => classOf[i] === c).length);
  // Each class has probability 1/3 per draw: count ~ Binomial(1050, 1/3), sd 15.3. Five sd
  // (77) bounds a chance failure below 1e-6; unbalanced sampling would give 891/99/60.
  for (const k of count) assert.ok(Math.abs(k - 350) < 77, `class counts ${count}`);
  // Draws are with replacement: the rare class repeats cells.
  assert.ok(new Set(drawn.filter((i) => classOf[i] === 2)).size < count[2]);
});

Deno.test("TargetStream wraps around and continues across calls", () => {
  const cells = [10, 11, 12, 13, 14, 15, 16];
  const s = new TargetStream(cells, new Rng(7));
  // 3 + 3 + 4 + 11 = 21 = three full passes: each consecutive 7 is a permutation of the cells.
  const out = [...s.next(3), ...s.next(3), ...s.next(4), ...s.next(11)];
  assert.equal(out.length, 21);
  for (let pass = 0; pass < 3; pass++) {
    assert.deepEqual(sorted(out.slice(7 * pass, 7 * pass + 7)), cells, `pass ${pass}`);
  }
  // Passes are reshuffled.
  assert.ok(
    out.slice(0, 7).join() !== out.slice(7, 14).join() ||
      out.slice(7, 14).join() !== out.slice(14, 21).join(),
  );
  // A target smaller than a batch: one call wraps as often as needed.
  const small = new TargetStream([1, 2], new Rng(8));
  const many = small.next(64);
  assert.equal(many.length, 64);
  assert.equal(many.filter((c) => c === 1).length, 32);
  assert.throws(() => new TargetStream([], new Rng(9)), /no target cells/);
});

/** A random CSR matrix with `rows` rows, `cols` columns and about `density` stored values. */
function randomCsr(rng: Rng, rows: number, cols: number, density: number): Csr {
  const dense = randu(rng, rows * cols).map((v) => (rng.uniform() < density ? v + 0.1 : 0));
  return csrFromDense(dense, rows, cols);
}

async function assertUploaded(x: ReturnType<CsrUploadArea["upload"]>, m: Csr, withCsc: boolean) {
  const n = m.indptr[m.nRows];
  assert.equal(x.nRows, m.nRows);
  assert.equal(x.nCols, m.nCols);
  assert.equal(x.nnz, n);
  assert.deepEqual((await x.indptr.read()).subarray(0, m.nRows + 1), m.indptr);
  assert.deepEqual((await x.indices.read()).subarray(0, n), m.indices.subarray(0, n));
  assert.deepEqual((await x.data.read()).subarray(0, n), m.data.subarray(0, n));
  if (withCsc) {
    const v = cscView(m);
    assert.deepEqual((await x.csc!.colptr.read()).subarray(0, m.nCols + 1), v.colptr);
    assert.deepEqual((await x.csc!.rowOf.read()).subarray(0, n), v.rowOf);
    assert.deepEqual((await x.csc!.posOf.read()).subarray(0, n), v.posOf);
  } else {
    assert.equal(x.csc, undefined);
  }
}

Deno.test(
  "CsrUploadArea reuses its buffers and grows when a batch needs more room",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const rng = new Rng(10);
    for (const withCsc of [false, true]) {
      const area = new CsrUploadArea(rt, withCsc);
      const first = randomCsr(rng, 40, 25, 0.3);
      const x1 = area.upload(first);
      await assertUploaded(x1, first, withCsc);
      // Same or smaller batches (one row, an empty one) reuse the same buffers: nothing created.
      const created = rt.stats.buffersCreated;
      for (
        const m of [
          randomCsr(rng, 40, 25, 0.3),
          randomCsr(rng, 1, 25, 0.5),
          randomCsr(rng, 3, 25, 0),
        ]
      ) {
        const x = area.upload(m);
        assert.strictEqual(x.indptr, x1.indptr);
        assert.strictEqual(x.data, x1.data);
        if (withCsc) assert.strictEqual(x.csc!.posOf, x1.csc!.posOf);
        await assertUploaded(x, m, withCsc);
      }
      assert.equal(rt.stats.buffersCreated, created, "steady-state uploads allocate nothing");
      // A larger batch needs more room: new, larger tensors holding the new batch.
      const big = randomCsr(rng, 200, 25, 0.5);
      const x2 = area.upload(big);
      assert.notStrictEqual(x2.data, x1.data);
      assert.ok(x2.data.size >= big.indptr[200] && x2.indptr.size >= 201);
      await assertUploaded(x2, big, withCsc);
      // ... which then serve the smaller ones again.
      const x3 = area.upload(first);
      assert.strictEqual(x3.data, x2.data);
      await assertUploaded(x3, first, withCsc);
      area.release();
    }
  },
);

Deno.test("CsrUploadArea validates a batch like uploadCsr", gpuTest, async () => {
  const rt = await testRuntime();
  const area = new CsrUploadArea(rt, true);
  const m = randomCsr(new Rng(11), 5, 4, 0.5);
  assert.throws(
    () => area.upload({ ...m, indices: m.indices.map(() => 4) }),
    (e) => e instanceof Error && /uploadCsr: .*indices\[0\] = 4 is not below nCols/.test(e.message),
  );
  const decreasing = Uint32Array.from(m.indptr);
  decreasing[2] = decreasing[1] + 100;
  assert.throws(() => area.upload({ ...m, indptr: decreasing }), /uploadCsr: .*indptr decreases/);
  await assertUploaded(area.upload(m), m, true);
  area.release();
});
