/**
 * What every `scnym` subcommand shares: flag parsing with `--help`, one-line errors for the
 * user's mistakes (exit 2 for usage, 1 otherwise) and flag value conversion.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { AlignOptions, MatchOptions } from "../data/align.ts";
import type { ModelHeader } from "../scnym/model_file.ts";
import { ScnymError } from "../util/errors.ts";

/** A subcommand's name, help text and flags. */
export interface CommandSpec<O extends ParseArgsOptionsConfig> {
  name: string;
  help: string;
  options: O;
  /** Allowed number of positional arguments (default 0; -1: any number). */
  positionals?: number;
}

/** Parsed flag values, by flag name (what `runCommand` hands its body). */
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** `text` on one line: an error line must stay one line even when a message spans several. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

/** Edit distance (insertions, deletions, substitutions) between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * The candidate closest to `word` by edit distance, when it is close enough to be a plausible
 * typo (at most 2 edits, or a third of the word) or `word` is its prefix; else undefined.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 0.5 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * The one-line message for a flag parsing error. An unknown option gets a suggestion from the
 * command's own options instead of the parser's advice about positionals.
 */
function parseErrorLine(
  e: Error & { code?: string },
  spec: { name: string; options: ParseArgsOptionsConfig },
): string {
  const seeHelp = `see scnym ${spec.name} --help`;
  const unknown = e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" &&
    e.message.match(/^Unknown option '([^']+)'/)?.[1];
  if (unknown) {
    const flags = [...Object.keys(spec.options), "help"].map((k) => `--${k}`);
    const guess = unknown.startsWith("--") ? closest(unknown, flags) : undefined;
    return `unknown option ${unknown}` + (guess ? `; did you mean ${guess}?` : ` (${seeHelp})`);
  }
  return `${oneLine(e.message)} (${seeHelp})`;
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
    console.error(`scnym ${spec.name}: error: ${parseErrorLine(e as Error, spec)}`);
    return 2;
  }
  const values = parsed.values as Values;
  if (values.help) {
    console.log(spec.help);
    return 0;
  }
  const want = spec.positionals ?? 0;
  if (want >= 0 && parsed.positionals.length !== want) {
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

/** The gene-name matching flags of every command that reads genes (data/align.ts `MatchOptions`). */
export const GENE_MATCH_OPTIONS = {
  "ignore-case": { type: "boolean" },
  "strip-ensembl-version": { type: "boolean" },
  "make-unique": { type: "boolean" },
} as const;

/** ... plus the coverage bound, for the commands that align a query to a model's genes. */
export const QUERY_ALIGN_OPTIONS = {
  ...GENE_MATCH_OPTIONS,
  "min-gene-fraction": { type: "string" },
} as const;

/** `GENE_MATCH_OPTIONS` as parsed. */
export function geneMatchFlags(values: Values): MatchOptions {
  return {
    ignoreCase: Boolean(values["ignore-case"]),
    stripEnsemblVersion: Boolean(values["strip-ensembl-version"]),
    makeUnique: Boolean(values["make-unique"]),
  };
}

/** `QUERY_ALIGN_OPTIONS` as parsed (no --min-gene-fraction: alignGenes' default). */
export function queryAlignFlags(values: Values): AlignOptions {
  return {
    ...geneMatchFlags(values),
    minFraction: numberFlag(values, "min-gene-fraction", { min: 0, max: 1 }),
  };
}

/** Prints warnings on stderr (always: they matter even without a terminal). */
export function warn(lines: string[]): void {
  for (const w of lines) console.error(`warning: ${w}`);
}

/**
 * A warning when a model file holds an interrupted or early model (Ctrl-C, or stopped before any
 * epoch qualified as a checkpoint), naming the epochs trained and the validation accuracy; null
 * for a model that trained to the end.
 */
export function earlyModelWarning(path: string, header: ModelHeader): string | null {
  const t = header.training;
  const bestEpoch = typeof t.bestEpoch === "number" ? t.bestEpoch : undefined;
  const interrupted = t.interrupted === true;
  if (!interrupted && bestEpoch !== -1) return null;
  const history = Array.isArray(t.history) ? t.history as { valAccuracy?: number }[] : [];
  const epochs = typeof t.epochsRun === "number" ? t.epochsRun : history.length;
  const kept = bestEpoch !== undefined && bestEpoch >= 0 ? bestEpoch : history.length - 1;
  const acc = history[kept]?.valAccuracy;
  const accText = typeof acc === "number" && Number.isFinite(acc)
    ? `validation accuracy ${(100 * acc).toFixed(1)}% (early-stopping cells, epoch ${kept + 1})`
    : "no validation accuracy recorded";
  const what = interrupted ? "an interrupted model (training was stopped)" : "an early model";
  const holds = bestEpoch === -1
    ? "no epoch qualified as a checkpoint, so it holds the last epoch's weights"
    : `it holds epoch ${kept + 1}`;
  return `${path} is ${what}: ${epochs} of ${header.config.train.epochs} epochs trained, ` +
    `${holds}; ${accText}; its labels may be poor: train to the end for a reliable model`;
}
