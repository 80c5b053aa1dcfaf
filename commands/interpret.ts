/**
 * `scnym interpret`: which genes drive each prediction. Ranks genes per class by mean attribution
 * (guided backprop, integrated or expected gradients) over the query's cells, on the GPU.
 */
import { alignmentReport } from "../data/align.ts";
import {
  CELL_SETS,
  type CellSet,
  SALIENCY_METHODS,
  type SaliencyMethod,
} from "../scnym/interpret.ts";
import { interpretFile } from "../scnym/interpret_file.ts";
import {
  saliencySummary,
  writeSaliencyTable,
  writeSaliencyUns,
} from "../scnym/interpret_output.ts";
import { isTablePath, writePredictionOutput } from "../scnym/outputs.ts";
import { ScnymError } from "../util/errors.ts";
import { CLI_OVERWRITE_HINT, refuseExisting } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import { reportForQuery } from "./query_report.ts";
import {
  earlyModelWarning,
  numberFlag,
  QUERY_ALIGN_OPTIONS,
  queryAlignFlags,
  requireFlag,
  runCommand,
  stringFlag,
  warn,
} from "./common.ts";

const HELP = `usage: scnym interpret --model MODEL --query QUERY [options]

Ranks, for each class, the genes that drive the model's predictions on QUERY (the paper's
saliency analysis), on the GPU in large batches.

  --model FILE             model file written by scnym train
  --query FILE             cells to explain (.h5ad, 10x .h5 or mtx folder), normalised and
                           aligned to the model's genes as scnym predict does
  --class NAME             a class to explain (repeat for several; default: all)
  --method M               guided (default; rectified backpropagation, as the paper) | ig
                           (integrated gradients from a zero baseline) | eg (expected gradients,
                           reference cells drawn from the query or --background)
  --steps N                ig: Riemann points (default 100); eg: draws per cell (default 50)
  --background FILE        eg: reference cells from this file instead of the query
  --cells SET              predicted (default: cells predicted as the class) | all |
                           low-confidence (predicted as the class below --below)
  --below P                confidence threshold of --cells low-confidence (default 0.7)
  --top N                  genes per class in the table (default 20)
  --uncertain N            least confident cells to explain (default 10)
  --out FILE               table: .csv / .tsv (class, rank, gene, attribution, mean expression)
                           or .json (also completeness and the low-confidence cells)
  --predictions FILE.h5ad  predictions with the saliency matrix in uns/scNym_saliency
  --report FILE.html       HTML report with the saliency section
  --matrix NAME            matrix of the query: X (default), raw, or a layer name
  --min-gene-fraction F    refuse when fewer than F of the model's genes are found (default 0.8)
  --ignore-case            match gene names case-insensitively
  --strip-ensembl-version  match ENSG00000141510.12 to ENSG00000141510
  --make-unique            make duplicate gene names unique instead of failing
  --seed N                 seed of the eg draws and the report's UMAP (default 0)
  --overwrite              replace existing output files
  --quiet                  no progress on stderr

example:
  scnym interpret --model kang.scnym --query stim.h5ad --class B --class NK --out genes.csv`;

const OPTIONS = {
  model: { type: "string" },
  query: { type: "string" },
  class: { type: "string", multiple: true },
  method: { type: "string" },
  steps: { type: "string" },
  background: { type: "string" },
  cells: { type: "string" },
  below: { type: "string" },
  top: { type: "string" },
  uncertain: { type: "string" },
  out: { type: "string" },
  predictions: { type: "string" },
  report: { type: "string" },
  matrix: { type: "string" },
  ...QUERY_ALIGN_OPTIONS,
  seed: { type: "string" },
  overwrite: { type: "boolean" },
  quiet: { type: "boolean" },
} as const;

/** A flag restricted to `choices` (usage error naming them otherwise). */
function choiceFlag<T extends string>(
  v: string | undefined,
  name: string,
  choices: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  if (!choices.includes(v as T)) {
    throw new ScnymError(`--${name} ${v}: expected one of ${choices.join(", ")}`, 2);
  }
  return v as T;
}

/** Runs `scnym interpret`; returns the exit code. */
export function interpretCommand(args: string[]): Promise<number> {
  return runCommand({ name: "interpret", help: HELP, options: OPTIONS }, args, async (v) => {
    const modelPath = requireFlag(v, "model");
    const queryPath = requireFlag(v, "query");
    const out = stringFlag(v, "out");
    const predictions = stringFlag(v, "predictions");
    const reportPath = stringFlag(v, "report");
    if (!out && !predictions && !reportPath) {
      throw new ScnymError("nothing to write: give --out, --predictions or --report", 2);
    }
    if (predictions && isTablePath(predictions)) {
      throw new ScnymError(`--predictions ${predictions}: expected an .h5ad file`, 2);
    }
    const overwrite = Boolean(v.overwrite);
    await refuseExisting([out, predictions, reportPath], { overwrite, hint: CLI_OVERWRITE_HINT });
    const method: SaliencyMethod =
      choiceFlag(stringFlag(v, "method"), "method", SALIENCY_METHODS) ??
        "guided";
    const cells: CellSet = choiceFlag(stringFlag(v, "cells"), "cells", CELL_SETS) ?? "predicted";
    const seed = numberFlag(v, "seed", { min: 0, integer: true }) ?? 0;
    const progress = new Progress({ quiet: Boolean(v.quiet) });
    const t0 = performance.now();
    const r = await interpretFile({
      model: modelPath,
      query: queryPath,
      matrix: stringFlag(v, "matrix"),
      ...queryAlignFlags(v),
      method,
      classes: v.class as string[] | undefined,
      cells,
      below: numberFlag(v, "below", { min: 0, max: 1 }),
      top: numberFlag(v, "top", { min: 1, integer: true }),
      steps: numberFlag(v, "steps", { min: 1, integer: true }),
      leastConfident: numberFlag(v, "uncertain", { min: 0, integer: true }),
      backgroundFile: stringFlag(v, "background"),
      seed,
      progress,
    });
    const seconds = (performance.now() - t0) / 1000;
    const { header } = r.loaded;
    const s = r.interpretation;
    const early = earlyModelWarning(modelPath, header);
    warn(early ? [early, ...r.warnings] : r.warnings);
    console.error(alignmentReport(r.alignment));
    console.log(saliencySummary(s));
    console.log(
      `${method}: ${r.X.nRows} cells, ${s.classes.length} classes, ${seconds.toFixed(1)} s`,
    );
    if (out) {
      await writeSaliencyTable(out, s, { overwrite });
      console.error(`saliency table written to ${out}`);
    }
    if (predictions) {
      const run = {
        tool: "scnym-webgpu",
        version: VERSION,
        model: modelPath,
        modelSeed: header.seed,
        normalisation: r.normalisation,
        saliencySeed: seed,
      };
      // Predictions and saliency go to a temporary file renamed at the end: nothing half-written.
      const tmp = `${predictions}.${Deno.pid}.partial.h5ad`;
      try {
        const cellNames = r.query.obs.index;
        const opts = { overwrite: true };
        warn(await writePredictionOutput(tmp, queryPath, cellNames, r.prediction, run, opts));
        await writeSaliencyUns(tmp, s);
        await Deno.rename(tmp, predictions);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
      console.error(`predictions with uns/scNym_saliency written to ${predictions}`);
    }
    if (reportPath) {
      const opts = { modelPath, queryPath, seed, overwrite, progress, saliency: s };
      await reportForQuery(reportPath, r, opts);
      console.error(`report written to ${reportPath}`);
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await interpretCommand(Deno.args));
