/**
 * `scnym merge-predictions`: joins the part files of `scnym predict --shard K/N` (one per job of
 * a Slurm array or a Kubernetes Indexed Job) into the output an unsharded run would have written.
 */
import { mergePredictions } from "../scnym/merge.ts";
import { CLI_OVERWRITE_HINT, refuseExisting } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { requireFlag, runCommand, stringFlag } from "./common.ts";

const HELP = `usage: scnym merge-predictions PART... --out OUT [options]

Joins the parts written by \`scnym predict --shard K/N\`, in shard order (whatever order they are
named in), after checking they are the N shards of one run of one model.

  --out FILE     .h5ad parts: a copy of the query with the predictions (or a .csv/.tsv table);
                 .csv/.tsv parts: one table (the first header, then every part's rows)
  --query FILE   the query to copy for an .h5ad output (default: the path the parts record)
  --overwrite    replace an existing output
  --quiet        no progress on stderr

example:
  scnym merge-predictions part_*.h5ad --out atlas_pred.h5ad`;

const OPTIONS = {
  out: { type: "string" },
  query: { type: "string" },
  overwrite: { type: "boolean" },
  quiet: { type: "boolean" },
} as const;

/** Runs `scnym merge-predictions`; returns the exit code. */
export function mergePredictionsCommand(args: string[]): Promise<number> {
  const spec = { name: "merge-predictions", help: HELP, options: OPTIONS, positionals: -1 };
  return runCommand(spec, args, async (v, parts) => {
    const out = requireFlag(v, "out");
    const overwrite = Boolean(v.overwrite);
    await refuseExisting(out, { overwrite, hint: CLI_OVERWRITE_HINT });
    const cells = await mergePredictions(parts, out, {
      query: stringFlag(v, "query"),
      overwrite,
      progress: new Progress({ quiet: Boolean(v.quiet) }),
    });
    console.error(`${parts.length} parts, ${cells} cells merged into ${out}`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await mergePredictionsCommand(Deno.args));
