// Private to the Ray executor (ray.ts): a trial (or one worker of a multi-worker trial) run as
// a Ray job of its own.

import { join } from "../../core/_path.ts";
import type { TrialExit, TrialHandle, TrialJob, TrialListener } from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial, type TrialConnection } from "../../core/channel.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import type { GroupInfo } from "../../core/collectives.ts";
import { channelExit, settle, silentExit, type StopEscalation, stopEscalation } from "./_shared.ts";
import { isFinal, nodeOf, RayApiError, rayErrorLine, type RayJobInfo } from "./_ray_client.ts";
import { FollowedJobLog, holdOpen, logSuffix, stderrOf } from "./_ray_io.ts";
import { JOB_PREFIX } from "./_ray_jobs.ts";
import { entrypoint, need, placementError, rayResources } from "./_ray_job_spec.ts";
import { failure } from "./_ray_failure.ts";
import type { RayContext } from "./_ray_context.ts";

/** A worker of a multi-worker trial, as its group (`_ray_group.ts`) gives it to its job. */
export interface RayWorker {
  readonly rank: number;
  readonly workers: number;
  /**
   * Its ring permissions (its own port and its next neighbour's, on every node's address), once
   * the cluster was checked for room for the whole group; rejects when there is none.
   */
  readonly net: Promise<readonly string[]>;
  /** Waits for every worker to run; its place in the ring, or undefined when the group ends first. */
  gate(node: string): Promise<GroupInfo | undefined>;
  /** How many of the trial's workers Ray has placed (their jobs run) so far. */
  placed(): number;
  /** Says that this worker's job runs (called once). */
  running(): void;
}

/**
 * A trial (or one `worker` of a multi-worker trial) as a Ray job of its own: submitted with the
 * trial's resources and sandboxed command, watched in the jobs table until it ends (failing the
 * trial if it stays PENDING past `pendingTimeoutMs`), its output followed into the trial's
 * `stdout.log` without shared storage. Stopping sends the trial `stop`, then stops the job after
 * the grace; a job stopped while PENDING is abandoned (its token refused, deleted once it ends).
 * Once the trial is over its job's record is deleted.
 *
 * It owns its job from submission until its record is deleted (or handed to the jobs table to
 * delete once Ray ends it); `handle()` is what the runner holds.
 */
export class RayTrial {
  readonly #ctx: RayContext;
  readonly #ch: RemoteChannel;
  readonly #job: TrialJob;
  readonly #listener: TrialListener;
  /** Its place in a multi-worker trial (undefined for a trial of one worker). */
  readonly #worker: RayWorker | undefined;
  readonly #token = crypto.randomUUID();
  /** The id it says in its hello: `<trial id>@<rank>` for a worker of several. */
  readonly #chId: string;
  /** Its connection, once it said hello with its token. */
  readonly #connected: Promise<TrialConnection>;
  /** Its Ray job's submission id. */
  readonly #jobId: string;
  /** Its log files' suffix (a worker's rank). */
  readonly #sfx: string;
  /** When it was submitted: a job PENDING longer than `pendingTimeoutMs` fails the trial. */
  readonly #submittedAt = Date.now();
  /** Its folder: without shared storage a fresh temp folder on its node. */
  readonly #trialDir: string;
  /** Its output followed into its stdout.log on the driver (without shared storage). */
  readonly #output: FollowedJobLog | undefined;

  /** stop() was called. */
  #stopRequested = false;
  /** Its heartbeats stopped: its job was stopped. */
  #silent = false;
  /** Ray took the job. */
  #submitted = false;
  /** Ray runs the job (or the trial connected). */
  #running = false;
  /** Where it runs, once known. */
  #node = "";
  /** Ray's last record of the job. */
  #lastInfo: RayJobInfo | undefined;
  /** `#ended` resolved. */
  #over = false;
  /** Why it was never submitted, or never placed. */
  #launchError: TuneError | undefined;
  /** That error ends the experiment (no trial can run). */
  #fatal = false;
  /** Its connection watched for silence, once the trial said hello. */
  #connection: TrialConnection | undefined;
  /** Ray's last record of the job once it ended or was given up; undefined: lost, or never run. */
  readonly #ended: Promise<RayJobInfo | undefined>;
  #resolveEnded!: (v: RayJobInfo | undefined) => void;
  /** Its job submitted and watched, or its launch failed (`#launchError`). */
  readonly #launch: Promise<void>;
  readonly #converse: Promise<Conversation>;
  readonly #exited: Promise<TrialExit>;
  /** Stops its job at the earliest deadline a stop asked for. */
  readonly #escalation: StopEscalation;

  /** Starts the trial: checks it can be placed, records and submits its job. */
  constructor(
    ctx: RayContext,
    ch: RemoteChannel,
    job: TrialJob,
    listener: TrialListener,
    run: number,
    worker?: RayWorker,
  ) {
    this.#ctx = ctx;
    this.#ch = ch;
    this.#job = job;
    this.#listener = listener;
    this.#worker = worker;
    this.#chId = worker ? `${job.trialId}@${worker.rank}` : job.trialId;
    this.#connected = ch.server.expect(this.#chId, this.#token);
    this.#jobId = `${JOB_PREFIX}${ctx.expId}-${job.trialId.replace(/[^\w-]/g, "_")}${
      worker ? `-w${worker.rank}` : ""
    }-${run}`;
    this.#sfx = logSuffix(worker);
    this.#ended = new Promise<RayJobInfo | undefined>((r) => this.#resolveEnded = r);
    this.#ended.then(() => this.#over = true);
    const { shared } = ctx.settings;
    this.#trialDir = shared ? job.workDir : `/tmp/tunebox-${ctx.expId}/${this.#jobId}`;
    this.#launch = this.#submit(run).catch((e) => {
      const msg = e instanceof RayApiError && /already exists/.test(e.message)
        ? `${e.message} (a job of this name exists: another driver runs this experiment?)`
        : String((e as Error)?.message ?? e);
      this.#launchError = e instanceof TuneError && !(e instanceof RayApiError)
        ? e
        : new TuneError(msg);
      if (e instanceof RayApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
        this.#fatal = true;
      }
      this.#resolveEnded(undefined);
    });
    this.#output = shared
      ? undefined
      : new FollowedJobLog(ctx.ray, this.#jobId, join(job.dir, `stdout${this.#sfx}.log`));
    this.#converse = this.#talk();
    this.#converse.catch(() => {});
    this.#escalation = stopEscalation(() => this.#cancel());
    this.#exited = this.#exit();
  }

  /** What the runner holds. */
  handle(): TrialHandle {
    return {
      exited: this.#exited,
      stop: async (grace = this.#ctx.settings.graceMs) => {
        this.#stopRequested = true;
        if (!this.#running && !this.#connection) {
          // A PENDING job does not end when stopped; give it up (its token is refused from now
          // on) and delete it once Ray ends it.
          await this.#launch;
          if (this.#submitted && !this.#connection) this.#abandon();
        }
        this.#connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        this.#escalation.escalate(grace);
        await this.#exited;
      },
    };
  }

  /** Checks the job can be placed, records it in `.ray_jobs`, submits it and watches it. */
  async #submit(run: number): Promise<void> {
    const ctx = this.#ctx, job = this.#job, worker = this.#worker, jobId = this.#jobId;
    let ringNet: readonly string[] = [];
    if (worker) {
      ringNet = await worker.net.catch((e) => {
        this.#fatal = true;
        throw e;
      });
    } else {
      const unplaceable = await placementError(ctx, job);
      if (unplaceable) {
        this.#fatal = true;
        throw unplaceable;
      }
    }
    await ctx.jobs.record(ctx.experimentDir, jobId);
    await ctx.ray.submit({
      submission_id: jobId,
      entrypoint: entrypoint(ctx, job, run, this.#ch, this.#token, this.#trialDir, worker, ringNet),
      ...rayResources(job),
      ...(Object.keys(ctx.runtimeEnv).length ? { runtime_env: ctx.runtimeEnv } : {}),
      metadata: { tunebox_trial: job.trialId, tunebox_experiment: ctx.experimentDir },
    });
    this.#submitted = true;
    ctx.jobs.watch(jobId, (info) => this.#onPoll(info));
  }

  /** Ray's record of the job on a poll (undefined: Ray lost it). */
  #onPoll(info: RayJobInfo | undefined): void {
    const { pendingTimeoutMs } = this.#ctx.settings;
    const job = this.#job, worker = this.#worker, jobId = this.#jobId;
    if (info) this.#lastInfo = info;
    if (info?.status === "RUNNING" && !this.#running) {
      this.#running = true;
      worker?.running();
      this.#learnNode(info);
    }
    if (!info || isFinal(info.status)) {
      this.#ctx.jobs.unwatch(jobId);
      this.#resolveEnded(info);
    } else if (
      info.status === "PENDING" && Date.now() - this.#submittedAt > pendingTimeoutMs &&
      !this.#launchError
    ) {
      this.#launchError = new TuneError(
        `Ray did not place trial ${job.trialId}'s job ${jobId} within ${pendingTimeoutMs} ms ` +
          `(it asks for ${JSON.stringify(need(job))}; Ray says: ${
            rayErrorLine(info.message ?? "")
          })${
            worker
              ? `; ${worker.placed()} of the trial's ${worker.workers} workers were placed ` +
                `and waited for it`
              : ""
          }: the cluster is busy or lacks those resources; raise pendingTimeoutMs or ` +
          `ask for less`,
      );
      this.#abandon();
    }
  }

  /** Follows the job's log (without shared storage), once it was submitted. */
  #follow(): void {
    if (this.#submitted) this.#output?.follow();
  }

  /** Learns where the job runs from Ray's record (and tells the listener, for one worker). */
  #learnNode(info: RayJobInfo): void {
    this.#follow();
    if (this.#node) return;
    this.#node = nodeOf(info);
    if (this.#node && !this.#worker) this.#listener.placed?.(this.#node);
  }

  /** Gives the job up before it ran: stop it, refuse its token, delete it once it ends. */
  #abandon(): void {
    this.#ch.server.forget(this.#chId);
    this.#ctx.jobs.unwatch(this.#jobId);
    this.#ctx.jobs.abandon(this.#jobId);
    this.#resolveEnded(this.#lastInfo);
  }

  /** Talks with the trial once connected (a worker: once its whole group runs). */
  async #talk(): Promise<Conversation> {
    const { ray, settings: { options, shared, pollMs, checkpointMaxBytes } } = this.#ctx;
    const job = this.#job, worker = this.#worker, jobId = this.#jobId, ch = this.#ch;
    const first = await Promise.race([this.#connected, this.#ended.then(() => undefined)]);
    if (!first) return {};
    if (!this.#running) worker?.running();
    this.#running = true;
    this.#follow();
    // A short trial may end between two polls: learn its node now, for the live table.
    if (!this.#node) {
      const info = await settle(ray.get(jobId), 2000);
      if (info) this.#learnNode(info);
    }
    let connection = this.#connection = ch.keepAlive(first, () => {
      this.#silent = true;
      this.#cancel();
    });
    let group: GroupInfo | undefined;
    if (worker) {
      // Its node's address is where it listens: asked of Ray until known (it runs by now).
      while (!this.#node && !this.#over) {
        const info = await settle(ray.get(jobId), 5000);
        if (info) this.#learnNode(info);
        if (!this.#node) await new Promise((r) => setTimeout(r, pollMs));
      }
      // Waits here, connected but not started (never in a collective), for the others; its
      // heartbeats are read meanwhile, so its silence is still noticed (and not mistaken).
      const release = holdOpen(connection);
      group = this.#node ? await worker.gate(this.#node) : undefined;
      connection = this.#connection = release();
      if (!group) return {};
    }
    if (shared) return await driveTrial(connection, job, this.#listener, undefined, group);
    // The trial's folder is on its node: checkpoints come back over the channel into the
    // driver's trial folder, and one to restore goes out the same way.
    return await driveTrial(connection, { ...job, workDir: this.#trialDir }, this.#listener, {
      localDir: job.workDir,
      maxBytes: checkpointMaxBytes,
      ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
    }, group);
  }

  /** Stops the job (once submitted). */
  #cancel(): void {
    if (this.#submitted) this.#ctx.ray.stop(this.#jobId).catch(() => {});
  }

  /** The trial's end as the runner sees it. */
  async #exit(): Promise<TrialExit> {
    const ch = this.#ch;
    await this.#launch;
    const talkOrEnd = await Promise.race([
      this.#converse.then((c) => ({ talk: c })),
      this.#ended.then(() => undefined),
    ]);
    let talk = talkOrEnd?.talk;
    if (talk?.broken) this.#cancel();
    if (!talk?.outcome || talk.broken) {
      const end = await this.#ended;
      this.#connection?.close();
      talk ??= await settle(this.#converse, 5000);
      this.#escalation.clear();
      ch.server.forget(this.#chId);
      const tail = await this.#tailOf(end);
      await this.#reap();
      if (this.#launchError) {
        return { kind: "error", message: this.#launchError.message, fatal: this.#fatal };
      }
      const spoken = channelExit(talk, this.#stopRequested);
      if (spoken) return spoken;
      if (this.#silent) {
        return silentExit(ch.heartbeatMs, "its Ray job was stopped");
      }
      return failure(this.#ctx, end, tail, {
        jobId: this.#jobId,
        node: this.#node,
        connected: !!this.#connection,
      });
    }
    this.#escalation.clear();
    ch.server.forget(this.#chId);
    // The job ends by itself; make sure it does, then (its log fetched without shared
    // storage) delete its record.
    const done = settle(this.#ended, 15_000).then(async (v) => {
      if (!v || !isFinal(v.status)) this.#cancel();
      await this.#tailOf(v);
      await this.#reap();
    });
    this.#ctx.jobs.finishing(done);
    // Without shared storage the trial's output comes back with the job's log: wait for it.
    if (!this.#ctx.settings.shared) await done;
    return talk.outcome;
  }

  /** The job's log into the trial's stdout.log (without shared storage), and its tail. */
  async #tailOf(end: RayJobInfo | undefined): Promise<string> {
    if (!this.#submitted) return "";
    if (!this.#output) return await stderrOf(this.#job.dir, this.#sfx);
    return await this.#output.finish(end !== undefined);
  }

  /** Deletes the job's record now if it ended, else once Ray ends it. */
  async #reap(): Promise<void> {
    if (!this.#submitted) return;
    const jobId = this.#jobId;
    if (this.#lastInfo && isFinal(this.#lastInfo.status)) {
      await this.#ctx.ray.delete(jobId).catch((e) =>
        this.#ctx.settings.log(`could not delete Ray job ${jobId}: ${(e as Error).message}`)
      );
    } else this.#ctx.jobs.deleteOnceEnded(jobId);
  }
}
