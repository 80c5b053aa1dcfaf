/** PNG decoding for tests that look at Chromium's screenshots. */
import assert from "node:assert/strict";

/**
 * Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into its size and pixels:
 * chunks, zlib inflate of the IDAT stream, then undoing the per-row filters (PNG spec 9.2).
 */
export async function decodePng(
  bytes: Uint8Array,
): Promise<{ width: number; height: number; channels: number; pixels: Uint8Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.deepEqual([...bytes.subarray(1, 4)], [80, 78, 71], "PNG signature");
  let pos = 8;
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array<ArrayBuffer>[] = [];
  while (pos < bytes.length) {
    const len = view.getUint32(pos);
    const type = new TextDecoder().decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      assert.equal(data[8], 8, "8-bit depth");
      assert.equal(data[12], 0, "not interlaced");
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[data[9]];
      assert.ok(channels, `colour type ${data[9]}`);
    } else if (type === "IDAT") idat.push(data.slice());
    pos += 12 + len;
  }
  const stream = new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? row[x - channels] : 0;
      const b = up[x];
      const c = x >= channels ? up[x - channels] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[x] = (src[x] + pred) & 255;
    }
  }
  return { width, height, channels, pixels };
}

/** Fraction of pixels that differ from the top-left one (0 for a blank image). */
export function inkFraction(img: { channels: number; pixels: Uint8Array }): number {
  const { channels, pixels } = img;
  let ink = 0;
  for (let i = 0; i < pixels.length; i += channels) {
    for (let k = 0; k < 3; k++) {
      if (Math.abs(pixels[i + k] - pixels[k]) > 24) {
        ink++;
        break;
      }
    }
  }
  return ink / (pixels.length / channels);
}
