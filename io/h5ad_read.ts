/**
 * Reading AnnData `.h5ad` files written by any anndata/scanpy version into our in-memory AnnData.
 *
 * Layouts handled:
 * - current (anndata >= 0.7): elements carry `encoding-type`; sparse matrices are groups with
 *   `data`/`indices`/`indptr` + a `shape` attribute; dataframes are groups with an `_index`
 *   attribute and one element per column (categoricals as `codes` + `categories`); 0.7's
 *   categoricals (codes dataset + `__categories/<col>`) too.
 * - legacy (anndata < 0.7): `obs`/`var` are compound datasets, categorical columns hold codes whose
 *   names live in `uns/<col>_categories`, sparse groups are marked `h5sparse_format`, raw is
 *   stored as `raw.X` / `raw.var`.
 *
 * Matrices always come out as CSR, through `MatrixReader` (matrix_reader.ts); dataframes and `uns`
 * of both layouts are read in h5ad_frames.ts.
 */
import { ScnymError } from "../util/errors.ts";
import type { AnnData, DataFrame, UnsValue } from "./anndata.ts";
import {
  getGroup,
  type H5File,
  h5Get,
  type H5Group,
  h5Try,
  isDataset,
  isGroup,
  openH5,
} from "./h5.ts";
import { readDataFrameGroup, readLegacyDataFrame, readUnsGroup } from "./h5ad_frames.ts";
import { MatrixReader, readAllRows } from "./matrix_reader.ts";

/** An open `.h5ad` file. Close it when done (`close()`), or use `readH5ad` for one-shot reads. */
export class H5adFile {
  readonly path: string;
  readonly file: H5File;

  private constructor(path: string, file: H5File) {
    this.path = path;
    this.file = file;
  }

  /** Opens `path`, with clear errors for a missing, non-HDF5 or truncated file. */
  static async open(path: string): Promise<H5adFile> {
    const f = await openH5(path, "r");
    const h = new H5adFile(path, f);
    if (!h5Get(f, "obs") || !h5Get(f, "var")) {
      const hint = h5Get(f, "matrix") ? "; it looks like a 10x .h5: read it as such" : "";
      f.close();
      throw new ScnymError(`${path}: not an AnnData file (an HDF5 file without obs/var${hint})`);
    }
    return h;
  }

  /** True for the pre-0.7 layout (compound obs/var datasets). */
  get legacy(): boolean {
    return isDataset(this.file, "obs");
  }

  /** Names of the stored matrices: `X`, `raw/X` and `layers/<name>` for those present. */
  matrixNames(): string[] {
    const f = this.file;
    const names: string[] = [];
    if (f.get("X")) names.push("X");
    if (h5Get(f, "raw/X") || h5Get(f, "raw.X")) names.push("raw/X");
    if (isGroup(f, "layers")) {
      for (const k of (f.get("layers") as H5Group).keys()) names.push(`layers/${k}`);
    }
    return names;
  }

  /**
   * The reader for a matrix. `name` may be `X`, `raw`, `raw/X`, `layers/<name>` or a bare layer
   * name; an unknown name lists the ones that exist.
   */
  matrix(name = "X"): MatrixReader {
    const canonical = this.resolveMatrixName(name);
    const path = canonical === "raw/X" && !h5Get(this.file, "raw/X") ? "raw.X" : canonical;
    return new MatrixReader(this.file, path, canonical);
  }

  /** Maps user spellings (`raw`, a bare layer name) to `X`, `raw/X` or `layers/<name>`. */
  resolveMatrixName(name: string): string {
    const names = this.matrixNames();
    const candidates = [name, name === "raw" ? "raw/X" : "", `layers/${name}`];
    const hit = candidates.find((c) => c && names.includes(c));
    if (!hit) {
      throw new ScnymError(
        `${this.path}: no matrix "${name}"; matrices are: ${names.join(", ") || "(none)"}`,
      );
    }
    return hit;
  }

  /** The `obs` dataframe (cells). */
  obs(): DataFrame {
    return this.#dataFrame("obs");
  }

  /** The `var` dataframe (genes) that goes with `matrix` (`raw/X` has its own `raw/var`). */
  var(matrix = "X"): DataFrame {
    if (this.resolveMatrixName(matrix) !== "raw/X") return this.#dataFrame("var");
    return this.#dataFrame(h5Get(this.file, "raw/var") ? "raw/var" : "raw.var");
  }

  /** Small `uns` entries (scalars, short lists, nested dicts); big arrays are skipped. */
  uns(): Record<string, UnsValue> {
    if (!isGroup(this.file, "uns")) return {};
    const uns = h5Try(this.path, "uns", () => readUnsGroup(getGroup(this.file, "uns")));
    if (this.legacy) {
      // `uns/<col>_categories` only encoded legacy categoricals (now in obs/var); written back
      // next to a modern categorical, anndata would try to decode it again and fail.
      const cols = [...this.obs().columns.keys(), ...this.var().columns.keys()];
      for (const c of cols) delete uns[`${c}_categories`];
    }
    return uns;
  }

  /** Everything needed for training or prediction, with the matrix read in row chunks. */
  read(matrix = "X"): AnnData {
    const reader = this.matrix(matrix);
    const obs = this.obs();
    const var_ = this.var(matrix);
    const [n, m] = reader.info.shape;
    if (obs.index.length !== n || var_.index.length !== m) {
      throw new ScnymError(
        `${this.path}: ${reader.info.name} is ${n} x ${m} but obs has ${obs.index.length} rows ` +
          `and var ${var_.index.length}`,
      );
    }
    return {
      X: readAllRows(reader),
      obs,
      var: var_,
      matrix: reader.info.name,
      uns: this.uns(),
      source: this.path,
    };
  }

  /** Releases the HDF5 handle. */
  close(): void {
    this.file.close();
  }

  #dataFrame(path: string): DataFrame {
    return h5Try(this.path, path, () => {
      if (isDataset(this.file, path)) return readLegacyDataFrame(this.file, path);
      if (!isGroup(this.file, path)) {
        throw new ScnymError(`${this.path}: ${path} is missing`);
      }
      return readDataFrameGroup(this.file, path);
    });
  }
}

/** Reads `path` as an AnnData (matrix `X` unless asked otherwise), closing the file after. */
export async function readH5ad(path: string, opts: { matrix?: string } = {}): Promise<AnnData> {
  const h = await H5adFile.open(path);
  try {
    return h.read(opts.matrix ?? "X");
  } finally {
    h.close();
  }
}
