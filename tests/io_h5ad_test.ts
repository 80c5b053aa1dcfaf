import assert from "node:assert/strict";
import { csrToDense, nnz } from "../data/csr.ts";
import { normaliseForModel } from "../data/normalize.ts";
import { categoryCounts, labelColumn } from "../io/anndata.ts";
import { H5adFile, readH5ad } from "../io/h5ad_read.ts";
import { Rng } from "../util/rng.ts";
import { assertClose } from "./helpers.ts";
import { dataFile, FIXTURES } from "./io_shared.ts";

/**
 * Expected values for every file in shared/data, computed independently with Debian's
 * python3-anndata 0.8 (`anndata.read_h5ad`; shape, `X.nnz` or `np.count_nonzero` for dense X,
 * float64 sum of X, first/last names, `obs[col].value_counts()`), not with our reader.
 */
const EXPECTED = [
  {
    file: "kang_ifnb_sub_2000.h5ad",
    shape: [2000, 13215],
    nnz: 1393284,
    sum: 4057218.0,
    genes: ["LINC00115", "LRRC3DN"],
    cells: ["ATGTAAACGTTTGG.1", "AGGGACGATCCGTC.1"],
    labels: {
      cell_type: {
        "B": 142,
        "B Activated": 43,
        "CD14 Mono": 643,
        "CD16 Mono": 153,
        "CD4 Memory T": 245,
        "CD4 Naive T": 360,
        "CD8 T": 116,
        "DC": 62,
        "Eryth": 5,
        "Mk": 35,
        "NK": 89,
        "T activated": 92,
        "pDC": 15,
      },
      condition: { CTRL: 1000, STIM: 1000 },
    },
    kind: "counts",
  },
  {
    file: "pancreas_wang_xin_1175.h5ad",
    shape: [1175, 219],
    nnz: 112420,
    sum: 637043.6251753569,
    genes: ["TGFBR3", "PPY2P"],
    cells: ["SRR3649793", "SRR3542903"],
    labels: {
      cell_type: {
        acinar: 5,
        alpha: 491,
        beta: 379,
        delta: 59,
        ductal: 96,
        gamma: 100,
        stellate: 45,
      },
      study: { wang: 501, xin: 674 },
    },
    kind: "log1p",
  },
  {
    file: "pbmc_symphony_3tech_1200.h5ad",
    shape: [1200, 1767],
    nnz: 245676,
    sum: 1495544.0,
    genes: ["LYZ", "IL1RN"],
    cells: ["fivePrime_GATCGCGAGACCGGAT", "threepfresh_GTAGTCATCTTGCAAG"],
    labels: {
      cell_type: {
        B: 172,
        DC: 28,
        HSC: 3,
        MK: 7,
        Mono_CD14: 272,
        Mono_CD16: 60,
        NK: 59,
        T_CD4: 373,
        T_CD8: 226,
      },
      tech: { "3pv1": 290, "3pv2": 480, "5p": 430 },
    },
    kind: "counts",
  },
  {
    file: "scanpy_pbmc68k_reduced.h5ad",
    shape: [700, 765],
    nnz: 535433,
    sum: -243.681057988666,
    genes: ["HES4", "MT-ND3"],
    cells: ["AAAGCCTGGCTAAC-1", "TTGAGGTGGAGAGC-8"],
    labels: {
      bulk_labels: {
        "CD4+/CD25 T Reg": 68,
        "CD4+/CD45RA+/CD25- Naive T": 8,
        "CD4+/CD45RO+ Memory": 19,
        "CD8+ Cytotoxic T": 54,
        "CD8+/CD45RA+ Naive Cytotoxic": 43,
        "CD14+ Monocyte": 129,
        "CD19+ B": 95,
        "CD34+": 13,
        "CD56+ NK": 31,
        "Dendritic": 240,
      },
      phase: { G1: 501, G2M: 17, S: 182 },
    },
    kind: "scaled",
  },
];

function sum64(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

for (const e of EXPECTED) {
  const path = dataFile(e.file);
  Deno.test({
    name: `h5ad: ${e.file} matches anndata (shape, nnz, sum, names, label counts)`,
    ignore: path === null,
    fn: async () => {
      const ad = await readH5ad(path!);
      assert.deepEqual([ad.X.nRows, ad.X.nCols], e.shape);
      assert.equal(nnz(ad.X), e.nnz);
      // The sum is over float32 values in float64 in both; only the order of addition differs.
      assertClose([sum64(ad.X.data)], [e.sum], { rtol: 1e-9, atol: 1e-6 }, "sum of X");
      assert.deepEqual([ad.var.index[0], ad.var.index.at(-1)], e.genes);
      assert.deepEqual([ad.obs.index[0], ad.obs.index.at(-1)], e.cells);
      assert.equal(ad.obs.index.length, e.shape[0]);
      for (const [key, counts] of Object.entries(e.labels)) {
        const col = ad.obs.columns.get(key);
        if (col?.kind !== "categorical") throw new Error(`${key} is not categorical`);
        const n = categoryCounts(col);
        const got = Object.fromEntries(col.categories.map((c, i) => [c, n[i]]));
        assert.deepEqual(got, counts);
      }
      if (e.kind === "scaled") {
        // X is z-scored: the user must be pointed at raw.
        assert.throws(
          () => normaliseForModel(ad.X, { file: path!, matrix: "X", alternatives: ["raw/X"] }),
          /scaled.*raw/,
        );
      } else {
        const n = normaliseForModel(ad.X, { file: path!, matrix: "X" });
        assert.equal(n.stats.kind(), e.kind);
      }
    },
  });
}

Deno.test({
  name: "h5ad: kang uns/source and labelColumn",
  ignore: dataFile("kang_ifnb_sub_2000.h5ad") === null,
  fn: async () => {
    const ad = await readH5ad(dataFile("kang_ifnb_sub_2000.h5ad")!);
    const src = ad.uns.source as Record<string, string>;
    assert.equal(src.label_key, "cell_type");
    assert.equal(src.domain_key, "condition");
    const lab = labelColumn(ad, "cell_type");
    assert.equal(lab.classes.length, 13);
    assert.equal(lab.counts.reduce((a, b) => a + b, 0), 2000);
  },
});

Deno.test({
  name: "h5ad: pbmc68k raw/X (anndata: 700 x 765, nnz 174400, max 6.489) and raw/var",
  ignore: dataFile("scanpy_pbmc68k_reduced.h5ad") === null,
  fn: async () => {
    const path = dataFile("scanpy_pbmc68k_reduced.h5ad")!;
    const h = await H5adFile.open(path);
    try {
      assert.deepEqual(h.matrixNames(), ["X", "raw/X"]);
      assert.equal(h.resolveMatrixName("raw"), "raw/X");
      assert.throws(() => h.matrix("counts"), /no matrix "counts"; matrices are: X, raw\/X/);
      const raw = h.read("raw");
      assert.equal(raw.matrix, "raw/X");
      assert.equal(nnz(raw.X), 174400);
      assertClose(
        [raw.X.data.reduce((a, b) => Math.max(a, b))],
        [6.488999843597412],
        { atol: 0 },
        "max raw",
      );
      assert.deepEqual([raw.var.index[0], raw.var.index.at(-1)], ["HES4", "MT-ND3"]);
      // var of X carries anndata's bool column as boolean (h5py enum) and floats as numeric.
      const v = h.var("X");
      assert.equal(v.columns.get("highly_variable")?.kind, "boolean");
      assert.equal(v.columns.get("means")?.kind, "numeric");
      const n = normaliseForModel(raw.X, { file: path, matrix: "raw/X" });
      assert.equal(n.normalisation, "log_normalised_as_is");
      assert.equal(n.warnings.length, 1);
    } finally {
      h.close();
    }
  },
});

Deno.test({
  name: "h5ad: row chunks (CSR and dense) equal the whole-matrix read, incl. 1-row and empty",
  ignore: !dataFile("kang_ifnb_sub_2000.h5ad") || !dataFile("scanpy_pbmc68k_reduced.h5ad"),
  fn: async () => {
    const rng = new Rng(3);
    for (
      const [file, matrix] of [["kang_ifnb_sub_2000.h5ad", "X"], [
        "scanpy_pbmc68k_reduced.h5ad",
        "X",
      ]]
    ) {
      const h = await H5adFile.open(dataFile(file)!);
      try {
        const whole = h.read(matrix).X;
        const reader = h.matrix(matrix);
        const ranges = [[0, 1], [whole.nRows - 1, whole.nRows], [5, 5], [0, whole.nRows]];
        for (let i = 0; i < 5; i++) {
          const a = rng.int(whole.nRows);
          ranges.push([a, a + 1 + rng.int(Math.min(300, whole.nRows - a))]);
        }
        for (const [a, b] of ranges) {
          const c = reader.readRows(a, b);
          assert.equal(c.nRows, b - a);
          const lo = whole.indptr[a];
          assert.deepEqual([...c.indptr], [...whole.indptr.subarray(a, b + 1)].map((p) => p - lo));
          assert.deepEqual(c.indices, whole.indices.slice(lo, whole.indptr[b]));
          assert.deepEqual(c.data, whole.data.slice(lo, whole.indptr[b]));
        }
        // Small chunks (a ragged ~50k-entry budget) tile the matrix exactly.
        let rows = 0;
        let entries = 0;
        for (const [start, c] of reader.chunks({ entries: 50_000 })) {
          assert.equal(start, rows);
          rows += c.nRows;
          entries += nnz(c);
        }
        assert.deepEqual([rows, entries], [whole.nRows, nnz(whole)]);
        assert.throws(() => reader.readRows(3, whole.nRows + 1), /out of range/);
      } finally {
        h.close();
      }
    }
  },
});

const expected = JSON.parse(await Deno.readTextFile(FIXTURES + "io_fixtures_expected.json"));

function checkFrame(got: Map<string, unknown>, want: Record<string, Record<string, unknown>>) {
  assert.deepEqual([...got.keys()], Object.keys(want));
  for (const [k, w] of Object.entries(want)) {
    // deno-lint-ignore no-explicit-any
    const g = got.get(k) as any;
    assert.equal(g.kind, w.kind, k);
    if (w.kind === "categorical") {
      assert.deepEqual(g.categories, w.categories, k);
      assert.deepEqual([...g.codes], w.codes, k);
    } else if (w.kind === "numeric") {
      assertClose(g.values, w.values as number[], { rtol: 1e-12 }, k);
    } else assert.deepEqual([...g.values], w.values, k);
  }
}

Deno.test("h5ad: CSC X, int64 dense layer, categorical/bool/float columns (vs anndata)", async () => {
  const e = expected["io_csc.h5ad"];
  const h = await H5adFile.open(FIXTURES + "io_csc.h5ad");
  try {
    assert.equal(h.matrix("X").info.format, "csc");
    const x = h.read("X");
    // anndata stored X as float32; both sides see the same float32 values.
    assertClose(csrToDense(x.X), e.X.flat(), { atol: 1e-6 }, "X");
    const counts = h.read("counts");
    assert.equal(counts.matrix, "layers/counts");
    assert.deepEqual([...csrToDense(counts.X)], e.counts.flat());
    assert.deepEqual(x.obs.index, e.obs_names);
    assert.deepEqual(x.var.index, e.var_names);
    checkFrame(x.obs.columns, e.obs);
    // The all-zero cell stays an empty row.
    assert.equal(x.X.indptr[5] - x.X.indptr[4], 0);
    // CSC rows in chunks equal the whole.
    const part = h.matrix("X").readRows(7, 19);
    assertClose(csrToDense(part), e.X.slice(7, 19).flat(), { atol: 1e-6 }, "rows 7..19");
  } finally {
    h.close();
  }
});

Deno.test("h5ad: legacy (anndata < 0.7) layout: compound obs/var, uns categories, raw.X", async () => {
  const e = expected["io_legacy.h5ad"];
  const h = await H5adFile.open(FIXTURES + "io_legacy.h5ad");
  try {
    assert.ok(h.legacy);
    assert.deepEqual(h.matrixNames(), ["X", "raw/X"]);
    const x = h.read("X");
    assert.deepEqual([...csrToDense(x.X)], e.X.flat());
    assert.deepEqual(x.obs.index, e.obs_names);
    assert.deepEqual(x.var.index, e.var_names);
    checkFrame(x.obs.columns, e.obs);
    const raw = h.read("raw");
    assert.deepEqual([...csrToDense(raw.X)], e.raw.flat());
    assert.deepEqual(raw.var.index, e.raw_var_names);
  } finally {
    h.close();
  }
});
