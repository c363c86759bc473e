/**
 * Trial schedulers: they decide at every report whether a trial continues, stops, pauses or
 * clones a better one, and which waiting trial runs next.
 *
 * | Factory | YAML `name` | What it does |
 * |---|---|---|
 * | {@linkcode fifoScheduler} | `fifo` | runs every trial to its end (the default) |
 * | {@linkcode ashaScheduler} | `asha` | asynchronous successive halving (Ray's stopping variant, or the paper's promotions) |
 * | {@linkcode hyperbandScheduler} | `hyperband` | synchronous HyperBand: pause at milestones, keep the top `1/eta` |
 * | {@linkcode hyperbandScheduler} | `hyperband_for_bohb` | Ray's `HyperBandForBOHB`: `waitForFullBrackets` and `largestBracketFirst` on; with searcher `bohb` it is BOHB |
 * | {@linkcode medianStoppingScheduler} | `median_stopping` | stop trials whose best is below the median of running averages |
 * | {@linkcode pbtScheduler} | `pbt` | Population Based Training: exploit the best, explore their hyperparameters |
 * | {@linkcode pb2Scheduler} | `pb2` | PB2: PBT whose explore step is a GP bandit over `hyperparamBounds` |
 * | {@linkcode pbtReplay} | `pbt_replay` | replays the schedule PBT or PB2 found for one trial |
 * | {@linkcode resourceChangingScheduler} | `resource_changing` | wraps a `base` scheduler and gives trials more CPUs/GPUs as others finish (restarts from a checkpoint) |
 *
 * Ray Tune's names are accepted too: `async_hyperband`/`asynchyperband` (ASHA),
 * `median_stopping_rule`/`medianstopping`, `hb_bohb` (`hyperband_for_bohb`).
 *
 * Importing this module registers every scheduler under its YAML name, so an experiment file
 * can say `scheduler: { name: asha, max_t: 10, grace_period: 1 }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ashaScheduler } from "./mod.ts";
 * const scheduler = ashaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
 * assert.equal(scheduler.name, "asha");
 * ```
 *
 * @module
 */

import type { Scheduler } from "../../core/plugin.ts";
import { isPlainObject, spaceFromJson, SpaceSpecError, suggest } from "../../core/space.ts";
import { fifoScheduler } from "./fifo.ts";
import { ashaMilestones, ashaScheduler, type AshaSchedulerOptions } from "./asha.ts";
import {
  type HyperbandBracket,
  hyperbandBrackets,
  hyperbandScheduler,
  type HyperbandSchedulerOptions,
} from "./hyperband.ts";
import { medianStoppingScheduler, type MedianStoppingSchedulerOptions } from "./median.ts";
import {
  type ExploitRequest,
  type Mutation,
  type PbtScheduler,
  pbtScheduler,
  type PbtSchedulerOptions,
} from "./pbt.ts";
import { pbtReplay, type PbtReplayScheduler } from "./pbt_replay.ts";
import {
  type Pb2Bounds,
  type Pb2Scheduler,
  pb2Scheduler,
  type Pb2SchedulerOptions,
} from "./pb2.ts";
import {
  type AllocationContext,
  type AllocationFunction,
  distributeResources,
  type DistributeResourcesOptions,
  resourceChangingScheduler,
  type ResourceChangingSchedulerOptions,
} from "./resource_changing.ts";
import { checkOptions } from "./_common.ts";
import type { Decision, SchedulerContext, StopRequest } from "../../core/plugin.ts";
import type {
  Config,
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "../../core/trial.ts";
import type { Rng } from "../../core/random.ts";

export {
  ashaMilestones,
  ashaScheduler,
  distributeResources,
  fifoScheduler,
  hyperbandBrackets,
  hyperbandScheduler,
  medianStoppingScheduler,
  pb2Scheduler,
  pbtReplay,
  pbtScheduler,
  resourceChangingScheduler,
};
export type {
  AllocationContext,
  AllocationFunction,
  AshaSchedulerOptions,
  Config,
  Decision,
  DistributeResourcesOptions,
  ExploitRequest,
  HyperbandBracket,
  HyperbandSchedulerOptions,
  JsonValue,
  MedianStoppingSchedulerOptions,
  Mode,
  Mutation,
  Pb2Bounds,
  Pb2Scheduler,
  Pb2SchedulerOptions,
  PbtReplayScheduler,
  PbtScheduler,
  PbtSchedulerOptions,
  ResourceChangingSchedulerOptions,
  Rng,
  Scheduler,
  SchedulerContext,
  StopRequest,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
};

/**
 * Builds a scheduler from its YAML form (keys already camelCased, without `name`): what the
 * registry entries do. `hyperparamMutations` for PBT take the space syntax
 * (`{ type: loguniform, min: 1e-4, max: 0.1 }`, lists, nested objects).
 *
 * @param name the YAML name: `fifo`, `asha`, `hyperband`, `hyperband_for_bohb`,
 *   `median_stopping`, `pbt`, `pb2`, `pbt_replay`, `resource_changing` (its `base` a scheduler
 *   in the same form, `{ name, ...options }`; its `allocate` the options of
 *   `distributeResources`), or one of Ray's names (`async_hyperband`, `median_stopping_rule`,
 *   `hb_bohb`, ...).
 * @param options the options, camelCased.
 * @returns the scheduler.
 * @throws {TypeError} on an unknown name or option (with a "did you mean"), or a bad value;
 *   a {@linkcode SpaceSpecError} whose `path` starts with `hyperparamMutations` for a bad mutation.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { schedulerFromOptions } from "./mod.ts";
 * const s = schedulerFromOptions("pbt", {
 *   perturbationInterval: 5,
 *   hyperparamMutations: { lr: { type: "loguniform", min: 1e-4, max: 0.1 }, batch: [32, 64] },
 * });
 * assert.equal(s.name, "pbt");
 * ```
 */
export function schedulerFromOptions(name: string, options: Record<string, unknown>): Scheduler {
  switch (RAY_NAMES[name] ?? name) {
    case "fifo":
      checkOptions("fifoScheduler", options, []);
      return fifoScheduler();
    case "asha":
      return ashaScheduler(options as AshaSchedulerOptions);
    case "hyperband":
      return hyperbandScheduler(options as HyperbandSchedulerOptions);
    case "hyperband_for_bohb":
      // Ray's HyperBandForBOHB: the largest bracket first, and a bracket waits until it is full.
      return hyperbandScheduler({
        waitForFullBrackets: true,
        largestBracketFirst: true,
        ...options,
      } as HyperbandSchedulerOptions);
    case "median_stopping":
      return medianStoppingScheduler(rayMinTimeSlice(options) as MedianStoppingSchedulerOptions);
    case "pbt": {
      const m = options.hyperparamMutations;
      if (m === undefined || !isPlainObject(m)) return pbtScheduler(options as PbtSchedulerOptions);
      let mutations;
      try {
        mutations = spaceFromJson(m);
      } catch (e) {
        if (e instanceof SpaceSpecError) {
          throw new SpaceSpecError(`pbtScheduler: "hyperparamMutations": ${e.message}`, [
            "hyperparamMutations",
            ...e.path,
          ], { cause: e });
        }
        throw e;
      }
      return pbtScheduler({
        ...options,
        hyperparamMutations: mutations as PbtSchedulerOptions["hyperparamMutations"],
      } as PbtSchedulerOptions);
    }
    case "pb2":
      return pb2Scheduler(options as unknown as Pb2SchedulerOptions);
    case "pbt_replay": {
      const o = checkOptions("pbtReplay", options, ["policyFile"]);
      return pbtReplay(o.policyFile as string);
    }
    case "resource_changing":
      return resourceChangingFromOptions(options);
  }
  throw new TypeError(
    `Unknown scheduler "${name}"${suggest(name, SCHEDULER_NAMES)}; expected one of ${
      SCHEDULER_NAMES.join(", ")
    }`,
  );
}

/** Ray Tune's scheduler names (`tune.create_scheduler`) that Tunebox spells otherwise. */
const RAY_NAMES: Readonly<Record<string, string>> = {
  async_hyperband: "asha",
  asynchyperband: "asha",
  median_stopping_rule: "median_stopping",
  medianstopping: "median_stopping",
  hb_bohb: "hyperband_for_bohb",
};

/** The YAML names of the built-in schedulers, Ray's names included. */
export const SCHEDULER_NAMES: readonly string[] = [
  "fifo",
  "asha",
  "hyperband",
  "hyperband_for_bohb",
  "median_stopping",
  "pbt",
  "pb2",
  "pbt_replay",
  "resource_changing",
  ...Object.keys(RAY_NAMES),
];

/**
 * Ray's `min_time_slice` (in `time_attr` units) as `minTimeSliceMs` (milliseconds of training
 * time): the same thing when `timeAttr` is `time_total_s`, Ray's default; refused otherwise.
 */
function rayMinTimeSlice(options: Record<string, unknown>): Record<string, unknown> {
  const { minTimeSlice, ...rest } = options;
  if (minTimeSlice === undefined) return options;
  const FN = "medianStoppingScheduler";
  if (rest.minTimeSliceMs !== undefined) {
    throw new TypeError(`${FN}: give "minTimeSliceMs" or Ray's "minTimeSlice", not both`);
  }
  if (typeof minTimeSlice !== "number" || !Number.isFinite(minTimeSlice)) {
    throw new TypeError(
      `${FN}: "minTimeSlice" must be a number of seconds, got ${JSON.stringify(minTimeSlice)}`,
    );
  }
  if ((rest.timeAttr ?? "time_total_s") !== "time_total_s") {
    throw new TypeError(
      `${FN}: Ray's "minTimeSlice" counts in timeAttr units (here ${
        JSON.stringify(rest.timeAttr)
      }); Tunebox's slice is training time: give "minTimeSliceMs" in milliseconds instead`,
    );
  }
  return { ...rest, minTimeSliceMs: minTimeSlice * 1000 };
}

/**
 * `resource_changing` from YAML: `base` is a scheduler as YAML gives one (`{ name: asha, max_t:
 * 10 }` or `{ name, options }`), `allocate` the options of `distributeResources` (Ray's keys and
 * `CPU`/`GPU` accepted). Ray's `base_scheduler` is accepted for `base`.
 */
function resourceChangingFromOptions(options: Record<string, unknown>): Scheduler {
  const FN = "resourceChangingScheduler";
  const { baseScheduler, ...rest } = options;
  const o = checkOptions(
    FN,
    baseScheduler !== undefined ? { base: baseScheduler, ...rest } : rest,
    [
      "base",
      "allocate",
    ],
  );
  let base: Scheduler | undefined;
  if (o.base !== undefined) {
    if (!isPlainObject(o.base) || typeof o.base.name !== "string") {
      throw new TypeError(
        `${FN}: "base" must be a scheduler { name: ..., <options> }, got ${JSON.stringify(o.base)}`,
      );
    }
    const { name: baseName, options: nested, ...own } = o.base as Record<string, unknown>;
    if ((RAY_NAMES[baseName as string] ?? baseName) === "resource_changing") {
      throw new TypeError(`${FN}: "base" cannot be another resource_changing scheduler`);
    }
    const merged = { ...own, ...(isPlainObject(nested) ? nested : {}) };
    try {
      base = schedulerFromOptions(baseName as string, camel(merged));
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) {
        const E = e instanceof RangeError ? RangeError : TypeError;
        throw new E(`${FN}: "base": ${e.message}`, { cause: e });
      }
      throw e;
    }
  }
  let allocate: AllocationFunction | undefined;
  if (o.allocate !== undefined) {
    if (!isPlainObject(o.allocate)) {
      throw new TypeError(
        `${FN}: "allocate" must be the options of distributeResources ({ increase_by, ` +
          `increase_by_times, reserve_resources }), got ${JSON.stringify(o.allocate)}`,
      );
    }
    const a = camel(o.allocate as Record<string, unknown>);
    for (const k of ["increaseBy", "reserveResources"]) {
      if (isPlainObject(a[k])) a[k] = lowerKeys(a[k] as Record<string, unknown>);
    }
    allocate = distributeResources(a as DistributeResourcesOptions);
  }
  const s = resourceChangingScheduler({
    ...(base ? { base } : {}),
    ...(allocate ? { allocate } : {}),
  });
  return s;
}

function camel(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).map((
      [k, v],
    ) => [k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), v]),
  );
}

/** Ray's `{"CPU": 1, "GPU": 1}` as `{ cpu: 1, gpu: 1 }`. */
function lowerKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k === "CPU" || k === "GPU" ? k.toLowerCase() : k, v]),
  );
}
