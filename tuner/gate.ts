/**
 * Where trials may run: the resource gate a `Tuner` gives the runner (this machine's CPUs
 * and GPUs, or a cluster executor's capacity) and the environment that pins a trial to its
 * devices.
 *
 * @module
 */

import type { Backend, SandboxPolicy } from "../core/plugin.ts";
import type { TrialResources } from "../core/trial.ts";
import type { ResourceGate } from "../core/runner.ts";
import { TuneError } from "../core/errors.ts";
import { type Device, discoverGpus, ResourcePool } from "../core/resources.ts";

/** A gate and the CPUs and GPUs it shares out. */
export interface Gate {
  readonly gate: ResourceGate;
  readonly total: TrialResources;
}

/** The gate of this machine: CPUs and devices packed by a {@linkcode ResourcePool}. */
export async function makeGate(
  req: TrialResources,
  maxConcurrent: number | undefined,
  gpus: readonly Device[] | number | undefined,
  backend?: Backend,
  cpus?: number,
): Promise<Gate> {
  const devices = await discoverGpus(gpus !== undefined ? { gpus } : {});
  const total = cpus ?? Math.max(navigator.hardwareConcurrency || 1, req.cpu);
  const pool = new ResourcePool({ cpus: total, gpus: devices });
  pool.check(req);
  const limit = maxConcurrent ?? Math.max(1, pool.maxConcurrent(req));
  let running = 0;
  const gate: ResourceGate = {
    canStart(r = req) {
      return running < limit && pool.fits(r);
    },
    acquire(id, r = req) {
      const a = pool.tryAcquire(id, r);
      if (!a) throw new TuneError(`No resources left for trial "${id}"`);
      running++;
      if (!backend) return { ...a.env };
      const held = a.gpus.map((g) => devices.find((d) => d.index === g.index)!);
      return { ...backendEnv(backend, held), ...a.env };
    },
    release(id) {
      if (pool.release(id)) running--;
    },
    check: (r) => pool.check(r),
  };
  return { gate, total: { cpu: total, gpu: devices.length } };
}

/** A backend's environment, its errors named. */
export function backendEnv(backend: Backend, devices: readonly Device[]): Record<string, string> {
  let env: unknown;
  try {
    env = backend.env(devices);
  } catch (e) {
    throw new TuneError(`backend "${backend.name}": env() failed: ${(e as Error)?.message ?? e}`, {
      cause: e,
    });
  }
  if (
    typeof env !== "object" || env === null ||
    Object.values(env).some((v) => typeof v !== "string")
  ) {
    throw new TuneError(
      `backend "${backend.name}": env() must return { NAME: "value" } strings, got ${
        JSON.stringify(env)
      }`,
    );
  }
  return env as Record<string, string>;
}

/**
 * The backend's environment for a trial a cluster places: the cluster picks the devices (and
 * sets `CUDA_VISIBLE_DEVICES` itself), so the backend sees placeholders numbered from 0.
 */
export function clusterEnv(backend: Backend | undefined, gpu: number): Record<string, string> {
  if (!backend) return {};
  const devices = Array.from(
    { length: Math.ceil(gpu) },
    (_, index) => ({ index, name: "a GPU the cluster gives" }),
  );
  const { CUDA_VISIBLE_DEVICES: _, ...env } = backendEnv(backend, devices);
  return env;
}

/** Two sandbox policies as one: lists joined, duplicates dropped. */
export function joinPolicies(a: SandboxPolicy, b: SandboxPolicy): SandboxPolicy {
  const out: Record<string, string[]> = {};
  for (const k of ["read", "write", "net", "env", "sys", "ffi", "unstable"] as const) {
    const list = [...new Set([...(a[k] ?? []), ...(b[k] ?? [])])];
    if (list.length) out[k] = list;
  }
  return out;
}

/**
 * The gate of a cluster executor: the cluster decides where trials run; this counts them (at most
 * `limit`) and sums what they hold against the experiment's total (`cpus` and `gpus`, or `limit` trials of
 * `req`), so that a trial given more resources leaves room for fewer others.
 */
export function clusterGate(
  limit: number,
  req: TrialResources,
  given: { readonly cpu?: number; readonly gpu?: number },
  backend: Backend | undefined,
): Gate {
  const max = Math.max(1, Math.floor(limit));
  // Counted in 1/10000 units, as the pool does, so that sums of fractions compare exactly.
  const u = (x: number) => Math.round(x * 10_000);
  const total = { cpu: given.cpu ?? max * req.cpu, gpu: given.gpu ?? max * req.gpu };
  const held = new Map<string, TrialResources>();
  let cpu = 0, gpu = 0;
  const fits = (r: TrialResources) =>
    held.size < max && u(cpu) + u(r.cpu) <= u(total.cpu) && u(gpu) + u(r.gpu) <= u(total.gpu);
  const gate: ResourceGate = {
    canStart: (r = req) => fits(r),
    acquire(id, r = req) {
      held.set(id, r);
      cpu += r.cpu;
      gpu += r.gpu;
      return clusterEnv(backend, r.gpu);
    },
    release(id) {
      const r = held.get(id);
      if (!r) return;
      held.delete(id);
      cpu -= r.cpu;
      gpu -= r.gpu;
    },
    check(r) {
      if (u(r.cpu) > u(total.cpu) || u(r.gpu) > u(total.gpu)) {
        throw new RangeError(
          `a trial asks for cpu=${r.cpu}, gpu=${r.gpu} but the experiment has cpu=${total.cpu}, ` +
            `gpu=${total.gpu} on the cluster (the "cpus" and "gpus" options, or maxConcurrent/capacity ` +
            `times resources)`,
        );
      }
    },
  };
  return { gate, total };
}
