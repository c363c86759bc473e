/**
 * The event loop. One loop owns all state: it asks the searcher for configs while
 * slots are free, starts trials through the executor, and for every report appends it to the
 * trial's `result.jsonl`, asks the stop criteria and the scheduler for a decision, tells the
 * searcher and the callbacks, then acknowledges the trial. State changes reach the disk before
 * they are acknowledged.
 *
 * @module
 */

import { join, resolve, sep } from "./_path.ts";
import type {
  Ack,
  Callback,
  Decision,
  Executor,
  ExploitRequest,
  RawReport,
  Resources,
  SandboxPolicy,
  Scheduler,
  Searcher,
  TrialExit,
  TrialHandle,
  TrialOutcome,
} from "./plugin.ts";
import { validateDecision } from "./plugin.ts";
import { STAGING_DIR, WORK_DIR } from "./layout.ts";
import type {
  Config,
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "./trial.ts";
import { errorMessage, PluginError, SandboxViolation, TuneError } from "./errors.ts";
import { printable, toJson } from "./protocol.ts";
import type { Space } from "./space.ts";
import { spaceToJson } from "./space.ts";
import {
  checkpointName,
  copyTree,
  EventLog,
  type ExperimentRecord,
  flatten,
  materializeTrial,
  removeSymlinks,
  ResultWriter,
  STORE_FORMAT,
  type TrialEvent,
  writeJsonAtomic,
  writeParams,
} from "./store.ts";

/**
 * Decides whether another trial may start, and gives it its devices' environment. A request is
 * what the whole trial holds (its workers together); without one, the experiment's `resources`.
 */
export interface ResourceGate {
  /** Whether one more trial (of `request`, or of the experiment's size) fits now. */
  canStart(request?: TrialResources): boolean;
  /** Takes the resources of one trial; returns the environment to set for it. */
  acquire(trialId: string, request?: TrialResources): Record<string, string>;
  /** Gives a trial's resources back. */
  release(trialId: string): void;
  /**
   * Throws a `RangeError` saying what exists when `request` could never fit, however many
   * trials end. @default no check
   */
  check?(request: TrialResources): void;
}

/**
 * A gate that lets at most `n` trials run at once.
 *
 * @example
 * ```ts
 * import { concurrencyGate } from "./runner.ts";
 * const gate = concurrencyGate(2);
 * gate.acquire("a");
 * console.log(gate.canStart()); // true
 * ```
 */
export function concurrencyGate(n: number): ResourceGate {
  const held = new Set<string>();
  return {
    canStart: (_request?: TrialResources) => held.size < n,
    acquire(id) {
      held.add(id);
      return {};
    },
    release(id) {
      held.delete(id);
    },
  };
}

/**
 * A stop function, as Ray's `Stopper`: called with every result, true stops that trial. With
 * `stopAll`, checked after each call, true also stops every running trial and starts no new
 * one: the experiment ends (Ray's `stop_all`). A plain `(trialId, result) => boolean` is one.
 */
export interface Stopper {
  /** Whether the trial that reported `result` should stop. */
  (trialId: string, result: TrialResult): boolean;
  /** Whether the whole experiment should stop. */
  stopAll?(): boolean;
}

/** Stop criteria: Ray's dict (`{ training_iteration: 10 }`: stop when any value is reached) or a {@linkcode Stopper}. */
export type StopCriteria =
  | { readonly [key: string]: number }
  | Stopper;

/** Checkpoint retention. */
export interface CheckpointOptions {
  /** Keep at most this many checkpoints per trial (the latest is always kept). @default all */
  readonly numToKeep?: number;
  /** Rank checkpoints by this result key instead of recency. */
  readonly scoreAttribute?: string;
  /** Whether a higher or lower score is better. @default "max" */
  readonly scoreOrder?: Mode;
}

/** A trial the runner restores from disk. */
export interface RestoredTrial {
  /** Trial id. */
  readonly id: string;
  /** Status to continue with (`running` becomes runnable again). */
  readonly status: TrialStatus;
  /** Config. */
  readonly config: Config;
  /** Last iteration on disk. */
  readonly iteration: number;
  /** Last result on disk. */
  readonly lastResult?: TrialResult;
  /** Every result on disk. */
  readonly history: readonly TrialResult[];
  /** Latest committed checkpoint. */
  readonly checkpoint?: string;
  /** Committed checkpoints, oldest first. */
  readonly checkpoints: readonly { path: string; iteration: number; score?: number }[];
  /** Failures so far. */
  readonly failures: number;
  /** Error message or stop reason. */
  readonly reason?: string;
  /** The CPUs and GPUs a resource-changing scheduler last gave it, if any. */
  readonly resources?: TrialResources;
}

/** Everything the runner needs; the Tuner fills it from its options. */
export interface RunnerConfig {
  readonly name: string;
  readonly dir: string;
  readonly experimentId: string;
  readonly space: Space;
  readonly metric: string;
  readonly mode: Mode;
  /** Every objective of a multi-objective experiment (`metric` first); absent for one. */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`. */
  readonly modes?: readonly Mode[];
  readonly seed: number;
  readonly numSamples: number;
  readonly totalTrials: number;
  readonly searcher: Searcher;
  readonly scheduler: Scheduler;
  readonly callbacks: readonly Callback[];
  readonly executor: Executor;
  readonly gate: ResourceGate;
  readonly stop?: StopCriteria;
  readonly timeBudgetMs?: number;
  readonly trialTimeoutMs?: number;
  readonly maxFailures: number;
  readonly checkpoint: CheckpointOptions;
  readonly sandbox: SandboxPolicy;
  /** Memory cap of each sandboxed trial in MiB (`resources.memoryMb`). */
  readonly memoryMb?: number;
  /** What each trial asks for (`resources`), handed to the executor with every job. */
  readonly resources?: Resources;
  /**
   * The CPUs and GPUs all trials share (what the gate hands out), told to the scheduler with
   * `resources` as `SchedulerContext.resources`; without it the scheduler is told nothing.
   */
  readonly totalResources?: TrialResources;
  readonly savedOptions: { readonly [key: string]: JsonValue };
  readonly createdAt: string;
  readonly restored?: {
    readonly trials: readonly RestoredTrial[];
    readonly trialCount: number;
    readonly searcherState: JsonValue;
    readonly schedulerState: JsonValue;
    /** Events logged after the plugin snapshots were taken: replayed into the plugins. */
    readonly replay: readonly TrialEvent[];
  };
  /** Prints warnings (default: console.warn). */
  readonly warn?: (message: string) => void;
  /** Handle SIGINT/SIGTERM by stopping trials and saving state. @default true */
  readonly handleSignals?: boolean;
  /** How long the end of the experiment waits for busy callbacks. @default 60000 */
  readonly callbackDrainMs?: number;
  /**
   * When the folders of trials a lazy executor runs (in-process) are written: `"lazy"`, only
   * when a trial needs its folder (a checkpoint, an exploit, `session.trialDir`, an error), the
   * journal being the record of the rest; `"end"`, also every other one, in one batched pass
   * before the experiment returns. @default "lazy"
   */
  readonly trialFolders?: "lazy" | "end";
}

type Action =
  | { kind: "stop"; reason: string; outcome: "completed" | "stopped" }
  | { kind: "pause" }
  | { kind: "exploit"; from: string; config: Config }
  /** Restart from the checkpoint just committed with these resources. */
  | { kind: "reallocate"; resources: Resources }
  | { kind: "timeout" }
  | { kind: "interrupt" }
  /** The driver could not handle what the trial sent: it fails alone. */
  | { kind: "failed"; message: string };

interface TrialState {
  id: string;
  /** Creation order. */
  seq: number;
  status: TrialStatus;
  config: Config;
  dir: string;
  /** The trial's own folder inside `dir` (the only one it may write). */
  workDir: string;
  /** The node it runs (or last ran) on, when a cluster executor said. */
  node?: string;
  iteration: number;
  lastResult?: TrialResult;
  history: TrialResult[];
  checkpoint?: string;
  checkpoints: { path: string; iteration: number; score?: number }[];
  failures: number;
  timeTotalS: number;
  error?: string;
  /** `error.txt` of a failed trial whose records are not written yet. */
  errorText?: string;
  reason?: string;
  handle?: TrialHandle;
  action?: Action;
  writer?: ResultWriter;
  /** Its folder and records exist (false for an in-process trial until it needs them). */
  materialized: boolean;
  timer?: ReturnType<typeof setTimeout>;
  runIterations: number;
  runTimeS: number;
  /** A checkpoint was staged in this trial's folder (so `.staging` may need cleaning). */
  staged?: boolean;
  priority: boolean;
  /** Keys of the warnings given about it (made at the first). */
  warned?: Set<string>;
  env: Record<string, string>;
  /** What it holds when it runs: the experiment's `resources`, or what a reallocation gave it. */
  resources: Resources;
}

type LoopEvent =
  | { type: "report"; trial: TrialState; raw: RawReport; resolve: (a: Ack) => void }
  | { type: "exit"; trial: TrialState; exit: TrialExit }
  | { type: "timeout"; trial: TrialState }
  | { type: "budget" }
  | { type: "interrupt"; signal: string };

class EventQueue<T> {
  #items: T[] = [];
  #waiter: ((v: T) => void) | undefined;
  push(item: T): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(item);
    } else this.#items.push(item);
  }
  get size(): number {
    return this.#items.length;
  }
  next(): Promise<T> {
    if (this.#items.length) return Promise.resolve(this.#items.shift()!);
    return new Promise((r) => (this.#waiter = r));
  }
}

/** What {@linkcode runExperiment} returns. */
export interface RunOutcome {
  /** Every trial, in creation order. */
  readonly trials: readonly TrialSnapshot[];
  /** Every trial's results, in order. */
  readonly histories: ReadonlyMap<string, readonly TrialResult[]>;
  /** True when stopped by a signal. */
  readonly interrupted: boolean;
  /** True when the time budget ran out. */
  readonly budgetExhausted: boolean;
  /** A plugin or trainable error that ended the experiment early. */
  readonly fatal?: Error;
}

/**
 * Runs an experiment to its end (or until interrupted) and returns its trials.
 *
 * @example
 * ```ts ignore
 * import { runExperiment } from "./runner.ts";
 * const outcome = await runExperiment(config);
 * ```
 */
export async function runExperiment(config: RunnerConfig): Promise<RunOutcome> {
  return await new Runner(config).run();
}

class Runner {
  readonly c: RunnerConfig;
  readonly trials = new Map<string, TrialState>();
  readonly order: TrialState[] = [];
  /** Pending and paused trials, in creation order (kept in step with every status change). */
  readonly runnable = new Set<TrialState>();
  /** Exploits of paused trials waiting to be applied (synchronous PBT). */
  readonly clones: ExploitRequest[] = [];
  readonly queue = new EventQueue<LoopEvent>();
  readonly chains = new Map<Callback, Promise<void>>();
  readonly failedHooks = new Set<string>();
  log!: EventLog;
  /** The trial whose process the executor started ahead (a warm start), until it starts. */
  warmIds = new Set<string>();
  /** A trial not created yet whose folder was made for its warm start. */
  aheadDirs = new Set<string>();
  /** The environment the last trial started with (a warm start's guess for the next). */
  lastEnv: Record<string, string> | undefined;
  running = 0;
  trialCount = 0;
  searcherDone = false;
  searcherWaiting = false;
  stopping = false;
  interrupted = false;
  budgetExhausted = false;
  /** A stopper's `stopAll()` returned true (applied once the reporting trial's stop is set). */
  stopAllRequested = false;
  fatal: Error | undefined;
  lastSave = 0;
  warnedMissingMetric = false;
  warn: (m: string) => void;
  /** The objectives (`metrics`, or the one `metric`). */
  readonly objectives: readonly string[];
  dateSecond = NaN;
  dateText = "";

  constructor(c: RunnerConfig) {
    this.c = c;
    this.objectives = c.metrics ?? [c.metric];
    // Messages carry what trials sent (metric names, error texts): no terminal control codes.
    const warn = c.warn ?? ((m: string) => console.warn(`tunebox: ${m}`));
    this.warn = (m) => warn(printable(m));
  }

  async run(): Promise<RunOutcome> {
    const c = this.c;
    this.log = await EventLog.open(c.dir);
    const multi = c.metrics && c.metrics.length > 1
      ? { metrics: c.metrics, modes: c.modes ?? c.metrics.map(() => c.mode) }
      : {};
    const ctx = {
      space: c.space,
      metric: c.metric,
      mode: c.mode,
      ...multi,
      seed: c.seed,
      numSamples: c.numSamples,
    };
    this.plugin(c.searcher.name, "setup", () => c.searcher.setup?.(ctx));
    const resources = c.totalResources
      ? {
        resources: {
          total: { ...c.totalResources },
          trial: {
            cpu: c.resources?.cpu ?? 1,
            gpu: c.resources?.gpu ?? 0,
            ...(c.resources?.workers !== undefined ? { workers: c.resources.workers } : {}),
          },
        },
      }
      : {};
    this.plugin(
      c.scheduler.name,
      "setup",
      () =>
        c.scheduler.setup?.({
          metric: c.metric,
          mode: c.mode,
          ...multi,
          seed: c.seed,
          ...resources,
        }),
    );
    if (c.restored) this.restore(c.restored);
    await this.save(true, "running");
    this.emit("onExperimentStart", {
      name: c.name,
      dir: c.dir,
      space: c.space,
      metric: c.metric,
      mode: c.mode,
      ...multi,
      searcher: c.searcher.name,
      scheduler: c.scheduler.name,
      resumed: !!c.restored,
    });

    const signals: [Deno.Signal, () => void][] = [];
    if (c.handleSignals !== false) {
      for (const s of ["SIGINT", "SIGTERM"] as const) {
        const h = () => this.queue.push({ type: "interrupt", signal: s });
        try {
          Deno.addSignalListener(s, h);
          signals.push([s, h]);
        } catch { /* not supported here */ }
      }
    }
    const budget = c.timeBudgetMs !== undefined
      ? setTimeout(() => this.queue.push({ type: "budget" }), c.timeBudgetMs)
      : undefined;

    try {
      await c.executor.prepare?.({ experimentDir: c.dir, sandbox: c.sandbox });
      for (;;) {
        if (!this.stopping && !this.fatal) await this.fill();
        if (this.running === 0) {
          if (this.stopping || this.fatal || this.finished()) break;
          if (this.searcherWaiting) {
            this.fatal = new PluginError(
              c.searcher.name,
              "suggest",
              new Error('it answered "wait" while no trial was running, so it would wait forever'),
            );
            break;
          }
          // Nothing runs, nothing could start, and nothing else will wake the loop.
          this.fatal = new TuneError(
            `No trial can start: ${this.runnable.size} trial(s) wait, but none fits the resources ` +
              `(maxConcurrent and resources: { cpu, gpu } per trial)`,
          );
          break;
        }
        // The end of a turn: one write of what the journal queued, then the acknowledgements.
        if (!this.queue.size) this.log.flush();
        await this.handle(await this.queue.next());
      }
    } catch (e) {
      this.fatal ??= e instanceof Error ? e : new Error(String(e));
      // Leave no trial process behind.
      const handles = this.order.flatMap((
        t,
      ) => (t.status === "running" && t.handle ? [t.handle] : []));
      await Promise.allSettled(handles.map((h) => h.stop()));
    } finally {
      clearTimeout(budget);
      for (const [s, h] of signals) Deno.removeSignalListener(s, h);
      this.dropWarm();
      await c.executor.close?.();
    }
    const snapshots = this.order.map((t) => this.snap(t));
    this.emit("onExperimentEnd", {
      trials: snapshots,
      interrupted: this.interrupted || this.budgetExhausted,
    });
    await this.flushCallbacks();
    if (this.c.trialFolders === "end") await this.writeFolders();
    await this.save(true, this.fatal ? "failed" : this.interrupted ? "interrupted" : "finished");
    this.log.close();
    return {
      trials: snapshots,
      histories: new Map(this.order.map((t) => [t.id, t.history])),
      interrupted: this.interrupted,
      budgetExhausted: this.budgetExhausted,
      ...(this.fatal ? { fatal: this.fatal } : {}),
    };
  }

  finished(): boolean {
    return this.runnable.size === 0 && (this.searcherDone || this.trialCount >= this.c.totalTrials);
  }

  setStatus(t: TrialState, status: TrialStatus): void {
    t.status = status;
    if (status === "pending" || status === "paused") this.runnable.add(t);
    else this.runnable.delete(t);
  }

  restore(r: NonNullable<RunnerConfig["restored"]>): void {
    this.plugin(this.c.searcher.name, "restore", () => this.c.searcher.restore?.(r.searcherState));
    this.plugin(
      this.c.scheduler.name,
      "restore",
      () => this.c.scheduler.restore?.(r.schedulerState),
    );
    for (const t of r.trials) {
      const state: TrialState = {
        id: t.id,
        seq: this.order.length,
        // A trial that was running when the driver died restarts from its checkpoint.
        status: t.status === "running" ? "pending" : t.status,
        config: t.config,
        dir: join(this.c.dir, t.id),
        workDir: join(this.c.dir, t.id, WORK_DIR),
        iteration: t.iteration,
        ...(t.lastResult ? { lastResult: t.lastResult } : {}),
        ...(t.checkpoint ? { checkpoint: t.checkpoint } : {}),
        checkpoints: [...t.checkpoints],
        history: [...t.history],
        failures: t.failures,
        timeTotalS: t.lastResult?.time_total_s ?? 0,
        ...(t.reason ? (t.status === "error" ? { error: t.reason } : { reason: t.reason }) : {}),
        runIterations: 0,
        runTimeS: 0,
        priority: t.status === "running",
        env: {},
        resources: t.resources ? { ...this.c.resources, ...t.resources } : { ...this.c.resources },
        materialized: !this.c.executor.lazyTrialDir || exists(join(this.c.dir, t.id)),
      };
      this.trials.set(t.id, state);
      this.order.push(state);
      this.setStatus(state, state.status);
    }
    this.trialCount = Math.max(r.trialCount, this.order.length);
    // The snapshots are up to a second older than the log: bring the plugins up to date.
    const c = this.c;
    for (const ev of r.replay) {
      const t = this.trials.get(ev.trial);
      if (!t) continue;
      if (ev.event === "created") {
        this.plugin(c.searcher.name, "suggest", () => c.searcher.suggest(t.id));
        this.plugin(c.scheduler.name, "onTrialAdd", () => c.scheduler.onTrialAdd?.(this.snap(t)));
      } else if (ev.event === "terminated" || ev.event === "error") {
        this.notifyComplete(t, ev.event === "error", ev.outcome === "stopped");
      }
    }
  }

  // ------------------------------------------------------------------ starting trials

  async fill(): Promise<void> {
    const ahead = this.c.scheduler.pendingTrials ?? 1;
    for (;;) {
      await this.applyClones();
      if (ahead > 1) {
        let pending = [...this.runnable].filter((t) => t.status === "pending").length;
        while (
          pending < ahead && !this.searcherDone && this.trialCount < this.c.totalTrials &&
          await this.create()
        ) pending++;
      }
      if (!this.c.gate.canStart()) {
        this.warmNext();
        return;
      }
      // The Set keeps insertion order: creation order, with re-paused trials at the end.
      const runnable = [...this.runnable];
      if (
        !runnable.some((t) => t.status === "pending") && !this.searcherDone &&
        this.trialCount < this.c.totalTrials
      ) {
        if (await this.create()) continue;
      }
      if (!runnable.length) return;
      let pick = runnable.find((t) => t.priority);
      if (!pick) {
        const chosen = this.c.scheduler.chooseNext
          ? this.plugin(
            this.c.scheduler.name,
            "chooseNext",
            () => this.c.scheduler.chooseNext!(runnable.map((t) => this.snap(t))),
          )
          : (runnable.find((t) => t.status === "paused") ?? runnable[0]).id;
        if (this.fatal) return;
        // Stops decided while choosing (e.g. a finished rung's losers) apply before anything runs.
        this.applyStops();
        await this.applyClones();
        pick = chosen ? this.trials.get(chosen) : undefined;
        if (pick && !this.runnable.has(pick)) continue;
        if (chosen && (!pick || !runnable.includes(pick))) {
          this.fatal = new PluginError(
            this.c.scheduler.name,
            "chooseNext",
            new Error(`it chose "${chosen}", which is not runnable`),
          );
          return;
        }
        if (!pick) {
          if (this.running > 0) return;
          // Nothing runs and the scheduler chose nothing: run the oldest rather than hang.
          pick = runnable.find((t) => t.status === "paused") ?? runnable[0];
        }
      }
      if (!this.c.gate.canStart(demand(pick.resources))) {
        // A trial given more resources waits for others to end; nothing else starts before it.
        if (this.running > 0) return;
        this.fatal = new TuneError(
          `trial "${pick.id}" holds ${show(pick.resources)}, which does not fit even with no ` +
            `trial running`,
        );
        return;
      }
      this.startTrial(pick);
      this.applyStops();
    }
  }

  async create(): Promise<boolean> {
    const c = this.c;
    const id = `${c.experimentId}_${String(this.trialCount).padStart(5, "0")}`;
    const s = this.plugin(c.searcher.name, "suggest", () => c.searcher.suggest(id));
    if (this.fatal || s === undefined) return false;
    if (s === "done") {
      this.searcherDone = true;
      return false;
    }
    if (s === "wait") {
      this.searcherWaiting = true;
      return false;
    }
    this.searcherWaiting = false;
    if (typeof s !== "object" || s === null || Array.isArray(s)) {
      this.fatal = new PluginError(
        c.searcher.name,
        "suggest",
        new TypeError(`it returned ${JSON.stringify(s)}, not a config object`),
      );
      return false;
    }
    this.trialCount++;
    const dir = join(c.dir, id);
    const lazy = c.executor.lazyTrialDir === true;
    if (!lazy) {
      // Fresh folders: nothing (no symlink) can be waiting in them. One made for a warm start
      // is as fresh: only this trial's own process had it (which ran at most the module's top level).
      if (!this.aheadDirs.delete(id)) {
        // A folder of a trial the journal never recorded (a killed driver made it ahead for a
        // warm start, or was killed before the "created" line went out): not this trial's.
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch { /* none: the usual case */ }
        Deno.mkdirSync(dir);
        Deno.mkdirSync(join(dir, WORK_DIR));
      }
      writeParams(dir, s);
    }
    const t: TrialState = {
      id,
      seq: this.order.length,
      status: "pending",
      config: s,
      dir,
      workDir: join(dir, WORK_DIR),
      iteration: 0,
      history: [],
      checkpoints: [],
      failures: 0,
      timeTotalS: 0,
      runIterations: 0,
      runTimeS: 0,
      priority: false,
      env: {},
      resources: { ...c.resources },
      materialized: !lazy,
    };
    this.trials.set(id, t);
    this.order.push(t);
    this.runnable.add(t);
    this.log.append({ trial: id, event: "created", config: s });
    this.plugin(c.scheduler.name, "onTrialAdd", () => c.scheduler.onTrialAdd?.(this.snap(t)));
    await this.save(false);
    return true;
  }

  startTrial(t: TrialState): void {
    const alloc = this.c.gate.acquire(t.id, demand(t.resources));
    const resumed = t.iteration > 0 || t.failures > 0 || t.status === "paused" || !!t.checkpoint;
    this.setStatus(t, "running");
    t.priority = false;
    t.action = undefined;
    t.runIterations = 0;
    t.runTimeS = 0;
    t.env = alloc;
    this.lastEnv = alloc;
    this.warmIds.delete(t.id); // the executor hands it its warm process, if it has one
    if (t.materialized) {
      ensureWorkDir(t.workDir);
      // Earlier lines (a restart from scratch after a crash too): progress.csv keeps one header.
      t.writer = ResultWriter.open(
        t.dir,
        t.iteration > 0 || t.failures > 0 || t.history.length > 0,
      );
    }
    this.log.append({ trial: t.id, event: "started" });
    this.running++;
    const handle = this.c.executor.start(
      {
        trialId: t.id,
        config: t.config,
        dir: t.dir,
        workDir: t.workDir,
        iteration: t.iteration,
        ...(t.checkpoint ? { checkpoint: t.checkpoint } : {}),
        timeOffsetS: t.timeTotalS,
        sandbox: this.c.sandbox,
        env: alloc,
        ...(this.c.memoryMb !== undefined ? { memoryMb: this.c.memoryMb } : {}),
        ...(this.c.resources || t.resources.cpu !== undefined || t.resources.gpu !== undefined
          ? { resources: t.resources }
          : {}),
      },
      {
        report: (raw) =>
          new Promise<Ack>((resolve) =>
            this.queue.push({ type: "report", trial: t, raw, resolve })
          ),
        placed: (node) => {
          if (t.handle === handle || t.handle === undefined) t.node = printable(node.slice(0, 64));
        },
        needsDir: () => {
          this.materialize(t);
          Deno.mkdirSync(t.workDir, { recursive: true });
        },
      },
    );
    t.handle = handle;
    handle.exited.then(
      (exit) => this.queue.push({ type: "exit", trial: t, exit }),
      (e) =>
        this.queue.push({
          type: "exit",
          trial: t,
          exit: { kind: "error", message: `executor failed: ${errorMessage(e)}` },
        }),
    );
    if (this.c.trialTimeoutMs !== undefined) {
      t.timer = setTimeout(
        () => this.queue.push({ type: "timeout", trial: t }),
        this.c.trialTimeoutMs,
      );
    }
    if (this.wants("onTrialStart")) this.emit("onTrialStart", { trial: this.snap(t), resumed });
  }

  // ------------------------------------------------------------------ events

  async handle(ev: LoopEvent): Promise<void> {
    switch (ev.type) {
      case "report": {
        const t = ev.trial;
        let ack: Ack = "stop";
        try {
          ack = await this.onReport(t, ev.raw);
        } catch (e) {
          // Whatever a trial sent, it fails that trial alone, never the driver.
          if (t.status === "running" && (!t.action || t.action.kind !== "failed")) {
            t.action = {
              kind: "failed",
              message: `its report could not be recorded: ${errorMessage(e)}`,
            };
          }
        }
        // Acknowledged once the journal holds the report (group commit: one write per turn).
        this.log.committed().then(
          () => ev.resolve(ack),
          (e) => {
            t.action ??= {
              kind: "failed",
              message: `its report could not be recorded: ${errorMessage(e)}`,
            };
            ev.resolve("stop");
            t.handle?.stop();
          },
        );
        // The decision is enforced: a trial told to stop that goes on is killed after the grace.
        if (ack === "stop" && t.status === "running") t.handle?.stop();
        return;
      }
      case "exit":
        return await this.onExit(ev.trial, ev.exit);
      case "timeout":
        if (ev.trial.status === "running") {
          ev.trial.action ??= { kind: "timeout" };
          ev.trial.handle?.stop(1000);
        }
        return;
      case "budget":
        this.budgetExhausted = true;
        this.warn(
          `the time budget of ${this.c.timeBudgetMs} ms is spent: stopping the running trials`,
        );
        this.stopping = true;
        this.stopAll({ kind: "stop", reason: "time budget spent", outcome: "stopped" });
        return;
      case "interrupt":
        if (this.stopping && this.interrupted) {
          this.warn("second interrupt: killing trials now");
          for (const t of this.order) if (t.status === "running") t.handle?.stop(0);
          return;
        }
        this.interrupted = true;
        this.stopping = true;
        this.warn(
          `${ev.signal} received: stopping trials and saving state; resume with \`tunebox resume ${this.c.dir}\``,
        );
        this.stopAll({ kind: "interrupt" });
        return;
    }
  }

  stopAll(action: Action): void {
    for (const t of this.order) {
      if (t.status !== "running") continue;
      t.action ??= action;
      // Also trials already told to stop: the handle makes sure they do.
      t.handle?.stop();
    }
  }

  async onReport(t: TrialState, raw: RawReport): Promise<Ack> {
    if (t.status !== "running" || t.action) return "stop";
    const c = this.c;
    const now = Date.now();
    const elapsed = raw.elapsedS ?? 0;
    const timeTotal = t.timeTotalS - t.runTimeS + elapsed;
    const iteration = t.iteration + 1;
    const metrics = raw.metrics;
    const result: TrialResult = {
      ...metrics,
      training_iteration: iteration,
      time_this_iter_s: Math.max(0, elapsed - t.runTimeS),
      time_total_s: timeTotal,
      timestamp: Math.floor(now / 1000),
      date: this.localDate(now),
      trial_id: t.id,
      iterations_since_restore: t.runIterations + 1,
      time_since_restore: elapsed,
      done: metrics.done === true,
    };
    // Commit the checkpoint first, so the result line can name it.
    let checkpointPath: string | undefined;
    if (raw.checkpointDir) {
      this.materialize(t);
      t.staged = true;
      try {
        checkpointPath = await this.commitCheckpoint(t, raw.checkpointDir, iteration, result);
      } catch (e) {
        this.warnOnce(t, "checkpoint", `trial "${t.id}": checkpoint not saved: ${errorMessage(e)}`);
      }
    }
    const recorded: TrialResult = checkpointPath
      ? { ...result, checkpoint_dir_name: checkpointName(iteration) }
      : result;
    // A trial with its own files has the report on disk now; the journal holds it for the others.
    if (t.writer) t.writer.append(recorded);
    else this.log.append({ trial: t.id, event: "result", result: recorded });
    t.iteration = iteration;
    t.runIterations++;
    t.runTimeS = elapsed;
    t.timeTotalS = timeTotal;
    t.lastResult = recorded;
    t.history.push(recorded);
    this.checkMetric(t, recorded);

    let decision: Decision = { kind: "continue" };
    const stopReason = this.stopCriterion(t, recorded);
    if (stopReason) decision = { kind: "stop", reason: stopReason };
    else {
      const d = this.plugin(
        c.scheduler.name,
        "onReport",
        () => c.scheduler.onReport(this.snap(t), recorded),
      );
      if (d !== undefined) decision = checkDecision(d, c.scheduler.name, this);
      if (decision.kind === "reallocate") {
        decision = this.reallocation(t, decision, !!checkpointPath);
      }
    }
    this.plugin(c.searcher.name, "onReport", () => c.searcher.onReport?.(t.id, recorded));
    if (checkpointPath) {
      this.emit("onCheckpoint", { trial: this.snap(t), path: checkpointPath, iteration });
    }
    if (this.wants("onReport")) {
      this.emit("onReport", { trial: this.snap(t), result: recorded, decision });
    }
    this.applyStops();
    if (this.fatal) {
      this.stopping = true;
      this.stopAll({ kind: "interrupt" });
      return "stop";
    }
    switch (decision.kind) {
      case "continue":
        return "continue";
      case "stop":
        t.action = {
          kind: "stop",
          reason: decision.reason,
          outcome: stopReason || decision.completed ? "completed" : "stopped",
        };
        break;
      case "pause":
        if (!t.checkpoint) {
          this.warnOnce(
            t,
            "pause",
            `trial "${t.id}" is paused but never saved a checkpoint: it will restart from scratch (pass \`checkpoint\` to session.report)`,
          );
        }
        t.action = { kind: "pause" };
        break;
      case "exploit":
        t.action = { kind: "exploit", from: decision.from, config: decision.config };
        break;
      case "reallocate":
        t.action = {
          kind: "reallocate",
          resources: { ...t.resources, cpu: decision.resources.cpu, gpu: decision.resources.gpu },
        };
        break;
    }
    if (this.stopAllRequested && !this.stopping) {
      // A stopper's stopAll(): end the other running trials too and start no new one.
      this.stopping = true;
      this.warn("the stopper's stopAll() returned true: stopping every trial");
      this.stopAll({
        kind: "stop",
        reason: "the stopper's stopAll() returned true: the experiment ends",
        outcome: "completed",
      });
    }
    await this.save(false);
    return "stop";
  }

  /**
   * A scheduler's `reallocate` as it will be applied: checked against what exists (a request
   * that can never fit ends the experiment with the scheduler named), and turned into
   * `continue` when it changes nothing or when this report carried no checkpoint to restart from.
   */
  reallocation(
    t: TrialState,
    d: Extract<Decision, { kind: "reallocate" }>,
    checkpointed: boolean,
  ): Decision {
    const cur = current(t.resources);
    if (d.resources.cpu === cur.cpu && d.resources.gpu === cur.gpu) return { kind: "continue" };
    const next = { ...t.resources, cpu: d.resources.cpu, gpu: d.resources.gpu };
    try {
      this.c.gate.check?.(demand(next));
    } catch (e) {
      this.fatal ??= new PluginError(
        this.c.scheduler.name,
        "onReport",
        new RangeError(
          `it gave trial "${t.id}" ${show(next)}, which can never fit: ${errorMessage(e)}`,
        ),
      );
      return { kind: "continue" };
    }
    if (!checkpointed) {
      this.warnOnce(
        t,
        "reallocate",
        `trial "${t.id}" is not given ${show(next)} (it holds ${show(t.resources)}): a trial ` +
          `changes resources by restarting from a checkpoint, and this report carried none; ` +
          `pass \`checkpoint\` to session.report (it is reallocated at a report that has one)`,
      );
      return { kind: "continue" };
    }
    return d;
  }

  stopCriterion(t: TrialState, r: TrialResult): string | undefined {
    if (r.done === true) return "the trial reported done";
    const stop = this.c.stop;
    if (!stop) return undefined;
    if (typeof stop === "function") {
      const v = this.plugin("stop", "function", () => stop(t.id, r));
      if (
        typeof stop.stopAll === "function" && !this.stopping &&
        this.plugin("stop", "stopAll", () => stop.stopAll!()) === true
      ) {
        this.stopAllRequested = true;
        return "the stopper's stopAll() returned true: the experiment ends";
      }
      return v ? "the stop function returned true" : undefined;
    }
    const flat = flatten(r);
    for (const [k, limit] of Object.entries(stop)) {
      const v = flat[k];
      if (typeof v !== "number") {
        this.warnOnce(
          t,
          `stop:${k}`,
          `stop criterion "${k}" is not in the results of trial "${t.id}" (it reported ${
            userKeys(flat)
          })`,
        );
        continue;
      }
      if (v >= limit) return `${k} >= ${limit}`;
    }
    return undefined;
  }

  checkMetric(t: TrialState, r: TrialResult): void {
    // A metric at the top level is read as is; a nested one ("a/b") needs the flat view.
    let flat: Record<string, JsonValue> | undefined;
    for (const metric of this.objectives) {
      const direct = r[metric];
      const v = typeof direct === "number" ? direct : (flat ??= flatten(r))[metric];
      if (v === undefined) {
        flat ??= flatten(r);
        if (!this.warnedMissingMetric) {
          this.warnedMissingMetric = true;
          this.warn(
            `trial "${t.id}" did not report the metric "${metric}" (it reported ${
              userKeys(flat)
            }); ` +
              `schedulers and searchers need it in every report`,
          );
        }
      } else if (typeof v === "number" && !Number.isFinite(v)) {
        this.warnOnce(
          t,
          `nan:${metric}`,
          `trial "${t.id}" reported ${metric}=${v} at iteration ${r.training_iteration}: recorded, never picked as best`,
        );
      }
    }
  }

  async commitCheckpoint(
    t: TrialState,
    staging: string,
    iteration: number,
    result: TrialResult,
  ): Promise<string> {
    const src = resolve(t.workDir, staging);
    if (!src.startsWith(t.workDir + sep)) {
      throw new TuneError(
        `the checkpoint folder "${staging}" is outside the trial's folder "${t.workDir}"`,
      );
    }
    const info = await Deno.lstat(src);
    if (!info.isDirectory) throw new TuneError(`the checkpoint "${staging}" is not a folder`);
    const removed = await removeSymlinks(src);
    if (removed) {
      this.warnOnce(
        t,
        "symlink",
        `trial "${t.id}": ${removed} symlink(s) removed from its checkpoint (symlinks are never committed)`,
      );
    }
    const dst = join(t.dir, checkpointName(iteration));
    await Deno.remove(dst, { recursive: true }).catch(() => {});
    await Deno.rename(src, dst);
    const attr = this.c.checkpoint.scoreAttribute;
    const scoreValue = attr ? flatten(result)[attr] : undefined;
    t.checkpoints = t.checkpoints.filter((c) => c.path !== dst);
    t.checkpoints.push({
      path: dst,
      iteration,
      ...(typeof scoreValue === "number" ? { score: scoreValue } : {}),
    });
    t.checkpoint = dst;
    await this.retain(t);
    return dst;
  }

  async retain(t: TrialState): Promise<void> {
    const keep = this.c.checkpoint.numToKeep;
    if (keep === undefined || t.checkpoints.length <= keep) return;
    const latest = t.checkpoints[t.checkpoints.length - 1];
    const attr = this.c.checkpoint.scoreAttribute;
    const sign = this.c.checkpoint.scoreOrder === "min" ? -1 : 1;
    const ranked = [...t.checkpoints].sort((a, b) =>
      attr
        ? sign * ((b.score ?? -Infinity * sign) - (a.score ?? -Infinity * sign))
        : b.iteration - a.iteration
    );
    const kept = new Set(ranked.slice(0, keep));
    kept.add(latest); // resume and retries need the latest
    for (const c of t.checkpoints) {
      if (!kept.has(c)) await Deno.remove(c.path, { recursive: true }).catch(() => {});
    }
    t.checkpoints = t.checkpoints.filter((c) => kept.has(c));
  }

  async onExit(t: TrialState, exit: TrialExit): Promise<void> {
    clearTimeout(t.timer);
    t.writer?.close();
    t.writer = undefined;
    t.handle = undefined;
    this.running--;
    this.c.gate.release(t.id);
    // Checkpoint staging left by the trial (or by an exploit): never committed now. Listing the
    // folder first spares the common case (nothing staged) a failing remove.
    if (t.materialized && hasEntry(t.workDir, STAGING_DIR)) {
      await Deno.remove(join(t.workDir, STAGING_DIR), { recursive: true }).catch(() => {});
    }
    if (t.staged) await Deno.remove(join(t.dir, STAGING_DIR), { recursive: true }).catch(() => {});
    const action = t.action;
    t.action = undefined;
    const c = this.c;

    if (action?.kind === "interrupt") {
      // Left as "running" in trials.jsonl: a resume restarts it from its checkpoint.
      this.setStatus(t, "pending");
      return;
    }
    if (action?.kind === "stop" || (!action && exit.kind !== "error")) {
      const outcome: TrialOutcome = action?.kind === "stop" ? action.outcome : "completed";
      const reason = action?.kind === "stop" ? action.reason : undefined;
      return await this.finish(t, "terminated", outcome, reason);
    }
    if (action?.kind === "pause") {
      this.setStatus(t, "paused");
      this.log.append({ trial: t.id, event: "paused" });
      this.emit("onTrialEnd", { trial: this.snap(t), outcome: "paused" });
      return;
    }
    if (action?.kind === "reallocate") {
      const before = show(t.resources);
      t.resources = action.resources;
      this.setStatus(t, "paused");
      this.log.append({
        trial: t.id,
        event: "resources",
        resources: current(t.resources),
        reason: `${before} -> ${show(t.resources)}`,
      });
      this.log.append({ trial: t.id, event: "paused" });
      this.emit("onTrialEnd", {
        trial: this.snap(t),
        outcome: "paused",
        reason: `restarting with ${show(t.resources)} (was ${before})`,
      });
      // It restarts first, from the checkpoint of the report that decided it.
      t.priority = true;
      return;
    }
    if (action?.kind === "exploit") {
      this.setStatus(t, "paused");
      if (!(await this.cloneInto(t, action.from, action.config, "onReport"))) return;
      this.emit("onTrialEnd", {
        trial: this.snap(t),
        outcome: "paused",
        reason: `exploiting ${action.from}`,
      });
      t.priority = true;
      return;
    }
    // A failure (or a timeout).
    const message = action?.kind === "timeout"
      ? `timed out after ${c.trialTimeoutMs} ms (trialTimeoutMs) and was killed`
      : action?.kind === "failed"
      ? action.message
      : exit.kind === "error"
      ? exit.message
      : `ended (${exit.kind}) without finishing`;
    const violation = exit.kind === "error" ? exit.violation : undefined;
    const full = violation
      ? new SandboxViolation(t.id, violation.permission, violation.target, message.split("\n")[0])
        .reason
      : message;
    const fatal = exit.kind === "error" && exit.fatal;
    if (!violation && !fatal && (c.maxFailures < 0 || t.failures < c.maxFailures)) {
      t.failures++;
      this.warn(
        `trial "${t.id}" failed (${full.split("\n")[0]}); retry ${t.failures}/${
          c.maxFailures < 0 ? "∞" : c.maxFailures
        } from ${
          t.checkpoint
            ? `its checkpoint at iteration ${t.checkpoints.at(-1)?.iteration}`
            : "the start"
        }`,
      );
      this.log.append({ trial: t.id, event: "retry", reason: full });
      // Continue from the checkpoint: iterations after it are redone.
      t.iteration = t.checkpoints.at(-1)?.iteration ?? 0;
      this.setStatus(t, "pending");
      t.priority = true;
      return;
    }
    const stack = exit.kind === "error" && exit.stack ? `\n\n${exit.stack}` : "";
    t.errorText = `${full}${stack}\n`;
    // A failed trial's folder is written now, whatever the executor: its error.txt (with the
    // stack) is what people look for.
    if (t.materialized) {
      await Deno.writeTextFile(join(t.dir, "error.txt"), t.errorText).catch(() => {});
    } else await this.writeFolder(t);
    t.errorText = undefined;
    t.error = full;
    this.warn(`trial "${t.id}" failed: ${full}`);
    if (fatal) {
      this.fatal = new TuneError(`The trainable cannot run: ${full}`);
      this.stopping = true;
      this.stopAll({ kind: "interrupt" });
    }
    await this.finish(t, "error", "error", full);
  }

  async finish(
    t: TrialState,
    status: "terminated" | "error",
    outcome: TrialOutcome,
    reason?: string,
  ): Promise<void> {
    this.setStatus(t, status);
    if (reason && status === "terminated") t.reason = reason;
    this.log.append({ trial: t.id, event: status, outcome, ...(reason ? { reason } : {}) });
    this.notifyComplete(t, status === "error", outcome === "stopped");
    this.applyStops();
    if (this.wants("onTrialEnd")) {
      this.emit("onTrialEnd", { trial: this.snap(t), outcome, ...(reason ? { reason } : {}) });
    }
    await this.save(false);
  }

  /** Tells the scheduler and the searcher that a trial ended. */
  notifyComplete(t: TrialState, error: boolean, stopped: boolean): void {
    const c = this.c;
    this.plugin(
      c.scheduler.name,
      "onComplete",
      () => c.scheduler.onComplete?.(this.snap(t), t.lastResult),
    );
    this.plugin(
      c.searcher.name,
      "onComplete",
      () => c.searcher.onComplete?.(t.id, t.lastResult, { error, stopped }),
    );
  }

  /** Copies the donor's latest checkpoint into `t` and gives it `config`; false on failure. */
  async cloneInto(t: TrialState, from: string, config: Config, hook: string): Promise<boolean> {
    const donor = this.trials.get(from);
    if (!donor?.checkpoint) {
      this.fatal ??= new PluginError(
        this.c.scheduler.name,
        hook,
        new Error(`exploit from "${from}", which has no checkpoint`),
      );
      return false;
    }
    this.materialize(t);
    const dst = join(t.dir, checkpointName(t.iteration));
    const tmp = join(t.dir, STAGING_DIR, `exploit_${Date.now()}`);
    t.staged = true;
    const skipped = await copyTree(donor.checkpoint, tmp);
    if (skipped) this.warn(`exploit: ${skipped} symlink(s) not copied from "${donor.id}"`);
    await Deno.remove(dst, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, dst);
    t.checkpoints = t.checkpoints.filter((k) => k.path !== dst);
    t.checkpoints.push({ path: dst, iteration: t.iteration });
    t.checkpoint = dst;
    t.config = config;
    writeParams(t.dir, t.config);
    this.log.append({
      trial: t.id,
      event: "config",
      config: t.config,
      reason: `exploit ${donor.id}`,
      donor: donor.id,
    });
    return true;
  }

  /** Exploits a scheduler asked for on paused trials (synchronous PBT). */
  async applyClones(): Promise<void> {
    while (this.clones.length) {
      const req = this.clones.shift()!;
      const t = this.trials.get(req.trialId);
      if (!t || t.status !== "paused") {
        this.warn(
          `${this.c.scheduler.name}: exploit of "${req.trialId}" ignored: the trial is not paused`,
        );
        continue;
      }
      await this.cloneInto(t, req.from, req.config, "takeExploits");
    }
  }

  applyStops(): void {
    const exploits = this.c.scheduler.takeExploits
      ? this.plugin(this.c.scheduler.name, "takeExploits", () => this.c.scheduler.takeExploits!())
      : undefined;
    if (exploits?.length) this.clones.push(...exploits);
    const stops = this.c.scheduler.takeStops
      ? this.plugin(this.c.scheduler.name, "takeStops", () => this.c.scheduler.takeStops!())
      : undefined;
    for (const s of stops ?? []) {
      const t = this.trials.get(s.trialId);
      if (!t) continue;
      if (t.status === "running" && !t.action) {
        t.action = { kind: "stop", reason: s.reason, outcome: "stopped" };
        t.handle?.stop();
      } else if (t.status === "paused" || t.status === "pending") {
        // Not running: end it right here (its finish runs through the loop's bookkeeping).
        this.finish(t, "terminated", "stopped", s.reason);
      }
    }
  }

  // ------------------------------------------------------------------ warm starts

  /**
   * While every slot is busy, has the executor start the processes of the trials that will start
   * next ({@linkcode WARM_AHEAD} at most): the oldest pending trials, then the next ones the
   * searcher will make (their folders are made now, fresh). A warm process is only ever handed
   * its own trial; one that is not needed any more is killed, and a folder made ahead for a trial
   * that never came is removed.
   */
  warmNext(): void {
    const c = this.c;
    if (!c.executor.warm || this.stopping || this.fatal || !this.lastEnv) return;
    const want: { id: string; made: boolean }[] = [];
    for (const t of this.runnable) {
      if (want.length >= WARM_AHEAD) break;
      if (t.status === "pending" && t.materialized) want.push({ id: t.id, made: true });
    }
    for (
      let k = this.trialCount;
      want.length < WARM_AHEAD && !this.searcherDone && k < c.totalTrials;
      k++
    ) want.push({ id: `${c.experimentId}_${String(k).padStart(5, "0")}`, made: false });
    const wanted = new Set(want.map((w) => w.id));
    for (const id of [...this.warmIds]) if (!wanted.has(id)) this.dropWarm(id);
    for (const w of want) {
      if (this.warmIds.has(w.id)) continue;
      const id = w.id;
      const dir = join(c.dir, id);
      if (!w.made) {
        try {
          Deno.mkdirSync(dir);
          Deno.mkdirSync(join(dir, WORK_DIR));
        } catch {
          continue; // something is there already: no warm start for it
        }
        this.aheadDirs.add(id);
      }
      this.warmIds.add(id);
      this.plugin(c.executor.name, "warm", () =>
        c.executor.warm!({
          trialId: id,
          dir,
          workDir: join(dir, WORK_DIR),
          sandbox: c.sandbox,
          env: this.lastEnv!,
          ...(c.memoryMb !== undefined ? { memoryMb: c.memoryMb } : {}),
          // A trial waiting to run again (a retry) keeps what a reallocation gave it.
          ...(this.trials.get(id)?.resources ?? c.resources
            ? { resources: this.trials.get(id)?.resources ?? c.resources }
            : {}),
        }));
    }
  }

  /**
   * Kills the warm process of a trial that did not start (of every one, without `id`), and
   * removes a folder made ahead for it.
   */
  dropWarm(id?: string): void {
    if (id === undefined) {
      for (const w of [...this.warmIds]) this.dropWarm(w);
      return;
    }
    if (!this.warmIds.delete(id)) return;
    this.plugin(this.c.executor.name, "unwarm", () => this.c.executor.unwarm?.(id));
    if (this.aheadDirs.delete(id)) {
      try {
        Deno.removeSync(join(this.c.dir, id), { recursive: true });
      } catch { /* gone */ }
    }
  }

  // ------------------------------------------------------------------ records

  /**
   * Writes an in-process trial's folder and records now (it checkpoints, or is exploited),
   * and gives it a writer if it runs: from here on it is written like any other trial.
   */
  materialize(t: TrialState): void {
    if (t.materialized) return;
    Deno.mkdirSync(t.workDir, { recursive: true });
    writeParams(t.dir, t.config);
    const enc = new TextEncoder();
    Deno.writeFileSync(
      join(t.dir, "result.jsonl"),
      enc.encode(t.history.map((r) => toJson(r) + "\n").join("")),
    );
    Deno.writeFileSync(join(t.dir, "progress.csv"), new Uint8Array());
    t.materialized = true;
    // Resume mode: the writer reads the lines back and rewrites progress.csv from them.
    if (t.status === "running") t.writer = ResultWriter.open(t.dir, true);
  }

  /** Writes the folder and records of a trial that is not running (lazy executors only). */
  async writeFolder(t: TrialState): Promise<void> {
    if (t.materialized) return;
    t.materialized = true;
    try {
      await materializeTrial(t.dir, t.config, t.history, t.errorText);
    } catch (e) {
      this.warnOnce(
        t,
        "records",
        `trial "${t.id}": its records were not written: ${errorMessage(e)}`,
      );
    }
  }

  /**
   * Writes every folder not written yet (`trialFolders: "end"`), 16 at a time: the journal
   * already holds their records, so this is a derived view, written once.
   */
  async writeFolders(): Promise<void> {
    const batch = this.order.filter((t) => !t.materialized);
    for (let i = 0; i < batch.length; i += 16) {
      await Promise.all(batch.slice(i, i + 16).map((t) => this.writeFolder(t)));
    }
  }

  // ------------------------------------------------------------------ helpers

  snap(t: TrialState): TrialSnapshot {
    return Object.freeze({
      id: t.id,
      status: t.status,
      config: t.config,
      iteration: t.iteration,
      dir: t.dir,
      ...(t.lastResult ? { lastResult: t.lastResult } : {}),
      ...(t.checkpoint ? { checkpoint: t.checkpoint } : {}),
      ...(t.error ? { error: t.error } : {}),
      ...(t.reason ? { reason: t.reason } : {}),
      ...(t.node ? { node: t.node } : {}),
      resources: Object.freeze(current(t.resources)),
    });
  }

  plugin<T>(name: string, hook: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.fatal ??= new PluginError(name, hook, e);
      return undefined;
    }
  }

  warnOnce(t: TrialState, key: string, message: string): void {
    t.warned ??= new Set();
    if (t.warned.has(key)) return;
    t.warned.add(key);
    this.warn(message);
  }

  /** `date` of a result: the local time to the second, made once a second. */
  localDate(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateText = isoLocal(ms);
    }
    return this.dateText;
  }

  /** Whether a callback has this hook (the event is then worth making). */
  wants(hook: Exclude<keyof Callback, "name">): boolean {
    return this.c.callbacks.some((cb) => typeof cb[hook] === "function");
  }

  emit<K extends Exclude<keyof Callback, "name">>(
    hook: K,
    event: Parameters<NonNullable<Callback[K]>>[0],
  ): void {
    for (const cb of this.c.callbacks) {
      const fn = cb[hook] as ((e: unknown) => void | Promise<void>) | undefined;
      if (typeof fn !== "function") continue;
      const prev = this.chains.get(cb) ?? Promise.resolve();
      this.chains.set(
        cb,
        prev.then(() => fn.call(cb, event)).catch((e) => {
          const key = `${cb.name}.${hook}`;
          if (this.failedHooks.has(key)) return;
          this.failedHooks.add(key);
          this.warn(`${new PluginError(cb.name, hook, e).message} (the experiment goes on)`);
        }),
      );
    }
  }

  async flushCallbacks(): Promise<void> {
    const limit = this.c.callbackDrainMs ?? 60_000;
    const busy = new Set(this.chains.keys());
    for (const [cb, chain] of this.chains) chain.then(() => busy.delete(cb));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const all = Promise.all(this.chains.values()).then(() => true);
    const ok = await Promise.race([
      all,
      new Promise<false>((r) => (timer = setTimeout(() => r(false), limit))),
    ]);
    clearTimeout(timer);
    if (!ok) {
      const names = [...busy].map((cb) => `"${cb.name}"`).join(", ");
      this.warn(
        `callback ${names} still busy ${limit} ms after the experiment ended: not waiting for it ` +
          `(callbackDrainMs); everything the experiment recorded is on disk`,
      );
    }
  }

  async save(force: boolean, status: ExperimentRecord["status"] = "running"): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastSave < 1000) return;
    this.lastSave = now;
    // eventCount below counts queued events: they go to disk before the snapshot does.
    this.log.flush();
    const c = this.c;
    const searcherState = this.plugin(c.searcher.name, "snapshot", () => c.searcher.snapshot?.()) ??
      null;
    const schedulerState =
      this.plugin(c.scheduler.name, "snapshot", () => c.scheduler.snapshot?.()) ?? null;
    const record: ExperimentRecord = {
      format: STORE_FORMAT,
      name: c.name,
      experimentId: c.experimentId,
      status,
      createdAt: c.createdAt,
      updatedAt: new Date(now).toISOString(),
      metric: c.metric,
      mode: c.mode,
      ...(c.metrics && c.metrics.length > 1
        ? { metrics: [...c.metrics], modes: [...(c.modes ?? c.metrics.map(() => c.mode))] }
        : {}),
      seed: c.seed,
      options: c.savedOptions,
      space: spaceToJson(c.space),
      trialCount: this.trialCount,
      eventCount: this.log.count,
      searcher: { name: c.searcher.name, state: searcherState },
      scheduler: { name: c.scheduler.name, state: schedulerState },
    };
    await writeJsonAtomic(join(c.dir, "experiment.json"), record);
  }
}

/**
 * How many trial processes the runner has an executor start ahead at most (warm starts): two,
 * so that while the slots run short trials the next two processes start side by side (on a
 * 2-core machine one at a time left a core idle), and a long trial's successors cost at most two
 * idle processes.
 */
const WARM_AHEAD = 2;

/** Keys the runner fills in; not user metrics. */
export const AUTO_KEYS: ReadonlySet<string> = new Set([
  "training_iteration",
  "time_this_iter_s",
  "time_total_s",
  "timestamp",
  "date",
  "trial_id",
  "iterations_since_restore",
  "time_since_restore",
  "done",
  "checkpoint_dir_name",
]);

/** The keys a user reported (not the ones the runner fills in), for messages. */
function userKeys(flat: Readonly<Record<string, JsonValue>>): string {
  return Object.keys(flat).filter((k) => !AUTO_KEYS.has(k)).join(", ") || "nothing";
}

/** The CPUs and GPUs per worker a trial holds, defaults filled in. */
function current(r: Resources): TrialResources {
  return { cpu: r.cpu ?? 1, gpu: r.gpu ?? 0 };
}

/** What a trial holds in all: its resources times its workers. */
function demand(r: Resources): TrialResources {
  const w = r.workers ?? 1;
  return { cpu: (r.cpu ?? 1) * w, gpu: (r.gpu ?? 0) * w };
}

/** Resources for messages: `cpu=2, gpu=0` (per worker, with the workers). */
function show(r: Resources): string {
  const c = current(r);
  const w = r.workers && r.workers > 1 ? ` per worker x ${r.workers} workers` : "";
  return `cpu=${c.cpu}, gpu=${c.gpu}${w}`;
}

function checkDecision(d: Decision, name: string, r: Runner): Decision {
  const problem = validateDecision(d, r.trials);
  if (problem) {
    r.fatal ??= new PluginError(name, "onReport", new TypeError(problem));
    return { kind: "continue" };
  }
  return d;
}

/** Re-exported from `layout.ts`, where the trial folder's names live. */
export { WORK_DIR };

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function hasEntry(dir: string, name: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) if (e.name === name) return true;
  } catch { /* gone */ }
  return false;
}

/** Creates a trial's own folder if missing; refuses anything but a real folder there. */
function ensureWorkDir(path: string): void {
  try {
    const info = Deno.lstatSync(path);
    if (info.isDirectory) return;
    throw new TuneError(`"${path}" is not a folder (a trial's own folder must be one)`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  Deno.mkdirSync(path);
}

function isoLocal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}-${
    p(d.getMinutes())
  }-${p(d.getSeconds())}`;
}
