// Private to the Slurm executor: a trial's resources as Slurm flags, and an allocation's CPUs.
// A module of its own, apart from the command-line clients (_slurm_commands.ts): slurm.ts needs
// these for capacity(), and whatever slurm.ts imports is read by every process that imports
// mod.ts, a trial's too.

import { TuneError } from "../../core/errors.ts";

/** Where a Slurm trial runs: partition, account and the rest, as `sbatch`/`srun` flags. */
export interface SlurmOptions {
  /** `--partition`. */
  readonly partition?: string;
  /** `--account`. */
  readonly account?: string;
  /** `--qos`. */
  readonly qos?: string;
  /** `--time` (a trial's wall-clock limit, e.g. `"30"`, `"1:00:00"`). */
  readonly time?: string;
  /** `--constraint` (node features, e.g. `"a100"`). */
  readonly constraint?: string;
  /** `--nodelist` (`-w`). */
  readonly nodelist?: string;
  /** Any further flags, passed as they are (e.g. `["--exclusive"]`). */
  readonly extraArgs?: readonly string[];
}

/** One trial's resources, in Slurm's units (per worker when it has several). */
export interface SlurmResources {
  /** CPUs per trial or worker (`-c`), a whole number. */
  readonly cpu: number;
  /** Memory per trial in MB (`--mem`); per worker `--mem-per-cpu` (its share per CPU). */
  readonly memoryMb?: number;
  /** GPUs per trial (`--gres=gpu:<n>`) or per worker (`--gpus-per-task=<n>`), a whole number. */
  readonly gpu?: number;
  /** Workers of the trial (tasks of its step or batch job). @default 1 */
  readonly workers?: number;
}

/**
 * `-c`, `--mem`, `--gres` and the placement flags for one trial (for a trial of several
 * workers: `-c`, `--mem-per-cpu` and `--gpus-per-task` per task).
 *
 * @throws {TuneError} on a fractional GPU or CPU request (Slurm allocates whole ones).
 */
export function resourceArgs(r: SlurmResources, s: SlurmOptions): string[] {
  if (!Number.isInteger(r.cpu) || r.cpu < 1) {
    throw new TuneError(
      `resources.cpu is ${r.cpu}: on Slurm a trial gets whole CPUs (-c), so give an integer >= 1`,
    );
  }
  const gpu = r.gpu ?? 0;
  if (!Number.isInteger(gpu) || gpu < 0) {
    throw new TuneError(
      `resources.gpu is ${gpu}: Slurm allocates whole GPUs (--gres=gpu:<n>), so fractional GPUs ` +
        `cannot be shared between trials on Slurm; give an integer`,
    );
  }
  const args = [`--cpus-per-task=${r.cpu}`];
  // --mem and --gres count per node, and the workers of a trial may share a node or spread:
  // per worker, memory goes per CPU and GPUs per task.
  const perTask = (r.workers ?? 1) > 1;
  if (r.memoryMb !== undefined) {
    args.push(
      perTask
        ? `--mem-per-cpu=${Math.ceil(r.memoryMb / r.cpu)}M`
        : `--mem=${Math.ceil(r.memoryMb)}M`,
    );
  }
  if (gpu > 0) args.push(perTask ? `--gpus-per-task=${gpu}` : `--gres=gpu:${gpu}`);
  if (s.partition) args.push(`--partition=${s.partition}`);
  if (s.account) args.push(`--account=${s.account}`);
  if (s.qos) args.push(`--qos=${s.qos}`);
  if (s.time) args.push(`--time=${s.time}`);
  if (s.constraint) args.push(`--constraint=${s.constraint}`);
  if (s.nodelist) args.push(`--nodelist=${s.nodelist}`);
  args.push(...(s.extraArgs ?? []));
  return args;
}

/** The CPUs of an allocation, from `SLURM_JOB_CPUS_PER_NODE` (`"4(x2),2"` -> 10). */
export function allocationCpus(value: string | undefined): number | undefined {
  if (!value) return undefined;
  let total = 0;
  for (const part of value.split(",")) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (!m) return undefined;
    total += Number(m[1]) * Number(m[2] ?? 1);
  }
  return total;
}
