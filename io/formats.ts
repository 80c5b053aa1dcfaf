/**
 * The input formats we read, as a registry: each is a name, a detector, a reader and what
 * `inspect` needs from it. A new input format is one module exporting an `InputFormat` plus one
 * line in `INPUT_FORMATS`; `readExpression`, `inspectFile` and the "unsupported" message follow.
 */
import { nnz } from "../data/csr.ts";
import { ValueStats } from "../data/normalize.ts";
import { ScnymError } from "../util/errors.ts";
import { type FileFacts, hostFs } from "../util/host_fs.ts";
import type { AnnData, DataFrame } from "./anndata.ts";
import { checkHdf5File, openH5 } from "./h5.ts";
import { H5adFile } from "./h5ad_read.ts";
import { readTenxH5, readTenxMtxDir, tenxGroup } from "./tenx.ts";

/** Names of the input formats. */
export type InputFormatName = "h5ad" | "10x-h5" | "10x-mtx";

/** One stored matrix as `inspect` sees it: where, how stored, and its value statistics. */
export interface InspectedMatrix {
  name: string;
  storage: string;
  shape: [number, number];
  stats: ValueStats;
}

/** What `inspect` learns from a file, before it is turned into a report. */
export interface InspectedFile {
  matrices: InspectedMatrix[];
  obs: DataFrame;
  genes: string[];
  /** The pre-0.7 anndata layout (`.h5ad` only). */
  legacyLayout?: boolean;
}

/** One input format. */
export interface InputFormat {
  name: InputFormatName;
  /** How users know it, in messages: `AnnData .h5ad`. */
  description: string;
  /** Whether `path` (with `stat`) is in this format; may throw a clear error for a broken file. */
  detect(path: string, stat: FileFacts): Promise<boolean>;
  /** Reads matrix `matrix` (formats with one matrix ignore it) and names the others there are. */
  read(path: string, matrix?: string): Promise<{ data: AnnData; alternatives: string[] }>;
  /** What `inspect` reports, reading as little as the format allows. */
  inspect(path: string): Promise<InspectedFile>;
}

/** The whole of `ad` as seen by `inspect` (formats with one matrix read it all anyway). */
function inspectAnnData(ad: AnnData): InspectedFile {
  const stats = new ValueStats().add(ad.X.data.subarray(0, nnz(ad.X)));
  const shape: [number, number] = [ad.X.nRows, ad.X.nCols];
  return {
    matrices: [{ name: ad.matrix, storage: "csr", shape, stats }],
    obs: ad.obs,
    genes: ad.var.index,
  };
}

const TENX_MTX: InputFormat = {
  name: "10x-mtx",
  description: "10x MatrixMarket folder",
  detect: (_path, stat) => Promise.resolve(stat.isDirectory),
  read: async (path) => ({ data: await readTenxMtxDir(path), alternatives: [] }),
  inspect: async (path) => inspectAnnData(await readTenxMtxDir(path)),
};

const TENX_H5: InputFormat = {
  name: "10x-h5",
  description: "10x Genomics .h5",
  async detect(path, stat) {
    if (!stat.isFile) return false;
    checkHdf5File(path);
    const probe = await openH5(path, "r");
    try {
      return !probe.get("obs") && tenxGroup(probe) !== null;
    } finally {
      probe.close();
    }
  },
  read: async (path) => ({ data: await readTenxH5(path), alternatives: [] }),
  inspect: async (path) => inspectAnnData(await readTenxH5(path)),
};

const H5AD: InputFormat = {
  name: "h5ad",
  description: "AnnData .h5ad",
  detect: (path, stat) => Promise.resolve(stat.isFile && (checkHdf5File(path), true)),
  async read(path, matrix = "X") {
    const h = await H5adFile.open(path);
    try {
      const data = h.read(matrix);
      return { data, alternatives: h.matrixNames().filter((m) => m !== data.matrix) };
    } finally {
      h.close();
    }
  },
  async inspect(path) {
    // Every stored matrix, scanned in row chunks: memory for one chunk, not the whole matrix.
    const h = await H5adFile.open(path);
    try {
      const matrices = h.matrixNames().map((name): InspectedMatrix => {
        const r = h.matrix(name);
        const stats = new ValueStats();
        for (const [, c] of r.chunks()) stats.add(c.data.subarray(0, nnz(c)));
        return { name, storage: `${r.info.format} ${r.info.dtype}`, shape: r.info.shape, stats };
      });
      const genes = h.matrixNames().includes("X") ? h.var("X").index : h.var().index;
      return { matrices, obs: h.obs(), genes, legacyLayout: h.legacy };
    } finally {
      h.close();
    }
  },
};

/** Every input format, in detection order (the first whose `detect` says yes wins). */
export const INPUT_FORMATS: readonly InputFormat[] = [TENX_MTX, TENX_H5, H5AD];

/** The format of `path`; a clear error when it is missing, broken or of no format we read. */
export async function detectFormat(path: string): Promise<InputFormat> {
  const stat = hostFs().stat(path);
  if (!stat) throw new ScnymError(`input file not found: ${path}`);
  const accepted = INPUT_FORMATS.map((f) => f.description).join(", ");
  try {
    for (const f of INPUT_FORMATS) if (await f.detect(path, stat)) return f;
  } catch (e) {
    // A file that is not HDF5 at all (a CSV, a loom renamed, ...): say what we do read.
    if (e instanceof ScnymError && e.message.includes("not an HDF5 file")) {
      throw new ScnymError(`${e.message}; accepted inputs: ${accepted}`);
    }
    throw e;
  }
  throw new ScnymError(`${path}: unsupported file type (accepted: ${accepted})`);
}

/** The format called `name`. */
export function inputFormat(name: InputFormatName): InputFormat {
  return INPUT_FORMATS.find((f) => f.name === name)!;
}
