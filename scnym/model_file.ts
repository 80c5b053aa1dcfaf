/**
 * The portable model file: one binary file holding everything `predict` needs, checked on load.
 *
 * Layout (little-endian):
 *   8 bytes   magic "SCNYMMDL"
 *   u32       format version (1)
 *   u32       header length H
 *   H bytes   UTF-8 JSON header (`ModelHeader`: genes, classes, config, seed, tensor index, ...)
 *   0-3 bytes zero padding to a multiple of 4
 *   ...       float32 tensor data, in the order of `header.tensors`
 *   u32       CRC-32 of every byte before it
 *
 * A truncated or corrupted file fails the length or CRC check and is refused with a message
 * naming the file; nothing is loaded partially.
 */
import type { Normalisation } from "../data/normalize.ts";
import { ScnymError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fs.ts";
import type { CalibrationRecord } from "./calibration.ts";
import type { ScnymConfig } from "./config.ts";

const MAGIC = "SCNYMMDL";
const FORMAT_VERSION = 1;

/** Where a tensor's values sit in the data section. */
export interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements from the start of the data section. */
  offset: number;
}

/** The JSON header of a model file. */
export interface ModelHeader {
  format: "scnym-model";
  toolVersion: string;
  createdAt: string;
  seed: number;
  config: ScnymConfig;
  /** The model's input genes, in input order. */
  genes: string[];
  /** Class names, in output order. */
  classes: string[];
  /** Domain names the adversary was trained on (empty when it was off). */
  domains: string[];
  /** How the training input was normalised (see `data/normalize.ts`). */
  normalisation: Normalisation;
  /** Training facts for the record: data files, label column, epochs, best epoch, history. */
  training: Record<string, unknown>;
  /**
   * Temperature and novelty statistics fitted after training (scnym/calibration.ts); absent in
   * files written before calibration existed (read as temperature 1, no novelty score).
   */
  calibration?: CalibrationRecord;
  tensors: TensorEntry[];
}

/** A model file's contents: header plus named tensors. */
export interface ModelFile {
  header: ModelHeader;
  tensors: Map<string, Float32Array>;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3), the checksum of zip and PNG. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  crc = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** Serialises a model to bytes (the header's tensor index is rebuilt from `tensors`). */
export function encodeModel(
  header: Omit<ModelHeader, "tensors" | "format">,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
): Uint8Array {
  const entries: TensorEntry[] = [];
  let total = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new Error(`encodeModel: ${name} has ${t.data.length} values for shape ${t.shape}`);
    }
    entries.push({ name, shape: t.shape, offset: total });
    total += size;
  }
  const full: ModelHeader = { format: "scnym-model", ...header, tensors: entries };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const headStart = 16;
  const dataStart = Math.ceil((headStart + json.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + total * 4 + 4);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  bytes.set(json, headStart);
  const data = new Float32Array(bytes.buffer, dataStart, total);
  for (const e of entries) data.set(tensors.get(e.name)!.data, e.offset);
  view.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

/** Parses and checks model bytes; `path` names the file in errors. */
export function decodeModel(bytes: Uint8Array, path: string): ModelFile {
  const bad = (why: string): never => {
    throw new ScnymError(`${path}: not a usable scNym model file (${why})`);
  };
  if (bytes.length < 20) bad(`only ${bytes.length} bytes`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    bad("wrong magic bytes; expected a file written by `scnym train`");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION) {
    bad(`format version ${version}; this scnym reads version ${FORMAT_VERSION}`);
  }
  const headLen = view.getUint32(12, true);
  if (16 + headLen + 4 > bytes.length) bad("truncated header");
  const stored = view.getUint32(bytes.length - 4, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) {
    bad("checksum mismatch: the file is truncated or corrupted");
  }
  let header: ModelHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headLen)));
  } catch {
    return bad("header is not valid JSON");
  }
  if (header.format !== "scnym-model") bad(`header format "${header.format}"`);
  for (const key of ["genes", "classes", "tensors"] as const) {
    if (!Array.isArray(header[key])) bad(`header has no ${key} list`);
  }
  const dataStart = Math.ceil((16 + headLen) / 4) * 4;
  const nFloats = (bytes.length - 4 - dataStart) / 4;
  if (!(Number.isInteger(nFloats) && nFloats >= 0)) {
    bad("the data section is not a whole number of float32 values");
  }
  // Copy so the tensors are aligned and independent of the file buffer.
  const all = new Float32Array(bytes.slice(dataStart, dataStart + nFloats * 4).buffer);
  const tensors = new Map<string, Float32Array>();
  for (const e of header.tensors) {
    if (!Array.isArray(e?.shape) || !Number.isInteger(e.offset) || e.offset < 0) {
      bad(`malformed tensor entry ${JSON.stringify(e)}`);
    }
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset + size > all.length) bad(`tensor ${e.name} runs past the end of the data`);
    tensors.set(e.name, all.subarray(e.offset, e.offset + size));
  }
  return { header, tensors };
}

/**
 * Writes a model file atomically (temporary file, then rename), replacing an existing one: training
 * rewrites its checkpoint every time the validation loss improves.
 */
export async function saveModel(
  path: string,
  header: Omit<ModelHeader, "tensors" | "format">,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
): Promise<void> {
  await writeFileAtomic(path, encodeModel(header, tensors), { overwrite: true });
}

/** Reads and checks a model file. */
export async function loadModel(path: string): Promise<ModelFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new ScnymError(
      e instanceof Deno.errors.NotFound
        ? `model file not found: ${path}`
        : `cannot read model file ${path}: ${(e as Error).message}`,
    );
  }
  return decodeModel(bytes, path);
}

/** True when `path` is a file that starts like a model file (its magic bytes); never throws. */
export function isModelFile(path: string): boolean {
  try {
    const f = Deno.openSync(path);
    try {
      const head = new Uint8Array(MAGIC.length);
      const n = f.readSync(head);
      return n === MAGIC.length && new TextDecoder().decode(head) === MAGIC;
    } finally {
      f.close();
    }
  } catch {
    return false;
  }
}
