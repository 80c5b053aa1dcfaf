/**
 * `scnym simulate`: writes a synthetic experiment as a real CSR `.h5ad` (demo data, tests, scale
 * benchmarks). The data are made up; the file says so in `uns/source`.
 */
import { categoricalColumn, dataFrame } from "../io/anndata.ts";
import { writeH5ad } from "../io/h5ad_write.ts";
import { simulate, type SimulatedData } from "../data/simulate.ts";
import { ScnymError } from "../util/errors.ts";
import { VERSION } from "../version.ts";
import { numberFlag, requireFlag, runCommand, stringFlag } from "./common.ts";

const HELP = `usage: scnym simulate --out FILE.h5ad [options]

Writes a SYNTHETIC single-cell experiment (gamma-Poisson counts, log-normal library sizes, cell
types defined by marker genes, per-gene domain effects) as a CSR .h5ad with obs columns
cell_type and domain. Useful to try scnym without data, for tests and benchmarks.

  --out FILE              .h5ad to write
  --cells N1,N2,...       cells per domain (default 1000,1000: "source", "target")
  --genes N               genes (default 2000)
  --types N               cell types shared by all domains (default 6)
  --target-only-types N   extra cell types only in the last domain (default 0)
  --markers N             marker genes per type (default 25)
  --batch-effect S        sd of the per-gene log domain effect (default 0.5)
  --library-size N        median counts per cell (default 2500)
  --seed N                random seed (default 0)
  --overwrite             replace an existing file

example:
  scnym simulate --out sim.h5ad --cells 2000,2000 --target-only-types 1
  scnym train --reference sim.h5ad --labels cell_type --target-where domain=target --out sim.scnym`;

const OPTIONS = {
  out: { type: "string" },
  cells: { type: "string" },
  genes: { type: "string" },
  types: { type: "string" },
  "target-only-types": { type: "string" },
  markers: { type: "string" },
  "batch-effect": { type: "string" },
  "library-size": { type: "string" },
  seed: { type: "string" },
  overwrite: { type: "boolean" },
} as const;

/** Runs `scnym simulate`; returns the exit code. */
export function simulateCommand(args: string[]): Promise<number> {
  return runCommand({ name: "simulate", help: HELP, options: OPTIONS }, args, async (v) => {
    const out = requireFlag(v, "out");
    const cellsArg = stringFlag(v, "cells");
    const cellsPerDomain = cellsArg?.split(",").map((s) => Number(s.trim()));
    if (cellsPerDomain?.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new ScnymError(
        `--cells expects integers >= 1 separated by commas, got "${cellsArg}"`,
        2,
      );
    }
    const int = (name: string, min = 0) => numberFlag(v, name, { min, integer: true });
    const seed = int("seed") ?? 0;
    const sim = simulate({
      cellsPerDomain,
      genes: int("genes", 1),
      types: int("types", 1),
      targetOnlyTypes: int("target-only-types"),
      markersPerType: int("markers", 1),
      batchEffect: numberFlag(v, "batch-effect", { min: 0 }),
      librarySize: numberFlag(v, "library-size", { min: 1 }),
      seed,
    });
    await writeSimulation(out, sim, { overwrite: Boolean(v.overwrite) });
    console.error(
      `wrote ${out}: ${sim.counts.nRows} cells x ${sim.counts.nCols} genes (synthetic, seed ${seed})`,
    );
    return 0;
  });
}

/**
 * Writes a simulated experiment as a CSR `.h5ad` with obs `cell_type` and `domain`, marked as
 * synthetic in `uns/source`.
 */
export async function writeSimulation(
  path: string,
  sim: SimulatedData,
  opts: { overwrite?: boolean } = {},
): Promise<void> {
  const obs = dataFrame(sim.cellNames);
  obs.columns.set("cell_type", categoricalColumn(sim.cellType));
  obs.columns.set("domain", categoricalColumn(sim.domain));
  await writeH5ad(path, {
    X: sim.counts,
    obs,
    var: dataFrame(sim.geneNames),
    uns: {
      source: `SYNTHETIC data from scnym simulate ${VERSION} (seed ${sim.options.seed}); not ` +
        "real cells. X: raw counts; label_key: cell_type; domain_key: domain",
      scnym_simulate: JSON.stringify(sim.options),
    },
  }, opts);
}

if (import.meta.main) Deno.exit(await simulateCommand(Deno.args));
