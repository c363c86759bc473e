/**
 * JSON lines (`trials.jsonl`, `result.jsonl`) read with one policy for a torn last line.
 * Part of the experiment store: {@linkcode ./store.ts} re-exports everything here.
 *
 * @module
 */

import { TuneError } from "./errors.ts";

/** JSON lines as {@linkcode scanJsonLines} read them. */
export interface JsonLines<T> {
  /** The lines that parsed, in order. */
  readonly rows: T[];
  /** How many lines in the middle did not parse (skipped). */
  readonly bad: number;
  /** Whether the last non-blank line did not parse: a write cut short (skipped). */
  readonly torn: boolean;
  /** The first line in the middle that did not parse: its 1-based number and text. */
  readonly firstBad?: { readonly line: number; readonly text: string };
}

/**
 * Reads JSON lines leniently: blank lines are ignored, a torn last line (a driver killed
 * mid-write) and unreadable lines in the middle are skipped and counted.
 *
 * @param text The file's text.
 * @returns The parsed rows and what was skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanJsonLines } from "./store.ts";
 *
 * const r = scanJsonLines('{"a":1}\nnot json\n{"a":2}\n{"a":');
 * assert.deepEqual(r.rows, [{ a: 1 }, { a: 2 }]);
 * assert.equal(r.bad, 1);
 * assert.equal(r.torn, true);
 * ```
 */
export function scanJsonLines<T>(text: string): JsonLines<T> {
  const rows: T[] = [];
  let bad = 0, torn = false, firstBad: JsonLines<T>["firstBad"];
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && !lines[last].trim()) last--;
  for (let i = 0; i <= last; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      if (i === last) torn = true;
      else {
        bad++;
        firstBad ??= { line: i + 1, text: line.slice(0, 80) };
      }
    }
  }
  return { rows, bad, torn, ...(firstBad ? { firstBad } : {}) };
}

/**
 * Parses JSON lines strictly, skipping only a torn last line (a driver killed mid-write).
 *
 * @param text The file's text.
 * @returns The parsed rows.
 * @throws {TuneError} naming the first line in the middle that is not JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJsonLines } from "./store.ts";
 *
 * assert.deepEqual(parseJsonLines('{"a":1}\n{"a":'), [{ a: 1 }]);
 * assert.throws(() => parseJsonLines('{"a":\n{"a":1}'), /Line 1 is not JSON/);
 * ```
 */
export function parseJsonLines<T>(text: string): T[] {
  const r = scanJsonLines<T>(text);
  if (r.firstBad) {
    throw new TuneError(`Line ${r.firstBad.line} is not JSON: ${r.firstBad.text}`);
  }
  return r.rows;
}
