/**
 * Slurm's command-line clients as the Slurm executor uses them: resource flags, `sbatch`
 * submission, one `squeue` poll for all live batch jobs, `scontrol show job` for a finished
 * job's verdict, `scancel`. Every failure is reported in Slurm's own words.
 *
 * @module
 */

import { TuneError } from "../../core/errors.ts";

export {
  allocationCpus,
  resourceArgs,
  type SlurmOptions,
  type SlurmResources,
} from "./_slurm_resources.ts";

/** The output of a finished command. */
export interface CommandResult {
  /** Exit code (-1: it could not start). */
  readonly code: number;
  /** Standard output. */
  readonly out: string;
  /** Standard error. */
  readonly err: string;
}

/**
 * Runs a Slurm client command with `env` as its whole environment.
 *
 * @throws {TuneError} when the program is not installed ("not inside a Slurm installation").
 */
export async function slurm(
  cmd: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  stdin?: string,
): Promise<CommandResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args: [...args],
      env: { ...env },
      clearEnv: true,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw notInstalled(cmd);
    throw e;
  }
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** The error for a missing Slurm client program. */
export function notInstalled(cmd: string): TuneError {
  return new TuneError(
    `The Slurm executor is not inside a Slurm installation: \`${cmd}\` was not found on PATH. ` +
      `Run the driver on a login or compute node of the cluster (where srun/sbatch work), or use ` +
      `the local executor.`,
  );
}

/**
 * `--export=NIL,K=V,...`: exactly these variables (plus Slurm's own `SLURM_*`), nothing of the
 * submitting environment.
 *
 * @throws {TuneError} when a value holds a comma (Slurm's list separator) or a newline.
 */
export function exportArg(env: Readonly<Record<string, string>>): string {
  const parts = ["NIL"];
  for (const [k, v] of Object.entries(env)) {
    if (/[,\n]/.test(v)) {
      throw new TuneError(
        `The environment variable ${k} cannot be passed to a Slurm job: its value holds a comma ` +
          `or a newline, which --export cannot carry`,
      );
    }
    parts.push(`${k}=${v}`);
  }
  return `--export=${parts.join(",")}`;
}

/** Slurm's final word on a job. */
export interface JobVerdict {
  /** `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`, ... */
  readonly state: string;
  /** Slurm's reason, e.g. `NonZeroExitCode`, `TimeLimit`. */
  readonly reason: string;
  /** The node(s) it ran on. */
  readonly nodes: string;
  /** `ExitCode=<code>:<signal>`. */
  readonly exitCode: string;
}

const TERMINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "OUT_OF_MEMORY",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "SPECIAL_EXIT",
  "REVOKED",
]);

/** Whether a job state is final. */
export function isTerminal(state: string): boolean {
  return TERMINAL.has(state);
}

/** Parses `scontrol show job -o <id>` output. */
export function parseJob(text: string): JobVerdict | undefined {
  const field = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1] ?? "";
  const state = field("JobState");
  if (!state) return undefined;
  return {
    state,
    reason: field("Reason"),
    nodes: field("NodeList"),
    exitCode: field("ExitCode"),
  };
}

/**
 * A Slurm verdict as a trial's error text: Slurm's state (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL,
 * CANCELLED), refined by what `slurmstepd` wrote to the job's stderr (a memory kill under
 * `OverMemoryKill` leaves the state FAILED but says "exceeded memory limit").
 */
export function verdictText(v: JobVerdict | undefined, stderrTail: string): string {
  let state = v?.state ?? "UNKNOWN";
  if (/exceeded (job )?memory limit|oom-kill|out of memory/i.test(stderrTail)) {
    state = "OUT_OF_MEMORY";
  } else if (/DUE TO TIME LIMIT/.test(stderrTail)) state = "TIMEOUT";
  else if (/DUE TO NODE FAILURE/.test(stderrTail)) state = "NODE_FAIL";
  const words: Record<string, string> = {
    OUT_OF_MEMORY: "killed for memory (over its --mem; raise resources.memoryMb)",
    TIMEOUT: "killed at its time limit (--time)",
    NODE_FAIL: "lost with its node (NODE_FAIL)",
    CANCELLED: "cancelled (scancel or an administrator)",
    PREEMPTED: "preempted",
    BOOT_FAIL: "could not boot its node",
    DEADLINE: "past its deadline",
  };
  const where = v?.nodes && v.nodes !== "(null)" ? ` on ${v.nodes}` : "";
  const what = words[state]
    ? `was ${words[state]}`
    : `ended ${state}` + (v?.reason && v.reason !== "None" ? ` (${v.reason})` : "") +
      (v?.exitCode ? `, exit code ${v.exitCode}` : "");
  return `Slurm: ${state}: the job${where} ${what}`;
}

/**
 * Submits a batch script; returns the job id.
 *
 * @throws {TuneError} with Slurm's words when it refuses the job at submit time.
 */
export async function sbatch(
  args: readonly string[],
  script: string,
  env: Readonly<Record<string, string>>,
): Promise<string> {
  const r = await slurm("sbatch", ["--parsable", ...args], env, script);
  const id = /^(\d+)/.exec(r.out.trim())?.[1];
  if (r.code !== 0 || !id) {
    throw new SlurmRefusal(r.err.trim() || r.out.trim() || `sbatch exited with code ${r.code}`);
  }
  return id;
}

/** Slurm refused a request at submit time; the message is Slurm's. */
export class SlurmRefusal extends TuneError {
  /** Creates the error. */
  constructor(slurmWords: string) {
    super(`Slurm refused the trial's job: ${slurmWords}`);
    this.name = "SlurmRefusal";
  }
}

/** Whether `srun`'s stderr says the step was refused before anything ran. */
export function srunRefusal(stderr: string): string | undefined {
  const m =
    /^srun: error: (Unable to allocate resources|Unable to create step|Invalid|.*not available|.*permitted|.*specification).*$/m
      .exec(stderr);
  if (!m) {
    const fatal = /^srun: fatal: .*$/m.exec(stderr);
    return fatal?.[0];
  }
  return m[0];
}

/** States of the given jobs that `squeue` still lists (missing: finished and gone). */
export async function squeue(
  ids: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<Map<string, { state: string; nodes: string }>> {
  const out = new Map<string, { state: string; nodes: string }>();
  if (!ids.length) return out;
  const r = await slurm("squeue", ["-h", "-j", ids.join(","), "-o", "%i %T %N"], env);
  for (const line of r.out.split("\n")) {
    const [id, state, nodes] = line.trim().split(/\s+/);
    if (id && state) out.set(id, { state, nodes: nodes ?? "" });
  }
  return out;
}

/** `scontrol show job -o <id>`, parsed. */
export async function showJob(
  id: string,
  env: Readonly<Record<string, string>>,
): Promise<JobVerdict | undefined> {
  const r = await slurm("scontrol", ["show", "job", "-o", id], env);
  return r.code === 0 ? parseJob(r.out) : undefined;
}

/** `scancel` (a signal, or the whole job). Never throws. */
export async function scancel(
  id: string,
  env: Readonly<Record<string, string>>,
  signal?: string,
): Promise<void> {
  await slurm("scancel", [...(signal ? [`--signal=${signal}`, "--full"] : []), id], env)
    .catch(() => {});
}

/**
 * The steps of allocation `jobId` that the `srun` with process id `pid` asked for, from
 * `scontrol show step -o` (its `SrunHost:Pid`): ids like `"27.3"`, without a request still
 * waiting for CPUs (`"27.TDB"`, which holds nothing).
 *
 * @throws {TuneError} when Slurm cannot be asked (the caller cannot tell "none" from "unknown").
 */
export async function stepsOfSrun(
  jobId: string,
  pid: number,
  env: Readonly<Record<string, string>>,
): Promise<string[]> {
  const r = await slurm("scontrol", ["show", "step", "-o", jobId], env);
  // An allocation without steps: "Job step <id>. not found" (exit code 1).
  if (r.code !== 0 && !/not found/i.test(r.err + r.out)) {
    throw new TuneError(`scontrol show step ${jobId} failed: ${r.err.trim() || r.out.trim()}`);
  }
  return parseStepsOfSrun(r.out, pid);
}

/** The step ids of `scontrol show step -o` lines whose `SrunHost:Pid` ends in `:<pid>`. */
export function parseStepsOfSrun(text: string, pid: number): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const id = /(?:^|\s)StepId=(\S+)/.exec(line)?.[1];
    const srun = /(?:^|\s)SrunHost:Pid=(\S+)/.exec(line)?.[1];
    if (id && !id.endsWith(".TDB") && srun?.endsWith(`:${pid}`)) out.push(id);
  }
  return out;
}

/** The ids of the steps of allocation `jobId` that `squeue -s` lists. */
export async function listedSteps(
  jobId: string,
  env: Readonly<Record<string, string>>,
): Promise<Set<string>> {
  const r = await slurm("squeue", ["-h", "-s", "-j", jobId, "-o", "%i"], env);
  if (r.code !== 0) {
    throw new TuneError(`squeue -s -j ${jobId} failed: ${r.err.trim() || r.out.trim()}`);
  }
  return new Set(r.out.split("\n").map((l) => l.trim()).filter(Boolean));
}
