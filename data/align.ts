/**
 * Gene alignment by name: the inner join of training and target genes, and at prediction time the
 * model's genes looked up in the query (missing ones zero-filled, extras dropped), with a report
 * and a refusal when too few are found.
 */
import { type Csr, selectColumns } from "./csr.ts";
import { ScnymError } from "../util/errors.ts";

/** How gene names are compared. */
export interface MatchOptions {
  /** Compare case-insensitively (e.g. `Cd4` vs `CD4` across species conventions). */
  ignoreCase?: boolean;
  /** Drop Ensembl version suffixes (`ENSG00000141510.12` -> `ENSG00000141510`). */
  stripEnsemblVersion?: boolean;
  /** Make duplicate names unique (`GENE`, `GENE-1`, ...) instead of refusing them. */
  makeUnique?: boolean;
}

/** Options of `alignGenes`. */
export interface AlignOptions extends MatchOptions {
  /** Refuse when fewer than this fraction of the model's genes are found (default 0.8). */
  minFraction?: number;
  /** Names used in messages. */
  queryName?: string;
}

/** The model's genes located in a query matrix. */
export interface GeneAlignment {
  /** For each model gene, its column in the query, or -1 when missing (zero-filled). */
  queryCol: Int32Array;
  /** Columns of the query. */
  queryCols: number;
  found: number;
  total: number;
  /** found / total. */
  fraction: number;
  /** Up to 20 missing model genes, for the report. */
  missingSample: string[];
  /** Query genes not used by the model. */
  extra: number;
}

const ENSEMBL_VERSIONED = /^(ENS[A-Z]*[GTP]\d+)\.\d+$/;

/** The key a gene name is matched on under `opts`. */
export function geneKey(name: string, opts: MatchOptions = {}): string {
  let k = name;
  if (opts.stripEnsemblVersion) k = k.replace(ENSEMBL_VERSIONED, "$1");
  if (opts.ignoreCase) k = k.toUpperCase();
  return k;
}

/** Names that occur more than once (each listed once, in order of first repeat). */
export function findDuplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) dups.add(n);
    else seen.add(n);
  }
  return [...dups];
}

/**
 * anndata's `var_names_make_unique`: the first occurrence keeps its name, later ones get `-1`,
 * `-2`, ... skipping suffixes that would collide with an existing name.
 */
export function makeUnique(names: string[], join = "-"): string[] {
  const taken = new Set(names);
  if (taken.size === names.length) return names.slice();
  const seen = new Set<string>();
  const counter = new Map<string, number>();
  return names.map((n) => {
    if (!seen.has(n)) {
      seen.add(n);
      return n;
    }
    for (;;) {
      const c = (counter.get(n) ?? 0) + 1;
      counter.set(n, c);
      const candidate = `${n}${join}${c}`;
      if (!taken.has(candidate)) {
        taken.add(candidate);
        return candidate;
      }
    }
  });
}

/**
 * Match keys for `names`: made unique on request, otherwise duplicates (after case/version
 * folding) are refused with a one-line error listing them.
 */
function matchKeys(names: string[], opts: MatchOptions, what: string): string[] {
  const base = opts.makeUnique ? makeUnique(names) : names;
  let keys = base.map((n) => geneKey(n, opts));
  let dups = findDuplicates(keys);
  if (dups.length && opts.makeUnique) {
    keys = makeUnique(keys);
    dups = [];
  }
  if (dups.length) {
    const shown = dups.slice(0, 10).join(", ") + (dups.length > 10 ? `, ... (${dups.length})` : "");
    throw new ScnymError(
      `${what} has duplicate gene names: ${shown}; make them unique (makeUnique / ` +
        `var_names_make_unique) or remove them`,
    );
  }
  return keys;
}

/**
 * Finds each model gene in the query. Throws when no gene is shared, or when the fraction found
 * is below `minFraction` (the message says how many were found and how to override).
 */
export function alignGenes(
  modelGenes: string[],
  queryGenes: string[],
  opts: AlignOptions = {},
): GeneAlignment {
  const minFraction = opts.minFraction ?? 0.8;
  const query = opts.queryName ?? "query";
  const modelKeys = matchKeys(modelGenes, opts, "model");
  const queryKeys = matchKeys(queryGenes, opts, query);
  const where = new Map<string, number>();
  queryKeys.forEach((k, i) => where.set(k, i));
  const queryCol = new Int32Array(modelGenes.length);
  const missing: string[] = [];
  let found = 0;
  modelKeys.forEach((k, j) => {
    const c = where.get(k);
    queryCol[j] = c ?? -1;
    if (c === undefined) missing.push(modelGenes[j]);
    else found++;
  });
  const total = modelGenes.length;
  const fraction = total ? found / total : 0;
  if (found === 0) {
    const hint = opts.ignoreCase && opts.stripEnsemblVersion
      ? ""
      : " (try ignoring case / Ensembl version suffixes, or check symbols vs Ensembl IDs)";
    throw new ScnymError(
      `${query}: no gene in common with the model's ${total} genes; e.g. model ${
        modelGenes.slice(0, 3).join(", ")
      } vs query ${queryGenes.slice(0, 3).join(", ")}${hint}`,
    );
  }
  if (fraction < minFraction) {
    throw new ScnymError(
      `${query}: only ${found} of the model's ${total} genes found (${pct(fraction)}, need ` +
        `${pct(minFraction)}); missing e.g. ${missing.slice(0, 5).join(", ")}; to predict anyway ` +
        `lower --min-gene-fraction (now ${minFraction}), or check the gene-name style ` +
        `(--ignore-case, --strip-ensembl-version)`,
    );
  }
  return {
    queryCol,
    queryCols: queryGenes.length,
    found,
    total,
    fraction,
    missingSample: missing.slice(0, 20),
    extra: queryGenes.length - found,
  };
}

function pct(f: number): string {
  return `${(100 * f).toFixed(1)}%`;
}

/** One line for the user: `genes found: 12000 / 13215 (90.8%), 1215 zero-filled, 3000 dropped`. */
export function alignmentReport(a: GeneAlignment): string {
  return `genes found: ${a.found} / ${a.total} model genes (${pct(a.fraction)}), ` +
    `${a.total - a.found} zero-filled, ${a.extra} query genes unused`;
}

/**
 * Re-expresses a query matrix over the model's genes: column j of the result is the query column
 * `alignment.queryCol[j]` (empty when -1).
 */
export function applyAlignment(m: Csr, alignment: GeneAlignment): Csr {
  if (m.nCols !== alignment.queryCols) {
    throw new Error(
      `applyAlignment: matrix has ${m.nCols} columns, alignment ${alignment.queryCols}`,
    );
  }
  return selectColumns(m, alignment.queryCol);
}

/** Training-time inner join: genes present in both, in the order of `a`, with their columns. */
export interface GeneJoin {
  genes: string[];
  aCols: Uint32Array;
  bCols: Uint32Array;
}

/**
 * Inner join of two gene lists (training and target). Throws when they share no gene, naming
 * both sides; duplicates are refused (or made unique on request) as in `alignGenes`.
 */
export function intersectGenes(
  a: string[],
  b: string[],
  opts: MatchOptions & { aName?: string; bName?: string } = {},
): GeneJoin {
  const aName = opts.aName ?? "training data";
  const bName = opts.bName ?? "target data";
  const aKeys = matchKeys(a, opts, aName);
  const bKeys = matchKeys(b, opts, bName);
  const aNames = opts.makeUnique ? makeUnique(a) : a;
  const where = new Map<string, number>();
  bKeys.forEach((k, i) => where.set(k, i));
  const genes: string[] = [];
  const aCols: number[] = [];
  const bCols: number[] = [];
  aKeys.forEach((k, i) => {
    const j = where.get(k);
    if (j === undefined) return;
    genes.push(aNames[i]);
    aCols.push(i);
    bCols.push(j);
  });
  if (genes.length === 0) {
    throw new ScnymError(
      `${aName} and ${bName} share no gene names (e.g. ${a.slice(0, 3).join(", ")} vs ${
        b.slice(0, 3).join(", ")
      }); check symbols vs Ensembl IDs, or ignore case / version suffixes`,
    );
  }
  return { genes, aCols: Uint32Array.from(aCols), bCols: Uint32Array.from(bCols) };
}

/** Gene-name style of a list: Ensembl IDs, symbols, or mixed (> 10% of each). */
export function geneNameStyle(names: string[]): "ensembl" | "symbols" | "mixed" | "none" {
  if (names.length === 0) return "none";
  const ens = names.filter((n) => /^ENS[A-Z]*G\d{6,}(\.\d+)?$/.test(n)).length / names.length;
  return ens > 0.9 ? "ensembl" : ens < 0.1 ? "symbols" : "mixed";
}
