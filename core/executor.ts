/**
 * The Executor contract (what runs a trial: its job, its handle, its exit) and the Backend and
 * sandbox policy a trial's framework adds.
 * Part of the plugin contracts: {@linkcode ./plugin.ts} re-exports everything here.
 *
 * @module
 */

import type { Config, JsonValue } from "./trial.ts";
import type { Device } from "./resources.ts";

/** Extra permissions a trial needs, merged into its sandbox. */
export interface SandboxPolicy {
  /** Paths the trial may read (besides its own folder, the trainable and the module cache). */
  readonly read?: readonly string[];
  /** Paths the trial may write (besides its own folder). */
  readonly write?: readonly string[];
  /** Hosts (`host[:port]`) the trial may connect to. */
  readonly net?: readonly string[];
  /** Environment variables the trial may read (their values are passed through). */
  readonly env?: readonly string[];
  /** Deno `--allow-sys` APIs (`cpus`, `hostname`, ...). */
  readonly sys?: readonly string[];
  /** Paths for `--allow-ffi` (native backends only). */
  readonly ffi?: readonly string[];
  /**
   * Unstable Deno features trials may use (`kv`, `raw-imports`, ...): passed as
   * `--unstable-<name>`; a trainable's deno.json may turn on only these. @default none
   */
  readonly unstable?: readonly string[];
}

/**
 * What the driver knows of a training backend (DESIGN §5): the permissions its trials need and
 * the environment that pins a trial to its devices (and, for a native library, e.g. its
 * `LD_LIBRARY_PATH`). Give one as the Tuner's `backend`: its permissions join the sandbox and its
 * environment is set for every trial. `tfjsBackend()` of `./backends/tfjs` is one.
 *
 * @example
 * ```ts
 * import type { Backend } from "./plugin.ts";
 * const backend: Backend = {
 *   name: "mylib",
 *   permissions: () => ({ env: ["MYLIB_*"] }),
 *   env: (devices) => ({ MYLIB_DEVICES: devices.map((d) => d.index).join(",") }),
 * };
 * ```
 */
export interface Backend {
  /** The backend's name. */
  readonly name: string;
  /** What a trial's sandbox must allow for the backend to load. */
  permissions(): SandboxPolicy;
  /**
   * The environment for a trial given the GPUs it holds (empty for a CPU-only trial; on a
   * cluster, placeholders numbered from 0, as the cluster numbers the devices it gives).
   */
  env(devices: readonly Device[]): Record<string, string>;
}

/** The resources a trial asks for. */
export interface Resources {
  /** CPUs (may be fractional). @default 1 */
  readonly cpu?: number;
  /** GPUs (may be fractional, e.g. 0.5 to share). @default 0 */
  readonly gpu?: number;
  /**
   * Memory cap of a sandboxed trial in MiB: V8's heap limit, plus an OS limit on the process's
   * data segment where `prlimit` exists. A trial over it dies and fails. @default no cap
   */
  readonly memoryMb?: number;
  /**
   * Custom resources by name (e.g. `{ node2: 1 }`), for executors that place trials on a
   * cluster (Ray's `entrypoint_resources`); local executors ignore them. @default none
   */
  readonly custom?: Readonly<Record<string, number>>;
  /**
   * Workers per trial (data-parallel training, Ray Train's `ScalingConfig(num_workers)`): each
   * trial runs this many sandboxed processes, with `session.rank`, `session.worldSize` and the
   * collectives (`session.allreduce`, ...); `cpu` and `gpu` are per worker. Needs an executor
   * that runs several workers per trial ({@linkcode Executor.multiWorker}). @default 1
   */
  readonly workers?: number;
}

/** Everything an executor needs to run one trial. */
export interface TrialJob {
  /** Trial id. */
  readonly trialId: string;
  /** The trial's config. */
  readonly config: Config;
  /**
   * The trial's record folder (exists): `params.json`, `result.jsonl`, `progress.csv`, logs and
   * committed checkpoints, written by the driver only. A sandboxed trial may read it, not write.
   */
  readonly dir: string;
  /**
   * The trial's own folder (exists, inside `dir`): the one place a sandboxed trial may write
   * (its files and checkpoint staging). `session.trialDir` and the trial's working directory.
   */
  readonly workDir: string;
  /** The iteration to continue from (0 for a fresh trial). */
  readonly iteration: number;
  /** Committed checkpoint to restore from. */
  readonly checkpoint?: string;
  /** Seconds already spent in earlier runs of this trial (for `time_total_s`). */
  readonly timeOffsetS: number;
  /** Extra permissions. */
  readonly sandbox: SandboxPolicy;
  /** Environment variables set for the trial (e.g. `CUDA_VISIBLE_DEVICES`). */
  readonly env: Readonly<Record<string, string>>;
  /** The trial's memory cap in MiB (`resources.memoryMb`), if any. */
  readonly memoryMb?: number;
  /**
   * What this trial holds: the experiment's `resources`, with the `cpu` and `gpu` a
   * resource-changing scheduler gave it. A cluster executor requests it; the trial sees its
   * `cpu` and `gpu` as `session.resources`.
   */
  readonly resources?: Resources;
}

/** What an executor knows of a trial before it starts: enough for its process and sandbox. */
export type WarmJob = Pick<
  TrialJob,
  "trialId" | "dir" | "workDir" | "sandbox" | "env" | "memoryMb" | "resources"
>;

/** A report as it arrives from a trial, before the driver fills in the automatic keys. */
export interface RawReport {
  /** The user's metrics. */
  readonly metrics: Readonly<Record<string, JsonValue>>;
  /** A staging folder holding a checkpoint written with this report, if any. */
  readonly checkpointDir?: string;
  /** Seconds since this run of the trial started, measured by the trial. */
  readonly elapsedS?: number;
}

/** The driver's answer to a report. */
export type Ack = "continue" | "stop";

/** How a trial process ended. */
export type TrialExit =
  | { readonly kind: "done" }
  | { readonly kind: "stopped" }
  | {
    readonly kind: "error";
    readonly message: string;
    readonly stack?: string;
    /** Set when Deno refused a permission: the trial broke its sandbox. */
    readonly violation?: { readonly permission: string; readonly target: string };
    /** Set when the trainable itself is unusable (no default export): retrying cannot help. */
    readonly fatal?: boolean;
  };

/** What the runner gives an executor to talk back. */
export interface TrialListener {
  /** A report came in; the returned promise resolves with the ack sent back to the trial. */
  report(report: RawReport): Promise<Ack>;
  /** Where the trial runs, once a cluster executor knows (a node name; shown in the live table). */
  placed?(node: string): void;
  /**
   * A lazy executor's trial is about to use its folder (`session.trialDir`): the runner writes
   * the trial's folder and records now, and from then on writes its reports there too.
   */
  needsDir?(): void;
}

/** A running trial. */
export interface TrialHandle {
  /** Resolves once the trial has ended, however it ended. */
  readonly exited: Promise<TrialExit>;
  /**
   * Ask the trial to end; after `graceMs` it is sent SIGTERM, then SIGKILL, whatever it does
   * (a process executor must end it). Calling it again with a shorter grace speeds this up.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs trials: in a sandboxed subprocess, in-process, or on a cluster. The runner never looks
 * at which: it hands over a {@linkcode TrialJob} and gets reports through the
 * {@linkcode TrialListener}. A process executor owns the transport to its trials and speaks the
 * protocol through `core/channel.ts` (`TrialChannelServer` to authenticate a per-trial
 * connection, `driveTrial` to run it); it must enforce `stop` with signals.
 */
export interface Executor {
  /** A short name. */
  readonly name: string;
  /**
   * Called once before the first trial: warm caches, check the trainable, open channels.
   * `sandbox` is the experiment's policy (every job carries it too).
   */
  prepare?(
    ctx: { readonly experimentDir: string; readonly sandbox?: SandboxPolicy },
  ): Promise<void>;
  /**
   * How many trials this executor can run at once with these per-trial resources, when it
   * places trials itself (a cluster). The runner then limits concurrency by this (or
   * `maxConcurrent`) instead of this machine's CPUs and GPUs. @default local resources
   */
  capacity?(resources: Resources): number;
  /**
   * True when a trial needs no folder to start (it runs in the driver's process and calls
   * {@linkcode TrialListener.needsDir} before it uses `workDir`). The runner then records its
   * reports in the experiment's journal only, and writes the trial's own folder and records
   * (`params.json`, `result.jsonl`, `progress.csv`) only when it needs them: a checkpoint, an
   * exploit, `needsDir`, an error, or `trialFolders: "end"`. @default false
   */
  readonly lazyTrialDir?: boolean;
  /**
   * Starts the process of a trial the runner expects to start soon, ahead of time (a warm
   * start; the runner asks for the next two): the runner has made its folder, and the process
   * gets that trial's permissions and waits for its assignment. `start` with that trial id (and
   * the same `env`) then hands the trial to it; a warmed process is never used for another trial.
   */
  warm?(next: WarmJob): void;
  /** Kills the warmed process of `trialId` if `start` never took it. */
  unwarm?(trialId: string): void;
  /**
   * Whether it runs trials of several workers (`resources.workers > 1`); an experiment that
   * asks for workers on an executor without it is refused before any trial starts.
   * @default false
   */
  readonly multiWorker?: boolean;
  /** Starts a trial. */
  start(job: TrialJob, listener: TrialListener): TrialHandle;
  /** Releases pooled resources. */
  close?(): Promise<void>;
}
