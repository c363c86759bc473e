/**
 * A trial's own records, `result.jsonl` and `progress.csv`, and the CSV form they use. Part of
 * the experiment store: {@linkcode ./store.ts} re-exports everything here.
 *
 * @module
 */

import { join } from "./_path.ts";
import { toJson } from "./protocol.ts";
import type { JsonValue, TrialResult } from "./trial.ts";
import { writeAllSync } from "./_write_all.ts";

/** Flattens nested objects with `/` (`{a: {b: 1}}` -> `{"a/b": 1}`), as Ray's CSV logger does. */
export function flatten(
  obj: Readonly<Record<string, JsonValue>>,
  prefix = "",
  out: Record<string, JsonValue> = {},
): Record<string, JsonValue> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}/${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      flatten(v as Record<string, JsonValue>, key, out);
    } else out[key] = v;
  }
  return out;
}

function csvCell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * CSV text of rows (header from the first row's keys unless given), RFC 4180 quoting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toCsv } from "./store.ts";
 *
 * assert.equal(toCsv([{ a: 1, b: "x,y" }]), 'a,b\n1,"x,y"\n');
 * ```
 */
export function toCsv(
  rows: readonly Readonly<Record<string, JsonValue>>[],
  header?: readonly string[],
): string {
  const cols = header ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [
    cols.map((c) => csvCell(c)).join(","),
    ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(",")),
  ]
    .join("\n") + "\n";
}

/**
 * Appends a trial's results to `result.jsonl` and `progress.csv`, keeping the files open. Writes
 * are synchronous: a few small appends block the driver for microseconds, and each report is on
 * disk before the trial hears back. Unlike Ray's CSV logger, a key that first appears in a later
 * report is not dropped: `progress.csv` is rewritten with the wider header from the rows kept in
 * memory, at most once a second (and on close), so a report costs O(its own size) however many
 * new keys a trial invents.
 */
export class ResultWriter {
  #dir: string;
  #jsonl: Deno.FsFile;
  #csv: Deno.FsFile;
  #header: string[] | undefined;
  #known = new Set<string>();
  #rows: Record<string, JsonValue>[];
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #enc = new TextEncoder();

  private constructor(
    dir: string,
    jsonl: Deno.FsFile,
    csv: Deno.FsFile,
    header: string[] | undefined,
    rows: Record<string, JsonValue>[],
  ) {
    this.#dir = dir;
    this.#jsonl = jsonl;
    this.#csv = csv;
    this.#header = header;
    for (const k of header ?? []) this.#known.add(k);
    this.#rows = rows;
  }

  /** Opens the writer of a trial folder; `resume` reads the results the files already have. */
  static open(trialDir: string, resume = false): ResultWriter {
    const csvPath = join(trialDir, "progress.csv");
    let header: string[] | undefined;
    const rows: Record<string, JsonValue>[] = [];
    let dirty = false;
    if (resume) {
      try {
        for (const line of Deno.readTextFileSync(join(trialDir, "result.jsonl")).split("\n")) {
          if (!line.trim()) continue;
          try {
            rows.push(flatten(JSON.parse(line)));
          } catch { /* a torn line: left out of the CSV */ }
        }
      } catch { /* new file */ }
      if (rows.length) {
        header = [...new Set(rows.flatMap((r) => Object.keys(r)))];
        dirty = true; // rewrite once: the CSV on disk may have an older header
      }
    }
    const jsonl = Deno.openSync(join(trialDir, "result.jsonl"), { append: true, create: true });
    const csv = Deno.openSync(csvPath, { append: true, create: true });
    const w = new ResultWriter(trialDir, jsonl, csv, header, rows);
    if (dirty) w.#rewriteCsv();
    return w;
  }

  /** Appends one result to both files. */
  append(result: TrialResult): void {
    writeAllSync(this.#jsonl, this.#enc.encode(toJson(result) + "\n"));
    const flat = flatten(result);
    this.#rows.push(flat);
    if (!this.#header) {
      this.#header = Object.keys(flat);
      for (const k of this.#header) this.#known.add(k);
      writeAllSync(this.#csv, this.#enc.encode(toCsv([flat], this.#header)));
      return;
    }
    for (const k of Object.keys(flat)) {
      if (!this.#known.has(k)) {
        this.#known.add(k);
        this.#header.push(k);
        this.#dirty = true;
      }
    }
    if (this.#dirty) {
      this.#timer ??= setTimeout(() => this.#rewriteCsv(), 1000);
      Deno.unrefTimer(this.#timer);
      return;
    }
    const row = this.#header.map((c) => csvCell(flat[c])).join(",") + "\n";
    writeAllSync(this.#csv, this.#enc.encode(row));
  }

  /** Rewrites `progress.csv` with every key seen so far. */
  #rewriteCsv(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dirty = false;
    const path = join(this.#dir, "progress.csv");
    const tmp = `${path}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, toCsv(this.#rows, this.#header ?? []));
      this.#csv.close();
      Deno.renameSync(tmp, path);
      this.#csv = Deno.openSync(path, { append: true });
    } catch { /* the JSON lines are the record; the CSV is redone at the next rewrite */ }
  }

  /** Writes what is pending and closes both files. */
  close(): void {
    if (this.#dirty) this.#rewriteCsv();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const f of [this.#jsonl, this.#csv]) {
      try {
        f.close();
      } catch { /* closed */ }
    }
  }
}
