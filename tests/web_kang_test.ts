/**
 * The web page on the shared Kang file (CTRL -> STIM), as issue 14's done criteria ask: the file
 * set on the page's input, a few epochs with a fixed seed, and checks that the page's STIM
 * accuracy is the CLI code's in Deno within 2 points, that the annotated `.h5ad` it hands over
 * opens in real anndata with the predictions of every cell, and that nothing left the page's
 * origin. Prints both runs' seconds and accuracies. Ignored, visibly, without Chromium or the data
 * (CI has both).
 */
import assert from "node:assert/strict";
import { CHROMIUM } from "./cdp.ts";
import { gpuTest, missing, testRuntime } from "./helpers.ts";
import { dataFile, haveAnndata, python } from "./io_shared.ts";
import { denoRun, type PageRun, WebPage } from "./web_page.ts";

if (!CHROMIUM) missing("Chromium (/usr/bin/chromium)", "apt-get install chromium");
const KANG = dataFile("kang_ifnb_sub_2000.h5ad");

/** Five epochs: enough to separate the types, short enough on SwiftShader (about 25 s here). */
const RUN: PageRun = {
  labels: "cell_type",
  target: "condition=STIM",
  seed: 0,
  epochs: 5,
  config: "default",
};

Deno.test({
  name: "web page on Kang: STIM accuracy as in Deno, annotated .h5ad in anndata, origin only",
  ignore: !CHROMIUM || !KANG,
  ...gpuTest,
  fn: async () => {
    const kang = KANG!;
    const dir = await Deno.makeTempDir({ prefix: "scnym_web_kang_" });
    let page: WebPage | null = null;
    try {
      page = await WebPage.open();
      await page.load(kang);
      const r = await page.train(RUN, 180000);
      assert.equal(r.status, "done", r.log);
      const csv = new TextDecoder().decode(await page.download("csv")).trim().split("\n");
      const labels = csv.slice(1).map((line) => line.split(",")[1]);
      const annotated = await page.download("h5ad");
      // Every request, the worker's included, stayed on the page's origin.
      assert.ok(page.requests.some((u) => u.endsWith("/worker.js")), `${page.requests}`);
      assert.deepEqual(page.outsideRequests(), [], "requests outside the page's origin");
      const adapter = page.adapter;
      await page.close();
      page = null;

      // The same run through the CLI's code in Deno (llvmpipe here): the adapters differ in
      // floating-point summation order, not in the code, so the accuracies agree within 2 points.
      const deno = await denoRun(kang, RUN, await testRuntime());
      console.log(
        `Kang CTRL -> STIM, seed ${RUN.seed}, ${RUN.epochs} epochs, ${RUN.config}: ` +
          `browser (${adapter}): ${r.seconds.toFixed(1)} s from Train to the report shown, ` +
          `STIM accuracy ${(100 * r.accuracy).toFixed(1)}%; Deno: ${deno.seconds.toFixed(1)} s ` +
          `read + train + predict, STIM accuracy ${(100 * deno.accuracy).toFixed(1)}%`,
      );
      assert.ok(
        Math.abs(r.accuracy - deno.accuracy) <= 0.02,
        `browser ${r.accuracy} vs Deno ${deno.accuracy}`,
      );
      // Five epochs already label most STIM cells right (79% in the README's table).
      assert.ok(r.accuracy > 0.6, `STIM accuracy ${r.accuracy}`);

      // The annotated .h5ad: the input's cells, each with a prediction, the CSV's labels, and the
      // page's STIM accuracy recomputed from them by anndata.
      if (haveAnndata()) {
        await Deno.writeFile(`${dir}/annotated.h5ad`, annotated);
        const ad = await python(`
import anndata, json, numpy as np
a = anndata.read_h5ad("${dir}/annotated.h5ad")
src = anndata.read_h5ad("${kang}", backed="r")
stim = (a.obs["condition"] == "STIM").to_numpy()
pred = a.obs["scNym"].astype(str).to_numpy()
print(json.dumps({
  "n": a.n_obs, "source_n": src.n_obs,
  "same_cells": list(a.obs_names) == list(src.obs_names),
  "missing": int(a.obs["scNym"].isna().sum()),
  "labels": pred.tolist(),
  "confidence_ok": bool(np.all(np.isfinite(a.obs["scNym_confidence"].to_numpy()))),
  "probabilities": list(a.obsm["scNym_probabilities"].shape),
  "stim_acc": float((pred[stim] == a.obs["cell_type"].astype(str).to_numpy()[stim]).mean()),
}))`) as {
          n: number;
          source_n: number;
          same_cells: boolean;
          missing: number;
          labels: string[];
          confidence_ok: boolean;
          probabilities: number[];
          stim_acc: number;
        };
        assert.equal(ad.n, ad.source_n);
        assert.ok(ad.same_cells, "the annotated file holds the input's cells, in order");
        assert.equal(ad.missing, 0, "cells without a prediction");
        assert.ok(ad.confidence_ok, "every cell has a finite confidence");
        assert.equal(ad.probabilities[0], ad.n);
        assert.equal(labels.length, ad.n);
        assert.deepEqual(ad.labels, labels, "the .h5ad's labels are the CSV's");
        // Exact up to float printing: the same labels, counted over the same STIM cells.
        assert.ok(Math.abs(ad.stim_acc - r.accuracy) < 1e-9, `${ad.stim_acc} vs ${r.accuracy}`);
      }
    } finally {
      await page?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
