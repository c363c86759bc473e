/**
 * The trial-side API: what a trainable receives to report metrics, save checkpoints and learn
 * where to resume from. The same object shape runs in a sandboxed subprocess and in-process.
 *
 * @module
 */

import { STAGING_DIR } from "./layout.ts";
import type { Config, JsonValue, TrialResources } from "./trial.ts";
import {
  type CollectiveData,
  type Collectives,
  type ReduceOp,
  soloCollectives,
} from "./collectives.ts";

export type { CollectiveData, ReduceOp };

/** Writes a checkpoint into `dir` (an empty folder inside the trial folder). */
export type CheckpointWriter = (dir: string) => void | Promise<void>;

/** Options of {@linkcode Session.report}. */
export interface ReportOptions {
  /**
   * A checkpoint for this report: a function that writes into the folder it is given, or the
   * path of a folder already written inside the trial folder. The driver commits it atomically
   * as `checkpoint_<iteration>` before the report is acknowledged.
   */
  readonly checkpoint?: CheckpointWriter | string;
}

/**
 * What a trainable gets: its config, where to resume from, and `report`.
 *
 * @example
 * ```ts
 * import { defineTrainable } from "./session.ts";
 * export default defineTrainable<{ lr: number }>(async (config, session) => {
 *   for (let i = session.iteration; i < 10; i++) {
 *     await session.report({ loss: 1 / (i + 1) / config.lr });
 *   }
 * });
 * ```
 */
export interface Session<C = Config> {
  /** The trial id. */
  readonly trialId: string;
  /** The trial's config. */
  readonly config: C;
  /** Reports made so far, including earlier runs of this trial (resume from here). */
  readonly iteration: number;
  /** The committed checkpoint folder to restore from, if any (retry, pause/resume, PBT). */
  readonly checkpoint: string | undefined;
  /** The trial folder: the only place a sandboxed trial may write by default. */
  readonly trialDir: string;
  /** Aborted when the driver asks the trial to stop. */
  readonly signal: AbortSignal;
  /**
   * The CPUs and GPUs this run of the trial holds (per worker), frozen: the experiment's
   * `resources`, or what a resource-changing scheduler gave it (it restarts the trial from its
   * checkpoint with the new amounts, so the value never changes during a run). Size thread
   * pools and batch sizes from it.
   */
  readonly resources: TrialResources;
  /**
   * Reports metrics (and optionally a checkpoint) and waits for the driver's answer. When a
   * scheduler or a stop criterion ends the trial, the returned promise rejects with
   * {@linkcode TrialStopped}, which the runtime treats as a clean end: the trainable does not
   * need to catch it.
   *
   * @throws {TypeError} when a metric is not a JSON value.
   */
  report(metrics: Record<string, unknown>, options?: ReportOptions): Promise<void>;
  /**
   * This worker's rank among the trial's workers (`resources.workers`), 0 for a trial of one
   * worker. Rank 0's reports and checkpoints are the trial's; the other ranks' reports are
   * acknowledged (so they can call `report` in the same loop) but not recorded, and their
   * checkpoints are discarded.
   */
  readonly rank: number;
  /** This worker's rank among the trial's workers on its node. */
  readonly localRank: number;
  /** How many workers the trial has (`resources.workers`, default 1). */
  readonly worldSize: number;
  /**
   * This worker's contiguous part of `data`: elements `[floor(n·rank/worldSize),
   * floor(n·(rank+1)/worldSize))`. Sizes differ by at most one; the parts of all ranks are
   * `data`, in order. Typed arrays give a view (`subarray`), arrays a copy (`slice`).
   */
  shard<T extends ArrayLike<unknown> & { slice(a: number, b: number): T }>(data: T): T;
  /**
   * Sums (or averages) `data` across the trial's workers, in place, with a ring all-reduce;
   * every worker gets the same bits. Every worker must make the same collective calls in the
   * same order with arrays of the same lengths.
   *
   * @throws {CollectiveError} when a worker left, the calls differ, or it timed out.
   */
  allreduce<T extends CollectiveData>(data: T, op?: ReduceOp): Promise<T>;
  /** Copies rank `root`'s `data` into every worker's `data`, in place. @default root 0 */
  broadcast<T extends CollectiveData>(data: T, root?: number): Promise<T>;
  /** Resolves once every worker of the trial has called it. */
  barrier(): Promise<void>;
}

/** The function a trainable runs. */
export type TrainableFn<C = Config> = (config: C, session: Session<C>) => void | Promise<void>;

/** The brand of a trainable made by {@linkcode defineTrainable}. */
export const TRAINABLE: unique symbol = Symbol.for("tunebox.trainable");

/** A trainable made by {@linkcode defineTrainable}. */
export interface Trainable<C = Config> {
  /** Marks the object as a trainable. */
  readonly [TRAINABLE]: true;
  /** The training function. */
  readonly run: TrainableFn<C>;
}

/**
 * Wraps a training function as the default export of a trainable module (it also types the
 * config).
 *
 * @example
 * ```ts
 * import { defineTrainable } from "./session.ts";
 * export default defineTrainable<{ x: number }>(async (config, session) => {
 *   await session.report({ score: -((config.x - 2) ** 2) });
 * });
 * ```
 */
export function defineTrainable<C = Config>(fn: TrainableFn<C>): Trainable<C> {
  if (typeof fn !== "function") {
    throw new TypeError(`defineTrainable: expected a function, got ${typeof fn}`);
  }
  return Object.freeze({ [TRAINABLE]: true as const, run: fn });
}

/**
 * The training function of a module's default export (a trainable or a plain function), or
 * undefined when it has neither.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineTrainable, trainableFn } from "./session.ts";
 * assert.equal(typeof trainableFn(defineTrainable(() => {})), "function");
 * ```
 */
export function trainableFn(value: unknown): TrainableFn<Config> | undefined {
  if (typeof value === "function") return value as TrainableFn<Config>;
  if (typeof value === "object" && value !== null && TRAINABLE in value) {
    return (value as Trainable<Config>).run;
  }
  return undefined;
}

/**
 * Rejects `report` when the driver stops the trial; the runtime ends the trial cleanly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrialStopped } from "./session.ts";
 * assert.equal(new TrialStopped().name, "TrialStopped");
 * ```
 */
export class TrialStopped extends Error {
  /** Creates the signal error. */
  constructor() {
    super("The trial was stopped by the driver");
    this.name = "TrialStopped";
  }
}

/** How a session hands a report to its driver. */
export interface ReportSink {
  /** Sends the report; resolves with the driver's answer. */
  send(
    metrics: Record<string, JsonValue>,
    checkpointDir: string | undefined,
  ): Promise<"continue" | "stop">;
}

/** Where a session starts. */
export interface SessionInit {
  /** Trial id. */
  readonly trialId: string;
  /** Config. */
  readonly config: Config;
  /** Iteration to continue from. */
  readonly iteration: number;
  /** Checkpoint to restore. */
  readonly checkpoint?: string;
  /** Trial folder. */
  readonly trialDir: string;
  /** The CPUs and GPUs it holds. @default { cpu: 1, gpu: 0 } */
  readonly resources?: { readonly cpu?: number; readonly gpu?: number };
  /**
   * Called once, the first time the trainable reads `trialDir` (or saves a checkpoint): an
   * in-process trial's folder is made then. @default none
   */
  readonly onTrialDir?: () => void;
}

/**
 * The session implementation both executors use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrialSession } from "./session.ts";
 * const s = new TrialSession(
 *   { trialId: "t", config: {}, iteration: 0, trialDir: "." },
 *   { send: () => Promise.resolve("continue") },
 * );
 * await s.report({ loss: 1 });
 * assert.equal(s.iteration, 1);
 * assert.deepEqual(s.resources, { cpu: 1, gpu: 0 });
 * ```
 */
export class TrialSession implements Session<Config> {
  readonly trialId: string;
  readonly config: Config;
  readonly checkpoint: string | undefined;
  readonly resources: TrialResources;
  readonly #trialDir: string;
  /** Called at the first read of `trialDir`, then dropped once it returned. */
  #onTrialDir: (() => void) | undefined;
  /**
   * Made on first use (`signal` or a stop), not with every session: an AbortController is a
   * web object the runtime tracks, and most trials never look at their signal.
   */
  #controller: AbortController | undefined;
  readonly #sink: ReportSink;
  readonly #group: Collectives;
  #iteration: number;
  #staged = 0;
  #stopped = false;

  /**
   * Creates a session that reports through `sink`; `group` holds the collectives of a
   * multi-worker trial (a world of one by default).
   */
  constructor(init: SessionInit, sink: ReportSink, group: Collectives = soloCollectives()) {
    this.#group = group;
    this.trialId = init.trialId;
    this.config = init.config;
    this.#iteration = init.iteration;
    this.checkpoint = init.checkpoint;
    this.#trialDir = init.trialDir;
    this.#onTrialDir = init.onTrialDir;
    this.resources = Object.freeze({
      cpu: init.resources?.cpu ?? 1,
      gpu: init.resources?.gpu ?? 0,
    });
    this.#sink = sink;
  }

  /**
   * The trial folder. A getter of the class (not an accessor defined per session: that gives
   * every session a hidden class of its own, which V8 keeps alive across scavenges).
   */
  get trialDir(): string {
    const hook = this.#onTrialDir;
    if (hook) {
      hook(); // a hook that throws is called again at the next read
      this.#onTrialDir = undefined;
    }
    return this.#trialDir;
  }

  /** Reports made so far, including earlier runs. */
  get iteration(): number {
    return this.#iteration;
  }

  /** Aborted when the driver asks the trial to stop. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /** This worker's rank. */
  get rank(): number {
    return this.#group.rank;
  }

  /** This worker's rank on its node. */
  get localRank(): number {
    return this.#group.localRank;
  }

  /** The number of workers. */
  get worldSize(): number {
    return this.#group.worldSize;
  }

  /** This worker's contiguous part of `data`. */
  shard<T extends ArrayLike<unknown> & { slice(a: number, b: number): T }>(data: T): T {
    if (data === null || typeof data !== "object" || typeof data.length !== "number") {
      throw new TypeError(
        `shard: expected an array or a typed array, got ${data === null ? "null" : typeof data}`,
      );
    }
    const n = data.length, p = this.worldSize, r = this.rank;
    const a = Math.floor((n * r) / p), b = Math.floor((n * (r + 1)) / p);
    const sub = (data as unknown as { subarray?: (a: number, b: number) => T }).subarray;
    return typeof sub === "function" ? sub.call(data, a, b) : data.slice(a, b);
  }

  /** Sums (or averages) `data` across the workers, in place. */
  allreduce<T extends CollectiveData>(data: T, op: ReduceOp = "sum"): Promise<T> {
    return this.#collective(() => this.#group.allreduce(data, op));
  }

  /** Copies rank `root`'s `data` into every worker's `data`. */
  broadcast<T extends CollectiveData>(data: T, root = 0): Promise<T> {
    return this.#collective(() => this.#group.broadcast(data, root));
  }

  /** Resolves once every worker has called it. */
  barrier(): Promise<void> {
    return this.#collective(() => this.#group.barrier());
  }

  async #collective<T>(f: () => Promise<T>): Promise<T> {
    if (this.#stopped) throw new TrialStopped();
    try {
      return await f();
    } catch (e) {
      // The driver stopped the trial: the other workers left the ring because of that.
      if (this.#stopped) throw new TrialStopped();
      throw e;
    }
  }

  /** Marks the session stopped: the next `report` rejects with {@linkcode TrialStopped}. */
  abort(): void {
    this.#stopped = true;
    (this.#controller ??= new AbortController()).abort(new TrialStopped());
  }

  /**
   * Reports metrics and waits for the driver's answer. Not an async function: a report without
   * a checkpoint (the usual one) costs one promise and one callback, not an async frame.
   */
  report(metrics: Record<string, unknown>, options?: ReportOptions): Promise<void> {
    if (this.#stopped) return Promise.reject(new TrialStopped());
    try {
      const clean = checkMetrics(metrics);
      const ck = options?.checkpoint;
      if (ck !== undefined) return this.#reportWithCheckpoint(clean, ck);
      return this.#sink.send(clean, undefined).then(this.#answer);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** What the driver's answer does: counts the report, or stops the trial. */
  readonly #answer = (answer: "continue" | "stop"): void => {
    this.#iteration++;
    if (answer === "stop") {
      this.abort();
      throw new TrialStopped();
    }
  };

  async #reportWithCheckpoint(
    clean: Record<string, JsonValue>,
    ck: CheckpointWriter | string,
  ): Promise<void> {
    let dir: string;
    if (typeof ck === "function") {
      dir = `${this.trialDir}/${STAGING_DIR}/ckpt_${Date.now()}_${++this.#staged}`;
      await Deno.mkdir(dir, { recursive: true });
      await ck(dir);
    } else if (typeof ck === "string") {
      dir = ck;
    } else {
      throw new TypeError(
        `report: "checkpoint" must be a function (dir) => ... or a folder path, got ${typeof ck}`,
      );
    }
    this.#answer(await this.#sink.send(clean, dir));
  }
}

function checkMetrics(metrics: Record<string, unknown>): Record<string, JsonValue> {
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
    throw new TypeError(
      `report: metrics must be an object like { loss: 0.1 }, got ${JSON.stringify(metrics)}`,
    );
  }
  // Plain numbers, strings, booleans and null (the usual report) need no walk.
  for (const k in metrics) {
    if (!Object.hasOwn(metrics, k)) continue;
    const v = metrics[k];
    const type = typeof v;
    if (v !== null && type !== "number" && type !== "string" && type !== "boolean") {
      checkValue(v, k);
    }
  }
  return metrics as Record<string, JsonValue>;
}

function checkValue(v: unknown, path: string): void {
  if (v === null || typeof v === "string" || typeof v === "boolean" || typeof v === "number") {
    return;
  }
  if (Array.isArray(v)) return v.forEach((x, i) => checkValue(x, `${path}[${i}]`));
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v as object)) checkValue(x, `${path}.${k}`);
    return;
  }
  const what = typeof v === "object" ? (v as object).constructor?.name ?? "object" : typeof v;
  throw new TypeError(
    `report: metric "${path}" is a ${what}, not a JSON value; report plain numbers ` +
      `(e.g. \`await t.data()\` or \`.dataSync()[0]\` for a tensor)`,
  );
}
