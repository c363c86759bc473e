/**
 * Resource-changing trials (Ray Tune's `ResourceChangingScheduler` and its default allocation
 * function, `DistributeResources`): a wrapper around any scheduler that gives live trials more
 * CPUs or GPUs as others finish, restarting each from the checkpoint of its report with the new
 * amounts.
 *
 * @module
 */

import { recordSpec, resourcesProblem } from "../../core/plugin.ts";
import type { Decision, Scheduler, SchedulerContext } from "../../core/plugin.ts";
import type {
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
} from "../../core/trial.ts";
import { OptionError, OptionRangeError } from "../../core/options.ts";
import { isPlainObject } from "../../core/space.ts";
import { checkOptions, numberOption, readSnapshot } from "./_common.ts";
import { fifoScheduler } from "./fifo.ts";

/** What an allocation function is asked with, at every report its base scheduler lets continue. */
export interface AllocationContext {
  /** The trial that reported, with the resources it holds now (`trial.resources`). */
  readonly trial: TrialSnapshot & { readonly resources: TrialResources };
  /** Its result. */
  readonly result: TrialResult;
  /**
   * Every live trial (pending, running or paused; the reporting one included), with the
   * resources it holds or will hold when it starts (per worker), in creation order.
   */
  readonly live: readonly { readonly id: string; readonly resources: TrialResources }[];
  /** The CPUs and GPUs all trials share (the Tuner's `cpus` and `gpus`). */
  readonly total: TrialResources;
  /** What each trial asks for (the Tuner's `resources`; `workers` per trial, `cpu`/`gpu` per worker). */
  readonly base: TrialResources & { readonly workers: number };
  /** The experiment's metric. */
  readonly metric: string;
  /** Its mode. */
  readonly mode: Mode;
}

/**
 * Decides the resources of a trial that reported: new `{ cpu, gpu }` per worker, or `undefined`
 * to keep what it has (Ray's `resources_allocation_function`).
 */
export type AllocationFunction = (ctx: AllocationContext) => TrialResources | undefined;

/** Options of {@linkcode distributeResources}; the defaults are Ray's `DistributeResources`. */
export interface DistributeResourcesOptions {
  /**
   * The step a trial grows (or shrinks) by, per worker. @default `{ gpu: 1 }` when a trial asks
   * for GPUs, else `{ cpu: 1 }`
   */
  readonly increaseBy?: { readonly cpu?: number; readonly gpu?: number };
  /** At most this many steps above the base per trial; below 1, no limit. @default -1 */
  readonly increaseByTimes?: number;
  /** CPUs and GPUs never handed to grown trials. @default none */
  readonly reserveResources?: { readonly cpu?: number; readonly gpu?: number };
}

/** Options of {@linkcode resourceChangingScheduler}. */
export interface ResourceChangingSchedulerOptions {
  /** The scheduler that decides whether trials continue, stop, pause or exploit. @default fifoScheduler() */
  readonly base?: Scheduler;
  /** How a trial's resources change. @default distributeResources() */
  readonly allocate?: AllocationFunction;
}

const FN = "resourceChangingScheduler";
const DIST = "distributeResources";
// Amounts are compared in 1/10000 units (Ray's resolution, the resource pool's too).
const UNIT = 10_000;
const u = (x: number): number => Math.round(x * UNIT);

/**
 * Ray's default allocation function (`DistributeResources`, its single-bundle form): it spreads
 * the free CPUs and GPUs evenly over the live trials, in steps of `increaseBy`, and never takes a
 * trial below the resources it started with.
 *
 * At a report (from the first iteration on): `free` is the total (less `reserveResources`) minus
 * what every live trial holds. An even share is found by handing the steps left after every
 * trial's base (`total − base × live`) round-robin to the live trials, each up to
 * `increaseByTimes` steps; the first trial's count of steps caps every trial. The reporting
 * trial then grows by as many whole steps as `free` holds, up to that cap (or
 * `increaseByTimes`), or — when `free` is negative, as after new trials were added — shrinks by
 * as many steps as it takes, never below its base. Workers count: a trial of `w` workers holds
 * `w ×` its per-worker amounts.
 *
 * Amounts it gives must still be ones a trial may hold: with a fractional GPU per trial
 * (`gpu: 0.5`), whole-GPU steps give 1.5, which no trial may hold (it shares one device or takes
 * whole ones), and the experiment stops with that error (Ray would leave such a trial waiting
 * forever); give trials whole GPUs, or steps that keep them at or below 1 (`increaseBy: { gpu:
 * 0.5 }, increaseByTimes: 1` from 0.5).
 *
 * @param options see {@linkcode DistributeResourcesOptions}; defaults are Ray's.
 * @returns the allocation function.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} when `increaseBy` is empty or negative, or `reserveResources` negative.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { distributeResources } from "./resource_changing.ts";
 *
 * // 8 CPUs, 2 live trials of 1 CPU each: the one that reports grows to its even share, 4.
 * const allocate = distributeResources();
 * const trial = { id: "a", status: "running", config: {}, iteration: 3, dir: "/tmp/a", resources: { cpu: 1, gpu: 0 } } as const;
 * const next = allocate({
 *   trial,
 *   result: { training_iteration: 3, time_total_s: 3, time_this_iter_s: 1, timestamp: 0, trial_id: "a" },
 *   live: [{ id: "a", resources: { cpu: 1, gpu: 0 } }, { id: "b", resources: { cpu: 1, gpu: 0 } }],
 *   total: { cpu: 8, gpu: 0 },
 *   base: { cpu: 1, gpu: 0, workers: 1 },
 *   metric: "loss",
 *   mode: "min",
 * });
 * assert.deepEqual(next, { cpu: 4, gpu: 0 });
 * ```
 */
export function distributeResources(options: DistributeResourcesOptions = {}): AllocationFunction {
  const raw = checkOptions(DIST, options, ["increaseBy", "increaseByTimes", "reserveResources"]);
  const step = raw.increaseBy === undefined
    ? undefined
    : amounts(DIST, "increaseBy", raw.increaseBy);
  if (step && step.cpu === 0 && step.gpu === 0) {
    throw new OptionRangeError(
      DIST,
      "increaseBy",
      `${DIST}: "increaseBy" must give cpu or gpu > 0`,
    );
  }
  const times = numberOption(DIST, raw, "increaseByTimes", -1, { integer: true });
  const reserve = raw.reserveResources === undefined
    ? { cpu: 0, gpu: 0 }
    : amounts(DIST, "reserveResources", raw.reserveResources);
  const allocate: AllocationFunction = (ctx) => {
    // Ray: "don't bother if this is just the first iteration".
    if (!(ctx.result.training_iteration >= 1)) return undefined;
    const w = ctx.base.workers;
    const base = { cpu: u(ctx.base.cpu), gpu: u(ctx.base.gpu) };
    const inc = step
      ? { cpu: u(step.cpu), gpu: u(step.gpu) }
      : ctx.base.gpu > 0
      ? { cpu: 0, gpu: UNIT }
      : { cpu: UNIT, gpu: 0 };
    // Per worker: a trial of w workers holds w times what it is given.
    const total = {
      cpu: Math.floor((u(ctx.total.cpu) - u(reserve.cpu)) / w),
      gpu: Math.floor((u(ctx.total.gpu) - u(reserve.gpu)) / w),
    };
    const live = ctx.live.some((t) => t.id === ctx.trial.id)
      ? ctx.live
      : [...ctx.live, { id: ctx.trial.id, resources: ctx.trial.resources }];
    const n = live.length;
    let usedCpu = 0, usedGpu = 0;
    for (const t of live) {
      usedCpu += u(t.resources.cpu);
      usedGpu += u(t.resources.gpu);
    }
    const free = { cpu: total.cpu - usedCpu, gpu: total.gpu - usedGpu };

    // The even share: steps handed round-robin from a clean slate, each trial up to `times`.
    const upper = { cpu: total.cpu - base.cpu * n, gpu: total.gpu - base.gpu * n };
    const steps = new Array<number>(n).fill(0);
    const atLimit = new Set<number>();
    let share = 0;
    for (let i = 0; atLimit.size < n && upper.cpu >= inc.cpu && upper.gpu >= inc.gpu; i++) {
      const k = i % n;
      if (times > 0 && steps[k] >= times) {
        atLimit.add(k);
        continue;
      }
      steps[k]++;
      if (k === 0) share++;
      upper.cpu -= inc.cpu;
      upper.gpu -= inc.gpu;
    }

    // What this trial holds above its base, changed by as many steps as `free` allows.
    const added = {
      cpu: Math.max(0, u(ctx.trial.resources.cpu) - base.cpu),
      gpu: Math.max(0, u(ctx.trial.resources.gpu) - base.gpu),
    };
    const fit = (have: number, per: number) => Math.floor(have / per);
    const m = inc.cpu && inc.gpu
      ? Math.min(fit(free.cpu, inc.cpu), fit(free.gpu, inc.gpu))
      : inc.gpu
      ? fit(free.gpu, inc.gpu)
      : fit(free.cpu, inc.cpu);
    if (m < 0) {
      added.cpu = Math.max(0, added.cpu + inc.cpu * m);
      added.gpu = Math.max(0, added.gpu + inc.gpu * m);
    } else if (m > 0) {
      added.cpu += inc.cpu * m;
      added.gpu += inc.gpu * m;
      const cap = times > 0 ? (share > 0 ? Math.min(share, times) : times) : share;
      if (cap > 0) {
        added.cpu = Math.min(added.cpu, inc.cpu * cap);
        added.gpu = Math.min(added.gpu, inc.gpu * cap);
      }
    }
    return { cpu: (base.cpu + added.cpu) / UNIT, gpu: (base.gpu + added.gpu) / UNIT };
  };
  return recordSpec("distribute", options, allocate);
}

/**
 * Wraps a scheduler so that live trials get more CPUs or GPUs as others finish (Ray's
 * `ResourceChangingScheduler`). At each report the base scheduler decides first; when it lets
 * the trial continue, `allocate` proposes the trial's resources, and when they differ from what
 * it holds the decision is `{ kind: "reallocate", resources }`: the runner pauses the trial at
 * the checkpoint of that report and restarts it from there with the new amounts, before any
 * other trial starts. The trainable sees its current amounts in `session.resources` (size its
 * thread pool or batch from them).
 *
 * A trial is reallocated only at a report that carries a checkpoint: a trainable that never
 * checkpoints keeps its resources, and the runner says so once per trial. Every trial starts
 * with the experiment's `resources`; the total is the Tuner's `cpus` and `gpus` (this machine's
 * by default; with a cluster executor, what its capacity allows): the executors get each trial's
 * current resources at every start, so Slurm's `-c`/`--gres` and Ray's `entrypoint_num_cpus`
 * follow a reallocation.
 *
 * An allocation that asks for more than exists, a negative or non-finite amount, or more than
 * one GPU that is not a whole number ends the experiment with an error naming the trial and the
 * amounts.
 *
 * Differences from Ray:
 * - the allocation function gets one context object (`trial`, `result`, `live`, `total`,
 *   `base`, `metric`, `mode`) instead of the trial runner, and returns `{ cpu, gpu }` per worker
 *   (no placement-group bundles: `DistributeResources`' `add_bundles` has no equivalent; a trial
 *   of several workers grows every worker alike);
 * - a trial is restarted only from a checkpoint its report carried (Ray asks the trainable to
 *   save one when it pauses it); a report without one leaves the trial as it is;
 * - a reallocated trial restarts before any other trial starts (Ray lets the freed resources go
 *   to whichever trial its base scheduler picks next);
 * - trials are created only when resources are free, so a grown trial shrinks only when a
 *   trial of the experiment is added while it holds more than its share (Ray keeps pending
 *   trials around and shrinks grown ones for them);
 * - `DistributeResourcesToTopJob` is not built in: write it as an `allocate` function;
 * - a trial whose resources differ from the experiment's is accepted (they can only come from
 *   this scheduler, e.g. on resume); Ray refuses a trial added with other base resources.
 *
 * @param options see {@linkcode ResourceChangingSchedulerOptions}.
 * @returns the scheduler, named `"resource_changing"`.
 * @throws {TypeError} on an unknown option, a `base` that is not a scheduler, or an `allocate`
 *   that is not a function.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fifoScheduler, resourceChangingScheduler } from "./mod.ts";
 *
 * const s = resourceChangingScheduler({ base: fifoScheduler() });
 * s.setup?.({
 *   metric: "loss",
 *   mode: "min",
 *   seed: 0,
 *   resources: { total: { cpu: 4, gpu: 0 }, trial: { cpu: 1, gpu: 0 } },
 * });
 * const trial = (id: string) =>
 *   ({ id, status: "running", config: {}, iteration: 1, dir: `/tmp/${id}`, resources: { cpu: 1, gpu: 0 } }) as const;
 * s.onTrialAdd?.({ ...trial("a"), status: "pending", iteration: 0 });
 * s.onTrialAdd?.({ ...trial("b"), status: "pending", iteration: 0 });
 * const result = { loss: 1, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "a", checkpoint_dir_name: "checkpoint_000001" };
 * // 4 CPUs, 2 live trials: "a" gets its even share, 2 CPUs.
 * assert.deepEqual(s.onReport(trial("a"), result), { kind: "reallocate", resources: { cpu: 2, gpu: 0 } });
 * ```
 */
export function resourceChangingScheduler(
  options: ResourceChangingSchedulerOptions = {},
): Scheduler {
  const raw = checkOptions(FN, options, ["base", "allocate"]);
  const base = (raw.base ?? fifoScheduler()) as Scheduler;
  if (
    !base || typeof base !== "object" || typeof (base as Scheduler).onReport !== "function" ||
    typeof (base as Scheduler).name !== "string"
  ) {
    throw new OptionError(
      FN,
      "base",
      `${FN}: "base" must be a scheduler (e.g. ashaScheduler({ maxT: 10 })), got ${
        describe(raw.base)
      }`,
    );
  }
  if (base.name === "resource_changing") {
    throw new OptionError(
      FN,
      "base",
      `${FN}: "base" cannot be another resource_changing scheduler`,
    );
  }
  const allocate = (raw.allocate ?? distributeResources()) as AllocationFunction;
  if (typeof allocate !== "function") {
    throw new OptionError(
      FN,
      "allocate",
      `${FN}: "allocate" must be a function ({ trial, result, live, total, base }) => ` +
        `{ cpu, gpu } | undefined, or distributeResources({...}), got ${describe(raw.allocate)}`,
    );
  }
  let ctx: SchedulerContext | undefined;
  let total: TrialResources = { cpu: 0, gpu: 0 };
  let perTrial: TrialResources & { workers: number } = { cpu: 1, gpu: 0, workers: 1 };
  /** Live trials (added, not ended) and the resources each holds or will hold. */
  let live = new Map<string, TrialResources>();

  const seen = (t: TrialSnapshot): void => {
    if (live.has(t.id)) live.set(t.id, resourcesOf(t));
  };
  const resourcesOf = (t: TrialSnapshot): TrialResources =>
    t.resources ? { cpu: t.resources.cpu, gpu: t.resources.gpu } : { ...basePart() };
  const basePart = (): TrialResources => ({ cpu: perTrial.cpu, gpu: perTrial.gpu });

  /** The allocation's answer, checked: a problem ends the experiment with a clear message. */
  const check = (t: TrialSnapshot, r: unknown): TrialResources | undefined => {
    if (r === undefined || r === null) return undefined;
    const who = `${FN}: the allocation for trial "${t.id}"`;
    const problem = resourcesProblem(r, who);
    if (problem) {
      const gpu = (r as { gpu?: unknown }).gpu;
      const hint = typeof gpu === "number" && gpu > 1 && !Number.isInteger(gpu) &&
          !Number.isInteger(perTrial.gpu)
        ? `; trials of a fractional GPU (${perTrial.gpu}) cannot grow by whole GPUs: give ` +
          `distributeResources an increaseBy and increaseByTimes that keep gpu <= 1, or whole ` +
          `GPUs per trial`
        : "";
      throw new TypeError(problem + hint);
    }
    const { cpu, gpu } = r as TrialResources;
    const w = perTrial.workers;
    const per = w > 1 ? ` (${w} workers of cpu=${cpu}, gpu=${gpu})` : "";
    if (u(cpu * w) > u(total.cpu) || u(gpu * w) > u(total.gpu)) {
      throw new RangeError(
        `${who} asks for cpu=${cpu * w}, gpu=${gpu * w}${per}, but the experiment has ` +
          `cpu=${total.cpu}, gpu=${total.gpu} in all (the Tuner's "cpus" and "gpus")`,
      );
    }
    return { cpu, gpu };
  };

  const scheduler: Scheduler & { readonly pendingTrials?: number } = {
    name: "resource_changing",
    ...(base.multiObjective !== undefined ? { multiObjective: base.multiObjective } : {}),
    get pendingTrials() {
      return base.pendingTrials;
    },
    setup(c) {
      if (!c?.resources) {
        throw new TypeError(
          `${FN}: setup needs the experiment's resources (SchedulerContext.resources: ` +
            `{ total, trial }); the runner gives them`,
        );
      }
      ctx = c;
      total = { cpu: c.resources.total.cpu, gpu: c.resources.total.gpu };
      perTrial = {
        cpu: c.resources.trial.cpu,
        gpu: c.resources.trial.gpu,
        workers: c.resources.trial.workers ?? 1,
      };
      base.setup?.(c);
    },
    onTrialAdd(t) {
      live.set(t.id, resourcesOf(t));
      base.onTrialAdd?.(t);
    },
    onReport(t, result): Decision {
      const d = base.onReport(t, result);
      if (!ctx) throw new Error(`${FN}: setup() must be called before the first trial`);
      live.set(t.id, resourcesOf(t));
      if (d.kind !== "continue") return d;
      const now = resourcesOf(t);
      const next = check(
        t,
        allocate({
          trial: { ...t, resources: now },
          result,
          live: [...live].map(([id, resources]) => ({ id, resources: { ...resources } })),
          total: { ...total },
          base: { ...perTrial },
          metric: ctx.metric,
          mode: ctx.mode,
        }),
      );
      if (!next || (u(next.cpu) === u(now.cpu) && u(next.gpu) === u(now.gpu))) return d;
      // It restarts with them only from a checkpoint of this report (else the runner says why).
      if (result.checkpoint_dir_name !== undefined) live.set(t.id, next);
      return { kind: "reallocate", resources: next };
    },
    onComplete(t, result) {
      live.delete(t.id);
      base.onComplete?.(t, result);
    },
    chooseNext(runnable) {
      for (const t of runnable) seen(t);
      return base.chooseNext
        ? base.chooseNext(runnable)
        : (runnable.find((t) => t.status === "paused") ?? runnable[0])?.id;
    },
    takeStops: () => base.takeStops?.() ?? [],
    takeExploits: () => base.takeExploits?.() ?? [],
    snapshot(): JsonValue {
      return {
        kind: "resource_changing",
        version: 1,
        base: base.snapshot?.() ?? null,
        live: [...live].map(([id, r]) => [id, r.cpu, r.gpu]),
      };
    },
    restore(state) {
      const s = readSnapshot(FN, "resource_changing", state);
      if (!Array.isArray(s.live)) throw new TypeError(`${FN}: bad snapshot: "live" is not a list`);
      const next = new Map<string, TrialResources>();
      for (const e of s.live as unknown[]) {
        if (
          !Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number" ||
          typeof e[2] !== "number"
        ) throw new TypeError(`${FN}: bad snapshot entry ${JSON.stringify(e)}`);
        next.set(e[0], { cpu: e[1], gpu: e[2] });
      }
      if (base.restore) base.restore(s.base as JsonValue);
      live = next;
    },
  };
  // Made again by name on resume when the base and the allocation were built by name.
  const baseSpec = (base as { spec?: { name: string; options: JsonValue } }).spec ??
    (base.name === "fifo" ? { name: "fifo", options: {} } : undefined);
  const allocSpec = (allocate as { spec?: { name: string; options: JsonValue } }).spec;
  const spec = raw.base !== undefined && !baseSpec ||
      raw.allocate !== undefined && allocSpec?.name !== "distribute"
    ? undefined
    : {
      ...(baseSpec ? { base: { name: baseSpec.name, options: baseSpec.options } } : {}),
      ...(allocSpec && raw.allocate !== undefined ? { allocate: allocSpec.options } : {}),
    };
  return spec ? recordSpec("resource_changing", spec, scheduler) : scheduler;
}

/** `{ cpu, gpu }` amounts of an option, both defaulting to 0, checked. */
function amounts(fn: string, key: string, v: unknown): TrialResources {
  if (!isPlainObject(v)) {
    throw new OptionError(fn, key, `${fn}: "${key}" must be { cpu, gpu }, got ${describe(v)}`);
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "cpu" && k !== "gpu") {
      throw new OptionError(fn, key, `${fn}: "${key}" takes cpu and gpu, not "${k}"`);
    }
  }
  const out = { cpu: 0, gpu: 0 };
  for (const k of ["cpu", "gpu"] as const) {
    const x = o[k];
    if (x === undefined) continue;
    if (typeof x !== "number" || !Number.isFinite(x) || x < 0) {
      throw new OptionRangeError(
        fn,
        `${key}.${k}`,
        `${fn}: "${key}.${k}" must be a finite number >= 0, got ${describe(x)}`,
      );
    }
    out[k] = x;
  }
  return out;
}

function describe(v: unknown): string {
  if (typeof v === "function") return "a function";
  if (v === null || typeof v !== "object") {
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  }
  try {
    return JSON.stringify(v).slice(0, 80);
  } catch {
    return "an object";
  }
}
