/**
 * The Executor contract suite and a fake executor.
 *
 * {@linkcode executorContract} checks what the runner relies on of an executor: reports arrive in
 * order and each waits for its ack, a trial continues from `job.iteration`, an ack of `"stop"`
 * ends the trial without another report, `stop(graceMs)` ends a trial that is still running, a
 * trainable's error comes back as `{ kind: "error" }` with its message, the trial sees the cpu and
 * gpu of `job.resources` as `session.resources`, trials side by side keep their reports apart,
 * and `close()` resolves. The executor runs the suite's trainable:
 * {@linkcode contractTrainable} (a function, for in-process executors) or the module at
 * {@linkcode CONTRACT_TRAINABLE_URL} (for process and cluster executors).
 *
 * {@linkcode fakeExecutor} runs scripted trials in the driver's process, with no session and no
 * process, and records what the runner asked of it: for runner and plugin tests.
 *
 * @example
 * ```ts ignore
 * // my_executor_test.ts — run with `deno test -A`
 * import { CONTRACT_TRAINABLE_URL, executorContract } from "jsr:@tunebox/tunebox/testing";
 * import { myExecutor } from "./mine.ts";
 *
 * executorContract("myExecutor", () => myExecutor(CONTRACT_TRAINABLE_URL));
 * ```
 *
 * @module
 */

import assert from "#assert";
import { join } from "node:path";
import type {
  Ack,
  Executor,
  RawReport,
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
} from "../core/plugin.ts";
import type { Config, JsonValue } from "../core/trial.ts";
import { STAGING_DIR, WORK_DIR } from "../core/layout.ts";
export { contractTrainable, type ContractTrainableConfig } from "./_contract_trainable.ts";

/**
 * The module of {@linkcode contractTrainable} (its default export), for executors that run a
 * trainable module: `subprocessExecutor(CONTRACT_TRAINABLE_URL)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONTRACT_TRAINABLE_URL, contractTrainable } from "./executor.ts";
 * assert.equal((await import(CONTRACT_TRAINABLE_URL)).default, contractTrainable);
 * ```
 */
export const CONTRACT_TRAINABLE_URL: string =
  new URL("./_contract_trainable.ts", import.meta.url).href;

/** Options of {@linkcode fakeExecutor}. */
export interface FakeExecutorOptions {
  /**
   * The metrics a trial reports at `iteration` (0 for its first report, continuing from
   * `job.iteration`), or undefined when the trial is done. A throw fails the trial with its
   * message. May be async (to wait, or to be slow). `job` is the trial's job (its resources:
   * what a session would show as `session.resources`).
   */
  readonly step: (
    config: Config,
    iteration: number,
    job?: TrialJob,
  ) => Record<string, JsonValue> | undefined | Promise<Record<string, JsonValue> | undefined>;
  /**
   * Write a checkpoint with the report of these iterations: a staging folder holding
   * `state.json` (`{ iteration, config }`), which the runner commits. @default never
   */
  readonly checkpointAt?: (iteration: number) => boolean;
  /** The executor's name. @default "fake" */
  readonly name?: string;
}

/** An executor of scripted trials that records what it was asked. */
export interface FakeExecutor extends Executor {
  /** Every job started, in order (a trial run again appears again). */
  readonly started: readonly TrialJob[];
  /** The acks each trial got, by trial id, in order. */
  readonly acks: ReadonlyMap<string, readonly Ack[]>;
  /** The trial ids `stop()` was called for, in order. */
  readonly stopped: readonly string[];
  /** How many trials are running now. */
  readonly running: number;
  /** Whether `close()` was called. */
  readonly closed: boolean;
}

/**
 * An executor that runs scripted trials in the driver's process: each trial calls `step` for
 * its iterations, reports the metrics it returns and waits for the ack; an ack of `"stop"` or
 * `stop()` ends it, a throw fails it. It records the jobs, acks and stop requests it saw.
 *
 * @param options What a trial reports, and when it checkpoints.
 * @returns The executor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fakeExecutor } from "./executor.ts";
 *
 * const executor = fakeExecutor({ step: (c, i) => (i < 2 ? { loss: Number(c.x) / (i + 1) } : undefined) });
 * const dir = await Deno.makeTempDir();
 * const seen: number[] = [];
 * const handle = executor.start(
 *   { trialId: "t_0", config: { x: 4 }, dir, workDir: dir, iteration: 0, timeOffsetS: 0, sandbox: {}, env: {} },
 *   { report: (r) => (seen.push(Number(r.metrics.loss)), Promise.resolve("continue")) },
 * );
 * assert.deepEqual(await handle.exited, { kind: "done" });
 * assert.deepEqual(seen, [4, 2]);
 * assert.deepEqual(executor.acks.get("t_0"), ["continue", "continue"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fakeExecutor(options: FakeExecutorOptions): FakeExecutor {
  const started: TrialJob[] = [];
  const acks = new Map<string, Ack[]>();
  const stopped: string[] = [];
  let running = 0;
  let closed = false;
  return {
    name: options.name ?? "fake",
    get started() {
      return started;
    },
    get acks() {
      return acks;
    },
    get stopped() {
      return stopped;
    },
    get running() {
      return running;
    },
    get closed() {
      return closed;
    },
    start(job: TrialJob, listener: TrialListener): TrialHandle {
      started.push(job);
      const mine: Ack[] = acks.get(job.trialId) ?? [];
      acks.set(job.trialId, mine);
      let stopAsked = false;
      let wake: (() => void) | undefined;
      running++;
      const run = async (): Promise<TrialExit> => {
        const t0 = performance.now();
        for (let i = job.iteration;; i++) {
          if (stopAsked) return { kind: "stopped" };
          let metrics: Record<string, JsonValue> | undefined;
          try {
            metrics = await options.step(job.config, i, job);
          } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            return {
              kind: "error",
              message: `${err.name}: ${err.message}`,
              ...(err.stack ? { stack: err.stack } : {}),
            };
          }
          if (stopAsked) return { kind: "stopped" };
          if (metrics === undefined) return { kind: "done" };
          const report: { -readonly [K in keyof RawReport]: RawReport[K] } = {
            metrics,
            elapsedS: (performance.now() - t0) / 1000,
          };
          if (options.checkpointAt?.(i)) {
            const staged = join(job.workDir, STAGING_DIR, `ckpt_fake_${i}`);
            await Deno.mkdir(staged, { recursive: true });
            await Deno.writeTextFile(
              join(staged, "state.json"),
              JSON.stringify({ iteration: i, config: job.config }),
            );
            report.checkpointDir = staged;
          }
          const ack = await listener.report(report);
          mine.push(ack);
          if (ack === "stop") return { kind: "done" };
        }
      };
      const exited = run().finally(() => {
        running--;
        wake?.();
      });
      return {
        exited,
        async stop() {
          stopped.push(job.trialId);
          stopAsked = true;
          await new Promise<void>((r) => {
            wake = r;
            exited.then(() => r(), () => r());
          });
        },
      };
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

/** Options of {@linkcode executorContract}. */
export interface ExecutorContractOptions {
  /** How long one trial of the suite may take before the case fails. @default 60000 */
  readonly timeoutMs?: number;
  /** Passed to `Deno.test` (e.g. `{ ignore: !hasSlurm }`). */
  readonly test?: Omit<Deno.TestDefinition, "name" | "fn">;
}

interface Seen {
  readonly reports: RawReport[];
  readonly listener: TrialListener;
}

function listen(ackAt: (n: number) => Ack = () => "continue", onReport?: () => void): Seen {
  const reports: RawReport[] = [];
  return {
    reports,
    listener: {
      report(r) {
        reports.push(r);
        onReport?.();
        return Promise.resolve(ackAt(reports.length));
      },
      needsDir() {},
    },
  };
}

async function jobFor(
  base: string,
  trialId: string,
  config: Config,
  iteration = 0,
  resources?: TrialJob["resources"],
): Promise<TrialJob> {
  const dir = join(base, trialId);
  const workDir = join(dir, WORK_DIR);
  await Deno.mkdir(workDir, { recursive: true });
  return {
    trialId,
    config,
    dir,
    workDir,
    iteration,
    timeOffsetS: 0,
    sandbox: {},
    env: {},
    ...(resources ? { resources } : {}),
  };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Registers the Executor contract cases with `Deno.test`. `make` returns a fresh executor that
 * runs the suite's trainable ({@linkcode contractTrainable}, or the module at
 * {@linkcode CONTRACT_TRAINABLE_URL}); each case closes it.
 *
 * @param name The executor's name in the test names.
 * @param make Makes the executor.
 * @param options Time limit and `Deno.test` options.
 *
 * @example
 * ```ts ignore
 * import { contractTrainable, executorContract } from "jsr:@tunebox/tunebox/testing";
 * import { inprocessExecutor } from "jsr:@tunebox/tunebox";
 * executorContract("inprocess", () => inprocessExecutor(contractTrainable));
 * ```
 */
export function executorContract(
  name: string,
  make: () => Executor,
  options: ExecutorContractOptions = {},
): void {
  const limit = options.timeoutMs ?? 60_000;
  const cases: [string, (e: Executor, base: string) => Promise<void>][] = [
    ["is a well-formed executor", (e) => {
      assert.equal(typeof e.name, "string");
      assert.ok(e.name.length > 0, "name is empty");
      assert.equal(typeof e.start, "function");
      return Promise.resolve();
    }],
    ["reports arrive in order, each acked, then the trial exits done", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const seen = listen();
      const h = e.start(await jobFor(base, "t_order", { x: 2, iterations: 3 }), seen.listener);
      assert.deepEqual(await within(h.exited, limit, "the trial"), { kind: "done" });
      assert.deepEqual(seen.reports.map((r) => r.metrics), [
        { value: 2, step: 0 },
        { value: 4, step: 1 },
        { value: 6, step: 2 },
      ]);
    }],
    ["a trial continues from job.iteration", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const seen = listen();
      const job = await jobFor(base, "t_resume", { x: 1, iterations: 4 }, 2);
      const h = e.start(job, seen.listener);
      assert.deepEqual(await within(h.exited, limit, "the trial"), { kind: "done" });
      assert.deepEqual(seen.reports.map((r) => r.metrics.step), [2, 3]);
    }],
    ['an ack of "stop" ends the trial without another report', async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const seen = listen((n) => (n === 2 ? "stop" : "continue"));
      const h = e.start(await jobFor(base, "t_ack", { x: 1, iterations: 50 }), seen.listener);
      const exit = await within(h.exited, limit, "the trial");
      assert.notEqual(exit.kind, "error", JSON.stringify(exit));
      assert.equal(seen.reports.length, 2);
    }],
    ["stop(graceMs) ends a trial that is still running", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      let first!: () => void;
      const reported = new Promise<void>((r) => (first = r));
      const seen = listen(undefined, () => first());
      const job = await jobFor(base, "t_stop", { x: 1, iterations: 100_000, sleepMs: 50 });
      const h = e.start(job, seen.listener);
      await within(reported, limit, "the first report");
      await within(h.stop(1000), limit, "stop()");
      const exit = await within(h.exited, limit, "the trial after stop()");
      assert.notEqual(exit.kind, "error", JSON.stringify(exit));
      const n = seen.reports.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.reports.length, n, "reports arrived after the trial exited");
    }],
    ["a trainable's error comes back with its message", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const seen = listen();
      const job = await jobFor(base, "t_fail", { x: 1, iterations: 5, failAt: 1 });
      const exit = await within(e.start(job, seen.listener).exited, limit, "the trial");
      assert.equal(exit.kind, "error");
      assert.match((exit as { message: string }).message, /contract failure at iteration 1/);
      assert.equal(seen.reports.length, 1);
    }],
    ["the trial sees job.resources' cpu and gpu as session.resources", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const seen = listen();
      // What a resource-changing scheduler gave this run of the trial.
      const job = await jobFor(base, "t_res", { x: 1, iterations: 1, showResources: true }, 0, {
        cpu: 1.5,
        gpu: 0,
      });
      const h = e.start(job, seen.listener);
      assert.deepEqual(await within(h.exited, limit, "the trial"), { kind: "done" });
      assert.deepEqual(seen.reports.map((r) => r.metrics), [
        { value: 1, step: 0, cpu: 1.5, gpu: 0 },
      ]);
    }],
    ["trials side by side keep their reports apart", async (e, base) => {
      if (e.prepare) await e.prepare({ experimentDir: base });
      const a = listen(), b = listen();
      const ha = e.start(await jobFor(base, "t_a", { x: 1, iterations: 3 }), a.listener);
      const hb = e.start(await jobFor(base, "t_b", { x: 100, iterations: 3 }), b.listener);
      const exits = await within(Promise.all([ha.exited, hb.exited]), limit, "both trials");
      assert.deepEqual(exits, [{ kind: "done" }, { kind: "done" }]);
      assert.deepEqual(a.reports.map((r) => r.metrics.value), [1, 2, 3]);
      assert.deepEqual(b.reports.map((r) => r.metrics.value), [100, 200, 300]);
    }],
  ];
  for (const [what, fn] of cases) {
    Deno.test({
      ...options.test,
      name: `executorContract(${name}): ${what}`,
      async fn() {
        const base = await Deno.makeTempDir({ prefix: "tunebox_executor_contract_" });
        const e = make();
        try {
          await fn(e, base);
        } finally {
          if (e.close) await within(e.close(), limit, "close()");
          await Deno.remove(base, { recursive: true }).catch(() => {});
        }
      },
    });
  }
}

/**
 * {@linkcode contractTrainable} as a {@linkcode FakeExecutorOptions.step}, so that
 * `fakeExecutor({ step: contractStep })` runs the Executor contract.
 *
 * @param config The contract config.
 * @param iteration The iteration.
 * @returns The metrics of that iteration, or undefined after the last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { contractStep } from "./executor.ts";
 * assert.deepEqual(await contractStep({ x: 2, iterations: 2 }, 1), { value: 4, step: 1 });
 * assert.equal(await contractStep({ x: 2, iterations: 2 }, 2), undefined);
 * ```
 */
export async function contractStep(
  config: Config,
  iteration: number,
  job?: TrialJob,
): Promise<Record<string, JsonValue> | undefined> {
  const c = config as {
    x: number;
    iterations: number;
    failAt?: number;
    sleepMs?: number;
    showResources?: boolean;
  };
  if (iteration >= c.iterations) return undefined;
  if (c.failAt === iteration) throw new Error(`contract failure at iteration ${iteration}`);
  if (c.sleepMs) await new Promise((r) => setTimeout(r, c.sleepMs));
  const metrics = { value: c.x * (iteration + 1), step: iteration };
  if (!c.showResources) return metrics;
  // The fake has no session: it shows what a session would.
  return { ...metrics, cpu: job?.resources?.cpu ?? 1, gpu: job?.resources?.gpu ?? 0 };
}
