// Private to the Slurm executor (slurm.ts): trials of several workers (the tasks of one step,
// or of one batch job) and the ring they form across nodes.

import { join } from "../../core/_path.ts";
import type { TrialJob, TrialListener } from "../../core/plugin.ts";
import { type Conversation, driveTrial, type TrialConnection } from "../../core/channel.ts";

/** The ports of a multi-worker trial's ring, and the network grants its workers start with. */
export interface RingNet {
  /** Rank r listens on `base + r` on its node. */
  readonly base: number;
  /** `host:port` of every node at every rank's port (the placement is not known at launch). */
  readonly grants: readonly string[];
}

/**
 * The ring of a trial of `workers` workers: each rank's port on whichever node it lands, so
 * every node's address at the ring's ports (never the driver's own channel). A port clash fails
 * the ring, hence the trial, which then retries with other ports.
 */
export function ringNet(
  addresses: Record<string, string>,
  workers: number,
  ringPorts: number | undefined,
  channelPermission: string,
): RingNet {
  const addrs = [...new Set(Object.values(addresses))];
  const base = ringPorts ?? 20000 + Math.floor(Math.random() * 30000);
  const grants = addrs.flatMap((a) =>
    Array.from({ length: workers }, (_, r) => `${a.includes(":") ? `[${a}]` : a}:${base + r}`)
  ).filter((g) => g !== channelPermission);
  return { base, grants };
}

/**
 * The workers of a trial, all connected: each learns its ring (its node's address and a port
 * for each rank) in its `start`. Rank 0 speaks for the trial; the others' reports are
 * acknowledged, not recorded; the first worker to fail fails the trial (and srun's
 * --kill-on-bad-exit ends the others).
 */
export async function driveGroup(
  conns: TrialConnection[],
  nodes: string[],
  job: TrialJob,
  listener: TrialListener,
  ring: { readonly net: RingNet; readonly addresses: Record<string, string> },
): Promise<Conversation> {
  const addrs = ring.addresses;
  const workers = conns.length;
  const unknown = nodes.find((n) => !addrs[n]);
  if (unknown !== undefined) {
    return { broken: `a worker is on node "${unknown}", which scontrol does not list` };
  }
  const places = conns.map((_, r) => ({ hostname: addrs[nodes[r]], port: ring.net.base + r }));
  listener.placed?.([...new Set(nodes)].join(","));
  const token = crypto.randomUUID();
  let stopping = false;
  const talks = conns.map((c, r) => {
    const group = {
      rank: r,
      localRank: nodes.slice(0, r).filter((n) => n === nodes[r]).length,
      worldSize: workers,
      listen: places[r],
      next: places[(r + 1) % workers],
      token,
      // Granted for every node (the placement was not known at launch): the worker keeps
      // its next neighbour's once the ring is formed, before the trainable loads.
      revokeAfterRing: ring.net.grants,
    };
    const workDir = r === 0 ? job.workDir : join(job.workDir, `rank_${r}`);
    if (r > 0) Deno.mkdirSync(workDir, { recursive: true });
    const l: TrialListener = r === 0
      ? {
        async report(rep) {
          const ack = await listener.report(rep);
          if (ack === "stop") stopping = true;
          return ack;
        },
      }
      : {
        async report(rep) {
          if (rep.checkpointDir?.startsWith(workDir + "/")) {
            await Deno.remove(rep.checkpointDir, { recursive: true }).catch(() => {});
          }
          return stopping ? "stop" : "continue";
        },
      };
    return driveTrial(c, { ...job, workDir }, l, undefined, group);
  });
  const [first, ...more] = await Promise.all(talks);
  if (first.outcome?.kind === "done" || stopping) return first;
  for (const [i, t] of more.entries()) {
    if (t.broken) return { broken: `worker rank ${i + 1} of ${workers}: ${t.broken}` };
    if (t.outcome?.kind === "error") {
      return {
        outcome: {
          ...t.outcome,
          message: `worker rank ${i + 1} of ${workers}: ${t.outcome.message}`,
        },
      };
    }
  }
  return first;
}
