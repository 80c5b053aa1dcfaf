/**
 * Pieces the training and prediction commands share: reading `--config`, and the HTML report of
 * a run.
 */
import { buildTransferReport, type TransferReport, writeTransferReport } from "../eval/pipeline.ts";
import type { ReportSection } from "../eval/report.ts";
import type { SaliencyReport } from "../eval/saliency_section.ts";
import { isConfigName, NAMED_CONFIGS } from "../scnym/config.ts";
import { AUTO_CONFIG } from "../scnym/guard_train.ts";
import type { LoadedTraining } from "../scnym/inputs.ts";
import type { CellPredictions } from "../scnym/predict.ts";
import { ScnymError } from "../util/errors.ts";
import type { Progress } from "../util/progress.ts";

/**
 * `--config` is a named configuration or a JSON file of overrides; the file may name its base
 * configuration with `"base"` (default `default`).
 */
export async function readConfigArg(arg: string): Promise<{ name: string; overrides?: unknown }> {
  if (isConfigName(arg) || arg === AUTO_CONFIG) return { name: arg };
  let text: string;
  try {
    text = await Deno.readTextFile(arg);
  } catch {
    throw new ScnymError(
      `--config ${arg}: neither a configuration name ` +
        `(${[AUTO_CONFIG, ...Object.keys(NAMED_CONFIGS)].join(", ")}) ` +
        "nor a readable JSON file",
      2,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScnymError(`${arg}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ScnymError(`${arg}: expected a JSON object of configuration overrides`);
  }
  const { base, ...overrides } = json as Record<string, unknown>;
  if (base !== undefined && typeof base !== "string") {
    throw new ScnymError(`${arg}: "base" must be a configuration name`);
  }
  return { name: (base as string | undefined) ?? "default", overrides };
}

/** Everything a run's report needs. */
export interface RunReportInput {
  loaded: LoadedTraining;
  /** Predictions of every cell of `loaded` (reference and target), in its order. */
  prediction: CellPredictions;
  trainingLabels: string[];
  facts: Record<string, string | number | undefined>;
  seed: number;
  overwrite: boolean;
  progress: Progress;
  /** Extra plain-text sections (the guard's decision). */
  sections?: ReportSection[];
  /** The saliency section (`--interpret`). */
  saliency?: SaliencyReport;
}

/**
 * Writes the HTML report of a training run (see `buildRunReport`) to `path`, its figures beside it.
 */
export async function reportForRun(path: string, r: RunReportInput): Promise<void> {
  await writeTransferReport(path, await buildRunReport(r), { overwrite: r.overwrite });
}

/**
 * The HTML report of a training run: predictions and UMAP of every cell, domain mixing (learned
 * features vs the input), and every number over the (annotated) target cells. The web page shows
 * and downloads it.
 */
export function buildRunReport(r: RunReportInput): Promise<TransferReport> {
  const { loaded, prediction: p } = r;
  const set = loaded.set;
  const domain = set.domains ??
    set.isTarget.map((t) => t ? "target" : "reference");
  return buildTransferReport({
    facts: r.facts,
    cellNames: loaded.cellNames,
    predicted: p.labels,
    confidence: p.confidence,
    novelty: p.novelty ?? undefined,
    probabilities: { classes: p.classes, values: p.probabilities },
    embedding: { data: p.embedding, dims: p.hidden },
    truth: loaded.truth.some((t) => t !== null) ? loaded.truth : undefined,
    // The numbers are about the target cells; the reference cells appear in the UMAPs (as
    // labelled training cells in the annotated panel) and in the domain mixing.
    scope: set.isTarget.some((t) => !t) && set.isTarget.some((t) => t)
      ? { cells: set.isTarget, name: "target cells" }
      : undefined,
    trainingAnnotation: set.labels.map((l, i) => set.isTarget[i] ? null : l),
    domain,
    trainingLabels: r.trainingLabels,
    input: set.X,
    confidenceThreshold: p.unknownThreshold ?? undefined,
    seed: r.seed,
    progress: r.progress,
    sections: r.sections,
    saliency: r.saliency,
  });
}
