/**
 * Boolean HDF5 attributes, which h5wasm cannot create: written as placeholders, patched in the
 * closed file (see `BoolAttrWriter`).
 */
import { hostFs, type RandomAccessFile } from "../util/host_fs.ts";
import type { H5Dataset, H5Group } from "./h5.ts";

/**
 * Boolean attributes as h5py writes them (an 8-bit enum FALSE=0 / TRUE=1), which anndata needs
 * (e.g. a categorical's `ordered`: pandas refuses an integer there) but h5wasm cannot create.
 *
 * How: `set` writes a 40-byte fixed-string placeholder attribute holding a unique token; after
 * the file is closed, `patch` finds each token and rewrites that attribute message in place with
 * the enum datatype (the placeholder message is larger, so it fits; version-1 object headers,
 * which h5wasm writes, carry no checksum). The bytes match what h5py writes.
 */
export class BoolAttrWriter {
  #token = `SCNYM_BOOL_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}_`;
  #pending: { name: string; value: boolean }[] = [];

  /** Adds a placeholder for boolean attribute `name` on `obj`. */
  set(obj: H5Group | H5Dataset, name: string, value: boolean): void {
    const id = this.#token + String(this.#pending.length).padStart(8, "0");
    obj.create_attribute(name, id.padEnd(PLACEHOLDER_LEN, "_"), null, `S${PLACEHOLDER_LEN}`);
    this.#pending.push({ name, value });
  }

  /** Rewrites every placeholder in the closed file `path` as a real boolean attribute. */
  async patch(path: string): Promise<void> {
    if (this.#pending.length === 0) return;
    const token = new TextEncoder().encode(this.#token);
    const found = new Map<number, number>(); // placeholder id -> file offset of its data
    const f = await hostFs().open(path);
    try {
      const block = 1 << 24;
      const buf = new Uint8Array(block + 64);
      let pos = 0;
      for (;;) {
        const got = await f.read(pos, buf);
        for (let i = buf.indexOf(token[0]); i >= 0 && i + token.length + 8 <= got;) {
          if (token.every((b, j) => buf[i + j] === b)) {
            const id = Number(
              new TextDecoder().decode(buf.subarray(i + token.length, i + token.length + 8)),
            );
            found.set(id, pos + i);
          }
          i = buf.indexOf(token[0], i + 1);
        }
        if (got < buf.length || found.size === this.#pending.length) break;
        pos += block;
      }
      for (const [id, at] of found) await this.#rewrite(f, at, this.#pending[id]);
    } finally {
      f.close();
    }
    if (found.size !== this.#pending.length) {
      throw new Error(
        `BoolAttrWriter: found ${found.size} of ${this.#pending.length} placeholders`,
      );
    }
  }

  async #rewrite(f: RandomAccessFile, dataAt: number, a: { name: string; value: boolean }) {
    const name = new TextEncoder().encode(a.name + "\0");
    const namePad = Math.ceil(name.length / 8) * 8;
    const start = dataAt - (8 + namePad + 8 + 8);
    const old = new Uint8Array(8 + namePad + 16 + PLACEHOLDER_LEN);
    await f.read(start, old);
    const expect = [1, 0, name.length & 255, name.length >> 8, 8, 0, 8, 0];
    if (!expect.every((b, i) => old[i] === b)) {
      throw new Error(`BoolAttrWriter: unexpected attribute layout for "${a.name}"`);
    }
    const msg = new Uint8Array(old.length);
    msg.set([1, 0, name.length & 255, name.length >> 8, ENUM_BOOL_TYPE.length, 0, 8, 0]);
    msg.set(name, 8);
    msg.set(ENUM_BOOL_TYPE, 8 + namePad);
    msg.set(old.subarray(8 + namePad + 8, 8 + namePad + 16), 8 + namePad + 40); // the dataspace
    msg[8 + namePad + 48] = a.value ? 1 : 0;
    await f.write(start, msg);
  }
}

const PLACEHOLDER_LEN = 40;

/** HDF5 datatype message of h5py's bool: enum of int8 with members FALSE=0, TRUE=1 (38 bytes). */
const ENUM_BOOL_TYPE = new Uint8Array([
  0x18,
  0x02,
  0x00,
  0x00,
  0x01,
  0x00,
  0x00,
  0x00, // enum v1, 2 members, size 1
  0x10,
  0x08,
  0x00,
  0x00,
  0x01,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x08,
  0x00, // base: signed int8
  0x46,
  0x41,
  0x4c,
  0x53,
  0x45,
  0x00,
  0x00,
  0x00, // "FALSE"
  0x54,
  0x52,
  0x55,
  0x45,
  0x00,
  0x00,
  0x00,
  0x00, // "TRUE"
  0x00,
  0x01, // values
]);
