/**
 * The transfer tasks on the real datasets of ../shared/data that the benchmarks share, with the
 * original scNym's scores as recorded from the PyTorch original (default configuration, seeds 0-2,
 * from the training issue; the original cannot run here). The linear baselines are computed in the
 * same run instead (bench/baselines.ts).
 */

/** One transfer task: which file, which cells are labelled, which are the target. */
export interface TransferTask {
  file: string;
  labels: string;
  targetWhere: string;
  referenceWhere?: string;
  /** Recorded from the original scNym (not run here). */
  original: { accuracy: number; macroF1: number };
  /**
   * Linear SVM accuracy recorded in the training issue. Superseded by the SVM computed in the same
   * run (bench/baselines.ts, used by bench/accuracy.ts); remove once bench/guard_analyse.ts no
   * longer reads it.
   */
  svm: number;
}

/**
 * The shared data folder: $SCNYM_DATA, else ../shared/data beside the repository (benchmarks skip
 * with a message when it is absent).
 */
export const DATA = (Deno.env.get("SCNYM_DATA") ?? new URL("../../shared/data/", import.meta.url)
  .pathname).replace(/\/?$/, "/");

/** The four tasks: Kang CTRL->STIM, symphony 3'v2->5' and 5'->3'v1, pancreas Wang->Xin. */
export const TASKS: Record<string, TransferTask> = {
  kang: {
    file: "kang_ifnb_sub_2000.h5ad",
    labels: "cell_type",
    targetWhere: "condition=STIM",
    original: { accuracy: 0.866, macroF1: 0.677 },
    svm: 0.875,
  },
  sym_3pv2_5p: {
    file: "pbmc_symphony_3tech_1200.h5ad",
    labels: "cell_type",
    referenceWhere: "tech=3pv2",
    targetWhere: "tech=5p",
    original: { accuracy: 0.959, macroF1: 0.843 },
    svm: 0.965,
  },
  sym_5p_3pv1: {
    file: "pbmc_symphony_3tech_1200.h5ad",
    labels: "cell_type",
    referenceWhere: "tech=5p",
    targetWhere: "tech=3pv1",
    original: { accuracy: 0.903, macroF1: 0.613 },
    svm: 0.903,
  },
  pancreas: {
    file: "pancreas_wang_xin_1175.h5ad",
    labels: "cell_type",
    targetWhere: "study=xin",
    original: { accuracy: 0.986, macroF1: 0.989 },
    svm: 0.985,
  },
};

/**
 * Unseen-type tasks for the novelty score (bench/novelty_study.ts): a shared task with one cell
 * type removed from the reference, so every target cell of that type is unseen (71, 20 and 120
 * cells on symphony 3'v2 -> 5', 49 and 79 on pancreas, against Kang's 5 Eryth cells). The files
 * are derived from the shared data under /tmp (never in the repository) by the Python snippet in
 * the note of bench/novelty_analyse.ts; a column `ho_<type>` says `ref` / `target` / `none`.
 */
export const UNSEEN_TASKS: Record<string, TransferTask> = Object.fromEntries(
  [
    ["sym_noB", "holdout_sym", "B"],
    ["sym_noNK", "holdout_sym", "NK"],
    ["sym_noMono14", "holdout_sym", "Mono_CD14"],
    ["pan_noDelta", "holdout_pan", "delta"],
    ["pan_noGamma", "holdout_pan", "gamma"],
  ].map(([name, file, type]) => [name, {
    file: `/tmp/guard_c/${file}.h5ad`,
    labels: "cell_type",
    referenceWhere: `ho_${type}=ref`,
    targetWhere: `ho_${type}=target`,
    original: { accuracy: NaN, macroF1: NaN },
    svm: NaN,
  }]),
);
