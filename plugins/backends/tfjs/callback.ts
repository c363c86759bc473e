/**
 * The `model.fit` callback that reports metrics and checkpoints to a trial's session — the
 * counterpart of Ray Tune's `TuneReportCheckpointCallback`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { JsonValue } from "../../../core/plugin.ts";
import { isPatched, withBackend } from "./_tag.ts";
import { type LayersModel, saveModel } from "./checkpoint.ts";
import type { TuneSession } from "./types.ts";

/** Options of {@linkcode tuneCallback}. */
export interface TuneCallbackOptions {
  /**
   * Which `model.fit` logs to report, as `{ reportedName: logKey }` or a list of log keys
   * reported under their own names. @default every key `model.fit` logs
   */
  readonly metrics?: Readonly<Record<string, string>> | readonly string[];
  /** When to report: after each epoch or each batch. @default "epochEnd" */
  readonly on?: "epochEnd" | "batchEnd";
  /** Save the model (`model.json` + `weights.bin`) as the report's checkpoint. @default true */
  readonly checkpoint?: boolean;
  /** Checkpoint every n-th report only. @default 1 */
  readonly checkpointEvery?: number;
  /** Save the optimizer's state too, so training resumes exactly. @default true */
  readonly includeOptimizer?: boolean;
  /**
   * Constant metrics added to every report, e.g. `{ params: model.countParams() }` as a second
   * objective of a multi-objective search. @default none
   */
  readonly extra?: Readonly<Record<string, number>>;
}

/** The `model.fit` callback {@linkcode tuneCallback} returns. */
export type TuneCallback = tf.CustomCallback;

/**
 * A `model.fit` callback that reports the mapped metrics to the trial's session after every
 * epoch (or batch) and saves the model as the report's checkpoint, through a file handler that
 * needs no tfjs-node (so it works on every backend). When the driver aborts the session's
 * signal, training stops after the current epoch.
 *
 * @param session the trial's session.
 * @param options which metrics, when, and whether to checkpoint.
 * @returns the callback, for `model.fit(x, y, { callbacks: [...] })`.
 * @throws {TypeError} when an option is malformed; during `fit`, when a mapped log key is not
 * logged (the message lists the keys that are).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTfjs, tuneCallback, type TuneSession } from "./mod.ts";
 * const { tf } = await loadTfjs({ prefer: ["cpu"] });
 * const reports: Record<string, unknown>[] = [];
 * const session: TuneSession = { iteration: 0, report: async (m) => void reports.push(m) };
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * model.compile({ optimizer: "sgd", loss: "meanSquaredError" });
 * await model.fit(tf.ones([4, 1]), tf.ones([4, 1]), {
 *   epochs: 2, verbose: 0,
 *   callbacks: [tuneCallback(session, { metrics: { loss: "loss" }, checkpoint: false })],
 * });
 * assert.equal(reports.length, 2);
 * ```
 */
export function tuneCallback(
  session: TuneSession,
  options: TuneCallbackOptions = {},
): TuneCallback {
  if (typeof session?.report !== "function") {
    throw new TypeError(
      `tuneCallback needs the trial's session (an object with report()), got ${String(session)}`,
    );
  }
  const mapping = normaliseMetrics(options.metrics);
  const on = options.on ?? "epochEnd";
  if (on !== "epochEnd" && on !== "batchEnd") {
    throw new TypeError(
      `tuneCallback option "on" must be "epochEnd" or "batchEnd", got ${JSON.stringify(on)}`,
    );
  }
  const checkpoint = options.checkpoint ?? true;
  if (typeof checkpoint !== "boolean") {
    throw new TypeError(
      `tuneCallback option "checkpoint" must be a boolean, got ${JSON.stringify(checkpoint)}`,
    );
  }
  const every = options.checkpointEvery ?? 1;
  if (!Number.isInteger(every) || every < 1) {
    throw new RangeError(
      `tuneCallback option "checkpointEvery" must be a whole number >= 1, got ${every}`,
    );
  }
  const includeOptimizer = options.includeOptimizer ?? true;
  const extra = options.extra ?? {};
  if (typeof extra !== "object" || extra === null || Array.isArray(extra)) {
    throw new TypeError(
      `tuneCallback option "extra" must map metric names to numbers, got ${JSON.stringify(extra)}`,
    );
  }
  for (const [k, v] of Object.entries(extra)) {
    if (typeof v !== "number") {
      throw new TypeError(
        `tuneCallback option "extra.${k}" must be a number, got ${JSON.stringify(v)}`,
      );
    }
  }
  let reports = 0;
  let model: LayersModel | undefined;
  const handle = async (logs: tf.Logs | undefined): Promise<void> => {
    const metrics = { ...await pickMetrics(mapping, logs ?? {}, on), ...extra };
    reports++;
    const due = checkpoint && reports % every === 0 && model !== undefined;
    const m = model;
    await session.report(
      isPatched(session) ? metrics : withBackend(session, metrics),
      due && m ? { checkpoint: (dir: string) => saveModel(m, dir, { includeOptimizer }) } : {},
    );
    if (session.signal?.aborted && model) model.stopTraining = true;
  };
  const callback = new tf.CustomCallback(
    on === "epochEnd"
      ? { onEpochEnd: (_epoch, logs) => handle(logs) }
      : { onBatchEnd: (_batch, logs) => handle(logs) },
  );
  const setModel = callback.setModel.bind(callback);
  callback.setModel = (container) => {
    setModel(container);
    model = container as LayersModel;
  };
  return callback;
}

function normaliseMetrics(
  metrics: TuneCallbackOptions["metrics"],
): ReadonlyArray<readonly [string, string]> | undefined {
  if (metrics === undefined) return undefined;
  const pairs: [string, string][] = Array.isArray(metrics)
    ? metrics.map((k) => [k, k])
    : typeof metrics === "object" && metrics !== null
    ? Object.entries(metrics as Record<string, string>)
    : [];
  if (pairs.length === 0 || pairs.some(([k, v]) => typeof v !== "string" || k === "" || v === "")) {
    throw new TypeError(
      `tuneCallback option "metrics" must map reported names to model.fit log keys, e.g. ` +
        `{ val_loss: "val_loss" }, or list log keys; got ${JSON.stringify(metrics)}`,
    );
  }
  return pairs;
}

async function pickMetrics(
  mapping: ReadonlyArray<readonly [string, string]> | undefined,
  logs: tf.Logs,
  on: string,
): Promise<Record<string, JsonValue>> {
  const raw = logs as Record<string, number | tf.Scalar | undefined>;
  const pairs = mapping ?? Object.keys(raw).map((k) => [k, k] as const);
  const out: Record<string, JsonValue> = {};
  for (const [name, key] of pairs) {
    const v = raw[key];
    if (v === undefined) {
      throw new TypeError(
        `tuneCallback: metric "${name}" reads log key "${key}", which model.fit did not log at ` +
          `${on} (it logged: ${Object.keys(raw).join(", ") || "nothing"}). val_* keys need ` +
          `validationData or validationSplit.`,
      );
    }
    out[name] = typeof v === "number" ? v : (await v.data())[0];
  }
  return out;
}
