/**
 * From the files a user names on the command line to a `TrainingSet`: read, check and normalise
 * each file, join genes, pick the target cells (a second file, or a column value in one file as
 * the original does), labels and domains. Every refusal names the file and the column.
 */
import { type Csr, selectColumns, vstack } from "../data/csr.ts";
import { intersectGenes, type MatchOptions } from "../data/align.ts";
import { type Normalisation, normaliseForModel } from "../data/normalize.ts";
import { type AnnData, cellText, columnLength, requireObsColumn } from "../io/anndata.ts";
import { readExpression } from "../io/read.ts";
import { ScnymError } from "../util/errors.ts";
import type { TrainingSet } from "./types.ts";

/** Where the training cells come from. */
export interface TrainingInputs {
  /** Labelled data (.h5ad, 10x .h5 or mtx folder). */
  reference: string;
  /** obs column holding the cell types. */
  labels: string;
  /** Unlabelled target data in a second file. */
  query?: string;
  /** Target cells inside the reference file: `column=value[,value...]`. */
  targetWhere?: string;
  /**
   * Labelled cells are only those of the reference file with `column=value[,value...]` (default:
   * every cell that is not a target); other cells are left out.
   */
  referenceWhere?: string;
  /** obs column of the domain (batch, technology, donor) of each cell. */
  domains?: string;
  /** obs column annotating the target cells, for evaluation only (default: `labels`). */
  truth?: string;
  /** Matrix of the .h5ad files to use (`X`, `raw`, a layer name). */
  matrix?: string;
  /** Labels CSV/TSV for 10x inputs (barcode, then columns). */
  referenceLabels?: string;
  queryLabels?: string;
  geneMatch?: MatchOptions;
}

/** A loaded training set plus what the CLI needs for predictions and reports. */
export interface LoadedTraining {
  set: TrainingSet;
  cellNames: string[];
  /** Annotation of each target cell when the data has one (evaluation only), else null. */
  truth: (string | null)[];
  /** Which file each row came from. */
  origin: ("reference" | "query")[];
  warnings: string[];
}

/** A file as read, with its matrix made ready for the model. */
interface NormalisedFile {
  ad: AnnData;
  X: Csr;
  normalisation: Normalisation;
  warnings: string[];
}

async function readNormalised(
  path: string,
  matrix?: string,
  labels?: string,
): Promise<NormalisedFile> {
  const input = await readExpression(path, { matrix, labels });
  const n = normaliseForModel(input.data.X, {
    file: path,
    matrix: input.data.matrix,
    alternatives: input.alternatives,
  });
  return { ad: input.data, X: n.X, normalisation: n.normalisation, warnings: n.warnings };
}

/** The column's value per cell ("" for missing); a missing column lists the ones that exist. */
function obsColumn(ad: AnnData, key: string, file: string, what: string): string[] {
  const col = requireObsColumn(ad.obs, key, file, what);
  return Array.from({ length: columnLength(col) }, (_, i) => cellText(col, i));
}

/** Parses `column=value[,value...]`. */
function parseWhere(spec: string, flag: string): { column: string; values: Set<string> } {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) {
    throw new ScnymError(`${flag} expects column=value (e.g. condition=STIM), got "${spec}"`, 2);
  }
  return {
    column: spec.slice(0, eq),
    values: new Set(spec.slice(eq + 1).split(",").map((v) => v.trim())),
  };
}

/** Which cells match `column=value[,value...]`; an error lists the values when none does. */
function cellsWhere(ad: AnnData, spec: string, file: string, flag: string): boolean[] {
  const { column, values } = parseWhere(spec, flag);
  const v = obsColumn(ad, column, file, flag);
  const hit = v.map((x) => values.has(x));
  if (!hit.some(Boolean)) {
    const present = [...new Set(v)].slice(0, 20).join(", ");
    throw new ScnymError(
      `${file}: no cell has ${column} in {${[...values].join(", ")}}; values present: ${present}`,
    );
  }
  return hit;
}

/** Reads and assembles the training data described by `inputs`. */
export async function loadTrainingData(inputs: TrainingInputs): Promise<LoadedTraining> {
  if (inputs.query && inputs.targetWhere) {
    throw new ScnymError("give either --query or --target-where, not both");
  }
  const ref = await readNormalised(inputs.reference, inputs.matrix, inputs.referenceLabels);
  const warnings = [...ref.warnings];
  const refLabels = obsColumn(ref.ad, inputs.labels, inputs.reference, "label");
  const nRef = ref.X.nRows;

  const isTargetRef = inputs.targetWhere
    ? cellsWhere(ref.ad, inputs.targetWhere, inputs.reference, "--target-where")
    : new Array<boolean>(nRef).fill(false);
  let inReference = isTargetRef.map((t) => !t);
  if (inputs.referenceWhere) {
    const sel = cellsWhere(ref.ad, inputs.referenceWhere, inputs.reference, "--reference-where");
    const both = sel.findIndex((s, i) => s && isTargetRef[i]);
    if (both >= 0) {
      throw new ScnymError(
        `${inputs.reference}: cell ${ref.ad.obs.index[both]} matches both --reference-where and ` +
          "--target-where",
      );
    }
    inReference = sel;
  }
  // Labelled reference cells must all be labelled: a missing value is more likely a mistake
  // than a wish to leave cells out.
  const missing: string[] = [];
  refLabels.forEach((l, i) => {
    if (inReference[i] && l === "") missing.push(ref.ad.obs.index[i]);
  });
  if (missing.length) {
    throw new ScnymError(
      `${inputs.reference}: label column "${inputs.labels}" is missing for ${missing.length} ` +
        `reference cell(s) (e.g. ${missing.slice(0, 3).join(", ")}); label them, drop them, ` +
        "or mark them as target cells with --target-where",
    );
  }

  const truthKey = inputs.truth ?? inputs.labels;
  const refTruth = inputs.truth
    ? obsColumn(ref.ad, inputs.truth, inputs.reference, "truth")
    : refLabels;
  const refDomains = inputs.domains
    ? obsColumn(ref.ad, inputs.domains, inputs.reference, "domain")
    : null;

  if (!inputs.query) {
    const set: TrainingSet = {
      X: ref.X,
      genes: ref.ad.var.index,
      labels: refLabels.map((l, i) => inReference[i] && l !== "" ? l : null),
      isTarget: isTargetRef,
      domains: refDomains ?? undefined,
      normalisation: ref.normalisation,
      description: {
        reference: inputs.reference,
        matrix: ref.ad.matrix,
        labelColumn: inputs.labels,
        targetWhere: inputs.targetWhere ?? null,
        referenceWhere: inputs.referenceWhere ?? null,
        domainColumn: inputs.domains ?? null,
      },
    };
    return {
      set,
      cellNames: ref.ad.obs.index,
      truth: refTruth.map((l, i) => isTargetRef[i] && l !== "" ? l : null),
      origin: new Array(nRef).fill("reference"),
      warnings,
    };
  }

  const qry = await readNormalised(inputs.query, inputs.matrix, inputs.queryLabels);
  warnings.push(...qry.warnings);
  if (qry.normalisation !== ref.normalisation) {
    warnings.push(
      `the reference is ${ref.normalisation} but the query is ${qry.normalisation}: ` +
        "their values may not be comparable",
    );
  }
  const join = intersectGenes(ref.ad.var.index, qry.ad.var.index, {
    ...inputs.geneMatch,
    aName: inputs.reference,
    bName: inputs.query,
  });
  const refShare = join.genes.length / ref.ad.var.index.length;
  if (refShare < 0.5) {
    warnings.push(
      `only ${join.genes.length} of ${ref.ad.var.index.length} reference genes are in the query`,
    );
  }
  const nQry = qry.X.nRows;
  const X = vstack(selectColumns(ref.X, join.aCols), selectColumns(qry.X, join.bCols));
  const qryTruth = qry.ad.obs.columns.has(truthKey) || inputs.truth
    ? obsColumn(qry.ad, truthKey, inputs.query, "truth")
    : null;
  let qryDomains: string[] | null = null;
  if (inputs.domains) {
    qryDomains = qry.ad.obs.columns.has(inputs.domains)
      ? obsColumn(qry.ad, inputs.domains, inputs.query, "domain")
      : new Array(nQry).fill("query");
    if (!qry.ad.obs.columns.has(inputs.domains)) {
      warnings.push(`${inputs.query} has no "${inputs.domains}" column: its cells form one domain`);
    }
  }
  const set: TrainingSet = {
    X,
    genes: join.genes,
    labels: [
      ...refLabels.map((l, i) => inReference[i] && l !== "" ? l : null),
      ...new Array(nQry).fill(null),
    ],
    isTarget: [...isTargetRef, ...new Array(nQry).fill(true)],
    domains: refDomains && qryDomains ? [...refDomains, ...qryDomains] : undefined,
    normalisation: ref.normalisation,
    description: {
      reference: inputs.reference,
      query: inputs.query,
      matrix: ref.ad.matrix,
      labelColumn: inputs.labels,
      domainColumn: inputs.domains ?? null,
      sharedGenes: join.genes.length,
    },
  };
  return {
    set,
    cellNames: [...ref.ad.obs.index, ...qry.ad.obs.index],
    truth: [
      ...new Array(nRef).fill(null),
      ...(qryTruth ? qryTruth.map((l) => l === "" ? null : l) : new Array(nQry).fill(null)),
    ],
    origin: [...new Array(nRef).fill("reference"), ...new Array(nQry).fill("query")],
    warnings,
  };
}
