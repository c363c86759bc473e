/**
 * Tunebox: sandboxed hyperparameter tuning for Deno.
 *
 * Define a search space, a trainable that reports metrics, and let a {@linkcode Tuner} run
 * trials — each in its own `deno run` subprocess whose permissions are its sandbox, or
 * in-process for cheap objectives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { choice, loguniform, Tuner } from "./mod.ts";
 *
 * const results = await new Tuner({
 *   trainable: async (config, session) => {
 *     for (let epoch = session.iteration; epoch < 5; epoch++) {
 *       const loss = (Math.log10(config.lr) + 2.5) ** 2 + 1 / (epoch + 1) + config.batch / 1000;
 *       await session.report({ loss });
 *     }
 *   },
 *   space: { lr: loguniform(1e-4, 1e-1), batch: choice([32, 64, 128]) },
 *   metric: "loss",
 *   mode: "min",
 *   numSamples: 8,
 *   seed: 1,
 *   reporter: false,
 *   storage: await Deno.makeTempDir(),
 * }).fit();
 * const best = results.best();
 * assert.equal(results.trials.length, 8);
 * const { lr, batch } = best.config as { lr: number; batch: number };
 * assert.ok(lr >= 1e-4 && lr <= 1e-1);
 * assert.ok([32, 64, 128].includes(batch));
 * assert.equal(best.score, Math.min(...results.trials.map((t) => Number(t.metrics?.loss))));
 * ```
 *
 * @module
 */

export {
  choice,
  type ChoiceDomain,
  type ConfigOf,
  DOMAIN,
  type Domain,
  type DomainBase,
  type FloatDomain,
  grid,
  type GridDomain,
  type IntDomain,
  lograndint,
  loguniform,
  type NormalDomain,
  parameters,
  type ParamInfo,
  type ParamPath,
  qlograndint,
  qloguniform,
  qrandint,
  quniform,
  randint,
  randn,
  sampleFrom,
  type SampleFromDomain,
  type Space,
  uniform,
  type ValueOf,
} from "./core/space.ts";
export { Rng } from "./core/random.ts";
export {
  defineTrainable,
  type ReportOptions,
  type Session,
  TRAINABLE,
  type Trainable,
  type TrainableFn,
  TrialStopped,
} from "./core/session.ts";
export {
  type CollectiveData,
  CollectiveError,
  type Collectives,
  type GroupInfo,
  type ReduceOp,
  type RingAddress,
} from "./core/collectives.ts";
export { type RestoreOptions, Tuner, type TunerOptions } from "./tuner/tuner.ts";
export { builtinPluginNames, findPluginFactory, knownPluginNames } from "./tuner/plugin_table.ts";
export { resolveModule } from "./core/plugin.ts";
export { type BestScope, ResultGrid, type TrialInfo } from "./core/results.ts";
export {
  dominates,
  hypervolume,
  hypervolumeContributions,
  nonDominatedSort,
} from "./core/pareto.ts";
export type { CheckpointOptions, StopCriteria, Stopper } from "./core/runner.ts";
export type { Device } from "./core/resources.ts";
export {
  type Ack,
  type Backend,
  type Callback,
  checkPluginShape,
  type CheckpointEvent,
  type Decision,
  type Executor,
  type ExperimentEnd,
  type ExperimentStart,
  type ExploitRequest,
  lookupPlugin,
  type PluginFactory,
  pluginNames,
  type PluginRole,
  type RawReport,
  registerPlugin,
  type Resources,
  type SandboxPolicy,
  type Scheduler,
  type SchedulerContext,
  type Searcher,
  type SearcherContext,
  type StopRequest,
  type TrialEnd,
  type TrialExit,
  type TrialHandle,
  type TrialJob,
  type TrialListener,
  type TrialOutcome,
  type TrialReport,
  type TrialStart,
  type WarmJob,
} from "./core/plugin.ts";
export type {
  Config,
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "./core/trial.ts";
export {
  BackendUnavailableError,
  ConfigError,
  PluginError,
  SandboxViolation,
  TrialFailedError,
  TuneError,
} from "./core/errors.ts";
export { fifoScheduler } from "./plugins/schedulers/fifo.ts";
export { randomSearcher, type RandomSearcherOptions } from "./plugins/searchers/random.ts";
export {
  subprocessExecutor,
  type SubprocessExecutorOptions,
} from "./plugins/executors/subprocess.ts";
export { inprocessExecutor } from "./plugins/executors/inprocess.ts";
export {
  slurmExecutor,
  type SlurmExecutorOptions,
  type SlurmOptions,
} from "./plugins/executors/slurm.ts";
export { executorFromSpec, type ExecutorSpec } from "./plugins/executors/mod.ts";
export {
  defaultDriverHost,
  openRemoteChannel,
  type RemoteChannel,
  type RemoteChannelOptions,
} from "./core/remote/channel.ts";
export {
  type CertificateOptions,
  makeServerCertificate,
  type ServerCertificate,
} from "./core/remote/x509.ts";
export {
  type ByteConn,
  ChannelError,
  type ChannelLimits,
  checkTrialMessage,
  type Conversation,
  DEFAULT_MAX_LINE_BYTES,
  driveTrial,
  readBoundedLines,
  type StreamCheckpoints,
  TrialChannelServer,
  type TrialConnection,
  wrapConnection,
} from "./core/channel.ts";
export {
  type DriverMessage,
  type FileChunk,
  lineSender,
  type LineSink,
  type LineSource,
  PROTOCOL_VERSION,
  type TrialMessage,
} from "./core/protocol.ts";
export { tableReporter, type TableReporterOptions } from "./plugins/reporters/table.ts";
