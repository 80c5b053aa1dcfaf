/**
 * The demo: a whole scNym transfer on built-in synthetic data, on whatever WebGPU adapter this
 * machine has (Mesa's software one included). It simulates two batches of cells (the target
 * with a cell type the reference never shows), trains on the reference, predicts the target,
 * prints the accuracy on the known types and on all target cells (the unseen type counted wrong,
 * as on the report card) and how confidently the unseen type was flagged, and writes an HTML
 * report.
 *
 *   deno task demo            (or: npx -y deno@2.9.6 task demo)
 *   deno task demo --quick    (fewer cells and epochs)
 */
import { writeSimulation } from "../commands/simulate.ts";
import {
  buildTransferReport,
  evaluate,
  predictFile,
  simulate,
  trainFromFiles,
  writeTransferReport,
} from "../mod.ts";
import { Progress } from "../util/progress.ts";

const quick = Deno.args.includes("--quick");
const seed = 0;
const dir = await Deno.makeTempDir({ prefix: "scnym-demo-" });
const data = `${dir}/synthetic.h5ad`;
const progress = new Progress();

console.log(`1. simulating a SYNTHETIC experiment into ${data}`);
const sim = simulate({
  cellsPerDomain: quick ? [600, 600] : [1500, 1500],
  domainNames: ["reference", "target"],
  genes: quick ? 800 : 2000,
  types: 6,
  targetOnlyTypes: 1,
  batchEffect: 0.8,
  seed,
});
await writeSimulation(data, sim);
console.log(
  `   ${sim.counts.nRows} cells x ${sim.counts.nCols} genes, 6 shared cell types + 1 only in ` +
    "the target (novel_0), a per-gene batch effect between the two domains",
);

console.log("2. training scNym (new_identity_discovery: unseen types should get low confidence)");
const { result, rt } = await trainFromFiles({
  reference: data,
  labels: "cell_type",
  targetWhere: "domain=target",
  config: "new_identity_discovery",
  overrides: { train: { epochs: quick ? 15 : 40 } },
  seed,
  out: `${dir}/model.scnym`,
  progress,
});

console.log("3. predicting the target cells");
const { prediction: p, query } = await predictFile({
  model: `${dir}/model.scnym`,
  query: data,
  rt,
});
const target = query.obs.index.map((_, i) => i).filter((i) => sim.domain[i] === "target");
const ev = evaluate({
  cellNames: target.map((i) => query.obs.index[i]),
  predicted: target.map((i) => p.labels[i]),
  confidence: Float32Array.from(target, (i) => p.confidence[i]),
  truth: target.map((i) => sim.cellType[i]),
  trainingLabels: result.classes,
});
// Two accuracies, because the target holds a type training never saw: on the known types it
// measures the transfer; on all target cells (the report card's figure) novel_0 counts as wrong.
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const nSeen = target.filter((i) => result.classes.includes(sim.cellType[i])).length;
console.log(
  `   accuracy on known types: ${pct(ev.accuracySeen ?? ev.accuracy)} ` +
    `(the ${nSeen} target cells of the types in the reference)`,
);
console.log(
  `   accuracy on all target cells: ${pct(ev.accuracy)} (all ${target.length}; the unseen ` +
    "type novel_0 counts as wrong; the report card shows this one)",
);
console.log(
  `   macro-F1 ${ev.macroF1.toFixed(3)}, calibration error (ECE) ${ev.calibration.ece.toFixed(3)}`,
);
if (ev.unseen && ev.unseen.count > 0) {
  console.log(
    `   unseen type novel_0: ${ev.unseen.count} cells, AUROC of low confidence for them ` +
      `${ev.unseen.auroc?.toFixed(3)}`,
  );
}

console.log("4. writing the HTML report");
const report = await buildTransferReport({
  facts: { data: "synthetic (scnym simulate)", seed, config: "new_identity_discovery" },
  cellNames: query.obs.index,
  predicted: p.labels,
  confidence: p.confidence,
  probabilities: { classes: p.classes, values: p.probabilities },
  embedding: { data: p.embedding, dims: p.hidden },
  truth: query.obs.index.map((_, i) => sim.domain[i] === "target" ? sim.cellType[i] : null),
  domain: sim.domain,
  trainingLabels: result.classes,
  seed,
  maxUmapCells: quick ? 1200 : 3000,
  progress,
});
await writeTransferReport(`${dir}/report.html`, report);
console.log(`   open ${dir}/report.html in a browser`);
rt.destroy();
