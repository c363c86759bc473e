/**
 * The Scheduler contract suite: every scheduler runs it (`schedulerContract("asha", () =>
 * ashaScheduler())`), then its own cases. Third-party schedulers can run it too.
 *
 * It drives the scheduler through whole experiments with {@linkcode simulate}, a small
 * deterministic runner loop that applies decisions the way Tunebox's runner does (pause keeps
 * the checkpoint and frees the slot, exploit copies the donor's checkpoint and config, stop
 * requests end other trials, reallocate restarts a trial from the checkpoint of its report with
 * new CPUs), with checkpoints held in memory and each trial's CPUs counted against the total. It checks that decisions are
 * well formed, that the experiment always finishes (no trial left waiting forever), that the
 * same seed gives the same decisions, that snapshot/restore in the middle of an experiment
 * gives the very same decisions afterwards, and that unknown trial ids and results without
 * the metric do not crash it.
 *
 * @module
 */

import assert from "#assert";
import {
  checkPluginShape,
  type Decision,
  type Scheduler,
  type StopRequest,
  validateDecision,
} from "../core/plugin.ts";
import type {
  Config,
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "../core/trial.ts";
import { Rng } from "../core/random.ts";

function ok(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}

/** A trainable for {@linkcode simulate}: its model state is an in-memory value. */
export interface SimTrainable<S> {
  /** A fresh model for a config. */
  init(config: Config, rng: Rng): S;
  /** One training iteration: the new state and the metrics to report. */
  step(
    state: S,
    config: Config,
    iteration: number,
    rng: Rng,
  ): { state: S; metrics: Record<string, JsonValue> };
  /** The trainable ends by itself after this many iterations. */
  readonly iterations: number;
}

/** Options of {@linkcode simulate}. */
export interface SimOptions {
  /** One config per trial. */
  readonly configs: readonly Config[];
  /** The metric. @default "loss" */
  readonly metric?: string;
  /** Its mode. @default "min" */
  readonly mode?: Mode;
  /** Seed of the experiment (scheduler setup, noise, timing). @default 0 */
  readonly seed?: number;
  /** Trials running at once. @default 2 */
  readonly concurrency?: number;
  /**
   * CPUs all trials share (each trial starts with 1), told to the scheduler as
   * `SchedulerContext.resources`. @default `concurrency`
   */
  readonly cpus?: number;
  /** A checkpoint every this many iterations; 0 for none. @default 1 */
  readonly checkpointEvery?: number;
  /** Seconds one iteration takes, per config (drives `time_total_s` and the event order). */
  readonly secondsPerIteration?: (config: Config, trialIndex: number) => number;
  /** Create trials only when a slot is free and no trial is pending (as the runner does). @default false */
  readonly lazy?: boolean;
  /**
   * A trial that pauses or stops frees its slot only after the next report, as a real trial
   * process takes a moment to exit: other reports can arrive before a new trial is created.
   * @default false
   */
  readonly slowRelease?: boolean;
  /** At this hook call, snapshot the scheduler and from then on check a restored twin. */
  readonly twinAt?: number;
  /** Makes the twin (a fresh scheduler with the same options). */
  readonly makeTwin?: () => Scheduler;
  /** Experiment folder (trial folders are `<dir>/<id>`); a temporary one by default. */
  readonly dir?: string;
  /** Safety cap on reports. @default 200000 */
  readonly maxReports?: number;
}

/** A checkpoint of {@linkcode simulate}: the model state itself. */
export interface SimCheckpoint<S> {
  /** The folder name the runner would have committed. */
  readonly path: string;
  /** The iteration it belongs to. */
  readonly iteration: number;
  /** The model state. */
  readonly state: S;
}

/** One trial of {@linkcode simulate}. */
export interface SimTrial<S> {
  /** Trial id. */
  readonly id: string;
  /** Its creation index. */
  readonly index: number;
  /** Current config. */
  config: Config;
  /** Status at the end. */
  status: TrialStatus;
  /** Last reported iteration. */
  iteration: number;
  /** Seconds trained (own clock). */
  timeTotalS: number;
  /** Latest checkpoint. */
  checkpoint?: SimCheckpoint<S>;
  /** Every result it reported. */
  readonly results: TrialResult[];
  /** Every config it ran with and from which iteration on. */
  readonly configs: { readonly from: number; readonly config: Config }[];
  /** The CPUs and GPUs it holds (1 CPU until a `reallocate`). */
  resources: TrialResources;
  /** Every allocation it ran with and from which iteration on. */
  readonly allocations: { readonly from: number; readonly resources: TrialResources }[];
  /** Why it was stopped, if it was. */
  reason?: string;
  /** Model state while running. */
  state?: S;
  /** Resumes before other trials (exploited). */
  priority: boolean;
  /** Whether it was ever started. */
  started: boolean;
  /** Next report time (event clock). */
  due: number;
}

/** What {@linkcode simulate} returns. */
export interface SimResult<S> {
  /** The trials, in creation order. */
  readonly trials: SimTrial<S>[];
  /** Every decision, in order. */
  readonly decisions: { readonly trialId: string; readonly decision: Decision }[];
  /** The trial ids chooseNext returned (undefined included). */
  readonly chosen: (string | undefined)[];
  /** Every stop request taken. */
  readonly stops: StopRequest[];
  /** Training iterations run in all (the compute spent). */
  readonly iterations: number;
  /** Hook calls made (for choosing `twinAt`). */
  readonly calls: number;
  /** Times the loop had to start a trial the scheduler did not choose while nothing ran. */
  readonly fallbacks: number;
}

/**
 * Runs an experiment against a scheduler in memory, the way the runner would, and checks every
 * decision is well formed. Deterministic for a given seed.
 *
 * @throws {AssertionError} when the scheduler returns a malformed decision or stop request,
 *   exploits a trial that has no checkpoint, or (with a twin) decides differently after restore.
 */
export function simulate<S>(
  scheduler: Scheduler,
  trainable: SimTrainable<S>,
  options: SimOptions,
): SimResult<S> {
  const metric = options.metric ?? "loss", mode = options.mode ?? "min";
  const seed = options.seed ?? 0;
  const concurrency = options.concurrency ?? 2;
  const cpus = options.cpus ?? concurrency;
  const every = options.checkpointEvery ?? 1;
  const dir = options.dir ?? Deno.makeTempDirSync({ prefix: "tunebox_sim_" });
  const exp = `sim${seed}`;
  const trials: SimTrial<S>[] = [];
  const byId = new Map<string, SimTrial<S>>();
  const decisions: { trialId: string; decision: Decision }[] = [];
  const chosen: (string | undefined)[] = [];
  const stops: StopRequest[] = [];
  let iterations = 0, calls = 0, fallbacks = 0, reports = 0;
  let now = 0;
  let twin: Scheduler | undefined;
  const ctx = {
    metric,
    mode,
    seed,
    resources: { total: { cpu: cpus, gpu: 0 }, trial: { cpu: 1, gpu: 0 } },
  };

  // Calls a hook on the scheduler and, once the twin exists, on the twin: both must agree.
  const call = <T>(hook: string, fn: (s: Scheduler) => T): T => {
    if (options.twinAt !== undefined && calls === options.twinAt && !twin) {
      const state = scheduler.snapshot?.();
      const json = JSON.parse(JSON.stringify(state ?? null));
      assert.deepStrictEqual(json, state ?? null, "snapshot() must be plain JSON");
      ok(options.makeTwin, "twinAt needs makeTwin");
      const fresh = options.makeTwin();
      fresh.setup?.(ctx);
      if (state !== undefined) fresh.restore?.(json);
      twin = fresh;
    }
    calls++;
    const out = fn(scheduler);
    if (twin) {
      const other = fn(twin);
      assert.deepStrictEqual(
        other,
        out,
        `after snapshot/restore, ${hook} (call ${calls}) decided differently`,
      );
    }
    return out;
  };

  const snap = (t: SimTrial<S>): TrialSnapshot =>
    Object.freeze({
      id: t.id,
      status: t.status,
      config: t.config,
      iteration: t.iteration,
      dir: `${dir}/${t.id}`,
      ...(t.results.length ? { lastResult: t.results.at(-1)! } : {}),
      ...(t.checkpoint ? { checkpoint: `${dir}/${t.id}/${t.checkpoint.path}` } : {}),
      resources: Object.freeze({ ...t.resources }),
    });

  const create = (): SimTrial<S> => {
    const index = trials.length;
    const t: SimTrial<S> = {
      id: `${exp}_${String(index).padStart(5, "0")}`,
      index,
      config: options.configs[index],
      status: "pending",
      iteration: 0,
      timeTotalS: 0,
      results: [],
      configs: [{ from: 0, config: options.configs[index] }],
      resources: { cpu: 1, gpu: 0 },
      allocations: [{ from: 0, resources: { cpu: 1, gpu: 0 } }],
      priority: false,
      started: false,
      due: 0,
    };
    trials.push(t);
    byId.set(t.id, t);
    call("onTrialAdd", (s) => s.onTrialAdd?.(snap(t)));
    return t;
  };

  const finish = (t: SimTrial<S>, status: TrialStatus, reason?: string): void => {
    t.status = status;
    if (reason) t.reason = reason;
    t.state = undefined;
    call("onComplete", (s) => s.onComplete?.(snap(t), t.results.at(-1)));
    applyRequests();
  };

  const applyRequests = (): void => {
    const requests = call("takeStops", (s) => s.takeStops?.() ?? []);
    ok(Array.isArray(requests), `takeStops() must return an array`);
    for (const r of requests) {
      ok(typeof r.reason === "string" && r.reason, `a stop request needs a reason`);
      const t = byId.get(r.trialId);
      ok(t, `takeStops() named unknown trial "${r.trialId}"`);
      stops.push({ trialId: r.trialId, reason: r.reason });
      if (t.status === "running" || t.status === "paused" || t.status === "pending") {
        finish(t, "terminated", r.reason);
      }
    }
    const takeExploits = (scheduler as { takeExploits?: () => unknown }).takeExploits;
    if (!takeExploits) return;
    const exploits = call(
      "takeExploits",
      (s) => (s as { takeExploits?: () => unknown }).takeExploits?.() ?? [],
    ) as { trialId: string; from: string; config: Config }[];
    for (const e of exploits) {
      const t = byId.get(e.trialId), donor = byId.get(e.from);
      ok(t && donor, `takeExploits() named an unknown trial: ${JSON.stringify(e)}`);
      ok(donor.checkpoint, `takeExploits() cloned "${e.from}", which has no checkpoint`);
      ok(t.status === "paused" || t.status === "pending", `exploit of a ${t.status} trial`);
      installClone(t, donor, e.config);
    }
  };

  const installClone = (t: SimTrial<S>, donor: SimTrial<S>, config: Config): void => {
    t.checkpoint = {
      path: `checkpoint_${String(t.iteration).padStart(6, "0")}`,
      iteration: t.iteration,
      state: structuredClone(donor.checkpoint!.state),
    };
    t.config = config;
    t.configs.push({ from: t.iteration, config });
  };

  const start = (t: SimTrial<S>): void => {
    t.status = "running";
    t.priority = false;
    t.started = true;
    t.state = t.checkpoint
      ? structuredClone(t.checkpoint.state)
      : trainable.init(t.config, new Rng(seed * 7919 + t.index));
    t.due = now + (options.secondsPerIteration?.(t.config, t.index) ?? 10);
    if (t.iteration >= trainable.iterations) finish(t, "terminated");
  };

  const running = () => trials.filter((t) => t.status === "running");
  const usedCpu = () => running().reduce((sum, t) => sum + t.resources.cpu, 0);

  const fill = (held = 0): void => {
    for (;;) {
      // The runner keeps `pendingTrials` created ahead even with no free slot, reading it
      // before each round of creation.
      const ahead = scheduler.pendingTrials ?? 1;
      if (options.lazy && ahead > 1) {
        let pending = trials.filter((t) => t.status === "pending").length;
        while (pending < ahead && trials.length < options.configs.length) create(), pending++;
      }
      if (running().length + held >= concurrency) return;
      let runnable = trials.filter((t) => t.status === "pending" || t.status === "paused");
      const canCreate = trials.length < options.configs.length;
      if (canCreate && (!options.lazy || !runnable.some((t) => t.status === "pending"))) {
        create();
        if (!options.lazy) continue;
        runnable = trials.filter((t) => t.status === "pending" || t.status === "paused");
      }
      if (!runnable.length) return;
      let pick = runnable.find((t) => t.priority);
      if (!pick) {
        let id: string | undefined;
        if (scheduler.chooseNext) {
          id = call("chooseNext", (s) => s.chooseNext!(runnable.map(snap)));
          chosen.push(id);
          applyRequests();
        } else {
          id = (runnable.find((t) => t.status === "paused") ?? runnable[0]).id;
        }
        if (id !== undefined) {
          pick = byId.get(id);
          ok(
            pick && runnable.includes(pick),
            `chooseNext() returned "${id}", which is not one of the runnable trials`,
          );
          if (pick.status !== "pending" && pick.status !== "paused") continue; // stopped meanwhile
        } else {
          if (running().length) return;
          const left = trials.filter((t) => t.status === "pending" || t.status === "paused");
          if (!left.length) continue;
          fallbacks++;
          pick = left.find((t) => t.status === "paused") ?? left[0];
        }
      }
      // A trial given more CPUs waits until they are free, as in the runner.
      if (usedCpu() + held + pick.resources.cpu > cpus + 1e-9) {
        if (running().length || held) return;
        assert.fail(
          `trial ${pick.id} holds ${pick.resources.cpu} CPUs, more than the ${cpus} that exist`,
        );
      }
      start(pick);
    }
  };

  const report = (t: SimTrial<S>): void => {
    const r = new Rng(seed * 104729 + t.index * 1009 + t.iteration);
    const out = trainable.step(t.state as S, t.config, t.iteration, r);
    t.state = out.state;
    t.iteration++;
    iterations++;
    reports++;
    const dt = options.secondsPerIteration?.(t.config, t.index) ?? 10;
    t.timeTotalS += dt;
    const checkpointed = every > 0 && t.iteration % every === 0;
    if (checkpointed) {
      t.checkpoint = {
        path: `checkpoint_${String(t.iteration).padStart(6, "0")}`,
        iteration: t.iteration,
        state: structuredClone(t.state),
      };
    }
    const result: TrialResult = Object.freeze({
      ...out.metrics,
      training_iteration: t.iteration,
      time_total_s: t.timeTotalS,
      time_this_iter_s: dt,
      timestamp: Math.floor(now),
      trial_id: t.id,
      ...(checkpointed ? { checkpoint_dir_name: t.checkpoint!.path } : {}),
    });
    t.results.push(result);
    const d = call("onReport", (s) => s.onReport(snap(t), result));
    checkDecision(d, byId);
    decisions.push({ trialId: t.id, decision: d });
    applyRequests();
    if (t.status !== "running") return; // ended by a stop request meanwhile
    switch (d.kind) {
      case "continue":
        if (t.iteration >= trainable.iterations) finish(t, "terminated");
        else t.due = now + dt;
        return;
      case "stop":
        return finish(t, "terminated", d.reason);
      case "pause":
        t.status = "paused";
        t.state = undefined;
        return;
      case "exploit": {
        const donor = byId.get(d.from)!;
        ok(donor.checkpoint, `exploit from "${d.from}", which has no checkpoint`);
        installClone(t, donor, d.config);
        t.status = "paused";
        t.state = undefined;
        t.priority = true;
        return;
      }
      case "reallocate":
        ok(
          d.resources.cpu <= cpus && d.resources.gpu === 0,
          `reallocate gave ${JSON.stringify(d.resources)}; the experiment has ${cpus} CPUs, no GPU`,
        );
        // Restarted from the checkpoint of this report only; without one it goes on.
        if (!checkpointed) {
          if (t.iteration >= trainable.iterations) finish(t, "terminated");
          else t.due = now + dt;
          return;
        }
        t.resources = { cpu: d.resources.cpu, gpu: d.resources.gpu };
        t.allocations.push({ from: t.iteration, resources: { ...t.resources } });
        t.status = "paused";
        t.state = undefined;
        t.priority = true;
        return;
    }
  };

  try {
    call("setup", (s) => s.setup?.(ctx));
    fill();
    let held = 0;
    for (;;) {
      if (!running().length) {
        if (!held) break;
        held = 0; // the last exiting process is gone
        fill();
        if (!running().length) break;
      }
      ok(reports < (options.maxReports ?? 200000), "simulate: too many reports");
      const next = running().reduce((a, b) => (b.due < a.due ? b : a));
      now = next.due;
      report(next);
      held = options.slowRelease && next.status !== "running" ? 1 : 0;
      fill(held);
    }
  } finally {
    if (!options.dir) Deno.removeSync(dir, { recursive: true });
  }
  return { trials, decisions, chosen, stops, iterations, calls, fallbacks };
}

/**
 * Checks a decision with the runner's own check ({@linkcode validateDecision}), and that a
 * `continue` or `pause` carries nothing else.
 *
 * @param d What `onReport` returned.
 * @param trials The experiment's trials by id, to check an exploit's donor.
 * @returns The decision.
 * @throws {AssertionError} when the decision is not valid.
 */
export function checkDecision(d: unknown, trials?: ReadonlyMap<string, unknown>): Decision {
  const problem = validateDecision(d, trials);
  if (problem) assert.fail(`onReport: ${problem}`);
  const x = d as Record<string, unknown>;
  if (x.kind === "continue" || x.kind === "pause") {
    assert.deepStrictEqual(Object.keys(x), ["kind"], `a ${x.kind} decision has only "kind"`);
  }
  return d as Decision;
}

/** The default trainable of the contract: noisy learning curves that cross. */
export const CURVE_TRAINABLE: SimTrainable<{ loss: number }> = {
  iterations: 30,
  init: () => ({ loss: 3 }),
  step(state, config, iteration, rng) {
    const lr = config.lr as number, width = config.width as number;
    // The asymptote depends on lr and width; slow learners may end better.
    const floor = Math.abs(Math.log10(lr) + 2) * 0.4 + 32 / width * 0.1;
    const tau = 2 + 10 * Math.abs(Math.log10(lr) + 3) / 3;
    const loss = floor + (state.loss - floor) * Math.exp(-1 / tau);
    return {
      state: { loss },
      metrics: { loss: loss + rng.normal(0, 0.01), acc: 1 - loss / 4, iteration },
    };
  },
};

/** Configs for the contract: `lr` and `width`, as PBT mutations in the tests expect. */
export function contractConfigs(n: number, seed = 0): Config[] {
  const rng = new Rng(seed + 99);
  const widths = [16, 32, 64, 128];
  return Array.from({ length: n }, () => ({
    lr: 10 ** rng.uniform(-4, 0),
    width: rng.pick(widths),
    epochs: 30,
  }));
}

/** The resources the contract's lone scheduler calls are set up with: 3 CPUs, 1 per trial. */
const CONTRACT_RESOURCES = { total: { cpu: 3, gpu: 0 }, trial: { cpu: 1, gpu: 0 } };

/** Options of {@linkcode schedulerContract}. */
export interface SchedulerContractOptions {
  /** Trials per simulated experiment. @default 12 */
  readonly trials?: number;
  /** Trials running at once. @default 3 */
  readonly concurrency?: number;
  /** Configs (default: {@linkcode contractConfigs}). */
  readonly configs?: (n: number, seed: number) => Config[];
}

/**
 * Registers the Scheduler contract tests for a scheduler factory. The factory must return a
 * fresh scheduler with the same options each time.
 *
 * @example
 * ```ts ignore
 * import { schedulerContract } from "./scheduler.ts";
 * import { fifoScheduler } from "../plugins/schedulers/fifo.ts";
 * schedulerContract("fifo", () => fifoScheduler());
 * ```
 */
export function schedulerContract(
  name: string,
  factory: () => Scheduler,
  options: SchedulerContractOptions = {},
): void {
  const n = options.trials ?? 12;
  const concurrency = options.concurrency ?? 3;
  const configs = options.configs ?? contractConfigs;
  const seconds = (_c: Config, i: number) => 8 + (i % 3) * 3;
  const run = (seed: number, mode: Mode, extra: Partial<SimOptions> = {}) =>
    simulate(factory(), CURVE_TRAINABLE, {
      configs: configs(n, seed),
      seed,
      mode,
      metric: mode === "min" ? "loss" : "acc",
      concurrency,
      secondsPerIteration: seconds,
      ...extra,
    });

  Deno.test(`schedulerContract(${name}): is a well-formed plugin`, () => {
    const s = factory();
    assert.equal(checkPluginShape("scheduler", s), undefined);
    ok(typeof s.name === "string" && s.name.length > 0);
  });

  for (const mode of ["min", "max"] as const) {
    Deno.test(
      `schedulerContract(${name}): well-formed decisions and every trial ends (${mode})`,
      () => {
        for (const [lazy, slowRelease] of [[false, false], [true, false], [true, true]]) {
          const r = run(3, mode, { lazy, slowRelease });
          assert.equal(r.trials.length, n);
          for (const t of r.trials) {
            assert.equal(t.status, "terminated", `trial ${t.id} was left ${t.status}`);
            ok(t.iteration >= 1, `trial ${t.id} never ran`);
          }
          assert.equal(r.fallbacks, 0, "nothing ran and chooseNext() chose no trial");
          ok(r.decisions.length >= n);
        }
      },
    );
  }

  Deno.test(`schedulerContract(${name}): the same seed gives the same decisions`, () => {
    const a = run(5, "min"), b = run(5, "min");
    assert.deepStrictEqual(b.decisions, a.decisions);
    assert.deepStrictEqual(b.chosen, a.chosen);
    assert.deepStrictEqual(b.stops, a.stops);
  });

  Deno.test(
    `schedulerContract(${name}): snapshot/restore mid-experiment gives the same decisions`,
    () => {
      const whole = run(7, "min");
      for (const frac of [0, 0.2, 0.5, 0.8]) {
        const twinAt = Math.max(1, Math.floor(whole.calls * frac));
        // simulate() checks every later hook call against the restored twin.
        const r = run(7, "min", { twinAt, makeTwin: factory });
        assert.deepStrictEqual(r.decisions, whole.decisions);
      }
    },
  );

  Deno.test(`schedulerContract(${name}): unknown trial ids do not crash it`, () => {
    const s = factory();
    s.setup?.({ metric: "loss", mode: "min", seed: 1, resources: CONTRACT_RESOURCES });
    const dir = Deno.makeTempDirSync({ prefix: "tunebox_contract_" });
    try {
      const ghost: TrialSnapshot = {
        id: "ghost_00042",
        status: "running",
        config: configs(1, 0)[0],
        iteration: 1,
        dir: `${dir}/ghost_00042`,
        checkpoint: `${dir}/ghost_00042/checkpoint_000001`,
      };
      const result: TrialResult = {
        loss: 1,
        training_iteration: 1,
        time_total_s: 10,
        time_this_iter_s: 10,
        timestamp: 0,
        trial_id: ghost.id,
      };
      checkDecision(s.onReport(ghost, result));
      s.onComplete?.({ ...ghost, id: "never_seen", status: "terminated" }, result);
      s.onComplete?.({ ...ghost, id: "never_seen_2", status: "error" }, undefined);
      const pick = s.chooseNext?.([{ ...ghost, id: "pending_x", status: "pending", iteration: 0 }]);
      ok(pick === undefined || pick === "pending_x", `chooseNext chose "${pick}"`);
      const stops = s.takeStops?.() ?? [];
      ok(Array.isArray(stops));
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  Deno.test(
    `schedulerContract(${name}): a result without the metric is ignored or rejected by name`,
    () => {
      const s = factory();
      s.setup?.({ metric: "val_loss", mode: "min", seed: 1, resources: CONTRACT_RESOURCES });
      const trial: TrialSnapshot = {
        id: "t_00000",
        status: "running",
        config: configs(1, 0)[0],
        iteration: 1,
        dir: "/nonexistent/t_00000",
      };
      s.onTrialAdd?.({ ...trial, status: "pending", iteration: 0 });
      const result: TrialResult = {
        loss: 1,
        training_iteration: 1,
        time_total_s: 1000,
        time_this_iter_s: 1000,
        timestamp: 0,
        trial_id: trial.id,
      };
      try {
        checkDecision(s.onReport(trial, result));
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;
        assert.match(e.message, /val_loss/);
      }
    },
  );

  Deno.test(`schedulerContract(${name}): restore rejects a state it did not write`, () => {
    const s = factory();
    if (!s.restore) return;
    s.setup?.({ metric: "loss", mode: "min", seed: 1, resources: CONTRACT_RESOURCES });
    for (const bad of [null, "garbage", 42, { kind: "someone-else", version: 1 }]) {
      assert.throws(() => s.restore!(bad as JsonValue), TypeError);
    }
  });
}
