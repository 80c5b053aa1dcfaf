/** File helpers shared by every writer: nothing half-written, clear errors on missing inputs. */
import { ScnymError } from "./errors.ts";
import { hostFs } from "./host_fs.ts";

/** Whether a writer may replace an existing file, and how the refusal tells the user to ask. */
export interface OverwriteOptions {
  /** Replace an existing file (false: refuse, naming the file). */
  overwrite: boolean;
  /** How to ask for `overwrite`, quoted in the refusal (default "ask for overwrite"). */
  hint?: string;
}

/** The CLI's refusal hint: its writers are asked for `overwrite` with this flag. */
export const CLI_OVERWRITE_HINT = "use --overwrite";

/**
 * Throws a `ScnymError` naming the first of `paths` that exists, unless `overwrite`. Undefined
 * paths and `-` (standard output) are never refused.
 */
export async function refuseExisting(
  paths: string | (string | undefined)[] | undefined,
  opts: OverwriteOptions,
): Promise<void> {
  if (opts.overwrite) return;
  for (const path of Array.isArray(paths) ? paths : [paths]) {
    if (!path || path === "-") continue;
    if (await hostFs().exists(path)) {
      const hint = opts.hint ?? "ask for overwrite";
      throw new ScnymError(`${path} already exists; refusing to overwrite it (${hint})`);
    }
  }
}

/** What `writeFileAtomic` writes: bytes, text, or a function that creates the file it is given. */
export type FileContent = Uint8Array | string | ((tmp: string) => Promise<void>);

/**
 * Writes `content` to `path` through a temporary file in the same directory, then renames it into
 * place, so a crash or Ctrl-C never leaves a half-written output. Refuses an existing `path`
 * unless `opts.overwrite`; on any failure the temporary file is removed and nothing is written.
 */
export async function writeFileAtomic(
  path: string,
  content: FileContent,
  opts: OverwriteOptions,
): Promise<void> {
  await refuseExisting(path, opts);
  const fs = hostFs();
  const tmp = `${path}.${processId()}.${Date.now()}.tmp`;
  try {
    if (typeof content === "function") await content(tmp);
    else await fs.writeFile(tmp, content);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    if (e instanceof ScnymError) throw e;
    throw new ScnymError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** This process's id (Deno's), 0 in a browser, which has none (temporary names stay distinct). */
function processId(): number {
  return (globalThis as { Deno?: { pid: number } }).Deno?.pid ?? 0;
}

/** Throws a `ScnymError` naming `path` (and `what` it was meant to be) unless it is a file. */
export function requireFile(path: string, what = "input file"): void {
  const st = hostFs().stat(path);
  if (!st) throw new ScnymError(`${what} not found: ${path}`);
  if (!st.isFile) throw new ScnymError(`${what} is not a regular file: ${path}`);
}
