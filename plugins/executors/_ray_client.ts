/**
 * A small client of Ray's Jobs REST API (the dashboard, `http://<head>:8265`) with plain
 * `fetch`: submit, status, list, logs, stop, delete, working-dir packages, the cluster's nodes.
 * Ray answers errors as plain text or as a Python traceback (sometimes a traceback that quotes
 * another one); {@linkcode rayErrorLine} turns either into one readable line.
 *
 * @module
 */

import { TuneError } from "../../core/errors.ts";
import { clip, rayErrorLine } from "./_ray_error_line.ts";

export { rayErrorLine };

/** A Ray job's state as the Jobs API reports it. */
export type RayJobStatus = "PENDING" | "RUNNING" | "STOPPED" | "SUCCEEDED" | "FAILED";

/** The fields of a job's details the executor reads. */
export interface RayJobInfo {
  /** The id the job was submitted with. */
  readonly submission_id: string;
  /** Its state. */
  readonly status: RayJobStatus;
  /** Ray's words about the state (why it failed, that it waits for resources, ...). */
  readonly message?: string | null;
  /** Ray's classification of a failure (e.g. `"JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"`). */
  readonly error_type?: string | null;
  /** `http://<node ip>:<port>` of the agent on the node the job runs on. */
  readonly driver_agent_http_address?: string | null;
  /** The node id the job runs on. */
  readonly driver_node_id?: string | null;
  /** The entrypoint's exit code, once it ended. */
  readonly driver_exit_code?: number | null;
  /** The metadata the job was submitted with. */
  readonly metadata?: Record<string, string> | null;
}

/** What {@linkcode RayJobsClient.submit} sends (the Jobs API's `JobSubmitRequest`). */
export interface RayJobRequest {
  /** A shell command line. */
  readonly entrypoint: string;
  /** The job's id (unique in the cluster). */
  readonly submission_id: string;
  /** `working_dir`, `pip`, `env_vars`, ... */
  readonly runtime_env?: Record<string, unknown>;
  /** Free-form string pairs kept with the job. */
  readonly metadata?: Record<string, string>;
  /** CPUs reserved for the entrypoint. */
  readonly entrypoint_num_cpus?: number;
  /** GPUs reserved for the entrypoint (may be fractional). */
  readonly entrypoint_num_gpus?: number;
  /** Memory reserved for the entrypoint, in bytes. */
  readonly entrypoint_memory?: number;
  /** Custom resources reserved for the entrypoint. */
  readonly entrypoint_resources?: Record<string, number>;
}

/** One node of the cluster as `/nodes?view=summary` shows it. */
export interface RayNode {
  /** The node's address. */
  readonly ip: string;
  /** Its id. */
  readonly nodeId: string;
  /** Whether it is alive. */
  readonly alive: boolean;
  /** Its total resources (`CPU`, `GPU`, `memory`, custom ones). */
  readonly resources: Readonly<Record<string, number>>;
}

/** An HTTP error from Ray, in one line. */
export class RayApiError extends TuneError {
  /** The HTTP status. */
  readonly status: number;
  /**
   * @param status the HTTP status
   * @param message the line
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "RayApiError";
    this.status = status;
  }
}

/** The Jobs REST API of one cluster. */
export interface RayJobsClient {
  /** The dashboard address, without a trailing slash. */
  readonly address: string;
  /** Ray's version (`GET /api/version`); also checks the token. */
  version(): Promise<string>;
  /** Submits a job; returns its submission id. */
  submit(request: RayJobRequest): Promise<string>;
  /** A job's details, or undefined when there is no such job. */
  get(id: string): Promise<RayJobInfo | undefined>;
  /** Every job the cluster knows. */
  list(): Promise<RayJobInfo[]>;
  /** A job's log (stdout and stderr of the entrypoint, and Ray's own lines). */
  logs(id: string): Promise<string>;
  /**
   * Follows a job's log as it is written (the `/logs/tail` WebSocket): `onText` gets each new
   * piece, from the start of the log. `ended` resolves when Ray closes the stream (the job ended:
   * everything was sent; true), or it failed or was closed (false).
   */
  tail(id: string, onText: (text: string) => void): RayLogTail;
  /** Asks Ray to stop a job; false when it had already ended. */
  stop(id: string): Promise<boolean>;
  /** Deletes a finished job's record. */
  delete(id: string): Promise<boolean>;
  /** Whether a `gcs://` package exists (and pins it for a while). */
  hasPackage(name: string): Promise<boolean>;
  /** Uploads a working-dir package (`PUT /api/packages/gcs/<name>`). */
  putPackage(name: string, zip: Uint8Array): Promise<void>;
  /** The cluster's nodes and their resources. */
  nodes(): Promise<RayNode[]>;
}

/** A followed job log (see {@linkcode RayJobsClient.tail}). */
export interface RayLogTail {
  /** True when Ray ended the stream after the job ended; false on an error or `close()`. */
  readonly ended: Promise<boolean>;
  /** Stops following. */
  close(): void;
}

/**
 * Makes a client for the dashboard at `address` (`http://head:8265`), sending `token` as
 * `Authorization: Bearer <token>` when given.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { rayJobsClient } from "./_ray_client.ts";
 * const ray = rayJobsClient("http://127.0.0.1:8265");
 * assert.match(await ray.version(), /^\d+\.\d+/);
 * ```
 */
export function rayJobsClient(address: string, token?: string): RayJobsClient {
  const base = address.replace(/\/+$/, "");
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

  async function call(
    method: string,
    path: string,
    body?: unknown,
    raw?: Uint8Array,
  ): Promise<Response> {
    let r: Response;
    try {
      r = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...headers,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(raw ? { "content-type": "application/octet-stream" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(raw ? { body: raw as unknown as BodyInit } : {}),
      });
    } catch (e) {
      throw new TuneError(
        `Cannot reach the Ray dashboard at ${base} (${(e as Error).message}): is the cluster ` +
          `up, and is this its dashboard address (ray start --head prints it; default port 8265)?`,
        { cause: e },
      );
    }
    return r;
  }

  async function fail(r: Response, what: string): Promise<never> {
    const text = await r.text().catch(() => "");
    if (r.status === 401 || r.status === 403) {
      throw new RayApiError(
        r.status,
        `The Ray cluster at ${base} refused ${what}: ${rayErrorLine(text)} (HTTP ${r.status}). ` +
          `It runs with token authentication: give rayExecutor({ token }) or set ` +
          `RAY_AUTH_TOKEN to the cluster's token (ray get-auth-token on the head).`,
      );
    }
    throw new RayApiError(r.status, `Ray could not ${what}: ${rayErrorLine(text)}`);
  }

  async function json<T>(r: Response, what: string): Promise<T> {
    if (!r.ok) return await fail(r, what);
    const text = await r.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new RayApiError(
        r.status,
        `Ray answered ${what} with something that is not JSON: ${
          clip(text.slice(0, 200))
        } (is ${base} a Ray dashboard?)`,
      );
    }
  }

  return {
    address: base,
    async version() {
      const v = await json<{ ray_version?: string }>(
        await call("GET", "/api/version"),
        "tell its version",
      );
      // The version endpoint is open even with token auth on: check the token on a guarded one.
      const r = await call("GET", "/api/jobs/");
      if (!r.ok) await fail(r, "list jobs");
      await r.body?.cancel();
      return String(v.ray_version ?? "?");
    },
    async submit(request) {
      const r = await call("POST", "/api/jobs/", request);
      const out = await json<{ submission_id: string }>(
        r,
        `submit job ${request.submission_id}`,
      );
      return out.submission_id;
    },
    async get(id) {
      const r = await call("GET", `/api/jobs/${encodeURIComponent(id)}`);
      if (r.status === 404) {
        await r.body?.cancel();
        return undefined;
      }
      return await json<RayJobInfo>(r, `tell the state of job ${id}`);
    },
    async list() {
      return await json<RayJobInfo[]>(await call("GET", "/api/jobs/"), "list jobs");
    },
    async logs(id) {
      const out = await json<{ logs?: string }>(
        await call("GET", `/api/jobs/${encodeURIComponent(id)}/logs`),
        `give the log of job ${id}`,
      );
      return out.logs ?? "";
    },
    tail(id, onText) {
      const url = `${base.replace(/^http/, "ws")}/api/jobs/${encodeURIComponent(id)}/logs/tail`;
      let closedByUs = false;
      let ws: WebSocket | undefined;
      const ended = new Promise<boolean>((resolve) => {
        try {
          // Deno's WebSocket takes request headers: the token goes as on every other call.
          ws = new WebSocket(url, { headers } as unknown as string[]);
        } catch {
          resolve(false);
          return;
        }
        let failed = false;
        ws.onmessage = (e) => {
          if (typeof e.data === "string") onText(e.data);
        };
        ws.onerror = () => failed = true;
        ws.onclose = (e) => resolve(!failed && !closedByUs && e.wasClean);
      });
      return {
        ended,
        close() {
          closedByUs = true;
          try {
            ws?.close();
          } catch { /* closed */ }
        },
      };
    },
    async stop(id) {
      const r = await call("POST", `/api/jobs/${encodeURIComponent(id)}/stop`);
      if (r.status === 404) {
        await r.body?.cancel();
        return false;
      }
      return (await json<{ stopped?: boolean }>(r, `stop job ${id}`)).stopped ?? false;
    },
    async delete(id) {
      const r = await call("DELETE", `/api/jobs/${encodeURIComponent(id)}`);
      if (r.status === 404) {
        await r.body?.cancel();
        return false;
      }
      return (await json<{ deleted?: boolean }>(r, `delete job ${id}`)).deleted ?? false;
    },
    async hasPackage(name) {
      const r = await call("GET", `/api/packages/gcs/${encodeURIComponent(name)}`);
      await r.body?.cancel();
      if (r.status === 404) return false;
      if (!r.ok) return await fail(r, `look up package ${name}`);
      return true;
    },
    async putPackage(name, zip) {
      const r = await call("PUT", `/api/packages/gcs/${encodeURIComponent(name)}`, undefined, zip);
      if (!r.ok) return await fail(r, `store package ${name}`);
      await r.body?.cancel();
    },
    async nodes() {
      const out = await json<
        {
          data?: {
            summary?: {
              ip?: string;
              raylet?: { nodeId?: string; state?: string; resourcesTotal?: Record<string, number> };
            }[];
          };
        }
      >(await call("GET", "/nodes?view=summary"), "list its nodes");
      return (out.data?.summary ?? []).map((n) => ({
        ip: String(n.ip ?? ""),
        nodeId: String(n.raylet?.nodeId ?? ""),
        alive: n.raylet?.state === "ALIVE",
        resources: n.raylet?.resourcesTotal ?? {},
      }));
    },
  };
}

/**
 * The node a running job is on, from Ray's record of it: the address of its driver's agent, or
 * else the start of its node id ("" when Ray does not say yet).
 *
 * @example
 * ```ts
 * import { equal } from "#assert";
 * import { nodeOf } from "./_ray_client.ts";
 * const info = {
 *   submission_id: "a",
 *   status: "RUNNING" as const,
 *   driver_agent_http_address: "http://10.0.0.3:52365",
 * };
 * equal(nodeOf(info), "10.0.0.3");
 * equal(nodeOf({ submission_id: "b", status: "PENDING" }), "");
 * ```
 */
export function nodeOf(info: RayJobInfo): string {
  const m = /^https?:\/\/\[?([^\]/]+?)\]?:\d+/.exec(info.driver_agent_http_address ?? "");
  return m?.[1] ?? info.driver_node_id?.slice(0, 12) ?? "";
}

/** Whether a job state is final. */
export function isFinal(status: string): boolean {
  return status === "STOPPED" || status === "SUCCEEDED" || status === "FAILED";
}

/**
 * How many jobs asking for `need` the alive nodes can hold at once when nothing else runs:
 * per node the fewest copies of any resource asked for, summed over the nodes. A trial of N
 * workers (N jobs of `need` each) can only ever start when this is at least N.
 *
 * @example
 * ```ts
 * import { equal } from "#assert";
 * import { fitsAtOnce, type RayNode } from "./_ray_client.ts";
 * const nodes: RayNode[] = [
 *   { ip: "10.0.0.2", nodeId: "a", alive: true, resources: { CPU: 4, GPU: 1 } },
 *   { ip: "10.0.0.3", nodeId: "b", alive: true, resources: { CPU: 4 } },
 * ];
 * equal(fitsAtOnce({ CPU: 3 }, nodes), 2);
 * equal(fitsAtOnce({ CPU: 1, GPU: 1 }, nodes), 1);
 * ```
 */
export function fitsAtOnce(
  need: Readonly<Record<string, number>>,
  nodes: readonly RayNode[],
): number {
  let n = 0;
  for (const node of nodes) {
    if (!node.alive) continue;
    let here = Infinity;
    for (const [k, v] of Object.entries(need)) {
      if (v > 0) here = Math.min(here, Math.floor((node.resources[k] ?? 0) / v + 1e-9));
    }
    // A job asking for nothing fits any number of times; count it as many as asked for.
    n += here === Infinity ? 1e9 : here;
  }
  return n;
}

/**
 * Why no node can ever run a job asking for `need`, or undefined when one can: names the
 * resource no alive node has enough of.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unplaceable } from "./_ray_client.ts";
 * const nodes = [{ ip: "10.0.0.2", nodeId: "a", alive: true, resources: { CPU: 4 } }];
 * assert.match(unplaceable({ CPU: 1, big: 1 }, nodes)!, /big/);
 * assert.equal(unplaceable({ CPU: 2 }, nodes), undefined);
 * ```
 */
export function unplaceable(
  need: Readonly<Record<string, number>>,
  nodes: readonly RayNode[],
): string | undefined {
  const alive = nodes.filter((n) => n.alive);
  if (!alive.length) return "the cluster has no alive node";
  if (alive.some((n) => Object.entries(need).every(([k, v]) => (n.resources[k] ?? 0) >= v))) {
    return undefined;
  }
  const parts: string[] = [];
  for (const [k, v] of Object.entries(need)) {
    if (!(v > 0)) continue;
    const most = Math.max(0, ...alive.map((n) => n.resources[k] ?? 0));
    if (most < v) {
      parts.push(
        most === 0
          ? `no node has the resource ${JSON.stringify(k)} (asked ${v})`
          : `asked ${v} ${JSON.stringify(k)} but the largest node has ${most}`,
      );
    }
  }
  return parts.length
    ? parts.join("; ")
    : `no single node has all of ${JSON.stringify(need)} at once`;
}
