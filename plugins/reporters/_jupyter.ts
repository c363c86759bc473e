// Private to the reporters: whether this code runs in Deno's Jupyter kernel. A module of its own:
// table.ts asks it before it loads the notebook view (notebook.ts), so that a process outside
// the kernel (a trial that imports mod.ts too) never reads that.

/**
 * Whether this code runs in Deno's Jupyter kernel.
 *
 * @returns true inside `deno jupyter`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inJupyter } from "./_jupyter.ts";
 * assert.equal(inJupyter(), false); // under deno run and deno test
 * ```
 */
export function inJupyter(): boolean {
  try {
    // Outside the kernel, reading Deno.jupyter throws ("only available in `deno jupyter`").
    const j = (Deno as unknown as { jupyter?: { broadcast?: unknown } }).jupyter;
    return typeof j?.broadcast === "function";
  } catch {
    return false;
  }
}
