/**
 * A synthetic single-cell experiment for demos, tests and scale benchmarks. The data are made up
 * (documented as such in every file written), but shaped like real droplet scRNA-seq:
 *
 * - gene base expression is log-normal (a few genes dominate, most are rare);
 * - each cell type up-regulates its own set of marker genes (log fold change ~ N(2, 0.5));
 * - each domain (batch) multiplies every gene by its own factor exp(N(0, batchEffect^2)), and
 *   the target domain may hold cell types the source never shows;
 * - a cell's library size is log-normal; its counts are gamma-Poisson (negative binomial) around
 *   library size x expression profile.
 *
 * Counts are drawn gene by gene by inversion (one uniform for the common zero), so a 10k x 2k
 * experiment takes about a second; the result is CSR from the start.
 */
import type { Csr } from "./csr.ts";
import { Rng } from "../util/rng.ts";
import { ScnymError } from "../util/errors.ts";

/** Knobs of the simulator; every one has a sensible default. */
export interface SimulateOptions {
  /** Cells per domain (default [1000, 1000]: source, target). */
  cellsPerDomain?: number[];
  /** Names of the domains (default "source", "target", "domain2", ...). */
  domainNames?: string[];
  genes?: number;
  /** Cell types shared by all domains (default 6). */
  types?: number;
  /** Cell types present only in the last domain (default 0). */
  targetOnlyTypes?: number;
  /** Marker genes per cell type (default 25). */
  markersPerType?: number;
  /** Standard deviation of the per-gene, per-domain log factor (default 0.5). */
  batchEffect?: number;
  /** Median library size (total counts per cell, default 2500). */
  librarySize?: number;
  /** Negative-binomial dispersion (variance = mu + phi mu^2; default 0.3). */
  dispersion?: number;
  seed?: number;
}

/** A simulated experiment: counts plus the cell and gene annotations. */
export interface SimulatedData {
  /** Raw counts (float32 holding integers), cells x genes. */
  counts: Csr;
  cellNames: string[];
  geneNames: string[];
  cellType: string[];
  domain: string[];
  /** The options used, defaults filled in (recorded in written files). */
  options: Required<SimulateOptions>;
}

/** Resolves defaults and checks ranges. */
function withDefaults(o: SimulateOptions): Required<SimulateOptions> {
  const cellsPerDomain = o.cellsPerDomain ?? [1000, 1000];
  const r: Required<SimulateOptions> = {
    cellsPerDomain,
    domainNames: o.domainNames ??
      cellsPerDomain.map((_, i) => i === 0 ? "source" : i === 1 ? "target" : `domain${i}`),
    genes: o.genes ?? 2000,
    types: o.types ?? 6,
    targetOnlyTypes: o.targetOnlyTypes ?? 0,
    markersPerType: o.markersPerType ?? 25,
    batchEffect: o.batchEffect ?? 0.5,
    librarySize: o.librarySize ?? 2500,
    dispersion: o.dispersion ?? 0.3,
    seed: o.seed ?? 0,
  };
  const bad = (what: string) => {
    throw new ScnymError(`simulate: ${what}`);
  };
  if (r.cellsPerDomain.length < 1) bad("at least one domain is needed");
  if (r.cellsPerDomain.some((n) => !Number.isInteger(n) || n < 1)) {
    bad(`cells per domain must be integers >= 1, got ${r.cellsPerDomain.join(",")}`);
  }
  if (r.domainNames.length !== r.cellsPerDomain.length) {
    bad(`${r.domainNames.length} domain names for ${r.cellsPerDomain.length} domains`);
  }
  if (!Number.isInteger(r.types) || r.types < 1) bad(`types must be >= 1, got ${r.types}`);
  const totalTypes = r.types + r.targetOnlyTypes;
  if (r.genes < totalTypes * r.markersPerType) {
    bad(`${r.genes} genes cannot hold ${totalTypes} types x ${r.markersPerType} markers`);
  }
  if (r.targetOnlyTypes > 0 && r.cellsPerDomain.length < 2) {
    bad("target-only types need at least two domains");
  }
  return r;
}

/** Simulates an experiment. Deterministic in `options.seed`. */
export function simulate(options: SimulateOptions = {}): SimulatedData {
  const o = withDefaults(options);
  const rng = new Rng(o.seed);
  const G = o.genes;
  const nTypes = o.types + o.targetOnlyTypes;

  // Base profile: log-normal expression, normalised to proportions.
  const base = new Float64Array(G);
  for (let g = 0; g < G; g++) base[g] = Math.exp(rng.normal() * 1.5);

  // Marker genes: disjoint random sets per type, up-regulated.
  const order = rng.permutation(G);
  const typeLfc: Float64Array[] = [];
  for (let t = 0; t < nTypes; t++) {
    const lfc = new Float64Array(G);
    for (let m = 0; m < o.markersPerType; m++) {
      lfc[order[t * o.markersPerType + m]] = 2 + 0.5 * rng.normal();
    }
    typeLfc.push(lfc);
  }

  // Per-domain gene factors (the batch effect).
  const domainLfc = o.cellsPerDomain.map(() => {
    const f = new Float64Array(G);
    for (let g = 0; g < G; g++) f[g] = o.batchEffect * rng.normal();
    return f;
  });

  // Unnormalised profiles -> proportions, per (type, domain).
  const profiles = new Map<string, Float64Array>();
  const profile = (t: number, d: number) => {
    const key = `${t},${d}`;
    let p = profiles.get(key);
    if (!p) {
      p = new Float64Array(G);
      let s = 0;
      for (let g = 0; g < G; g++) s += p[g] = base[g] * Math.exp(typeLfc[t][g] + domainLfc[d][g]);
      for (let g = 0; g < G; g++) p[g] /= s;
      profiles.set(key, p);
    }
    return p;
  };

  const nCells = o.cellsPerDomain.reduce((a, b) => a + b, 0);
  const indptr = new Uint32Array(nCells + 1);
  let indices = new Uint32Array(nCells * 64);
  let data = new Float32Array(nCells * 64);
  let nnz = 0;
  const cellType: string[] = [];
  const domain: string[] = [];
  const cellNames: string[] = [];
  const lastDomain = o.cellsPerDomain.length - 1;
  const shape = 1 / o.dispersion;
  let cell = 0;
  for (let d = 0; d < o.cellsPerDomain.length; d++) {
    // Types a cell of this domain may have; the last domain also holds the target-only ones.
    const available = d === lastDomain ? nTypes : o.types;
    for (let i = 0; i < o.cellsPerDomain[d]; i++, cell++) {
      const t = rng.int(available);
      const p = profile(t, d);
      const lib = o.librarySize * Math.exp(0.4 * rng.normal());
      for (let g = 0; g < G; g++) {
        const k = negativeBinomial(rng, lib * p[g], shape);
        if (k === 0) continue;
        if (nnz === indices.length) {
          const ni = new Uint32Array(indices.length * 2);
          ni.set(indices);
          indices = ni;
          const nd = new Float32Array(data.length * 2);
          nd.set(data);
          data = nd;
        }
        indices[nnz] = g;
        data[nnz++] = k;
      }
      indptr[cell + 1] = nnz;
      cellType.push(t < o.types ? `type_${t}` : `novel_${t - o.types}`);
      domain.push(o.domainNames[d]);
      cellNames.push(`cell_${String(cell).padStart(String(nCells).length, "0")}`);
    }
  }
  const geneNames = Array.from({ length: G }, (_, g) => `SIM${String(g).padStart(5, "0")}`);
  return {
    counts: {
      nRows: nCells,
      nCols: G,
      indptr,
      indices: indices.slice(0, nnz),
      data: data.slice(0, nnz),
    },
    cellNames,
    geneNames,
    cellType,
    domain,
    options: o,
  };
}

/**
 * One negative-binomial draw with mean `mu` and size `r` (variance mu + mu^2 / r): inversion of
 * the pmf from k = 0 for moderate means (exact, one uniform for the usual zero), gamma-Poisson
 * mixture for large ones.
 */
export function negativeBinomial(rng: Rng, mu: number, r: number): number {
  if (mu <= 0) return 0;
  if (mu > 50) return rng.poisson(mu * rng.gamma(r) / r);
  const q = mu / (r + mu);
  let pk = Math.pow(r / (r + mu), r);
  let cdf = pk;
  const u = rng.uniform();
  let k = 0;
  while (u > cdf && k < 10_000) {
    pk *= ((k + r) / (k + 1)) * q;
    cdf += pk;
    k++;
  }
  return k;
}
