/**
 * The few file-system operations the readers and writers need around h5wasm (does a file exist,
 * its size and first bytes; write, copy, rename, remove, patch bytes in place), behind one small
 * adapter: Deno's file system for the CLI, h5wasm's in-memory file system for the web page, whose
 * files are the bytes a user dropped and the outputs the writers make there.
 */

/** What `stat` tells about a path. */
export interface FileFacts {
  isFile: boolean;
  isDirectory: boolean;
  size: number;
}

/** An open file read and written at explicit offsets (the boolean-attribute patch uses it). */
export interface RandomAccessFile {
  /** Fills `buf` from offset `pos` (less at the end of the file); returns the bytes read. */
  read(pos: number, buf: Uint8Array): Promise<number>;
  /** Writes all of `bytes` at offset `pos`. */
  write(pos: number, bytes: Uint8Array): Promise<void>;
  close(): void;
}

/** The file-system operations the readers and writers use. */
export interface HostFs {
  /** Facts about `path`, or null when it does not exist. */
  stat(path: string): FileFacts | null;
  /** Up to `n` bytes from the start of the file `path`. */
  readHead(path: string, n: number): Uint8Array;
  /** Whether `path` exists (a dangling link counts: it is not followed). */
  exists(path: string): Promise<boolean>;
  /** Creates or replaces the file `path` with `content` (text as UTF-8). */
  writeFile(path: string, content: Uint8Array | string): Promise<void>;
  /** Copies the file `from` to `to`, the copy writable by its owner. */
  copyFile(from: string, to: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** The canonical path of the existing `path` (links resolved); throws when it is missing. */
  realPath(path: string): Promise<string>;
  /** Opens the existing file `path` for reading and writing in place. */
  open(path: string): Promise<RandomAccessFile>;
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
  exists: (path) => Deno.lstat(path).then(() => true, () => false),
  writeFile: (path, content) =>
    typeof content === "string" ? Deno.writeTextFile(path, content) : Deno.writeFile(path, content),
  async copyFile(from, to) {
    await Deno.copyFile(from, to);
    // A read-only source would make a read-only copy, which the writers then cannot extend.
    await Deno.chmod(to, 0o644).catch(() => {});
  },
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
  realPath: (path) => Deno.realPath(path),
  async open(path) {
    const f = await Deno.open(path, { read: true, write: true });
    return {
      async read(pos, buf) {
        await f.seek(pos, Deno.SeekMode.Start);
        let got = 0;
        while (got < buf.length) {
          const r = await f.read(buf.subarray(got));
          if (r === null) break;
          got += r;
        }
        return got;
      },
      async write(pos, bytes) {
        await f.seek(pos, Deno.SeekMode.Start);
        for (let done = 0; done < bytes.length;) done += await f.write(bytes.subarray(done));
      },
      close: () => f.close(),
    };
  },
};

let current: HostFs = denoFs;

/** The file system in use (Deno's unless `useHostFs` replaced it). */
export function hostFs(): HostFs {
  return current;
}

/** Replaces the file system the readers and writers use (the web page installs a `MemoryFs`). */
export function useHostFs(fs: HostFs): void {
  current = fs;
}

/** The part of Emscripten's `FS` object (h5wasm exports it as `Module.FS`) that `MemoryFs` uses. */
export interface EmscriptenFs {
  writeFile(path: string, data: Uint8Array | string): void;
  readFile(path: string): Uint8Array;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  lstat(path: string): { mode: number; size: number };
  stat(path: string): { mode: number; size: number };
  isFile(mode: number): boolean;
  isDir(mode: number): boolean;
  lookupPath(path: string, opts: { follow: boolean }): { path: string };
  open(path: string, flags: string): unknown;
  close(stream: unknown): void;
  read(stream: unknown, buf: Uint8Array, offset: number, length: number, pos: number): number;
  write(stream: unknown, buf: Uint8Array, offset: number, length: number, pos: number): number;
}

/** Emscripten's errno numbers (WASI's) for the failures a user can cause, as `strerror` says them. */
const ERRNO_TEXT: Record<number, string> = {
  2: "permission denied",
  20: "file exists",
  28: "invalid argument",
  31: "is a directory",
  44: "no such file or directory",
  51: "no space left on device",
  54: "not a directory",
  55: "directory not empty",
};

/**
 * An Emscripten failure (an `ErrnoError`, which is not an `Error`) as an `Error` saying what was
 * being done and why it failed, as Deno's errors do.
 */
function fsError(e: unknown, what: string): Error {
  if (e instanceof Error) return new Error(`${what}: ${e.message}`, { cause: e });
  const errno = (e as { errno?: number } | null)?.errno;
  const why = errno === undefined
    ? JSON.stringify(e)
    : ERRNO_TEXT[errno] ?? `file system error ${errno}`;
  return new Error(`${what}: ${why}`, { cause: e });
}

/**
 * The web page's files, held in h5wasm's in-memory file system, so h5wasm and these checks see
 * the same bytes: the files a user dropped, and the outputs the writers make next to them.
 */
export class MemoryFs implements HostFs {
  constructor(readonly fs: EmscriptenFs) {}

  stat(path: string): FileFacts | null {
    try {
      const st = this.fs.stat(path);
      return {
        isFile: this.fs.isFile(st.mode),
        isDirectory: this.fs.isDir(st.mode),
        size: st.size,
      };
    } catch {
      return null;
    }
  }

  readHead(path: string, n: number): Uint8Array {
    const s = this.#sync(`cannot open ${path}`, () => this.fs.open(path, "r"));
    try {
      const buf = new Uint8Array(n);
      return buf.subarray(
        0,
        this.#sync(`cannot read ${path}`, () => this.fs.read(s, buf, 0, n, 0)),
      );
    } finally {
      this.fs.close(s);
    }
  }

  exists(path: string): Promise<boolean> {
    try {
      this.fs.lstat(path);
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  }

  writeFile(path: string, content: Uint8Array | string): Promise<void> {
    return this.#do(`cannot write ${path}`, () => this.fs.writeFile(path, content));
  }

  copyFile(from: string, to: string): Promise<void> {
    return this.#do(
      `cannot copy ${from} to ${to}`,
      () => this.fs.writeFile(to, this.fs.readFile(from)),
    );
  }

  rename(from: string, to: string): Promise<void> {
    return this.#do(`cannot rename ${from} to ${to}`, () => this.fs.rename(from, to));
  }

  remove(path: string): Promise<void> {
    return this.#do(`cannot remove ${path}`, () => this.fs.unlink(path));
  }

  realPath(path: string): Promise<string> {
    return this.#do(
      `cannot resolve ${path}`,
      () => this.fs.lookupPath(path, { follow: true }).path,
    );
  }

  open(path: string): Promise<RandomAccessFile> {
    const fs = this.fs;
    return this.#do(`cannot open ${path}`, () => {
      const s = fs.open(path, "r+");
      return {
        read: (pos, buf) =>
          this.#do(`cannot read ${path}`, () => fs.read(s, buf, 0, buf.length, pos)),
        write: (pos, bytes) =>
          this.#do(`cannot write ${path}`, () => void fs.write(s, bytes, 0, bytes.length, pos)),
        close: () => fs.close(s),
      };
    });
  }

  /** Runs `fn`; a failure is thrown as an `Error` starting with `what`. */
  #sync<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw fsError(e, what);
    }
  }

  /** Runs `fn`; a failure becomes a promise rejected with an `Error` starting with `what`. */
  #do<T>(what: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(fsError(e, what));
    }
  }
}
