// Trials of several workers (resources.workers) on the subprocess executor: the ring
// collectives between real sandboxed processes, failure of one worker, ASHA stopping a trial.
import { equal, match, ok as assert, rejects } from "#assert";
import { grid, TuneError, Tuner } from "../../mod.ts";
import { ashaScheduler } from "../../plugins/schedulers/mod.ts";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError } from "../../core/errors.ts";
import { subprocessExecutor } from "../../plugins/executors/subprocess.ts";
import { byConfig, captureWarnings, fixture, tempStorage } from "../_helpers.ts";

const FILES = "files";

Deno.test("a trial of 3 workers: ranks, shards, allreduce, broadcast and barrier across processes; rank 0's report is the trial's", async () => {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("workers.ts"),
      space: { behavior: "sum", n: 100_003, x: 0, iters: 1 },
      metric: "wrong",
      mode: "min",
      storage,
      resources: { workers: 3, cpu: 0.5 },
      reporter: false,
    }).fit()
  );
  const t = results.trials[0];
  equal(t.status, "terminated", t.error);
  const m = t.metrics!;
  equal(m.wrong, 0);
  equal(m.rank, 0);
  equal(m.world, 3);
  equal(m.mean_rank, 1); // (0 + 1 + 2) / 3
  equal(m.from_root, 7); // rank 1's array
  equal(m.shard, "0 1 2"); // rank 0's third of 0..9
  // One recorded report: the other ranks' reports were acknowledged, not recorded.
  equal(results.history(t.id).length, 1);
  // Each rank has its logs (made on its first output) and its own folder.
  equal((await Deno.readTextFile(`${t.path}/stdout_rank1.log`)).trim(), "rank 1 out");
  equal((await Deno.readTextFile(`${t.path}/stderr_rank2.log`)).trim(), "rank 2 err");
  equal((await Deno.readTextFile(`${t.path}/stdout.log`)).trim(), "rank 0 out");
  for (const f of [`${FILES}/rank_1`, `${FILES}/rank_2`]) {
    assert(await Deno.stat(`${t.path}/${f}`).then(() => true, () => false), f);
  }
});

Deno.test("a worker killed in the middle of an all-reduce fails the trial at once, and the retry resumes from the checkpoint", async () => {
  const storage = await tempStorage();
  const tuner = new Tuner({
    trainable: fixture("workers.ts"),
    space: { behavior: "kill", n: 2_000_000, x: 0, iters: 4 },
    metric: "loss",
    mode: "min",
    storage,
    name: "kill",
    resources: { workers: 2, cpu: 0.5 },
    maxFailures: 1,
    // A hang would end here with a timeout message, not with the retry below.
    trialTimeoutMs: 240_000,
    reporter: false,
  });
  const killer = (async () => {
    // Wait for rank 1 to say it is all-reducing in its endless loop, then SIGKILL it.
    for (;;) {
      const names = await Array.fromAsync(Deno.readDir(`${storage}/kill`)).catch(() => []);
      for (const e of names) {
        const pidFile = `${storage}/kill/${e.name}/${FILES}/rank_1/pid`;
        const pid = await Deno.readTextFile(pidFile).catch(() => "");
        if (pid) {
          Deno.kill(Number(pid), "SIGKILL");
          return Number(pid);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const { value: results, warnings } = await captureWarnings(() => tuner.fit());
  await killer;
  const t = results.trials[0];
  equal(t.status, "terminated", t.error);
  const history = results.history(t.id);
  // Iterations 1-2 from the first run; 3-4 from the retry, which restored iteration 2's state.
  equal(history.map((r) => r.training_iteration).join(), "1,2,3,4");
  equal(history[2].restored_from, 1);
  // The failure names the worker that died (or the one its neighbour lost).
  const failure = warnings.join("\n");
  match(failure, /worker rank [01] of 2: .*(killed by SIGKILL|rank 1 left the ring)/s);
  // Rank 1's checkpoints were thrown away: only rank 0's are committed.
  for await (const e of Deno.readDir(`${t.path}/${FILES}/rank_1`)) {
    assert(
      e.name !== ".staging" ||
        [...Deno.readDirSync(`${t.path}/${FILES}/rank_1/.staging`)].length === 0,
    );
  }
});

Deno.test("a worker that hangs (SIGSTOP) fails the trial after the collective timeout; the others are stopped", async () => {
  const storage = await tempStorage();
  const tuner = new Tuner({
    trainable: fixture("workers.ts"),
    space: { behavior: "kill", n: 1000, x: 0, iters: 4 },
    metric: "loss",
    mode: "min",
    storage,
    name: "hang",
    resources: { workers: 2, cpu: 0.5 },
    executor: subprocessExecutor(fixture("workers.ts"), { collectiveTimeoutMs: 3000 }),
    reporter: false,
  });
  let stopped = 0;
  const stopper = (async () => {
    for (;;) {
      const names = await Array.fromAsync(Deno.readDir(`${storage}/hang`)).catch(() => []);
      for (const e of names) {
        const pid = await Deno.readTextFile(`${storage}/hang/${e.name}/${FILES}/rank_1/pid`)
          .catch(() => "");
        if (pid) {
          Deno.kill(stopped = Number(pid), "SIGSTOP");
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const { value: results } = await captureWarnings(() => tuner.fit());
  await stopper;
  const t = results.trials[0];
  equal(t.status, "error");
  match(t.error!, /worker rank 0 of 2: CollectiveError: .*did not complete within 3000 ms/);
  // The stopped worker was killed with the trial, not left behind.
  let alive = true;
  try {
    Deno.kill(stopped, "SIGCONT");
  } catch {
    alive = false;
  }
  equal(alive, false);
});

Deno.test("ASHA stopping a 2-worker trial stops both workers at the same step", async () => {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("workers.ts"),
      // Sequential trials: the second is worse at every rung, so ASHA stops it at the first.
      space: { behavior: "steps", n: 0, x: grid([0, 5]), iters: 8 },
      metric: "loss",
      mode: "min",
      storage,
      resources: { workers: 2, cpu: 0.5 },
      maxConcurrent: 1,
      scheduler: ashaScheduler({ maxT: 8, gracePeriod: 1, reductionFactor: 2 }),
      reporter: false,
    }).fit()
  );
  const t = byConfig(results, "x");
  const good = t.get(0)!, bad = t.get(5)!;
  equal(good.status, "terminated", good.error);
  equal(good.iterations, 8);
  equal(bad.status, "terminated", bad.error);
  match(bad.reason ?? "", /ASHA/);
  assert(bad.iterations < 8, `stopped at ${bad.iterations}`);
  // Rank 1 of the stopped trial went no further than rank 0 (at most the step it was in).
  const rank1 = Number(await Deno.readTextFile(`${bad.path}/${FILES}/rank_1/progress`));
  assert(rank1 >= bad.iterations && rank1 <= bad.iterations + 1, `rank 1 at ${rank1}`);
});

Deno.test("resources.workers: bad values and executors that run one worker are refused clearly", async () => {
  const base = {
    trainable: fixture("workers.ts"),
    space: { behavior: "sum", n: 1, x: 0, iters: 1 },
    metric: "wrong",
    mode: "min" as const,
  };
  for (const workers of [0, 1.5, -2]) {
    let caught: unknown;
    try {
      new Tuner({ ...base, resources: { workers } });
    } catch (e) {
      caught = e;
    }
    assert(caught instanceof RangeError);
    equal(
      (caught as Error).message,
      `Tuner: "resources.workers" must be a whole number of workers per trial >= 1, got ${workers}`,
    );
  }
  await rejects(
    () =>
      new Tuner({
        ...base,
        trainable: async (_c, s) => await s.report({ wrong: 0 }),
        resources: { workers: 2 },
        storage: Deno.makeTempDirSync(),
        reporter: false,
      }).fit(),
    (e: Error) => {
      assert(e instanceof TuneError);
      match(e.message, /resources\.workers is 2, but the "inprocess" executor runs one worker/);
      return true;
    },
  );
  const yaml = [
    "trainable: ./t.ts",
    "metric: loss",
    "mode: min",
    "space: { x: 1 }",
    "resources:",
    "  workers: 0.5",
    "  cpu: 1",
  ].join("\n");
  let caught: unknown;
  await parseExperiment(yaml, "/exp/experiment.yaml").catch((e) => (caught = e));
  assert(caught instanceof ConfigError, String(caught));
  equal(
    (caught as Error).message,
    '/exp/experiment.yaml:6:12: "resources.workers" must be a whole number of workers per trial >= 1, got 0.5',
  );
});
