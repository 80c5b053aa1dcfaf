/**
 * The web page on the shared Kang file (CTRL -> STIM) next to the same run in Deno: seconds and
 * target accuracy of each, same seed and epochs. Needs Chromium. Usage:
 *   deno run -A bench/web_kang.ts [EPOCHS=5] [SEED=0] [SCREENSHOT.png]
 */
import { Runtime } from "../runtime/runtime.ts";
import { denoRun, type PageRun, WebPage } from "../tests/web_page.ts";

const KANG = "/work/shared/data/kang_ifnb_sub_2000.h5ad";
const run: PageRun = {
  labels: "cell_type",
  target: "condition=STIM",
  epochs: Number(Deno.args[0] ?? 5),
  seed: Number(Deno.args[1] ?? 0),
};
const page = await WebPage.open();
try {
  await page.load(KANG);
  const r = await page.train(run, 30 * 60_000);
  if (r.status !== "done") throw new Error(r.log);
  console.log(
    `browser (${page.adapter}): ${r.seconds.toFixed(1)} s, STIM accuracy ` +
      `${(100 * r.accuracy).toFixed(1)}% (${r.summary.replace(/\s+/g, " ")})`,
  );
  if (Deno.args[2]) {
    await Deno.writeFile(Deno.args[2], await page.screenshot());
    console.log(`screenshot of the finished page: ${Deno.args[2]}`);
  }
  console.log(
    `requests outside the origin: ${page.outsideRequests().length}; all: ` +
      page.requests.join(" "),
  );
} finally {
  await page.close();
}
const rt = await Runtime.create();
const d = await denoRun(KANG, run, rt);
console.log(
  `Deno (${rt.gpu.description}): ${d.seconds.toFixed(1)} s, STIM accuracy ` +
    `${(100 * d.accuracy).toFixed(1)}%`,
);
rt.destroy();
