/**
 * Tensor lifetimes by scope. Every tensor created while a scope is open belongs to the innermost
 * one, and is released when it ends unless it escapes by one of two explicit routes:
 * - it is part of the callback's result, reachable through arrays and plain objects (any depth):
 *   it then belongs to the enclosing scope (or to no scope at the outermost level);
 * - `keep()` was called on it: it leaves every scope and the caller must `release()` it.
 * A tensor of the scope that the result holds any other way (in a Map or Set, or in a field of a
 * class instance such as a `Var`) would be released under the caller's feet, so the scope throws
 * instead of returning.
 */
import { ScnymError } from "../util/errors.ts";
import { Tensor } from "./tensor.ts";

/** The stack of open scopes and the tensors each owns. */
export class ScopeStack {
  #open: Set<Tensor>[] = [];

  /** Gives a new tensor to the innermost open scope (none open: the caller owns it). */
  adopt(t: Tensor): void {
    this.#open.at(-1)?.add(t);
  }

  /** Takes `t` out of every open scope. */
  disown(t: Tensor): void {
    for (const s of this.#open) s.delete(t);
  }

  /** Runs `fn` in a new scope; see the module comment for what survives it. */
  run<T>(fn: () => T): T {
    const owned = new Set<Tensor>();
    this.#open.push(owned);
    let escaping = new Set<Tensor>();
    try {
      const result = fn();
      escaping = escapingTensors(result, owned);
      return result;
    } finally {
      this.#close(escaping);
    }
  }

  /** Ends the innermost scope: `escaping` tensors move to the enclosing one, the rest go. */
  #close(escaping: Set<Tensor>): void {
    const scope = this.#open.pop()!;
    const parent = this.#open.at(-1);
    for (const t of scope) {
      if (escaping.has(t)) parent?.add(t);
      else t.release();
    }
  }
}

/**
 * The tensors a scope's `result` carries out (a view carries the tensor it views). Throws if the
 * result holds a tensor of this scope (`owned`) where only a deep search could find it.
 */
function escapingTensors(result: unknown, owned: Set<Tensor>): Set<Tensor> {
  const visible = new Set<Tensor>();
  const hidden = new Map<Tensor, string>();
  const seen = new Set<object>();
  const walk = (v: unknown, path: string, isVisible: boolean): void => {
    if (v instanceof Tensor) {
      const t = v.base ?? v;
      if (isVisible) visible.add(t);
      else if (!hidden.has(t)) hidden.set(t, `${v.describe()} at ${path}`);
      return;
    }
    if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Map || v instanceof Set) {
      let i = 0;
      for (const entry of v) {
        walk(entry, `${path} (entry ${i++} of a ${v.constructor.name})`, false);
      }
      return;
    }
    const proto = Object.getPrototypeOf(v);
    const plain = Array.isArray(v) || proto === Object.prototype || proto === null;
    for (const [k, x] of Object.entries(v)) {
      walk(x, Array.isArray(v) ? `${path}[${k}]` : `${path}.${k}`, isVisible && plain);
    }
  };
  walk(result, "result", true);
  for (const [t, where] of hidden) {
    if (owned.has(t) && !visible.has(t)) {
      throw new ScnymError(
        `scope: the callback's result holds ${where}, which the scope would release; return ` +
          "tensors directly or in arrays and plain objects, or call keep() on them",
      );
    }
  }
  return visible;
}
