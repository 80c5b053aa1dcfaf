/**
 * The SVG pictures and the HTML report on a synthetic transfer (blobs per cell type, two domains,
 * one type only in the target), checked as text and, where Debian's `chromium` is installed, by
 * rendering in headless Chromium: the DOM must hold the expected figures and tables, the page
 * must reference nothing external, and the screenshot must not be blank.
 */
import assert from "node:assert/strict";
import { missing } from "./helpers.ts";
import { decodePng } from "./png.ts";
import { pca, umapEmbed } from "../eval/embed.ts";
import { csrFromDense } from "../data/csr.ts";
import { evaluate } from "../eval/evaluate.ts";
import { mixingEntropy } from "../eval/mixing.ts";
import { buildTransferReport } from "../eval/pipeline.ts";
import { renderReport, type ReportData, reportFigures } from "../eval/report.ts";
import {
  categoricalScatterSvg,
  confusionHeatmapSvg,
  continuousScatterSvg,
  reliabilityDiagramSvg,
} from "../eval/svg.ts";
import { escapeXml, palette, pointStyle } from "../eval/svg_primitives.ts";
import { expectedCalibrationError } from "../eval/metrics.ts";
import { Rng } from "../util/rng.ts";

const TYPES = ["B", "CD14 Mono", "CD4 T", "NK", "DC", "pDC <rare> & co"];
const UNSEEN = "Eryth";

/**
 * A synthetic transfer of `n` cells: 16-d features in a blob per type (target shifted a little),
 * predictions right ~85% of the time, confident when right, unsure on the unseen type.
 */
function synthetic(n: number, seed: number) {
  const rng = new Rng(seed);
  const d = 16;
  const classes = TYPES;
  const features = new Float32Array(n * d);
  const truth: string[] = [];
  const domain: string[] = [];
  const predicted: string[] = [];
  const confidence = new Float32Array(n);
  const probs = new Float32Array(n * classes.length);
  for (let i = 0; i < n; i++) {
    const dom = i < n / 2 ? "CTRL" : "STIM";
    const unseen = dom === "STIM" && rng.uniform() < 0.04;
    const t = unseen ? classes.length : rng.int(classes.length);
    truth.push(unseen ? UNSEEN : classes[t]);
    domain.push(dom);
    for (let j = 0; j < d; j++) {
      features[i * d + j] = rng.normal() + (j === t ? 8 : 0) +
        (dom === "STIM" && j === 15 ? 1.5 : 0);
    }
    // Logits: the true class wins by a random margin; sometimes another class wins instead.
    const logits = classes.map(() => rng.normal());
    const winner = unseen || rng.uniform() < 0.15 ? rng.int(classes.length) : t;
    logits[winner] += unseen ? 0.8 : 2 + 3 * rng.uniform();
    const mx = Math.max(...logits);
    const ex = logits.map((z) => Math.exp(z - mx));
    const s = ex.reduce((a, b) => a + b, 0);
    let best = 0;
    ex.forEach((e, c) => {
      probs[i * classes.length + c] = e / s;
      if (e > ex[best]) best = c;
    });
    predicted.push(classes[best]);
    confidence[i] = probs[i * classes.length + best];
  }
  const input = csrFromDense(features.map((v) => (v > 1 ? v : 0)), n, d);
  return { features, input, d, truth, domain, predicted, confidence, probs, classes };
}

function reportData(n: number, withTruth: boolean): ReportData {
  const s = synthetic(n, 1);
  const umap = umapEmbed(s.features, n, s.d, {
    seed: 0,
    nEpochs: 150,
    maxCells: n > 400 ? 400 : undefined,
  });
  const names = s.truth.map((_, i) => `cell${i}`);
  const m = umap.indices.length;
  const dom = Array.from(umap.indices, (i) => s.domain[i]);
  return {
    facts: {
      "scnym-webgpu": "0.1.0",
      seed: 0,
      config: "default",
      "training data": "synthetic CTRL",
      "target data": "synthetic STIM",
    },
    cells: {
      predicted: s.predicted,
      confidence: s.confidence,
      truth: withTruth ? s.truth : undefined,
      domain: s.domain,
    },
    evaluation: withTruth
      ? evaluate({
        cellNames: names,
        predicted: s.predicted,
        confidence: s.confidence,
        truth: s.truth,
        probabilities: { classes: s.classes, values: s.probs },
        trainingLabels: s.classes,
        confidenceThreshold: 0.9,
      })
      : undefined,
    umap,
    mixing: {
      learnedUmap: mixingEntropy(umap.coords, m, 2, dom, { k: 30 }),
      learned: mixingEntropy(s.features, n, s.d, s.domain, { k: 30 }),
      // A stand-in for the input baseline: PCA of the (sparsified) features.
      inputPca: mixingEntropy(pca(s.input, 5, 0).scores, n, 5, s.domain, { k: 30 }),
    },
    confidenceThreshold: 0.9,
  };
}

Deno.test("palette gives n distinct colours up to 40; point size shrinks with cell count", () => {
  for (const n of [1, 7, 20, 21, 28, 40]) {
    const p = palette(n);
    assert.equal(p.length, n);
    assert.equal(new Set(p).size, n, `distinct colours for ${n}`);
  }
  const small = pointStyle(200);
  const big = pointStyle(50_000);
  assert.ok(small.r > big.r && small.alpha > big.alpha, JSON.stringify({ small, big }));
  assert.ok(big.r >= 0.9 && big.alpha >= 0.35);
});

Deno.test("SVGs escape labels and carry title, legend, axes and one circle per cell", () => {
  const coords = new Float32Array([0, 0, 1, 1, 2, 0.5, 3, 3]);
  const labels = ["a<b>", "a<b>", "T & NK", 'x"y'];
  const svg = categoricalScatterSvg(coords, labels, { title: "Pred <types>" });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.endsWith("</svg>"));
  assert.ok(
    !svg.includes("<b>") && svg.includes("a&lt;b&gt; (2)") && svg.includes("T &amp; NK (1)"),
  );
  assert.ok(svg.includes("Pred &lt;types&gt;") && svg.includes("UMAP 1") && svg.includes("UMAP 2"));
  // 4 cells + 3 legend swatches.
  assert.equal(svg.match(/<circle /g)!.length, 7);
  const cont = continuousScatterSvg(coords, [0.1, 0.5, 0.9, 1], {
    title: "Conf",
    valueLabel: "confidence",
    min: 0,
    max: 1,
  });
  assert.equal(cont.match(/<circle /g)!.length, 4);
  assert.ok(cont.includes("linearGradient") && cont.includes(">confidence<"));
  const cal = expectedCalibrationError([0.2, 0.55, 0.9, 0.95], [0, 1, 1, 1]);
  const rel = reliabilityDiagramSvg(cal);
  assert.ok(rel.includes(`ECE = ${cal.ece.toFixed(3)}`));
  // One accuracy bar, one gap box and one histogram bar per non-empty bin (4 here).
  assert.equal(rel.match(/fill="#1f77b4"\/>/g)!.length, 4 + 1); // + the legend swatch
  const cm = confusionHeatmapSvg({ labels: ["A", "B&"], counts: [[3, 1], [0, 2]] });
  assert.ok(cm.includes("B&amp;") && cm.includes(">3<") && cm.includes("Predicted label"));
  assert.equal(escapeXml(`<&>"'`), "&lt;&amp;&gt;&quot;&#39;");
});

Deno.test("report: sections follow the data; without truth no accuracy sections", () => {
  const full = reportData(300, true);
  const ids = reportFigures(full).map((f) => f.id);
  assert.deepEqual(ids, [
    "umap_predicted",
    "umap_truth",
    "umap_domain",
    "umap_confidence",
    "reliability",
    "confusion",
  ]);
  const html = renderReport(full);
  for (
    const s of [
      "At a glance",
      "Accuracy",
      "Macro F1",
      "Reliability diagram",
      "Per cell type",
      "Unseen cell types",
      "Domain mixing",
      "Eryth",
      "pDC &lt;rare&gt; &amp; co",
    ]
  ) {
    assert.ok(html.includes(s), `report lacks "${s}"`);
  }
  assert.ok(!html.includes("<rare>"), "labels are escaped");
  assert.ok(!/<script|<link|@import|src=|href=|url\(\s*['"]?(?!#)/i.test(html), "nothing external");
  const bare = renderReport(reportData(300, false));
  assert.deepEqual(reportFigures(reportData(300, false)).map((f) => f.id), [
    "umap_predicted",
    "umap_domain",
    "umap_confidence",
  ]);
  for (const s of ["Accuracy", "Reliability diagram", "Per cell type", "Unseen cell types"]) {
    assert.ok(!bare.includes(s), `report without truth still has "${s}"`);
  }
  for (const s of ["Mean confidence", "Predictions", "Prediction confidence"]) {
    assert.ok(bare.includes(s), s);
  }
});

// ---------------------------------------------------------------------------------------------
// headless Chromium

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
if (!CHROMIUM) missing("Chromium (/usr/bin/chromium)", "apt-get install chromium");

/** Runs headless Chromium on `url` with `extra` flags; returns stdout. */
async function chromium(url: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "scnym_chromium_" });
  try {
    const out = await new Deno.Command(CHROMIUM!, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        ...extra,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, `chromium failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}

Deno.test({
  name: "report renders in headless Chromium: figures, tables, nothing external, not blank",
  ignore: !CHROMIUM,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "scnym_report_" });
    try {
      const data = reportData(1000, true);
      const html = renderReport(data);
      const page = `${dir}/report.html`;
      await Deno.writeTextFile(page, html);
      const dom = await chromium(`file://${page}`, ["--dump-dom", "--virtual-time-budget=2000"]);
      // Every figure made it into the rendered DOM, as inline SVG inside its <figure>.
      for (
        const id of [
          "umap_predicted",
          "umap_truth",
          "umap_domain",
          "umap_confidence",
          "reliability",
          "confusion",
        ]
      ) {
        assert.ok(
          new RegExp(`<figure id="fig-${id}"[^>]*><svg`).test(dom),
          `figure ${id} missing from the DOM`,
        );
      }
      assert.equal(dom.match(/<svg /g)!.length, 6);
      // Per-class, unseen-type, mixing and predictions tables.
      assert.equal(dom.match(/<table>/g)!.length, 4);
      assert.ok(dom.includes("Unseen-type detection (AUROC)"));
      assert.ok(
        !/<script|<link|<img|<iframe|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i.test(dom),
        "no external reference",
      );
      // Screenshot: right size and not blank (many pixels differ from the page background).
      const png = `${dir}/report.png`;
      await chromium(`file://${page}`, [
        `--screenshot=${png}`,
        "--window-size=1400,3000",
        "--hide-scrollbars",
      ]);
      const img = await decodePng(await Deno.readFile(png));
      assert.equal(img.width, 1400);
      assert.equal(img.height, 3000);
      const colours = new Set<number>();
      let inked = 0;
      for (let p = 0; p < img.width * img.height; p++) {
        const o = p * img.channels;
        const rgb = (img.pixels[o] << 16) | (img.pixels[o + 1] << 8) | img.pixels[o + 2];
        colours.add(rgb);
        if (rgb !== 0xf6f7f9 && rgb !== 0xffffff) inked++;
      }
      // A blank page has 1-2 colours and no ink; the report has text, points and heatmaps.
      assert.ok(colours.size > 200, `only ${colours.size} distinct colours`);
      assert.ok(inked / (img.width * img.height) > 0.03, `only ${inked} non-background pixels`);
      const keep = Deno.env.get("SCNYM_KEEP_REPORT");
      if (keep) {
        await Deno.copyFile(png, `${keep}.png`);
        await Deno.copyFile(page, `${keep}.html`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the standalone SVGs are well-formed XML (parsed by Chromium's XML parser)",
  ignore: !CHROMIUM,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "scnym_svg_" });
    try {
      // An .xhtml page goes through the strict XML parser, which stops at the first error and
      // shows a <parsererror>; one page holding every figure needs one browser launch, not six.
      const figs = reportFigures(reportData(300, true));
      const path = `${dir}/figures.xhtml`;
      await Deno.writeTextFile(
        path,
        `<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><body>` +
          figs.map((f) => f.svg).join("") + "</body></html>",
      );
      const dom = await chromium(`file://${path}`, ["--dump-dom"]);
      assert.ok(!dom.includes("parsererror"), dom.slice(0, 1000));
      assert.equal(dom.match(/<svg /g)?.length, figs.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("report: one denominator (the target cells), stated at the top; reference cells labelled", async () => {
  const n = 200;
  const s = synthetic(n, 2);
  // The first half plays the reference: trained on with their labels, never scored.
  const isTarget = s.truth.map((_, i) => i >= n / 2);
  const r = await buildTransferReport({
    facts: { "prediction config": JSON.stringify({ name: "default", train: { epochs: 100 } }) },
    cellNames: s.truth.map((_, i) => `cell${i}`),
    predicted: s.predicted,
    confidence: s.confidence,
    probabilities: { classes: s.classes, values: s.probs },
    embedding: { data: s.features, dims: s.d },
    truth: s.truth.map((t, i) => isTarget[i] ? t : null),
    scope: { cells: isTarget, name: "target cells" },
    trainingAnnotation: s.truth.map((t, i) => isTarget[i] ? null : t),
    domain: s.domain,
    trainingLabels: s.classes,
    seed: 0,
  });
  assert.equal(r.evaluation!.nCells, n / 2);
  assert.match(
    r.html,
    /Every number on this page is over the same <b>100 target cells<\/b> of the 200 shown/,
  );
  // The cards and the predictions table count the same 100 cells as the accuracy.
  const target = [...Array(n).keys()].filter((i) => isTarget[i]);
  const low = target.filter((i) => s.confidence[i] < 0.5).length;
  assert.ok(r.html.includes(`${low} (${(100 * low / target.length).toFixed(1)}%)`), "low-conf");
  const predictions = r.html.slice(r.html.indexOf("<h2>Predictions</h2>"));
  const counts = [...predictions.matchAll(/<tr><td>[^<]*<\/td><td>(\d+)<\/td>/g)];
  assert.equal(counts.reduce((a, m) => a + Number(m[1]), 0), n / 2);
  // No cell is "(not annotated)": reference cells show their training labels.
  const truthSvg = r.figures.find((f) => f.id === "umap_truth")!.svg;
  assert.ok(!truthSvg.includes("(not annotated)"), "reference cells shown as labelled");
  // A JSON fact is a table of its leaves, not one long line.
  assert.match(r.html, /<table class="json"><tr><td>name<\/td><td>default<\/td><\/tr>/);
  assert.match(r.html, /<td>train\.epochs<\/td><td>100<\/td>/);
  // Calibration and confusion panels grow from their natural width to share the row.
  assert.match(r.html, /<figure id="fig-reliability" style="--w:[\d.]+px">/);
  assert.match(r.html, /<figure id="fig-confusion" style="--w:[\d.]+px">/);
});
