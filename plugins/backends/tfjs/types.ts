/**
 * The types shared by the tfjs backend's modules. Importing this file loads no TensorFlow.js.
 *
 * @module
 */

import type { JsonValue } from "../../../core/plugin.ts";

/** The backends `loadTfjs` can pick, fastest first. */
export type TfjsBackendName = "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";

/** Every backend name, fastest first (the default preference list of `loadTfjs`). */
export const ALL_BACKENDS: readonly TfjsBackendName[] = [
  "tensorflow-gpu",
  "webgpu",
  "tensorflow",
  "wasm",
  "cpu",
];

/** What a checkpointing report hands the session: a function that writes into a folder. */
export interface ReportOptions {
  /** Writes the checkpoint's files into `dir` (a staging folder the driver commits). */
  readonly checkpoint?: (dir: string) => Promise<void> | void;
}

/**
 * The part of a trial's session this module uses. Tunebox's own session has this shape; any
 * object that does works (a test's recorder, another runner's adapter).
 */
export interface TuneSession {
  /** Reports metrics, optionally with a checkpoint; resolves once the driver recorded it. */
  report(metrics: Record<string, JsonValue>, options?: ReportOptions): Promise<void>;
  /** The committed checkpoint folder to restore from, when the trial resumes. */
  readonly checkpoint?: string;
  /** Reports already made by this trial (the epoch to continue from). */
  readonly iteration: number;
  /** Aborted when the driver wants the trial to end. */
  readonly signal?: AbortSignal;
}
