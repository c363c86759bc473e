/**
 * The Callback contract suite: what the runner relies on of a logger or reporter. It drives the
 * callback through whole experiments — the events in the order the runner sends them, with
 * frozen snapshots — and checks that every hook settles in time without throwing, that events
 * of trials it never saw start (a resumed experiment, a callback added on resume) are taken,
 * that an interrupted end and a resume into the same folder work, and that it leaves the events
 * as they were.
 *
 * @example
 * ```ts ignore
 * // my_logger_test.ts — run with `deno test -A`
 * import { callbackContract } from "jsr:@tunebox/tunebox/testing";
 * import { myLogger } from "./mine.ts";
 *
 * callbackContract("myLogger", () => myLogger({ flushEvery: 1 }));
 * ```
 *
 * @module
 */

import assert from "#assert";
import {
  type Callback,
  checkPluginShape,
  type Decision,
  type ExperimentStart,
} from "../core/plugin.ts";
import type { Config, TrialResult, TrialSnapshot, TrialStatus } from "../core/trial.ts";
import { uniform } from "../core/space.ts";

/** Options of {@linkcode callbackContract}. */
export interface CallbackContractOptions {
  /** How long one hook may take before the case fails. @default 30000 */
  readonly hookTimeoutMs?: number;
  /** Passed to `Deno.test` (e.g. `{ sanitizeResources: false }` for a callback that serves). */
  readonly test?: Omit<Deno.TestDefinition, "name" | "fn">;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** One trial's events as the runner would send them, frozen. */
class TrialEvents {
  readonly #id: string;
  readonly #config: Config;
  readonly #dir: string;
  #iteration = 0;
  #t = 0;
  #last: TrialResult | undefined;

  constructor(id: string, config: Config, dir: string, iteration = 0) {
    this.#id = id;
    this.#config = config;
    this.#dir = dir;
    this.#iteration = iteration;
  }

  snapshot(status: TrialStatus): TrialSnapshot {
    return deepFreeze({
      id: this.#id,
      status,
      config: this.#config,
      iteration: this.#iteration,
      ...(this.#last ? { lastResult: this.#last } : {}),
      dir: this.#dir,
    } as unknown as TrialSnapshot);
  }

  result(loss: number): TrialResult {
    this.#iteration++;
    this.#t += 0.5;
    this.#last = deepFreeze({
      loss,
      nested: { accuracy: 1 - loss / 10 },
      training_iteration: this.#iteration,
      time_total_s: this.#t,
      time_this_iter_s: 0.5,
      timestamp: 1_764_500_000 + this.#iteration,
      trial_id: this.#id,
    });
    return this.#last;
  }
}

async function settle(
  cb: Callback,
  hook: keyof Callback,
  event: unknown,
  limit: number,
): Promise<void> {
  const f = cb[hook] as ((e: unknown) => void | Promise<void>) | undefined;
  if (typeof f !== "function") return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve(f.call(cb, event)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${cb.name}.${hook} did not settle within ${limit} ms`)),
          limit,
        );
      }),
    ]);
  } catch (e) {
    throw new Error(`${cb.name}.${hook} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one experiment's events through a callback: start, three trials (one stopped by the
 * scheduler, one that fails, one checkpointed to completion), end. Throws naming the hook that
 * failed or did not settle.
 *
 * @param cb The callback.
 * @param dir The experiment folder (exists).
 * @param options `resumed` sends the events of a resumed experiment (trials that started
 * before, reports continuing their iterations); `interrupted` ends it interrupted.
 * @returns Resolves when every hook has settled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { driveCallback } from "./callback.ts";
 * const hooks: string[] = [];
 * const dir = await Deno.makeTempDir();
 * await driveCallback({
 *   name: "count",
 *   onExperimentStart: () => void hooks.push("start"),
 *   onReport: () => void hooks.push("report"),
 *   onExperimentEnd: () => void hooks.push("end"),
 * }, dir);
 * assert.equal(hooks[0], "start");
 * assert.equal(hooks.at(-1), "end");
 * assert.equal(hooks.filter((h) => h === "report").length, 7);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function driveCallback(
  cb: Callback,
  dir: string,
  options: { resumed?: boolean; interrupted?: boolean; hookTimeoutMs?: number } = {},
): Promise<void> {
  const limit = options.hookTimeoutMs ?? 30_000;
  const resumed = options.resumed ?? false;
  const start: ExperimentStart = deepFreeze({
    name: dir.split(/[\\/]/).pop() ?? "experiment",
    dir,
    space: { lr: uniform(0.001, 0.1) },
    metric: "loss",
    mode: "min",
    searcher: "random",
    scheduler: "asha",
    resumed,
  });
  await settle(cb, "onExperimentStart", start, limit);
  const first = resumed ? 2 : 0;
  const trials = ["a", "b", "c"].map((s, i) =>
    new TrialEvents(`cc${s}00_0000${i}`, { lr: 0.01 * (i + 1) }, `${dir}/cc${s}00_0000${i}`, first)
  );
  const decide = (kind: Decision["kind"]): Decision =>
    deepFreeze(kind === "stop" ? { kind, reason: "pruned by asha" } : { kind } as Decision);
  for (const t of trials) {
    await settle(cb, "onTrialStart", deepFreeze({ trial: t.snapshot("running"), resumed }), limit);
  }
  const all: TrialSnapshot[] = [];
  // a: stopped by the scheduler after two reports.
  const [a, b, c] = trials;
  for (const [loss, kind] of [[5, "continue"], [4, "stop"]] as const) {
    const result = a.result(loss);
    await settle(
      cb,
      "onReport",
      { trial: a.snapshot("running"), result, decision: decide(kind) },
      limit,
    );
  }
  await settle(
    cb,
    "onTrialEnd",
    deepFreeze({ trial: a.snapshot("terminated"), outcome: "stopped", reason: "pruned by asha" }),
    limit,
  );
  all.push(a.snapshot("terminated"));
  // b: one report, then the trainable fails.
  await settle(
    cb,
    "onReport",
    { trial: b.snapshot("running"), result: b.result(6), decision: decide("continue") },
    limit,
  );
  await settle(
    cb,
    "onTrialEnd",
    deepFreeze({
      trial: b.snapshot("error"),
      outcome: "error",
      reason: "Error: boom\n  at x.ts:1",
    }),
    limit,
  );
  all.push(b.snapshot("error"));
  // c: four reports, a checkpoint with the second and the fourth, completed.
  for (let k = 0; k < 4; k++) {
    const result = c.result(3 - k * 0.5);
    await settle(cb, "onReport", {
      trial: c.snapshot("running"),
      result,
      decision: decide("continue"),
    }, limit);
    if (k % 2 === 1) {
      await settle(
        cb,
        "onCheckpoint",
        deepFreeze({
          trial: c.snapshot("running"),
          path: `${dir}/ccc00_00002/checkpoint_${
            String(result.training_iteration).padStart(6, "0")
          }`,
          iteration: result.training_iteration,
        }),
        limit,
      );
    }
  }
  await settle(
    cb,
    "onTrialEnd",
    deepFreeze({ trial: c.snapshot("terminated"), outcome: "completed" }),
    limit,
  );
  all.push(c.snapshot("terminated"));
  await settle(
    cb,
    "onExperimentEnd",
    deepFreeze({ trials: all, interrupted: options.interrupted ?? false }),
    limit,
  );
  const flush = (cb as { flush?: (ms?: number) => Promise<void> }).flush;
  if (typeof flush === "function") await flush.call(cb, limit);
}

/**
 * Registers the Callback contract cases with `Deno.test`. `make` returns a fresh callback; each
 * case runs it against a new experiment folder, which is removed afterwards.
 *
 * @param name The callback's name in the test names.
 * @param make Makes the callback.
 * @param options Time limit per hook and `Deno.test` options.
 *
 * @example
 * ```ts ignore
 * import { callbackContract } from "jsr:@tunebox/tunebox/testing";
 * import { tensorboardLogger } from "jsr:@tunebox/tunebox/loggers/tensorboard";
 * callbackContract("tensorboard", () => tensorboardLogger());
 * ```
 */
export function callbackContract(
  name: string,
  make: () => Callback,
  options: CallbackContractOptions = {},
): void {
  const hookTimeoutMs = options.hookTimeoutMs ?? 30_000;
  const cases: [string, (dir: string) => Promise<void>][] = [
    ["is a well-formed plugin", () => {
      const cb = make();
      assert.equal(checkPluginShape("callback", cb), undefined);
      assert.ok(typeof cb.name === "string" && cb.name.length > 0, "name is empty");
      return Promise.resolve();
    }],
    ["takes a whole experiment's events (stopped, failed, checkpointed trials)", async (dir) => {
      await driveCallback(make(), dir, { hookTimeoutMs });
    }],
    ["takes an interrupted end, then a resume into the same folder", async (dir) => {
      await driveCallback(make(), dir, { interrupted: true, hookTimeoutMs });
      await driveCallback(make(), dir, { resumed: true, hookTimeoutMs });
    }],
    ["takes events of trials it never saw start", async (dir) => {
      const cb = make();
      const start: ExperimentStart = deepFreeze({
        name: "unseen",
        dir,
        space: {},
        metric: "loss",
        mode: "min",
        searcher: "random",
        scheduler: "fifo",
        resumed: true,
      });
      await settle(cb, "onExperimentStart", start, hookTimeoutMs);
      const t = new TrialEvents("zz000_00009", { lr: 0.5 }, `${dir}/zz000_00009`, 7);
      const result = t.result(1);
      await settle(
        cb,
        "onReport",
        { trial: t.snapshot("running"), result, decision: { kind: "continue" } },
        hookTimeoutMs,
      );
      await settle(
        cb,
        "onTrialEnd",
        { trial: t.snapshot("terminated"), outcome: "completed" },
        hookTimeoutMs,
      );
      await settle(cb, "onExperimentEnd", {
        trials: [t.snapshot("terminated")],
        interrupted: false,
      }, hookTimeoutMs);
    }],
  ];
  for (const [what, fn] of cases) {
    Deno.test({
      ...options.test,
      name: `callbackContract(${name}): ${what}`,
      async fn() {
        const dir = await Deno.makeTempDir({ prefix: "tunebox_callback_contract_" });
        try {
          await fn(dir);
        } finally {
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        }
      },
    });
  }
}
