/**
 * bf16 copies of a dense operand (the top 16 bits of each f32, rounded to nearest even), two
 * per u32, for the products that read one operand value per multiply-add: the sparse products
 * of kernels/spmm.ts. On Mesa's llvmpipe every component of a storage load is a scalar load in
 * a loop over the SIMD lanes, so one vec4<u32> load brings 8 values for the price of 4: both
 * sparse products run ~1.5-1.7x faster (`deno run -A bench/train_step.ts --input-layout ...`).
 * Only the operand is rounded (2^-9 relative); products and sums stay f32.
 *
 * Why bf16 and not IEEE f16: gradients span many decades (1e-8 to 1e-2 in one step) and would
 * underflow in f16, which bf16's f32 exponent avoids; and on llvmpipe `unpack2x16float` costs
 * most of what the halved loads save (f16 W: 1.1x), where bf16 unpacks with a shift and a mask.
 */
import { defineKernel } from "../runtime/kernel.ts";
import type { Runtime, Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";

/** A dense row-major [rows, cols] f32 matrix rounded to bf16, two per u32 (cols % 8 == 0). */
export interface Bf16Matrix {
  rows: number;
  cols: number;
  /** u32[rows * cols / 2]; element 2i in the low half of word i. */
  packed: Tensor;
}

/** WGSL: the two values of packed word `u` as a vec2<f32> (low half first). */
export function unpackBf16Wgsl(u: string): string {
  return `vec2<f32>(bitcast<f32>(${u} << 16u), bitcast<f32>(${u} & 0xffff0000u))`;
}

/**
 * WGSL: `bf16(x)`, x rounded to nearest even bf16 (the upper 16 bits; inf stays inf), and
 * `bf16_pair(v)`, v.x in the low and v.y in the high half of a u32.
 */
export const BF16_WGSL = `
fn bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
fn bf16_pair(v: vec2<f32>) -> u32 {
  return bf16(v.x) | (bf16(v.y) << 16u);
}`;

/** Octets (8 values, one vec4<u32>) per pack invocation: amortises the invocation overhead. */
const PACK_OCTETS = 8;

const PACK = defineKernel({
  name: "pack_bf16",
  workgroupSize: [64],
  params: { octets: "u32" },
  buffers: {
    src: { access: "read", type: "vec4<f32>" },
    out: { access: "rw", type: "vec4<u32>" },
  },
  code: `${BF16_WGSL}
@compute @workgroup_size(WG_X)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_id(gid, nwg) * ${PACK_OCTETS}u;
  for (var o = first; o < min(first + ${PACK_OCTETS}u, p.octets); o++) {
    let a = src[2u * o];
    let b = src[2u * o + 1u];
    out[o] = vec4<u32>(bf16_pair(a.xy), bf16_pair(a.zw), bf16_pair(b.xy), bf16_pair(b.zw));
  }
}`,
});

/**
 * Records the bf16 copy of `src` (f32 [rows, cols], cols % 8 == 0). With `room` (a u32 tensor
 * of at least rows * cols / 2 elements, kept between steps), the copy is written there instead
 * of a new tensor.
 */
export function packBf16(rt: Runtime, src: Tensor, room?: Tensor): Bf16Matrix {
  const { rows, cols } = src;
  if (src.dtype !== "f32" || src.shape.length !== 2 || cols % 8 !== 0) {
    throw new ScnymError(
      `packBf16: src must be f32[rows x N] with N % 8 == 0, got ${src.describe()}`,
    );
  }
  const words = src.size / 2;
  if (room && (room.dtype !== "u32" || room.size < words)) {
    throw new ScnymError(
      `packBf16: room must be u32 with >= ${words} values, got ${room.describe()}`,
    );
  }
  const packed = room ? room.view([words]) : rt.tensor([words], "u32", "packBf16");
  const octets = src.size / 8;
  if (octets > 0) {
    rt.dispatch(
      PACK,
      { src, out: packed },
      { octets },
      rt.groups1d(Math.ceil(octets / PACK_OCTETS), 64),
    );
  }
  return { rows, cols, packed };
}

// ------------------------------------------------------------------------- CPU reference

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** CPU reference of one value's rounding: what the products read for `x`. */
export function roundBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  u32[0] = (((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f32[0];
}
