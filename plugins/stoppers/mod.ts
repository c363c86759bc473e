/**
 * Stop criteria beyond `{ training_iteration: 10 }`: Ray Tune's plateau stoppers. Each is a
 * function for the experiment's `stop` option; one that can end the whole experiment also has
 * a `stopAll()` method, as Ray's `Stopper.stop_all`.
 *
 * | Factory | Ray | Stops |
 * |---|---|---|
 * | {@linkcode trialPlateauStopper} | `TrialPlateauStopper` | a trial whose metric stopped moving |
 * | {@linkcode experimentPlateauStopper} | `ExperimentPlateauStopper` | the experiment, when the best values stopped moving |
 *
 * @example
 * ```ts
 * import { trialPlateauStopper } from "./mod.ts";
 * const stop = trialPlateauStopper({ metric: "loss", std: 0.001 });
 * console.log(typeof stop, stop.stopAll?.()); // "function" false
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
export type { Mode, TrialResult } from "../../core/trial.ts";
