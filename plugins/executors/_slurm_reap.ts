// Private to the Slurm executor (slurm.ts): ending a job step so that Slurm frees its CPUs.

import { scancel, stepsOfSrun } from "./_slurm_commands.ts";

/** What {@linkcode reapStep} needs besides the srun. */
export interface ReapOptions {
  /** The allocation the step belongs to (`SLURM_JOB_ID`). */
  readonly allocation: string;
  /** The Slurm commands' environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Where a step Slurm may keep is reported. */
  readonly log: (message: string) => void;
  /** Names the step in messages (`trial <id>`). */
  readonly label: string;
  /** How long srun may take to exit once its step is cancelled, before SIGKILL. @default 60000 */
  readonly limitMs?: number;
  /** How long Slurm may keep listing the step once srun has exited. @default 30000 */
  readonly settleMs?: number;
}

/**
 * Ends a job step for good: every way a step is stopped in step mode ends here (the scheduler's
 * stop past its grace, a trial gone silent, a broken trial, a warm step no trial came for, the
 * driver's shutdown), and it resolves once Slurm lists no step of this srun any more.
 *
 * Why not SIGKILL srun: srun first asks the controller for the step (which then holds its
 * CPUs), and only then launches its tasks through the nodes' slurmd (after its `--prolog`, if
 * any). An srun killed between the two leaves a step no slurmstepd runs: Slurm (22.05) keeps
 * listing it as RUNNING, holding its CPUs until the allocation ends, and `scancel` cannot end
 * it (no node knows it). So the step is cancelled through the controller while srun lives,
 * and srun is left to exit by itself, which it does once its tasks are gone or its launch is
 * refused.
 *
 * While srun runs: every step the controller lists for it (by `SrunHost:Pid`) is cancelled;
 * with none listed (its request still waits for CPUs, or it has not asked yet) srun gets
 * SIGTERM, which withdraws the request. Once srun has exited, any step Slurm still lists for it
 * is cancelled again until it is gone. SIGKILL comes only after `limitMs`, with a warning.
 */
export async function reapStep(srun: Deno.ChildProcess, o: ReapOptions): Promise<void> {
  const pid = srun.pid;
  let exited = false;
  const status = srun.status.then(() => {
    exited = true;
  }, () => {
    exited = true;
  });
  const signal = (s: Deno.Signal) => {
    try {
      srun.kill(s);
    } catch { /* gone */ }
  };
  const limit = Date.now() + (o.limitMs ?? 60_000);
  let termAt = 0;
  while (!exited) {
    const steps = await stepsOfSrun(o.allocation, pid, o.env).catch(() => undefined);
    if (exited) break;
    if (steps?.length) {
      for (const id of steps) await scancel(id, o.env);
    } else if (Date.now() - termAt >= 2000) {
      // Nothing granted yet (or Slurm did not answer): srun withdraws a waiting request.
      termAt = Date.now();
      signal("SIGTERM");
    }
    if (Date.now() > limit) {
      o.log(
        `the srun of ${o.label} did not exit after its step was cancelled; killing it ` +
          `(Slurm may then keep its step ${steps?.join(",") || "(none listed)"} until the ` +
          `allocation ends)`,
      );
      signal("SIGKILL");
      await status;
      break;
    }
    await Promise.race([status, pause(250)]);
  }
  // srun has exited: a step Slurm still lists for it has nobody left to end it.
  const settle = Date.now() + (o.settleMs ?? 30_000);
  for (let unanswered = 0;;) {
    const left = await stepsOfSrun(o.allocation, pid, o.env).catch(() => undefined);
    if (left && !left.length) return;
    if (!left) unanswered++;
    if (Date.now() > settle || unanswered >= 3) {
      o.log(
        left
          ? `Slurm still lists step ${left.join(",")} of ${o.label} after its srun exited; ` +
            `its CPUs may stay held until the allocation ends`
          : `Slurm did not answer whether the step of ${o.label} is gone (scontrol show step)`,
      );
      return;
    }
    for (const id of left ?? []) await scancel(id, o.env);
    await pause(250);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
