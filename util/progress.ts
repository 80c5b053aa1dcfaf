/**
 * Progress of long work on stderr. On a terminal one status line is rewritten in place; when
 * stderr is a file or a pipe (a batch job's log) the same status becomes a plain line at most
 * every `logEvery` seconds, so a log shows the run advancing without filling up. `quiet` silences
 * everything.
 *
 * ETAs are measured from the start of the current phase (`phase()`), not of the whole run, so a
 * phase that follows slow loading is not estimated from the loading's pace.
 */
export class Progress {
  readonly enabled: boolean;
  readonly #tty: boolean;
  readonly #logEvery: number;
  readonly #sink: ((text: string) => void) | undefined;
  #phaseStart = performance.now();
  #lastLen = 0;
  #lastLine = -Infinity;

  /**
   * @param opts.quiet print nothing
   * @param opts.logEvery seconds between status lines when stderr is not a terminal (default 15)
   * @param opts.write where the text goes instead of stderr (the web page's worker posts it),
   *   treated as a log, not a terminal
   */
  constructor(
    opts: { quiet?: boolean; logEvery?: number; write?: (text: string) => void } = {},
  ) {
    // Without Deno (a browser) and no sink, lines go to the console.
    const deno = typeof Deno !== "undefined";
    this.#sink = opts.write ?? (deno ? undefined : (text) => console.error(text.trimEnd()));
    this.#tty = !this.#sink && !opts.quiet && Deno.stderr.isTerminal();
    this.enabled = !opts.quiet;
    this.#logEvery = opts.logEvery ?? 15;
  }

  /** Starts a new phase: ETAs from now on count from here. */
  phase(): void {
    this.#phaseStart = performance.now();
  }

  /** Seconds since the current phase started. */
  elapsed(): number {
    return (performance.now() - this.#phaseStart) / 1000;
  }

  /** Estimated seconds left in this phase after `done` of `total` units of work. */
  eta(done: number, total: number): number {
    return done > 0 ? (this.elapsed() / done) * (total - done) : NaN;
  }

  /**
   * Shows the status. On a terminal it rewrites the status line; elsewhere it writes it as a log
   * line when `logEvery` seconds have passed since the last one (the first always shows), or
   * at once with `important` (a phase's last status).
   */
  update(line: string, important = false): void {
    if (!this.enabled) return;
    if (!this.#tty) {
      const now = performance.now();
      if (!important && now - this.#lastLine < this.#logEvery * 1000) return;
      this.#lastLine = now;
      this.#write(`${line}\n`);
      return;
    }
    const pad = Math.max(0, this.#lastLen - line.length);
    this.#write(`\r${line}${" ".repeat(pad)}`);
    this.#lastLen = line.length;
  }

  /** Prints a line that stays (ends the current status line first). */
  log(line: string): void {
    if (!this.enabled) return;
    this.#write(`${this.#lastLen ? "\n" : ""}${line}\n`);
    this.#lastLen = 0;
  }

  /** Ends the status line. */
  done(): void {
    if (this.enabled && this.#lastLen) this.#write("\n");
    this.#lastLen = 0;
  }

  #write(s: string) {
    if (this.#sink) this.#sink(s);
    else Deno.stderr.writeSync(new TextEncoder().encode(s));
  }
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  s = Math.round(s);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}
