/**
 * The contract suites every Tunebox plugin runs, shipped for third-party plugins: register them
 * in a test file and `deno test` checks that your scheduler, searcher, executor or callback
 * keeps the contract the runner relies on (well-formed decisions and configs, experiments that finish, the same seed
 * giving the same choices, `snapshot()`/`restore()` mid-experiment giving the very same choices
 * afterwards, unknown trial ids and missing metrics not crashing it).
 *
 * Decisions are checked with the runner's own check, {@linkcode validateDecision}. The
 * {@linkcode executorContract} runs the suite's trainable on your executor, the
 * {@linkcode callbackContract} sends your logger whole experiments of events, and
 * {@linkcode fakeExecutor} runs scripted trials with no process, for tests of your own.
 *
 * @example
 * ```ts ignore
 * // my_scheduler_test.ts — run with `deno test`
 * import { callbackContract, schedulerContract, searcherContract } from "jsr:@tunebox/tunebox/testing";
 * import { myLogger, myScheduler, mySearcher } from "./mine.ts";
 *
 * schedulerContract("myScheduler", () => myScheduler({ patience: 3 }));
 * searcherContract("mySearcher", () => mySearcher());
 * callbackContract("myLogger", () => myLogger());
 * ```
 *
 * @module
 */

export {
  checkDecision,
  contractConfigs,
  CURVE_TRAINABLE,
  schedulerContract,
  type SchedulerContractOptions,
  type SimCheckpoint,
  type SimOptions,
  type SimResult,
  type SimTrainable,
  type SimTrial,
  simulate,
} from "./scheduler.ts";
export {
  configProblems,
  contextOf,
  CONTRACT_SPACE,
  contractObjective,
  drive,
  type DriveResult,
  resultOf,
  searcherContract,
  type SearcherContractOptions,
} from "./searcher.ts";
export {
  CONTRACT_TRAINABLE_URL,
  contractStep,
  contractTrainable,
  type ContractTrainableConfig,
  executorContract,
  type ExecutorContractOptions,
  type FakeExecutor,
  fakeExecutor,
  type FakeExecutorOptions,
} from "./executor.ts";
export { callbackContract, type CallbackContractOptions, driveCallback } from "./callback.ts";
export { validateDecision } from "../core/plugin.ts";
