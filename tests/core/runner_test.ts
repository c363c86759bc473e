// The runner driven directly through the fake executor (testing/executor.ts), not through Tuner:
// what it hands the executor, how it answers reports, retries, stops and commits checkpoints.

import assert from "#assert";
import { concurrencyGate, runExperiment, type RunnerConfig } from "../../core/runner.ts";
import { uniform } from "../../core/space.ts";
import type { Scheduler } from "../../core/plugin.ts";
import { fakeExecutor, type FakeExecutorOptions } from "../../testing/mod.ts";
import { fifoScheduler } from "../../plugins/schedulers/fifo.ts";
import { randomSearcher } from "../../plugins/searchers/random.ts";
import { tempStorage } from "../_helpers.ts";

async function run(
  executor: ReturnType<typeof fakeExecutor>,
  extra: Partial<RunnerConfig> = {},
) {
  const dir = await tempStorage();
  const outcome = await runExperiment({
    name: "runner",
    dir,
    experimentId: "abcde",
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    seed: 1,
    numSamples: 3,
    totalTrials: 3,
    searcher: randomSearcher({ seed: 1 }),
    scheduler: fifoScheduler(),
    callbacks: [],
    executor,
    gate: concurrencyGate(2),
    maxFailures: 0,
    checkpoint: {},
    sandbox: {},
    savedOptions: {},
    createdAt: new Date(0).toISOString(),
    handleSignals: false,
    warn: () => {},
    ...extra,
  });
  return { dir, outcome };
}

const steps = (n: number): FakeExecutorOptions["step"] => (c, i) =>
  i < n ? { loss: Number(c.x) + 1 / (i + 1) } : undefined;

Deno.test("every trial runs to its end; results get the automatic keys; at most 2 at once", async () => {
  let peak = 0;
  const ex = fakeExecutor({
    step: async (c, i) => {
      peak = Math.max(peak, ex.running);
      await new Promise((r) => setTimeout(r, 2));
      return steps(4)(c, i);
    },
  });
  const { dir, outcome } = await run(ex);
  assert.equal(outcome.trials.length, 3);
  assert.equal(peak, 2);
  for (const t of outcome.trials) {
    assert.equal(t.status, "terminated");
    assert.equal(t.iteration, 4);
    const h = outcome.histories.get(t.id)!;
    assert.deepEqual(h.map((r) => r.training_iteration), [1, 2, 3, 4]);
    assert.equal(h[0].trial_id, t.id);
    assert.equal(h[3].loss, Number(t.config.x) + 1 / 4);
  }
  assert.deepEqual(ex.started.map((j) => j.iteration), [0, 0, 0]);
  assert.ok(ex.acks.get(outcome.trials[0].id)!.every((a) => a === "continue"));
  assert.equal(ex.closed, true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a stop criterion acks stop at the report that reaches it", async () => {
  const ex = fakeExecutor({ step: steps(100) });
  const { dir, outcome } = await run(ex, { stop: { training_iteration: 3 } });
  for (const t of outcome.trials) {
    assert.equal(t.iteration, 3);
    assert.deepEqual(ex.acks.get(t.id), ["continue", "continue", "stop"]);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a scheduler's stop decision ends that trial, the others go on", async () => {
  const pruneFirst: Scheduler = {
    name: "prune_first",
    onReport: (t) =>
      t.id.endsWith("_00000") && t.iteration >= 2
        ? { kind: "stop", reason: "pruned" }
        : { kind: "continue" },
  };
  const ex = fakeExecutor({ step: steps(5) });
  const { dir, outcome } = await run(ex, { scheduler: pruneFirst });
  const [first, ...rest] = outcome.trials;
  assert.equal(first.iteration, 2);
  assert.equal(first.status, "terminated");
  assert.equal(first.reason, "pruned");
  assert.equal(ex.acks.get(first.id)!.at(-1), "stop");
  for (const t of rest) assert.equal(t.iteration, 5);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failing trial is started again from its last checkpoint, up to maxFailures", async () => {
  const failed = new Set<string>();
  const ex = fakeExecutor({
    checkpointAt: () => true,
    step: (c, i) => {
      // Each trial fails once at its third iteration, then succeeds on the retry.
      const key = `${JSON.stringify(c)}`;
      if (i === 2 && !failed.has(key)) {
        failed.add(key);
        throw new Error("flaky");
      }
      return steps(4)(c, i);
    },
  });
  const { dir, outcome } = await run(ex, { maxFailures: 1 });
  for (const t of outcome.trials) {
    assert.equal(t.status, "terminated", t.error);
    assert.equal(t.iteration, 4);
    const runs = ex.started.filter((j) => j.trialId === t.id);
    assert.deepEqual(runs.map((j) => j.iteration), [0, 2]);
    assert.match(runs[1].checkpoint!, /checkpoint_000002$/);
    assert.deepEqual(outcome.histories.get(t.id)!.map((r) => r.training_iteration), [1, 2, 3, 4]);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("without retries a failing trial ends in error with its message", async () => {
  const ex = fakeExecutor({
    step: (c, i) => {
      if (i === 1) throw new Error("boom");
      return steps(4)(c, i);
    },
  });
  const { dir, outcome } = await run(ex);
  for (const t of outcome.trials) {
    assert.equal(t.status, "error");
    assert.match(t.error!, /boom/);
    assert.equal(t.iteration, 1);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoints are committed and only the best numToKeep are kept", async () => {
  const ex = fakeExecutor({ step: steps(5), checkpointAt: () => true });
  const { dir, outcome } = await run(ex, {
    numSamples: 1,
    totalTrials: 1,
    checkpoint: { numToKeep: 2 },
  });
  const [t] = outcome.trials;
  assert.match(t.checkpoint!, /checkpoint_000005$/);
  const kept = [];
  for await (const e of Deno.readDir(t.dir)) {
    if (e.name.startsWith("checkpoint_")) kept.push(e.name);
  }
  assert.deepEqual(kept.sort(), ["checkpoint_000004", "checkpoint_000005"]);
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(`${t.checkpoint}/state.json`)).iteration,
    4,
  );
  await Deno.remove(dir, { recursive: true });
});
