/**
 * The event loop. One loop owns all state: it asks the searcher for configs while
 * slots are free, starts trials through the executor, and for every report appends it to the
 * trial's `result.jsonl`, asks the stop criteria and the scheduler for a decision, tells the
 * searcher and the callbacks, then acknowledges the trial. State changes reach the disk before
 * they are acknowledged.
 *
 * @module
 */

import { join } from "./_path.ts";
import { nameTakenSync } from "./_fs.ts";
import type {
  Ack,
  Callback,
  Decision,
  ExploitRequest,
  RawReport,
  Resources,
  TrialExit,
  TrialHandle,
  TrialOutcome,
} from "./plugin.ts";

import { STAGING_DIR, WORK_DIR } from "./layout.ts";
import type { Config, TrialResources, TrialResult, TrialSnapshot, TrialStatus } from "./trial.ts";
import { errorMessage, PluginError, SandboxViolation, TuneError } from "./errors.ts";
import { printable, toJson } from "./protocol.ts";

import { spaceToJson } from "./space.ts";
import {
  checkpointName,
  type CommitWaiter,
  EventLog,
  type ExperimentRecord,
  materializeTrial,
  ResultWriter,
  STORE_FORMAT,
  writeJsonAtomicSync,
  writeParams,
} from "./store.ts";

import {
  type CheckpointOptions,
  concurrencyGate,
  type ResourceGate,
  type RestoredTrial,
  type RunnerConfig,
  type RunOutcome,
  type StopCriteria,
  type Stopper,
} from "./runner_config.ts";
import { cloneInto, commitCheckpoint, retain } from "./checkpoints.ts";
import { checkDecision, emit, flushCallbacks, plugin, wants } from "./plugin_host.ts";
import {
  AUTO_KEYS,
  checkMetric,
  current,
  demand,
  localDate,
  show,
  snap,
  stopCriterion,
} from "./runner_results.ts";

export {
  AUTO_KEYS,
  type CheckpointOptions,
  concurrencyGate,
  type ResourceGate,
  type RestoredTrial,
  type RunnerConfig,
  type RunOutcome,
  type StopCriteria,
  type Stopper,
};

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

/** The runner's own record of a trial. */
export interface TrialState {
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

/**
 * A report waiting for the loop, then for the journal's write: it is its own
 * {@linkcode CommitWaiter} (no closures per report).
 */
class ReportEvent implements CommitWaiter {
  readonly type = "report" as const;
  /** The answer, once decided. */
  ack: Ack = "stop";
  constructor(
    readonly trial: TrialState,
    readonly raw: RawReport,
    readonly resolve: (a: Ack) => void,
  ) {}
  committed(): void {
    this.resolve(this.ack);
  }
  failed(e: unknown): void {
    const t = this.trial;
    t.action ??= {
      kind: "failed",
      message: `its report could not be recorded: ${errorMessage(e)}`,
    };
    this.resolve("stop");
    t.handle?.stop();
  }
}

type LoopEvent =
  | ReportEvent
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
  /** The next item if one is queued (no promise, no turn), else undefined. */
  take(): T | undefined {
    return this.#items.length ? this.#items.shift() : undefined;
  }
  next(): Promise<T> {
    if (this.#items.length) return Promise.resolve(this.#items.shift()!);
    return new Promise((r) => (this.#waiter = r));
  }
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

/** The experiment's event loop: one instance per run. */
export class Runner {
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
  /** Which callback hooks some callback has (see `wants`). */
  readonly hooks = new Map<string, boolean>();
  /** The experiment's `resources`, the one object every trial holds until it is given others. */
  readonly defaultResources: Resources;
  /** The frozen `{ cpu, gpu }` snapshots show, per resources object (see `snap`). */
  readonly resourceViews = new WeakMap<Resources, Readonly<TrialResources>>();
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

  // Methods kept in their own modules (checkpoints, plugin host, result building).
  commitCheckpoint = commitCheckpoint;
  retain = retain;
  cloneInto = cloneInto;
  plugin = plugin;
  wants = wants;
  emit = emit;
  flushCallbacks = flushCallbacks;
  snap = snap;
  stopCriterion = stopCriterion;
  checkMetric = checkMetric;
  localDate = localDate;

  constructor(c: RunnerConfig) {
    this.c = c;
    this.defaultResources = { ...c.resources };
    this.objectives = c.metrics ?? [c.metric];
    // Messages carry what trials sent (metric names, error texts): no terminal control codes.
    const warn = c.warn ?? ((m: string) => console.warn(`tunebox: ${m}`));
    this.warn = (m) => warn(printable(m));
  }

  async run(): Promise<RunOutcome> {
    const c = this.c;
    // The loop writes the journal at the end of each turn, and before anything in a turn that
    // may wait (checkpoint and folder files, stopping trials): no timer per macrotask.
    this.log = await EventLog.open(c.dir, { flushTimer: false });
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
    this.save(true, "running");
    if (c.callbacks.length) {
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
    }

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
        if (!this.stopping && !this.fatal) {
          // Most turns of a busy experiment cannot start anything: no call, no promise then.
          if (this.mayFill()) await this.fill();
          else this.warmNext();
        }
        if (this.running === 0) {
          if (!(this.stopping || this.fatal || this.finished())) this.fatal = this.stuck();
          break;
        }
        // The end of a turn: one write of what the journal queued, then the acknowledgements.
        if (!this.queue.size) this.log.flush();
        // An event already queued is taken without a turn; a report without a checkpoint is
        // handled synchronously.
        const pending = this.handle(this.queue.take() ?? await this.queue.next());
        if (pending) await pending;
      }
    } catch (e) {
      await this.loopFailed(e);
    } finally {
      if (budget !== undefined) clearTimeout(budget);
      for (const [s, h] of signals) Deno.removeSignalListener(s, h);
      // Guarded here (as flushCallbacks and emit below): V8 compiles a function at its first
      // call, and an experiment without warm starts or callbacks never needs these.
      if (this.warmIds.size) this.dropWarm();
      this.log.flush();
      await c.executor.close?.();
    }
    const snapshots: TrialSnapshot[] = [];
    const histories = new Map<string, TrialResult[]>();
    for (const t of this.order) {
      snapshots.push(this.snap(t));
      histories.set(t.id, t.history);
    }
    if (this.c.callbacks.length) {
      this.emit("onExperimentEnd", {
        trials: snapshots,
        interrupted: this.interrupted || this.budgetExhausted,
      });
    }
    if (this.chains.size) await this.flushCallbacks();
    if (this.c.trialFolders === "end") await this.writeFolders();
    this.save(true, this.fatal ? "failed" : this.interrupted ? "interrupted" : "finished");
    this.log.close();
    return {
      trials: snapshots,
      histories,
      interrupted: this.interrupted,
      budgetExhausted: this.budgetExhausted,
      ...(this.fatal ? { fatal: this.fatal } : {}),
    };
  }

  /**
   * Why the loop cannot go on while no trial runs, the experiment not finished (a method of its
   * own, as {@linkcode Runner.loopFailed}: V8 compiles it only when it happens).
   */
  stuck(): Error {
    if (this.searcherWaiting) {
      return new PluginError(
        this.c.searcher.name,
        "suggest",
        new Error('it answered "wait" while no trial was running, so it would wait forever'),
      );
    }
    // Nothing runs, nothing could start, and nothing else will wake the loop.
    return new TuneError(
      `No trial can start: ${this.runnable.size} trial(s) wait, but none fits the resources ` +
        `(maxConcurrent and resources: { cpu, gpu } per trial)`,
    );
  }

  /** The loop threw: the experiment fails with that error, and no trial process is left behind. */
  async loopFailed(e: unknown): Promise<void> {
    this.fatal ??= e instanceof Error ? e : new Error(String(e));
    this.log.flush();
    const handles = this.order.flatMap((
      t,
    ) => (t.status === "running" && t.handle ? [t.handle] : []));
    await Promise.allSettled(handles.map((h) => h.stop()));
  }

  /**
   * Whether {@linkcode Runner.fill} may do anything beyond {@linkcode Runner.warmNext}: exploits
   * to apply, a scheduler that wants trials made ahead, or a free slot.
   */
  mayFill(): boolean {
    return this.clones.length > 0 || (this.c.scheduler.pendingTrials ?? 1) > 1 ||
      this.c.gate.canStart();
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
        env: NO_ENV,
        resources: t.resources ? { ...this.c.resources, ...t.resources } : this.defaultResources,
        materialized: !this.c.executor.lazyTrialDir || nameTakenSync(join(this.c.dir, t.id)),
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
      if (this.clones.length) await this.applyClones();
      if (ahead > 1) {
        let pending = [...this.runnable].filter((t) => t.status === "pending").length;
        while (
          pending < ahead && !this.searcherDone && this.trialCount < this.c.totalTrials &&
          this.create()
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
        if (this.create()) continue;
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
        if (this.clones.length) await this.applyClones();
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

  create(): boolean {
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
    const dir = this.trialPath(id);
    const workDir = `${dir}/${WORK_DIR}`;
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
        Deno.mkdirSync(workDir);
      }
      writeParams(dir, s);
    }
    const t: TrialState = {
      id,
      seq: this.order.length,
      status: "pending",
      config: s,
      dir,
      workDir,
      iteration: 0,
      history: [],
      checkpoints: [],
      failures: 0,
      timeTotalS: 0,
      runIterations: 0,
      runTimeS: 0,
      priority: false,
      env: NO_ENV,
      // Shared until a reallocation gives the trial its own (resources are replaced, never
      // changed in place).
      resources: this.defaultResources,
      materialized: !lazy,
    };
    this.trials.set(id, t);
    this.order.push(t);
    this.runnable.add(t);
    this.log.append({ trial: id, event: "created", config: s });
    this.plugin(c.scheduler.name, "onTrialAdd", () => c.scheduler.onTrialAdd?.(this.snap(t)));
    if (this.saveDue()) this.save(false);
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
          new Promise<Ack>((resolve) => this.queue.push(new ReportEvent(t, raw, resolve))),
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

  /** Handles one event; a promise only when it has to wait (a checkpoint, a trial's end). */
  handle(ev: LoopEvent): void | Promise<void> {
    switch (ev.type) {
      case "report": {
        let ack: Ack | Promise<Ack>;
        try {
          ack = this.onReport(ev.trial, ev.raw);
        } catch (e) {
          ack = this.reportFailed(ev.trial, e);
        }
        if (typeof ack === "string") return this.acknowledge(ev, ack);
        return ack.then(
          (a) => this.acknowledge(ev, a),
          (e) => this.acknowledge(ev, this.reportFailed(ev.trial, e)),
        );
      }
      case "exit":
        return this.onExit(ev.trial, ev.exit);
      default:
        return this.handleRare(ev);
    }
  }

  /**
   * {@linkcode Runner.handle} for a trial's timeout, the time budget and a signal: a method of its
   * own, compiled only when one happens.
   */
  handleRare(ev: LoopEvent): void {
    switch (ev.type) {
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

  /** Whatever a trial sent, it fails that trial alone, never the driver: "stop". */
  reportFailed(t: TrialState, e: unknown): Ack {
    if (t.status === "running" && (!t.action || t.action.kind !== "failed")) {
      t.action = {
        kind: "failed",
        message: `its report could not be recorded: ${errorMessage(e)}`,
      };
    }
    return "stop";
  }

  /**
   * Answers a report once the journal holds it (group commit: one write per turn), and enforces
   * a stop: a trial told to stop that goes on is killed after the grace.
   */
  acknowledge(ev: ReportEvent, ack: Ack): void {
    ev.ack = ack;
    this.log.onCommitted(ev);
    const t = ev.trial;
    if (ack === "stop" && t.status === "running") t.handle?.stop();
  }

  stopAll(action: Action): void {
    for (const t of this.order) {
      if (t.status !== "running") continue;
      t.action ??= action;
      // Also trials already told to stop: the handle makes sure they do.
      t.handle?.stop();
    }
  }

  /**
   * Records a report and decides what the trial does next: synchronously, unless the report
   * carries a checkpoint to commit first.
   */
  onReport(t: TrialState, raw: RawReport): Ack | Promise<Ack> {
    if (t.status !== "running" || t.action) return "stop";
    const now = Date.now();
    const elapsed = raw.elapsedS ?? 0;
    const metrics = raw.metrics;
    const result: TrialResult = {
      ...metrics,
      training_iteration: t.iteration + 1,
      time_this_iter_s: Math.max(0, elapsed - t.runTimeS),
      time_total_s: t.timeTotalS - t.runTimeS + elapsed,
      timestamp: Math.floor(now / 1000),
      date: this.localDate(now),
      trial_id: t.id,
      iterations_since_restore: t.runIterations + 1,
      time_since_restore: elapsed,
      done: metrics.done === true,
    };
    return raw.checkpointDir
      ? this.onCheckpointReport(t, raw.checkpointDir, result)
      : this.record(t, result, undefined);
  }

  /** Commits a report's checkpoint first, so that the result line can name it. */
  async onCheckpointReport(t: TrialState, staging: string, result: TrialResult): Promise<Ack> {
    const iteration = result.training_iteration;
    let checkpointPath: string | undefined;
    this.log.flush();
    this.materialize(t);
    t.staged = true;
    try {
      checkpointPath = await this.commitCheckpoint(t, staging, iteration, result);
    } catch (e) {
      this.warnOnce(t, "checkpoint", `trial "${t.id}": checkpoint not saved: ${errorMessage(e)}`);
    }
    // The trial may have been stopped meanwhile: its report is recorded all the same.
    return this.record(t, result, checkpointPath);
  }

  /** Records a result (its checkpoint committed, if any) and returns the decision. */
  record(t: TrialState, result: TrialResult, checkpointPath: string | undefined): Ack {
    const c = this.c;
    const iteration = result.training_iteration;
    const elapsed = result.time_since_restore as number;
    const timeTotal = result.time_total_s;
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
    // A first result makes an array of one (a push onto [] reserves room for 17).
    if (t.history.length) t.history.push(recorded);
    else t.history = [recorded];
    this.checkMetric(t, recorded);

    let decision: Decision = CONTINUE;
    const stopReason = c.stop || recorded.done === true
      ? this.stopCriterion(t, recorded)
      : undefined;
    if (stopReason) decision = { kind: "stop", reason: stopReason };
    else {
      // The plugin guard written out (this runs for every report): a throw is the experiment's
      // PluginError.
      let d: Decision | undefined;
      try {
        d = c.scheduler.onReport(this.snap(t), recorded);
      } catch (e) {
        this.fatal ??= new PluginError(c.scheduler.name, "onReport", e);
      }
      if (d !== undefined) decision = checkDecision(d, c.scheduler.name, this);
      if (decision.kind === "reallocate") {
        decision = this.reallocation(t, decision, !!checkpointPath);
      }
    }
    if (c.searcher.onReport) {
      try {
        c.searcher.onReport(t.id, recorded);
      } catch (e) {
        this.fatal ??= new PluginError(c.searcher.name, "onReport", e);
      }
    }
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
    if (decision.kind === "continue") return "continue";
    return this.decide(t, decision, stopReason);
  }

  /**
   * What {@linkcode Runner.record} does with a decision other than `continue` (a method of its
   * own, compiled only when a scheduler or stopper decides so): sets the trial's action, applies
   * a stopper's `stopAll()`, and answers "stop".
   */
  decide(t: TrialState, decision: Decision, stopReason: string | undefined): Ack {
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
    if (this.saveDue()) this.save(false);
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

  /** A trial's end: a promise only when there are files to remove or write first. */
  onExit(t: TrialState, exit: TrialExit): void | Promise<void> {
    // A call of clearTimeout loads Deno's timers (milliseconds, once): none without a timer.
    if (t.timer !== undefined) clearTimeout(t.timer);
    t.writer?.close();
    t.writer = undefined;
    t.handle = undefined;
    t.env = NO_ENV;
    this.running--;
    this.c.gate.release(t.id);
    // Checkpoint staging left by the trial (or by an exploit): never committed now. Listing the
    // folder first spares the common case (nothing staged) a failing remove.
    const inWorkDir = t.materialized && hasEntry(t.workDir, STAGING_DIR);
    if (inWorkDir || t.staged) {
      return this.removeStaging(t, inWorkDir).then(() => this.settle(t, exit));
    }
    return this.settle(t, exit);
  }

  /** Removes the checkpoint staging folders a trial left. */
  async removeStaging(t: TrialState, inWorkDir: boolean): Promise<void> {
    this.log.flush();
    if (inWorkDir) {
      await Deno.remove(join(t.workDir, STAGING_DIR), { recursive: true }).catch(() => {});
    }
    if (t.staged) await Deno.remove(join(t.dir, STAGING_DIR), { recursive: true }).catch(() => {});
  }

  /** What becomes of a trial that ended: by its action, or by how it exited. */
  settle(t: TrialState, exit: TrialExit): void | Promise<void> {
    const action = t.action;
    t.action = undefined;

    if (action?.kind === "interrupt") {
      // Left as "running" in trials.jsonl: a resume restarts it from its checkpoint.
      this.setStatus(t, "pending");
      return;
    }
    if (action?.kind === "stop" || (!action && exit.kind !== "error")) {
      const outcome: TrialOutcome = action?.kind === "stop" ? action.outcome : "completed";
      const reason = action?.kind === "stop" ? action.reason : undefined;
      return this.finish(t, "terminated", outcome, reason);
    }
    return this.settleOther(t, exit, action);
  }

  /**
   * {@linkcode Runner.settle} for a trial paused, reallocated, exploited or failed: a method of
   * its own, compiled only when a trial ends that way.
   */
  settleOther(t: TrialState, exit: TrialExit, action: Action | undefined): void | Promise<void> {
    const c = this.c;
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
      return this.exploit(t, action.from, action.config);
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
    return this.fail(t, exit, full, fatal === true);
  }

  /** A paused trial takes a donor's checkpoint and config (PBT's exploit). */
  async exploit(t: TrialState, from: string, config: Config): Promise<void> {
    if (!(await this.cloneInto(t, from, config, "onReport"))) return;
    this.emit("onTrialEnd", {
      trial: this.snap(t),
      outcome: "paused",
      reason: `exploiting ${from}`,
    });
    t.priority = true;
  }

  /** A trial that failed for good: its error.txt, the warning, its end. */
  async fail(t: TrialState, exit: TrialExit, full: string, fatal: boolean): Promise<void> {
    const stack = exit.kind === "error" && exit.stack ? `\n\n${exit.stack}` : "";
    t.errorText = `${full}${stack}\n`;
    // A failed trial's folder is written now, whatever the executor: its error.txt (with the
    // stack) is what people look for.
    this.log.flush();
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
    this.finish(t, "error", "error", full);
  }

  finish(
    t: TrialState,
    status: "terminated" | "error",
    outcome: TrialOutcome,
    reason?: string,
  ): void {
    this.setStatus(t, status);
    if (reason && status === "terminated") t.reason = reason;
    this.log.append({ trial: t.id, event: status, outcome, ...(reason ? { reason } : {}) });
    this.notifyComplete(t, status === "error", outcome === "stopped");
    this.applyStops();
    if (this.wants("onTrialEnd")) {
      this.emit("onTrialEnd", { trial: this.snap(t), outcome, ...(reason ? { reason } : {}) });
    }
    if (this.saveDue()) this.save(false);
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

  /**
   * Applies what the scheduler asks for besides its decision (exploits of paused trials, stops
   * of other trials). Called for every report: a scheduler with neither hook (FIFO) makes it a
   * check of two properties, and {@linkcode Runner.takeRequests} is never compiled.
   */
  applyStops(): void {
    const s = this.c.scheduler;
    if (s.takeExploits || s.takeStops) this.takeRequests();
  }

  /** Takes the scheduler's exploit and stop requests and applies them. */
  takeRequests(): void {
    const exploits = this.c.scheduler.takeExploits
      ? this.plugin(this.c.scheduler.name, "takeExploits", () => this.c.scheduler.takeExploits!())
      : undefined;
    if (exploits?.length) this.clones.push(...exploits);
    const stops = this.c.scheduler.takeStops
      ? this.plugin(this.c.scheduler.name, "takeStops", () => this.c.scheduler.takeStops!())
      : undefined;
    if (!stops) return; // most schedulers (FIFO) have none: no array made per report
    for (const s of stops) {
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
    this.log.flush();
    const batch = this.order.filter((t) => !t.materialized);
    for (let i = 0; i < batch.length; i += 16) {
      await Promise.all(batch.slice(i, i + 16).map((t) => this.writeFolder(t)));
    }
  }

  // ------------------------------------------------------------------ helpers

  warnOnce(t: TrialState, key: string, message: string): void {
    t.warned ??= new Set();
    if (t.warned.has(key)) return;
    t.warned.add(key);
    this.warn(message);
  }

  /**
   * Whether an unforced {@linkcode Runner.save} would write now (at most once a second): checked
   * before calling it, so that the common case makes no promise and takes no turn.
   */
  saveDue(): boolean {
    return Date.now() - this.lastSave >= 1000;
  }

  /**
   * A trial's folder: `join(dir, id)` made by concatenation (the experiment's folder normalised
   * once; ids are `<experiment>_<n>`), which spares each trial the path normalisation's garbage.
   */
  trialPath(id: string): string {
    this.#root ??= join(this.c.dir);
    return this.#root.endsWith("/") ? this.#root + id : `${this.#root}/${id}`;
  }
  #root: string | undefined;

  /** Rewrites `experiment.json` (synchronously: a small file), at most once a second unless forced. */
  save(force: boolean, status: ExperimentRecord["status"] = "running"): void {
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
    writeJsonAtomicSync(join(c.dir, "experiment.json"), record);
  }
}

/**
 * How many trial processes the runner has an executor start ahead at most (warm starts): two,
 * so that while the slots run short trials the next two processes start side by side (on a
 * 2-core machine one at a time left a core idle), and a long trial's successors cost at most two
 * idle processes.
 */
const WARM_AHEAD = 2;

/** The decision of a report nobody stops (one object). */
const CONTINUE: Decision = Object.freeze({ kind: "continue" });

/** The environment of a trial that does not run (no object per trial). */
const NO_ENV: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Re-exported from `layout.ts`, where the trial folder's names live. */
export { WORK_DIR };

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
