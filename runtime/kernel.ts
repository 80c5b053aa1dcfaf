/**
 * How a WGSL kernel is declared. A kernel names its uniform parameters and its storage buffers;
 * the runtime generates the matching WGSL declarations and an explicit bind-group layout, so the
 * host call and the shader can never disagree about binding numbers.
 *
 * Generated prelude, for `params: { n: "u32", alpha: "f32" }` and
 * `buffers: { x: "read", y: "rw" }`:
 *
 *   const WG_X: u32 = 256u; const WG_Y: u32 = 1u; const WG_Z: u32 = 1u;
 *   struct Params { n: u32, alpha: f32, }
 *   @group(0) @binding(0) var<uniform> p: Params;
 *   @group(0) @binding(1) var<storage, read> x: array<f32>;
 *   @group(0) @binding(2) var<storage, read_write> y: array<f32>;
 *
 * The kernel's `code` then declares `@compute @workgroup_size(WG_X, WG_Y, WG_Z) fn main(...)`.
 */

/** Scalar types a uniform parameter may have. */
export type ParamType = "u32" | "i32" | "f32";

/** Access of a storage buffer, optionally with its element type (default `f32`). */
export type BufferDecl =
  | "read"
  | "rw"
  | { access: "read" | "rw"; type: string };

/** A kernel declaration: what `defineKernel` takes. */
export interface KernelSpec {
  /** Name used in errors and profiles, e.g. "matmul_nn". */
  name: string;
  /** Workgroup size; exposed to WGSL as the constants WG_X, WG_Y, WG_Z. */
  workgroupSize: [number, number?, number?];
  /** Uniform parameters in struct order (all 4-byte scalars). */
  params?: Record<string, ParamType>;
  /** Storage buffers in binding order. */
  buffers: Record<string, BufferDecl>;
  /** WGSL after the generated prelude: helper functions and the `main` entry point. */
  code: string;
}

/** A kernel ready to dispatch: its full WGSL and the facts the runtime needs. */
export interface Kernel {
  readonly name: string;
  readonly source: string;
  readonly workgroupSize: [number, number, number];
  readonly paramNames: string[];
  readonly paramTypes: ParamType[];
  readonly bufferNames: string[];
  readonly bufferAccess: ("read" | "rw")[];
}

/** WGSL shared by every kernel: a flat invocation index over a 2-D grid of workgroups. */
const SHARED_WGSL = `
// Large 1-D launches are split over x and y (65535 workgroups per dimension at most);
// flat_id folds them back into one index.
fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG_X;
}
`;

/** Builds a kernel from its declaration; the WGSL is generated once here. */
export function defineKernel(spec: KernelSpec): Kernel {
  const [wx, wy = 1, wz = 1] = spec.workgroupSize;
  const params = Object.entries(spec.params ?? {});
  // WGSL forbids empty structs; a kernel without parameters gets one unused field.
  const fields = params.length ? params : [["_unused", "u32"] as [string, ParamType]];
  const lines = [
    `const WG_X: u32 = ${wx}u;`,
    `const WG_Y: u32 = ${wy}u;`,
    `const WG_Z: u32 = ${wz}u;`,
    `struct Params { ${fields.map(([n, t]) => `${n}: ${t},`).join(" ")} }`,
    `@group(0) @binding(0) var<uniform> p: Params;`,
  ];
  const bufferNames: string[] = [];
  const bufferAccess: ("read" | "rw")[] = [];
  Object.entries(spec.buffers).forEach(([name, decl], i) => {
    const access = typeof decl === "string" ? decl : decl.access;
    const type = typeof decl === "string" ? "f32" : decl.type;
    const mode = access === "read" ? "read" : "read_write";
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${mode}> ${name}: array<${type}>;`);
    bufferNames.push(name);
    bufferAccess.push(access);
  });
  return {
    name: spec.name,
    source: `${lines.join("\n")}\n${SHARED_WGSL}\n${spec.code}`,
    workgroupSize: [wx, wy, wz],
    paramNames: params.map(([n]) => n),
    paramTypes: params.map(([, t]) => t),
    bufferNames,
    bufferAccess,
  };
}
