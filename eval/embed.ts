/**
 * Low-dimensional views of cells for evaluation: PCA of a sparse expression matrix (the input
 * baseline the learned embedding is compared against) and a seeded 2-D UMAP via `umap-js`.
 * Plain float64 TypeScript on the host; nothing here densifies a cells x genes matrix.
 */
import { UMAP } from "umap-js";
import type { Csr } from "../data/csr.ts";
import { ScnymError } from "../util/errors.ts";
import { formatDuration, type Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";

/** Principal components of a cells x genes matrix. */
export interface PcaResult {
  nComponents: number;
  /** Cell coordinates on the components, n x nComponents row-major. */
  scores: Float32Array;
  /** Unit-length gene loadings, nComponents x nGenes row-major. */
  components: Float32Array;
  /** Variance of the scores along each component (singular value^2 / (n - 1)), descending. */
  explainedVariance: Float64Array;
  /** `explainedVariance` divided by the total variance of the centred matrix. */
  explainedVarianceRatio: Float64Array;
  /** Per-gene mean that was subtracted. */
  mean: Float64Array;
}

/** Options of `pca`. */
export interface PcaOptions {
  /** Extra random directions beyond nComponents (default 10; Halko et al. recommend 5-10). */
  oversample?: number;
  /** Subspace (power) iterations (default 10; see `pca` for why more than scikit-learn's 7). */
  nIter?: number;
}

/** Row-major dense matrix in float64. */
interface Dense {
  rows: number;
  cols: number;
  a: Float64Array;
}

/** (X - 1 mean^T) M for sparse X (n x g) and dense M (g x l), never materialising the centring. */
function centredTimes(x: Csr, mean: Float64Array, m: Dense): Dense {
  const l = m.cols;
  const out = new Float64Array(x.nRows * l);
  const shift = new Float64Array(l); // mean^T M, subtracted from every row
  for (let j = 0; j < x.nCols; j++) {
    for (let c = 0; c < l; c++) shift[c] += mean[j] * m.a[j * l + c];
  }
  for (let i = 0; i < x.nRows; i++) {
    const o = i * l;
    for (let p = x.indptr[i]; p < x.indptr[i + 1]; p++) {
      const v = x.data[p];
      const r = x.indices[p] * l;
      for (let c = 0; c < l; c++) out[o + c] += v * m.a[r + c];
    }
    for (let c = 0; c < l; c++) out[o + c] -= shift[c];
  }
  return { rows: x.nRows, cols: l, a: out };
}

/** (X - 1 mean^T)^T N for sparse X (n x g) and dense N (n x l). */
function centredTransposeTimes(x: Csr, mean: Float64Array, nm: Dense): Dense {
  const l = nm.cols;
  const out = new Float64Array(x.nCols * l);
  const colSum = new Float64Array(l); // 1^T N
  for (let i = 0; i < x.nRows; i++) {
    const r = i * l;
    for (let c = 0; c < l; c++) colSum[c] += nm.a[r + c];
    for (let p = x.indptr[i]; p < x.indptr[i + 1]; p++) {
      const v = x.data[p];
      const o = x.indices[p] * l;
      for (let c = 0; c < l; c++) out[o + c] += v * nm.a[r + c];
    }
  }
  for (let j = 0; j < x.nCols; j++) {
    for (let c = 0; c < l; c++) out[j * l + c] -= mean[j] * colSum[c];
  }
  return { rows: x.nCols, cols: l, a: out };
}

/**
 * Orthonormalises the columns of `m` in place by modified Gram-Schmidt, run twice ("twice is
 * enough", Giraud et al. 2005) so the columns stay orthogonal to ~1e-15 even when they were nearly
 * dependent. A column that vanishes (rank deficiency) is set to zero rather than blown up.
 */
export function orthonormalizeColumns(m: Dense): void {
  const { rows, cols, a } = m;
  const norm0 = new Float64Array(cols);
  for (let c = 0; c < cols; c++) {
    for (let i = 0; i < rows; i++) norm0[c] += a[i * cols + c] ** 2;
    norm0[c] = Math.sqrt(norm0[c]);
  }
  for (let pass = 0; pass < 2; pass++) {
    for (let c = 0; c < cols; c++) {
      for (let b = 0; b < c; b++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += a[i * cols + b] * a[i * cols + c];
        for (let i = 0; i < rows; i++) a[i * cols + c] -= dot * a[i * cols + b];
      }
      let nrm = 0;
      for (let i = 0; i < rows; i++) nrm += a[i * cols + c] ** 2;
      nrm = Math.sqrt(nrm);
      // Below 1e-10 of its original length the column is round-off, not a direction.
      const scale = nrm > 1e-10 * norm0[c] && nrm > 0 ? 1 / nrm : 0;
      for (let i = 0; i < rows; i++) a[i * cols + c] *= scale;
    }
  }
}

/**
 * Eigen-decomposition of a symmetric m x m matrix (row-major) by cyclic Jacobi rotations, in
 * float64: eigenvalues descending and the matching eigenvectors as the columns of `vectors`.
 * Meant for the small (<= ~100) matrices of randomized PCA.
 */
export function symmetricEigen(
  s: Float64Array,
  m: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(s);
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  let total = 0;
  for (let i = 0; i < m * m; i++) total += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += a[p * m + q] ** 2;
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q];
        if (apq === 0) continue;
        // Rotation angle that zeroes a[p][q] (Golub & Van Loan, Alg. 8.5.1).
        const tau = (a[q * m + q] - a[p * m + p]) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const sn = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p];
          const akq = a[k * m + q];
          a[k * m + p] = c * akp - sn * akq;
          a[k * m + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k];
          const aqk = a[q * m + k];
          a[p * m + k] = c * apk - sn * aqk;
          a[q * m + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p];
          const vkq = v[k * m + q];
          v[k * m + p] = c * vkp - sn * vkq;
          v[k * m + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((x, y) => a[y * m + y] - a[x * m + x]);
  const values = Float64Array.from(order, (i) => a[i * m + i]);
  const vectors = new Float64Array(m * m);
  order.forEach((src, dst) => {
    for (let k = 0; k < m; k++) vectors[k * m + dst] = v[k * m + src];
  });
  return { values, vectors };
}

/**
 * PCA of the sparse cells x genes matrix `x` (pass log1p-CPM expression for the input baseline)
 * by randomized subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4) on the implicitly
 * centred matrix: the centring is folded into each product, so memory stays O(nnz + (n + g) l)
 * with l = nComponents + oversample. Components are capped at min(n - 1, g); signs are fixed so
 * each component's largest-magnitude loading is positive (deterministic for a given seed).
 */
export function pca(x: Csr, nComponents = 50, seed = 0, opts: PcaOptions = {}): PcaResult {
  const n = x.nRows;
  const g = x.nCols;
  if (n < 2 || g < 1) throw new ScnymError(`pca: needs at least 2 cells and 1 gene, got ${n}x${g}`);
  if (!(Number.isInteger(nComponents) && nComponents >= 1)) {
    throw new ScnymError(`pca: nComponents must be a positive integer, got ${nComponents}`);
  }
  const k = Math.min(nComponents, n - 1, g);
  const l = Math.min(k + (opts.oversample ?? 10), n, g);
  const nIter = opts.nIter ?? 10;

  const mean = new Float64Array(g);
  const sumSq = new Float64Array(g);
  for (let p = 0; p < x.indptr[n]; p++) {
    const v = x.data[p];
    if (!Number.isFinite(v)) {
      throw new ScnymError(`pca: the matrix holds a non-finite value (${v})`);
    }
    mean[x.indices[p]] += v;
    sumSq[x.indices[p]] += v * v;
  }
  let totalVar = 0;
  for (let j = 0; j < g; j++) {
    mean[j] /= n;
    totalVar += (sumSq[j] - n * mean[j] * mean[j]) / (n - 1);
  }

  const rng = new Rng(seed);
  const omega: Dense = {
    rows: g,
    cols: l,
    a: Float64Array.from({ length: g * l }, () => rng.normal()),
  };
  let q = centredTimes(x, mean, omega);
  orthonormalizeColumns(q);
  for (let it = 0; it < nIter; it++) {
    const z = centredTransposeTimes(x, mean, q);
    orthonormalizeColumns(z);
    q = centredTimes(x, mean, z);
    orthonormalizeColumns(q);
  }
  // B = Q^T A (l x g), held as its transpose; the SVD of B comes from the eigenvectors of B B^T.
  const bt = centredTransposeTimes(x, mean, q);
  const bbt = new Float64Array(l * l);
  for (let j = 0; j < g; j++) {
    for (let r = 0; r < l; r++) {
      const br = bt.a[j * l + r];
      if (br === 0) continue;
      for (let c = 0; c < l; c++) bbt[r * l + c] += br * bt.a[j * l + c];
    }
  }
  const { values, vectors: u } = symmetricEigen(bbt, l);

  const scores = new Float32Array(n * k);
  const components = new Float32Array(k * g);
  const explainedVariance = new Float64Array(k);
  const explainedVarianceRatio = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const sigma = Math.sqrt(Math.max(values[c], 0));
    // Loading vector v_c = B^T u_c / sigma; then fix its sign.
    const vc = new Float64Array(g);
    for (let j = 0; j < g; j++) {
      let s = 0;
      for (let r = 0; r < l; r++) s += bt.a[j * l + r] * u[r * l + c];
      vc[j] = sigma > 0 ? s / sigma : 0;
    }
    let big = 0;
    for (let j = 1; j < g; j++) if (Math.abs(vc[j]) > Math.abs(vc[big])) big = j;
    const sign = vc[big] < 0 ? -1 : 1;
    for (let j = 0; j < g; j++) components[c * g + j] = sign * vc[j];
    explainedVariance[c] = (sigma * sigma) / (n - 1);
    explainedVarianceRatio[c] = totalVar > 0 ? explainedVariance[c] / totalVar : 0;
  }
  // Scores = (X - 1 mean^T) V: the centred data projected on the loadings (what a later
  // `transform` of the same cells would give), in float64 before rounding to float32.
  const v: Dense = { rows: g, cols: k, a: new Float64Array(g * k) };
  for (let c = 0; c < k; c++) for (let j = 0; j < g; j++) v.a[j * k + c] = components[c * g + j];
  const proj = centredTimes(x, mean, v);
  for (let i = 0; i < n * k; i++) scores[i] = proj.a[i];
  return { nComponents: k, scores, components, explainedVariance, explainedVarianceRatio, mean };
}

/** Options of `umapEmbed`. */
export interface UmapOptions {
  seed: number;
  /** Neighbourhood size (default 15, umap's; capped at the number of cells - 1). */
  nNeighbors?: number;
  /** Minimum distance between embedded points (default 0.1). */
  minDist?: number;
  /** Embed a seeded random subset of at most this many cells (umap-js is slow past ~10k). */
  maxCells?: number;
  /** Layout epochs (default umap-js's: 500 up to 2500 cells, down to 200 past 7500). */
  nEpochs?: number;
  /** Called after the neighbour graph is built (epoch 0) and after each layout epoch. */
  onProgress?: (epoch: number, nEpochs: number) => void;
}

/** A 2-D embedding of some of the cells. */
export interface UmapResult {
  /** m x 2 row-major coordinates of the embedded cells. */
  coords: Float32Array;
  /** Row of each embedded cell in the input (ascending); all rows unless subsampled. */
  indices: Uint32Array;
}

/**
 * 2-D UMAP of the n x d row-major `features` with umap-js (its NN-descent graph and random
 * initialisation), every random draw taken from a generator seeded with `seed`, so the same
 * inputs and seed give the same picture. Needs at least 3 cells.
 */
export function umapEmbed(
  features: Float32Array,
  n: number,
  d: number,
  opts: UmapOptions,
): UmapResult {
  if (features.length !== n * d) {
    throw new ScnymError(`umapEmbed: features have ${features.length} values, expected ${n}x${d}`);
  }
  let indices = Uint32Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(opts.seed);
  if (opts.maxCells !== undefined && opts.maxCells < n) {
    if (!(opts.maxCells >= 3)) {
      throw new ScnymError(`umapEmbed: maxCells must be >= 3, got ${opts.maxCells}`);
    }
    indices = rng.permutation(n).slice(0, opts.maxCells).sort();
  }
  const m = indices.length;
  if (m < 3) throw new ScnymError(`umapEmbed: needs at least 3 cells, got ${m}`);
  const rows = Array.from(indices, (i) => Array.from(features.subarray(i * d, (i + 1) * d)));
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(opts.nNeighbors ?? 15, m - 1),
    minDist: opts.minDist ?? 0.1,
    nEpochs: opts.nEpochs,
    random: () => rng.uniform(),
  });
  const nEpochs = umap.initializeFit(rows);
  opts.onProgress?.(0, nEpochs);
  for (let e = 0; e < nEpochs; e++) {
    umap.step();
    opts.onProgress?.(e + 1, nEpochs);
  }
  const emb = umap.getEmbedding();
  const coords = new Float32Array(m * 2);
  for (let i = 0; i < m; i++) {
    coords[2 * i] = emb[i][0];
    coords[2 * i + 1] = emb[i][1];
  }
  return { coords, indices };
}

/**
 * An `onProgress` for `umapEmbed` that keeps one status line on `progress` up to date (every 10
 * epochs, with an ETA) and ends it after the last epoch.
 */
export function umapProgressLine(progress: Progress): (epoch: number, nEpochs: number) => void {
  return (epoch, nEpochs) => {
    if (epoch === 0) {
      progress.phase();
      progress.update(`UMAP: neighbour graph built, optimising ${nEpochs} epochs`);
    } else if (epoch % 10 === 0 || epoch === nEpochs) {
      const eta = formatDuration(progress.eta(epoch, nEpochs));
      progress.update(`UMAP: epoch ${epoch}/${nEpochs}, ${eta} left`, epoch === nEpochs);
    }
    if (epoch === nEpochs) progress.done();
  };
}
