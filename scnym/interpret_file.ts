/**
 * The library counterpart of `scnym interpret`: a model and a query file in, per-class gene
 * rankings out. The query is read, normalised and aligned exactly as `predictFile` does it.
 */
import {
  predictFile,
  type PredictFileOptions,
  type PredictFileResult,
  readForModel,
} from "./api.ts";
import { Runtime } from "../runtime/runtime.ts";
import {
  type Interpretation,
  interpretCells,
  type InterpretOptions,
  resolveClasses,
} from "./interpret.ts";
import { modelOf } from "./predict.ts";

/** Options of `interpretFile`: those of `predictFile` and of `interpretCells`. */
export interface InterpretFileOptions extends PredictFileOptions, InterpretOptions {
  /** eg: reference cells from this file instead of the query (normalised and aligned alike). */
  backgroundFile?: string;
}

/** What `interpretFile` returns: the prediction it explained and the explanation. */
export interface InterpretFileResult extends PredictFileResult {
  interpretation: Interpretation;
}

/**
 * Predicts the query (as `predictFile`), then explains the requested classes with `method`.
 * Class names are checked against the model before the query is read.
 */
export async function interpretFile(opts: InterpretFileOptions): Promise<InterpretFileResult> {
  const rt = opts.rt ?? await Runtime.create();
  const model = await modelOf(rt, opts.model);
  resolveClasses(model.header.classes, opts.classes);
  const r = await predictFile({ ...opts, model, rt });
  const genes = r.loaded.header.genes;
  let background = opts.background;
  if (opts.backgroundFile && !background) {
    // Reference cells are seen as the query is: same normalisation, same genes.
    background = (await readForModel(opts.backgroundFile, r.loaded.header, {
      ...opts,
      queryLabels: undefined,
    }))
      .X;
  }
  const interpretation = await interpretCells(r.rt, r.loaded.model, r.X, r.prediction, genes, {
    ...opts,
    background,
  });
  return { ...r, interpretation };
}
