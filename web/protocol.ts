/** The messages between the page (web/app.ts) and its worker (web/worker.ts). */

/** An obs column as the page offers it: its name and (up to 50 of) its values. */
export interface ObsColumnInfo {
  name: string;
  values: string[];
}

/** Which input a file is: the annotated reference, or an optional second file of target cells. */
export type FileRole = "reference" | "query";

/** Page -> worker. */
export type ToWorker =
  | { type: "file"; role: FileRole; name: string; bytes: ArrayBuffer }
  | {
    type: "train";
    labels: string;
    /** Target cells in the reference (`COL=VALUE`), or "" for every cell of the query file. */
    targetWhere: string;
    config: string;
    seed: number;
    epochs: number;
  }
  | { type: "stop" };

/** The predictions of a finished run, summarised for the page. */
export interface RunSummary {
  seed: number;
  config: string;
  epochsRun: number;
  bestEpoch: number;
  interrupted: boolean;
  validationAccuracy: number | null;
  targetCells: number;
  /** Predicted label -> number of target cells. */
  counts: Record<string, number>;
  /** Accuracy of the target cells' predictions against the file's labels (null: none there). */
  targetAccuracy: number | null;
  seconds: number;
  /** The predictions table of every cell of the file (CSV). */
  csv: string;
  /** The annotated `.h5ad`: a copy of the target's file with scNym's outputs (as `--predictions`). */
  h5ad: Uint8Array;
  /** The model file (`scnym predict --model` reads it). */
  model: Uint8Array;
  /** The HTML report (as `scnym train --report` writes it). */
  report: string;
}

/** Worker -> page. */
export type FromWorker =
  | { type: "adapter"; description: string; isFallback: boolean; limits: Record<string, number> }
  | {
    type: "file";
    role: FileRole;
    name: string;
    cells: number;
    genes: number;
    columns: ObsColumnInfo[];
  }
  | { type: "log"; text: string }
  | {
    type: "epoch";
    epoch: number;
    supLoss: number;
    sslLoss: number;
    advLoss: number;
    valAccuracy: number;
    seconds: number;
  }
  | { type: "done"; summary: RunSummary }
  | { type: "error"; message: string };
