import assert from "node:assert/strict";
import { sumCols } from "../kernels/reduce.ts";
import { defineKernel } from "../runtime/kernel.ts";
import { bucketBytes, Runtime, type Tensor } from "../runtime/runtime.ts";
import { ScnymError } from "../util/errors.ts";
import { gpuTest, isScnym, testRuntime } from "./helpers.ts";

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

Deno.test(
  "a scope keeps tensors returned at any depth of arrays and plain objects",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    let temp: Tensor | null = null;
    const out = rt.scope(() => {
      temp = rt.full([2], 0);
      return { a: [{ b: { c: [[rt.full([3], 5)]] } }], n: 1, view: rt.full([4], 7).view([2]) };
    });
    assert.ok(temp!.released, "an unreturned temporary is released");
    const deep = out.a[0].b.c[0][0];
    assert.ok(!deep.released, "five levels deep is still kept");
    assert.deepEqual([...await deep.read()], [5, 5, 5]);
    // A returned view keeps the tensor it views: its buffer is not handed out again.
    assert.ok(!out.view.released);
    const other = rt.full([4], 1);
    assert.deepEqual([...await out.view.read()], [7, 7]);
    for (const t of [deep, out.view.base!, other]) t.release();
  },
);

Deno.test(
  "a scope throws rather than silently release a tensor its result hides in a Map or class",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    let inMap: Tensor | null = null;
    assert.throws(
      () =>
        rt.scope(() => {
          inMap = rt.full([3], 1);
          return { byName: new Map([["probs", inMap]]) };
        }),
      isScnym(/scope: .*f32\[3\] at result\.byName \(entry 0 of a Map\).*keep\(\)/),
    );
    assert.ok(inMap!.released, "the scope's tensors are released when it throws");
    class Holder {
      constructor(readonly value: Tensor) {}
    }
    assert.throws(
      () => rt.scope(() => [new Holder(rt.full([2, 2], 1))]),
      isScnym(/f32\[2x2\] at result\[0\]\.value/),
    );
    // Tensors the scope does not own may sit anywhere in the result; so may kept ones.
    const outer = rt.full([1], 2);
    const got = rt.scope(() => new Map([["outer", outer], ["kept", rt.full([1], 3).keep()]]));
    assert.ok(!outer.released && !got.get("kept")!.released);
    // A tensor both visible and hidden is kept.
    const both = rt.scope(() => {
      const t = rt.full([1], 4);
      return { t, again: new Set([t]) };
    });
    assert.ok(!both.t.released);
    for (const t of [outer, got.get("kept")!, both.t]) t.release();
  },
);

Deno.test(
  "nested scopes hand returned tensors outwards; keep() escapes them all",
  gpuTest,
  async () => {
    const rt = await testRuntime();
    let inner: Tensor | null = null;
    let kept: Tensor | null = null;
    let keptView: Tensor | null = null;
    rt.scope(() => {
      inner = rt.scope(() => {
        kept = rt.full([2], 1).keep();
        // keep() on a view keeps what it views.
        keptView = rt.full([4], 2).view([2]).keep();
        return rt.full([2], 3);
      });
      assert.ok(!inner.released, "returned from the inner scope: alive in the outer one");
    });
    assert.ok(inner!.released, "not returned from the outer scope: released at its end");
    assert.ok(!kept!.released && !keptView!.released, "kept tensors outlive every scope");
    assert.deepEqual([...await rt.readAll([kept!, keptView!])].map((a) => [...a]), [[1, 1], [
      2,
      2,
    ]]);
    kept!.release();
    keptView!.base!.release();
    // An exception releases everything the scope created and propagates.
    let leaked: Tensor | null = null;
    assert.throws(() =>
      rt.scope(() => {
        leaked = rt.full([2], 1);
        throw new Error("boom");
      }), /boom/);
    assert.ok(leaked!.released);
  },
);

Deno.test("readAll reads every tensor with one submission and one wait", gpuTest, async () => {
  const rt = await testRuntime();
  const a = rt.full([3], 1.5);
  const b = rt.full([2, 2], 7, "u32");
  const c = rt.full([2], -3, "i32");
  const empty = rt.tensor([0, 4]);
  rt.fill(a, 2.5); // pending work, so the copies share a submission with it
  const before = { ...rt.stats };
  const got = await rt.readAll([a, b, empty, c, a]);
  assert.equal(rt.stats.submissions - before.submissions, 1);
  assert.equal(rt.stats.readbacks - before.readbacks, 1);
  assert.ok(got[0] instanceof Float32Array && got[1] instanceof Uint32Array);
  assert.ok(got[3] instanceof Int32Array && got[2].length === 0);
  assert.deepEqual(got.map((x) => [...x]), [[2.5, 2.5, 2.5], [7, 7, 7, 7], [], [-3, -3], [
    2.5,
    2.5,
    2.5,
  ]]);
  for (const t of [a, b, c, empty]) t.release();
});

Deno.test("using a released tensor throws a ScnymError everywhere", gpuTest, async () => {
  const rt = await testRuntime();
  const live = rt.full([4], 1);
  const dead = rt.full([4], 1);
  const deadView = dead.view([2]);
  const deadMatrix = dead.view([2, 2]);
  dead.release();
  dead.release(); // twice is a no-op
  assert.ok(deadView.released, "a view of a released tensor is released");
  const released = /was released/;
  assert.throws(() => dead.view([2]), isScnym(released));
  assert.throws(() => dead.keep(), isScnym(released));
  assert.throws(() => rt.write(dead, [1, 2, 3, 4]), isScnym(/write: target f32\[4\] was released/));
  assert.throws(() => rt.fill(deadView, 2), isScnym(released));
  assert.throws(() => rt.copy(dead, live), isScnym(/copy: source/));
  assert.throws(() => rt.copy(live, dead), isScnym(/copy: destination/));
  assert.throws(
    () => rt.dispatch(AXPY, { x: dead, y: live }, { n: 4, a: 1 }, [1]),
    isScnym(/test_axpy: buffer x f32\[4\] was released/),
  );
  assert.throws(
    () => sumCols(rt, deadMatrix),
    isScnym(/sumCols: x f32\[2x2\] was released/),
  );
  await assert.rejects(() => dead.read(), isScnym(/read: .*was released/));
  await assert.rejects(() => rt.readAll([live, deadView]), isScnym(released));
  assert.deepEqual([...await live.read()], [1, 1, 1, 1], "the device is still fine");
  live.release();
});

Deno.test("profiling times each kernel by name", gpuTest, async () => {
  const rt = await testRuntime();
  if (!rt.canProfile) {
    // Timestamp queries are optional; without them profiling says so.
    assert.throws(() => rt.startProfile(), isScnym(/timestamp-query/));
    return;
  }
  await assert.rejects(() => rt.endProfile(), isScnym(/without startProfile/));
  rt.startProfile();
  const x = rt.full([100], 1);
  const y = rt.full([100], 2);
  rt.dispatch(AXPY, { x, y }, { n: 100, a: 1 }, rt.groups1d(100, 64));
  const times = await rt.endProfile();
  assert.deepEqual(
    times.map((t) => [t.kernel, t.calls]).sort(),
    [["fill", 2], ["test_axpy", 1]],
  );
  assert.ok(times.every((t) => t.ms >= 0 && Number.isFinite(t.ms)));
  assert.deepEqual([...await y.read()].slice(0, 2), [3, 3], "profiled dispatches still run");
  x.release();
  y.release();
});
