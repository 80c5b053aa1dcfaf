/**
 * Offline analysis of the guard study's cache (bench/guard_study.ts): per task and seed, the
 * target accuracy of every candidate (evaluation only), the guard's decision (scnym/guard.ts,
 * which never sees the target labels) and the accuracy of what it chose; then the same over a
 * grid of thresholds, to show how sensitive the choice is to them.
 *
 *   deno run -A bench/guard_analyse.ts [--cache /tmp/guard_study] [--json OUT]
 */
import { parseArgs } from "node:util";
import { argmaxRows } from "../util/argmax.ts";
import {
  decidedWithoutNoDan,
  decideGuard,
  GUARD_CANDIDATES,
  GUARD_THRESHOLDS,
  type GuardInput,
  type GuardThresholds,
  meanProbabilities,
} from "../scnym/guard.ts";
import { TASKS } from "./tasks.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    cache: { type: "string", default: "/tmp/guard_study" },
    seeds: { type: "string", default: "0,1,2" },
    json: { type: "string" },
  },
});
const seeds = args.values.seeds!.split(",").map(Number);
const MODELS = [...GUARD_CANDIDATES, "logistic"];

interface Run {
  classes: string[];
  validation: { labels: number[]; probs: number[][] };
  target: { probs: number[][] };
  evaluation: { truth: (string | null)[]; accuracy: number };
}
const load = (t: string, c: string, s: number): Run | null => {
  try {
    return JSON.parse(Deno.readTextFileSync(`${args.values.cache}/${t}-${c}-seed${s}.json`));
  } catch {
    return null;
  }
};
const flat = (rows: number[][]) => Float64Array.from(rows.flat());
const accuracyOf = (probs: ArrayLike<number>, r: Run) => {
  const C = r.classes.length, n = r.evaluation.truth.length;
  const pred = argmaxRows(probs, n, C);
  let hits = 0;
  for (let i = 0; i < n; i++) if (r.classes[pred[i]] === r.evaluation.truth[i]) hits++;
  return hits / n;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f3 = (x: number) => x.toFixed(3);

type Cell = { seed: number; runs: Record<string, Run>; input: GuardInput };
const cells: Record<string, Cell[]> = {};
for (const t of [...Object.keys(TASKS), "shift_lymphoid"]) {
  for (const s of seeds) {
    const runs: Record<string, Run> = {};
    for (const m of MODELS) {
      const r = load(t, m, s);
      if (r) runs[m] = r;
    }
    if (!GUARD_CANDIDATES.every((c) => runs[c])) continue;
    const out = (r: Run) => ({
      validation: flat(r.validation.probs),
      target: flat(r.target.probs),
    });
    const input: GuardInput = {
      classes: runs.default.classes.length,
      validationLabels: runs.default.validation.labels,
      candidates: Object.fromEntries(GUARD_CANDIDATES.map((c) => [c, out(runs[c])])),
      linear: runs.logistic ? out(runs.logistic) : undefined,
    };
    (cells[t] ??= []).push({ seed: s, runs, input });
  }
}

/** Per task and seed: every model's target accuracy, and the guard's decision with its scores. */
const details: Record<string, unknown>[] = [];

function evaluateRule(th: GuardThresholds, verbose: boolean) {
  const perTask: Record<string, Record<string, number | string>> = {};
  for (const [t, cs] of Object.entries(cells)) {
    const acc: Record<string, number[]> = { guard: [], ensemble: [], ensembleNets: [] };
    const choices: string[] = [];
    for (const { seed, runs, input } of cs) {
      for (const m of MODELS) if (runs[m]) (acc[m] ??= []).push(runs[m].evaluation.accuracy);
      // As training does it: no_dan (and the linear voter) only when rule 2 does not decide.
      const { no_dan: _, ...two } = input.candidates;
      const first = decideGuard({ ...input, candidates: two, linear: undefined }, th);
      const d = decidedWithoutNoDan(first) ? first : decideGuard(input, th);
      choices.push(d.chosen);
      acc.guard.push(runs[d.chosen].evaluation.accuracy);
      const nets = GUARD_CANDIDATES.map((c) => flat(runs[c].target.probs));
      acc.ensembleNets.push(accuracyOf(meanProbabilities(nets), runs.default));
      const all = runs.logistic ? [...nets, flat(runs.logistic.target.probs)] : nets;
      acc.ensemble.push(accuracyOf(meanProbabilities(all), runs.default));
      if (verbose) {
        console.log(`${t} seed ${seed}: ${d.chosen} (${d.rule}) ${d.reason}`);
        const accuracy = Object.fromEntries(
          Object.entries(runs).map(([m, r]) => [m, r.evaluation.accuracy]),
        );
        details.push({ task: t, seed, accuracy, decision: d });
      }
    }
    perTask[t] = Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, mean(v)]));
    perTask[t].choices = choices.join(",");
  }
  return perTask;
}

const main = evaluateRule(GUARD_THRESHOLDS, true);
const cols = [...MODELS, "guard", "ensembleNets", "ensemble"];
console.log(`\ntask          seeds ${cols.map((c) => c.padStart(9)).join(" ")}  bar    choices`);
for (const [t, r] of Object.entries(main)) {
  const task = TASKS[t] ?? { original: { accuracy: 0 }, svm: 0 };
  const bar = Math.max(
    task.original.accuracy,
    task.svm,
    ...["no_dan", "no_ssl", "logistic"]
      .map((m) => (r[m] as number) ?? 0),
  ) - 0.005;
  console.log(
    `${t.padEnd(13)} ${cells[t].length}     ${
      cols.map((c) => (r[c] === undefined ? "-" : f3(r[c] as number)).padStart(9)).join(" ")
    }  ${f3(bar)}  ${r.choices}`,
  );
}
console.log("\nthreshold sweep (guard mean accuracy per task):");
for (const agreeShare of [0, 0.05, 1]) {
  for (const stray of [0, 0.01, 0.02, 0.03, 0.05]) {
    const r = evaluateRule({ ...GUARD_THRESHOLDS, agreeShare, stray }, false);
    console.log(
      `agree ${agreeShare} stray ${stray}: ` +
        Object.entries(r).map(([t, v]) => `${t} ${f3(v.guard as number)} [${v.choices}]`).join(
          "  ",
        ),
    );
  }
}
if (args.values.json) {
  Deno.writeTextFileSync(
    args.values.json,
    JSON.stringify(
      {
        name: "guard",
        date: new Date().toISOString(),
        command: `deno run -A bench/guard_analyse.ts ${Deno.args.join(" ")}`.trim(),
        thresholds: GUARD_THRESHOLDS,
        perTask: main,
        runs: details,
      },
      null,
      2,
    ) + "\n",
  );
}
