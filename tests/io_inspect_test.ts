import assert from "node:assert/strict";
import { formatInspect, inspectFile, type InspectReport } from "../io/inspect.ts";
import { dataFile, FIXTURES } from "./io_shared.ts";
import { runScript } from "./helpers.ts";

Deno.test({
  name: "inspect --json: pbmc68k (dense scaled X, log-normalised raw) points at raw",
  ignore: dataFile("scanpy_pbmc68k_reduced.h5ad") === null,
  fn: async () => {
    const r = await runScript("commands/inspect.ts", [
      dataFile("scanpy_pbmc68k_reduced.h5ad")!,
      "--json",
    ]);
    assert.equal(r.code, 0);
    const rep = JSON.parse(r.stdout) as InspectReport;
    assert.equal(rep.format, "h5ad");
    assert.deepEqual([rep.nObs, rep.nVars], [700, 765]);
    const [x, raw] = rep.matrices;
    // Values from anndata: dense X, 535433 non-zeros, min -2.032; raw/X CSR, nnz 174400.
    assert.deepEqual([x.name, x.storage, x.kind, x.nnz], ["X", "dense <f", "scaled", 535433]);
    assert.deepEqual([raw.name, raw.storage, raw.kind, raw.nnz], [
      "raw/X",
      "csr <f",
      "log1p",
      174400,
    ]);
    assert.match(rep.advice[0], /X is scaled: train on raw\/X \(--matrix raw\) instead/);
    const phase = rep.obs.find((c) => c.name === "phase")!;
    assert.deepEqual(phase.top, [["G1", 501], ["S", 182], ["G2M", 17]]);
    assert.equal(rep.genes.style, "symbols");
  },
});

Deno.test("inspect: fixture files (CSC + counts layer; legacy layout) and the text format", async () => {
  const csc = await inspectFile(FIXTURES + "io_csc.h5ad");
  assert.deepEqual(csc.matrices.map((m) => [m.name, m.kind]), [["X", "log1p"], [
    "layers/counts",
    "counts",
  ]]);
  const ct = csc.obs.find((c) => c.name === "cell_type")!;
  assert.equal(ct.missing, 1);
  const text = formatInspect(csc);
  assert.match(text, /cells x genes: 23 x 11/);
  assert.match(text, /layers\/counts\s+dense <q/);
  assert.match(text, /advice: X is already log-normalised/);
  const legacy = await inspectFile(FIXTURES + "io_legacy.h5ad");
  assert.ok(legacy.legacyLayout);
  assert.match(formatInspect(legacy), /pre-0\.7 anndata layout/);
  assert.equal(legacy.matrices[0].kind, "counts");
});
