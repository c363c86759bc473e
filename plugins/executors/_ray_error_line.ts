// Private to the Ray executor: Ray's error bodies as one line. A module of its own, apart from
// the Jobs API client (_ray_client.ts): ray.ts exports rayErrorLine, and whatever ray.ts imports
// is read by every process that imports mod.ts, a trial's too.

/**
 * Ray's error body (plain text, a traceback, a traceback quoting another) as one line: the last
 * `Type: message` line of the innermost traceback, without Ray's own wrapping.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rayErrorLine } from "./_ray_error_line.ts";
 * const body = 'Traceback (most recent call last):\n  File "x.py", line 1\n' +
 *   "ValueError: Job with submission_id a already exists.\n.";
 * assert.equal(rayErrorLine(body), "Job with submission_id a already exists.");
 * ```
 */
export function rayErrorLine(body: string): string {
  const lines = body.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() && l !== ".");
  if (!lines.length) return "(no message)";
  if (!lines.some((l) => l.startsWith("Traceback"))) return clip(lines.join(" "));
  // The last exception line: not indented, `Name: text`.
  const last = [...lines].reverse().find((l) => /^[A-Za-z_.]+(Error|Exception|Exit)\b:?/.test(l));
  const line = last ?? lines[lines.length - 1];
  return clip(line.replace(/^[A-Za-z_.]*(ValueError|RuntimeError|TypeError|Exception): /, ""));
}

/** `s` on one line, cut to 400 characters. */
export function clip(s: string): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > 400 ? `${one.slice(0, 400)}...` : one;
}
