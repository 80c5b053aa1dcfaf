/**
 * `MemoryFs` (util/host_fs.ts), the web page's file system, on the in-memory file system of
 * h5wasm's browser build (the one the page's worker uses; the Node build's writes real files):
 * the semantics the readers and writers rely on, as Deno's file system gives them to the CLI,
 * and errors that say which file and why, not Emscripten's bare errno objects.
 */
import assert from "node:assert/strict";
import h5wasm from "h5wasm";
import { writeFileAtomic } from "../util/fs.ts";
import { type EmscriptenFs, hostFs, MemoryFs, useHostFs } from "../util/host_fs.ts";

type TestFs = EmscriptenFs & {
  mkdir(path: string): void;
  readdir(path: string): string[];
  symlink(target: string, path: string): void;
};

const FS = (await h5wasm.ready as unknown as { FS: TestFs }).FS;
const mem = new MemoryFs(FS);
const bytes = (...b: number[]) => new Uint8Array(b);
let dirs = 0;

/** A fresh, empty directory in the in-memory file system. */
function freshDir(): string {
  const d = `/host_fs_test_${dirs++}`;
  FS.mkdir(d);
  return d;
}

/** The files in `dir` (to show that nothing was left behind). */
const listing = (dir: string) => FS.readdir(dir).filter((n) => n !== "." && n !== "..").sort();

Deno.test("MemoryFs: write, stat, exists, readHead", async () => {
  const d = freshDir();
  await mem.writeFile(`${d}/a.bin`, bytes(1, 2, 3, 4, 5));
  await mem.writeFile(`${d}/t.txt`, "héllo");
  assert.deepEqual(mem.stat(`${d}/a.bin`), { isFile: true, isDirectory: false, size: 5 });
  // Text is written as UTF-8: é is two bytes.
  assert.equal(mem.stat(`${d}/t.txt`)!.size, 6);
  const dir = mem.stat(d)!;
  assert.ok(dir.isDirectory && !dir.isFile);
  assert.equal(mem.stat(`${d}/missing`), null);
  assert.equal(await mem.exists(`${d}/a.bin`), true);
  assert.equal(await mem.exists(`${d}/missing`), false);
  assert.deepEqual(mem.readHead(`${d}/a.bin`, 3), bytes(1, 2, 3));
  // Past the end: only what is there.
  assert.deepEqual(mem.readHead(`${d}/a.bin`, 100), bytes(1, 2, 3, 4, 5));
  // Writing again replaces the whole file.
  await mem.writeFile(`${d}/a.bin`, bytes(9));
  assert.deepEqual(mem.readHead(`${d}/a.bin`, 100), bytes(9));
});

Deno.test("MemoryFs: rename replaces the target, copy is independent, remove", async () => {
  const d = freshDir();
  await mem.writeFile(`${d}/old`, bytes(1, 1));
  await mem.writeFile(`${d}/new.tmp`, bytes(2, 2, 2));
  // writeFileAtomic's last step: the temporary file replaces the existing output.
  await mem.rename(`${d}/new.tmp`, `${d}/old`);
  assert.deepEqual(listing(d), ["old"]);
  assert.deepEqual(mem.readHead(`${d}/old`, 10), bytes(2, 2, 2));

  // The predictions writer copies its input, then extends the copy: the input must not change.
  await mem.copyFile(`${d}/old`, `${d}/copy`);
  const f = await mem.open(`${d}/copy`);
  await f.write(0, bytes(7));
  f.close();
  assert.deepEqual(mem.readHead(`${d}/copy`, 10), bytes(7, 2, 2));
  assert.deepEqual(mem.readHead(`${d}/old`, 10), bytes(2, 2, 2));
  // A copy onto an existing file replaces it.
  await mem.copyFile(`${d}/old`, `${d}/copy`);
  assert.deepEqual(mem.readHead(`${d}/copy`, 10), bytes(2, 2, 2));

  await mem.remove(`${d}/copy`);
  assert.deepEqual(listing(d), ["old"]);
});

Deno.test("MemoryFs: open reads and patches bytes in place at offsets", async () => {
  const d = freshDir();
  await mem.writeFile(`${d}/f`, bytes(0, 1, 2, 3, 4, 5, 6, 7));
  const f = await mem.open(`${d}/f`);
  try {
    const buf = new Uint8Array(4);
    assert.equal(await f.read(2, buf), 4);
    assert.deepEqual(buf, bytes(2, 3, 4, 5));
    // A short read at the end, as the boolean-attribute patch's block loop expects.
    assert.equal(await f.read(6, buf), 2);
    assert.deepEqual(buf.subarray(0, 2), bytes(6, 7));
    await f.write(3, bytes(30, 40));
  } finally {
    f.close();
  }
  assert.deepEqual(mem.readHead(`${d}/f`, 100), bytes(0, 1, 2, 30, 40, 5, 6, 7));
});

Deno.test("MemoryFs: realPath is canonical (samePath compares it), links resolved", async () => {
  const d = freshDir();
  await mem.writeFile(`${d}/x.h5ad`, "x");
  FS.symlink(`${d}/x.h5ad`, `${d}/link.h5ad`);
  assert.equal(await mem.realPath(`${d}/./x.h5ad`), `${d}/x.h5ad`);
  assert.equal(await mem.realPath(`${d}/..${d}/x.h5ad`), `${d}/x.h5ad`);
  assert.equal(await mem.realPath(`/${d}//x.h5ad`), `${d}/x.h5ad`);
  assert.equal(await mem.realPath(`${d}/link.h5ad`), `${d}/x.h5ad`);
  // exists does not follow links: a dangling one still counts, as with Deno.lstat.
  await mem.remove(`${d}/x.h5ad`);
  assert.equal(await mem.exists(`${d}/link.h5ad`), true);
  assert.equal(mem.stat(`${d}/link.h5ad`), null);
});

Deno.test("MemoryFs: a missing file is an Error naming it and saying why", async () => {
  const d = freshDir();
  const missing = `${d}/missing.h5ad`;
  const why = (what: string) => (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${JSON.stringify(e)}`);
    assert.equal(e.message, `${what}: no such file or directory`);
    return true;
  };
  await assert.rejects(mem.remove(missing), why(`cannot remove ${missing}`));
  await assert.rejects(
    mem.rename(missing, `${d}/b`),
    why(`cannot rename ${missing} to ${d}/b`),
  );
  await assert.rejects(
    mem.copyFile(missing, `${d}/b`),
    why(`cannot copy ${missing} to ${d}/b`),
  );
  await assert.rejects(mem.realPath(missing), why(`cannot resolve ${missing}`));
  await assert.rejects(mem.open(missing), why(`cannot open ${missing}`));
  await assert.rejects(
    mem.writeFile(`${d}/no_dir/f`, "x"),
    why(`cannot write ${d}/no_dir/f`),
  );
  assert.throws(() => mem.readHead(missing, 8), why(`cannot open ${missing}`));
  // Removing a directory is refused (the writers only remove their temporary files).
  await assert.rejects(mem.remove(d), /^Error: cannot remove .*: is a directory$/);
  assert.deepEqual(listing(d), [], "a failed call leaves nothing behind");
});

Deno.test("MemoryFs: writeFileAtomic through it refuses, replaces, leaves no temporary", async () => {
  const d = freshDir();
  const before = hostFs();
  useHostFs(mem);
  try {
    const out = `${d}/out.csv`;
    await writeFileAtomic(out, "a\n", { overwrite: false });
    await assert.rejects(
      writeFileAtomic(out, "b\n", { overwrite: false }),
      /already exists; refusing to overwrite it/,
    );
    await writeFileAtomic(out, "c\n", { overwrite: true });
    assert.deepEqual(new TextDecoder().decode(mem.readHead(out, 10)), "c\n");
    // A writer that fails after creating its temporary file: the output is untouched.
    await assert.rejects(
      writeFileAtomic(out, async (tmp) => {
        await mem.writeFile(tmp, "half");
        throw new Error("disk full");
      }, { overwrite: true }),
      /cannot write .*out\.csv: disk full/,
    );
    assert.deepEqual(listing(d), ["out.csv"]);
    assert.deepEqual(new TextDecoder().decode(mem.readHead(out, 10)), "c\n");
  } finally {
    useHostFs(before);
  }
});
