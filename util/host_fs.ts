/**
 * The few file-system facts the readers need before h5wasm opens a file (does it exist, its size,
 * its first bytes), behind one small adapter: Deno's file system for the CLI, an in-memory one for
 * the web page, whose files are the bytes a user dropped (h5wasm reads them from its own in-memory
 * file system under the same names).
 */

/** What `stat` tells about a path. */
export interface FileFacts {
  isFile: boolean;
  isDirectory: boolean;
  size: number;
}

/** The file-system operations the readers use. */
export interface HostFs {
  /** Facts about `path`, or null when it does not exist. */
  stat(path: string): FileFacts | null;
  /** Up to `n` bytes from the start of the file `path`. */
  readHead(path: string, n: number): Uint8Array;
}

/** Deno's file system (the CLI's). */
const denoFs: HostFs = {
  stat(path) {
    try {
      const st = Deno.statSync(path);
      return { isFile: st.isFile, isDirectory: st.isDirectory, size: st.size };
    } catch {
      return null;
    }
  },
  readHead(path, n) {
    const f = Deno.openSync(path, { read: true });
    try {
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = f.readSync(buf.subarray(got));
        if (r === null || r === 0) break;
        got += r;
      }
      return buf.subarray(0, got);
    } finally {
      f.close();
    }
  },
};

let current: HostFs = denoFs;

/** The file system in use (Deno's unless `useHostFs` replaced it). */
export function hostFs(): HostFs {
  return current;
}

/** Replaces the file system the readers use (the web page installs a `MemoryFs`). */
export function useHostFs(fs: HostFs): void {
  current = fs;
}

/** Files held in memory by name: the web page's dropped files. */
export class MemoryFs implements HostFs {
  readonly files = new Map<string, Uint8Array>();

  stat(path: string): FileFacts | null {
    const bytes = this.files.get(path);
    return bytes ? { isFile: true, isDirectory: false, size: bytes.length } : null;
  }

  readHead(path: string, n: number): Uint8Array {
    const bytes = this.files.get(path);
    if (!bytes) throw new Error(`no such file: ${path}`);
    return bytes.subarray(0, n);
  }
}
