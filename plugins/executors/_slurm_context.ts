// Private to the Slurm executor (slurm.ts): the one record its parts share.

import { resolveModule } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import { slurm } from "./_slurm_commands.ts";
import { type SlurmExecutorOptions, slurmMode } from "./_slurm_options.ts";
import type { SlurmSetup } from "./_slurm_setup.ts";

/** The name the executor's jobs and steps carry (`--job-name`), so they can be found. */
export const JOB_PREFIX = "tunebox-";

/**
 * What one `slurmExecutor` knows, shared by its parts (setup, batch jobs, warm steps, trials):
 * its options as resolved when it is made, what `prepare()` found ({@linkcode SlurmSetup}), the
 * run counter, and the Slurm queries that need the commands' environment. It owns no process:
 * trials own their `srun` or batch job ({@linkcode SlurmTrial} in `_slurm_trial.ts`).
 */
export class SlurmContext {
  /** The trainable module's URL. */
  readonly moduleUrl: string;
  /** How long a stopped trial may take to exit before it is signalled. */
  readonly graceMs: number;
  /** How often batch jobs are polled. */
  readonly pollMs: number;
  /** Where warnings go. */
  readonly log: (message: string) => void;
  /** The whole environment of the Slurm commands (never a trial's). */
  readonly cmdEnv: Record<string, string>;
  /** Job steps of the driver's allocation, or one batch job per trial. */
  readonly mode: "step" | "sbatch";
  /** What `prepare()` found and wrote; undefined before it ran. */
  setup: SlurmSetup | undefined;
  /** Trial runs started so far: each gets the next number (its location origin). */
  runs = 0;
  /** True until the first trial starts: that one also probes that storage is shared. */
  firstTrial = true;
  /**
   * The runs whose srun or stopped step is not over yet (step mode): `close()` ends them and
   * waits, so no step outlives the driver holding CPUs.
   */
  readonly live: Set<{ kill(): void; readonly settled: Promise<void> }> = new Set();
  #addresses: Promise<Record<string, string>> | undefined;

  /**
   * Resolves the options.
   *
   * @throws {TypeError} for a mode other than "step" or "sbatch".
   */
  constructor(trainable: string | URL, readonly options: SlurmExecutorOptions) {
    this.moduleUrl = resolveModule(trainable);
    this.graceMs = options.graceMs ?? 5000;
    this.pollMs = options.pollMs ?? 1000;
    this.log = options.log ?? ((m: string) => console.warn(`tunebox: ${m}`));
    this.cmdEnv = { ...(options.commandEnv ?? Deno.env.toObject()) };
    this.mode = slurmMode(options.mode, this.cmdEnv);
  }

  /** Node name -> address (`NodeAddr`), from `scontrol show node`, asked once. */
  nodeAddresses(): Promise<Record<string, string>> {
    this.#addresses ??= slurm("scontrol", ["show", "node", "-o"], this.cmdEnv).then((r) => {
      const out: Record<string, string> = {};
      for (const line of r.out.split("\n")) {
        const name = /(?:^|\s)NodeName=(\S+)/.exec(line)?.[1];
        const addr = /(?:^|\s)NodeAddr=(\S+)/.exec(line)?.[1];
        if (name) out[name] = addr ?? name;
      }
      if (!Object.keys(out).length) {
        throw new TuneError(`scontrol show node listed no nodes: ${r.err.trim() || r.out.trim()}`);
      }
      return out;
    });
    return this.#addresses;
  }

  /** The node a trial's step or batch job runs on, from `squeue` ("" when unknown). */
  async whereIs(trialId: string, jobId: string | undefined): Promise<string> {
    const args = jobId
      ? ["-h", "-j", jobId, "-o", "%N"]
      : ["-h", "-s", "-j", this.cmdEnv.SLURM_JOB_ID ?? "", "-o", "%j %N"];
    const r = await slurm("squeue", args, this.cmdEnv).catch(() => undefined);
    if (!r) return "";
    if (jobId) return r.out.trim().split("\n")[0] ?? "";
    for (const line of r.out.split("\n")) {
      const [name, nodes] = line.trim().split(/\s+/);
      if (name === `${JOB_PREFIX}${trialId}`) return nodes ?? "";
    }
    return "";
  }
}
