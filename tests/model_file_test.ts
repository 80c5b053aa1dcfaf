/**
 * The portable model file: byte-exact round trips, and refusal (naming the file) of truncated,
 * corrupted, foreign and future-version files.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../scnym/config.ts";
import {
  crc32,
  decodeModel,
  encodeModel,
  loadModel,
  type ModelHeader,
  saveModel,
} from "../scnym/model_file.ts";
import { Rng } from "../util/rng.ts";
import { isScnym, randn } from "./helpers.ts";

function sampleHeader(): Omit<ModelHeader, "tensors" | "format"> {
  return {
    toolVersion: "0.1.0-test",
    createdAt: "2024-01-02T03:04:05.000Z",
    seed: 42,
    config: resolveConfig("no_dan", { train: { epochs: 3 } }),
    genes: ["CD79A", "PPBP", "GNLY", "Gène-ü"],
    classes: ["B cell", "NK cell"],
    domains: [],
    normalisation: "counts->log1p_cpm",
    training: { bestEpoch: 2, history: [{ epoch: 0, supLoss: 1.5 }] },
  };
}

function sampleTensors(): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(1);
  // Odd sizes, a scalar-like [1] and an empty tensor: offsets must not assume alignment.
  return new Map([
    ["layer0.W", { shape: [4, 3], data: randn(rng, 12) }],
    ["layer0.b", { shape: [3], data: Float32Array.of(-0, Infinity, 1e-38) }],
    ["head.b", { shape: [1], data: Float32Array.of(NaN) }],
    ["empty", { shape: [0, 5], data: new Float32Array(0) }],
    ["head.W", { shape: [3, 2], data: randn(rng, 6) }],
  ]);
}

/** Rewrites the trailing CRC so a deliberate edit is not caught by the checksum. */
function withValidCrc(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

/** A version-1 container around a given JSON header, with no tensor data and a valid CRC. */
function container(json: string): Uint8Array {
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(Math.ceil((16 + head.length) / 4) * 4 + 4);
  out.set(new TextEncoder().encode("SCNYMMDL"));
  new DataView(out.buffer).setUint32(8, 1, true);
  new DataView(out.buffer).setUint32(12, head.length, true);
  out.set(head, 16);
  return withValidCrc(out);
}

Deno.test("CRC-32 matches the standard check value and chains", () => {
  const ascii = new TextEncoder().encode("123456789");
  assert.equal(crc32(ascii), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // Continuing from a previous CRC equals the CRC of the concatenation.
  assert.equal(crc32(ascii.subarray(4), crc32(ascii.subarray(0, 4))), 0xcbf43926);
});

Deno.test("encode/decode round-trips header and tensors bit-exactly", () => {
  const header = sampleHeader();
  const tensors = sampleTensors();
  const bytes = encodeModel(header, tensors);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "SCNYMMDL");
  assert.equal(bytes.length % 4, 0, "data and CRC are 4-byte aligned");
  const back = decodeModel(bytes, "m.scnym");
  const { tensors: index, format, ...rest } = back.header;
  assert.equal(format, "scnym-model");
  assert.deepEqual(rest, header);
  assert.deepEqual(index.map((e) => e.name), [...tensors.keys()]);
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const got = back.tensors.get(name)!;
    // Bit patterns, so NaN, -0 and denormals count too.
    assert.deepEqual(
      new Uint32Array(got.slice().buffer),
      new Uint32Array(t.data.slice().buffer),
      name,
    );
    assert.deepEqual(index.find((e) => e.name === name)!.shape, t.shape);
  }
  // Decoding from a view into a larger buffer (as a reader might hand it over) works too.
  const padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes, 3);
  assert.deepEqual(decodeModel(padded.subarray(3), "m.scnym").header, back.header);
  // A tensor whose values disagree with its shape is a programming error, caught at encode.
  assert.throws(
    () => encodeModel(header, new Map([["x", { shape: [2, 2], data: new Float32Array(3) }]])),
    /x has 3 values for shape 2,2/,
  );
});

Deno.test("damaged or foreign files are refused with a message naming the file", () => {
  const bytes = encodeModel(sampleHeader(), sampleTensors());
  const refuse = (b: Uint8Array, re: RegExp) =>
    assert.throws(
      () => decodeModel(b, "/models/pbmc.scnym"),
      isScnym(new RegExp(`^/models/pbmc\\.scnym: not a usable scNym model file \\(${re.source}`)),
    );
  // Truncated anywhere: in the tensor data, in the header, before the header length.
  refuse(bytes.subarray(0, bytes.length - 1), /checksum mismatch/);
  refuse(bytes.subarray(0, bytes.length - 40), /checksum mismatch/);
  refuse(bytes.subarray(0, 100), /truncated header/);
  refuse(bytes.subarray(0, 12), /only 12 bytes/);
  refuse(new Uint8Array(0), /only 0 bytes/);
  // One flipped bit in the data, in the header, in the stored CRC.
  for (const at of [bytes.length - 10, 40, bytes.length - 2]) {
    const flipped = bytes.slice();
    flipped[at] ^= 0x10;
    refuse(flipped, /checksum mismatch/);
  }
  // Another file type, and a file from a future version of the format (valid CRC otherwise).
  refuse(new TextEncoder().encode("PK\x03\x04 this is a zip file really"), /wrong magic bytes/);
  const v2 = bytes.slice();
  new DataView(v2.buffer).setUint32(8, 2, true);
  refuse(withValidCrc(v2), /format version 2; this scnym reads version 1/);
  // A well-formed container whose tensor index points past the data: nothing is loaded.
  const dataEnd = bytes.length - 4;
  const short = new Uint8Array(dataEnd - 8 + 4);
  short.set(bytes.subarray(0, dataEnd - 8));
  refuse(withValidCrc(short), /tensor head\.W runs past the end of the data/);
  // A header that is not JSON, or JSON of something else.
  const other = container('{"format":"other","genes":[],"classes":[],"tensors":[]}');
  refuse(other, /header format "other"/);
  const garbled = other.slice();
  garbled[16] = 0x5b; // "[" makes the JSON invalid
  refuse(withValidCrc(garbled), /header is not valid JSON/);
  refuse(
    container(
      '{"format":"scnym-model","genes":[],"classes":[],"tensors":[{"name":"w","offset":0}]}',
    ),
    /malformed tensor entry \{"name":"w","offset":0\}/,
  );
  // Data that is not a whole number of floats, with a valid checksum.
  const ragged = new Uint8Array(bytes.length + 1);
  ragged.set(bytes.subarray(0, dataEnd));
  refuse(withValidCrc(ragged), /the data section is not a whole number of float32 values/);
});

Deno.test("saveModel/loadModel go through a file; a missing file is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "scnym_model_file_test" });
  try {
    const path = `${dir}/model.scnym`;
    const header = sampleHeader();
    const tensors = sampleTensors();
    await saveModel(path, header, tensors);
    const bytes = await Deno.readFile(path);
    assert.deepEqual(bytes, encodeModel(header, tensors));
    // Written atomically: no temporary file is left next to it.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["model.scnym"]);
    const loaded = await loadModel(path);
    assert.deepEqual(loaded.header.genes, header.genes);
    assert.deepEqual(loaded.tensors.get("head.W"), tensors.get("head.W")!.data);
    await assert.rejects(
      () => loadModel(`${dir}/nope.scnym`),
      isScnym(new RegExp(`model file not found: ${dir}/nope\\.scnym`)),
    );
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 7));
    await assert.rejects(
      () => loadModel(path),
      isScnym(new RegExp(`${path}: .*checksum mismatch`)),
    );
    await assert.rejects(
      () => saveModel(`${dir}/no/such/dir/m.scnym`, header, tensors),
      isScnym(/cannot write .*no\/such\/dir\/m\.scnym/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
