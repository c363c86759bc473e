// Private to the Slurm executor (slurm.ts): one run of one trial, as a job step or a batch job.

import {
  channelExit,
  DEFAULT_MAX_LOG_BYTES,
  pipeToFile,
  settle,
  shq,
  silentExit,
  type StopEscalation,
  stopEscalation,
  unreachableDriverExit,
} from "./_shared.ts";
import { join } from "../../core/_path.ts";
import type {
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
  WarmJob,
} from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial, type TrialConnection } from "../../core/channel.ts";
import { parseDenial } from "../../core/sandbox.ts";
import { TuneError } from "../../core/errors.ts";
import {
  exportArg,
  notInstalled,
  sbatch,
  scancel,
  showJob,
  srunRefusal,
  verdictText,
} from "./_slurm_commands.ts";
import { stderrOf } from "./_slurm_host.ts";
import type { SlurmContext } from "./_slurm_context.ts";
import { slurmArgs, type SlurmSetup, trialCommand } from "./_slurm_setup.ts";
import type { BatchJobs } from "./_slurm_batch.ts";
import { driveGroup, type RingNet, ringNet } from "./_slurm_group.ts";
import { reapStep } from "./_slurm_reap.ts";

/** A warm step's trial, once the runner starts it. */
export interface Binding {
  readonly job: TrialJob;
  readonly listener: TrialListener;
}

/** A trial's handle as the executor keeps it: also killed at once, and ready once connected. */
export type SlurmTrialHandle = TrialHandle & {
  /** Ends the run now, whatever it does (a warm step no trial came for). */
  kill(): void;
  /** Resolves once its step runs (connected) or is gone. */
  ready: Promise<unknown>;
};

/** How Slurm's side of a run ended: `srun`'s exit, or the batch job's final state. */
interface SlurmEnd {
  readonly state: string;
  readonly nodes: string;
  readonly code?: number;
}

/**
 * One run of one trial: its `srun` (step mode) or batch job (sbatch mode), the connections of
 * its workers, its conversation with the runner, and how it is stopped. A warm start gives
 * only what the process needs (`WarmJob`), and the trial through `binding` once the runner
 * starts it: the conversation waits for that.
 *
 * It owns the `srun` child or the batch job id until both the process and the conversation have
 * ended; `handle()` is what the runner holds. A stop escalates from the protocol's `stop` to
 * SIGTERM, then (step mode) to ending the step through Slurm's controller (`reapStep`), and a
 * stopped run's exit waits until Slurm no longer lists its step: its CPUs are free by then.
 */
export class SlurmTrial {
  readonly #ctx: SlurmContext;
  readonly #setup: SlurmSetup;
  readonly #batch: BatchJobs;
  readonly #job: WarmJob | TrialJob;
  readonly #run: number;
  readonly #token = crypto.randomUUID();
  readonly #workers: number;
  /** The trial once the runner starts it (at once unless this is a warm start). */
  readonly #bound: Promise<Binding>;
  readonly #isWarm: boolean;
  /** The channel ids its workers say (`<trial id>@<rank>` for several). */
  readonly #ids: string[];
  /** Every worker's connection, once all have connected. */
  readonly #connected: Promise<TrialConnection[]>;
  /** The first trial also probes that storage is shared (its failure then says so). */
  readonly #probing: boolean;

  /** The runner asked it to stop (its end then reads "stopped"). */
  #stopRequested = false;
  /** It went silent and was cancelled for that. */
  #silent = false;
  /** Killed before its srun was spawned: the srun must never run. */
  #killed = false;
  /** The node it runs on, once known. */
  #node = "";
  /** Its batch job (sbatch mode), once submitted. */
  #jobId: string | undefined;
  /** Its srun (step mode), once spawned. */
  #srun: Deno.ChildProcess | undefined;
  /** The last 4 KiB of srun's stderr. */
  readonly #stderrTail = { text: "" };
  /** Why it could not be launched (a refusal at submit time, srun missing, ...). */
  #launchError: TuneError | undefined;
  /** Rank 0's connection, watched for silence, once its trial is bound. */
  #connection: TrialConnection | undefined;
  /** The other ranks' connections. */
  readonly #others: TrialConnection[] = [];
  /** The ring of a multi-worker trial. */
  #ring: { net: RingNet; addresses: Record<string, string> } | undefined;
  /** Its step being ended for good (step mode, once it was stopped): see `reapStep`. */
  #reaping: Promise<void> | undefined;
  /** Slurm's side ended (srun exited, or the batch job left the queue). */
  readonly #ended: Promise<SlurmEnd>;
  #resolveEnded!: (v: SlurmEnd) => void;
  readonly #converse: Promise<Conversation>;
  readonly #exited: Promise<TrialExit>;
  /** SIGTERM, then SIGKILL, at the earliest deadline a stop asked for. */
  readonly #escalation: StopEscalation;

  /** Starts the run: launches its step or batch job and waits for its workers. */
  constructor(
    ctx: SlurmContext,
    setup: SlurmSetup,
    batch: BatchJobs,
    job: WarmJob | TrialJob,
    listener: TrialListener | undefined,
    binding?: Promise<Binding>,
  ) {
    this.#ctx = ctx;
    this.#setup = setup;
    this.#batch = batch;
    this.#job = job;
    this.#run = ++ctx.runs;
    this.#workers = job.resources?.workers ?? 1;
    this.#isWarm = binding !== undefined;
    this.#bound = binding ?? Promise.resolve({ job: job as TrialJob, listener: listener! });
    // A worker says `<trial id>@<rank>` (its SLURM_PROCID) and its node in its hello.
    this.#ids = this.#workers > 1
      ? Array.from({ length: this.#workers }, (_, r) => `${job.trialId}@${r}`)
      : [job.trialId];
    this.#connected = Promise.all(
      this.#ids.map((id) => setup.channel.server.expect(id, this.#token)),
    );
    this.#probing = ctx.firstTrial;
    ctx.firstTrial = false;
    this.#ended = new Promise<SlurmEnd>((r) => this.#resolveEnded = r);
    this.#escalation = stopEscalation(() => this.#cancel("TERM"), () => this.#cancel("KILL"));
    this.#launch().catch((e) => {
      this.#launchError = e instanceof TuneError
        ? e
        : new TuneError(String((e as Error)?.message ?? e));
      this.#resolveEnded({ state: "REFUSED", nodes: "" });
    });
    this.#converse = this.#talk();
    this.#converse.catch(() => {});
    this.#exited = this.#exit();
    if (ctx.mode === "step") {
      // Until its srun and any stop of its step are over, the driver's close() waits for it.
      const run = { kill: () => this.#kill(), settled: this.#settled() };
      ctx.live.add(run);
      run.settled.then(() => ctx.live.delete(run));
    }
  }

  /** Resolves once srun has exited and its step, if it was stopped, is gone from Slurm. */
  async #settled(): Promise<void> {
    await Promise.all([this.#ended, this.#exited.catch(() => {})]);
    await this.#reaping;
  }

  /** What the runner holds. */
  handle(): SlurmTrialHandle {
    return {
      exited: this.#exited,
      stop: async (grace = this.#ctx.graceMs) => {
        this.#stopRequested = true;
        this.#connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        this.#escalation.escalate(grace);
        await this.#exited;
      },
      ready: Promise.race([this.#connected, this.#ended]),
      kill: () => this.#kill(),
    };
  }

  /** Starts its step (srun) or submits its batch job; resolves once that is under way. */
  async #launch(): Promise<void> {
    const ctx = this.#ctx, job = this.#job, workers = this.#workers, ch = this.#setup.channel;
    if (workers > 1) {
      const addresses = await ctx.nodeAddresses();
      this.#ring = {
        net: ringNet(addresses, workers, ctx.options.ringPorts, ch.netPermission),
        addresses,
      };
    }
    const { argv, env } = trialCommand(
      ctx,
      this.#setup,
      job,
      this.#run,
      this.#ring ? { net: this.#ring.net.grants } : undefined,
    );
    const exportFlag = exportArg({
      ...env,
      ...ch.trialEnv(job.trialId, this.#token),
      TUNEBOX_NODE_VAR: "SLURMD_NODENAME",
      ...(workers > 1 ? { TUNEBOX_RANK_VAR: "SLURM_PROCID" } : {}),
    });
    const flags = slurmArgs(ctx, job);
    if (ctx.mode === "step") await this.#step(exportFlag, flags, argv);
    else await this.#submit(exportFlag, flags, argv);
  }

  /** Step mode: runs `srun` until it exits. */
  async #step(exportFlag: string, flags: string[], argv: string[]): Promise<void> {
    const job = this.#job;
    const stepEnv = { ...this.#ctx.cmdEnv };
    // An allocation's per-CPU memory default conflicts with --mem on the step.
    for (const k of ["SLURM_MEM_PER_CPU", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_GPU"]) {
      delete stepEnv[k];
    }
    try {
      const srunArgv = [
        ...this.#setup.setpriv,
        "srun",
        "--exact",
        "--quiet",
        "--kill-on-bad-exit=1",
        ...(this.#workers > 1 ? ["--label"] : []),
        exportFlag,
        ...flags,
        ...argv,
      ];
      this.#srun = new Deno.Command(srunArgv[0], {
        args: srunArgv.slice(1),
        env: stepEnv,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (this.#killed) this.#srun.kill("SIGKILL");
    } catch (e) {
      throw e instanceof Deno.errors.NotFound ? notInstalled("srun") : e;
    }
    const srun = this.#srun;
    const logs = Promise.all([
      pipeToFile(srun.stdout, join(job.dir, "stdout.log"), DEFAULT_MAX_LOG_BYTES),
      pipeToFile(
        srun.stderr,
        join(job.dir, "stderr.log"),
        DEFAULT_MAX_LOG_BYTES,
        this.#stderrTail,
      ),
    ]).catch(() => {}); // a warm step's folder may be gone (the trial never came)
    const st = await srun.status;
    await logs;
    this.#resolveEnded({
      state: st.success ? "COMPLETED" : "FAILED",
      nodes: this.#node,
      code: st.code,
    });
  }

  /** Sbatch mode: submits the batch job, then leaves it to the batch poller. */
  async #submit(exportFlag: string, flags: string[], argv: string[]): Promise<void> {
    const job = this.#job;
    // Several workers: the batch job's tasks, started as one step by srun inside it
    // (srun takes -c and the GPUs per task from its own flags, not from the job's).
    const r = job.resources ?? {};
    const launch = this.#workers > 1
      ? [
        this.#setup.srunPath,
        "--kill-on-bad-exit=1",
        "--label",
        `--ntasks=${this.#workers}`,
        `--cpus-per-task=${r.cpu ?? 1}`,
        ...(r.gpu ? [`--gpus-per-task=${r.gpu}`] : []),
        ...argv,
      ]
      : argv;
    const script = `#!/bin/sh\n# tunebox trial ${job.trialId}\nexec ${launch.map(shq).join(" ")}\n`;
    const jobId = await sbatch(
      [
        exportFlag,
        "--open-mode=append",
        `--output=${join(job.dir, "stdout.log")}`,
        `--error=${join(job.dir, "stderr.log")}`,
        ...flags,
      ],
      script,
      this.#ctx.cmdEnv,
    );
    this.#jobId = jobId;
    await this.#batch.watch(
      jobId,
      (v) => this.#resolveEnded({ ...v, nodes: v.nodes || this.#node }),
    );
  }

  /** Talks with the trial's workers once connected (and, when warm, once its trial came). */
  async #talk(): Promise<Conversation> {
    const ch = this.#setup.channel;
    const all = await Promise.race([this.#connected, this.#ended.then(() => undefined)]);
    if (!all) return {};
    const [first, ...rest] = all;
    // A warm step waits here, connected and its trainable imported, for its trial. Nothing
    // reads its messages meanwhile, so the driver only pings it (else it would give its
    // driver up); watching its silence starts with its trial.
    const pinger = this.#isWarm
      ? setInterval(
        () => first.send({ v: PROTOCOL_VERSION, type: "ping" }),
        Math.max(50, Math.floor(ch.heartbeatMs / 4)),
      )
      : undefined;
    const b = await Promise.race([this.#bound, this.#ended.then(() => undefined)])
      .catch(() => undefined);
    clearInterval(pinger);
    if (!b) {
      this.#cancel("KILL");
      first.close();
      return {};
    }
    const { job, listener } = b;
    const onSilence = () => {
      this.#silent = true;
      this.#cancel("KILL");
    };
    this.#connection = ch.keepAlive(first, onSilence);
    if (this.#workers > 1) {
      const nodes = all.map((c) => c.node ?? "");
      for (const c of rest) this.#others.push(ch.keepAlive(c, onSilence));
      return await driveGroup([this.#connection, ...this.#others], nodes, job, listener, {
        ...this.#ring!,
        addresses: await this.#ctx.nodeAddresses(),
      });
    }
    // Where it runs, for the live table and error messages: the trial says (SLURMD_NODENAME),
    // else Slurm is asked once it is surely running.
    (first.node ? Promise.resolve(first.node) : this.#ctx.whereIs(job.trialId, this.#jobId))
      .then((n) => {
        if (!n) return;
        this.#node = n;
        listener.placed?.(n);
      });
    return await driveTrial(this.#connection, job, listener);
  }

  /**
   * Signals the run. Step mode: TERM is SIGTERM to srun (which passes it to the trial); KILL
   * ends the step through Slurm (`reapStep`), never by SIGKILL to an srun that may still be
   * launching it. Sbatch mode: through `scancel`.
   */
  #cancel(signal: "TERM" | "KILL"): void {
    if (this.#ctx.mode === "step") {
      if (signal === "KILL") {
        this.#reap();
        return;
      }
      try {
        this.#srun?.kill("SIGTERM");
      } catch { /* gone */ }
    } else if (this.#jobId) {
      // TERM: scancel the job (Slurm sends SIGTERM, then SIGKILL after its KillWait);
      // KILL: SIGKILL to every process of the job now.
      scancel(this.#jobId, this.#ctx.cmdEnv, signal === "KILL" ? "KILL" : undefined);
    }
  }

  /** Ends the step for good, once (step mode); before srun is spawned, it never runs. */
  #reap(): void {
    const srun = this.#srun;
    if (!srun) {
      this.#killed = true;
      return;
    }
    this.#reaping ??= reapStep(srun, {
      allocation: this.#ctx.cmdEnv.SLURM_JOB_ID ?? "",
      env: this.#ctx.cmdEnv,
      log: this.#ctx.log,
      label: `trial ${this.#job.trialId}`,
    });
  }

  #kill(): void {
    this.#killed = this.#stopRequested = true;
    this.#cancel("KILL");
    this.#exited.catch(() => {});
  }

  /** The trial's end as the runner sees it. */
  async #exit(): Promise<TrialExit> {
    const ch = this.#setup.channel;
    // A trial that said done (or error) has ended for the runner even before Slurm noticed.
    const talkOrEnd = await Promise.race([
      this.#converse.then((c) => ({ talk: c })),
      this.#ended.then(() => undefined),
    ]);
    let talk = talkOrEnd?.talk;
    if (talk?.broken) this.#cancel("KILL");
    if (!talk?.outcome || talk.broken) {
      const end = await this.#ended;
      // A stopped step has ended once Slurm no longer holds its CPUs.
      await this.#reaping;
      this.#connection?.close();
      talk ??= await settle(this.#converse, 5000);
      this.#escalation.clear();
      for (const id of this.#ids) ch.server.forget(id);
      for (const c of this.#others) c.close();
      if (this.#launchError) {
        return {
          kind: "error",
          message: this.#launchError.message,
          // A refused request fails every trial alike; a controller that did not answer may
          // answer the retry.
          fatal: !/Unable to contact|timed out|try again/i.test(this.#launchError.message),
        };
      }
      const spoken = channelExit(talk, this.#stopRequested);
      if (spoken) return spoken;
      const tailText = await stderrOf(this.#job.dir, this.#stderrTail.text);
      if (this.#silent) {
        return silentExit(ch.heartbeatMs, "was cancelled");
      }
      return this.#failure(end, tailText);
    }
    this.#escalation.clear();
    for (const id of this.#ids) ch.server.forget(id);
    // The job is ending by itself; make sure it does.
    settle(this.#ended, 10_000).then((v) => {
      if (!v) this.#cancel("KILL");
    });
    return talk.outcome;
  }

  /** Why a run that said nothing of its end failed, in Slurm's and the trial's words. */
  #failure(end: SlurmEnd, tail: string): Promise<TrialExit> | TrialExit {
    const { mode, cmdEnv } = this.#ctx;
    const job = this.#job, jobId = this.#jobId, connected = this.#connection !== undefined;
    const refusal = mode === "step" && !connected ? srunRefusal(tail) : undefined;
    if (refusal) {
      return { kind: "error", message: `Slurm refused the trial's step: ${refusal}`, fatal: true };
    }
    const lines = tail.trim().split("\n").slice(-8).join("\n");
    const unreachable = unreachableDriverExit(tail, "compute node");
    if (unreachable) return unreachable;
    const unshared = (why: string): TrialExit => ({
      kind: "error",
      message: `the experiment folder ${this.#setup.experimentDir} is not visible on the node ` +
        `the first trial ran on: storage must be shared by every node (a cluster file ` +
        `system), and so must the trainable, Tunebox and Deno; ${why}`,
      fatal: true,
    });
    if (
      this.#probing && !connected && /Module not found|couldn't chdir|No such file/.test(tail)
    ) {
      return unshared(`last lines of stderr.log:\n${lines}`);
    }
    const denial = parseDenial(lines);
    return (async (): Promise<TrialExit> => {
      let text: string;
      if (mode === "sbatch" && jobId) {
        const v = await showJob(jobId, cmdEnv);
        // A batch job whose --chdir or --output folder its node lacks never starts: Slurm
        // says JobLaunchFailure, and stderr.log, being on that folder, stays empty.
        if (this.#probing && !connected && v?.reason === "JobLaunchFailure" && !tail.trim()) {
          return unshared(
            `Slurm could not launch the job on ${v.nodes} (JobLaunchFailure), as happens when ` +
              `its working folder (${job.workDir}) is missing there`,
          );
        }
        text = verdictText(v, tail);
      } else {
        text = /error:|CANCELLED|Killed/.test(tail)
          ? verdictText({
            state: end.state,
            reason: "",
            nodes: end.nodes,
            exitCode: String(end.code ?? ""),
          }, tail)
          : `the job step exited with code ${end.code}`;
      }
      return {
        kind: "error",
        message: `${text}` + (lines ? `; last lines of stderr.log:\n${lines}` : ""),
        ...(denial ? { violation: denial } : {}),
      };
    })();
  }
}
