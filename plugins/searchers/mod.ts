/**
 * Searchers: propose the configs of new trials.
 *
 * - {@linkcode randomSearcher}: random sampling with Ray's grid semantics (the default).
 * - {@linkcode tpeSearcher}: a Tree-structured Parzen Estimator (hyperopt / Optuna style) for
 *   every domain type, conditional sub-spaces and parallel trials.
 * - {@linkcode concurrencyLimiter}: at most N live trials of a searcher.
 * - {@linkcode repeater}: run each config N times and report the mean to the searcher.
 *
 * Importing this module registers `random` and `tpe` for YAML experiment files
 * (`searcher: { name: tpe, initial_points: 10 }`; itwinai's `n_random_steps` is accepted as an
 * alias of `initial_points`).
 *
 * @example
 * ```ts
 * import { concurrencyLimiter, tpeSearcher } from "./mod.ts";
 * const searcher = concurrencyLimiter(tpeSearcher({ initialPoints: 5 }), 4);
 * ```
 *
 * @module
 */

import { registerPlugin } from "../../core/plugin.ts";
import { randomSearcher, type RandomSearcherOptions } from "./random.ts";
import { tpeSearcher, type TpeSearcherOptions } from "./tpe.ts";

export { randomSearcher, type RandomSearcherOptions } from "./random.ts";
export { tpeSearcher, type TpeSearcherOptions } from "./tpe.ts";
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

registerPlugin("searcher", "random", (options) => randomSearcher(options as RandomSearcherOptions));
registerPlugin("searcher", "tpe", (options) => {
  const { nRandomSteps, ...rest } = options;
  if (nRandomSteps !== undefined) {
    if (rest.initialPoints !== undefined) {
      throw new TypeError(
        'tpeSearcher: give "initialPoints" or its alias "nRandomSteps", not both',
      );
    }
    rest.initialPoints = nRandomSteps;
  }
  return tpeSearcher(rest as TpeSearcherOptions);
});
