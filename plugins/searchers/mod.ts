/**
 * Searchers: propose the configs of new trials.
 *
 * - {@linkcode randomSearcher}: random sampling with Ray's grid semantics (the default).
 *
 * Importing this module registers them for YAML experiment files
 * (`searcher: { name: random }`).
 *
 * @example
 * ```ts
 * import { randomSearcher } from "./mod.ts";
 * const searcher = randomSearcher({ pointsToEvaluate: [{ lr: 0.01 }] });
 * ```
 *
 * @module
 */

import { registerPlugin } from "../../core/plugin.ts";
import { randomSearcher, type RandomSearcherOptions } from "./random.ts";

export { randomSearcher, type RandomSearcherOptions } from "./random.ts";
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
