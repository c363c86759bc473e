/**
 * The light entry point for trainable modules: everything a trial needs and nothing the driver
 * needs, so that a sandboxed trial starts fast (importing the whole package costs about 100 ms
 * more per trial).
 *
 * @example
 * ```ts
 * import { defineTrainable } from "./trainable.ts";
 *
 * export default defineTrainable<{ lr: number }>(async (config, session) => {
 *   for (let epoch = session.iteration; epoch < 10; epoch++) {
 *     await session.report({ loss: 1 / (epoch + 1) / config.lr });
 *   }
 * });
 * ```
 *
 * @module
 */

export {
  type CheckpointWriter,
  defineTrainable,
  type ReportOptions,
  type Session,
  TRAINABLE,
  type Trainable,
  type TrainableFn,
  TrialStopped,
} from "./core/session.ts";
export { type CollectiveData, CollectiveError, type ReduceOp } from "./core/collectives.ts";
export type { ConfigOf, Space } from "./core/space.ts";
export type { Config, JsonValue } from "./core/trial.ts";
