/**
 * The experiment behind calibration and the novelty score (issue 8): for every shared task and
 * seed, trains one configuration and caches, per cell of the training set, the eval-mode logits
 * (computed in float64 from the embedding and the head) and the 256-d embedding, with the cells'
 * splits and labels. Candidate calibrations and unseen-type scores are then compared offline on
 * this cache (`bench/novelty_analyse.ts`), so no candidate costs a retraining.
 *
 *   deno run -A bench/novelty_study.ts [--tasks ...] [--seeds 0,1,2] [--config default]
 *                                      [--cache /tmp/guard_c/cache]
 */
import { parseArgs } from "node:util";
import { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { predictCells } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { DATA, TASKS, UNSEEN_TASKS } from "./tasks.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "kang,sym_3pv2_5p,sym_5p_3pv1,pancreas" },
    config: { type: "string", default: "default" },
    seeds: { type: "string", default: "0,1,2" },
    cache: { type: "string", default: "/tmp/guard_c/cache" },
  },
});
const rt = await Runtime.create();
const progress = new Progress({ quiet: true });
for (const seed of args.values.seeds!.split(",").map(Number)) {
  for (const t of args.values.tasks!.split(",")) {
    const task = TASKS[t] ?? UNSEEN_TASKS[t];
    const base = `${args.values.cache}/${t}-${args.values.config}-seed${seed}`;
    try {
      Deno.statSync(`${base}.json`);
      continue;
    } catch { /* not cached yet */ }
    const { result, loaded } = await trainFromFiles({
      reference: task.file.startsWith("/") ? task.file : DATA + task.file,
      labels: task.labels,
      targetWhere: task.targetWhere,
      referenceWhere: task.referenceWhere,
      config: args.values.config,
      seed,
      rt,
      progress,
    });
    const p = await predictCells(rt, result.model, loaded.set.X, { classes: result.classes });
    const tensors = await result.model.download();
    const W = tensors.get("head.W")!.data, b = tensors.get("head.b")!.data;
    const C = result.classes.length, H = p.hidden, n = loaded.set.X.nRows;
    const logits = new Float32Array(n * C);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < C; c++) {
        let s = b[c];
        for (let h = 0; h < H; h++) s += p.embedding[i * H + h] * W[h * C + c];
        logits[i * C + c] = s;
      }
    }
    Deno.writeFileSync(`${base}.logits.f32`, new Uint8Array(logits.buffer));
    Deno.writeFileSync(`${base}.embedding.f32`, new Uint8Array(p.embedding.buffer));
    Deno.writeTextFileSync(
      `${base}.json`,
      JSON.stringify({
        task: t,
        config: args.values.config,
        seed,
        classes: result.classes,
        hidden: H,
        cells: n,
        split: result.cellSplit,
        label: loaded.set.labels.map((l) => l === null ? -1 : result.classes.indexOf(l)),
        // Evaluation only.
        truth: loaded.truth,
        trainSeconds: result.seconds,
      }),
    );
    console.log(`${t} seed ${seed}: ${n} cells, ${result.seconds.toFixed(0)} s`);
    result.model.destroy();
  }
}
rt.destroy();
