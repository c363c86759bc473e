/**
 * A TensorBoard logger for Tunebox experiments, in pure TypeScript: scalars of every report and
 * the HParams plugin's data, so that TensorBoard's HPARAMS tab shows the table, parallel
 * coordinates and scatter plots of all trials.
 *
 * ```sh
 * tensorboard --logdir tunebox_results/<experiment name>
 * ```
 *
 * Layout (TensorBoard's intended one for HParams): each trial is one run, written into its own
 * trial folder (`<experiment>/<trial_id>/events.out.tfevents.*`: its scalars, its session start
 * info with the trial's config, and its session end info); the experiment summary (every
 * hyperparameter with its domain, every metric) is the only content of the root run `.`
 * (`<experiment>/events.out.tfevents.0000000000.tunebox-hparams`). Point `--logdir` at one
 * experiment: with several experiments under one logdir, TensorBoard picks one of their
 * experiment summaries. The experiment summary is written when the experiment ends (at its start
 * when `metrics` are declared); until then TensorBoard infers the table from the trials' session
 * starts and scalars, so running trials show up at once. A trainable that writes event files of its own should put them in a
 * subfolder of its trial folder (a run of its own): TensorBoard expects one writer per run folder.
 *
 * Values are float32, as TensorBoard stores scalars (full precision stays in `result.jsonl`);
 * NaN and ±Infinity are written as they are unless `nonFinite: "skip"`.
 *
 * @example
 * ```ts ignore
 * import { Tuner, loguniform } from "jsr:@tunebox/tunebox";
 * import { tensorboardLogger } from "jsr:@tunebox/tunebox/loggers/tensorboard";
 * await new Tuner({
 *   trainable: new URL("./train.ts", import.meta.url),
 *   space: { lr: loguniform(1e-4, 1e-1) },
 *   metric: "val_loss", mode: "min", numSamples: 8,
 *   callbacks: [tensorboardLogger()],
 * }).fit();
 * ```
 *
 * @module
 */

import type {
  Callback,
  ExperimentEnd,
  ExperimentStart,
  TrialEnd,
  TrialReport,
  TrialStart,
} from "../../../core/plugin.ts";
import { checkKeys } from "../../../core/options.ts";
import type { JsonValue, TrialSnapshot } from "../../../core/trial.ts";
import {
  EventFileWriter,
  fileVersionEvent,
  NULL_TENSOR,
  pluginEvent,
  sessionStartEvent,
} from "./_event_file.ts";
import {
  EXPERIMENT_TAG,
  experimentContent,
  flattenConfig,
  HPARAMS_PLUGIN,
  hparamSpecs,
  pluginContent,
  readExperiment,
  SESSION_END_TAG,
  SESSION_START_TAG,
  sessionEndContent,
  sessionStartContent,
  type SessionStatus,
} from "./_hparams.ts";
import { frameRecord, readRecords } from "./_tfrecord.ts";

// Re-exported so that the types this module's API mentions are documented with it.
export type {
  Callback,
  CheckpointEvent,
  Decision,
  ExperimentEnd,
  ExperimentStart,
  TrialEnd,
  TrialOutcome,
  TrialReport,
  TrialStart,
} from "../../../core/plugin.ts";
export type { Space } from "../../../core/space.ts";
export type {
  Config,
  JsonValue,
  Mode,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "../../../core/trial.ts";

/** Options of {@linkcode tensorboardLogger}. */
export interface TensorboardLoggerOptions {
  /**
   * Root folder for TensorBoard. When set, trial `t` writes to `<logdir>/<t>/` and the experiment
   * summary to `<logdir>/`.
   *
   * @default the experiment folder, with each trial's events in its own trial folder
   */
  readonly logdir?: string;
  /**
   * The metric columns of the HParams tab (tags of the trials' scalars). When given, the
   * experiment summary is written at experiment start, so running TensorBoard shows these
   * columns at once; the experiment's `metric` is always included.
   *
   * @default every metric reported, with the summary written at experiment end (until then
   * TensorBoard infers the same columns from the scalars)
   */
  readonly metrics?: readonly string[];
  /**
   * Result keys (top level or flattened with `/`) not written as scalars. `training_iteration`
   * is already the step, and a Unix `timestamp` in float32 is only exact to about two minutes.
   *
   * @default ["training_iteration", "timestamp"]
   */
  readonly exclude?: readonly string[];
  /**
   * The HParams status of a trial a scheduler stopped early. TensorBoard has no "stopped" status;
   * `"unknown"` keeps such trials apart from completed (`"success"`) and crashed (`"failure"`)
   * ones, so the status filter can show or hide them.
   *
   * @default "unknown"
   */
  readonly stoppedStatus?: "success" | "failure" | "unknown";
  /**
   * What to do with NaN and ±Infinity values: `"write"` keeps them (TensorBoard plots and lists
   * them), `"skip"` leaves them out.
   *
   * @default "write"
   */
  readonly nonFinite?: "write" | "skip";
  /** Clock in Unix seconds (session start/end times, file names). @default Date.now() / 1000 */
  readonly now?: () => number;
}

const OPTION_KEYS = ["logdir", "metrics", "exclude", "stoppedStatus", "nonFinite", "now"];
const DEFAULT_EXCLUDE = ["training_iteration", "timestamp"];
/** Name of the root run's event file: one file, rewritten as a whole. */
const EXPERIMENT_FILE = "events.out.tfevents.0000000000.tunebox-hparams";

function fmt(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : String(v);
}

function validate(options: TensorboardLoggerOptions): void {
  const where = "tensorboardLogger";
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${fmt(options)}`);
  }
  checkKeys(where, { ...options }, OPTION_KEYS);
  const o = options as Record<string, unknown>;
  if (o.logdir !== undefined && (typeof o.logdir !== "string" || o.logdir === "")) {
    throw new TypeError(`${where}: option "logdir" must be a non-empty path, got ${fmt(o.logdir)}`);
  }
  for (const k of ["metrics", "exclude"]) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.some((m) => typeof m !== "string" || m === "")) {
      throw new TypeError(
        `${where}: option "${k}" must be an array of non-empty strings, got ${
          Array.isArray(v) ? JSON.stringify(v) : fmt(v)
        }`,
      );
    }
  }
  const oneOf = (k: string, allowed: string[]): void => {
    if (o[k] !== undefined && !allowed.includes(o[k] as string)) {
      throw new TypeError(
        `${where}: option "${k}" must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${
          fmt(o[k])
        }`,
      );
    }
  };
  oneOf("stoppedStatus", ["success", "failure", "unknown"]);
  oneOf("nonFinite", ["write", "skip"]);
  if (o.now !== undefined && typeof o.now !== "function") {
    throw new TypeError(`${where}: option "now" must be a function returning Unix seconds`);
  }
}

function hasEventFile(dir: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) if (e.isFile && e.name.includes("tfevents")) return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return false;
}

interface Run {
  readonly writer: EventFileWriter;
  ended: boolean;
}

/**
 * A callback that writes TensorBoard event files: every numeric value of every report as a
 * scalar at `step = training_iteration` (nested metrics flattened with `/`, values in float32),
 * and the HParams plugin's experiment summary, per-trial session start (the config the trial
 * started with) and end (completed: SUCCESS, stopped by the scheduler: `stoppedStatus`, failed:
 * FAILURE).
 *
 * Each report's scalars are one event, flushed to the file before the hook returns; a driver
 * killed mid-write leaves a file TensorBoard reads up to the last complete record. The HParams
 * plugin keeps the first session info it sees per run, so a trial whose config changes later
 * (PBT) keeps its starting config there; its scalars go on in the same run. Non-numeric values
 * (strings, booleans, arrays) are not written.
 *
 * Registered for YAML experiment files as `loggers: [{ name: tensorboard }]`.
 *
 * @param options see {@linkcode TensorboardLoggerOptions}.
 * @returns the callback, named `"tensorboard"`.
 * @throws {TypeError} when an option is unknown or has the wrong type.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensorboardLogger } from "./mod.ts";
 * const logger = tensorboardLogger({ stoppedStatus: "success" });
 * assert.equal(logger.name, "tensorboard");
 * ```
 */
export function tensorboardLogger(options: TensorboardLoggerOptions = {}): Callback {
  validate(options);
  const now = options.now ?? (() => Date.now() / 1000);
  const exclude = new Set(options.exclude ?? DEFAULT_EXCLUDE);
  const stoppedStatus: SessionStatus = options.stoppedStatus ?? "unknown";
  const skipNonFinite = options.nonFinite === "skip";
  const logdir = options.logdir?.replace(/[\\/]+$/, "");

  let experiment: ExperimentStart | undefined;
  let root: string | undefined = logdir;
  let createdSecs = 0;
  const runs = new Map<string, Run>();
  const metrics: string[] = [];
  const metricSet = new Set<string>();
  const observed = new Map<string, Set<string>>();
  // Scratch arrays reused by every report.
  const tags: string[] = [];
  let values = new Float64Array(64);

  const addMetric = (m: string): void => {
    if (!metricSet.has(m)) {
      metricSet.add(m);
      metrics.push(m);
    }
  };

  const runDir = (trial: TrialSnapshot): string =>
    logdir !== undefined ? `${logdir}/${trial.id}` : trial.dir;

  const startRun = (trial: TrialSnapshot, resumed: boolean, restart = resumed): Run => {
    let run = runs.get(trial.id);
    if (run) run.writer.reopen();
    else {
      const dir = runDir(trial);
      // An earlier driver process already wrote this trial's session start: the plugin would
      // ignore a second one anyway.
      const earlier = resumed && hasEventFile(dir);
      run = { writer: EventFileWriter.create(dir, { now }), ended: false };
      runs.set(trial.id, run);
      if (!earlier) {
        const hparams = flattenConfig(trial.config);
        for (const [k, v] of hparams) {
          let s = observed.get(k);
          if (!s) observed.set(k, s = new Set());
          s.add(typeof v);
        }
        const t = now();
        // TensorBoard's Python reader takes the first SessionLog START of a run as the start and
        // each later one as a restart (see below).
        run.writer.writeEvent(sessionStartEvent(0, t));
        run.writer.writeEvent(
          pluginEvent(
            0,
            t,
            SESSION_START_TAG,
            HPARAMS_PLUGIN,
            sessionStartContent(hparams, t),
            NULL_TENSOR,
            2,
          ),
        );
      }
    }
    // A trial that goes on from a checkpoint redoes the steps after it: have TensorBoard drop
    // the points it already has for them, instead of showing both.
    if (restart) run.writer.writeEvent(sessionStartEvent(trial.iteration + 1, now()));
    run.writer.flush();
    return run;
  };

  const writeExperiment = (): void => {
    if (root === undefined || experiment === undefined) return;
    const e = experiment;
    // Every objective of a multi-objective experiment is an HParams metric, in order.
    const goals = e.metrics ?? [e.metric];
    const list = [...goals, ...(options.metrics ?? metrics).filter((m) => !goals.includes(m))];
    const t = now();
    const aim = goals.map((m, k) => `${e.modes?.[k] ?? e.mode}imize \`${m}\``).join(", ");
    const content = experimentContent({
      name: e.name,
      description:
        `Tunebox experiment **${e.name}**: ${aim}; searcher \`${e.searcher}\`, scheduler \`${e.scheduler}\`.`,
      timeCreatedSecs: createdSecs,
      hparams: hparamSpecs(e.space, observed),
      metrics: list,
    });
    const a = frameRecord(fileVersionEvent(t, "tunebox"));
    const b = frameRecord(
      pluginEvent(0, t, EXPERIMENT_TAG, HPARAMS_PLUGIN, content, NULL_TENSOR, 2),
    );
    const bytes = new Uint8Array(a.length + b.length);
    bytes.set(a);
    bytes.set(b, a.length);
    Deno.mkdirSync(root, { recursive: true });
    // Replace the whole file at once: readers see the old summary or the new one, never half.
    const tmp = `${root}/.tunebox-hparams.tmp`;
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, `${root}/${EXPERIMENT_FILE}`);
  };

  const readEarlierExperiment = (): void => {
    if (root === undefined) return;
    let file: Uint8Array;
    try {
      file = Deno.readFileSync(`${root}/${EXPERIMENT_FILE}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const content = pluginContent(readRecords(file).records, EXPERIMENT_TAG);
    if (!content) return;
    const earlier = readExperiment(content);
    for (const m of earlier.metrics) addMetric(m);
    if (earlier.timeCreatedSecs) createdSecs = earlier.timeCreatedSecs;
  };

  const flatten = (v: JsonValue, key: string, n: number): number => {
    if (typeof v === "number") {
      if (skipNonFinite && !Number.isFinite(v)) return n;
      if (n === values.length) {
        const next = new Float64Array(n * 2);
        next.set(values);
        values = next;
      }
      tags[n] = key;
      values[n] = v;
      return n + 1;
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) return n;
    for (const k in v as Record<string, JsonValue>) {
      const child = `${key}/${k}`;
      if (!exclude.has(child)) n = flatten((v as Record<string, JsonValue>)[k], child, n);
    }
    return n;
  };

  return {
    name: "tensorboard",

    onExperimentStart(e: ExperimentStart): void {
      experiment = e;
      root = logdir ?? e.dir.replace(/[\\/]+$/, "");
      createdSecs = now();
      if (e.resumed) readEarlierExperiment();
      if (options.metrics) writeExperiment();
    },

    onTrialStart(e: TrialStart): void {
      startRun(e.trial, e.resumed);
    },

    onReport(e: TrialReport): void {
      const run = runs.get(e.trial.id) ?? startRun(e.trial, true, false);
      if (!run.writer.open) run.writer.reopen();
      const r = e.result;
      let n = 0;
      for (const k in r) if (!exclude.has(k)) n = flatten(r[k], k, n);
      for (let i = 0; i < n; i++) if (!metricSet.has(tags[i])) addMetric(tags[i]);
      const wall = typeof r.timestamp === "number" && Number.isFinite(r.timestamp)
        ? r.timestamp
        : now();
      run.writer.scalars(r.training_iteration, wall, tags, values, n);
      run.writer.flush();
    },

    onTrialEnd(e: TrialEnd): void {
      const run = runs.get(e.trial.id) ?? startRun(e.trial, true, false);
      // A failed trial that will be retried is not at its end yet; nor is a paused one.
      const final = e.outcome === "completed" || e.outcome === "stopped" ||
        (e.outcome === "error" && e.trial.status === "error");
      if (final && !run.ended) {
        if (!run.writer.open) run.writer.reopen();
        const status: SessionStatus = e.outcome === "completed"
          ? "success"
          : e.outcome === "stopped"
          ? stoppedStatus
          : "failure";
        const t = now();
        run.writer.writeEvent(
          pluginEvent(
            0,
            t,
            SESSION_END_TAG,
            HPARAMS_PLUGIN,
            sessionEndContent(status, t),
            NULL_TENSOR,
            2,
          ),
        );
        run.ended = true;
      }
      // Close between runs of a trial too: paused trials must not hold file handles.
      run.writer.close();
    },

    onExperimentEnd(_e: ExperimentEnd): void {
      const errors: unknown[] = [];
      for (const run of runs.values()) {
        try {
          run.writer.close();
        } catch (err) {
          errors.push(err);
        }
      }
      writeExperiment();
      if (errors.length > 0) {
        throw new AggregateError(
          errors,
          `Closing ${errors.length} TensorBoard event file(s) failed`,
        );
      }
    },
  };
}
