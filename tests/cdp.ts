/**
 * Headless Chromium for tests, driven over the DevTools protocol by a small client of our own:
 * one WebSocket to the page target in flattened-session mode, so the page's workers (attached
 * automatically) answer on the same socket under their session ids. Every wait has a timeout.
 */

/** The system Chromium (Debian's), or undefined. */
export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/** Flags that keep a test's Chromium from talking to anything but the page. */
export const QUIET_CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
];

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type Handler = (params: Record<string, unknown>, sessionId?: string) => void;

/** Rejects after `ms` with `what` in the message. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A running Chromium with a DevTools connection to its first page. */
export class Chromium {
  readonly #proc: Deno.ChildProcess;
  readonly #profile: string;
  #ws: WebSocket | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, Handler[]>();
  /** Chromium's stderr so far (for failure messages). */
  stderr = "";

  private constructor(proc: Deno.ChildProcess, profile: string) {
    this.#proc = proc;
    this.#profile = profile;
  }

  /** Starts Chromium on about:blank with `extra` flags and connects to the page. */
  static async launch(extra: string[], timeoutMs = 15000): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "scnym_chromium_" });
    const proc = new Deno.Command(CHROMIUM!, {
      args: [
        ...QUIET_CHROMIUM_FLAGS,
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        ...extra,
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const c = new Chromium(proc, profile);
    try {
      const browserUrl = await withTimeout(c.#devtoolsUrl(), timeoutMs, "Chromium's DevTools");
      const port = new URL(browserUrl).port;
      const targets = await withTimeout(
        fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json()),
        timeoutMs,
        "the page list",
      ) as { type: string; webSocketDebuggerUrl: string }[];
      const page = targets.find((t) => t.type === "page");
      if (!page) throw new Error("Chromium has no page target");
      await withTimeout(c.#connect(page.webSocketDebuggerUrl), timeoutMs, "the page's socket");
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  /** Reads stderr until Chromium prints its DevTools address; keeps reading in the background. */
  async #devtoolsUrl(): Promise<string> {
    const reader = this.#proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Chromium exited: ${this.stderr.slice(-2000)}`);
      this.stderr += value;
      const m = this.stderr.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        (async () => {
          try {
            for (let r = await reader.read(); !r.done; r = await reader.read()) {
              this.stderr = (this.stderr + r.value).slice(-20000);
            }
          } catch { /* closed */ }
        })();
        return m[1];
      }
    }
  }

  #connect(url: string): Promise<void> {
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} ${msg.error.data ?? ""}`));
        else p?.resolve(msg.result);
      } else {
        for (const h of this.#handlers.get(msg.method) ?? []) h(msg.params, msg.sessionId);
      }
    };
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
  }

  /** Sends a DevTools command (to a worker with `sessionId`) and waits for its answer. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
    timeoutMs = 15000,
  ): Promise<T> {
    const id = this.#next++;
    const answer = new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.#ws!.send(JSON.stringify({ id, method, params, sessionId }));
    return withTimeout(answer, timeoutMs, method);
  }

  /** Calls `handler` on every event `method`. */
  on(method: string, handler: Handler): void {
    this.#handlers.set(method, [...(this.#handlers.get(method) ?? []), handler]);
  }

  /** Evaluates `expression` in the page and returns its value (awaiting promises). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string } }>(
      "Runtime.evaluate",
      { expression, returnByValue: true, awaitPromise: true },
    );
    if (r.exceptionDetails) throw new Error(`page threw: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value as T;
  }

  /** Polls `expression` every 200 ms until it is truthy; returns its value. */
  async waitFor<T>(expression: string, timeoutMs: number, what: string): Promise<T> {
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** Closes the connection, kills Chromium and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#ws?.close();
    } catch { /* already closed */ }
    for (const p of this.#pending.values()) p.reject(new Error("Chromium closed"));
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await withTimeout(this.#proc.status, 5000, "Chromium to exit").catch(() => {});
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
