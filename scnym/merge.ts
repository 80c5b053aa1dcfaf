/**
 * Sharded prediction's bookkeeping: what a part file records about its shard, and joining the
 * parts of `scnym predict --shard K/N` into the output one unsharded run would have written.
 *
 * A part records its shard (K, N, its rows, the query's cell count, the query path) and the run
 * facts, which include a digest of the model file: in `uns/scNym_shard` and `uns/scNym_run` of an
 * `.h5ad` part, in `<part>.shard.json` next to a CSV/TSV part (whose header must stay the
 * unsharded table's). Parts are joined in shard order, whatever order they are named in, after
 * checking that they are the N shards of one run of one model.
 */
import type { UnsValue } from "../io/anndata.ts";
import { getDataset, readNumeric } from "../io/h5.ts";
import { H5adFile } from "../io/h5ad_read.ts";
import { isHdf5File } from "../io/predictions.ts";
import { ScnymError } from "../util/errors.ts";
import { requireFile, writeFileAtomic } from "../util/fs.ts";
import type { Progress } from "../util/progress.ts";
import { isTablePath, streamPredictionOutput } from "./outputs.ts";
import type { CellPredictions } from "./predict.ts";
import type { Shard } from "./predict_stream.ts";

/** The first 16 hex digits of the SHA-256 of a model file: tells models apart in part files. */
export async function modelDigest(path: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(hash).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** What a part file says about its shard. */
export interface ShardInfo extends Record<string, UnsValue> {
  index: number;
  count: number;
  /** Rows [first, end) of the query in this part. */
  first: number;
  end: number;
  /** Cells in the whole query. */
  cells: number;
  /** The query, as named to `predict` (the default query of an `.h5ad` merge). */
  query: string;
}

/** The record of shard `s` covering `rows` of a query of `cells` cells. */
export function shardInfo(s: Shard, rows: [number, number], cells: number, query: string) {
  return { index: s.index, count: s.count, first: rows[0], end: rows[1], cells, query };
}

/** A part file and what it records. */
interface Part {
  path: string;
  table: boolean;
  info: ShardInfo;
  run: Record<string, UnsValue>;
}

function asShardInfo(path: string, v: unknown): ShardInfo {
  const o = v as Partial<ShardInfo> | undefined;
  const ok = o &&
    ["index", "count", "first", "end", "cells"].every((k) => typeof o[k] === "number") &&
    typeof o.query === "string";
  if (!ok) {
    throw new ScnymError(
      `${path}: no shard record; is it a part written by scnym predict --shard?`,
    );
  }
  return o as ShardInfo;
}

async function readPart(path: string): Promise<Part> {
  if (isHdf5File(path, "part file")) {
    const h = await H5adFile.open(path);
    try {
      const uns = h.uns();
      const run = uns.scNym_run as Record<string, UnsValue> | undefined;
      return { path, table: false, info: asShardInfo(path, uns.scNym_shard), run: run ?? {} };
    } finally {
      h.close();
    }
  }
  const side = `${path}.shard.json`;
  let json: { run?: Record<string, UnsValue> } & Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(side));
  } catch {
    throw new ScnymError(
      `${path}: no readable ${side}; is it a part written by scnym predict --shard?`,
    );
  }
  const { run, ...info } = json;
  return { path, table: true, info: asShardInfo(side, info), run: run ?? {} };
}

/**
 * Reads the parts' records and puts them in shard order, refusing (one line) parts of different
 * models or runs, of different kinds, a missing or repeated shard, or shards of different queries.
 */
async function checkedParts(paths: string[]): Promise<Part[]> {
  if (paths.length === 0) throw new ScnymError("no part files given", 2);
  const parts = await Promise.all(paths.map(readPart));
  const [a] = parts;
  for (const b of parts.slice(1)) {
    if (b.run.modelDigest !== a.run.modelDigest) {
      throw new ScnymError(
        `${a.path} and ${b.path} come from different models (${a.run.model}, digest ` +
          `${a.run.modelDigest}; ${b.run.model}, digest ${b.run.modelDigest}): refusing to merge`,
      );
    }
    const key = Object.keys({ ...a.run, ...b.run }).find((k) => a.run[k] !== b.run[k]);
    if (key) {
      throw new ScnymError(
        `${a.path} and ${b.path} differ in ${key} (${a.run[key]} vs ${b.run[key]}): parts of ` +
          "different runs",
      );
    }
    if (b.table !== a.table) throw new ScnymError(`${a.path} and ${b.path} are of different kinds`);
    if (b.info.count !== a.info.count || b.info.cells !== a.info.cells) {
      throw new ScnymError(
        `${a.path} is shard ${a.info.index}/${a.info.count} of ${a.info.cells} cells, ${b.path} ` +
          `${b.info.index}/${b.info.count} of ${b.info.cells}: not parts of one query`,
      );
    }
  }
  const byIndex = new Map<number, Part>();
  for (const p of parts) {
    const twin = byIndex.get(p.info.index);
    if (twin) throw new ScnymError(`${twin.path} and ${p.path} are both shard ${p.info.index}`);
    byIndex.set(p.info.index, p);
  }
  const lacking = Array.from({ length: a.info.count }, (_, k) => k).filter((k) => !byIndex.has(k));
  if (lacking.length) {
    throw new ScnymError(`shard(s) ${lacking.join(", ")} of ${a.info.count} missing`);
  }
  return [...byIndex.values()].sort((x, y) => x.info.index - y.info.index);
}

/** Options of `mergePredictions`. */
export interface MergeOptions {
  /** The query to copy for an `.h5ad` output (default: the one the parts name). */
  query?: string;
  overwrite?: boolean;
  progress?: Progress;
}

/**
 * Joins the parts of a sharded `scnym predict` into `out`, equal to the unsharded output: CSV/TSV
 * parts into one table (the first header, then every part's rows), `.h5ad` parts into a copy of
 * the query with the predictions (or into a table, when `out` names one). Returns the cells.
 */
export async function mergePredictions(
  paths: string[],
  out: string,
  opts: MergeOptions = {},
): Promise<number> {
  const parts = await checkedParts(paths);
  const cells = parts[0].info.cells;
  if (parts[0].table) {
    if (!isTablePath(out)) {
      throw new ScnymError(`CSV/TSV parts merge into a table; ${out} is not .csv/.tsv/.txt`, 2);
    }
    await concatTables(parts.map((p) => p.path), out, !!opts.overwrite);
    return cells;
  }
  const query = opts.query ?? parts[0].info.query;
  const first = await openPart(parts[0].path);
  const spec = {
    classes: first.classes,
    embeddingDim: first.hidden,
    novelty: first.novelty,
    run: parts[0].run,
  };
  first.h.close();
  const names: string[] = [];
  if (isTablePath(out)) {
    for (const p of parts) names.push(...(await openPart(p.path)).closeAndNames());
  } else {
    requireFile(query, "query file (give --query)");
    const h = await H5adFile.open(query);
    const qNames = h.obs().index;
    h.close();
    if (qNames.length !== cells) {
      throw new ScnymError(
        `${query} has ${qNames.length} cells, the parts ${cells}: another query`,
      );
    }
    names.push(...qNames);
  }
  await streamPredictionOutput(out, {
    ...spec,
    cellNames: names,
    source: isTablePath(out) ? undefined : query,
    run: spec.run as Record<string, string | number | boolean>,
    overwrite: opts.overwrite,
  }, async (sink) => {
    for (const p of parts) {
      const part = await openPart(p.path);
      try {
        const want = names.slice(p.info.first, p.info.end);
        if (part.names.length !== want.length || part.names.some((n, i) => n !== want[i])) {
          throw new ScnymError(`${p.path}: its cells are not rows ${p.info.first}.. of ${query}`);
        }
        for (let a = 0; a < part.names.length; a += 65536) {
          const b = Math.min(part.names.length, a + 65536);
          await sink(p.info.first + a, part.rows(a, b));
          opts.progress?.update(`merging: ${p.info.first + b}/${cells} cells`);
        }
      } finally {
        part.h.close();
      }
    }
    opts.progress?.done();
  });
  return cells;
}

/** An open `.h5ad` part: its cells and their predictions by row range. */
async function openPart(path: string) {
  const h = await H5adFile.open(path);
  const obs = h.obs();
  const label = obs.columns.get("scNym");
  const conf = obs.columns.get("scNym_confidence");
  if (label?.kind !== "categorical" || conf?.kind !== "numeric") {
    h.close();
    throw new ScnymError(`${path}: obs/scNym or obs/scNym_confidence missing`);
  }
  const classes = (h.uns().scNym_class_names ?? []) as string[];
  const probs = getDataset(h.file, "obsm/scNym_probabilities");
  const emb = h.file.get("obsm/X_scnym") ? getDataset(h.file, "obsm/X_scnym") : null;
  const hidden = emb?.shape?.[1] ?? 0;
  const novelty = obs.columns.get("scNym_novelty");
  return {
    h,
    names: obs.index,
    classes,
    hidden,
    novelty: novelty?.kind === "numeric",
    closeAndNames(): string[] {
      h.close();
      return obs.index;
    },
    rows(a: number, b: number): CellPredictions {
      return {
        classes,
        labels: Array.from(label.codes.subarray(a, b), (c) => label.categories[c]),
        confidence: Float32Array.from(conf.values.subarray(a, b)),
        probabilities: readNumeric(path, probs, a, b) as Float32Array,
        embedding: emb ? readNumeric(path, emb, a, b) as Float32Array : new Float32Array(0),
        hidden,
        novelty: novelty?.kind === "numeric"
          ? Float32Array.from(novelty.values.subarray(a, b))
          : null,
        unknownThreshold: null,
      };
    },
  };
}

/** The tables `paths` as one: the first's header, then each one's rows (headers must agree). */
async function concatTables(paths: string[], out: string, overwrite: boolean): Promise<void> {
  await writeFileAtomic(out, async (tmp) => {
    const dst = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let header: string | null = null;
      for (const path of paths) {
        const bytes = await Deno.readFile(path);
        const nl = bytes.indexOf(10);
        const head = new TextDecoder().decode(bytes.subarray(0, nl + 1));
        if (header !== null && head !== header) {
          throw new ScnymError(`${path}: its header differs from ${paths[0]}'s`);
        }
        const body = header === null ? bytes : bytes.subarray(nl + 1);
        header ??= head;
        for (let done = 0; done < body.length;) done += await dst.write(body.subarray(done));
      }
    } finally {
      dst.close();
    }
  }, { overwrite });
}
