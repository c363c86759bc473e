/**
 * The MLflow logger's options: checked once, when the logger is made.
 *
 * @module
 */

import { checkKeys } from "../../../core/options.ts";
import type { MlflowCheckpointUpload, MlflowLoggerOptions } from "./mod.ts";

const OPTION_KEYS: readonly string[] = [
  "trackingUri",
  "experiment",
  "token",
  "username",
  "password",
  "tags",
  "checkpoint",
  "maxParamValueLength",
  "drainTimeoutMs",
  "requestTimeoutMs",
  "retryDelayMs",
  "maxRetryDelayMs",
  "warn",
];

export interface Resolved {
  readonly trackingUri?: string;
  readonly experiment?: string;
  readonly token?: string;
  readonly username?: string;
  readonly password?: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly checkpoint: MlflowCheckpointUpload;
  readonly maxParamValueLength: number;
  readonly drainTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly warn: (message: string) => void;
}

export function checkOptions(options: MlflowLoggerOptions): Resolved {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`mlflowLogger: options must be an object, got ${show(options)}`);
  }
  const o = options as Record<string, unknown>;
  checkKeys("mlflowLogger", { ...o }, OPTION_KEYS);
  const str = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") {
      throw new TypeError(
        `mlflowLogger: option "${key}" must be a non-empty string, got ${show(v)}`,
      );
    }
    return v;
  };
  const num = (key: string, def: number, min: number, max: number, integer = false): number => {
    const v = o[key];
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(`mlflowLogger: option "${key}" must be a finite number, got ${show(v)}`);
    }
    if (v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new RangeError(
        `mlflowLogger: option "${key}" must be ${integer ? "an integer" : "a number"} from ` +
          `${min} to ${max}, got ${v}`,
      );
    }
    return v;
  };
  const trackingUri = str("trackingUri");
  if (trackingUri !== undefined) checkUri(trackingUri, `option "trackingUri"`);
  const experiment = str("experiment");
  if (experiment !== undefined && experiment.length > 500) {
    throw new RangeError(
      `mlflowLogger: option "experiment" must be at most 500 characters (MLflow's limit), got ` +
        `${experiment.length}`,
    );
  }
  const username = str("username");
  const password = str("password");
  if ((username === undefined) !== (password === undefined)) {
    throw new TypeError(
      `mlflowLogger: options "username" and "password" go together, got only ` +
        `"${username === undefined ? "password" : "username"}"`,
    );
  }
  const tags = o.tags ?? {};
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) {
    throw new TypeError(
      `mlflowLogger: option "tags" must be an object of strings, got ${show(tags)}`,
    );
  }
  for (const [k, v] of Object.entries(tags)) {
    if (typeof v !== "string") {
      throw new TypeError(`mlflowLogger: option "tags" must map to strings, got ${k}: ${show(v)}`);
    }
  }
  const checkpoint = o.checkpoint ?? "none";
  if (checkpoint !== "none" && checkpoint !== "best" && checkpoint !== "last") {
    throw new TypeError(
      `mlflowLogger: option "checkpoint" must be "none", "best" or "last", got ${show(checkpoint)}`,
    );
  }
  const warn = o.warn ?? ((m: string) => console.warn(m));
  if (typeof warn !== "function") {
    throw new TypeError(`mlflowLogger: option "warn" must be a function, got ${show(warn)}`);
  }
  const retryDelayMs = num("retryDelayMs", 500, 1, 600_000);
  return {
    trackingUri,
    experiment,
    token: str("token"),
    username,
    password,
    tags: tags as Record<string, string>,
    checkpoint,
    maxParamValueLength: num("maxParamValueLength", 6000, 1, 1_000_000, true),
    drainTimeoutMs: num("drainTimeoutMs", 30_000, 0, 86_400_000),
    requestTimeoutMs: num("requestTimeoutMs", 30_000, 1, 3_600_000),
    retryDelayMs,
    maxRetryDelayMs: num("maxRetryDelayMs", 30_000, retryDelayMs, 3_600_000),
    warn: warn as (message: string) => void,
  };
}

export function checkUri(uri: string, what: string): void {
  let url: URL | undefined;
  try {
    url = new URL(uri);
  } catch { /* reported below */ }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new TypeError(
      `mlflowLogger: ${what} must be an http(s) URL of a tracking server such as ` +
        `"http://127.0.0.1:5000", got ${show(uri)} (file stores and "databricks" URIs need ` +
        `the Python client)`,
    );
  }
}

function show(v: unknown): string {
  if (typeof v === "function") return "a function";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
