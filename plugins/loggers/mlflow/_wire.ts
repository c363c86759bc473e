/**
 * MLflow's REST API as the logger uses it: limits, run state and its saved form, HTTP errors.
 *
 * @module
 */

export const API = "/api/2.0/mlflow";
export const ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts";
export const MAX_METRICS = 1000;
export const MAX_PARAMS = 100;
export const MAX_TAGS = 100;
export const MAX_ENTITIES = 1000;
export const MAX_BODY_BYTES = 900_000; // the server's limit is 1,000,000
export const MAX_KEY = 250;
export const MAX_TAG_VALUE = 5000; // 8000 on current servers, 5000 on older ones
export const STATE_FILE = "mlflow.json";
export const SPOOL_INTERVAL_MS = 5000;
export const RETRIABLE = new Set([408, 429, 500, 502, 503, 504]);
export const SKIPPED_METRICS = new Set(["timestamp", "trial_id", "config", "pid"]);

export type RunStatus = "RUNNING" | "FINISHED" | "FAILED" | "KILLED";

interface Metric {
  readonly key: string;
  readonly value: number | string;
  readonly timestamp: number;
  readonly step: number;
}

interface ArtifactJob {
  readonly dir: string;
  readonly dest: string;
  files?: string[];
}

export interface RunState {
  readonly name: string;
  readonly uuid: string;
  readonly parent: boolean;
  trialId?: string;
  runId?: string;
  artifactUri?: string;
  startTime: number;
  /** True when a create request may have reached the server: search before creating again. */
  createTried: boolean;
  params: Map<string, string>;
  sentParams: Map<string, string>;
  tags: Map<string, string>;
  metrics: Metric[];
  status?: { readonly status: RunStatus; readonly endTime?: number };
  ended: boolean;
  artifacts: ArtifactJob[];
  chunkLimit: number;
  broken?: string;
  checkpoints: Map<number, string>;
  scores: Map<number, number>;
}

export interface SavedRun {
  name: string;
  uuid: string;
  trialId?: string;
  runId?: string;
  artifactUri?: string;
  startTime: number;
  ended: boolean;
  sentParams: [string, string][];
  pending?: {
    params: [string, string][];
    tags: [string, string][];
    metrics: [string, number | string, number, number][];
    status?: { status: RunStatus; endTime?: number };
    artifacts: { dir: string; dest: string; files?: string[] }[];
  };
}

export interface SavedState {
  version: 1;
  trackingUri: string;
  experiment: string;
  experimentId?: string;
  parent?: SavedRun;
  trials: SavedRun[];
}

export class HttpError extends Error {
  readonly status: number;
  readonly code?: string;
  readonly body: string;
  readonly retryAfterMs?: number;
  constructor(what: string, status: number, body: string, retryAfter: string | null) {
    let code: string | undefined, message = body.trim().slice(0, 300);
    try {
      const j = JSON.parse(body);
      if (typeof j?.error_code === "string") code = j.error_code;
      if (typeof j?.message === "string") message = j.message.slice(0, 300);
    } catch { /* plain-text bodies happen (proxies, disabled artifact proxy) */ }
    super(
      `${what} answered HTTP ${status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`,
    );
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfterMs = parseRetryAfter(retryAfter);
  }
}

export class NetworkError extends Error {}

function parseRetryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(h);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

export function retriable(e: unknown): boolean {
  return e instanceof NetworkError || (e instanceof HttpError && RETRIABLE.has(e.status));
}
