import assert from "node:assert/strict";
import { cscView, type Csr, csrToDense, emptyCsr } from "../data/csr.ts";
import { matmul } from "../kernels/matmul.ts";
import { packBf16, roundBf16 } from "../kernels/bf16.ts";
import { densify, hasSortedRows, releaseCsr, uploadCsr } from "../kernels/sparse.ts";
import { spmm, spmmRef, spmmTransposed, spmmTransposedRef } from "../kernels/spmm.ts";
import { ScnymError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { assertClose, gpuTest, randn, testRuntime } from "./helpers.ts";

/** f32 unit roundoff. */
const U = 2 ** -24;

/**
 * Random CSR matrix: each entry present with probability `density` (sorted columns, values in
 * (0, 3) like log1p-CPM), and every `emptyEvery`-th row forced empty.
 */
function randomCsr(rng: Rng, nRows: number, nCols: number, density: number, emptyEvery = 0): Csr {
  const indptr = new Uint32Array(nRows + 1);
  const indices: number[] = [];
  const data: number[] = [];
  for (let r = 0; r < nRows; r++) {
    if (!(emptyEvery && r % emptyEvery === emptyEvery - 1)) {
      for (let c = 0; c < nCols; c++) {
        if (rng.uniform() < density) {
          indices.push(c);
          data.push(3 * rng.uniform() + 1e-3);
        }
      }
    }
    indptr[r + 1] = indices.length;
  }
  return {
    nRows,
    nCols,
    indptr,
    indices: Uint32Array.from(indices),
    data: Float32Array.from(data),
  };
}

/** Longest row and longest column: the most terms any output element sums. */
function longest(m: Csr): number {
  let len = 0;
  for (let r = 0; r < m.nRows; r++) len = Math.max(len, m.indptr[r + 1] - m.indptr[r]);
  const { colptr } = cscView(m);
  for (let c = 0; c < m.nCols; c++) len = Math.max(len, colptr[c + 1] - colptr[c]);
  return len;
}

/**
 * Each output is an f32 running sum of at most L terms of size <= 3 * |normal|; as for the dense
 * matmul (see tests/matmul_test.ts) its rounding error grows like u * L * term size, so
 * 8 * 3 * u * L is far above it and far below one missing or wrong term.
 */
function sumTolerance(L: number) {
  return { atol: 24 * U * Math.max(L, 1) + 1e-7, rtol: 4 * U };
}

// (rows, genes, N, density, every k-th row empty)
const CASES: [number, number, number, number, number][] = [
  [1, 50, 256, 0.3, 0],
  [1, 20_000, 256, 0.05, 0],
  [17, 300, 7, 0.3, 4],
  [64, 2000, 256, 0.05, 3],
  [40, 1000, 130, 0.01, 0],
  [33, 500, 64, 0, 0],
  [70, 700, 64, 0.2, 5],
  [256, 20_000, 256, 0.05, 7],
  [9, 13, 1, 0.5, 2],
  // Five gene blocks of exactly 1,024 genes each (N = 256, f32 W: 1 MB per block).
  [5, 5120, 256, 0.1, 2],
  // Six blocks of 3,744 genes, the last one short, on the scalar (N % 4 != 0) path.
  [7, 20_000, 70, 0.05, 3],
];

Deno.test("uploadCsr round-trips the CSR arrays and the CSC view", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(1);
  for (const m of [randomCsr(rng, 37, 211, 0.1, 5), emptyCsr(3, 4), randomCsr(rng, 1, 9, 1)]) {
    const x = uploadCsr(rt, m, { withCsc: true });
    const n = m.indptr[m.nRows];
    assert.equal(x.nnz, n);
    assert.deepEqual([x.nRows, x.nCols], [m.nRows, m.nCols]);
    assert.equal(x.sortedRows, true);
    assert.deepEqual(await x.indptr.read(), m.indptr);
    assert.deepEqual(await x.indices.read(), m.indices.subarray(0, n));
    assert.deepEqual(await x.data.read(), m.data.subarray(0, n));
    const v = cscView(m);
    assert.deepEqual(await x.csc!.colptr.read(), v.colptr);
    assert.deepEqual(await x.csc!.rowOf.read(), v.rowOf);
    assert.deepEqual(await x.csc!.posOf.read(), v.posOf);
    releaseCsr(x);
    assert.ok(x.data.released && x.csc!.posOf.released);
  }
  const plain = uploadCsr(rt, randomCsr(rng, 4, 4, 0.5));
  assert.equal(plain.csc, undefined);
  releaseCsr(plain);
});

Deno.test("spmm and spmmTransposed match the float64 references", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(2);
  for (const [rows, genes, N, density, emptyEvery] of CASES) {
    const m = randomCsr(rng, rows, genes, density, emptyEvery);
    const w = randn(rng, genes * N);
    const bias = randn(rng, N);
    const dy = randn(rng, rows * N);
    const junk = randn(rng, genes * N);
    const label = `${rows}x${genes} density ${density} N=${N}`;
    const tol = sumTolerance(longest(m));
    const x = uploadCsr(rt, m, { withCsc: true });
    const [y, yb, dw, dwAcc] = rt.scope(() => {
      const W = rt.upload(w, [genes, N]);
      const DY = rt.upload(dy, [rows, N]);
      // Pre-filled outputs: spmmTransposed must overwrite genes without entries with 0.
      const out = rt.upload(junk, [genes, N]);
      const acc = rt.upload(junk, [genes, N]);
      return [
        spmm(rt, x, W),
        spmm(rt, x, W, { bias: rt.upload(bias) }),
        spmmTransposed(rt, x, DY, { out }),
        spmmTransposed(rt, x, DY, { out: acc, accumulate: true }),
      ];
    });
    assertClose(await y.read(), spmmRef(m, w, N), tol, `spmm ${label}`);
    assertClose(await yb.read(), spmmRef(m, w, N, bias), tol, `spmm+bias ${label}`);
    assertClose(await dw.read(), spmmTransposedRef(m, dy, N), tol, `spmmT ${label}`);
    assertClose(
      await dwAcc.read(),
      spmmTransposedRef(m, dy, N, junk),
      tol,
      `spmmT accumulate ${label}`,
    );
    for (const t of [y, yb, dw, dwAcc]) t.release();
    releaseCsr(x);
  }
});

Deno.test("packBf16 rounds as roundBf16 does, bit for bit", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(12);
  // Values over many decades, exact ties (round to even, both ways), f32's extremes.
  const special = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3e38, 1e-38, 1e-44];
  const values = Float32Array.from(
    { length: 40 * 16 },
    (_, i) => i < special.length ? special[i] : randn(rng, 1)[0] * 10 ** (rng.uniform() * 12 - 9),
  );
  const src = rt.upload(values, [40, 16]);
  const h = packBf16(rt, src);
  const words = await h.packed.read() as Uint32Array;
  const got = new Float32Array(
    Uint32Array.from(
      { length: 2 * words.length },
      (_, i) => i % 2 === 0 ? words[i >> 1] << 16 : words[i >> 1] & 0xffff0000,
    ).buffer,
  );
  assert.deepEqual(got, Float32Array.from(values, roundBf16));
  // Ties go to even: 1 + 2^-8 rounds down to 1, 1 + 3 * 2^-8 up to 1 + 2^-6.
  assert.equal(roundBf16(1 + 2 ** -8), 1);
  assert.equal(roundBf16(1 + 3 * 2 ** -8), 1 + 2 ** -6);
  src.release();
  h.packed.release();
});

Deno.test("spmm and spmmTransposed read bf16 operands as the references do", gpuTest, async () => {
  // With the operand rounded on the host exactly as the kernel rounds it, only the f32 sums
  // differ from the float64 references: the same tolerance as with f32 operands. (Unrounded, the
  // operands would differ by up to 2^-9 relative, far outside it.)
  const rt = await testRuntime();
  const rng = new Rng(13);
  for (const [rows, genes, N, density, emptyEvery] of CASES.filter(([, , n]) => n % 8 === 0)) {
    const m = randomCsr(rng, rows, genes, density, emptyEvery);
    const w = randn(rng, genes * N);
    const bias = randn(rng, N);
    // Gradient-sized values: bf16 keeps f32's exponent, so nothing underflows.
    const dy = randn(rng, rows * N).map((v) => v * 1e-7);
    const label = `${rows}x${genes} density ${density} N=${N}`;
    const tol = sumTolerance(longest(m));
    const x = uploadCsr(rt, m, { withCsc: true });
    const [y, dw] = rt.scope(() => {
      const W = packBf16(rt, rt.upload(w, [genes, N]));
      const DY = packBf16(rt, rt.upload(dy, [rows, N]));
      return [spmm(rt, x, W, { bias: rt.upload(bias) }), spmmTransposed(rt, x, DY)];
    });
    assertClose(await y.read(), spmmRef(m, w.map(roundBf16), N, bias), tol, `spmm ${label}`);
    const dwTol = { atol: tol.atol * 1e-7, rtol: tol.rtol };
    const dwRef = spmmTransposedRef(m, dy.map(roundBf16), N);
    assertClose(await dw.read(), dwRef, dwTol, `spmmT ${label}`);
    for (const t of [y, dw]) t.release();
    releaseCsr(x);
  }
});

Deno.test("spmm and spmmTransposed match the dense matmul path", gpuTest, async () => {
  // Same products through the tiled dense kernel on the densified X: both are f32 sums of the
  // same non-zero terms in different orders (the dense kernel's zero terms add exact zeros), so
  // each is within sumTolerance of the exact value and they differ by at most twice that.
  const rt = await testRuntime();
  const rng = new Rng(6);
  for (const [rows, genes, N, density, emptyEvery] of CASES) {
    const m = randomCsr(rng, rows, genes, density, emptyEvery);
    const w = randn(rng, genes * N);
    const dy = randn(rng, rows * N);
    const label = `${rows}x${genes} density ${density} N=${N}`;
    const t = sumTolerance(longest(m));
    const tol = { atol: 2 * t.atol, rtol: 2 * t.rtol };
    const x = uploadCsr(rt, m, { withCsc: true });
    const outs = rt.scope(() => {
      const X = densify(rt, x);
      const W = rt.upload(w, [genes, N]);
      const DY = rt.upload(dy, [rows, N]);
      return [
        spmm(rt, x, W),
        matmul(rt, X, W),
        spmmTransposed(rt, x, DY),
        matmul(rt, X, DY, { transA: true }),
      ];
    });
    const [y, yDense, dw, dwDense] = await rt.readAll(outs);
    assertClose(y, yDense, tol, `spmm vs dense ${label}`);
    assertClose(dw, dwDense, tol, `spmmT vs dense ${label}`);
    for (const o of outs) o.release();
    releaseCsr(x);
  }
});

Deno.test("densify writes the CSR matrix densely, repeated columns added", gpuTest, async () => {
  // Exact: each dense element is 0, one stored value, or (repeated column) a sum the kernel adds
  // in the same order as csrToDense, so the comparison is bitwise.
  const rt = await testRuntime();
  const rng = new Rng(11);
  const cases = CASES.map(([rows, genes, , density, emptyEvery]) =>
    randomCsr(rng, rows, genes, density, emptyEvery)
  );
  // Unsorted, with a repeated column in row 0 and an empty last row.
  cases.push({
    nRows: 3,
    nCols: 5,
    indptr: Uint32Array.from([0, 3, 5, 5]),
    indices: Uint32Array.from([4, 1, 4, 0, 2]),
    data: Float32Array.from([0.5, 2, 0.25, 1, 3]),
  });
  for (const m of cases) {
    const x = uploadCsr(rt, m);
    const dense = densify(rt, x);
    const got = await rt.read(dense);
    assert.deepEqual(got, csrToDense(m), `densify ${m.nRows}x${m.nCols}`);
    dense.release();
    releaseCsr(x);
  }
});

Deno.test("spmm walks gene blocks only over rows with ascending columns", gpuTest, async () => {
  // 20,000 genes x 64 (5 MB of W): a sorted upload is walked in 5 gene blocks (one dispatch
  // each), found by binary search; shuffled columns within each row must take one pass, and
  // so must a W of at most 4 MB (it stays cached). Tolerance as in the reference test.
  const rt = await testRuntime();
  const rng = new Rng(9);
  const m = randomCsr(rng, 37, 20_000, 0.05, 5);
  const shuffled = { ...m, indices: m.indices.slice(), data: m.data.slice() };
  for (let r = 0; r < m.nRows; r++) {
    const lo = m.indptr[r];
    const order = rng.shuffle([...Array(m.indptr[r + 1] - lo).keys()]);
    order.forEach((k, i) => {
      shuffled.indices[lo + i] = m.indices[lo + k];
      shuffled.data[lo + i] = m.data[lo + k];
    });
  }
  assert.equal(hasSortedRows(m), true);
  assert.equal(hasSortedRows(shuffled), false);
  const repeated = Uint32Array.from([3, 3]);
  const dup = { nRows: 1, nCols: 5, indptr: Uint32Array.from([0, 2]), indices: repeated };
  assert.equal(hasSortedRows({ ...dup, data: Float32Array.from([1, 1]) }), false);
  const N = 64;
  const w = randn(rng, 20_000 * N);
  const bias = randn(rng, N);
  const expected = spmmRef(m, w, N, bias);
  const tol = sumTolerance(longest(m));
  for (const [name, csr] of [["sorted", m], ["shuffled", shuffled]] as const) {
    const x = uploadCsr(rt, csr);
    assert.equal(x.sortedRows, name === "sorted");
    const before = rt.stats.dispatches;
    const y = rt.scope(() => spmm(rt, x, rt.upload(w, [20_000, N]), { bias: rt.upload(bias) }));
    const dispatches = rt.stats.dispatches - before;
    assert.equal(dispatches, name === "sorted" ? Math.ceil(20_000 / 4096) : 1, name);
    assertClose(await y.read(), expected, tol, `spmm ${name}`);
    y.release();
    releaseCsr(x);
  }
  const x = uploadCsr(rt, m);
  const N48 = 48;
  const w48 = w.subarray(0, 20_000 * N48);
  const before = rt.stats.dispatches;
  const y = rt.scope(() => spmm(rt, x, rt.upload(w48, [20_000, N48])));
  assert.equal(rt.stats.dispatches - before, 1, "3.8 MB of W: one pass");
  assertClose(await y.read(), spmmRef(m, w48, N48), tol, "spmm small W");
  y.release();
  releaseCsr(x);
});

Deno.test("spmm handles a 65,536-row chunk (atlas-scale streaming)", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(3);
  const m = randomCsr(rng, 65_536, 40, 0.05, 11);
  const N = 8;
  const w = randn(rng, 40 * N);
  const x = uploadCsr(rt, m);
  const y = rt.scope(() => spmm(rt, x, rt.upload(w, [40, N])));
  assertClose(await y.read(), spmmRef(m, w, N), sumTolerance(40), "spmm 65536 rows");
  y.release();
  releaseCsr(x);
});

Deno.test("spmmTransposed sees values changed in place on the GPU", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(4);
  const m = randomCsr(rng, 20, 30, 0.2);
  const N = 12;
  const dy = randn(rng, 20 * N);
  const x = uploadCsr(rt, m, { withCsc: true });
  // Augmentation rewrites `data` on the GPU; the CSC view holds positions, not copies.
  const changed = m.data.map((v, i) => (i % 3 === 0 ? 0 : 2 * v));
  rt.write(x.data, changed);
  const dw = rt.scope(() => spmmTransposed(rt, x, rt.upload(dy, [20, N])));
  const expected = spmmTransposedRef({ ...m, data: changed }, dy, N);
  assertClose(await dw.read(), expected, sumTolerance(20), "spmmT after in-place change");
  dw.release();
  releaseCsr(x);
});

Deno.test("sparse ops reject malformed input with ScnymError", gpuTest, async () => {
  const rt = await testRuntime();
  const rng = new Rng(5);
  const isError = (...parts: string[]) => (e: unknown) =>
    e instanceof ScnymError && parts.every((p) => e.message.includes(p));
  const good = randomCsr(rng, 5, 6, 0.5);
  assert.throws(
    () => uploadCsr(rt, { ...good, indices: good.indices.map(() => 6) }),
    isError("uploadCsr", "indices[0]", "nCols"),
  );
  const badPtr = Uint32Array.from([0, 2, 1, 3, 3, 3]);
  assert.throws(() => uploadCsr(rt, { ...good, indptr: badPtr }), isError("uploadCsr", "row 1"));
  assert.throws(
    () => uploadCsr(rt, { ...good, indptr: good.indptr.subarray(0, 3) }),
    isError("uploadCsr", "indptr", "nRows + 1"),
  );
  const x = uploadCsr(rt, good);
  rt.scope(() => {
    assert.throws(() => spmm(rt, x, rt.tensor([7, 4])), isError("spmm", "f32[6xN]", "f32[7x4]"));
    assert.throws(
      () => spmm(rt, x, rt.tensor([6, 4]), { bias: rt.tensor([3]) }),
      isError("spmm", "bias", "4 values"),
    );
    assert.throws(() => spmmTransposed(rt, x, rt.tensor([5, 4])), isError("CSC view"));
  });
  releaseCsr(x);
  const square = uploadCsr(rt, randomCsr(rng, 4, 4, 0.5));
  rt.scope(() => {
    const w = rt.tensor([4, 4]);
    assert.throws(() => spmm(rt, square, w, { out: w }), isError("spmm", "is also an input"));
  });
  releaseCsr(square);
  const xc = uploadCsr(rt, good, { withCsc: true });
  rt.scope(() => {
    assert.throws(
      () => spmmTransposed(rt, xc, rt.tensor([4, 4])),
      isError("spmmTransposed", "f32[5xN]"),
    );
    assert.throws(
      () => spmmTransposed(rt, xc, rt.tensor([5, 4]), { out: rt.tensor([5, 4]) }),
      isError("spmmTransposed", "f32[6x4]"),
    );
  });
  releaseCsr(xc);
  // More rows than one dispatch can cover: the error says to split the call into chunks.
  const tooMany = uploadCsr(rt, emptyCsr(rt.limits.maxComputeWorkgroupsPerDimension * 8 + 1, 3));
  rt.scope(() => {
    assert.throws(() => spmm(rt, tooMany, rt.tensor([3, 4])), isError("spmm", "chunks"));
  });
  releaseCsr(tooMany);
});
