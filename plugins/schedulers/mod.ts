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
 *
 * Importing this module registers every scheduler under its YAML name, so an experiment file
 * can say `scheduler: { name: asha, max_t: 10, grace_period: 1 }`.
 *
 * @example
 * ```ts
 * import { ashaScheduler } from "./mod.ts";
 * const scheduler = ashaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
 * console.log(scheduler.name); // "asha"
 * ```
 *
 * @module
 */

import { registerPlugin, type Scheduler } from "../../core/plugin.ts";
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
  fifoScheduler,
  hyperbandBrackets,
  hyperbandScheduler,
  medianStoppingScheduler,
  pb2Scheduler,
  pbtReplay,
  pbtScheduler,
};
export type {
  AshaSchedulerOptions,
  Config,
  Decision,
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
 * @param name the YAML name: `fifo`, `asha`, `hyperband`, `median_stopping`, `pbt`, `pb2`,
 *   `pbt_replay`.
 * @param options the options, camelCased.
 * @returns the scheduler.
 * @throws {TypeError} on an unknown name or option (with a "did you mean"), or a bad value;
 *   a {@linkcode SpaceSpecError} whose `path` starts with `hyperparamMutations` for a bad mutation.
 * @example
 * ```ts
 * import { schedulerFromOptions } from "./mod.ts";
 * const s = schedulerFromOptions("pbt", {
 *   perturbationInterval: 5,
 *   hyperparamMutations: { lr: { type: "loguniform", min: 1e-4, max: 0.1 }, batch: [32, 64] },
 * });
 * console.log(s.name); // "pbt"
 * ```
 */
export function schedulerFromOptions(name: string, options: Record<string, unknown>): Scheduler {
  switch (name) {
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
      return medianStoppingScheduler(options as MedianStoppingSchedulerOptions);
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
  }
  throw new TypeError(
    `Unknown scheduler "${name}"${suggest(name, SCHEDULER_NAMES)}; expected one of ${
      SCHEDULER_NAMES.join(", ")
    }`,
  );
}

/** The YAML names of the built-in schedulers. */
export const SCHEDULER_NAMES: readonly string[] = [
  "fifo",
  "asha",
  "hyperband",
  "hyperband_for_bohb",
  "median_stopping",
  "pbt",
  "pb2",
  "pbt_replay",
];

for (const name of SCHEDULER_NAMES) {
  registerPlugin("scheduler", name, (options) => schedulerFromOptions(name, options));
}
