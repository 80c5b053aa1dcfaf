/** File helpers shared by every writer: nothing half-written, clear errors on missing inputs. */
import { ScnymError } from "./errors.ts";

/**
 * Writes `data` to `path` through a temporary file in the same directory, then renames it into
 * place, so a crash or Ctrl-C never leaves a half-written output.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new ScnymError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Throws a `ScnymError` naming `path` (and `what` it was meant to be) unless it is a file. */
export function requireFile(path: string, what = "input file"): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    throw new ScnymError(`${what} not found: ${path}`);
  }
  if (!st.isFile) throw new ScnymError(`${what} is not a regular file: ${path}`);
}
