/**
 * Searchers: propose the configs of new trials.
 *
 * - {@linkcode randomSearcher}: random sampling with Ray's grid semantics (the default).
 * - {@linkcode tpeSearcher}: a Tree-structured Parzen Estimator (hyperopt / Optuna style) for
 *   every domain type, conditional sub-spaces and parallel trials.
 * - {@linkcode gpSearcher}: Gaussian-process Bayesian optimisation (Matérn 5/2, log EI), as
 *   Optuna's `GPSampler`; best for expensive trials and up to a few hundred of them.
 * - {@linkcode cmaesSearcher}: CMA-ES with IPOP restarts for numeric spaces (choices by TPE).
 * - {@linkcode nsga2Searcher}: NSGA-II, the genetic algorithm of Optuna's `NSGAIISampler`, for
 *   multi-objective experiments (`tpeSearcher` does MOTPE there too).
 * - {@linkcode concurrencyLimiter}: at most N live trials of a searcher.
 * - {@linkcode repeater}: run each config N times and report the mean to the searcher.
 *
 * Importing this module registers `random`, `tpe`, `bayes` (alias `gp`) and `cmaes` for YAML
 * experiment files (`searcher: { name: tpe, initial_points: 10 }`; itwinai's `n_random_steps` is
 * accepted as an alias of `initial_points` for `tpe` and `bayes`).
 *
 * @example
 * ```ts
 * import { concurrencyLimiter, tpeSearcher } from "./mod.ts";
 * const searcher = concurrencyLimiter(tpeSearcher({ initialPoints: 5 }), 4);
 * ```
 *
 * @module
 */

import type { Searcher } from "../../core/plugin.ts";
import { suggest } from "../../core/options.ts";
import { bohbSearcher, type BohbSearcherOptions } from "./bohb.ts";
import { randomSearcher, type RandomSearcherOptions } from "./random.ts";
import { tpeSearcher, type TpeSearcherOptions } from "./tpe/mod.ts";
import { gpSearcher, type GpSearcherOptions } from "./gp/mod.ts";
import { cmaesSearcher, type CmaesSearcherOptions } from "./cmaes.ts";
import { nsga2Searcher, type Nsga2SearcherOptions } from "./nsga2.ts";

export { randomSearcher, type RandomSearcherOptions } from "./random.ts";
export { tpeSearcher, type TpeSearcherOptions } from "./tpe/mod.ts";
export { gpSearcher, type GpSearcherOptions } from "./gp/mod.ts";
export { cmaesSearcher, type CmaesSearcherOptions } from "./cmaes.ts";
export { nsga2Searcher, type Nsga2SearcherOptions } from "./nsga2.ts";
export { concurrencyLimiter, type ConcurrencyLimiterOptions } from "./limiter.ts";
export { repeater, type RepeaterOptions, TRIAL_INDEX_KEY } from "./repeater.ts";
export { bohbSearcher, type BohbSearcherOptions } from "./bohb.ts"; // registers "bohb"
export type {
  Config,
  JsonValue,
  Mode,
  Searcher,
  SearcherContext,
  TrialResult,
} from "../../core/plugin.ts";
export type { Space } from "../../core/space.ts";

/** itwinai's `n_random_steps` as an alias of `initial_points`. */
function randomStepsAlias(factory: string, options: Record<string, unknown>) {
  const { nRandomSteps, ...rest } = options;
  if (nRandomSteps !== undefined) {
    if (rest.initialPoints !== undefined) {
      throw new TypeError(
        `${factory}: give "initialPoints" or its alias "nRandomSteps", not both`,
      );
    }
    rest.initialPoints = nRandomSteps;
  }
  return rest;
}

/** The YAML names of the built-in searchers (`bayes` and `gp` are one searcher). */
export const SEARCHER_NAMES: readonly string[] = [
  "random",
  "tpe",
  "bayes",
  "gp",
  "cmaes",
  "nsga2",
  "bohb",
];

/**
 * Makes a built-in searcher from its YAML name and options (keys in camelCase), as a YAML file
 * or `Tuner.restore` does.
 *
 * @param name One of {@linkcode SEARCHER_NAMES}.
 * @param options The searcher's options.
 * @returns The searcher.
 * @throws {TypeError} for an unknown name or a wrong option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { searcherFromOptions } from "./mod.ts";
 * assert.equal(searcherFromOptions("tpe", { nRandomSteps: 4 }).name, "tpe");
 * assert.throws(() => searcherFromOptions("tpee", {}), /did you mean "tpe"/);
 * ```
 */
export function searcherFromOptions(name: string, options: Record<string, unknown>): Searcher {
  switch (name) {
    case "random":
      return randomSearcher(options as RandomSearcherOptions);
    case "tpe":
      return tpeSearcher(randomStepsAlias("tpeSearcher", options) as TpeSearcherOptions);
    case "bayes":
    case "gp":
      return gpSearcher(randomStepsAlias("gpSearcher", options) as GpSearcherOptions);
    case "cmaes":
      return cmaesSearcher(options as CmaesSearcherOptions);
    case "nsga2":
      return nsga2Searcher(options as Nsga2SearcherOptions);
    case "bohb":
      return bohbSearcher(options as BohbSearcherOptions);
  }
  throw new TypeError(
    `Unknown searcher "${name}"${suggest(name, SEARCHER_NAMES)}; expected one of ${
      SEARCHER_NAMES.join(", ")
    }`,
  );
}
