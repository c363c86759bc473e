// Private to the Ray executor (ray.ts): a trial run by a pooled job (`trialsPerJob > 1`).

import { join } from "../../core/_path.ts";
import type { TrialExit, TrialHandle, TrialJob, TrialListener } from "../../core/plugin.ts";
import { type DriverMessage, PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial } from "../../core/channel.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { settle, stopEscalation } from "./_shared.ts";
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
 */
export function startPooledTrial(
  ctx: RayContext,
  pool: LauncherPool,
  ch: RemoteChannel,
  job: TrialJob,
  listener: TrialListener,
  run: number,
): TrialHandle {
  const { options, shared, pendingTimeoutMs, checkpointMaxBytes, graceMs } = ctx.settings;
  const token = crypto.randomUUID();
  const connected = ch.server.expect(job.trialId, token);
  const assign = `${job.trialId}-${run}`;
  // Without shared storage the trial's folder is a fresh temp folder on its node, and its
  // output comes over the launcher's connection into its stdout.log on the driver.
  const trialDir = shared ? job.workDir : `/tmp/tunebox-${ctx.expId}/${assign}`;
  const output = new ForwardedLog(join(job.dir, "stdout.log"));
  // The trial's state, from its turn in a pooled job to its process's end.
  let l: Launcher | undefined; // the pooled job it was given
  let ran = false; // its launcher was told to run it
  let stopRequested = false; // stop() was called
  let silent = false; // its heartbeats stopped: its process was killed
  let fatal = false; // launchError ends the experiment (no trial can run)
  let launchError: string | undefined; // why it never ran
  let connection: ReturnType<RemoteChannel["keepAlive"]> | undefined; // once the trial said hello
  let resolveEnded!: (v: LauncherEnded | undefined) => void;
  /** Its process ended (how, as its launcher says), or it was lost or never ran (undefined). */
  const ended = new Promise<LauncherEnded | undefined>((r) => resolveEnded = r);
  let onStop!: () => void;
  const stopping = new Promise<"stop">((r) => onStop = () => r("stop"));

  const launch = (async () => {
    for (let attempt = 0;; attempt++) {
      const a = pool.acquire(ch, job);
      l = a.l;
      if (a.turn && await Promise.race([a.turn, stopping]) === "stop") {
        if (l.reserved) {
          l.reserved = false;
          l.served--;
        } else pool.vacate(l);
        return;
      }
      if (stopRequested) return pool.vacate(l);
      const left = pendingTimeoutMs - (Date.now() - l.submittedAt);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ok = await Promise.race([
        l.connected,
        stopping,
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
        launchError = `Ray did not place trial ${job.trialId}'s job ${l.jobId} within ` +
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
        launchError = e.message;
        fatal = !!e.fatal || e instanceof RayApiError && [400, 401, 403].includes(e.status!);
        return;
      }
      await l.ended;
      const f = failure(ctx, l.info, l.logs, { jobId: l.jobId, node: l.node, connected: false });
      launchError = (f as { message?: string }).message ?? `Ray job ${l.jobId} ended`;
      fatal = !!(f as { fatal?: boolean }).fatal;
      return;
    }
    l.exits.set(assign, (e) => resolveEnded(e));
    if (!shared) l.outputs.set(assign, (text) => output.write(text));
    await l.conn!.send(
      {
        type: "run",
        id: assign,
        script: entrypoint(ctx, job, run, ch, token, trialDir),
        ...(shared ? {} : { output: true }),
      } as unknown as DriverMessage,
    );
    ran = true;
    if (l.node) listener.placed?.(l.node);
  })().catch((e) => {
    launchError = String((e as Error)?.message ?? e);
    if (l) pool.vacate(l);
  }).finally(() => {
    if (!ran) resolveEnded(undefined);
  });
  ended.then((e) => {
    if (l && ran) {
      l.exits.delete(assign);
      l.outputs.delete(assign);
      if (e) pool.vacate(l);
    }
  });

  const converse = (async (): Promise<Conversation> => {
    const first = await Promise.race([connected, ended.then(() => undefined)]);
    if (!first) return {};
    connection = ch.keepAlive(first, () => {
      silent = true;
      kill("SIGKILL");
    });
    const talk = shared
      ? await driveTrial(connection, job, listener)
      : await driveTrial(connection, { ...job, workDir: trialDir }, listener, {
        localDir: job.workDir,
        maxBytes: checkpointMaxBytes,
        ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
      });
    // Its process is ending: the next trial asking for the same may queue for this job.
    if (talk.outcome && l) l.finishing = true;
    return talk;
  })();
  converse.catch(() => {});

  const kill = (signal: "SIGTERM" | "SIGKILL") => {
    if (ran) l?.conn?.send({ type: "kill", id: assign, signal } as unknown as DriverMessage);
  };
  const { escalate, clear: clearTimers } = stopEscalation(
    () => kill("SIGTERM"),
    () => kill("SIGKILL"),
  );

  const exited = (async (): Promise<TrialExit> => {
    await launch;
    const talkOrEnd = await Promise.race([
      converse.then((c) => ({ talk: c })),
      ended.then(() => undefined),
    ]);
    let talk = talkOrEnd?.talk;
    if (talk?.broken) kill("SIGKILL");
    if (!talk?.outcome || talk.broken) {
      const end = await ended;
      connection?.close();
      talk ??= await settle(converse, 5000);
      clearTimers();
      ch.server.forget(job.trialId);
      if (launchError) return { kind: "error", message: launchError, fatal };
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
            `network may be down) and its process was killed`,
        };
      }
      const where = l?.node ? ` on node ${l.node}` : "";
      return failure(
        ctx,
        end
          ? { submission_id: l!.jobId, status: end.code === 0 ? "SUCCEEDED" : "FAILED" }
          : l?.info,
        shared ? await stderrOf(job.dir) : await output.flushed(),
        {
          jobId: l?.jobId ?? "",
          node: l?.node ?? "",
          connected: !!connection,
          verdict: end
            ? `the trial's process in Ray job ${l!.jobId}${where} ended with exit code ${end.code}${
              end.signal ? ` (${end.signal})` : ""
            }`
            : `Ray job ${l?.jobId} running the trial ended ${l?.info?.status ?? "(lost)"}${where}`,
        },
      );
    }
    clearTimers();
    ch.server.forget(job.trialId);
    // The process ends by itself; make sure it does (the job then takes the next trial).
    const done = settle(ended, 15_000).then((v) => {
      if (!v) kill("SIGKILL");
    });
    // Without shared storage the trial's last output comes with its end: wait for it.
    if (!shared) {
      await done;
      await output.flushed();
    }
    return talk.outcome;
  })();

  return {
    exited,
    async stop(grace = graceMs) {
      stopRequested = true;
      onStop();
      connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
      escalate(grace);
      await exited;
    },
  };
}
