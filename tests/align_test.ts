import assert from "node:assert/strict";
import { csrFromDense, csrToDense } from "../data/csr.ts";
import {
  alignGenes,
  alignmentReport,
  applyAlignment,
  findDuplicates,
  geneKey,
  geneNameStyle,
  intersectGenes,
  makeUnique,
} from "../data/align.ts";
import { Rng } from "../util/rng.ts";
import { haveAnndata, python } from "./io_shared.ts";

/** Dense reference: column j of the result is query column `col[j]`, or zeros. */
function alignDense(dense: Float32Array, n: number, m: number, col: Int32Array): Float32Array {
  const out = new Float32Array(n * col.length);
  for (let r = 0; r < n; r++) {
    col.forEach((c, j) => {
      if (c >= 0) out[r * col.length + j] = dense[r * m + c];
    });
  }
  return out;
}

Deno.test("alignGenes + applyAlignment equal a dense reference (shuffled, missing, extra genes)", () => {
  const rng = new Rng(8);
  for (const [n, m, k] of [[1, 6, 5], [13, 40, 33], [57, 200, 170], [5, 3, 3]]) {
    const query = Array.from({ length: m }, (_, j) => `G${j}`);
    const perm = rng.permutation(m);
    // Model genes: k of the query's in shuffled order, plus 2 it lacks (>= 80% found).
    const model = [...perm.subarray(0, k)].map((j) => `G${j}`);
    if (k > 10) model.push("MISSING1", "MISSING2");
    const dense = new Float32Array(n * m);
    for (let i = 0; i < dense.length; i++) if (rng.uniform() < 0.3) dense[i] = 1 + rng.int(9);
    const a = alignGenes(model, query);
    assert.equal(a.found, k);
    assert.equal(a.total, model.length);
    assert.equal(a.extra, m - k);
    const got = applyAlignment(csrFromDense(dense, n, m), a);
    assert.deepEqual(csrToDense(got), alignDense(dense, n, m, a.queryCol));
    // Columns ascend within each row (the CSR convention the rest of the code relies on).
    for (let r = 0; r < n; r++) {
      for (let q = got.indptr[r] + 1; q < got.indptr[r + 1]; q++) {
        assert.ok(got.indices[q - 1] < got.indices[q]);
      }
    }
  }
});

Deno.test("alignGenes: refuses below the threshold and with zero shared genes", () => {
  const model = ["A", "B", "C", "D", "E"];
  assert.throws(
    () => alignGenes(model, ["A", "B", "C", "X"]),
    /query: only 3 of the model's 5 genes found \(60\.0%, need 80\.0%\); missing e\.g\. D, E; .*lower --min-gene-fraction \(now 0\.8\)/,
  );
  const ok = alignGenes(model, ["A", "B", "C", "X"], { minFraction: 0.5 });
  assert.equal(ok.fraction, 0.6);
  assert.deepEqual(ok.missingSample, ["D", "E"]);
  assert.match(alignmentReport(ok), /genes found: 3 \/ 5 model genes \(60\.0%\), 2 zero-filled/);
  assert.throws(
    () => alignGenes(model, ["x", "y"], { queryName: "q.h5ad" }),
    /q\.h5ad: no gene in common/,
  );
});

Deno.test("case and Ensembl-version-insensitive matching", () => {
  assert.equal(geneKey("ENSG00000141510.12", { stripEnsemblVersion: true }), "ENSG00000141510");
  assert.equal(
    geneKey("ENSMUSG00000000001.4", { stripEnsemblVersion: true }),
    "ENSMUSG00000000001",
  );
  assert.equal(geneKey("HLA-A.1", { stripEnsemblVersion: true }), "HLA-A.1"); // not Ensembl
  const model = ["ENSG00000141510.12", "ENSG00000000003.1", "Cd4"];
  const query = ["CD4", "ENSG00000000003.15", "ENSG00000141510.11"];
  assert.throws(() => alignGenes(model, query), /no gene in common/);
  const a = alignGenes(model, query, { ignoreCase: true, stripEnsemblVersion: true });
  assert.deepEqual([...a.queryCol], [2, 1, 0]);
});

Deno.test("duplicate gene names: error listing them, or made unique on request", () => {
  assert.deepEqual(findDuplicates(["A", "B", "A", "C", "B", "A"]), ["A", "B"]);
  assert.throws(
    () => alignGenes(["A", "B"], ["A", "B", "A", "TBCE", "TBCE"], { queryName: "q.h5" }),
    /q\.h5 has duplicate gene names: A, TBCE/,
  );
  // anndata rule: first keeps its name, repeats get -1, -2, skipping names already taken.
  assert.deepEqual(makeUnique(["A", "A", "A-1", "A", "B"]), ["A", "A-2", "A-1", "A-3", "B"]);
  const a = alignGenes(["A", "A-1", "B"], ["A", "A", "B"], { makeUnique: true });
  assert.deepEqual([...a.queryCol], [0, 1, 2]);
  // Folding case can create duplicates too.
  assert.throws(
    () => alignGenes(["A"], ["a", "A"], { ignoreCase: true }),
    /duplicate gene names: A/,
  );
});

Deno.test({
  name: "makeUnique agrees with anndata.utils.make_index_unique",
  ignore: !haveAnndata(),
  fn: async () => {
    const rng = new Rng(2);
    const names = Array.from({ length: 300 }, () => `G${rng.int(40)}`);
    names.push("G1-1", "G1-2", "G3-1");
    const got = await python(`
import json, pandas as pd, anndata.utils as u
print(json.dumps(list(u.make_index_unique(pd.Index(${JSON.stringify(names)})))))`);
    assert.deepEqual(makeUnique(names), got);
  },
});

Deno.test("intersectGenes: inner join in the first list's order; none shared is an error", () => {
  const j = intersectGenes(["A", "B", "C", "D"], ["D", "X", "B"]);
  assert.deepEqual(j.genes, ["B", "D"]);
  assert.deepEqual([...j.aCols], [1, 3]);
  assert.deepEqual([...j.bCols], [2, 0]);
  assert.throws(
    () => intersectGenes(["A"], ["B"], { aName: "train.h5ad", bName: "target.h5ad" }),
    /train\.h5ad and target\.h5ad share no gene names/,
  );
});

Deno.test("gene-name style", () => {
  assert.equal(geneNameStyle(["ENSG00000141510", "ENSG00000000003.4"]), "ensembl");
  assert.equal(geneNameStyle(["CD4", "LYZ", "MT-ND3"]), "symbols");
  assert.equal(geneNameStyle(["CD4", "ENSG00000000003"]), "mixed");
});
