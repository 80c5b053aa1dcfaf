/**
 * The web page (web/) driven in headless Chromium, as a user would: built, served on 127.0.0.1,
 * a file set on its input, the form filled, Train and Stop clicked. Shared by tests/web_test.ts
 * and bench/web_kang.ts. Every request the page and its worker make is recorded.
 */
import type { Runtime } from "../runtime/runtime.ts";
import { trainFromFiles } from "../scnym/api.ts";
import { predictCells } from "../scnym/predict.ts";
import { Progress } from "../util/progress.ts";
import { buildWeb } from "../web/build.ts";
import { targetSummary } from "../web/summary.ts";
import { serveStatic } from "../web/serve.ts";
import { Chromium } from "./cdp.ts";

/** The form's settings for one run. */
export interface PageRun {
  labels: string;
  target: string;
  seed: number;
  epochs: number;
  config?: string;
}

/** What the page showed at the end of a run. */
export interface PageResult {
  status: string;
  log: string;
  summary: string;
  /** Target accuracy against the file's labels (NaN: none shown). */
  accuracy: number;
  /** From clicking Train to the page saying done. */
  seconds: number;
}

/**
 * The page's run in Deno, through the CLI's code (`trainFromFiles`, `predictCells`): the target
 * accuracy and the seconds from reading the file to the predictions.
 */
export async function denoRun(
  file: string,
  run: PageRun,
  rt: Runtime,
): Promise<{ accuracy: number; seconds: number }> {
  const t0 = performance.now();
  const quiet = new Progress({ quiet: true });
  const { result, loaded } = await trainFromFiles({
    reference: file,
    labels: run.labels,
    targetWhere: run.target,
    config: run.config ?? "default",
    overrides: { train: { epochs: run.epochs } },
    seed: run.seed,
    rt,
    progress: quiet,
  });
  const all = await predictCells(rt, result.model, loaded.set.X, {
    classes: result.classes,
    progress: quiet,
    calibration: result.calibration,
  });
  const accuracy = targetSummary(loaded, all.labels).targetAccuracy ?? NaN;
  return { accuracy, seconds: (performance.now() - t0) / 1000 };
}

/** `bytes` as base64 (to hand a file's bytes to the page inside an expression). */
function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(s);
}

const text = (id: string) => `(document.getElementById("${id}")?.textContent ?? "")`;

/** A page open in headless Chromium. `close()` it in a finally. */
export class WebPage {
  /** Every URL requested by the page or its workers. */
  readonly requests: string[] = [];
  /** DevTools sessions of the page's workers. */
  readonly workerSessions: string[] = [];
  adapter = "";

  private constructor(
    readonly chromium: Chromium,
    readonly server: Deno.HttpServer<Deno.NetAddr>,
    readonly origin: string,
  ) {}

  /** Builds and serves web/dist/, opens it in Chromium and waits for the GPU adapter. */
  static async open(timeoutMs = 20000): Promise<WebPage> {
    const server = serveStatic(await buildWeb());
    let chromium: Chromium | null = null;
    try {
      chromium = await Chromium.launch(["--enable-unsafe-webgpu", "--window-size=1000,1500"]);
      const page = new WebPage(chromium, server, `http://127.0.0.1:${server.addr.port}`);
      await page.#start(timeoutMs);
      return page;
    } catch (e) {
      await chromium?.close();
      await server.shutdown();
      throw e;
    }
  }

  async #start(timeoutMs: number): Promise<void> {
    const c = this.chromium;
    c.on("Network.requestWillBeSent", (p) => {
      this.requests.push((p.request as { url: string }).url);
    });
    // Workers attach as sessions of the page's socket; their requests are recorded too.
    c.on("Target.attachedToTarget", (p) => {
      const sessionId = p.sessionId as string;
      this.workerSessions.push(sessionId);
      c.send("Network.enable", {}, sessionId)
        .then(() => c.send("Runtime.runIfWaitingForDebugger", {}, sessionId))
        .catch(() => {});
    });
    await c.send("Network.enable");
    await c.send("Target.setAutoAttach", {
      autoAttach: true,
      waitForDebuggerOnStart: true,
      flatten: true,
    });
    await c.send("Page.enable");
    await c.send("Page.navigate", { url: `${this.origin}/` });
    this.adapter = await c.waitFor<string>(
      `(() => { const t = ${text("adapter")};
        return t.includes("largest buffer") || ${text("status")} === "error" ? t : ""; })()`,
      timeoutMs,
      "the WebGPU adapter",
    );
    if (!this.adapter.includes("largest buffer")) {
      throw new Error(`no adapter: ${this.adapter} ${await c.evaluate(text("log"))}`);
    }
  }

  /**
   * Sets `file` on the file input `input` (`file`: the reference, `queryfile`: the query) and
   * waits until the page has read it.
   */
  async load(file: string, input = "file", timeoutMs = 20000): Promise<void> {
    const c = this.chromium;
    await c.evaluate(`document.getElementById("status").textContent = "loading"`);
    const el = await c.send<{ result: { objectId: string } }>("Runtime.evaluate", {
      expression: `document.getElementById("${input}")`,
    });
    await c.send("DOM.setFileInputFiles", { files: [file], objectId: el.result.objectId });
    await c.waitFor(`["ready", "error"].includes(${text("status")})`, timeoutMs, "the file");
    if (await c.evaluate(text("status")) !== "ready") {
      throw new Error(`reading ${file} failed: ${await c.evaluate(text("log"))}`);
    }
  }

  /**
   * Drops `files` on the page element `on` (by default the data fieldset, the drop zone) as a
   * user dragging them from the desktop would: `dragenter`, `dragover` and `drop` events carrying
   * a DataTransfer with the files' bytes. Waits until the page has read them (or refused them);
   * returns whether the zone was highlighted during the dragover and plain again after the drop,
   * and the page's status then.
   */
  async drop(
    files: string[],
    on = "drop",
    timeoutMs = 20000,
  ): Promise<{ highlighted: boolean; cleared: boolean; status: string }> {
    const c = this.chromium;
    const payload = await Promise.all(files.map(async (f) => ({
      name: f.split("/").pop()!,
      b64: toBase64(await Deno.readFile(f)),
    })));
    await c.evaluate(`document.getElementById("status").textContent = "loading"`);
    const seen = await c.evaluate<{ highlighted: boolean; cleared: boolean }>(`(() => {
      const dt = new DataTransfer();
      for (const { name, b64 } of ${JSON.stringify(payload)}) {
        dt.items.add(new File([Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0))], name));
      }
      const el = document.getElementById(${JSON.stringify(on)});
      const zone = document.getElementById("drop");
      const fire = (type) =>
        el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      fire("dragenter");
      fire("dragover");
      const highlighted = zone.classList.contains("dragover");
      fire("drop");
      return { highlighted, cleared: !zone.classList.contains("dragover") };
    })()`);
    await c.waitFor(
      `!["loading", "reading"].some((s) => ${text("status")}.startsWith(s))`,
      timeoutMs,
      "the dropped files",
    );
    return { ...seen, status: await c.evaluate<string>(text("status")) };
  }

  /** The text of the page element `id` ("" when there is none). */
  textOf(id: string): Promise<string> {
    return this.chromium.evaluate<string>(text(id));
  }

  /** Fills the form and clicks Train (returns at once). */
  async startTraining(run: PageRun): Promise<void> {
    await this.chromium.evaluate(`(() => {
      const set = (id, v) => { document.getElementById(id).value = v; };
      set("labels", ${JSON.stringify(run.labels)});
      set("target", ${JSON.stringify(run.target)});
      set("config", ${JSON.stringify(run.config ?? "default")});
      set("seed", "${run.seed}");
      set("epochs", "${run.epochs}");
      document.getElementById("train").click();
    })()`);
  }

  /** Waits until the page's status text matches `re`. */
  async waitForStatus(re: RegExp, timeoutMs: number): Promise<void> {
    await this.chromium.waitFor(
      `${re}.test(${text("status")}) || ${text("status")} === "error"`,
      timeoutMs,
      `status ${re}`,
    );
  }

  /** Clicks Stop. */
  async stop(): Promise<void> {
    await this.chromium.evaluate(`document.getElementById("stop").click()`);
  }

  /** Waits for the run to end and reads what the page shows. */
  async result(started: number, timeoutMs: number): Promise<PageResult> {
    const c = this.chromium;
    await c.waitFor(`["done", "error"].includes(${text("status")})`, timeoutMs, "training");
    const seconds = (performance.now() - started) / 1000;
    return {
      status: await c.evaluate(text("status")),
      log: await c.evaluate(text("log")),
      summary: await c.evaluate(text("summary")),
      accuracy: Number(await c.evaluate(`document.getElementById("accuracy")?.dataset.value`)),
      seconds,
    };
  }

  /** Trains with `run` and waits for the result. */
  async train(run: PageRun, timeoutMs: number): Promise<PageResult> {
    const t0 = performance.now();
    await this.startTraining(run);
    return await this.result(t0, timeoutMs);
  }

  /** The bytes behind the download link `id` (a blob: URL of the page). */
  async download(id: string): Promise<Uint8Array> {
    const b64 = await this.chromium.evaluate<string>(`(async () => {
      const b = new Uint8Array(await (await fetch(document.getElementById("${id}").href))
        .arrayBuffer());
      let s = "";
      for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
      return btoa(s);
    })()`);
    return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  }

  /** A PNG screenshot of the page. */
  async screenshot(): Promise<Uint8Array> {
    const shot = await this.chromium.send<{ data: string }>("Page.captureScreenshot", {
      format: "png",
    });
    return Uint8Array.from(atob(shot.data), (ch) => ch.charCodeAt(0));
  }

  /** Requests that left the page's origin (data: and blob: URLs never leave the page). */
  outsideRequests(): string[] {
    return this.requests.filter((u) =>
      !u.startsWith(`${this.origin}/`) && !/^(data|blob):/.test(u)
    );
  }

  /** Kills Chromium and stops the server. */
  async close(): Promise<void> {
    await this.chromium.close();
    await this.server.shutdown();
  }
}
