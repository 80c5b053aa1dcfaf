import assert from "node:assert/strict";
import { defineKernel } from "../runtime/kernel.ts";
import { bucketBytes, Runtime } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { gpuTest, testRuntime } from "./helpers.ts";

const AXPY = defineKernel({
  name: "test_axpy",
  workgroupSize: [64],
  params: { n: "u32", a: "f32" },
  buffers: { x: "read", y: "rw" },
  code: `
@compute @workgroup_size(WG_X) fn main(@builtin(global_invocation_id) gid: vec3<u32>,
                                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < p.n) { y[i] = y[i] + p.a * x[i]; }
}`,
});

Deno.test("buckets waste at most 25% and are multiples of 4 bytes", () => {
  for (const n of [1, 255, 256, 257, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
    const b = bucketBytes(n);
    assert.ok(b >= n && b % 4 === 0, `${n} -> ${b}`);
    assert.ok(b <= Math.max(256, n * 1.25 + 256), `${n} -> ${b}`);
  }
});

Deno.test("upload, dispatch, fill and read round-trip", gpuTest, async () => {
  const rt = await testRuntime();
  const x = rt.upload(new Float32Array([1, 2, 3, 4, 5]));
  const y = rt.full([5], 10);
  rt.dispatch(AXPY, { x, y }, { n: 5, a: 2 }, rt.groups1d(5, 64));
  assert.deepEqual([...(await y.read())], [12, 14, 16, 18, 20]);
  const u = rt.full([3], 7, "u32");
  assert.deepEqual([...(await u.read())], [7, 7, 7]);
  rt.fill(y, 0);
  assert.deepEqual([...(await y.read())], [0, 0, 0, 0, 0]);
  x.release();
  y.release();
  u.release();
});

Deno.test("launches past 65535 workgroups fold into a 2-D grid", gpuTest, async () => {
  const rt = await testRuntime();
  const n = 64 * 70_000 + 3;
  const groups = rt.groups1d(n, 64);
  assert.ok(groups[1] > 1 && groups[0] * groups[1] * 64 >= n);
  const x = rt.full([n], 1);
  const y = rt.full([n], 0);
  rt.dispatch(AXPY, { x, y }, { n, a: 3 }, groups);
  const out = await y.read() as Float32Array;
  assert.equal(out[0], 3);
  assert.equal(out[n - 1], 3);
  assert.equal(out.reduce((s, v) => s + v, 0), 3 * n);
  x.release();
  y.release();
});

Deno.test(
  "scopes release temporaries and keep returned tensors; the pool reuses them",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    const step = () =>
      rt.scope(() => {
        const a = rt.full([1000], 1);
        const b = rt.full([1000], 2);
        rt.dispatch(AXPY, { x: a, y: b }, { n: 1000, a: 1 }, rt.groups1d(1000, 64));
        return b;
      });
    const first = step();
    assert.equal((await first.read())[999], 3);
    first.release();
    const before = rt.stats.buffersCreated;
    for (let i = 0; i < 5; i++) step().release();
    assert.equal(rt.stats.buffersCreated, before, "steady-state steps allocate no buffers");
  },
);

Deno.test("a tensor over the binding limit names the op, shape and limit", gpuTest, async () => {
  const rt = await testRuntime();
  const rows = Math.ceil(rt.limits.maxStorageBufferBindingSize / 4 / 256) + 1;
  assert.throws(
    () => rt.tensor([rows, 256], "f32", "matmul"),
    (e: unknown) =>
      e instanceof ScnymError && /matmul/.test(e.message) && e.message.includes(`${rows}x256`) &&
      e.message.includes(String(rt.limits.maxStorageBufferBindingSize)),
  );
});

Deno.test("WGSL that does not compile is reported with the kernel name", gpuTest, async () => {
  // A device that saw an error stays failed, so this test gets its own.
  const rt = await Runtime.create();
  const bad = defineKernel({
    name: "test_broken",
    workgroupSize: [1],
    buffers: { y: "rw" },
    code: `@compute @workgroup_size(1) fn main() { y[0] = undefined_thing; }`,
  });
  const y = rt.full([1], 0);
  let message = "";
  try {
    rt.dispatch(bad, { y }, {}, [1]);
    await rt.sync();
  } catch (e) {
    message = (e as Error).message;
  }
  rt.destroy();
  assert.match(message, /test_broken/);
  assert.match(message, /undefined_thing/);
});

Deno.test("a lost device gives a clear error, not a hang", gpuTest, async () => {
  const rt = await Runtime.create();
  const t = rt.full([4], 1);
  rt.device.destroy();
  await assert.rejects(
    () => rt.read(t),
    (e: unknown) => e instanceof ScnymError && /GPU/.test(e.message),
  );
  await assert.rejects(() => rt.sync(), /device lost/);
});
