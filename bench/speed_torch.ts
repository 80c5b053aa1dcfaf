/**
 * The PyTorch side of bench/speed.ts: whether the interpreter has torch, the input files
 * bench/torch_reference.py reads, and one run of it as a child process.
 */
import { nnz } from "../data/csr.ts";
import type { ScnymConfig } from "../scnym/config.ts";
import { prepareTrainingSet } from "../scnym/train.ts";
import { type Dataset, splitsOf } from "./speed_datasets.ts";

const TORCH_SCRIPT = new URL("torch_reference.py", import.meta.url).pathname;

/** How the PyTorch child runs. */
export interface TorchOptions {
  python: string;
  /** OMP_WAIT_POLICY of the child ("" leaves libgomp's default). */
  ompWaitPolicy: string;
  epochs: number;
}

/** Null when `python` imports torch and numpy, else why not. */
export async function torchAvailable(python: string): Promise<string | null> {
  try {
    const r = await new Deno.Command(python, {
      args: ["-c", "import torch, numpy; print(torch.__version__)"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      return `${python} cannot import torch/numpy (apt-get install python3-torch ` +
        "libopenblas0-pthread)";
    }
    return null;
  } catch {
    return `${python} not found`;
  }
}

/** Writes the normalised CSR, classes, splits and domains for torch_reference.py. */
export async function writeForTorch(
  dir: string,
  d: Dataset,
  config: ScnymConfig,
  seed: number,
): Promise<{ classes: string[] }> {
  const prep = prepareTrainingSet(d.set, config);
  const splits = splitsOf(prep, config, seed);
  const n = d.set.X.nRows;
  const split = new Int8Array(n).fill(-1);
  splits.train.forEach((k) => split[prep.labelled[k]] = 0);
  splits.earlyStopping.forEach((k) => split[prep.labelled[k]] = 1);
  splits.validation.forEach((k) => split[prep.labelled[k]] = 2);
  const classIndex = new Map(prep.classes.map((c, i) => [c, i]));
  const cls = Int32Array.from(prep.classOf);
  for (const i of prep.target) {
    split[i] = 3;
    const t = d.truth[i];
    cls[i] = t !== null && classIndex.has(t) ? classIndex.get(t)! : -1;
  }
  const X = d.set.X;
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await Deno.writeFile(`${dir}/indptr.u32`, bytes(X.indptr.subarray(0, X.nRows + 1)));
  await Deno.writeFile(`${dir}/indices.u32`, bytes(X.indices.subarray(0, nnz(X))));
  await Deno.writeFile(`${dir}/data.f32`, bytes(X.data.subarray(0, nnz(X))));
  await Deno.writeFile(`${dir}/class.i32`, bytes(cls));
  await Deno.writeFile(`${dir}/split.i8`, bytes(split));
  await Deno.writeFile(`${dir}/domain.i32`, bytes(Int32Array.from(prep.domainOf)));
  await Deno.writeTextFile(
    `${dir}/meta.json`,
    JSON.stringify({
      cells: n,
      genes: X.nCols,
      classes: prep.classes.length,
      domains: prep.domains.length,
      classNames: prep.classes,
      domainNames: prep.domains,
      config,
    }),
  );
  return { classes: prep.classes };
}

/** Runs torch_reference.py on the input in `dir`; its JSON result. */
// deno-lint-ignore no-explicit-any
export async function runTorch(dir: string, threads: number, o: TorchOptions): Promise<any> {
  const env = Deno.env.toObject();
  // Only in this child: OpenBLAS chooses its own kernels and cache sizes (the figure a user gets).
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  // libgomp's threads spin-wait after every parallel region by default, on the very cores
  // OpenBLAS's own pthreads then need for the next matmul: with 2 threads on 2 cores that made
  // PyTorch 3-25x slower here (kang1300 3.85 vs 0.16 s/epoch). A passive wait is what a careful
  // user sets; the child records the policy it ran with.
  if (o.ompWaitPolicy) env.OMP_WAIT_POLICY = o.ompWaitPolicy;
  const r = await new Deno.Command(o.python, {
    args: [TORCH_SCRIPT, dir, "--epochs", String(o.epochs), "--threads", String(threads)],
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim();
  if (!r.success) {
    throw new Error(`torch_reference.py failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
  return JSON.parse(out.split("\n").at(-1)!);
}
