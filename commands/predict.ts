/**
 * `scnym predict`: labels the cells of a query with a trained model. The model's genes are looked
 * up in the query (missing ones zero-filled, extras dropped) with a report, and the query is
 * normalised as the training data was.
 */
import { alignmentReport } from "../data/align.ts";
import { cellText, requireObsColumn } from "../io/anndata.ts";
import { predictFile } from "../scnym/api.ts";
import { writePredictionOutput } from "../scnym/outputs.ts";
import { CLI_OVERWRITE_HINT, refuseExisting } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
import {
  earlyModelWarning,
  numberFlag,
  requireFlag,
  runCommand,
  stringFlag,
  warn,
} from "./common.ts";
import { reportForRun } from "./shared.ts";

const HELP = `usage: scnym predict --model MODEL --query QUERY --out OUT [options]

Labels every cell of QUERY (.h5ad, 10x .h5 or 10x mtx folder) with a model from \`scnym train\`.

  --model FILE             model file written by scnym train
  --query FILE             cells to label
  --out FILE               .h5ad: a copy of the query with obs/scNym, obs/scNym_confidence,
                           obsm/X_scnym, uns/scNym_probabilities; .csv/.tsv: a table
  --matrix NAME            matrix of the query: X (default), raw, or a layer name
  --query-labels CSV       labels table for 10x inputs (barcode column first)
  --unknown-threshold P    label cells below confidence P "Unknown" (default: the model's)
  --min-gene-fraction F    refuse when fewer than F of the model's genes are found (default 0.8)
  --ignore-case            match gene names case-insensitively
  --strip-ensembl-version  match ENSG00000141510.12 to ENSG00000141510
  --make-unique            make duplicate gene names unique instead of failing
  --report FILE.html       HTML report (UMAP, confidence, and accuracy with --truth)
  --truth COL              obs column with known labels, for the report's evaluation
  --domains COL            obs column of domains, for the report's mixing entropy
  --seed N                 seed of the report's UMAP (default: the model's)
  --overwrite              replace existing output files
  --quiet                  no progress on stderr

example:
  scnym predict --model kang.scnym --query stim.h5ad --out stim_pred.h5ad`;

const OPTIONS = {
  model: { type: "string" },
  query: { type: "string" },
  out: { type: "string" },
  matrix: { type: "string" },
  "query-labels": { type: "string" },
  "unknown-threshold": { type: "string" },
  "min-gene-fraction": { type: "string" },
  "ignore-case": { type: "boolean" },
  "strip-ensembl-version": { type: "boolean" },
  "make-unique": { type: "boolean" },
  report: { type: "string" },
  truth: { type: "string" },
  domains: { type: "string" },
  seed: { type: "string" },
  overwrite: { type: "boolean" },
  quiet: { type: "boolean" },
} as const;

/** Runs `scnym predict`; returns the exit code. */
export function predictCommand(args: string[]): Promise<number> {
  return runCommand({ name: "predict", help: HELP, options: OPTIONS }, args, async (v) => {
    const modelPath = requireFlag(v, "model");
    const queryPath = requireFlag(v, "query");
    const out = requireFlag(v, "out");
    const overwrite = Boolean(v.overwrite);
    const reportPath = stringFlag(v, "report");
    await refuseExisting([out, reportPath], { overwrite, hint: CLI_OVERWRITE_HINT });
    const progress = new Progress({ quiet: Boolean(v.quiet) });
    const r = await predictFile({
      model: modelPath,
      query: queryPath,
      matrix: stringFlag(v, "matrix"),
      queryLabels: stringFlag(v, "query-labels"),
      unknownThreshold: numberFlag(v, "unknown-threshold", { min: 0, max: 1 }),
      minFraction: numberFlag(v, "min-gene-fraction", { min: 0, max: 1 }) ?? 0.8,
      ignoreCase: Boolean(v["ignore-case"]),
      stripEnsemblVersion: Boolean(v["strip-ensembl-version"]),
      makeUnique: Boolean(v["make-unique"]),
      progress,
    });
    const { header } = r.loaded;
    const { alignment, prediction: pred, query: q, X, rt } = r;
    const early = earlyModelWarning(modelPath, header);
    warn(early ? [early, ...r.warnings] : r.warnings);
    console.error(alignmentReport(alignment));
    const run = {
      tool: "scnym-webgpu",
      version: VERSION,
      model: modelPath,
      modelSeed: header.seed,
      config: JSON.stringify(header.config),
      normalisation: r.normalisation,
      genesFound: alignment.found,
      genesInModel: alignment.total,
      unknownThreshold: r.threshold ?? "none",
    };
    warn(await writePredictionOutput(out, queryPath, q.obs.index, pred, run, { overwrite }));
    console.error(`predictions for ${q.obs.index.length} cells written to ${out}`);

    if (reportPath) {
      const col = (key: string | undefined) => {
        if (!key) return undefined;
        const c = requireObsColumn(q.obs, key, queryPath);
        return q.obs.index.map((_, i) => cellText(c, i));
      };
      const truth = col(stringFlag(v, "truth"));
      const seed = numberFlag(v, "seed", { min: 0, integer: true }) ?? header.seed;
      await reportForRun(reportPath, {
        loaded: {
          set: {
            X,
            genes: header.genes,
            labels: new Array(X.nRows).fill(null),
            isTarget: new Array(X.nRows).fill(true),
            domains: col(stringFlag(v, "domains")),
            normalisation: r.normalisation,
          },
          cellNames: q.obs.index,
          truth: truth ? truth.map((t) => t === "" ? null : t) : new Array(X.nRows).fill(null),
          origin: new Array(X.nRows).fill("query"),
          warnings: [],
        },
        prediction: pred,
        trainingLabels: header.classes,
        facts: {
          "tool version": VERSION,
          model: modelPath,
          "model seed": header.seed,
          config: header.config.name,
          query: queryPath,
          genes: `${alignment.found} of ${alignment.total} model genes found`,
          adapter: rt.gpu.description,
        },
        seed,
        overwrite,
        progress,
      });
      console.error(`report written to ${reportPath}`);
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await predictCommand(Deno.args));
