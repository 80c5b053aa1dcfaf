/**
 * What every `scnym` subcommand shares: flag parsing with `--help`, one-line errors for the
 * user's mistakes (exit 2 for usage, 1 otherwise) and flag value conversion.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { ScnymError } from "../util/errors.ts";

/** A subcommand's name, help text and flags. */
export interface CommandSpec<O extends ParseArgsOptionsConfig> {
  name: string;
  help: string;
  options: O;
  /** Allowed number of positional arguments (default 0). */
  positionals?: number;
}

/** Parsed flag values, by flag name (what `runCommand` hands its body). */
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** `text` on one line: an error line must stay one line even when a message spans several. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

/**
 * Parses `args` for `spec` and runs `body`; returns the exit code. `--help` prints the help; a
 * parse error or `ScnymError` prints one line, `scnym <name>: error: <message>` (exit 2 for
 * usage errors, else the error's code); anything else is a bug and keeps its stack.
 */
export async function runCommand<O extends ParseArgsOptionsConfig>(
  spec: CommandSpec<O>,
  args: string[],
  body: (values: Values, positionals: string[]) => Promise<number | void>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...spec.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(
      `scnym ${spec.name}: error: ${oneLine((e as Error).message)} (see scnym ${spec.name} --help)`,
    );
    return 2;
  }
  const values = parsed.values as Values;
  if (values.help) {
    console.log(spec.help);
    return 0;
  }
  const want = spec.positionals ?? 0;
  if (parsed.positionals.length !== want) {
    console.error(
      `scnym ${spec.name}: error: expected ${want} positional argument(s), got ` +
        `${parsed.positionals.length} (see scnym ${spec.name} --help)`,
    );
    return 2;
  }
  try {
    return (await body(values, parsed.positionals)) ?? 0;
  } catch (e) {
    if (!(e instanceof ScnymError)) throw e;
    const hint = e.exitCode === 2 ? ` (see scnym ${spec.name} --help)` : "";
    console.error(`scnym ${spec.name}: error: ${oneLine(e.message)}${hint}`);
    return e.exitCode;
  }
}

/** Refuses an existing output file unless `overwrite` (`-`, standard output, is never refused). */
export async function refuseExisting(path: string | undefined, overwrite: boolean): Promise<void> {
  if (!path || path === "-" || overwrite) return;
  if (await Deno.lstat(path).then(() => true, () => false)) {
    throw new ScnymError(`${path} already exists; refusing to overwrite it (use --overwrite)`);
  }
}

/** A required string flag; a usage error (exit 2) naming it when absent. */
export function requireFlag(values: Values, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") throw new ScnymError(`--${name} is required`, 2);
  return v;
}

/** An optional string flag. */
export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/** An optional number flag within [min, max] (integers only with `integer`). */
export function numberFlag(
  values: Values,
  name: string,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const okInt = !opts.integer || Number.isInteger(v);
  if (
    typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(v) || !okInt ||
    v < (opts.min ?? -Infinity) || v > (opts.max ?? Infinity)
  ) {
    const range = [
      opts.integer ? "an integer" : "a number",
      opts.min !== undefined ? `>= ${opts.min}` : "",
      opts.max !== undefined ? `<= ${opts.max}` : "",
    ].filter(Boolean).join(" ");
    throw new ScnymError(`--${name} expects ${range}, got "${raw}"`, 2);
  }
  return v;
}

/** Prints warnings on stderr (always: they matter even without a terminal). */
export function warn(lines: string[]): void {
  for (const w of lines) console.error(`warning: ${w}`);
}
