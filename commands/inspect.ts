/**
 * `scnym inspect FILE [--json]`: describes an `.h5ad`, 10x `.h5` or 10x mtx folder before
 * training (shape, storage, what each matrix holds, obs columns, gene-name style), or a model
 * file written by `scnym train` (what it was trained on, how the training ended).
 */
import { formatInspect, inspectFile } from "../io/inspect.ts";
import { isModelFile, loadModel, type ModelHeader } from "../scnym/model_file.ts";
import { earlyModelWarning, runCommand, warn } from "./common.ts";

const HELP = `usage: scnym inspect FILE [--json]

Describes FILE (an AnnData .h5ad, a 10x Genomics .h5, or a 10x MatrixMarket folder):
shape, dense/sparse storage and nnz, whether X, raw/X and each layer hold raw counts,
log-normalised or scaled values, the obs columns (with value counts for categoricals),
and the gene-name style (symbols / Ensembl IDs).

A model file from \`scnym train\` is described too: genes, classes, configuration, and how its
training ended (epochs, the epoch kept, a warning when it was interrupted or stopped early).

options:
  --json    print the report as JSON (for scripts)
  -h, --help`;

const OPTIONS = { json: { type: "boolean" } } as const;

/** The facts of a model header worth a line each (the tensors and the history are left out). */
function describeModel(path: string, h: ModelHeader): Record<string, unknown> {
  const { tensors: _, training, ...rest } = h;
  const { history, ...facts } = training;
  return {
    file: path,
    ...rest,
    genes: { count: h.genes.length, examples: h.genes.slice(0, 5) },
    training: { ...facts, epochsRecorded: Array.isArray(history) ? history.length : 0 },
  };
}

function formatModel(path: string, h: ModelHeader): string {
  const t = h.training;
  const best = typeof t.bestEpoch === "number" && t.bestEpoch >= 0 ? t.bestEpoch + 1 : "none";
  const ending = t.interrupted ? "interrupted" : t.stoppedEarly ? "early stop" : "all epochs";
  return [
    `${path}: scNym model (scnym-webgpu ${h.toolVersion}, ${h.createdAt})`,
    `genes: ${h.genes.length} (e.g. ${h.genes.slice(0, 5).join(", ")})`,
    `classes (${h.classes.length}): ${h.classes.join(", ")}`,
    `domains of the adversary: ${h.domains.length ? h.domains.join(", ") : "none"}`,
    `config: ${h.config.name}, seed ${h.seed}, normalisation ${h.normalisation}`,
    `training: ${t.epochsRun ?? "?"} of ${h.config.train.epochs} epochs (${ending}), ` +
    `kept epoch ${best}`,
  ].join("\n");
}

/** Runs `scnym inspect` with `args` (after the subcommand); returns the process exit code. */
export function inspectCommand(args: string[]): Promise<number> {
  const spec = { name: "inspect", help: HELP, options: OPTIONS, positionals: 1 };
  return runCommand(spec, args, async (v, [path]) => {
    if (isModelFile(path)) {
      const { header } = await loadModel(path);
      const early = earlyModelWarning(path, header);
      if (early) warn([early]);
      console.log(
        v.json ? JSON.stringify(describeModel(path, header), null, 2) : formatModel(path, header),
      );
      return 0;
    }
    const report = await inspectFile(path);
    console.log(v.json ? JSON.stringify(report, null, 2) : formatInspect(report));
    return 0;
  });
}

if (import.meta.main) Deno.exit(await inspectCommand(Deno.args));
