/**
 * `scnym inspect FILE [--json]`: describes an `.h5ad`, 10x `.h5` or 10x mtx folder before
 * training (shape, storage, what each matrix holds, obs columns, gene-name style).
 */
import { parseArgs } from "node:util";
import { formatInspect, inspectFile } from "../io/inspect.ts";
import { ScnymError } from "../util/errors.ts";

const HELP = `usage: scnym inspect FILE [--json]

Describes FILE (an AnnData .h5ad, a 10x Genomics .h5, or a 10x MatrixMarket folder):
shape, dense/sparse storage and nnz, whether X, raw/X and each layer hold raw counts,
log-normalised or scaled values, the obs columns (with value counts for categoricals),
and the gene-name style (symbols / Ensembl IDs).

options:
  --json    print the report as JSON (for scripts)
  -h, --help`;

/** Runs `scnym inspect` with `args` (after the subcommand); returns the process exit code. */
export async function inspectCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    });
  } catch (e) {
    console.error(`scnym inspect: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(HELP);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`scnym inspect: expected one FILE, got ${parsed.positionals.length}\n\n${HELP}`);
    return 2;
  }
  try {
    const report = await inspectFile(parsed.positionals[0]);
    console.log(parsed.values.json ? JSON.stringify(report, null, 2) : formatInspect(report));
    return 0;
  } catch (e) {
    if (!(e instanceof ScnymError)) throw e;
    console.error(`error: ${e.message}`);
    return e.exitCode;
  }
}

if (import.meta.main) Deno.exit(await inspectCommand(Deno.args));
