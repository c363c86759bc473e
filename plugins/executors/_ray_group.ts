// Private to the Ray executor (ray.ts): a trial of several workers, one Ray job each, that wait
// for each other and form their collectives' ring.

import { join } from "../../core/_path.ts";
import type { TrialExit, TrialHandle, TrialJob, TrialListener } from "../../core/plugin.ts";
import type { RemoteChannel } from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import { fitsAtOnce, unplaceable } from "./_ray_client.ts";
import { need } from "./_ray_job_spec.ts";
import { RayTrial, type RayWorker } from "./_ray_trial.ts";
import type { RayContext } from "./_ray_context.ts";

/**
 * A trial of `workers` Ray jobs, one per worker, each asking for the per-worker resources and
 * placed by Ray wherever it fits (on one node or several). Each worker connects to the driver
 * and waits there, not in a collective, until every worker's job runs; then each learns its
 * ring: its node's address with a port of its own to listen on, and the next rank's to connect
 * to. Its sandbox may reach the driver and those ring ports only (on the cluster's nodes'
 * addresses, as where Ray puts a job is known only once it runs); once its ring is formed it
 * revokes all of them but its next neighbour's. Rank 0 speaks for the trial; ranks above 0 write only
 * `rank_<r>/` in the trial's folder. The first worker to fail, or to stay PENDING past
 * `pendingTimeoutMs`, fails the trial, and the other workers' jobs are stopped.
 */
export function startGroup(
  ctx: RayContext,
  ringPorts: RingPorts,
  ch: RemoteChannel,
  job: TrialJob,
  trialListener: TrialListener,
  workers: number,
): TrialHandle {
  const { options, graceMs, address } = ctx.settings;
  const ports = ringPorts.take(workers);
  const ringToken = crypto.randomUUID();
  const nodes: string[] = [];
  let arrived = 0;
  let runningJobs = 0;
  let failure: TrialExit | undefined;
  let ringLoss = false;
  // Set once rank 0 is done or the trial is being stopped: the other workers then lose their
  // ring as rank 0 leaves, and what they say about it no longer matters.
  let finishing = false;
  let release!: (go: boolean) => void;
  const everyone = new Promise<boolean>((r) => release = r);
  const perWorker = need(job);
  const net = (async () => {
    const cluster = await ctx.clusterNodes();
    if (ctx.settings.checkPlacement) {
      const why = unplaceable(perWorker, cluster);
      const most = fitsAtOnce(perWorker, cluster);
      if (why || most < workers) {
        throw new TuneError(
          `Ray cannot place the ${workers} workers of trial ${job.trialId} on ${address}: ${
            why ?? `each asks for ${JSON.stringify(perWorker)}, and the alive nodes hold at ` +
                `most ${most} such jobs at once`
          }. Ask for fewer workers or less per worker (resources: { workers, cpu, gpu, ` +
            `custom }), add nodes, or set checkPlacement: false for an autoscaling cluster`,
        );
      }
    }
    // Each node's address as Ray names it in its `node:<ip>` resource: the address its jobs
    // report (the summary's `ip` may be another of the machine's addresses).
    const addrs = [
      ...new Set(
        cluster.filter((n) => n.alive).flatMap((n) => {
          const named = Object.keys(n.resources).filter((k) =>
            k.startsWith("node:") && !k.startsWith("node:__")
          ).map((k) => k.slice(5));
          return named.length ? named : [n.ip];
        }),
      ),
    ].map((ip) => ip.includes(":") ? `[${ip}]` : ip);
    return (rank: number) =>
      addrs.flatMap((a) => [`${a}:${ports[rank]}`, `${a}:${ports[(rank + 1) % workers]}`]);
  })();
  net.catch(() => {});
  const handles: TrialHandle[] = [];
  const stopOthers = (except: number, grace: number): void => {
    handles.forEach((h, r) => r !== except && h.stop(grace).catch(() => {}));
  };
  const finish = () => {
    finishing = true;
    release(false);
  };
  for (let rank = 0; rank < workers; rank++) {
    const workDir = rank === 0 ? job.workDir : join(job.workDir, `rank_${rank}`);
    if (rank > 0) Deno.mkdirSync(workDir, { recursive: true });
    const ringNet = net.then((f) => f(rank));
    const worker: RayWorker = {
      rank,
      workers,
      net: ringNet,
      placed: () => runningJobs,
      running: () => void runningJobs++,
      async gate(node) {
        const granted = await ringNet;
        nodes[rank] = node;
        if (++arrived === workers) {
          release(true);
          trialListener.placed?.(nodes.join(","));
        }
        if (!await everyone || finishing) return undefined;
        const next = (rank + 1) % workers;
        return {
          rank,
          localRank: nodes.slice(0, rank).filter((n) => n === node).length,
          worldSize: workers,
          listen: { hostname: node, port: ports[rank] },
          next: { hostname: nodes[next], port: ports[next] },
          token: ringToken,
          // Granted on every node (its place was not known): once its ring is formed, the
          // worker keeps its next neighbour's alone, before the trainable loads.
          revokeAfterRing: granted,
          ...(options.collectiveTimeoutMs ? { timeoutMs: options.collectiveTimeoutMs } : {}),
        };
      },
    };
    const listener: TrialListener = rank === 0
      ? {
        async report(r) {
          const ack = await trialListener.report(r);
          if (ack === "stop") {
            finish();
            stopOthers(0, graceMs);
          }
          return ack;
        },
      }
      : {
        // Accepted so that every rank can run the same loop, not recorded: rank 0's are the
        // trial's. A checkpoint a rank above 0 writes is thrown away.
        async report(r) {
          if (r.checkpointDir && r.checkpointDir.startsWith(workDir + "/")) {
            await Deno.remove(r.checkpointDir, { recursive: true }).catch(() => {});
          }
          return finishing ? "stop" : "continue";
        },
      };
    const h = new RayTrial(ctx, ch, { ...job, workDir }, listener, ++ctx.runs, worker).handle();
    handles.push(h);
    h.exited.then((exit) => {
      // A worker that saw another leave the ring says so first at times: the other's own
      // error, if it comes too, is the trial's.
      const lost = exit.kind === "error" && /left the ring/.test(exit.message);
      if (exit.kind === "error" && failure && ringLoss && !lost) {
        failure = { ...exit, message: `worker rank ${rank} of ${workers}: ${exit.message}` };
        ringLoss = false;
      } else if (exit.kind === "error" && !failure && !finishing) {
        failure = { ...exit, message: `worker rank ${rank} of ${workers}: ${exit.message}` };
        ringLoss = lost;
        finish();
        stopOthers(rank, 0);
      } else if (rank === 0) {
        // Rank 0 ended the trial: the others get the grace to finish too, then are stopped.
        finish();
        stopOthers(0, exit.kind === "done" ? graceMs : 0);
      }
    });
  }
  const exited = Promise.all(handles.map((h) => h.exited)).then(([first]) => failure ?? first);
  exited.finally(() => ringPorts.release(ports)).catch(() => {});
  return {
    exited,
    async stop(grace = graceMs) {
      finish();
      await Promise.all(handles.map((h) => h.stop(grace)));
      await exited;
    },
  };
}

/** The ring ports of one driver's live multi-worker trials: no two groups share one. */
export class RingPorts {
  readonly #inUse = new Set<number>();

  /**
   * `workers` consecutive ports for a trial's ring, from a random base below Linux's ephemeral
   * range, none used by another live group of this driver. A port some other program holds on
   * a node fails that trial (its worker cannot listen), which then retries under maxFailures.
   */
  take(workers: number): number[] {
    for (;;) {
      const base = 20000 + Math.floor(Math.random() * (12000 - workers));
      const ports = Array.from({ length: workers }, (_, r) => base + r);
      if (ports.some((p) => this.#inUse.has(p))) continue;
      ports.forEach((p) => this.#inUse.add(p));
      return ports;
    }
  }

  /** The group that held `ports` ended. */
  release(ports: readonly number[]): void {
    ports.forEach((p) => this.#inUse.delete(p));
  }
}
