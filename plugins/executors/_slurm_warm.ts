// Private to the Slurm executor (slurm.ts): warm starts in step mode.

import type { TrialJob, WarmJob } from "../../core/plugin.ts";
import type { Binding, SlurmTrialHandle } from "./_slurm_trial.ts";

/** The step started ahead for the trial the runner expects next. */
interface WarmStep {
  readonly trialId: string;
  /** The environment, memory and CPUs/GPUs it was started with: only the same may take it. */
  readonly env: string;
  readonly memoryMb: number | undefined;
  readonly resources: string;
  readonly handle: SlurmTrialHandle;
  /** Hands it its trial. */
  readonly bind: (b: Binding) => void;
  /** Tells it no trial comes, and stops it. */
  discard(): void;
}

/**
 * Warm starts in step mode: the step of the trial the runner will start next is launched
 * while every slot is busy, so `srun`, Deno's start, the TLS connection and the trainable's
 * import are done when the trial is handed over. Its `srun --exact` asks for the trial's own
 * CPUs, so it waits inside Slurm until a running step ends and frees them — the CPUs this
 * trial takes next anyway. Only one warm step at a time (the next trial's; two could take
 * each other's CPUs), launched only once every started trial's step is running (else it could
 * be given their CPUs first), and discarded when another trial starts instead: a warm step
 * never holds CPUs another trial waits for. Multi-worker trials start cold.
 *
 * Owns the runner's list of trials ahead, the one warm step, and the set of started steps that
 * have not connected yet.
 */
export class WarmSteps {
  /**
   * The trials the runner asked to start ahead, in the order it expects to start them; only
   * the first gets a warm step, and only once no started trial's step waits for CPUs.
   */
  readonly #ahead: WarmJob[] = [];
  #warmed: WarmStep | undefined;
  /** Started trials whose step has not connected yet (it may still wait for CPUs). */
  readonly #launching = new Set<Promise<unknown>>();

  /**
   * `launch` starts a trial's step whose trial comes later through `binding`, or returns
   * undefined when the executor is not prepared.
   */
  constructor(
    readonly launch: (
      job: WarmJob,
      binding: Promise<Binding>,
    ) => SlurmTrialHandle | undefined,
  ) {}

  /** The runner expects to start `next` soon. */
  warm(next: WarmJob): void {
    if ((next.resources?.workers ?? 1) > 1) return;
    if (this.#ahead.some((w) => w.trialId === next.trialId)) return;
    this.#ahead.push(next);
    this.#launchWarm();
  }

  /** The runner no longer expects to start `trialId`. */
  unwarm(trialId: string): void {
    const i = this.#ahead.findIndex((w) => w.trialId === trialId);
    if (i >= 0) this.#ahead.splice(i, 1);
    if (this.#warmed?.trialId === trialId) {
      this.#warmed.discard();
      this.#warmed = undefined;
    }
    this.#launchWarm();
  }

  /**
   * The runner starts `job`: its warm step, bound to it, when one was started for it with the
   * same environment and resources; else undefined, and any warm step gives its CPUs up first.
   */
  take(job: TrialJob, bind: Binding): SlurmTrialHandle | undefined {
    const w = this.#warmed;
    this.#warmed = undefined;
    const i = this.#ahead.findIndex((a) => a.trialId === job.trialId);
    if (i >= 0) this.#ahead.splice(i, 1);
    if (!w) return undefined;
    // Its environment was fixed when it started: only the same one may take the trial.
    if (
      w.trialId === job.trialId && w.env === JSON.stringify(job.env) &&
      w.memoryMb === job.memoryMb && w.resources === cpuGpu(job) &&
      (job.resources?.workers ?? 1) === 1
    ) {
      w.bind(bind);
      return w.handle;
    }
    // Another trial starts: the warm step gives its CPUs up first.
    w.discard();
    return undefined;
  }

  /** Counts a started trial as launching until its step connects (or ends). */
  track(ready: Promise<unknown>): void {
    const p = ready.catch(() => {}).finally(() => {
      this.#launching.delete(p);
      this.#launchWarm();
    });
    this.#launching.add(p);
  }

  /** Forgets the trials ahead and stops the warm step (the experiment ends). */
  close(): void {
    this.#ahead.length = 0;
    this.#warmed?.discard();
    this.#warmed = undefined;
  }

  /** Launches the warm step of the first trial ahead, when nothing is in its way. */
  #launchWarm(): void {
    const next = this.#ahead[0];
    if (this.#warmed || !next || this.#launching.size) return;
    let bind!: (b: Binding) => void, refuse!: (e: Error) => void;
    const binding = new Promise<Binding>((res, rej) => {
      bind = res;
      refuse = rej;
    });
    binding.catch(() => {});
    const handle = this.launch(next, binding);
    if (!handle) return;
    this.#warmed = {
      trialId: next.trialId,
      env: JSON.stringify(next.env),
      memoryMb: next.memoryMb,
      resources: cpuGpu(next),
      handle,
      bind,
      discard() {
        refuse(new Error("never assigned"));
        handle.kill();
      },
    };
  }
}

/** A job's CPUs and GPUs, to tell whether a warm step asked for what the trial holds now. */
function cpuGpu(job: WarmJob): string {
  return JSON.stringify([job.resources?.cpu ?? 1, job.resources?.gpu ?? 0]);
}
