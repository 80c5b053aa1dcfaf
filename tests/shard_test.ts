/**
 * Sharded prediction end to end, as a scheduler runs it: N = 3 `scnym predict --shard K/3`
 * processes side by side, `scnym merge-predictions`, and the merge compared with the unsharded
 * output bit for bit (CSV: bytes, also as the parts concatenated with their headers dropped;
 * `.h5ad`: every dataset's values and every attribute). Plus the refusals: bad `--shard`, parts of
 * different models, and Ctrl-C leaving nothing under the output's name.
 */
import assert from "node:assert/strict";
import { writeSimulation } from "../commands/simulate.ts";
import { simulate } from "../data/simulate.ts";
import { type H5Group, openH5 } from "../io/h5.ts";
import { parseShard, shardRows } from "../scnym/predict_stream.ts";
import { isScnym, scriptArgs } from "./helpers.ts";
import { runScript } from "./helpers.ts";

const scnym = (...args: string[]) => runScript("cli.ts", args);
const opts = { sanitizeResources: false, sanitizeOps: false } as const;
const dir = await Deno.makeTempDir({ prefix: "scnym-shard-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const data = `${dir}/sim.h5ad`;
await writeSimulation(
  data,
  simulate({ cellsPerDomain: [300, 301], genes: 200, types: 4, seed: 5 }),
);
await Deno.writeTextFile(
  `${dir}/fast.json`,
  JSON.stringify({ base: "default", train: { epochs: 2, batchSize: 64, minEpochs: 1 } }),
);
const train = (out: string, seed: string) =>
  scnym(
    "train",
    "--reference",
    data,
    "--labels",
    "cell_type",
    "--target-where",
    "domain=target",
    "--config",
    `${dir}/fast.json`,
    "--seed",
    seed,
    "--out",
    out,
    "--quiet",
  );
const modelA = `${dir}/a.scnym`;
const modelB = `${dir}/b.scnym`;
const trained = await Promise.all([train(modelA, "1"), train(modelB, "2")]);
for (const t of trained) assert.equal(t.code, 0, t.stderr);

const predict = (model: string, out: string, ...more: string[]) =>
  scnym("predict", "--model", model, "--query", data, "--out", out, "--quiet", ...more);

/** JSON with BigInt (int64 scalars) as text. */
const json = (v: unknown) => JSON.stringify(v, (_k, x) => typeof x === "bigint" ? `${x}n` : x);

/** Every dataset (values as bytes) and attribute under `g`, by path. */
function contents(g: H5Group, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(g.attrs)) {
    out.set(`${prefix}@${k}`, json(v.json_value));
  }
  for (const name of g.keys()) {
    const child = g.get(name)!;
    const path = `${prefix}/${name}`;
    if ("keys" in child) {
      for (const [k, v] of contents(child as H5Group, path)) out.set(k, v);
      continue;
    }
    const d = child as unknown as {
      value: unknown;
      dtype: unknown;
      shape: number[];
      attrs: H5Group["attrs"];
    };
    for (const [k, v] of Object.entries(d.attrs)) {
      out.set(`${path}@${k}`, json(v.json_value));
    }
    const v = d.value;
    const bytes = ArrayBuffer.isView(v)
      ? Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).join(",")
      : json(v);
    out.set(path, `${json(d.dtype)} [${d.shape}] ${bytes}`);
  }
  return out;
}

async function readContents(path: string): Promise<Map<string, string>> {
  const f = await openH5(path, "r");
  try {
    return contents(f);
  } finally {
    f.close();
  }
}

Deno.test("shard rows: consecutive, in order, covering every cell; K/N parsed strictly", () => {
  for (const n of [0, 1, 7, 601, 1_000_000]) {
    for (const N of [1, 2, 3, 8]) {
      let next = 0;
      for (let k = 0; k < N; k++) {
        const [a, b] = shardRows(n, { index: k, count: N });
        assert.equal(a, next);
        assert.ok(b >= a);
        next = b;
      }
      assert.equal(next, n);
    }
  }
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  for (const bad of ["3/2", "0/0", "3/3", "-1/2", "1", "a/b", "1/2/3"]) {
    assert.throws(() => parseShard(bad), isScnym(/--shard expects K\/N/));
  }
});

Deno.test("3 shards in processes merge to the unsharded output, bit for bit", opts, async () => {
  for (const ext of ["csv", "h5ad"]) {
    const whole = `${dir}/whole.${ext}`;
    const parts = [0, 1, 2].map((k) => `${dir}/part_${k}.${ext}`);
    const runs = await Promise.all([
      predict(modelA, whole),
      ...parts.map((p, k) => predict(modelA, p, "--shard", `${k}/3`)),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const merged = `${dir}/merged.${ext}`;
    // Named out of order on purpose: the merge orders parts by their shard index.
    const m = await scnym("merge-predictions", parts[2], parts[0], parts[1], "--out", merged);
    assert.equal(m.code, 0, m.stderr);
    if (ext === "csv") {
      const wholeBytes = await Deno.readFile(whole);
      assert.deepEqual(await Deno.readFile(merged), wholeBytes);
      // The parts themselves: same header, rows in input order, concatenating to the whole.
      const texts = await Promise.all(parts.map((p) => Deno.readTextFile(p)));
      const header = texts[0].slice(0, texts[0].indexOf("\n") + 1);
      for (const t of texts) assert.ok(t.startsWith(header));
      const cat = texts[0] + texts.slice(1).map((t) => t.slice(header.length)).join("");
      assert.equal(cat, new TextDecoder().decode(wholeBytes));
      // A labels table makes predict read the query whole (the path of 10x inputs): same bytes.
      const cells = cat.trim().split("\n").slice(1).map((l) => l.split(",")[0]);
      await Deno.writeTextFile(
        `${dir}/labels.csv`,
        ["cell,x", ...cells.map((c) => `${c},1`)].join("\n"),
      );
      const viaMemory = `${dir}/memory.csv`;
      const r = await predict(modelA, viaMemory, "--query-labels", `${dir}/labels.csv`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await Deno.readFile(viaMemory), wholeBytes);
    } else {
      const [a, b] = [await readContents(whole), await readContents(merged)];
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
      for (const [k, v] of a) assert.equal(b.get(k), v, `${k} differs`);
      assert.ok(a.has("/obsm/X_scnym") && a.has("/obs/scNym/codes"));
    }
  }
});

Deno.test(
  "bad shards, parts of different models and Ctrl-C are refused cleanly",
  opts,
  async () => {
    for (const s of ["3/2", "0/0"]) {
      const out = `${dir}/bad_${s.replace("/", "_")}.csv`;
      const r = await predict(modelA, out, "--shard", s);
      assert.equal(r.code, 2);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /scnym predict: error: --shard expects K\/N/);
      await assert.rejects(Deno.stat(out));
    }
    const p0 = `${dir}/mix_0.h5ad`;
    const p1 = `${dir}/mix_1.h5ad`;
    const runs = await Promise.all([
      predict(modelA, p0, "--shard", "0/2"),
      predict(modelB, p1, "--shard", "1/2"),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const m = await scnym("merge-predictions", p0, p1, "--out", `${dir}/mix.h5ad`);
    assert.equal(m.code, 1);
    assert.equal(m.stderr.trim().split("\n").length, 1, m.stderr);
    assert.match(m.stderr, /come from different models/);
    await assert.rejects(Deno.stat(`${dir}/mix.h5ad`));
    const lone = await scnym("merge-predictions", p0, "--out", `${dir}/lone.h5ad`);
    assert.match(lone.stderr, /shard\(s\) 1 of 2 missing/);

    // Ctrl-C while the output is being written: nothing under the final name, no temporary left.
    const big = `${dir}/big.h5ad`;
    await writeSimulation(
      big,
      simulate({ cellsPerDomain: [20000, 20000], genes: 200, types: 4, seed: 6 }),
    );
    const out = `${dir}/sub/interrupted.h5ad`;
    await Deno.mkdir(`${dir}/sub`);
    const child = new Deno.Command(Deno.execPath(), {
      args: scriptArgs("cli.ts", ["predict", "--model", modelA, "--query", big, "--out", out]),
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Wait for the temporary output to appear, then interrupt.
    for (let i = 0; i < 600 && [...Deno.readDirSync(`${dir}/sub`)].length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    const st = await child.output();
    const err = new TextDecoder().decode(st.stderr);
    assert.equal(st.code, 130, err);
    assert.match(err, /interrupted; no output written/);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)], []);
  },
);
