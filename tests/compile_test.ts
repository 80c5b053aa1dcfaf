/**
 * The single-file binary: `deno compile` of cli.ts, then the binary runs `--version` and
 * `simulate` + `inspect` (module graph complete, wasm of h5wasm embedded). `deno compile`
 * downloads Deno's `denort` once; where that download is impossible (no network) the test says
 * so and stops.
 */
import assert from "node:assert/strict";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("deno compile builds a working scnym binary", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "scnym-compile-" });
  try {
    const bin = `${dir}/scnym`;
    const compile = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-A", "--config", CONFIG, "--output", bin, CLI],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(compile.stderr);
    if (!compile.success && /dns error|lookup address|download|network|connect/i.test(err)) {
      console.log(`skipped: deno compile could not download denort here (${err.split("\n")[0]})`);
      return;
    }
    assert.ok(compile.success, err);
    const run = (...args: string[]) =>
      new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
    const version = await run("--version");
    assert.match(new TextDecoder().decode(version.stdout), /^scnym \d+\.\d+\.\d+/);
    const sim = await run(
      "simulate",
      "--out",
      `${dir}/s.h5ad`,
      "--cells",
      "20,20",
      "--genes",
      "200",
    );
    assert.ok(sim.success, new TextDecoder().decode(sim.stderr));
    const inspect = await run("inspect", `${dir}/s.h5ad`, "--json");
    assert.equal(JSON.parse(new TextDecoder().decode(inspect.stdout)).nObs, 40);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
