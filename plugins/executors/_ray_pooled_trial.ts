// Private to the Ray executor (ray.ts): a trial run by a pooled job (`trialsPerJob > 1`).

import { join } from "../../core/_path.ts";
import type { TrialExit, TrialHandle, TrialJob, TrialListener } from "../../core/plugin.ts";
import { type DriverMessage, PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial, type TrialConnection } from "../../core/channel.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { channelExit, settle, silentExit, type StopEscalation, stopEscalation } from "./_shared.ts";
import { RayApiError, rayErrorLine } from "./_ray_client.ts";
import type { LauncherEnded } from "./_ray_launcher.ts";
import { ForwardedLog, stderrOf } from "./_ray_io.ts";
import { entrypoint, need } from "./_ray_job_spec.ts";
import { failure } from "./_ray_failure.ts";
import type { Launcher, LauncherPool } from "./_ray_pool.ts";
import type { RayContext } from "./_ray_context.ts";

/**
 * A trial run by a pooled job (`trialsPerJob > 1`): the job's launcher starts the trial's
 * command, the very one a job of its own would run, and says when its process ended. Stopping
 * escalates from the trial's `stop` message to SIGTERM and SIGKILL on the trial's process
 * group, sent by the launcher; the job lives on for the next trial.
 *
 * It holds its turn in a pooled job (`Launcher`) from `acquire` until its process ended, then
 * gives the job back to the pool; `handle()` is what the runner holds.
 */
export class PooledRayTrial {
  readonly #ctx: RayContext;
  readonly #pool: LauncherPool;
  readonly #ch: RemoteChannel;
  readonly #job: TrialJob;
  readonly #listener: TrialListener;
  readonly #token = crypto.randomUUID();
  /** Its connection, once it said hello with its token. */
  readonly #connected: Promise<TrialConnection>;
  /** Its id in its launcher's messages (`<trial id>-<run>`). */
  readonly #assign: string;
  /** Its folder: without shared storage a fresh temp folder on its node. */
  readonly #trialDir: string;
  /** Its output as the launcher forwards it, into its stdout.log (without shared storage). */
  readonly #output: ForwardedLog;

  /** The pooled job it was given. */
  #l: Launcher | undefined;
  /** Its launcher was told to run it. */
  #ran = false;
  /** stop() was called. */
  #stopRequested = false;
  /** Its heartbeats stopped: its process was killed. */
  #silent = false;
  /** `#launchError` ends the experiment (no trial can run). */
  #fatal = false;
  /** Why it never ran. */
  #launchError: string | undefined;
  /** Its connection watched for silence, once the trial said hello. */
  #connection: TrialConnection | undefined;
  /** Its process ended (how, as its launcher says), or it was lost or never ran (undefined). */
  readonly #ended: Promise<LauncherEnded | undefined>;
  #resolveEnded!: (v: LauncherEnded | undefined) => void;
  /** Resolves "stop" once stop() was called (a trial waiting for its turn gives it up). */
  readonly #stopping: Promise<"stop">;
  #onStop!: () => void;
  /** Its launcher told to run it, or it never will (`#launchError`, or stopped first). */
  readonly #launch: Promise<void>;
  readonly #converse: Promise<Conversation>;
  readonly #exited: Promise<TrialExit>;
  /** SIGTERM, then SIGKILL, at the earliest deadline a stop asked for. */
  readonly #escalation: StopEscalation;

  /** Starts the trial: waits for its turn in a pooled job, then has its launcher run it. */
  constructor(
    ctx: RayContext,
    pool: LauncherPool,
    ch: RemoteChannel,
    job: TrialJob,
    listener: TrialListener,
    run: number,
  ) {
    this.#ctx = ctx;
    this.#pool = pool;
    this.#ch = ch;
    this.#job = job;
    this.#listener = listener;
    this.#connected = ch.server.expect(job.trialId, this.#token);
    this.#assign = `${job.trialId}-${run}`;
    this.#trialDir = ctx.settings.shared
      ? job.workDir
      : `/tmp/tunebox-${ctx.expId}/${this.#assign}`;
    this.#output = new ForwardedLog(join(job.dir, "stdout.log"));
    this.#ended = new Promise<LauncherEnded | undefined>((r) => this.#resolveEnded = r);
    this.#stopping = new Promise<"stop">((r) => this.#onStop = () => r("stop"));
    this.#launch = this.#start(run).catch((e) => {
      this.#launchError = String((e as Error)?.message ?? e);
      if (this.#l) pool.vacate(this.#l);
    }).finally(() => {
      if (!this.#ran) this.#resolveEnded(undefined);
    });
    this.#ended.then((e) => {
      const l = this.#l;
      if (l && this.#ran) {
        l.exits.delete(this.#assign);
        l.outputs.delete(this.#assign);
        if (e) pool.vacate(l);
      }
    });
    this.#converse = this.#talk();
    this.#converse.catch(() => {});
    this.#escalation = stopEscalation(() => this.#kill("SIGTERM"), () => this.#kill("SIGKILL"));
    this.#exited = this.#exit();
  }

  /** What the runner holds. */
  handle(): TrialHandle {
    return {
      exited: this.#exited,
      stop: async (grace = this.#ctx.settings.graceMs) => {
        this.#stopRequested = true;
        this.#onStop();
        this.#connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        this.#escalation.escalate(grace);
        await this.#exited;
      },
    };
  }

  /**
   * Waits for a pooled job that runs (a fresh one when the one given ended first, twice at
   * most), then tells its launcher to run the trial; returns early when stopped, or when the
   * job is never placed or fails (`#launchError`).
   */
  async #start(run: number): Promise<void> {
    const ctx = this.#ctx, pool = this.#pool, job = this.#job;
    const { shared, pendingTimeoutMs } = ctx.settings;
    let l: Launcher;
    for (let attempt = 0;; attempt++) {
      const a = pool.acquire(this.#ch, job);
      l = this.#l = a.l;
      if (a.turn && await Promise.race([a.turn, this.#stopping]) === "stop") {
        if (l.reserved) {
          l.reserved = false;
          l.served--;
        } else pool.vacate(l);
        return;
      }
      if (this.#stopRequested) return pool.vacate(l);
      const left = pendingTimeoutMs - (Date.now() - l.submittedAt);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ok = await Promise.race([
        l.connected,
        this.#stopping,
        new Promise<"late">((r) => timer = setTimeout(() => r("late"), Math.max(0, left))),
      ]);
      clearTimeout(timer);
      if (ok === "stop") {
        // A job made for this trial and not running yet is given up; a running one kept.
        if (!l.conn) pool.retire(l);
        else pool.vacate(l);
        return;
      }
      if (ok === "late") {
        this.#launchError = `Ray did not place trial ${job.trialId}'s job ${l.jobId} within ` +
          `${pendingTimeoutMs} ms (it asks for ${JSON.stringify(need(job))}; Ray says: ${
            rayErrorLine(l.info?.message ?? "")
          }): the cluster is busy or lacks those resources; raise pendingTimeoutMs or ask ` +
          `for less`;
        pool.retire(l);
        return;
      }
      if (ok && !l.dead) break;
      // The job ended before its launcher ran a trial: say why (once), or try a fresh job
      // when the one reused has just gone.
      if (l.served > 1 && attempt < 2) continue;
      await l.submitted?.catch(() => {});
      if (l.launchError) {
        const e = l.launchError as Error & { fatal?: boolean; status?: number };
        this.#launchError = e.message;
        this.#fatal = !!e.fatal ||
          e instanceof RayApiError && [400, 401, 403].includes(e.status!);
        return;
      }
      await l.ended;
      const f = failure(ctx, l.info, l.logs, { jobId: l.jobId, node: l.node, connected: false });
      this.#launchError = (f as { message?: string }).message ?? `Ray job ${l.jobId} ended`;
      this.#fatal = !!(f as { fatal?: boolean }).fatal;
      return;
    }
    const assign = this.#assign;
    l.exits.set(assign, (e) => this.#resolveEnded(e));
    if (!shared) l.outputs.set(assign, (text) => this.#output.write(text));
    await l.conn!.send(
      {
        type: "run",
        id: assign,
        script: entrypoint(ctx, job, run, this.#ch, this.#token, this.#trialDir),
        ...(shared ? {} : { output: true }),
      } as unknown as DriverMessage,
    );
    this.#ran = true;
    if (l.node) this.#listener.placed?.(l.node);
  }

  /** Talks with the trial once connected. */
  async #talk(): Promise<Conversation> {
    const { options, shared, checkpointMaxBytes } = this.#ctx.settings;
    const job = this.#job, listener = this.#listener;
    const first = await Promise.race([this.#connected, this.#ended.then(() => undefined)]);
    if (!first) return {};
    const connection = this.#connection = this.#ch.keepAlive(first, () => {
      this.#silent = true;
      this.#kill("SIGKILL");
    });
    const talk = shared
      ? await driveTrial(connection, job, listener)
      : await driveTrial(connection, { ...job, workDir: this.#trialDir }, listener, {
        localDir: job.workDir,
        maxBytes: checkpointMaxBytes,
        ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
      });
    // Its process is ending: the next trial asking for the same may queue for this job.
    if (talk.outcome && this.#l) this.#l.finishing = true;
    return talk;
  }

  /** Has its launcher signal the trial's process group (once it runs). */
  #kill(signal: "SIGTERM" | "SIGKILL"): void {
    if (this.#ran) {
      this.#l?.conn?.send({ type: "kill", id: this.#assign, signal } as unknown as DriverMessage);
    }
  }

  /** The trial's end as the runner sees it. */
  async #exit(): Promise<TrialExit> {
    const ctx = this.#ctx, ch = this.#ch, job = this.#job;
    const { shared } = ctx.settings;
    await this.#launch;
    const talkOrEnd = await Promise.race([
      this.#converse.then((c) => ({ talk: c })),
      this.#ended.then(() => undefined),
    ]);
    let talk = talkOrEnd?.talk;
    if (talk?.broken) this.#kill("SIGKILL");
    if (!talk?.outcome || talk.broken) {
      const end = await this.#ended;
      this.#connection?.close();
      talk ??= await settle(this.#converse, 5000);
      this.#escalation.clear();
      ch.server.forget(job.trialId);
      if (this.#launchError) {
        return { kind: "error", message: this.#launchError, fatal: this.#fatal };
      }
      const spoken = channelExit(talk, this.#stopRequested);
      if (spoken) return spoken;
      if (this.#silent) {
        return silentExit(ch.heartbeatMs, "its process was killed");
      }
      const l = this.#l;
      const where = l?.node ? ` on node ${l.node}` : "";
      return failure(
        ctx,
        end
          ? { submission_id: l!.jobId, status: end.code === 0 ? "SUCCEEDED" : "FAILED" }
          : l?.info,
        shared ? await stderrOf(job.dir) : await this.#output.flushed(),
        {
          jobId: l?.jobId ?? "",
          node: l?.node ?? "",
          connected: !!this.#connection,
          verdict: end
            ? `the trial's process in Ray job ${l!.jobId}${where} ended with exit code ${end.code}${
              end.signal ? ` (${end.signal})` : ""
            }`
            : `Ray job ${l?.jobId} running the trial ended ${l?.info?.status ?? "(lost)"}${where}`,
        },
      );
    }
    this.#escalation.clear();
    ch.server.forget(job.trialId);
    // The process ends by itself; make sure it does (the job then takes the next trial).
    const done = settle(this.#ended, 15_000).then((v) => {
      if (!v) this.#kill("SIGKILL");
    });
    // Without shared storage the trial's last output comes with its end: wait for it.
    if (!shared) {
      await done;
      await this.#output.flushed();
    }
    return talk.outcome;
  }
}
