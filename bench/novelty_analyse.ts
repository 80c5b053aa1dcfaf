/**
 * Offline comparison of calibrations and unseen-type scores on the cache of
 * bench/novelty_study.ts (logits and embeddings of every cell of each task and seed; no
 * retraining). Per task and seed:
 * - the temperature fitted (scnym/calibration.ts) on the early-stopping split, the validation
 *   split, or both, and the target ECE (all target cells, unseen types counted wrong; 15 bins)
 *   before and after, and with both splits' T floored at 1 as training ships it;
 * - the AUROC of each candidate novelty score for the target cells whose type the reference lacks:
 *   1 - max probability (at T = 1 and at the fitted T), energy (T = 1 and fitted), Mahalanobis to
 *   the nearest class (ridge 0.001, 0.01, 0.1; scnym/calibration.ts) and the k-th nearest reference
 *   training embedding (cosine, k = 1, 10; Sun et al., ICML 2022).
 *
 *   deno run -A bench/novelty_analyse.ts [--cache /tmp/guard_c/cache] [--config default]
 *
 * The unseen-type tasks of bench/tasks.ts (`UNSEEN_TASKS`) read files made from the shared data
 * by (Debian python3 with anndata):
 *
 *   import anndata as ad, numpy as np
 *   for src, out, ref, tgt, col, types in [
 *       ("pbmc_symphony_3tech_1200", "holdout_sym", "3pv2", "5p", "tech", ["B", "NK", "Mono_CD14"]),
 *       ("pancreas_wang_xin_1175", "holdout_pan", "wang", "xin", "study", ["delta", "gamma"])]:
 *       a = ad.read_h5ad(f"../shared/data/{src}.h5ad")
 *       for t in types:
 *           a.obs["ho_" + t] = np.where((a.obs[col] == ref) & (a.obs.cell_type != t), "ref",
 *                                       np.where(a.obs[col] == tgt, "target", "none"))
 *       a.write_h5ad(f"/tmp/guard_c/{out}.h5ad")
 */
import { parseArgs } from "node:util";
import { auroc, expectedCalibrationError } from "../eval/metrics.ts";
import { energyScore, fitNovelty, fitTemperature, noveltyScore } from "../scnym/calibration.ts";
import { MIN_TEMPERATURE } from "../scnym/fit_calibration.ts";
import { argmaxRows } from "../util/argmax.ts";
import { softmaxRows } from "../util/softmax.ts";
import { TASKS, UNSEEN_TASKS } from "./tasks.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    cache: { type: "string", default: "/tmp/guard_c/cache" },
    config: { type: "string", default: "default" },
    seeds: { type: "string", default: "0,1,2" },
    json: { type: "string" },
  },
});

interface Meta {
  classes: string[];
  hidden: number;
  cells: number;
  split: (string | null)[];
  label: number[];
  truth: (string | null)[];
}

const rowsOf = (m: Meta, s: string) => m.split.flatMap((x, i) => x === s ? [i] : []);
function gather(a: Float32Array, rows: number[], w: number): Float32Array {
  const out = new Float32Array(rows.length * w);
  rows.forEach((r, k) => out.set(a.subarray(r * w, (r + 1) * w), k * w));
  return out;
}
const maxRow = (p: ArrayLike<number>, C: number) =>
  Float64Array.from({ length: p.length / C }, (_, r) => {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, p[r * C + c]);
    return m;
  });

/** k-th largest cosine similarity to the reference rows, negated (higher = more novel). */
function knnScore(ref: Float32Array, q: Float32Array, H: number, k: number): Float64Array {
  const norm = (a: Float32Array) => {
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length / H; i++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += a[i * H + h] ** 2;
      const d = Math.sqrt(s) || 1;
      for (let h = 0; h < H; h++) out[i * H + h] = a[i * H + h] / d;
    }
    return out;
  };
  const R = norm(ref), Q = norm(q);
  const nR = ref.length / H, nQ = q.length / H;
  const out = new Float64Array(nQ);
  const sims = new Float64Array(nR);
  for (let i = 0; i < nQ; i++) {
    for (let j = 0; j < nR; j++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += Q[i * H + h] * R[j * H + h];
      sims[j] = s;
    }
    out[i] = -[...sims].sort((a, b) => b - a)[k - 1];
  }
  return out;
}

const table: Record<string, Record<string, number | null>[]> = {};
for (const t of [...Object.keys(TASKS), ...Object.keys(UNSEEN_TASKS)]) {
  for (const seed of args.values.seeds!.split(",").map(Number)) {
    const base = `${args.values.cache}/${t}-${args.values.config}-seed${seed}`;
    let meta: Meta;
    try {
      meta = JSON.parse(Deno.readTextFileSync(`${base}.json`));
    } catch {
      continue;
    }
    const C = meta.classes.length, H = meta.hidden;
    const logits = new Float32Array(Deno.readFileSync(`${base}.logits.f32`).buffer);
    const emb = new Float32Array(Deno.readFileSync(`${base}.embedding.f32`).buffer);
    const tgt = rowsOf(meta, "target"), es = rowsOf(meta, "early_stopping");
    const val = rowsOf(meta, "validation"), tr = rowsOf(meta, "train");
    const lab = (rows: number[]) => rows.map((i) => meta.label[i]);
    const Tes = fitTemperature(gather(logits, es, C), C, lab(es));
    const Tval = fitTemperature(gather(logits, val, C), C, lab(val));
    const both = [...es, ...val];
    const Tboth = fitTemperature(gather(logits, both, C), C, lab(both));
    const zt = gather(logits, tgt, C);
    const pred = argmaxRows(zt, tgt.length, C);
    const correct = tgt.map((i, k) => meta.classes[pred[k]] === meta.truth[i]);
    const ece = (T: number) =>
      expectedCalibrationError(maxRow(softmaxRows(zt, C, T), C), correct).ece;
    // Held-out ECE on the validation split with T fitted on early stopping only.
    const zv = gather(logits, val, C);
    const pv = argmaxRows(zv, val.length, C);
    const cv = val.map((i, k) => pv[k] === meta.label[i]);
    const eceVal = (T: number) =>
      expectedCalibrationError(maxRow(softmaxRows(zv, C, T), C), cv).ece;
    const seen = new Set(meta.classes);
    const unseen = tgt.map((i) => !seen.has(meta.truth[i]!));
    const nUnseen = unseen.filter(Boolean).length;
    const row: Record<string, number | null> = {
      seed,
      Tes,
      Tval,
      Tboth,
      eceBefore: ece(1),
      eceEs: ece(Tes),
      eceVal: ece(Tval),
      eceBoth: ece(Tboth),
      // What training ships: T fitted on both held-out splits, floored at MIN_TEMPERATURE.
      eceShipped: ece(Math.max(MIN_TEMPERATURE, Tboth)),
      heldOutEceBefore: eceVal(1),
      heldOutEceAfterEsT: eceVal(Tes),
      unseen: nUnseen,
    };
    if (nUnseen > 0) {
      const a = (s: ArrayLike<number>) => auroc(s, unseen);
      const eTr = gather(emb, tr, H), eT = gather(emb, tgt, H);
      row.maxProb = a(maxRow(softmaxRows(zt, C, 1), C).map((x) => 1 - x));
      row.maxProbT = a(maxRow(softmaxRows(zt, C, Tboth), C).map((x) => 1 - x));
      row.energy = a(energyScore(zt, C, 1));
      row.energyT = a(energyScore(zt, C, Tboth));
      for (const r of [0.001, 0.01, 0.1]) {
        row[`maha${r}`] = a(noveltyScore(fitNovelty(eTr, H, lab(tr), C, r), eT));
      }
      row.knn1 = a(knnScore(eTr, eT, H, 1));
      row.knn10 = a(knnScore(eTr, eT, H, 10));
    }
    (table[t] ??= []).push(row);
    console.log(t, JSON.stringify(row, (_, v) => typeof v === "number" ? +v.toFixed(4) : v));
  }
}
const mean = (xs: (number | null | undefined)[]) => {
  const ok = xs.filter((x): x is number => typeof x === "number");
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
};
const keys = [
  "Tboth",
  "eceBefore",
  "eceEs",
  "eceVal",
  "eceBoth",
  "eceShipped",
  "heldOutEceBefore",
  "heldOutEceAfterEsT",
  "unseen",
  "maxProb",
  "maxProbT",
  "energy",
  "energyT",
  "maha0.001",
  "maha0.01",
  "maha0.1",
  "knn1",
  "knn10",
];
console.log(`\n| task | seeds | ${keys.join(" | ")} |`);
console.log(`| --- | --- | ${keys.map(() => "---").join(" | ")} |`);
for (const [t, rows] of Object.entries(table)) {
  const cells = keys.map((k) => {
    const m = mean(rows.map((r) => r[k]));
    return m === null ? "-" : m.toFixed(3);
  });
  console.log(`| ${t} | ${rows.length} | ${cells.join(" | ")} |`);
}
if (args.values.json) Deno.writeTextFileSync(args.values.json, JSON.stringify(table, null, 2));
