/**
 * Same seed, same bits, across changes of the code: training the reference runs of
 * `fixtures/train_golden.ts` must reproduce the recorded digests of weights, history,
 * probabilities and model file exactly. A refactor must pass this unchanged; a change that alters
 * the numbers on purpose regenerates the JSON and says so in its commit.
 */
import assert from "node:assert/strict";
import { cpuName, type Golden, goldenDigests } from "./fixtures/train_golden.ts";
import { gpuTest, testRuntime } from "./helpers.ts";

const recorded: Golden = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/train_golden.json", import.meta.url)),
);
const rt = await testRuntime();
const here = { adapter: rt.gpu.description, cpu: cpuName() };
const comparable = here.adapter === recorded.machine.adapter && here.cpu === recorded.machine.cpu;
if (!comparable) {
  console.warn(
    `golden_test: digests were recorded on ${JSON.stringify(recorded.machine)}, this machine is ` +
      `${JSON.stringify(here)}; the software adapter's floats depend on the CPU, so the ` +
      "comparison is ignored here",
  );
}

Deno.test({
  name: "training reproduces the recorded digests bit for bit (default, no_ssl, no_dan)",
  ignore: !comparable,
  ...gpuTest,
  fn: async () => {
    const now = await goldenDigests(rt);
    assert.deepEqual(now.digests, recorded.digests);
  },
});
