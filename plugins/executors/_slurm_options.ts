// Private to the Slurm executor (slurm.ts, which re-exports SlurmExecutorOptions): its options,
// and the one rule for its mode. Light on purpose: slurm.ts imports it in every process that
// imports mod.ts (trials included), so it imports types only.

import type { SandboxPolicy } from "../../core/plugin.ts";
import type { ChannelLimits } from "../../core/channel.ts";
import type { SlurmOptions } from "./_slurm_resources.ts";

/** Options of {@linkcode slurmExecutor}. */
export interface SlurmExecutorOptions {
  /**
   * `"step"`: each trial is a job step of the allocation the driver runs in (`salloc`, or an
   * `sbatch` script). `"sbatch"`: each trial is its own batch job (from a login node).
   * @default "step" inside an allocation (`SLURM_JOB_ID` set), else "sbatch"
   */
  readonly mode?: "step" | "sbatch";
  /** Partition, account, QOS, time limit, constraint, node list, extra flags. */
  readonly slurm?: SlurmOptions;
  /**
   * The address compute nodes reach the driver at (the driver listens there with TLS).
   * @default the first non-loopback IPv4 address of the driver's machine
   */
  readonly driverHost?: string;
  /** The driver's TLS port. @default any free port */
  readonly driverPort?: number;
  /** Silence after which the driver gives a trial up, and a trial its driver, in ms. @default 60000 */
  readonly heartbeatMs?: number;
  /** How often batch jobs are polled with `squeue`, in ms. @default 1000 */
  readonly pollMs?: number;
  /**
   * Batch jobs (sbatch mode) or steps (step mode) at once. @default step mode: the
   * allocation's CPUs / `resources.cpu`; sbatch mode: 32
   */
  readonly maxJobs?: number;
  /**
   * The environment of the Slurm commands (`srun`, `sbatch`, `squeue`, ...), e.g. a
   * `SLURM_CONF`. Trials never see it. @default the driver's environment
   */
  readonly commandEnv?: Readonly<Record<string, string>>;
  /**
   * The `DENO_DIR` trials run with: the driver caches the trainable's module graph into it, so
   * it must be on storage every node sees. @default `<experiment folder>/.deno_dir`
   */
  readonly denoDir?: string;
  /**
   * The first TCP port of a multi-worker trial's ring: rank r listens on `ringPorts + r` on its
   * node (open these between compute nodes where a firewall is in the way).
   * @default a random port in 20000–49999 for each run of a trial
   */
  readonly ringPorts?: number;
  /** Extra permissions for every trial (merged with each job's). */
  readonly sandbox?: SandboxPolicy;
  /** The `deno.json` trials resolve imports with, or `false`. @default the nearest above the trainable */
  readonly denoConfig?: string | false;
  /** How long a stopped trial may take to exit before Slurm signals it. @default 5000 */
  readonly graceMs?: number;
  /** `--v8-flags` for trials. */
  readonly v8Flags?: string;
  /** Bounds on the trial channel. */
  readonly channel?: Omit<ChannelLimits, "onRefuse">;
  /** Where the executor's warnings go (refused connections, cancelled leftovers). @default console.warn */
  readonly log?: (message: string) => void;
}

/**
 * The executor's mode: `mode` when given, else "step" inside an allocation (`SLURM_JOB_ID` in
 * the commands' environment `cmdEnv`), else "sbatch".
 *
 * @throws {TypeError} for a mode other than "step" or "sbatch".
 */
export function slurmMode(
  mode: SlurmExecutorOptions["mode"],
  cmdEnv: Readonly<Record<string, string>>,
): "step" | "sbatch" {
  const m = mode ?? (cmdEnv.SLURM_JOB_ID ? "step" : "sbatch");
  if (m !== "step" && m !== "sbatch") {
    throw new TypeError(`slurmExecutor: mode must be "step" or "sbatch", got ${String(m)}`);
  }
  return m;
}
