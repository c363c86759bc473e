/**
 * The experiment folder on disk: `experiment.json` (written atomically),
 * `trials.jsonl` (the lifecycle of every trial, append-only), and per trial `params.json`,
 * `result.jsonl`, `progress.csv`, `checkpoint_<iteration>/`, `stdout.log`, `stderr.log` (all
 * written by the driver only) and `files/`, the one folder the trial itself may write.
 * Everything is plain JSON/CSV so that people and pandas can read it.
 *
 * @module
 */

import { join } from "./_path.ts";
import { nonFiniteReplacer, reviveMetrics, toJson } from "./protocol.ts";
import type { Config, JsonValue, TrialResult, TrialStatus } from "./trial.ts";
import { TuneError } from "./errors.ts";

/** The format of `experiment.json`. */
export const STORE_FORMAT = 1;

/** The content of `experiment.json`. */
export interface ExperimentRecord {
  /** Format version. */
  readonly format: number;
  /** Experiment name. */
  readonly name: string;
  /** The 5-hex prefix of trial ids. */
  readonly experimentId: string;
  /** `running`, `finished`, `interrupted` or `failed`. */
  readonly status: "running" | "finished" | "interrupted" | "failed";
  /** ISO time of creation. */
  readonly createdAt: string;
  /** ISO time of this write. */
  readonly updatedAt: string;
  /** The metric and its mode. */
  readonly metric: string;
  /** `min` or `max`. */
  readonly mode: "min" | "max";
  /** Every objective of a multi-objective experiment (`metric` is the first); absent for one. */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`. */
  readonly modes?: readonly ("min" | "max")[];
  /** The seed. */
  readonly seed: number;
  /** The options that can be saved (the trainable as a module URL, or `"<function>"`). */
  readonly options: { readonly [key: string]: JsonValue };
  /** The space in YAML form. */
  readonly space: JsonValue;
  /** How many trials were created. */
  readonly trialCount: number;
  /** How many lines of `trials.jsonl` the plugin snapshots below have seen (replayed on resume). */
  readonly eventCount: number;
  /** Searcher name and snapshot. */
  readonly searcher: { readonly name: string; readonly state: JsonValue };
  /** Scheduler name and snapshot. */
  readonly scheduler: { readonly name: string; readonly state: JsonValue };
}

/** One line of `trials.jsonl`. */
export interface TrialEvent {
  /** Unix time in seconds. */
  readonly t: number;
  /** The trial id. */
  readonly trial: string;
  /** What happened (`result`: a report, as its trial's `result.jsonl` line). */
  readonly event:
    | "created"
    | "started"
    | "paused"
    | "config"
    | "terminated"
    | "error"
    | "retry"
    | "result"
    | "resources";
  /** The report (`result`). */
  readonly result?: Readonly<Record<string, JsonValue>>;
  /** The config (`created`, `config`). */
  readonly config?: Config;
  /** The error or stop reason. */
  readonly reason?: string;
  /** `resources`: the CPUs and GPUs (per worker) a resource-changing scheduler gave the trial. */
  readonly resources?: { readonly cpu: number; readonly gpu: number };
  /** `config` after an exploit: the trial whose checkpoint and config were taken. */
  readonly donor?: string;
  /** How a trial ended (`terminated`, `error`): completed, stopped (pruned) or error. */
  readonly outcome?: "completed" | "stopped" | "error" | "paused";
}

/** A trial as folded from `trials.jsonl` and its folder. */
export interface StoredTrial {
  /** Trial id. */
  readonly id: string;
  /** Status as last recorded (`running` when the driver died while it ran). */
  readonly status: TrialStatus;
  /** Current config. */
  readonly config: Config;
  /** Error message or stop reason. */
  readonly reason?: string;
  /** How many failures were retried. */
  readonly failures: number;
  /** Its configs in order: the one it was created with, then every `config` event. */
  readonly changes: readonly ConfigChange[];
  /** The CPUs and GPUs of its last `resources` event (a resource-changing scheduler), if any. */
  readonly resources?: { readonly cpu: number; readonly gpu: number };
}

/** A config a trial ran with, from `trials.jsonl`. */
export interface ConfigChange {
  /** Unix time in seconds of the event. */
  readonly t: number;
  /** The config. */
  readonly config: Config;
  /** The trial it was cloned from (a PBT exploit), if any. */
  readonly donor?: string;
}

/**
 * Writes `data` to `path` atomically (temp file + rename).
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * await writeJsonAtomic(`${dir}/a.json`, { a: 1 });
 * ```
 */
export async function writeJsonAtomic(path: string, data: unknown): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(data, nonFiniteReplacer, 2) + "\n");
  await Deno.rename(tmp, path);
}

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

/**
 * Reads a trial's `result.jsonl` (NaN and ±Infinity restored).
 *
 * @example
 * ```ts ignore
 * import { readResults } from "./store.ts";
 * const history = await readResults("tunebox_results/exp/a2b9e_00000");
 * ```
 */
export async function readResults(trialDir: string): Promise<TrialResult[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(trialDir, "result.jsonl"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseJsonLines<Record<string, JsonValue>>(text).map((r) =>
    reviveMetrics(r) as unknown as TrialResult
  );
}

/**
 * Folds `trials.jsonl` into the current state of every trial, in creation order. This is the one
 * fold of the log: `Tuner.restore`, `ResultGrid.load` and the HTML report use it. Lines that are
 * not events, and events of a trial whose `created` line was lost, are skipped.
 *
 * @param events The events, as {@linkcode readTrialEvents} or {@linkcode scanJsonLines} read them.
 * @returns One record per created trial.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { foldTrialEvents } from "./store.ts";
 *
 * const [trial] = foldTrialEvents([
 *   { t: 0, trial: "a_00000", event: "created", config: { x: 1 } },
 *   { t: 1, trial: "a_00000", event: "config", config: { x: 2 }, donor: "a_00001" },
 * ]);
 * assert.equal(trial.status, "pending");
 * assert.deepEqual(trial.config, { x: 2 });
 * assert.equal(trial.changes[1].donor, "a_00001");
 * ```
 */
export function foldTrialEvents(events: readonly TrialEvent[]): StoredTrial[] {
  const byId = new Map<
    string,
    {
      id: string;
      status: TrialStatus;
      config: Config;
      reason?: string;
      failures: number;
      changes: ConfigChange[];
      resources?: { readonly cpu: number; readonly gpu: number };
    }
  >();
  for (const e of events) {
    if (!e || typeof e !== "object" || typeof e.trial !== "string") continue;
    let t = byId.get(e.trial);
    if (e.event === "created") {
      const config = e.config ?? {};
      t = { id: e.trial, status: "pending", config, failures: 0, changes: [{ t: e.t, config }] };
      byId.set(e.trial, t);
      continue;
    }
    if (!t) continue;
    switch (e.event) {
      case "started":
        t.status = "running";
        break;
      case "paused":
        t.status = "paused";
        break;
      case "config":
        if (e.config) {
          t.config = e.config;
          // Logs written before `donor` was a field said it in the reason only.
          const donor = e.donor ?? /^exploit (\S+)/.exec(e.reason ?? "")?.[1];
          t.changes.push({ t: e.t, config: e.config, ...(donor ? { donor } : {}) });
        }
        break;
      case "resources":
        if (
          e.resources && typeof e.resources.cpu === "number" && typeof e.resources.gpu === "number"
        ) t.resources = { cpu: e.resources.cpu, gpu: e.resources.gpu };
        break;
      case "retry":
        t.failures++;
        t.status = "pending";
        break;
      case "terminated":
        t.status = "terminated";
        t.reason = e.reason;
        break;
      case "error":
        t.status = "error";
        t.reason = e.reason;
        break;
    }
  }
  return [...byId.values()];
}

function pad(n: number): string {
  return String(n).padStart(6, "0");
}

/**
 * The name of the checkpoint folder of an iteration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpointName } from "./store.ts";
 *
 * assert.equal(checkpointName(4), "checkpoint_000004");
 * ```
 */
export function checkpointName(iteration: number): string {
  return `checkpoint_${pad(iteration)}`;
}

/**
 * Lists committed checkpoints of a trial folder, oldest first.
 *
 * @example
 * ```ts ignore
 * import { listCheckpoints } from "./store.ts";
 * const cks = await listCheckpoints("tunebox_results/exp/a2b9e_00000");
 * ```
 */
export async function listCheckpoints(
  trialDir: string,
): Promise<{ path: string; iteration: number }[]> {
  const out: { path: string; iteration: number }[] = [];
  try {
    for await (const e of Deno.readDir(trialDir)) {
      const m = /^checkpoint_(\d+)$/.exec(e.name);
      if (m && e.isDirectory) out.push({ path: join(trialDir, e.name), iteration: Number(m[1]) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.iteration - b.iteration);
}

/**
 * Copies a folder without following or copying symlinks (a symlink placed by a trial could
 * otherwise open a way out of the next trial's sandbox).
 *
 * @returns the number of symlinks skipped.
 * @example
 * ```ts ignore
 * import { copyTree } from "./store.ts";
 * await copyTree("a/checkpoint_000003", "b/checkpoint_000003");
 * ```
 */
export async function copyTree(from: string, to: string): Promise<number> {
  let skipped = 0;
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = join(from, e.name), dst = join(to, e.name);
    if (e.isSymlink) skipped++;
    else if (e.isDirectory) skipped += await copyTree(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
  }
  return skipped;
}

/**
 * Removes every symlink under a folder.
 *
 * @returns the number removed.
 * @example
 * ```ts ignore
 * import { removeSymlinks } from "./store.ts";
 * await removeSymlinks("trial/.staging/ckpt_1");
 * ```
 */
export async function removeSymlinks(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isSymlink) {
      await Deno.remove(p);
      n++;
    } else if (e.isDirectory) n += await removeSymlinks(p);
  }
  return n;
}

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
    clearTimeout(this.#timer);
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
    clearTimeout(this.#timer);
    for (const f of [this.#jsonl, this.#csv]) {
      try {
        f.close();
      } catch { /* closed */ }
    }
  }
}

function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += file.writeSync(data.subarray(off));
}

/**
 * The experiment's journal, `trials.jsonl`: lifecycle events and every report, appended with
 * group commit. {@linkcode EventLog.append} only queues a line; everything queued in one turn of
 * the event loop goes to disk in one write, and {@linkcode EventLog.committed} resolves once it
 * is there. The runner acknowledges a report only after that, so a driver killed with `kill -9`
 * loses nothing it acknowledged, while per-trial files (`result.jsonl`, `progress.csv`) can be
 * written later ({@linkcode materializeTrial}) and rebuilt from the journal.
 */
export class EventLog {
  #file: Deno.FsFile;
  #enc = new TextEncoder();
  #lines: string[] = [];
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Events in the log so far (queued ones included). */
  count: number;

  private constructor(file: Deno.FsFile, count: number) {
    this.#file = file;
    this.count = count;
  }

  /** Opens (creating or appending) the log of an experiment folder. */
  static async open(dir: string): Promise<EventLog> {
    const path = join(dir, "trials.jsonl");
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const existing = parseJsonLines<TrialEvent>(text).length;
    const file = await Deno.open(path, { append: true, create: true });
    const log = new EventLog(file, existing);
    if (text && !text.endsWith("\n")) {
      // The last write of a killed driver: end a whole last line, cut off a torn one, so that
      // the next event starts a line of its own.
      const start = text.lastIndexOf("\n") + 1;
      if (scanJsonLines(text.slice(start)).torn) {
        await file.truncate(log.#enc.encode(text.slice(0, start)).length);
      } else writeAllSync(file, log.#enc.encode("\n"));
    }
    return log;
  }

  /** Queues an event; it is written with the others of this event-loop turn. */
  append(event: Omit<TrialEvent, "t">): void {
    this.count++;
    this.#lines.push(toJson({ t: Date.now() / 1000, ...event }));
    // At the latest at the end of this macrotask. An owner that flushes at the end of each turn
    // of its own (the runner's loop, whose in-process trials can run many turns within one
    // macrotask) leaves this timer armed: one timer per macrotask, not one per turn.
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, 0);
  }

  /** Resolves once everything queued so far is written (rejects when the write failed). */
  committed(): Promise<void> {
    if (!this.#lines.length) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Writes what is queued now, in one write. */
  flush(): void {
    if (!this.#lines.length) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    try {
      writeAllSync(this.#file, this.#enc.encode(text));
    } catch (e) {
      for (const w of waiters) w.reject(e);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /** Writes what is queued and closes the file. */
  close(): void {
    this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}

/**
 * Every trial's reports as the journal holds them (`result` events, NaN and ±Infinity
 * restored), by trial id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { journalResults } from "./store.ts";
 *
 * const byTrial = journalResults([
 *   { t: 0, trial: "a_00000", event: "result", result: { loss: 1, training_iteration: 1 } },
 * ]);
 * assert.equal(byTrial.get("a_00000")?.length, 1);
 * ```
 */
export function journalResults(events: readonly TrialEvent[]): Map<string, TrialResult[]> {
  const out = new Map<string, TrialResult[]>();
  for (const e of events) {
    if (e.event !== "result" || !e.result) continue;
    let list = out.get(e.trial);
    if (!list) out.set(e.trial, list = []);
    list.push(reviveMetrics(e.result as Record<string, JsonValue>) as unknown as TrialResult);
  }
  return out;
}

/**
 * A trial's history: its `result.jsonl`, or the journal's copy when that holds more (the driver
 * died before it wrote the trial's own files).
 *
 * @example
 * ```ts ignore
 * import { journalResults, readHistory, readTrialEvents } from "./store.ts";
 * const journal = journalResults(await readTrialEvents("tunebox_results/exp"));
 * const history = await readHistory("tunebox_results/exp/a2b9e_00000", journal.get("a2b9e_00000"));
 * ```
 */
export async function readHistory(
  trialDir: string,
  journal: readonly TrialResult[] | undefined,
): Promise<TrialResult[]> {
  const file = await readResults(trialDir);
  return journal && journal.length > file.length ? [...journal] : file;
}

/**
 * A trial read from an experiment folder: its state folded from `trials.jsonl`, its history
 * and its committed checkpoints. The one shape of "a trial on disk": `Tuner.restore` and
 * `ResultGrid.load` both start from {@linkcode readStoredTrials}.
 */
export interface DiskTrial extends StoredTrial {
  /** Its record folder (it may not exist: an in-process trial kept in the journal alone). */
  readonly dir: string;
  /** Its results in order: `result.jsonl`, or the journal's copy when that holds more. */
  readonly history: readonly TrialResult[];
  /** True when the journal holds more results than `result.jsonl` (a driver died first). */
  readonly behindJournal: boolean;
  /** Its committed checkpoints, oldest first. */
  readonly checkpoints: readonly { readonly path: string; readonly iteration: number }[];
}

/**
 * Reads every trial of an experiment folder, in creation order: the one fold of `trials.jsonl`
 * ({@linkcode foldTrialEvents}) joined with each trial's history and checkpoints.
 *
 * @param dir The experiment folder.
 * @param events Its `trials.jsonl` when the caller has read it already (restore replays it).
 * @returns The trials; none when it has no `trials.jsonl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStoredTrials } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * const result = { loss: 1, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "t_0" };
 * await Deno.writeTextFile(
 *   `${dir}/trials.jsonl`,
 *   JSON.stringify({ t: 0, trial: "t_0", event: "created", config: { x: 1 } }) + "\n" +
 *     JSON.stringify({ t: 1, trial: "t_0", event: "result", result }) + "\n",
 * );
 * const [t] = await readStoredTrials(dir);
 * assert.equal(t.id, "t_0");
 * assert.deepEqual(t.history, [result]);
 * assert.equal(t.behindJournal, true); // its own result.jsonl was never written
 * assert.deepEqual(t.checkpoints, []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readStoredTrials(
  dir: string,
  events?: readonly TrialEvent[],
): Promise<DiskTrial[]> {
  events ??= await readTrialEvents(dir);
  const journal = journalResults(events);
  const out: DiskTrial[] = [];
  for (const s of foldTrialEvents(events)) {
    const tdir = join(dir, s.id);
    const file = await readResults(tdir);
    const logged = journal.get(s.id) ?? [];
    out.push({
      ...s,
      dir: tdir,
      history: logged.length > file.length ? logged : file,
      behindJournal: logged.length > file.length,
      checkpoints: await listCheckpoints(tdir),
    });
  }
  return out;
}

/**
 * Writes a trial's own records in one go: the folder, `params.json`, `result.jsonl` and
 * `progress.csv` (whole files, replaced atomically), and `error.txt` when given. The runner does
 * this at the end of a trial that never needed its folder (an in-process trial that neither
 * checkpointed nor asked for `session.trialDir`), and a resume does it for trials whose files a
 * killed driver never wrote.
 *
 * @example
 * ```ts
 * import { materializeTrial } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * await materializeTrial(`${dir}/t_00000`, { x: 1 }, []);
 * ```
 */
export async function materializeTrial(
  trialDir: string,
  config: Config,
  history: readonly TrialResult[],
  error?: string,
): Promise<void> {
  await Deno.mkdir(trialDir, { recursive: true });
  const put = async (name: string, text: string) => {
    const path = join(trialDir, name);
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  };
  await put("params.json", JSON.stringify(sortKeys(config), null, 2) + "\n");
  await put(
    "result.jsonl",
    history.map((r) => toJson(r) + "\n").join(""),
  );
  await put("progress.csv", history.length ? toCsv(history.map((r) => flatten(r))) : "");
  if (error !== undefined) await put("error.txt", error);
}

/**
 * Reads `trials.jsonl` of an experiment folder.
 *
 * @example
 * ```ts ignore
 * import { readTrialEvents } from "./store.ts";
 * const events = await readTrialEvents("tunebox_results/exp");
 * ```
 */
export async function readTrialEvents(dir: string): Promise<TrialEvent[]> {
  try {
    return parseJsonLines<TrialEvent>(await Deno.readTextFile(join(dir, "trials.jsonl")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * Reads `experiment.json`, with a clear error when the folder is not an experiment.
 *
 * @throws {TuneError} when the folder has no readable `experiment.json`.
 * @example
 * ```ts ignore
 * import { readExperiment } from "./store.ts";
 * const record = await readExperiment("tunebox_results/exp");
 * ```
 */
export async function readExperiment(dir: string): Promise<ExperimentRecord> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "experiment.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new TuneError(
        `"${dir}" is not a tunebox experiment folder: it has no experiment.json`,
        { cause: e },
      );
    }
    throw e;
  }
  try {
    const record = JSON.parse(text) as ExperimentRecord;
    if (record.format !== STORE_FORMAT) {
      throw new TuneError(
        `"${dir}/experiment.json" has format ${record.format}; this tunebox reads format ${STORE_FORMAT}`,
      );
    }
    return record;
  } catch (e) {
    if (e instanceof TuneError) throw e;
    throw new TuneError(`"${dir}/experiment.json" is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** Saves a trial's config as `params.json` (sorted keys, 2-space indent, as Ray does). */
export function writeParams(trialDir: string, config: Config): void {
  Deno.writeTextFileSync(
    join(trialDir, "params.json"),
    JSON.stringify(sortKeys(config), null, 2) + "\n",
  );
}

function sortKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, JsonValue>)[k]);
    return out;
  }
  return v;
}
