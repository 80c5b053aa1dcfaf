/**
 * The `scnym` command line: `deno run -A cli.ts <command> ...`, or the compiled binary.
 */
import { closest } from "./commands/common.ts";
import { evaluateCommand } from "./commands/evaluate.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { interpretCommand } from "./commands/interpret.ts";
import { mergePredictionsCommand } from "./commands/merge_predictions.ts";
import { predictCommand } from "./commands/predict.ts";
import { simulateCommand } from "./commands/simulate.ts";
import { trainCommand } from "./commands/train.ts";
import { VERSION } from "./version.ts";

const COMMANDS: Record<string, [(args: string[]) => Promise<number>, string]> = {
  train: [trainCommand, "train a model on labelled reference + unlabelled target cells"],
  predict: [predictCommand, "label the cells of a query with a trained model"],
  "merge-predictions": [mergePredictionsCommand, "join the part files of predict --shard K/N"],
  interpret: [interpretCommand, "rank the genes that drive each class's predictions (saliency)"],
  evaluate: [evaluateCommand, "score predictions against known labels; HTML report"],
  inspect: [inspectCommand, "describe an .h5ad / 10x file before training"],
  simulate: [simulateCommand, "write a synthetic experiment (demo and test data)"],
};

const HELP =
  `scnym ${VERSION}: cell-type label transfer with scNym (MixMatch + domain adversary) on WebGPU

usage: scnym <command> [options]     (scnym <command> --help for its options)

commands:
${Object.entries(COMMANDS).map(([k, [, d]]) => `  ${k.padEnd(19)}${d}`).join("\n")}

example:
  scnym train --reference ref.h5ad --labels cell_type --query query.h5ad --out model.scnym
  scnym predict --model model.scnym --query query.h5ad --out annotated.h5ad`;

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (!cmd || cmd === "-h" || cmd === "--help" || cmd === "help") {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === "--version" || cmd === "version") {
    console.log(`scnym ${VERSION}`);
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    const guess = closest(cmd, Object.keys(COMMANDS));
    console.error(
      `scnym: error: unknown command "${cmd}"` +
        (guess ? `; did you mean ${guess}?` : ` (commands: ${Object.keys(COMMANDS).join(", ")})`),
    );
    return 2;
  }
  return await entry[0](rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
