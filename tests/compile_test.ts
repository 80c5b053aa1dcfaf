/**
 * The single-file binary: `deno compile` of cli.ts, then the binary runs `--version` and
 * `simulate` + `inspect` (module graph complete, wasm of h5wasm embedded). `deno compile`
 * downloads Deno's `denort` once; where that download is impossible (no network to Deno's
 * servers, as on our build machines and in CI) the compile is tried when this file loads and the
 * test is reported as ignored, with the reason, never as passed.
 */
import assert from "node:assert/strict";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "scnym-compile-" });
const bin = `${dir}/scnym`;

const compile = await new Deno.Command(Deno.execPath(), {
  args: ["compile", "-A", "--config", CONFIG, "--output", bin, CLI],
  stdout: "piped",
  stderr: "piped",
  env: { NO_COLOR: "1" },
}).output();
const compileErr = new TextDecoder().decode(compile.stderr);
const noDenort = !compile.success &&
  /dns error|lookup address|download|network|connect/i.test(compileErr);
if (noDenort) {
  const why = compileErr.split("\n").find((l) => /dns error|connect|download/i.test(l)) ?? "";
  console.warn(`ignoring the deno compile test: denort cannot be downloaded here (${why.trim()})`);
  await Deno.remove(dir, { recursive: true });
}

Deno.test({
  name: "deno compile builds a working scnym binary",
  ignore: noDenort,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    try {
      assert.ok(compile.success, compileErr);
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
  },
});
