/**
 * `scnym predict`: labels the cells of a query with a trained model. The model's genes are looked
 * up in the query (missing ones zero-filled, extras dropped) with a report, and the query is
 * normalised as the training data was. The query is streamed in row chunks and the outputs
 * written as they come (scnym/predict_stream.ts), so memory does not grow with the cells;
 * `--shard K/N` labels one of N consecutive row ranges (merge with `scnym merge-predictions`).
 */
import { alignmentReport } from "../data/align.ts";
import { type Csr, vstack } from "../data/csr.ts";
import { cellText, requireObsColumn } from "../io/anndata.ts";
import { interpretCells } from "../scnym/interpret.ts";
import { modelDigest, shardInfo } from "../scnym/merge.ts";
import { isTablePath as isTable, streamPredictionOutput } from "../scnym/outputs.ts";
import { type CellPredictions, concatPredictions } from "../scnym/predict.ts";
import { parseShard, StreamingPrediction } from "../scnym/predict_stream.ts";
import { ScnymError } from "../util/errors.ts";
import { CLI_OVERWRITE_HINT, refuseExisting, writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { VERSION } from "../version.ts";
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
import { reportForRun } from "./shared.ts";

const HELP = `usage: scnym predict --model MODEL --query QUERY --out OUT [options]

Labels every cell of QUERY (.h5ad, 10x .h5 or 10x mtx folder) with a model from \`scnym train\`.

  --model FILE             model file written by scnym train
  --query FILE             cells to label
  --out FILE               .h5ad: a copy of the query with obs/scNym, obs/scNym_confidence,
                           obsm/X_scnym, obsm/scNym_probabilities; .csv/.tsv: a table
  --embedding none|float32 store the 256-d embedding in obsm/X_scnym (default float32, 1 GB
                           per million cells) or not
  --shard K/N              label only rows [K*n/N, (K+1)*n/N) of the n cells (K = 0..N-1) and
                           write a part file; join the parts with scnym merge-predictions
  --matrix NAME            matrix of the query: X (default), raw, or a layer name
  --query-labels CSV       labels table for 10x inputs (barcode column first)
  --unknown-threshold P    label cells below confidence P "Unknown" (default: the model's)
  --min-gene-fraction F    refuse when fewer than F of the model's genes are found (default 0.8)
  --ignore-case            match gene names case-insensitively
  --strip-ensembl-version  match ENSG00000141510.12 to ENSG00000141510
  --make-unique            make duplicate gene names unique instead of failing
  --report FILE.html       HTML report (UMAP, confidence, and accuracy with --truth); keeps
                           every cell in memory (the UMAP needs them), so not for atlases
  --truth COL              obs column with known labels, for the report's evaluation
  --interpret              add to the report the genes that drive each class (guided backprop;
                           see scnym interpret)
  --domains COL            obs column of domains, for the report's mixing entropy
  --seed N                 seed of the report's UMAP (default: the model's)
  --overwrite              replace existing output files
  --quiet                  no progress on stderr

examples:
  scnym predict --model kang.scnym --query stim.h5ad --out stim_pred.h5ad
  scnym predict --model kang.scnym --query atlas.h5ad --shard 2/8 --out part_2.h5ad`;

const OPTIONS = {
  model: { type: "string" },
  query: { type: "string" },
  out: { type: "string" },
  matrix: { type: "string" },
  "query-labels": { type: "string" },
  "unknown-threshold": { type: "string" },
  ...QUERY_ALIGN_OPTIONS,
  report: { type: "string" },
  interpret: { type: "boolean" },
  truth: { type: "string" },
  domains: { type: "string" },
  seed: { type: "string" },
  embedding: { type: "string" },
  shard: { type: "string" },
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
    const shardText = stringFlag(v, "shard");
    const shard = shardText === undefined ? undefined : parseShard(shardText);
    const embedding = stringFlag(v, "embedding") ?? "float32";
    if (embedding !== "none" && embedding !== "float32") {
      throw new ScnymError(
        `--embedding expects none or float32, got "${embedding}" (float16: h5wasm cannot ` +
          "write half floats)",
        2,
      );
    }
    if (v.interpret && !reportPath) {
      throw new ScnymError("--interpret adds a section to the report: give --report too", 2);
    }
    if (shard && reportPath) {
      throw new ScnymError("--report needs every cell: report on the merged predictions", 2);
    }
    await refuseExisting([out, reportPath, shard && `${out}.shard.json`], {
      overwrite,
      hint: CLI_OVERWRITE_HINT,
    });
    const progress = new Progress({ quiet: Boolean(v.quiet) });
    const job = await StreamingPrediction.open({
      model: modelPath,
      query: queryPath,
      matrix: stringFlag(v, "matrix"),
      queryLabels: stringFlag(v, "query-labels"),
      unknownThreshold: numberFlag(v, "unknown-threshold", { min: 0, max: 1 }),
      ...queryAlignFlags(v),
      shard,
      progress,
    });
    const { header } = job.loaded;
    const { alignment, rt } = job;
    const early = earlyModelWarning(modelPath, header);
    warn(early ? [early, ...job.warnings] : job.warnings);
    console.error(alignmentReport(alignment));
    const run = {
      tool: "scnym-webgpu",
      version: VERSION,
      model: modelPath,
      modelDigest: await modelDigest(modelPath),
      modelSeed: header.seed,
      config: JSON.stringify(header.config),
      normalisation: job.normalisation,
      genesFound: alignment.found,
      genesInModel: alignment.total,
      unknownThreshold: job.threshold ?? "none",
    };
    const info = shard && shardInfo(shard, job.rows, job.totalCells, queryPath);
    // Ctrl-C stops between chunks; the temporary output is removed and nothing is renamed.
    const stop = new AbortController();
    const onInt = () => stop.abort();
    Deno.addSignalListener("SIGINT", onInt);
    // The report needs every cell: only then are the chunks kept.
    const kept: { p: CellPredictions[]; X: Csr[] } = { p: [], X: [] };
    let seconds = 0;
    try {
      warn(
        await streamPredictionOutput(out, {
          classes: header.classes,
          cellNames: job.cellNames,
          source: shard || isTable(out) ? undefined : queryPath,
          embeddingDim: embedding === "none" ? 0 : job.loaded.model.shape.hidden,
          novelty: job.loaded.calibration.novelty !== null,
          run,
          uns: info ? { scNym_shard: info } : undefined,
          overwrite,
        }, async (sink) => {
          seconds = await job.run(async (first, p, X) => {
            await sink(first, p);
            if (reportPath) [kept.p.push(p), kept.X.push(X)];
          }, stop.signal);
        }),
      );
      if (info && isTable(out)) {
        const sidecar = JSON.stringify({ ...info, run }, null, 1) + "\n";
        await writeFileAtomic(`${out}.shard.json`, sidecar, { overwrite });
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
      job.close();
    }
    const n = job.cellNames.length;
    console.error(
      `predictions for ${n} cells written to ${out} (${seconds.toFixed(1)} s, ` +
        `${(n / Math.max(seconds, 1e-9)).toFixed(0)} cells/s)`,
    );

    if (reportPath) {
      const col = (key: string | undefined) => {
        if (!key) return undefined;
        const c = requireObsColumn(job.obs, key, queryPath);
        return job.obs.index.map((_, i) => cellText(c, i));
      };
      const truth = col(stringFlag(v, "truth"));
      const seed = numberFlag(v, "seed", { min: 0, integer: true }) ?? header.seed;
      const X = vstack(...kept.X);
      const pred = concatPredictions(kept.p);
      await reportForRun(reportPath, {
        loaded: {
          set: {
            X,
            genes: header.genes,
            labels: new Array(X.nRows).fill(null),
            isTarget: new Array(X.nRows).fill(true),
            domains: col(stringFlag(v, "domains")),
            normalisation: job.normalisation,
          },
          cellNames: job.cellNames,
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
        saliency: v.interpret
          ? await interpretCells(rt, job.loaded.model, X, pred, header.genes, {
            method: "guided",
            seed,
            progress,
          })
          : undefined,
      });
      console.error(`report written to ${reportPath}`);
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await predictCommand(Deno.args));
