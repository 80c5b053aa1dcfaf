/**
 * HDF5 access through h5wasm (the Node build, which reads real paths), wrapped so a user never sees
 * an HDF5 stack dump: every failure becomes one `ScnymError` line naming the file and the field.
 *
 * Before h5wasm touches a file we check it ourselves (exists, has the HDF5 signature, is not shorter
 * than its superblock says), because HDF5's own messages for those cases are long and cryptic.
 */
import h5wasm from "h5wasm/node";
import { ScnymError } from "../util/errors.ts";
import { requireFile } from "../util/fs.ts";
import { hostFs } from "../util/host_fs.ts";

/** An open HDF5 file. */
export type H5File = InstanceType<typeof h5wasm.File>;
/** An HDF5 group (a file is one too). */
export type H5Group = InstanceType<typeof h5wasm.Group>;
/** An HDF5 dataset. */
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;
/** A numeric array as h5wasm returns it (int64 columns come back as BigInt64Array). */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

let ready: Promise<void> | null = null;

/**
 * Loads the wasm module once. HDF5 by default prints its error stack to stdout; the throwing
 * handler turns it into an exception instead, which `h5Try` condenses into one line.
 */
export function h5Ready(): Promise<void> {
  return ready ??= h5wasm.ready.then((m) => {
    (m as unknown as { activate_throwing_error_handler(): number })
      .activate_throwing_error_handler();
  });
}

/** The innermost description of an HDF5 error stack (the line that says what went wrong). */
export function condenseH5Error(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const frames = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)/g)].map((m) => m[1].trim());
  if (frames.length) return frames[frames.length - 1];
  const first = text.split("\n").find((l) => l.trim()) ?? "unknown error";
  return first.trim().slice(0, 200);
}

/** Runs `fn`, turning any h5wasm/HDF5 failure into `ScnymError("<file>: cannot read <field>: ...")`. */
export function h5Try<T>(file: string, field: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ScnymError) throw e;
    throw new ScnymError(`${file}: cannot read ${field}: ${condenseH5Error(e)}`);
  }
}

function readUint(bytes: Uint8Array, at: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[at + i];
  return v;
}

/**
 * Where the HDF5 superblock starts (0, or 512 * 2^k after a user block), or -1 if the file has
 * no signature in its first 64 KiB.
 */
function findSignature(head: Uint8Array): number {
  for (let at = 0; at + 8 <= head.length; at = at === 0 ? 512 : at * 2) {
    if (SIGNATURE.every((b, i) => head[at + i] === b)) return at;
  }
  return -1;
}

/** The HDF5 superblock version of `path` (0 for files h5py writes by default), or -1. */
export function superblockVersion(path: string): number {
  const head = hostFs().readHead(path, 65536 + 16);
  const at = findSignature(head);
  return at < 0 ? -1 : head[at + 8];
}

/**
 * Checks that `path` is a readable, complete HDF5 file, or throws a one-line `ScnymError`:
 * missing, not HDF5 (with a hint when it looks like text or gzip), or truncated (the superblock's
 * end-of-file address lies past the end of the file: an interrupted download or copy).
 */
export function checkHdf5File(path: string, what = "input file"): void {
  requireFile(path, what);
  const size = hostFs().stat(path)!.size;
  const head = hostFs().readHead(path, 65536 + 64);
  const at = findSignature(head);
  if (at < 0) {
    const hint = head.length === 0
      ? " (the file is empty)"
      : head[0] === 0x1f && head[1] === 0x8b
      ? " (it is gzip-compressed: decompress it first)"
      : "";
    throw new ScnymError(`${path}: not an HDF5 file (no HDF5 signature)${hint}`);
  }
  const version = head[at + 8];
  let sizeOfOffsets: number;
  let eofAt: number;
  if (version === 0 || version === 1) {
    sizeOfOffsets = head[at + 13];
    eofAt = at + (version === 0 ? 24 : 28) + 2 * sizeOfOffsets;
  } else if (version === 2 || version === 3) {
    sizeOfOffsets = head[at + 9];
    eofAt = at + 12 + 2 * sizeOfOffsets;
  } else {
    return; // unknown superblock version: let HDF5 decide
  }
  if (![4, 8].includes(sizeOfOffsets) || eofAt + sizeOfOffsets > head.length) {
    throw new ScnymError(`${path}: truncated or damaged HDF5 file (superblock incomplete)`);
  }
  const baseAt = eofAt - 2 * sizeOfOffsets;
  const allOnes = head.subarray(eofAt, eofAt + sizeOfOffsets).every((b) => b === 0xff);
  if (allOnes) return;
  const base = readUint(head, baseAt, sizeOfOffsets);
  const eof = base + readUint(head, eofAt, sizeOfOffsets);
  if (size < eof) {
    throw new ScnymError(
      `${path}: truncated HDF5 file: ${size} bytes, the file says ${eof} (incomplete download or copy?)`,
    );
  }
}

/**
 * Opens an HDF5 file after `checkHdf5File` (for reading) so the common failures get a clear
 * message. Mode "a" opens an existing file for writing, "w" creates/truncates one.
 */
export async function openH5(path: string, mode: "r" | "a" | "w" = "r"): Promise<H5File> {
  await h5Ready();
  if (mode !== "w") checkHdf5File(path);
  return h5Try(path, "the file", () => new h5wasm.File(path, mode));
}

/**
 * The object at `path` under `g`, or null. Walks one component at a time because HDF5 errors
 * (rather than answering "no") when a path runs through a dataset, e.g. `obs/x` in a legacy file.
 */
export function h5Get(g: H5Group, path: string): ReturnType<H5Group["get"]> {
  const parts = path.split("/").filter((p) => p);
  let node: ReturnType<H5Group["get"]> = g;
  for (const part of parts) {
    if (!(node instanceof h5wasm.Group)) return null;
    node = node.get(part);
  }
  return node;
}

/** True when `path` exists in `g` and is a group. */
export function isGroup(g: H5Group, path: string): boolean {
  return h5Get(g, path) instanceof h5wasm.Group;
}

/** True when `path` exists in `g` and is a dataset. */
export function isDataset(g: H5Group, path: string): boolean {
  return h5Get(g, path) instanceof h5wasm.Dataset;
}

function fileName(g: H5Group): string {
  return (g as H5File).filename ?? `HDF5 file ${g.file_id}`;
}

/** The dataset at `path` under `g`, or a ScnymError naming the file and path. */
export function getDataset(g: H5Group, path: string): H5Dataset {
  const d = h5Get(g, path);
  if (!(d instanceof h5wasm.Dataset)) {
    const where = g.path === "/" ? path : `${g.path}/${path}`;
    throw new ScnymError(`${fileName(g)}: expected a dataset at ${where}, found ${describe(d)}`);
  }
  return d;
}

/** The group at `path` under `g`, or a ScnymError naming the file and path. */
export function getGroup(g: H5Group, path: string): H5Group {
  const d = h5Get(g, path);
  if (!(d instanceof h5wasm.Group)) {
    const where = g.path === "/" ? path : `${g.path}/${path}`;
    throw new ScnymError(`${fileName(g)}: expected a group at ${where}, found ${describe(d)}`);
  }
  return d;
}

function describe(o: unknown): string {
  if (o === null || o === undefined) return "nothing";
  if (o instanceof h5wasm.Group) return "a group";
  if (o instanceof h5wasm.Dataset) return "a dataset";
  return "an unsupported object";
}

/** An attribute's value as JSON-compatible data (strings, numbers, booleans, arrays), or null. */
export function attr(
  obj: H5Group | H5Dataset,
  name: string,
): string | number | boolean | unknown[] | null {
  if (!obj.attrs[name]) return null;
  return obj.attrs[name].json_value as string | number | boolean | unknown[] | null;
}

/** A string attribute, or null when absent or not a string. */
export function strAttr(obj: H5Group | H5Dataset, name: string): string | null {
  const v = attr(obj, name);
  return typeof v === "string" ? v : null;
}

/** The `encoding-type` attribute anndata (>= 0.7) puts on every element, or null. */
export function encodingType(obj: H5Group | H5Dataset): string | null {
  return strAttr(obj, "encoding-type");
}

/** True for a dataset of (fixed or variable length) strings. */
export function isStringDataset(d: H5Dataset): boolean {
  return d.metadata.type === 3;
}

/** True for an h5py boolean (an enum with members FALSE=0, TRUE=1). */
export function isBoolDataset(d: H5Dataset): boolean {
  const e = d.metadata.enum_type as { members?: Record<string, number> } | undefined;
  return d.metadata.type === 8 && !!e?.members && "TRUE" in e.members && "FALSE" in e.members;
}

/** True for an integer or float dataset (h5py booleans are enums, not numbers). */
export function isNumericDataset(d: H5Dataset): boolean {
  return d.metadata.type === 0 || d.metadata.type === 1;
}

/** A whole string dataset. (h5wasm cannot slice variable-length strings safely, so no slices.) */
export function readStrings(file: string, d: H5Dataset): string[] {
  return h5Try(file, d.path, () => {
    const v = d.value;
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === "string") return [v];
    throw new ScnymError(`${file}: ${d.path} holds ${d.dtype}, expected strings`);
  });
}

/** A whole numeric dataset (or the [start, end) slice of its first axis), as h5wasm returns it. */
export function readNumeric(
  file: string,
  d: H5Dataset,
  start?: number,
  end?: number,
): NumericArray {
  return h5Try(file, d.path, () => {
    const v = start === undefined ? d.value : d.slice([[start, end ?? null]]);
    if (ArrayBuffer.isView(v)) return v as NumericArray;
    if (typeof v === "number") return new Float64Array([v]);
    if (typeof v === "bigint") return new Float64Array([Number(v)]);
    throw new ScnymError(`${file}: ${d.path} holds ${JSON.stringify(d.dtype)}, expected numbers`);
  });
}

/** Converts any numeric array (including int64) to float64, exactly below 2^53. */
export function toFloat64(a: NumericArray): Float64Array {
  if (a instanceof Float64Array) return a;
  const out = new Float64Array(a.length);
  if (a instanceof BigInt64Array || a instanceof BigUint64Array) {
    for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  } else out.set(a);
  return out;
}

/** Typed arrays the writers store (h5wasm infers the HDF5 dtype from the array type). */
export type WritableArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int8Array
  | Int16Array
  | BigInt64Array;

/**
 * Creates `g/name` as a chunked (gzip unless `compression` is 0) dataset of `shape` filled later
 * by `write_slice` over its first axis: the streaming writers size it once and write rows as they
 * come. `like` gives the element type (an empty array of it will do). Chunks of ~256 KiB keep
 * random row access cheap and compress well.
 */
export function createRowDataset(
  g: H5Group,
  name: string,
  like: WritableArray,
  shape: number[],
  compression = 4,
): H5Dataset {
  const rowLen = shape.slice(1).reduce((a, b) => a * b, 1);
  const chunkRows = Math.max(1, Math.min(shape[0], Math.floor(65536 / Math.max(1, rowLen))));
  const ds = g.create_dataset({
    name,
    data: new (like.constructor as new (n: number) => WritableArray)(0),
    shape: [0, ...shape.slice(1)],
    maxshape: [null, ...shape.slice(1)],
    chunks: [chunkRows, ...shape.slice(1)],
    compression: compression > 0 ? "gzip" : undefined,
    compression_opts: compression > 0 ? compression : undefined,
  });
  if (shape[0] > 0) ds.resize(shape);
  return ds;
}

/**
 * Writes `data` into rows [first, ..) of `ds` (rows of `data.length / rowLen` values). h5wasm
 * 0.8.8 copies a typed array's whole *buffer*, ignoring a view's offset, so a view into a larger
 * array would write the buffer's first values (and copy all of it into the wasm heap): views are
 * copied to an array of their own first.
 */
export function writeRows(ds: H5Dataset, first: number, data: WritableArray, rowLen: number): void {
  const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  const rows = data.length / Math.max(1, rowLen);
  if (rows > 0) ds.write_slice([[first, first + rows]], own ? data : data.slice());
}

/**
 * Writes numeric data into `g/name` as a chunked, gzip-compressed dataset, streamed in slices so
 * the wasm heap never holds more than one slice (h5wasm copies a dataset's data into its heap).
 */
export function writeNumeric(
  g: H5Group,
  name: string,
  data: WritableArray,
  opts: { shape?: number[]; compression?: number; sliceElems?: number } = {},
): H5Dataset {
  const shape = opts.shape ?? [data.length];
  const rowLen = shape.slice(1).reduce((a, b) => a * b, 1);
  const sliceRows = Math.max(1, Math.floor((opts.sliceElems ?? (1 << 22)) / Math.max(1, rowLen)));
  const ds = createRowDataset(g, name, data, shape, opts.compression ?? 4);
  for (let r = 0; r < shape[0]; r += sliceRows) {
    const e = Math.min(shape[0], r + sliceRows);
    writeRows(ds, r, data.subarray(r * rowLen, e * rowLen), rowLen);
  }
  return ds;
}

/** Sets anndata's `encoding-type` / `encoding-version` attributes on `obj`. */
export function setEncoding(obj: H5Group | H5Dataset, type: string, version: string): void {
  obj.create_attribute("encoding-type", type);
  obj.create_attribute("encoding-version", version);
}
