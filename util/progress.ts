/**
 * Progress lines on stderr for long work. Silent when stderr is not a terminal or when quiet is
 * asked for, so logs and pipes stay clean; `force` prints even to a non-TTY (used by tests).
 */
export class Progress {
  readonly enabled: boolean;
  /** On a terminal the status line is rewritten in place; elsewhere it becomes log lines. */
  readonly #tty: boolean;
  #t0 = performance.now();
  #lastLen = 0;
  #lastLine = -Infinity;

  constructor(opts: { quiet?: boolean; force?: boolean } = {}) {
    this.#tty = Deno.stderr.isTerminal();
    this.enabled = !opts.quiet && (opts.force || this.#tty);
  }

  /** Seconds since this progress started. */
  elapsed(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  /** Estimated seconds left after `done` of `total` units of work. */
  eta(done: number, total: number): number {
    return done > 0 ? (this.elapsed() / done) * (total - done) : NaN;
  }

  /**
   * Rewrites the current status line. Without a terminal (forced output into a log), writes it
   * as a line at most every 2 seconds instead.
   */
  update(line: string): void {
    if (!this.enabled) return;
    if (!this.#tty) {
      const now = performance.now();
      if (now - this.#lastLine < 2000) return;
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
    Deno.stderr.writeSync(new TextEncoder().encode(s));
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
