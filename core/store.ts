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
import { parseJsonLines } from "./json_lines.ts";
import { listCheckpoints } from "./checkpoint_files.ts";
import { flatten, toCsv } from "./result_writer.ts";

export { type JsonLines, parseJsonLines, scanJsonLines } from "./json_lines.ts";
export { checkpointName, copyTree, listCheckpoints, removeSymlinks } from "./checkpoint_files.ts";
export { flatten, ResultWriter, toCsv } from "./result_writer.ts";
export { type CommitWaiter, EventLog } from "./event_log.ts";

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
export function writeJsonAtomic(path: string, data: unknown): Promise<void> {
  try {
    writeJsonAtomicSync(path, data);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Writes `data` to `path` atomically (temp file + rename), synchronously: a small file, and
 * Deno's asynchronous `writeTextFile` loads its streams module on first use (milliseconds at
 * the start of a short experiment).
 *
 * @example
 * ```ts
 * import { writeJsonAtomicSync } from "./store.ts";
 * const dir = Deno.makeTempDirSync();
 * writeJsonAtomicSync(`${dir}/a.json`, { a: 1 });
 * ```
 */
export function writeJsonAtomicSync(path: string, data: unknown): void {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(data, nonFiniteReplacer, 2) + "\n");
  Deno.renameSync(tmp, path);
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
 * A trial read from an experiment folder: its state folded from `trials.jsonl`, its history
 * and its committed checkpoints. The one shape of "a trial on disk": `Tuner.restore` and
 * `ResultGrid.load` start from {@linkcode readStoredTrials}, the runner's `RestoredTrial` is
 * this type with where the trial continues from, and the HTML report reads
 * {@linkcode DiskTrialHistory} (this type before its checkpoints are listed).
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

/** A {@linkcode DiskTrial} before its checkpoints are listed: what a reader that draws none needs. */
export type DiskTrialHistory = Omit<DiskTrial, "checkpoints">;

/**
 * Joins a trial folded from `trials.jsonl` with its results: the one rule for which copy of its
 * history counts, `result.jsonl` or the journal's (the journal's when it holds more: an
 * in-process trial writes its file at the end, and a killed driver may not have).
 *
 * @typeParam T The folded trial: a {@linkcode StoredTrial}, or what a reader keeps of a trial
 *   whose `created` event was lost (the report shows its status as unknown).
 * @param trial The trial as {@linkcode foldTrialEvents} folded it.
 * @param dir Its record folder.
 * @param fromFile Its `result.jsonl`, as read.
 * @param logged Its results in the journal (`trials.jsonl`'s `result` events), as
 *   {@linkcode journalResults} collects them.
 * @returns The trial with its folder and history.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { joinHistory } from "./store.ts";
 * const r = { loss: 1, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "t_0" };
 * const stored = { id: "t_0", status: "running" as const, config: {}, failures: 0, changes: [] };
 * const t = joinHistory(stored, "/exp/t_0", [], [r]);
 * assert.deepEqual(t.history, [r]);
 * assert.equal(t.behindJournal, true);
 * assert.equal(joinHistory(stored, "/exp/t_0", [r], [r]).behindJournal, false);
 * ```
 */
export function joinHistory<T extends Omit<StoredTrial, "status">>(
  trial: T,
  dir: string,
  fromFile: readonly TrialResult[],
  logged: readonly TrialResult[] = [],
): T & Pick<DiskTrial, "dir" | "history" | "behindJournal"> {
  const behindJournal = logged.length > fromFile.length;
  return { ...trial, dir, history: behindJournal ? logged : fromFile, behindJournal };
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
    const trial = joinHistory(s, tdir, await readResults(tdir), journal.get(s.id));
    out.push({ ...trial, checkpoints: await listCheckpoints(tdir) });
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
