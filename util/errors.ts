/**
 * Errors meant for the user, not for a stack trace.
 *
 * Anything a user can cause (a bad file, a missing column, a shape over a GPU limit) is thrown as
 * a `ScnymError`; the CLI prints its message alone and exits non-zero. Every other error is a bug
 * and keeps its stack.
 */
export class ScnymError extends Error {
  /** Process exit code the CLI uses for this error (2 = bad usage, 1 = everything else). */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "ScnymError";
    this.exitCode = exitCode;
  }
}

/** Throws a `ScnymError` with `message` unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new ScnymError(typeof message === "string" ? message : message());
}
