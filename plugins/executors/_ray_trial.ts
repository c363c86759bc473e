// Private to the Ray executor (ray.ts): a trial (or one worker of a multi-worker trial) run as
// a Ray job of its own.

import { join } from "../../core/_path.ts";
import type { TrialExit, TrialHandle, TrialJob, TrialListener } from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial } from "../../core/channel.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import type { GroupInfo } from "../../core/collectives.ts";
import { settle, stopEscalation } from "./_shared.ts";
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
 */
export function startTrial(
  ctx: RayContext,
  ch: RemoteChannel,
  job: TrialJob,
  listener: TrialListener,
  run: number,
  worker?: RayWorker,
): TrialHandle {
  const { ray, jobs } = ctx;
  const { options, shared, pendingTimeoutMs, pollMs, checkpointMaxBytes, graceMs, log } =
    ctx.settings;
  const token = crypto.randomUUID();
  // A worker of a multi-worker trial says `<trial id>@<rank>` in its hello.
  const chId = worker ? `${job.trialId}@${worker.rank}` : job.trialId;
  const connected = ch.server.expect(chId, token);
  const jobId = `${JOB_PREFIX}${ctx.expId}-${job.trialId.replace(/[^\w-]/g, "_")}${
    worker ? `-w${worker.rank}` : ""
  }-${run}`;
  const sfx = logSuffix(worker);
  // The trial's state, as its job goes from submission to deletion.
  let stopRequested = false; // stop() was called
  let silent = false; // its heartbeats stopped: its job was stopped
  let submitted = false; // Ray took the job
  let running = false; // Ray runs the job (or the trial connected)
  let node = ""; // where it runs, once known
  let lastInfo: RayJobInfo | undefined; // Ray's last record of the job
  let resolveEnded!: (v: RayJobInfo | undefined) => void;
  let over = false; // `ended` resolved
  /** Ray's last record of the job once it ended or was given up; undefined: lost, or never run. */
  const ended = new Promise<RayJobInfo | undefined>((r) => resolveEnded = r);
  ended.then(() => over = true);
  let launchError: TuneError | undefined; // why it was never submitted, or never placed
  let fatal = false; // that error ends the experiment (no trial can run)
  let connection: ReturnType<RemoteChannel["keepAlive"]> | undefined; // once the trial said hello
  const submittedAt = Date.now();
  // Without shared storage the trial's folder is a fresh temp folder on its node.
  const trialDir = shared ? job.workDir : `/tmp/tunebox-${ctx.expId}/${jobId}`;

  const launch = (async () => {
    let ringNet: readonly string[] = [];
    if (worker) {
      ringNet = await worker.net.catch((e) => {
        fatal = true;
        throw e;
      });
    } else {
      const unplaceable = await placementError(ctx, job);
      if (unplaceable) {
        fatal = true;
        throw unplaceable;
      }
    }
    await jobs.record(ctx.experimentDir, jobId);
    await ray.submit({
      submission_id: jobId,
      entrypoint: entrypoint(ctx, job, run, ch, token, trialDir, worker, ringNet),
      ...rayResources(job),
      ...(Object.keys(ctx.runtimeEnv).length ? { runtime_env: ctx.runtimeEnv } : {}),
      metadata: { tunebox_trial: job.trialId, tunebox_experiment: ctx.experimentDir },
    });
    submitted = true;
    jobs.watch(jobId, (info) => {
      if (info) lastInfo = info;
      if (info?.status === "RUNNING" && !running) {
        running = true;
        worker?.running();
        learnNode(info);
      }
      if (!info || isFinal(info.status)) {
        jobs.unwatch(jobId);
        resolveEnded(info);
      } else if (
        info.status === "PENDING" && Date.now() - submittedAt > pendingTimeoutMs && !launchError
      ) {
        launchError = new TuneError(
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
        abandon();
      }
    });
  })().catch((e) => {
    const msg = e instanceof RayApiError && /already exists/.test(e.message)
      ? `${e.message} (a job of this name exists: another driver runs this experiment?)`
      : String((e as Error)?.message ?? e);
    launchError = e instanceof TuneError && !(e instanceof RayApiError) ? e : new TuneError(msg);
    if (e instanceof RayApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
      fatal = true;
    }
    resolveEnded(undefined);
  });

  // Without shared storage the trial's output is followed live into its stdout.log on the driver.
  const output = shared
    ? undefined
    : new FollowedJobLog(ray, jobId, join(job.dir, `stdout${sfx}.log`));
  function follow(): void {
    if (submitted) output?.follow();
  }

  function learnNode(info: RayJobInfo): void {
    follow();
    if (node) return;
    node = nodeOf(info);
    if (node && !worker) listener.placed?.(node);
  }

  /** Gives the job up before it ran: stop it, refuse its token, delete it once it ends. */
  function abandon(): void {
    ch.server.forget(chId);
    jobs.unwatch(jobId);
    jobs.abandon(jobId);
    resolveEnded(lastInfo);
  }

  const converse = (async (): Promise<Conversation> => {
    const first = await Promise.race([connected, ended.then(() => undefined)]);
    if (!first) return {};
    if (!running) worker?.running();
    running = true;
    follow();
    // A short trial may end between two polls: learn its node now, for the live table.
    if (!node) {
      const info = await settle(ray.get(jobId), 2000);
      if (info) learnNode(info);
    }
    connection = ch.keepAlive(first, () => {
      silent = true;
      cancel();
    });
    let group: GroupInfo | undefined;
    if (worker) {
      // Its node's address is where it listens: asked of Ray until known (it runs by now).
      while (!node && !over) {
        const info = await settle(ray.get(jobId), 5000);
        if (info) learnNode(info);
        if (!node) await new Promise((r) => setTimeout(r, pollMs));
      }
      // Waits here, connected but not started (never in a collective), for the others; its
      // heartbeats are read meanwhile, so its silence is still noticed (and not mistaken).
      const release = holdOpen(connection);
      group = node ? await worker.gate(node) : undefined;
      connection = release();
      if (!group) return {};
    }
    if (shared) return await driveTrial(connection, job, listener, undefined, group);
    // The trial's folder is on its node: checkpoints come back over the channel into the
    // driver's trial folder, and one to restore goes out the same way.
    return await driveTrial(connection, { ...job, workDir: trialDir }, listener, {
      localDir: job.workDir,
      maxBytes: checkpointMaxBytes,
      ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
    }, group);
  })();
  converse.catch(() => {});

  const cancel = () => {
    if (submitted) ray.stop(jobId).catch(() => {});
  };

  const { escalate, clear: clearStopTimer } = stopEscalation(cancel);

  const exited = (async (): Promise<TrialExit> => {
    await launch;
    const talkOrEnd = await Promise.race([
      converse.then((c) => ({ talk: c })),
      ended.then(() => undefined),
    ]);
    let talk = talkOrEnd?.talk;
    if (talk?.broken) cancel();
    if (!talk?.outcome || talk.broken) {
      const end = await ended;
      connection?.close();
      talk ??= await settle(converse, 5000);
      clearStopTimer();
      ch.server.forget(chId);
      const tail = await tailOf(end);
      await reap();
      if (launchError) return { kind: "error", message: launchError.message, fatal };
      if (talk?.broken) {
        return {
          kind: "error",
          message: `the trial broke the protocol and was killed: ${talk.broken}`,
        };
      }
      if (talk?.outcome) return talk.outcome;
      if (stopRequested) return { kind: "stopped" };
      if (silent) {
        return {
          kind: "error",
          message: `the trial went silent for ${ch.heartbeatMs} ms (no heartbeat: its node or ` +
            `network may be down) and its Ray job was stopped`,
        };
      }
      return failure(ctx, end, tail, { jobId, node, connected: !!connection });
    }
    clearStopTimer();
    ch.server.forget(chId);
    // The job ends by itself; make sure it does, then (its log fetched without shared
    // storage) delete its record.
    const done = settle(ended, 15_000).then(async (v) => {
      if (!v || !isFinal(v.status)) cancel();
      await tailOf(v);
      await reap();
    });
    jobs.finishing(done);
    // Without shared storage the trial's output comes back with the job's log: wait for it.
    if (!shared) await done;
    return talk.outcome;
  })();

  /** The job's log into the trial's stdout.log (without shared storage), and its tail. */
  async function tailOf(end: RayJobInfo | undefined): Promise<string> {
    if (!submitted) return "";
    if (!output) return await stderrOf(job.dir, sfx);
    return await output.finish(end !== undefined);
  }

  async function reap(): Promise<void> {
    if (!submitted) return;
    if (lastInfo && isFinal(lastInfo.status)) {
      await ray.delete(jobId).catch((e) =>
        log(`could not delete Ray job ${jobId}: ${(e as Error).message}`)
      );
    } else jobs.deleteOnceEnded(jobId);
  }

  return {
    exited,
    async stop(grace = graceMs) {
      stopRequested = true;
      if (!running && !connection) {
        // A PENDING job does not end when stopped; give it up (its token is refused from now
        // on) and delete it once Ray ends it.
        await launch;
        if (submitted && !connection) abandon();
      }
      connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
      escalate(grace);
      await exited;
    },
  };
}
