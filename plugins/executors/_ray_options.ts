// Private to the Ray executor (ray.ts, which re-exports RayExecutorOptions): its options, and
// the settings its parts read (the options checked, with their defaults).

import type { SandboxPolicy } from "../../core/plugin.ts";
import type { ChannelLimits } from "../../core/channel.ts";

/** Options of {@linkcode rayExecutor}. */
export interface RayExecutorOptions {
  /**
   * The cluster's dashboard (Jobs API) address, e.g. `http://head:8265`.
   * @default `$RAY_ADDRESS` when it is an http(s) URL, else `http://127.0.0.1:8265`
   */
  readonly address?: string;
  /**
   * The cluster's token when it runs with `RAY_AUTH_MODE=token`.
   * @default `$RAY_AUTH_TOKEN`
   */
  readonly token?: string;
  /**
   * Where Deno comes from on the nodes: `"path"` (already installed, on the PATH Ray's jobs
   * get), `"pip"` (installed per job by Ray's `runtime_env: { pip: ["deno==<version>"] }`
   * from PyPI), or an absolute path on every node.
   * @default "path"
   */
  readonly deno?: "path" | "pip" | string;
  /** The Deno version `deno: "pip"` installs. @default the driver's own (`Deno.version.deno`) */
  readonly denoVersion?: string;
  /**
   * Extra `pip install` options for `deno: "pip"` (Ray's `pip_install_options`): a mirror
   * (`["--index-url", "http://pypi.internal/simple"]`) or, for nodes without network, a folder of
   * wheels every node sees (`["--no-index", "--find-links", "/shared/wheels"]`).
   * @default none (PyPI)
   */
  readonly denoPipOptions?: readonly string[];
  /**
   * Whether the experiment folder, the trainable, Tunebox and `denoDir` are on storage every
   * node sees (a cluster file system). When false, the trainable's folder and Tunebox are shipped
   * to the nodes as a Ray `working_dir` package (zipped, content-hashed, uploaded once), trials
   * write into a temp folder on their node, and checkpoints are streamed over the trial's
   * channel into the driver's experiment folder (and back to a trial that restores one).
   * @default true
   */
  readonly sharedStorage?: boolean;
  /**
   * Without shared storage: the largest checkpoint a trial may stream to the driver, in bytes.
   * A trial whose checkpoint is larger fails with a message that says so.
   * @default 1073741824 (1 GiB)
   */
  readonly checkpointMaxBytes?: number;
  /** Before the first trial, run a probe job that checks `deno --version` on the cluster. @default true */
  readonly probe?: boolean;
  /**
   * How long a trial's job may wait for Ray to place it (PENDING) before the trial fails.
   * @default 600000
   */
  readonly pendingTimeoutMs?: number;
  /**
   * Refuse a trial at once when no alive node has the resources it asks for (an autoscaling
   * cluster that adds such nodes on demand wants false). @default true
   */
  readonly checkPlacement?: boolean;
  /** The address nodes reach the driver at. @default the first non-loopback IPv4 address */
  readonly driverHost?: string;
  /** The driver's TLS port. @default any free port */
  readonly driverPort?: number;
  /** Silence after which the driver gives a trial up, and a trial its driver, in ms. @default 60000 */
  readonly heartbeatMs?: number;
  /** How often the jobs' states are polled, in ms. @default 1000 */
  readonly pollMs?: number;
  /** Trials at once. @default 64 */
  readonly maxJobs?: number;
  /**
   * The `DENO_DIR` trials run with (shared storage): the driver caches the module graph into
   * it. @default `<experiment folder>/.deno_dir`
   */
  readonly denoDir?: string;
  /** Extra permissions for every trial (merged with each job's). */
  readonly sandbox?: SandboxPolicy;
  /** The `deno.json` trials resolve imports with, or `false`. @default the nearest above the trainable */
  readonly denoConfig?: string | false;
  /** How long a stopped trial may take to exit before its job is stopped. @default 5000 */
  readonly graceMs?: number;
  /** `--v8-flags` for trials. */
  readonly v8Flags?: string;
  /** Bounds on the trial channel. */
  readonly channel?: Omit<ChannelLimits, "onRefuse">;
  /** Where warnings go (refused connections, stopped leftovers). @default console.warn */
  readonly log?: (message: string) => void;
  /**
   * How many trials one Ray job may run, one after another (as Ray Tune's `reuse_actors` reuses
   * an actor): a job whose trial ended runs the next trial that asks for the same resources,
   * instead of Ray starting a new job, with its Python supervisor (seconds each), per trial. Such
   * a job runs Tunebox's launcher, which gets each trial's command over the authenticated channel
   * and starts it as a process of its own with exactly that trial's sandbox flags and variables
   * (never reusing a trial's process). A job with no trial to run for 2 s ends. Without shared
   * storage the launcher forwards each trial's output to the driver. Trials of several workers
   * get a job per worker, as without it.
   * @default 1 (a job per trial)
   */
  readonly trialsPerJob?: number;
  /**
   * How long a collective of a multi-worker trial (`session.allreduce`, ...) may wait for the
   * other workers before it fails the trial: what catches a worker that hangs without dying
   * (one whose job ends fails the trial at once). @default 1800000 (30 minutes, as PyTorch's)
   */
  readonly collectiveTimeoutMs?: number;
}

/**
 * {@linkcode RayExecutorOptions} checked, with their defaults filled in: what the executor's
 * parts read. The options themselves stay at hand for those read as given (`sandbox`,
 * `denoConfig`, `channel`, `driverHost`, ...).
 */
export interface RaySettings {
  /** The options as given. */
  readonly options: RayExecutorOptions;
  /** The dashboard's http(s) URL. */
  readonly address: string;
  /** The cluster's token, if it has one. */
  readonly token: string | undefined;
  /** `"path"`, `"pip"` or an absolute path on every node. */
  readonly deno: string;
  /** The version `deno: "pip"` installs. */
  readonly denoVersion: string;
  /** Whether every node sees the experiment folder (`sharedStorage`). */
  readonly shared: boolean;
  /** How long a stopped trial may take before its process or job is stopped, in ms. */
  readonly graceMs: number;
  /** How often the jobs' states are polled, in ms. */
  readonly pollMs: number;
  /** How long a job may stay PENDING before its trial fails, in ms. */
  readonly pendingTimeoutMs: number;
  /** The largest checkpoint a trial may stream to the driver (without shared storage). */
  readonly checkpointMaxBytes: number;
  /** Trials one Ray job may run, one after another (1: a job per trial). */
  readonly trialsPerJob: number;
  /** Whether a trial no alive node can hold is refused at once. */
  readonly checkPlacement: boolean;
  /** Where warnings go. */
  readonly log: (message: string) => void;
}

/**
 * Checks `options` and fills in the defaults.
 *
 * @throws {TypeError} for an address that is not an http(s) URL, a bad `deno` or `denoPipOptions`.
 * @throws {RangeError} for a bad `collectiveTimeoutMs`, `checkpointMaxBytes` or `trialsPerJob`.
 */
export function raySettings(options: RayExecutorOptions): RaySettings {
  const envAddress = Deno.env.get("RAY_ADDRESS");
  const address = options.address ??
    (envAddress && /^https?:\/\//.test(envAddress) ? envAddress : "http://127.0.0.1:8265");
  if (!/^https?:\/\/[^/]+/.test(address)) {
    throw new TypeError(
      `rayExecutor: address must be the dashboard's http(s) URL (e.g. http://head:8265), got ` +
        JSON.stringify(address),
    );
  }
  const token = options.token ?? Deno.env.get("RAY_AUTH_TOKEN") ?? undefined;
  const deno = options.deno ?? "path";
  if (deno !== "path" && deno !== "pip" && !deno.startsWith("/")) {
    throw new TypeError(
      `rayExecutor: deno must be "path", "pip" or an absolute path, got ${JSON.stringify(deno)}`,
    );
  }
  const denoVersion = options.denoVersion ?? Deno.version.deno;
  if (
    options.denoPipOptions !== undefined &&
    (!Array.isArray(options.denoPipOptions) ||
      options.denoPipOptions.some((x) => typeof x !== "string"))
  ) {
    throw new TypeError(
      `rayExecutor: denoPipOptions must be a list of pip options (strings), got ${
        JSON.stringify(options.denoPipOptions)
      }`,
    );
  }
  const checkpointMaxBytes = options.checkpointMaxBytes ?? 1 << 30;
  if (
    options.collectiveTimeoutMs !== undefined &&
    !(Number.isFinite(options.collectiveTimeoutMs) && options.collectiveTimeoutMs > 0)
  ) {
    throw new RangeError(
      `rayExecutor: collectiveTimeoutMs must be a number of ms > 0, got ${
        JSON.stringify(options.collectiveTimeoutMs)
      }`,
    );
  }
  if (!(Number.isSafeInteger(checkpointMaxBytes) && checkpointMaxBytes > 0)) {
    throw new RangeError(
      `rayExecutor: checkpointMaxBytes must be a whole number of bytes > 0, got ${
        JSON.stringify(options.checkpointMaxBytes)
      }`,
    );
  }
  const trialsPerJob = options.trialsPerJob ?? 1;
  if (!(Number.isSafeInteger(trialsPerJob) && trialsPerJob >= 1)) {
    throw new RangeError(
      `rayExecutor: trialsPerJob must be a whole number of trials >= 1, got ${
        JSON.stringify(options.trialsPerJob)
      }`,
    );
  }
  return {
    options,
    address,
    token,
    deno,
    denoVersion,
    shared: options.sharedStorage ?? true,
    graceMs: options.graceMs ?? 5000,
    pollMs: options.pollMs ?? 1000,
    pendingTimeoutMs: options.pendingTimeoutMs ?? 600_000,
    checkpointMaxBytes,
    trialsPerJob,
    checkPlacement: options.checkPlacement ?? true,
    log: options.log ?? ((m: string) => console.warn(`tunebox: ${m}`)),
  };
}
