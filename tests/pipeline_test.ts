/**
 * The report pipeline on synthetic transfers: the mixing numbers come from the representation
 * they name (separated vs mixed domains), the evaluation covers exactly the annotated cells,
 * sections follow the data, the same seed gives the same report, bad inputs are refused, and
 * `writeTransferReport` writes HTML + SVGs without clobbering.
 */
import assert from "node:assert/strict";
import { type Csr, csrFromDense } from "../data/csr.ts";
import { pca } from "../eval/embed.ts";
import { evaluate } from "../eval/evaluate.ts";
import { mixingEntropy } from "../eval/mixing.ts";
import {
  buildTransferReport,
  figuresDir,
  mixingSummary,
  NOT_ANNOTATED,
  type TransferReportInput,
  writeTransferReport,
} from "../eval/pipeline.ts";
import { ScnymError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { listDir, tempDir } from "./io_shared.ts";

const TYPES = ["A", "B", "C"];
const UNSEEN = "X";

/**
 * `n` cells alternating between domains "ref" and "tgt", in one blob per type (in 8-d features
 * and in a 12-gene non-negative input). `featuresApart` / `inputApart` shift one domain far away
 * in that representation, so its neighbourhoods hold one domain only. Target cells of type X
 * exist only with `unseen`, and get low confidence.
 */
function transfer(
  n: number,
  opts: { featuresApart: boolean; inputApart: boolean; unseen?: boolean; seed?: number },
): TransferReportInput & { input: Csr; domain: string[]; truth: (string | null)[] } {
  const rng = new Rng(opts.seed ?? 3);
  const d = 8;
  const g = 12;
  const features = new Float32Array(n * d);
  const dense = new Float32Array(n * g);
  const classes = TYPES;
  const probs = new Float32Array(n * classes.length);
  const predicted: string[] = [];
  const confidence = new Float32Array(n);
  const truth: (string | null)[] = [];
  const domain: string[] = [];
  for (let i = 0; i < n; i++) {
    const dom = i % 2 ? "tgt" : "ref";
    const unseen = !!opts.unseen && dom === "tgt" && i % 10 === 1;
    const t = unseen ? 3 : rng.int(3);
    domain.push(dom);
    truth.push(dom === "ref" ? null : unseen ? UNSEEN : classes[t]);
    for (let j = 0; j < d; j++) {
      const shift = opts.featuresApart && dom === "tgt" && j === d - 1 ? 40 : 0;
      features[i * d + j] = rng.normal() + (j === t ? 6 : 0) + shift;
    }
    for (let j = 0; j < g; j++) {
      const shift = opts.inputApart && dom === "tgt" && j === g - 1 ? 40 : 0;
      dense[i * g + j] = Math.max(0, rng.normal() + 2 + (j === t ? 6 : 0) + shift);
    }
    // Right ~80% of the time; unseen cells spread their probability (low confidence).
    const win = unseen ? rng.int(3) : rng.uniform() < 0.8 ? t : rng.int(3);
    const p = classes.map((_, c) => (c === win ? (unseen ? 0.4 : 0.9) : unseen ? 0.3 : 0.05));
    p.forEach((v, c) => (probs[i * 3 + c] = v));
    predicted.push(classes[win]);
    confidence[i] = Math.fround(p[win]);
  }
  return {
    facts: { tool: "test", seed: 0 },
    cellNames: Array.from({ length: n }, (_, i) => `cell_${i}`),
    predicted,
    confidence,
    probabilities: { classes, values: probs },
    embedding: { data: features, dims: d },
    truth,
    domain,
    trainingLabels: classes,
    input: csrFromDense(dense, n, g),
    seed: 0,
    mixingK: 30,
  };
}

Deno.test("mixing: each number comes from its representation; separated ~0, mixed ~1", async () => {
  const n = 240;
  const apart = transfer(n, { featuresApart: true, inputApart: false });
  const r = await buildTransferReport(apart);
  assert.deepEqual(Object.keys(r.mixing!), ["learnedUmap", "learned", "inputPca"]);
  const m = r.mixing as Required<NonNullable<typeof r.mixing>>;
  // Domains 40 sd apart: no neighbour crosses over, so the entropy is exactly 0.
  assert.equal(m.learned.normalised, 0);
  // Random domain labels among k = 30 neighbours: E[H] ~ ln 2 - 1/(2k), i.e. ~0.98 normalised.
  assert.ok(m.inputPca.normalised > 0.85, `input mixed: ${m.inputPca.normalised}`);
  // UMAP's random init may put disconnected components near each other, so only "low".
  assert.ok(m.learnedUmap.normalised < 0.3, `UMAP of separated: ${m.learnedUmap.normalised}`);

  // The pipeline's numbers are exactly mixingEntropy on the data it names.
  const opts = { k: 30, seed: 0 };
  assert.deepEqual(m.learned, mixingEntropy(apart.embedding!.data, n, 8, apart.domain, opts));
  const p = pca(apart.input, 50, 0);
  assert.deepEqual(m.inputPca, mixingEntropy(p.scores, n, p.nComponents, apart.domain, opts));
  const u = r.umap!;
  assert.equal(u.indices.length, n);
  const uDom = Array.from(u.indices, (i) => apart.domain[i]);
  assert.deepEqual(m.learnedUmap, mixingEntropy(u.coords, n, 2, uDom, opts));

  const mixed = await buildTransferReport(transfer(n, { featuresApart: false, inputApart: true }));
  const mm = mixed.mixing!;
  assert.ok(mm.learned!.normalised > 0.85, `learned mixed: ${mm.learned!.normalised}`);
  assert.ok(mm.learnedUmap!.normalised > 0.75, `UMAP mixed: ${mm.learnedUmap!.normalised}`);
  assert.equal(mm.inputPca!.normalised, 0);
  assert.ok(mixed.html.includes("Domain mixing") && mixed.html.includes("input baseline"));

  const summary = mixingSummary(mm).split("\n");
  assert.equal(summary.length, 3);
  assert.ok(summary[0].includes("2-D UMAP") && summary[0].includes("k = 30"), summary[0]);
  assert.ok(summary[2].includes(mm.inputPca!.normalised.toFixed(3)), summary[2]);
  assert.equal(mixingSummary(null), "");
});

Deno.test("evaluation covers the annotated cells only; unseen type -> AUROC in the report", async () => {
  const t = transfer(120, { featuresApart: false, inputApart: false, unseen: true });
  const r = await buildTransferReport(t);
  const idx = t.truth.flatMap((v, i) => (v === null ? [] : [i]));
  const expected = evaluate({
    cellNames: idx.map((i) => t.cellNames[i]),
    predicted: idx.map((i) => t.predicted[i]),
    confidence: Float32Array.from(idx, (i) => t.confidence[i]),
    probabilities: {
      classes: TYPES,
      values: Float32Array.from(
        idx.flatMap((i) => [0, 1, 2].map((c) => t.probabilities!.values[i * 3 + c])),
      ),
    },
    truth: idx.map((i) => t.truth[i]!),
    trainingLabels: TYPES,
  });
  assert.equal(r.evaluation!.nCells, 60);
  assert.deepEqual(r.evaluation, expected);
  assert.deepEqual(r.evaluation!.unseen!.types, [UNSEEN]);
  // Unseen cells have confidence 0.4, seen ones 0.9: low confidence flags them perfectly.
  assert.equal(r.evaluation!.unseen!.auroc, 1);
  for (
    const s of ["Accuracy", "Unseen cell types", "Unseen-type detection (AUROC)", "Per cell type"]
  ) {
    assert.ok(r.html.includes(s), `report lacks "${s}"`);
  }
  const ids = r.figures.map((f) => f.id);
  assert.deepEqual(ids, [
    "umap_predicted",
    "umap_truth",
    "umap_domain",
    "umap_confidence",
    "reliability",
    "confusion",
  ]);
  // Reference cells (no truth) appear in the truth panel under their own legend entry.
  const truthSvg = r.figures.find((f) => f.id === "umap_truth")!.svg;
  assert.ok(truthSvg.includes(`${NOT_ANNOTATED} (60)`), "not-annotated legend entry");
});

Deno.test("no truth: evaluation null, no accuracy sections; no embedding: no UMAP", async () => {
  const t = transfer(60, { featuresApart: false, inputApart: false });
  const r = await buildTransferReport({ ...t, truth: undefined });
  assert.equal(r.evaluation, null);
  assert.deepEqual(r.figures.map((f) => f.id), [
    "umap_predicted",
    "umap_domain",
    "umap_confidence",
  ]);
  for (const s of ["Accuracy", "Reliability diagram", "Per cell type", "Unseen cell types"]) {
    assert.ok(!r.html.includes(s), `report without truth has "${s}"`);
  }
  assert.ok(r.html.includes("Mean confidence") && r.html.includes("Domain mixing"));
  // All-null truth is the same as no truth.
  const allNull = await buildTransferReport({ ...t, truth: t.truth.map(() => null) });
  assert.equal(allNull.evaluation, null);

  const bare = await buildTransferReport({ ...t, embedding: undefined, input: undefined });
  assert.equal(bare.umap, null);
  assert.equal(bare.mixing, null, "domains but no representation: no mixing");
  assert.ok(!bare.html.includes("Embedding") && !bare.html.includes("Domain mixing"));
  assert.ok(bare.html.includes("Reliability diagram"), "evaluation still there");

  const oneDomain = await buildTransferReport({ ...t, domain: t.domain.map(() => "ref") });
  assert.equal(oneDomain.mixing, null);
  assert.ok(oneDomain.umap !== null);
});

Deno.test("tiny inputs: 1 and 2 cells give a report without UMAP; subsampled UMAP", async () => {
  for (const n of [1, 2]) {
    const t = transfer(n, { featuresApart: false, inputApart: false });
    const r = await buildTransferReport({ ...t, truth: t.cellNames.map(() => "A") });
    assert.equal(r.umap, null);
    assert.equal(r.evaluation!.nCells, n);
    // Two cells, two domains: k is capped at n - 1 = 1.
    if (n === 2) assert.equal(r.mixing!.learned!.k, 1);
    else assert.equal(r.mixing, null);
  }
  const t = transfer(150, { featuresApart: false, inputApart: false });
  const r = await buildTransferReport({ ...t, maxUmapCells: 50, mixingQueryCells: 40 });
  assert.equal(r.umap!.indices.length, 50);
  assert.equal(r.mixing!.learnedUmap!.nQueries, 40);
  assert.equal(r.mixing!.learned!.nQueries, 40);
  assert.ok(r.html.includes("Showing a random 50 of 150 cells"));
});

Deno.test("same input and seed -> same report; progress lines for UMAP and mixing", async () => {
  const lines: string[] = [];
  class Capture extends Progress {
    override update(line: string) {
      lines.push(line);
    }
    override log(line: string) {
      lines.push(line);
    }
  }
  const t = transfer(90, { featuresApart: true, inputApart: false });
  const a = await buildTransferReport({ ...t, progress: new Capture({ quiet: true }) });
  const b = await buildTransferReport(t);
  assert.equal(a.html, b.html);
  assert.deepEqual(a.mixing, b.mixing);
  const c = await buildTransferReport({ ...t, seed: 1 });
  assert.notEqual(c.html, a.html, "another seed, another UMAP");
  assert.ok(lines.some((l) => l.startsWith("UMAP of 90 of 90 cells")), lines.join("|"));
  assert.ok(lines.some((l) => /UMAP: epoch \d+\/\d+/.test(l)));
  assert.ok(lines.some((l) => l.includes("PCA-50 of the input")));
});

Deno.test("bad per-cell arrays are refused with the field and the expected size", async () => {
  const t = transfer(30, { featuresApart: false, inputApart: false });
  const cases: [Partial<TransferReportInput>, RegExp][] = [
    [{ predicted: t.predicted.slice(1) }, /predicted has 29 entries, expected 30/],
    [{ confidence: new Float32Array(31) }, /confidence has 31 entries/],
    [{ truth: t.truth.slice(2) }, /truth has 28 entries/],
    [{ domain: ["a"] }, /domain has 1 entries/],
    [{ embedding: { data: new Float32Array(30 * 8 - 1), dims: 8 } }, /embedding \(x 8 dims\)/],
    [{ probabilities: { classes: TYPES, values: new Float32Array(30) } }, /probabilities/],
    [{ input: csrFromDense(new Float32Array(4), 2, 2) }, /input matrix has 2 rows/],
    [{ cellNames: [] }, /no cells/],
  ];
  for (const [patch, re] of cases) {
    await assert.rejects(
      () => buildTransferReport({ ...t, ...patch }),
      (e: Error) =>
        e instanceof ScnymError && re.test(e.message) && /buildTransferReport/.test(e.message),
    );
  }
});

Deno.test("writeTransferReport: HTML + one SVG per figure, atomically; no overwrite without the flag", async () => {
  const [dir, done] = await tempDir();
  try {
    const r = await buildTransferReport(transfer(60, { featuresApart: false, inputApart: false }));
    const path = `${dir}/run.html`;
    const written = await writeTransferReport(path, r);
    assert.equal(figuresDir(path), `${dir}/run_figures`);
    assert.deepEqual(written, [path, ...r.figures.map((f) => `${dir}/run_figures/${f.id}.svg`)]);
    assert.equal(await Deno.readTextFile(path), r.html);
    for (const f of r.figures) {
      const svg = await Deno.readTextFile(`${dir}/run_figures/${f.id}.svg`);
      assert.equal(svg.trimEnd(), f.svg);
    }
    assert.deepEqual(listDir(dir), ["run.html", "run_figures"], "no temporary files left");
    assert.equal(listDir(`${dir}/run_figures`).length, r.figures.length);

    // A second write is refused before anything changes; with overwrite it replaces the files.
    const other = await buildTransferReport(
      transfer(60, { featuresApart: true, inputApart: false }),
    );
    await assert.rejects(() => writeTransferReport(path, other), ScnymError);
    assert.equal(await Deno.readTextFile(path), r.html);
    // Only a stale figure in the way also blocks the write.
    await Deno.remove(path);
    await assert.rejects(
      () => writeTransferReport(path, other),
      /umap_predicted\.svg already exists/,
    );
    assert.ok(!listDir(dir).includes("run.html"));
    await writeTransferReport(path, other, { overwrite: true });
    assert.equal(await Deno.readTextFile(path), other.html);

    // A path without .html gets `<path>_figures`.
    assert.equal(figuresDir(`${dir}/plain`), `${dir}/plain_figures`);
    const out = await writeTransferReport(`${dir}/plain`, r);
    assert.ok(out[1].startsWith(`${dir}/plain_figures/`));
    await assert.rejects(
      // A directory under a regular file cannot be created.
      () => writeTransferReport(`${dir}/run.html/r.html`, r),
      (e: Error) => e instanceof ScnymError && e.message.includes("run.html/r_figures"),
    );
  } finally {
    await done();
  }
});
