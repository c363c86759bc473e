/**
 * Reading a Deno permission denial out of an error message or a trial's stderr. A module of its
 * own, apart from sandbox.ts: the channel needs it, and whatever the channel imports is read by
 * every trial process whose trainable imports mod.ts.
 *
 * @module
 */

/** A parsed Deno permission denial. */
export interface Denial {
  /** The permission: read, write, net, env, run, ffi, sys, import. */
  readonly permission: string;
  /** The path, host, variable or program (empty when Deno gives none). */
  readonly target: string;
}

/**
 * Finds a Deno permission denial (`NotCapable: Requires read access to "/etc/passwd"`) in an
 * error message or stderr text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDenial } from "./denial.ts";
 * assert.deepEqual(
 *   parseDenial('NotCapable: Requires net access to "127.0.0.1:80", run again'),
 *   { permission: "net", target: "127.0.0.1:80" },
 * );
 * ```
 */
export function parseDenial(text: string): Denial | undefined {
  const m = /Requires (\w+) access(?: to "([^"]*)")?/.exec(text);
  if (m) return { permission: m[1], target: m[2] ?? "" };
  const sym = /(Deno\.\w+\(\)|\w+) requires unscoped --allow-(\w+)/.exec(text);
  if (sym) return { permission: sym[2], target: sym[1] };
  return undefined;
}
