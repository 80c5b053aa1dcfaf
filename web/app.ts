/**
 * The page's main thread: form, progress and results. Reading and training run in web/worker.ts,
 * so the page stays responsive; nothing leaves the machine.
 */
/// <reference lib="dom" />
import type { FileRole, FromWorker, ObsColumnInfo, RunSummary, ToWorker } from "./protocol.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const send = (msg: ToWorker, transfer: Transferable[] = []) => worker.postMessage(msg, transfer);
let columns: ObsColumnInfo[] = [];
/** Per epoch: supervised loss and validation accuracy, for the chart. */
let history: { sup: number; acc: number }[] = [];
/** File reads sent to the worker and not yet answered: the page is "ready" when none are. */
let reading = 0;
/** Training: the files stay as they are (no picking, no dropping) until it ends. */
let busy = false;

/** A small SVG chart of the supervised loss (blue) and validation accuracy (orange) so far. */
function drawChart(): void {
  const w = 320, h = 100, n = Math.max(history.length - 1, 1);
  const maxLoss = Math.max(...history.map((r) => r.sup), 1e-9);
  const line = (f: (r: { sup: number; acc: number }) => number) =>
    history.map((r, i) => `${(i / n) * w},${h - f(r) * h}`).join(" ");
  $("chart").innerHTML = `<svg width="${w}" height="${h}" style="border:1px solid #ccc">
    <polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${
    line((r) => r.sup / maxLoss)
  }"/>
    <polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="${line((r) => r.acc)}"/>
    </svg> <span style="color:#1f77b4">supervised loss</span>,
    <span style="color:#ff7f0e">validation accuracy</span>`;
}

function log(text: string): void {
  const el = $<HTMLDivElement>("log");
  el.textContent += text;
  el.scrollTop = el.scrollHeight;
}

function setStatus(text: string): void {
  $("status").textContent = text;
}

function fillSelect(sel: HTMLSelectElement, options: string[], pick?: string): void {
  sel.replaceChildren(...options.map((o) => new Option(o, o, false, o === pick)));
}

/** With a query file, its cells are the target: the selector's first, chosen entry. */
const WHOLE_QUERY = "";
let hasQuery = false;

/** Offers the columns as labels, and every `column=value` of few-valued columns as the target. */
function showColumns(cols: ObsColumnInfo[]): void {
  columns = cols;
  const names = cols.map((c) => c.name);
  const guess = names.find((n) => /cell_?type|label/i.test(n)) ?? names[0];
  fillSelect($("labels"), names, guess);
  showTargets();
}

function showTargets(): void {
  const targets = columns.filter((c) => c.values.length <= 20)
    .flatMap((c) => c.values.map((v) => `${c.name}=${v}`));
  const guess = hasQuery
    ? WHOLE_QUERY
    : targets.find((t) => /=(stim|target|query)/i.test(t)) ?? targets.at(-1);
  const sel = $<HTMLSelectElement>("target");
  fillSelect(sel, targets, guess);
  if (hasQuery) sel.prepend(new Option("every cell of the query file", WHOLE_QUERY, true, true));
}

function showResult(s: RunSummary): void {
  const rows = Object.entries(s.counts).sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `<tr><td>${escape(k)}</td><td>${n}</td></tr>`).join("");
  const pct = (x: number | null) => x === null ? "n/a" : `${(100 * x).toFixed(1)}%`;
  $("result").innerHTML = `
    <h2>Predictions</h2>
    <p id="summary">${s.interrupted ? "stopped; " : ""}${s.epochsRun} epochs (kept epoch
      ${s.bestEpoch + 1}), seed ${s.seed}, ${escape(s.config)}, ${s.seconds.toFixed(1)} s.
      Held-out validation accuracy: ${pct(s.validationAccuracy)}.
      Target cells: ${s.targetCells}; accuracy against the file's labels:
      <b id="accuracy" data-value="${s.targetAccuracy ?? ""}">${pct(s.targetAccuracy)}</b></p>
    <table><tr><th>predicted type</th><th>target cells</th></tr>${rows}</table>
    <p><a id="csv" download="scnym_predictions.csv">download the predictions (CSV)</a> &middot;
      <a id="h5ad" download="scnym_annotated.h5ad">download the annotated .h5ad</a> &middot;
      <a id="model" download="model.scnym">download the model</a> (for <code>scnym predict</code>)
      &middot; <a id="report" download="scnym_report.html">download the report</a></p>
    <iframe id="reportframe" sandbox="" style="width: 100%; height: 60em; border: 1px solid #ccc">
    </iframe>`;
  $<HTMLAnchorElement>("csv").href = URL.createObjectURL(new Blob([s.csv], { type: "text/csv" }));
  $<HTMLAnchorElement>("h5ad").href = URL.createObjectURL(new Blob([s.h5ad as BlobPart]));
  $<HTMLAnchorElement>("model").href = URL.createObjectURL(new Blob([s.model as BlobPart]));
  $<HTMLAnchorElement>("report").href = URL.createObjectURL(
    new Blob([s.report], { type: "text/html" }),
  );
  $<HTMLIFrameElement>("reportframe").srcdoc = s.report;
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  if (m.type === "adapter") {
    const mb = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
    $("adapter").textContent = `GPU: ${m.description}${m.isFallback ? " (software)" : ""}; ` +
      `largest buffer ${mb(m.limits.maxBufferSize)}, largest binding ` +
      `${mb(m.limits.maxStorageBufferBindingSize)}`;
  } else if (m.type === "file") {
    const info = `${m.name}: ${m.cells} cells x ${m.genes} genes`;
    if (m.role === "query") {
      $("queryinfo").textContent = info;
      hasQuery = true;
      showTargets();
    } else {
      $("fileinfo").textContent = info;
      showColumns(m.columns);
    }
    $<HTMLButtonElement>("train").disabled = columns.length === 0;
    reading = Math.max(reading - 1, 0);
    // The other of two dropped files may have failed: its error stays shown.
    if (reading === 0 && $("status").textContent !== "error") setStatus("ready");
  } else if (m.type === "log") {
    log(m.text);
  } else if (m.type === "epoch") {
    // The log shows the CLI's own progress line; the status and chart give the gist.
    history.push({ sup: m.supLoss, acc: m.valAccuracy });
    drawChart();
    setStatus(
      `training: epoch ${m.epoch + 1}, validation accuracy ${(100 * m.valAccuracy).toFixed(1)}%`,
    );
  } else if (m.type === "done") {
    showResult(m.summary);
    setStatus("done");
    setBusy(false);
    $<HTMLButtonElement>("train").disabled = false;
    $<HTMLButtonElement>("stop").disabled = true;
  } else {
    log(`error: ${m.message}\n`);
    setStatus("error");
    reading = Math.max(reading - 1, 0);
    setBusy(false);
    $<HTMLButtonElement>("train").disabled = columns.length === 0;
    $<HTMLButtonElement>("stop").disabled = true;
  }
};

/** Sends a picked or dropped file to the worker, refusing one larger than the browser can hold. */
async function pick(role: FileRole, file: File | undefined): Promise<void> {
  if (!file) return;
  // The file is held in memory (twice while h5wasm copies it in) plus the matrix it decodes to.
  const heap = (performance as { memory?: { jsHeapSizeLimit: number } }).memory?.jsHeapSizeLimit;
  const limit = Math.floor((heap ?? 2 ** 31) / 4);
  if (file.size > limit) {
    setStatus(
      `${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB; this browser can take files up ` +
        `to ${(limit / 2 ** 20).toFixed(0)} MiB (a quarter of its memory limit): use the CLI`,
    );
    return;
  }
  reading++;
  setStatus(`reading ${file.name}...`);
  const bytes = await file.arrayBuffer();
  send({ type: "file", role, name: file.name, bytes }, [bytes]);
}

$<HTMLInputElement>("file").onchange = (ev) =>
  pick("reference", (ev.target as HTMLInputElement).files?.[0]);
$<HTMLInputElement>("queryfile").onchange = (ev) =>
  pick("query", (ev.target as HTMLInputElement).files?.[0]);

/**
 * Dropped files take the inputs' path: one file is the reference (the query when dropped on the
 * query's line), two are the reference then the query.
 */
function dropped(ev: DragEvent): void {
  const files = [...ev.dataTransfer?.files ?? []];
  const onQuery = (ev.target as Element | null)?.closest("#querydrop") !== null;
  if (files.length === 0) return;
  if (files.length > 2 || files.some((f) => !/\.h5ad$/i.test(f.name))) {
    setStatus(
      `dropped ${files.map((f) => f.name).join(", ")}: drop one or two .h5ad files ` +
        `(the annotated reference, then optionally a query)`,
    );
    return;
  }
  if (files.length === 1) pick(onQuery ? "query" : "reference", files[0]);
  else {
    pick("reference", files[0]);
    pick("query", files[1]);
  }
}

const zone = $("drop");
zone.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  if (ev.dataTransfer) ev.dataTransfer.dropEffect = busy ? "none" : "copy";
  zone.classList.toggle("dragover", !busy);
});
zone.addEventListener("dragleave", (ev) => {
  // Leaving for a child of the zone is not leaving the zone.
  if (!zone.contains(ev.relatedTarget as Node | null)) zone.classList.remove("dragover");
});
zone.addEventListener("drop", (ev) => {
  ev.preventDefault();
  zone.classList.remove("dragover");
  if (!busy) dropped(ev);
});
// A file dropped beside the zone would make the browser leave the page for the file.
globalThis.addEventListener("dragover", (ev) => ev.preventDefault());
globalThis.addEventListener("drop", (ev) => ev.preventDefault());

/** While training, the files in the worker stay as they are: no picking, no dropping. */
function setBusy(b: boolean): void {
  busy = b;
  $<HTMLInputElement>("file").disabled = b;
  $<HTMLInputElement>("queryfile").disabled = b;
}

$("train").onclick = () => {
  setBusy(true);
  $<HTMLButtonElement>("train").disabled = true;
  $<HTMLButtonElement>("stop").disabled = false;
  $("result").replaceChildren();
  history = [];
  setStatus("training...");
  send({
    type: "train",
    labels: $<HTMLSelectElement>("labels").value,
    targetWhere: $<HTMLSelectElement>("target").value,
    config: $<HTMLSelectElement>("config").value,
    seed: Number($<HTMLInputElement>("seed").value),
    epochs: Number($<HTMLInputElement>("epochs").value),
  });
};

$("stop").onclick = () => {
  send({ type: "stop" });
  setStatus("stopping (keeping the best model so far)...");
};
