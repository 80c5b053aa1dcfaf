/** What the page shows of a run's predictions, computed the same way by the page and its test. */
import type { LoadedTraining } from "../scnym/inputs.ts";

/** Predicted label counts of the target cells, and their accuracy against the file's labels. */
export function targetSummary(
  loaded: LoadedTraining,
  labels: string[],
): { counts: Record<string, number>; targetAccuracy: number | null } {
  const counts: Record<string, number> = {};
  let hits = 0, known = 0;
  loaded.set.isTarget.forEach((t, i) => {
    if (!t) return;
    counts[labels[i]] = (counts[labels[i]] ?? 0) + 1;
    if (loaded.truth[i] !== null) {
      known++;
      if (loaded.truth[i] === labels[i]) hits++;
    }
  });
  return { counts, targetAccuracy: known ? hits / known : null };
}
