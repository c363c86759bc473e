// Private to the Ray executor (ray.ts): the pool of Ray jobs that run several trials one after
// another (`trialsPerJob > 1`), each job running Tunebox's launcher.

import type { TrialJob } from "../../core/plugin.ts";
import type { DriverMessage } from "../../core/protocol.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { settle } from "./_shared.ts";
import { isFinal, nodeOf, type RayJobInfo } from "./_ray_client.ts";
import { type LauncherEnded, launcherEnded, launcherOutput } from "./_ray_launcher.ts";
import { JOB_PREFIX } from "./_ray_jobs.ts";
import { launcherEntrypoint, placementError, rayResources } from "./_ray_job_spec.ts";
import type { RayContext } from "./_ray_context.ts";

/** A pooled Ray job (`trialsPerJob > 1`) running Tunebox's launcher. */
export interface Launcher {
  /** Its Ray job's submission id (`tunebox-<expId>-pool-<n>`). */
  readonly jobId: string;
  /** The id its launcher says in its hello. */
  readonly chId: string;
  /** The resources (and runtime_env) it holds: only trials asking for the same run in it. */
  readonly key: string;
  /** The node its job runs on, once known. */
  node: string;
  /** Trials given to it so far (the one it runs and one waiting included). */
  served: number;
  /** A trial holds it. */
  busy: boolean;
  /** Its trial said it is done; its process is exiting. */
  finishing: boolean;
  /** A trial waits to run after the current one. */
  reserved: boolean;
  /** Lets the waiting trial run. */
  wake?: () => void;
  /** It takes no more trials. */
  retired: boolean;
  /** Its launcher left or its job ended. */
  dead: boolean;
  /** When it was made (its PENDING time counts from then). */
  readonly submittedAt: number;
  /** Its submission (the placement check included). */
  submitted?: Promise<void>;
  /** Why it was never submitted. */
  launchError?: unknown;
  /** Ray's last record of its job. */
  info?: RayJobInfo;
  /** Its log, fetched when it ended without connecting. */
  logs: string;
  /** Its launcher's connection, once it said hello. */
  conn?: ReturnType<RemoteChannel["keepAlive"]>;
  /** Whether its launcher connected (false: its job ended first). */
  connected: Promise<boolean>;
  /** Its job ended (Ray's last record), or was lost or never submitted (undefined). */
  readonly ended: Promise<RayJobInfo | undefined>;
  /** Per run id, what to call when the launcher says that trial's process ended. */
  readonly exits: Map<string, (e: LauncherEnded | undefined) => void>;
  /** Per run id, where that trial's forwarded output goes (without shared storage). */
  readonly outputs: Map<string, (text: string) => void>;
  /** Retires it once idle too long. */
  idleTimer?: ReturnType<typeof setTimeout>;
}

/**
 * The pooled jobs of one executor (`trialsPerJob > 1`). A trial acquires a job (`acquire()`)
 * asking for the same resources: an idle one, one whose trial is exiting (it then waits its
 * turn), or a new one. When its trial is over the job is vacated (`vacate()`): the waiting trial
 * runs, or it idles (2 s at least) and is retired (`retire()`), as it is once it served
 * `trialsPerJob` trials or the executor closes.
 */
export class LauncherPool {
  readonly #ctx: RayContext;
  /** Pooled jobs that may take another trial. */
  readonly #launchers = new Set<Launcher>();
  /** Pooled jobs made so far (their names' numbers). */
  #made = 0;
  /** The executor is closing: a job whose trial is over retires. */
  #closing = false;

  constructor(ctx: RayContext) {
    this.#ctx = ctx;
  }

  /**
   * A pooled job for `job`: an idle one asking for the same, one whose trial is ending (`turn`
   * resolves when it may run), or a new one.
   */
  acquire(ch: RemoteChannel, job: TrialJob): { l: Launcher; turn?: Promise<void> } {
    const key = JSON.stringify([rayResources(job), this.#ctx.runtimeEnv]);
    const { trialsPerJob } = this.#ctx.settings;
    for (const l of this.#launchers) {
      if (l.key !== key || l.retired || l.dead || l.served >= trialsPerJob) continue;
      if (!l.busy) {
        clearTimeout(l.idleTimer);
        l.busy = true;
        l.served++;
        return { l };
      }
      if (l.finishing && !l.reserved) {
        // Its trial said it is done and its process is exiting: take the job after it.
        l.reserved = true;
        l.served++;
        return { l, turn: new Promise<void>((r) => l.wake = r) };
      }
    }
    const l = this.#launch(ch, job, key);
    l.busy = true;
    l.served = 1;
    return { l };
  }

  /** The trial holding `l` is over (its process ended, or it never ran): the next one, or idle. */
  vacate(l: Launcher): void {
    l.busy = false;
    l.finishing = false;
    if (l.retired || l.dead) return;
    if (l.reserved) {
      l.reserved = false;
      l.busy = true;
      const wake = l.wake;
      l.wake = undefined;
      wake?.();
      return;
    }
    if (l.served >= this.#ctx.settings.trialsPerJob || this.#closing) return this.retire(l);
    clearTimeout(l.idleTimer);
    l.idleTimer = setTimeout(() => this.retire(l), Math.max(2000, 2 * this.#ctx.settings.pollMs));
  }

  /** No more trials for `l`: its launcher is told to exit (or, not connected, its job given up). */
  retire(l: Launcher): void {
    if (l.retired) return;
    l.retired = true;
    clearTimeout(l.idleTimer);
    this.#launchers.delete(l);
    l.wake?.();
    if (l.conn) {
      l.conn.send({ type: "exit" } as unknown as DriverMessage);
      return;
    }
    // Never connected (PENDING, or starting): refuse its token, stop it, delete it once it ends.
    this.#ctx.channel?.server.forget(l.chId);
    if (this.#ctx.jobs.unwatch(l.jobId)) this.#ctx.jobs.abandon(l.jobId);
  }

  /** The executor closes: idle jobs retire now, busy ones once their trial is over. */
  close(): void {
    this.#closing = true;
    for (const l of [...this.#launchers]) if (!l.busy) this.retire(l);
  }

  /** A new pooled job for trials asking for `job`'s resources (submitted in the background). */
  #launch(ch: RemoteChannel, job: TrialJob, key: string): Launcher {
    const ctx = this.#ctx;
    const { ray, jobs } = ctx;
    const { log } = ctx.settings;
    const jobId = `${JOB_PREFIX}${ctx.expId}-pool-${++this.#made}`;
    const token = crypto.randomUUID();
    const chId = `launcher@${jobId}`;
    const expected = ch.server.expect(chId, token);
    let resolveEnded!: (v: RayJobInfo | undefined) => void;
    const ended = new Promise<RayJobInfo | undefined>((r) => resolveEnded = r);
    const l: Launcher = {
      jobId,
      chId,
      key,
      node: "",
      served: 0,
      busy: false,
      finishing: false,
      reserved: false,
      retired: false,
      dead: false,
      submittedAt: Date.now(),
      exits: new Map(),
      outputs: new Map(),
      ended,
      logs: "",
      connected: Promise.resolve(false),
    };
    this.#launchers.add(l);
    const submitted = (async () => {
      const unplaceable = await placementError(ctx, job);
      if (unplaceable) throw Object.assign(unplaceable, { fatal: true });
      await jobs.record(ctx.experimentDir, jobId);
      await ray.submit({
        submission_id: jobId,
        entrypoint: launcherEntrypoint(ctx, ch, chId, token),
        ...rayResources(job),
        ...(Object.keys(ctx.runtimeEnv).length ? { runtime_env: ctx.runtimeEnv } : {}),
        metadata: { tunebox_pool: jobId, tunebox_experiment: ctx.experimentDir },
      });
      jobs.watch(jobId, (info) => {
        if (info) l.info = info;
        if (info?.status === "RUNNING" && !l.node) l.node = nodeOf(info);
        if (!info || isFinal(info.status)) {
          jobs.unwatch(jobId);
          resolveEnded(info);
        }
      });
    })();
    l.submitted = submitted;
    submitted.catch((e) => {
      l.launchError = e;
      resolveEnded(undefined);
    });
    // Once it ended: its log (for a launcher that never connected, to say why), then its record.
    jobs.finishing(ended.then(async (info) => {
      l.dead = true;
      this.#launchers.delete(l);
      ch.server.forget(chId);
      for (const f of l.exits.values()) f(undefined);
      if (!info) return;
      if (!l.conn) l.logs = await ray.logs(jobId).catch(() => "");
      await ray.delete(jobId).catch(() => {});
    }));
    l.connected = (async () => {
      const c = await Promise.race([expected, ended.then(() => undefined)]);
      if (!c || l.dead) return false;
      const conn = ch.keepAlive(c, () => {
        log(`the launcher of Ray job ${jobId} went silent; stopping the job`);
        ray.stop(jobId).catch(() => {});
      });
      l.conn = conn;
      // Its node, for the live table (the poller may not have seen it running yet).
      if (!l.node) {
        const info = await settle(ray.get(jobId), 2000);
        if (info) l.node = nodeOf(info);
      }
      (async () => {
        try {
          for (;;) {
            const r = await conn.messages.next();
            if (r.done) break;
            const o = launcherOutput(r.value);
            if (o) l.outputs.get(o.id)?.(o.text);
            const e = o ? undefined : launcherEnded(r.value);
            if (e) l.exits.get(e.id)?.(e);
          }
        } catch { /* the connection broke */ }
        // The launcher left: its trials' processes died with it; its job ends.
        l.dead = true;
        this.#launchers.delete(l);
        for (const f of l.exits.values()) f(undefined);
        if (!isFinal(l.info?.status ?? "PENDING")) ray.stop(jobId).catch(() => {});
      })();
      return true;
    })();
    return l;
  }
}
