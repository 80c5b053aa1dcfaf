/**
 * The web page end to end in headless Chromium (its WebGPU runs on SwiftShader here): build and
 * serve web/dist/, set a small simulated .h5ad on the file input, train with a fixed seed, and
 * check that training finished with the accuracy the same run reaches in Deno, that the model
 * download predicts as `scnym predict` does, that the annotated `.h5ad` download opens in real
 * anndata, that Stop keeps a usable model, that a reference and a query dropped on the page are
 * read as the inputs read them and that `auto` (the guard) trains on them, that every network
 * request stayed on the page's origin (the data never leave the machine), and that the finished
 * page is not blank. Ignored, visibly, where Chromium is absent (CI installs it). The shared Kang
 * file's run is tests/web_kang_test.ts.
 */
import assert from "node:assert/strict";
import { writeSimulation } from "../commands/simulate.ts";
import { selectRows } from "../data/csr.ts";
import { simulate, type SimulatedData } from "../data/simulate.ts";
import { predictFile } from "../scnym/api.ts";
import { decodeModel } from "../scnym/model_file.ts";
import { Progress } from "../util/progress.ts";
import { CHROMIUM } from "./cdp.ts";
import { gpuTest, missing, testRuntime } from "./helpers.ts";
import { haveAnndata, python } from "./io_shared.ts";
import { decodePng, inkFraction } from "./png.ts";
import { denoRun, type PageRun, WebPage } from "./web_page.ts";

if (!CHROMIUM) missing("Chromium (/usr/bin/chromium)", "apt-get install chromium");

const RUN: PageRun = { labels: "cell_type", target: "domain=target", seed: 0, epochs: 15 };
const quiet = () => new Progress({ quiet: true });

/** Writes the cells of one domain of `sim` as an .h5ad. */
function writeDomain(path: string, sim: SimulatedData, domain: string): Promise<void> {
  const rows = sim.domain.flatMap((d, i) => d === domain ? [i] : []);
  const pick = <T>(a: T[]) => rows.map((i) => a[i]);
  return writeSimulation(path, {
    ...sim,
    counts: selectRows(sim.counts, rows),
    cellNames: pick(sim.cellNames),
    cellType: pick(sim.cellType),
    domain: pick(sim.domain),
  });
}

Deno.test({
  name: "web page: drop an .h5ad, train in the browser, nothing leaves the origin, not blank",
  ignore: !CHROMIUM,
  ...gpuTest,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "scnym_web_" });
    const file = `${dir}/sim.h5ad`;
    const sim = simulate({ cellsPerDomain: [400, 400], genes: 300, types: 4, seed: 3 });
    await writeSimulation(file, sim);
    let page: WebPage | null = null;
    try {
      page = await WebPage.open();
      await page.load(file);
      const r = await page.train(RUN, 45000);
      assert.equal(r.status, "done", r.log);
      // The CLI's own progress lines, through the worker.
      assert.match(
        r.log,
        new RegExp(String.raw`epoch 15/15 +sup [\d.]+ +ssl [\d.]+ +adv [\d.]+ .* acc [\d.]+%`),
      );
      // The same run in Deno (llvmpipe here) labels the target as well, within 2 points: the
      // adapters differ in floating-point summation order, not in the code that runs.
      const deno = await denoRun(file, RUN, await testRuntime());
      console.log(
        `browser (${page.adapter}): ${r.seconds.toFixed(1)} s, target accuracy ` +
          `${(100 * r.accuracy).toFixed(1)}%; Deno: ${deno.seconds.toFixed(1)} s, ` +
          `${(100 * deno.accuracy).toFixed(1)}%`,
      );
      assert.ok(
        Math.abs(r.accuracy - deno.accuracy) <= 0.02,
        `browser ${r.accuracy} vs Deno ${deno.accuracy}`,
      );
      // Four well-separated simulated types: 15 epochs label most target cells right.
      assert.ok(r.accuracy > 0.9, `target accuracy ${r.accuracy}`);

      // The downloaded model predicts in Deno as `scnym predict` does, with the page's labels.
      await Deno.writeFile(`${dir}/browser.scnym`, await page.download("model"));
      const { prediction } = await predictFile({
        model: `${dir}/browser.scnym`,
        query: file,
        rt: await testRuntime(),
        progress: quiet(),
      });
      const csv = new TextDecoder().decode(await page.download("csv")).trim().split("\n");
      assert.match(csv[0], /^cell,scNym,confidence,scNym_split,scNym_novelty,p_type_0,/);
      const labels = csv.slice(1).map((line) => line.split(",")[1]);
      assert.equal(labels.length, 800);
      const same = labels.filter((l, i) => l === prediction.labels[i]).length;
      assert.ok(same >= 0.98 * labels.length, `${same} of ${labels.length} labels agree`);

      // The annotated .h5ad, written in the worker by the CLI's writer, opens in real anndata.
      if (haveAnndata()) {
        await Deno.writeFile(`${dir}/annotated.h5ad`, await page.download("h5ad"));
        const ad = await python(`
import anndata, json
a = anndata.read_h5ad("${dir}/annotated.h5ad")
print(json.dumps({"n": a.n_obs, "labels": [str(x) for x in a.obs["scNym"]],
  "emb": list(a.obsm["X_scnym"].shape), "cats": "cell_type" in a.obs}))`) as {
          n: number;
          labels: string[];
          emb: number[];
          cats: boolean;
        };
        assert.equal(ad.n, 800);
        assert.deepEqual(ad.labels, labels, "the .h5ad's labels are the CSV's");
        assert.equal(ad.emb[0], 800);
        assert.ok(ad.cats, "the file's own obs columns are kept");
      }

      // The report, as `scnym train --report` writes it, built in the worker.
      const report = new TextDecoder().decode(await page.download("report"));
      assert.match(report, /scNym label transfer report/);
      assert.match(report, /<svg[^>]*>[\s\S]*UMAP/);

      const png = await page.screenshot();
      // SCNYM_WEB_SCREENSHOT=FILE keeps the screenshot for a look.
      const keep = Deno.env.get("SCNYM_WEB_SCREENSHOT");
      if (keep) await Deno.writeFile(keep, png);
      const ink = inkFraction(await decodePng(png));
      assert.ok(ink > 0.01, `screenshot nearly blank (${(100 * ink).toFixed(2)}% ink)`);

      // Stop during a long run: the page ends with the best model so far, as Ctrl-C does.
      const t1 = performance.now();
      await page.startTraining({ ...RUN, epochs: 500 });
      await page.waitForStatus(/epoch 3\b/, 30000);
      await page.stop();
      const stopped = await page.result(t1, 30000);
      assert.equal(stopped.status, "done", stopped.log);
      assert.match(stopped.summary, /^stopped; (\d+) epochs/);
      const header = decodeModel(await page.download("model"), "stopped.scnym").header;
      assert.ok((header.training as { interrupted: boolean }).interrupted);

      // Two files: an annotated reference and a query whose cells are all the target ...
      await writeDomain(`${dir}/ref.h5ad`, sim, "source");
      await writeDomain(`${dir}/query.h5ad`, sim, "target");
      await page.load(`${dir}/ref.h5ad`);
      await page.load(`${dir}/query.h5ad`, "queryfile");
      assert.match(await page.textOf("queryinfo"), /^query\.h5ad: 400 cells x 300 genes$/);

      // ... dropped on the page instead: refused unless .h5ad, ...
      await Deno.writeTextFile(`${dir}/notes.txt`, "not a dataset");
      const refused = await page.drop([`${dir}/notes.txt`]);
      assert.match(refused.status, /^dropped notes\.txt: drop one or two \.h5ad files/);
      // ... two at once: the reference, then the query (copies under new names, so the page's
      // file lines show which it read) ...
      await Deno.copyFile(`${dir}/ref.h5ad`, `${dir}/dropped_ref.h5ad`);
      await Deno.copyFile(`${dir}/query.h5ad`, `${dir}/dropped_query.h5ad`);
      await Deno.copyFile(`${dir}/query.h5ad`, `${dir}/query_line.h5ad`);
      const dropped = await page.drop([`${dir}/dropped_ref.h5ad`, `${dir}/dropped_query.h5ad`]);
      assert.deepEqual(dropped, { highlighted: true, cleared: true, status: "ready" });
      assert.match(await page.textOf("fileinfo"), /^dropped_ref\.h5ad: 400 cells x 300 genes$/);
      assert.match(await page.textOf("queryinfo"), /^dropped_query\.h5ad: 400 cells x 300 genes$/);
      const options = await page.chromium.evaluate<string[]>(
        `[...document.getElementById("labels").options].map((o) => o.value)`,
      );
      assert.ok(options.includes("cell_type"), `label columns offered: ${options}`);
      // ... and one file dropped on the query's line replaces the query only.
      const one = await page.drop([`${dir}/query_line.h5ad`], "querydrop");
      assert.equal(one.status, "ready");
      assert.match(await page.textOf("queryinfo"), /^query_line\.h5ad: 400 cells/);
      assert.match(await page.textOf("fileinfo"), /^dropped_ref\.h5ad: 400 cells/);
      // ... with `auto`, the CLI's default: the label-free guard trains three, keeps one.
      const two = await page.train({ ...RUN, target: "", config: "auto" }, 120000);
      assert.equal(two.status, "done", two.log);
      assert.match(two.summary, /auto \(guard kept (default|no_dan|no_ssl)\)/);
      assert.match(two.summary, /Target cells: 400;/);
      assert.ok(two.accuracy > 0.9, `two files: target accuracy ${two.accuracy}`);
      const twoCsv = new TextDecoder().decode(await page.download("csv")).trim().split("\n");
      assert.equal(twoCsv.length, 1 + 400, "the CSV holds the query's cells");

      assert.ok(page.requests.some((u) => u.endsWith("/worker.js")), `${page.requests}`);
      assert.deepEqual(page.outsideRequests(), [], "requests outside the page's origin");
      // The recorder does see a worker's request elsewhere (192.0.2.1: TEST-NET, unroutable; the
      // page's Content-Security-Policy blocks it anyway).
      const [worker] = page.workerSessions;
      await page.chromium.send("Runtime.evaluate", {
        expression: `fetch("http://192.0.2.1/probe").catch(() => 0)`,
        awaitPromise: true,
      }, worker);
      assert.deepEqual(page.outsideRequests(), ["http://192.0.2.1/probe"]);
    } finally {
      await page?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
