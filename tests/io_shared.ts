/**
 * Shared by the io tests: where the real data and fixtures are, whether they (and Debian's
 * python3-anndata, for independent cross-checks) are present, and temp-dir handling.
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { havePython, missing } from "./helpers.ts";

/**
 * The read-only real datasets: `$SCNYM_DATA` when set, else `shared/data/` beside the repository
 * (where CI lays it), wherever the clone sits.
 */
export const DATA_DIR = Deno.env.get("SCNYM_DATA")?.replace(/\/?$/, "/") ??
  fromFileUrl(new URL("../../shared/data/", import.meta.url));
/** Small committed fixtures made by `tests/fixtures/make_io_fixtures.py` with real anndata. */
export const FIXTURES = fromFileUrl(new URL("./fixtures/", import.meta.url));

/** Path of a shared data file, or null (after saying so; an error under CI) when it is absent. */
export function dataFile(name: string): string | null {
  const p = DATA_DIR + name;
  try {
    Deno.statSync(p);
    return p;
  } catch {
    missing(p, "see shared/data/README.md, or point SCNYM_DATA at the folder");
    return null;
  }
}

/** True when shared/data holds all of `names`. */
export function haveData(...names: string[]): boolean {
  return names.every((n) => dataFile(n) !== null);
}

let pythonOk: boolean | null = null;

/** True when /usr/bin/python3 can import anndata (Debian: apt-get install python3-anndata). */
export function haveAnndata(): boolean {
  pythonOk ??= havePython("anndata") ||
    missing("/usr/bin/python3 with anndata", "apt-get install python3-anndata");
  return pythonOk;
}

/** Runs a python script with real anndata and parses the JSON it prints. */
export async function python(script: string): Promise<unknown> {
  const r = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`python failed:\n${err}`);
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(): Promise<[string, () => Promise<void>]> {
  const d = await Deno.makeTempDir({ prefix: "scnym_io_" });
  return [d, () => Deno.remove(d, { recursive: true })];
}

/** Files currently in `dir` (to show that a failed write left nothing behind). */
export function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}
