/**
 * Stop criteria beyond `{ training_iteration: 10 }`: Ray Tune's plateau stoppers and its
 * `CombinedStopper`. Each is a function for the experiment's `stop` option; one that can end
 * the whole experiment also has a `stopAll()` method, as Ray's `Stopper.stop_all`.
 *
 * | Factory | YAML `stop: { name: ... }` | Ray | Stops |
 * |---|---|---|---|
 * | {@linkcode trialPlateauStopper} | `trial_plateau` | `TrialPlateauStopper` | a trial whose metric stopped moving |
 * | {@linkcode experimentPlateauStopper} | `experiment_plateau` | `ExperimentPlateauStopper` | the experiment, when the best values stopped moving |
 * | {@linkcode combinedStopper} | a list under `stop:` | `CombinedStopper` | when any of its parts says so |
 *
 * In an experiment file, `stop:` is a criteria mapping (`{ training_iteration: 10 }`), one
 * stopper (`{ name: trial_plateau, metric: loss, std: 0.001 }`), or a list of both kinds.
 * Stoppers made by these factories are saved in `experiment.json` and made again on resume
 * (their windows start empty).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trialPlateauStopper } from "./mod.ts";
 * const stop = trialPlateauStopper({ metric: "loss", std: 0.001 });
 * assert.equal(typeof stop, "function");
 * assert.equal(stop.stopAll?.(), false);
 * ```
 *
 * @module
 */

export {
  experimentPlateauStopper,
  type ExperimentPlateauStopperOptions,
  type Stopper,
  trialPlateauStopper,
  type TrialPlateauStopperOptions,
} from "./plateau.ts";
export {
  combinedStopper,
  criteriaStopper,
  STOPPER_NAMES,
  stopperFromOptions,
  type StopperPart,
} from "./combined.ts";
export type { Mode, TrialResult } from "../../core/trial.ts";
