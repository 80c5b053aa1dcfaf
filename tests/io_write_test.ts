import assert from "node:assert/strict";
import { type Csr, csrFromDense, csrToDense } from "../data/csr.ts";
import { type Column, dataFrame } from "../io/anndata.ts";
import { getGroup, openH5 } from "../io/h5.ts";
import { H5adFile, readH5ad } from "../io/h5ad_read.ts";
import { writeH5ad, writePredictions } from "../io/h5ad_write.ts";
import type { PredictionOutputs } from "../io/predictions.ts";
import { parseDelimited, writePredictionTable } from "../io/table.ts";
import { Rng } from "../util/rng.ts";
import { assertClose } from "./helpers.ts";
import { FIXTURES, haveAnndata, listDir, python, tempDir } from "./io_shared.ts";

/** A random sparse counts matrix (about `density` non-zero), with an all-zero row. */
function randomCsr(rng: Rng, n: number, m: number, density: number): Csr {
  const dense = new Float32Array(n * m);
  for (let i = 0; i < dense.length; i++) {
    if (rng.uniform() < density) dense[i] = 1 + rng.int(20);
  }
  if (n > 2) dense.fill(0, m, 2 * m);
  return csrFromDense(dense, n, m);
}

function sampleAnnData(rng: Rng, n: number, m: number) {
  const X = randomCsr(rng, n, m, 0.2);
  const obs = dataFrame(Array.from({ length: n }, (_, i) => `cell_${i}`));
  const codes = Int32Array.from({ length: n }, () => rng.int(3));
  codes[0] = -1; // missing label
  obs.columns.set("cell_type", { kind: "categorical", codes, categories: ["B", "T, CD4", "NK"] });
  obs.columns.set("donor", { kind: "string", values: obs.index.map((_, i) => `d${i % 2}`) });
  obs.columns.set("score", {
    kind: "numeric",
    values: Float64Array.from({ length: n }, () => rng.normal()),
  });
  obs.columns.set("flag", {
    kind: "boolean",
    values: Uint8Array.from({ length: n }, (_, i) => i % 2),
  });
  const var_ = dataFrame(Array.from({ length: m }, (_, j) => `GENE${j}`));
  const emb = Float32Array.from({ length: n * 3 }, () => rng.normal());
  return {
    X,
    obs,
    var: var_,
    obsm: { X_emb: { data: emb, cols: 3 } },
    uns: { source: { label_key: "cell_type", n: 7, ratio: 0.5 }, tags: ["a", "b"] },
  };
}

Deno.test("writeH5ad: our reader reads back X, obs, var (ragged shapes and a 1-row file)", async () => {
  const [dir, done] = await tempDir();
  try {
    const rng = new Rng(11);
    for (const [n, m] of [[37, 19], [1, 5], [130, 67]]) {
      const ad = sampleAnnData(rng, n, m);
      const path = `${dir}/w_${n}.h5ad`;
      await writeH5ad(path, ad);
      const back = await readH5ad(path);
      assert.deepEqual(back.X, ad.X);
      assert.deepEqual(back.obs.index, ad.obs.index);
      assert.deepEqual(back.var.index, ad.var.index);
      const c = back.obs.columns.get("cell_type") as Extract<Column, { kind: "categorical" }>;
      assert.deepEqual([...c.codes], [...(ad.obs.columns.get("cell_type") as typeof c).codes]);
      assert.deepEqual(c.categories, ["B", "T, CD4", "NK"]);
      assert.deepEqual(back.obs.columns.get("score"), ad.obs.columns.get("score"));
      assert.deepEqual((back.uns.source as Record<string, unknown>).n, 7);
      assert.deepEqual(back.uns.tags, ["a", "b"]);
      // `ordered` is a real boolean attribute (HDF5 enum), as pandas requires.
      const f = await openH5(path);
      const attr = getGroup(f, "obs/cell_type").attrs["ordered"];
      assert.equal(attr.metadata.type, 8);
      assert.equal(attr.json_value, false);
      f.close();
    }
    assert.deepEqual(listDir(dir), ["w_1.h5ad", "w_130.h5ad", "w_37.h5ad"]); // no temp files left
  } finally {
    await done();
  }
});

Deno.test({
  name: "writeH5ad: real anndata reads the same values and categories",
  ignore: !haveAnndata(),
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const ad = sampleAnnData(new Rng(5), 41, 23);
      const path = `${dir}/a.h5ad`;
      await writeH5ad(path, ad);
      const got = await python(`
import anndata, json, numpy as np
a = anndata.read_h5ad(${JSON.stringify(path)})
ct = a.obs["cell_type"]
print(json.dumps({"X": a.X.toarray().astype(float).tolist(), "obs": list(a.obs_names),
  "var": list(a.var_names), "cats": list(ct.cat.categories), "codes": ct.cat.codes.tolist(),
  "ordered": bool(ct.cat.ordered), "score": a.obs["score"].tolist(), "donor": list(a.obs["donor"]),
  "flag": [int(x) for x in a.obs["flag"]], "emb": a.obsm["X_emb"].astype(float).tolist(),
  "uns_n": int(a.uns["source"]["n"]), "tags": list(a.uns["tags"]), "sparse": a.X.format}))`) as Record<
        string,
        unknown
      >;
      assert.equal(got.sparse, "csr");
      assert.deepEqual((got.X as number[][]).flat(), [...csrToDense(ad.X)]);
      assert.deepEqual(got.obs, ad.obs.index);
      assert.deepEqual(got.var, ad.var.index);
      assert.deepEqual(got.cats, ["B", "T, CD4", "NK"]);
      const codes =
        (ad.obs.columns.get("cell_type") as Extract<Column, { kind: "categorical" }>).codes;
      assert.deepEqual(got.codes, [...codes]);
      assert.equal(got.ordered, false);
      assert.deepEqual(got.score, [
        ...(ad.obs.columns.get("score") as { values: Float64Array }).values,
      ]);
      assert.deepEqual(got.donor, (ad.obs.columns.get("donor") as { values: string[] }).values);
      assert.deepEqual(got.flag, [
        ...(ad.obs.columns.get("flag") as { values: Uint8Array }).values,
      ]);
      assert.deepEqual((got.emb as number[][]).flat(), [...ad.obsm.X_emb.data]);
      assert.equal(got.uns_n, 7);
      assert.deepEqual(got.tags, ["a", "b"]);
    } finally {
      await done();
    }
  },
});

function fakePredictions(rng: Rng, n: number, classes: string[]): PredictionOutputs {
  const c = classes.length;
  const probabilities = new Float32Array(n * c);
  const predicted = new Int32Array(n);
  const confidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += probabilities[i * c + k] = rng.uniform() + 1e-3;
    let best = 0;
    for (let k = 0; k < c; k++) {
      probabilities[i * c + k] /= s;
      if (probabilities[i * c + k] > probabilities[i * c + best]) best = k;
    }
    predicted[i] = best;
    confidence[i] = probabilities[i * c + best];
  }
  const embedding = { data: Float32Array.from({ length: n * 4 }, () => rng.normal()), dim: 4 };
  return { classes, predicted, confidence, probabilities, embedding };
}

const RUN = {
  seed: 42,
  config: JSON.stringify({ epochs: 3 }),
  version: "0.1.0",
  normalisation: "counts->log1p_cpm",
  genes_found: 11,
  genes_total: 11,
};

Deno.test("writePredictions: copy of the query + outputs; refuses input, existing file and key", async () => {
  const [dir, done] = await tempDir();
  try {
    const query = `${dir}/query.h5ad`;
    await Deno.copyFile(FIXTURES + "io_csc.h5ad", query);
    const q = await readH5ad(query);
    const n = q.X.nRows;
    const preds = fakePredictions(new Rng(9), n, ["B", "NK", "T"]);
    const out = `${dir}/out.h5ad`;
    const { warnings } = await writePredictions(query, out, preds, RUN);
    assert.deepEqual(warnings, []);
    const h = await H5adFile.open(out);
    try {
      const obs = h.obs();
      const lab = obs.columns.get("scNym") as Extract<Column, { kind: "categorical" }>;
      assert.deepEqual(lab.categories, ["B", "NK", "T"]);
      assert.deepEqual(lab.codes, preds.predicted);
      assertClose(
        (obs.columns.get("scNym_confidence") as { values: Float64Array }).values,
        preds.confidence,
        { atol: 0 },
        "confidence",
      );
      // Everything the query had is still there, untouched.
      assert.deepEqual([...obs.columns.keys()], [
        ...q.obs.columns.keys(),
        "scNym",
        "scNym_confidence",
      ]);
      assert.deepEqual(h.read("X").X, q.X);
      assert.deepEqual(h.matrixNames(), ["X", "layers/counts"]);
      const run = h.uns().scNym_run as Record<string, unknown>;
      assert.equal(run.seed, 42);
      assert.equal(run.normalisation, "counts->log1p_cpm");
      assert.deepEqual(h.uns().scNym_class_names, ["B", "NK", "T"]);
    } finally {
      h.close();
    }
    const before = listDir(dir);
    await assert.rejects(
      () => writePredictions(query, query, preds, RUN),
      /is the input file; refusing/,
    );
    await assert.rejects(
      () => writePredictions(query, out, preds, RUN),
      /already exists; refusing/,
    );
    await assert.rejects(
      () => writePredictions(out, `${dir}/again.h5ad`, preds, RUN),
      /already has obs\/scNym/,
    );
    assert.deepEqual(listDir(dir), before); // nothing written by the refusals
    // With another key the second run is fine.
    await writePredictions(out, `${dir}/again.h5ad`, preds, RUN, { key: "scNym2" });
    const again = await readH5ad(`${dir}/again.h5ad`);
    assert.ok(again.obs.columns.has("scNym") && again.obs.columns.has("scNym2"));
  } finally {
    await done();
  }
});

Deno.test({
  name: "writePredictions: real anndata opens the output with the same values",
  ignore: !haveAnndata(),
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const preds = {
        ...fakePredictions(new Rng(2), 23, ["B", "NK", "T"]),
        split: Array.from({ length: 23 }, (_, i) => i < 15 ? "train" : "target"),
      };
      const out = `${dir}/out.h5ad`;
      await writePredictions(FIXTURES + "io_csc.h5ad", out, preds, RUN);
      const legacyOut = `${dir}/legacy_out.h5ad`;
      const lp = fakePredictions(new Rng(3), 9, ["alpha", "beta"]);
      const { warnings } = await writePredictions(FIXTURES + "io_legacy.h5ad", legacyOut, lp, RUN);
      assert.match(warnings[0], /pre-0.7 anndata layout/);
      // A query saved with h5py's libver="latest" (superblock 3) gets a fresh file too.
      const latest = `${dir}/latest.h5ad`;
      await python(`
import anndata, h5py, json
from anndata._io.specs import write_elem
a = anndata.read_h5ad(${JSON.stringify(FIXTURES + "io_csc.h5ad")})
with h5py.File(${JSON.stringify(latest)}, "w", libver="latest") as f:
    write_elem(f, "/", a)
print(json.dumps(0))`);
      const latestOut = `${dir}/latest_out.h5ad`;
      const w2 = await writePredictions(latest, latestOut, preds, RUN);
      assert.match(w2.warnings[0], /newer HDF5 format/);
      const script = (p: string) => `
import anndata, json
a = anndata.read_h5ad(${JSON.stringify(p)})
s = a.obs["scNym"]
print(json.dumps({"cats": list(s.cat.categories), "codes": s.cat.codes.tolist(),
  "conf": a.obs["scNym_confidence"].astype(float).tolist(),
  "emb": a.obsm["X_scnym"].astype(float).tolist(),
  "probs": a.obsm["scNym_probabilities"].astype(float).tolist(),
  "split": a.obs["scNym_split"].astype(str).tolist() if "scNym_split" in a.obs else None,
  "sub": a[a.n_obs // 2:].obsm["scNym_probabilities"].shape[0],
  "names": list(a.uns["scNym_class_names"]), "seed": int(a.uns["scNym_run"]["seed"]),
  "config": str(a.uns["scNym_run"]["config"]), "cols": list(a.obs.columns), "n": a.n_obs}))`;
      for (const [p, pr] of [[out, preds], [legacyOut, lp], [latestOut, preds]] as const) {
        const got = await python(script(p)) as Record<string, unknown>;
        assert.deepEqual(got.cats, pr.classes);
        assert.deepEqual(got.codes, [...pr.predicted]);
        assert.deepEqual(got.conf, [...pr.confidence]);
        assert.deepEqual((got.emb as number[][]).flat(), [...pr.embedding!.data]);
        assert.deepEqual((got.probs as number[][]).flat(), [...pr.probabilities]);
        // Per cell in obsm: subsetting the AnnData subsets the probabilities with it.
        assert.equal(got.sub, pr.predicted.length - Math.floor(pr.predicted.length / 2));
        assert.deepEqual(got.split, "split" in pr ? pr.split : null);
        assert.deepEqual(got.names, pr.classes);
        assert.equal(got.seed, 42);
        assert.equal(got.config, RUN.config);
      }
    } finally {
      await done();
    }
  },
});

Deno.test("writePredictionTable: CSV/TSV with quoting, read back", async () => {
  const [dir, done] = await tempDir();
  try {
    const classes = ["B", 'T "naive", CD4'];
    const p = fakePredictions(new Rng(4), 5, classes);
    const cells = ["c0", "c1", "c,2", "c3", "c4"];
    for (const name of ["pred.csv", "pred.tsv"]) {
      const path = `${dir}/${name}`;
      await writePredictionTable(path, cells, p);
      const rows = parseDelimited(
        await Deno.readTextFile(path),
        name.endsWith(".csv") ? "," : "\t",
      );
      assert.deepEqual(rows[0], ["cell", "scNym", "confidence", "p_B", 'p_T "naive", CD4']);
      assert.equal(rows.length, 6);
      rows.slice(1).forEach((r, i) => {
        assert.equal(r[0], cells[i]);
        assert.equal(r[1], classes[p.predicted[i]]);
        // 6 significant digits are written.
        assertClose([Number(r[2])], [p.confidence[i]], { rtol: 1e-5 }, "confidence");
        assertClose(r.slice(3).map(Number), p.probabilities.subarray(i * 2, i * 2 + 2), {
          rtol: 1e-5,
        }, "p");
      });
      await assert.rejects(() => writePredictionTable(path, cells, p), /already exists/);
    }
  } finally {
    await done();
  }
});
