// The shipped Executor contract (testing/executor.ts) run on the executors of this machine and on
// the fake executor the runner tests use.

import assert from "#assert";
import {
  CONTRACT_TRAINABLE_URL,
  contractStep,
  contractTrainable,
  executorContract,
  fakeExecutor,
} from "../../testing/mod.ts";
import { inprocessExecutor } from "../../plugins/executors/inprocess.ts";
import { subprocessExecutor } from "../../plugins/executors/subprocess.ts";

executorContract("fake", () => fakeExecutor({ step: contractStep }));
executorContract("inprocess", () => inprocessExecutor(contractTrainable as never));
executorContract("subprocess", () => subprocessExecutor(CONTRACT_TRAINABLE_URL));

Deno.test("fakeExecutor records jobs, acks and stop requests, and stages checkpoints", async () => {
  const base = await Deno.makeTempDir();
  const ex = fakeExecutor({ step: contractStep, checkpointAt: (i) => i === 1 });
  const staged: string[] = [];
  const job = {
    trialId: "t_1",
    config: { x: 1, iterations: 3 },
    dir: base,
    workDir: `${base}/files`,
    iteration: 0,
    timeOffsetS: 0,
    sandbox: {},
    env: {},
  };
  const h = ex.start(job, {
    report(r) {
      if (r.checkpointDir) staged.push(r.checkpointDir);
      return Promise.resolve(r.metrics.step === 2 ? "stop" : "continue");
    },
  });
  assert.equal(ex.running, 1);
  assert.deepEqual(await h.exited, { kind: "done" });
  assert.equal(ex.running, 0);
  assert.deepEqual(ex.acks.get("t_1"), ["continue", "continue", "stop"]);
  assert.equal(staged.length, 1);
  assert.match(staged[0], /files\/\.staging\/ckpt_fake_1$/);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${staged[0]}/state.json`)), {
    iteration: 1,
    config: { x: 1, iterations: 3 },
  });
  const slow = ex.start({ ...job, trialId: "t_2", config: { x: 1, iterations: 1e6, sleepMs: 5 } }, {
    report: () => Promise.resolve("continue"),
  });
  await slow.stop();
  assert.deepEqual(await slow.exited, { kind: "stopped" });
  assert.deepEqual(ex.stopped, ["t_2"]);
  assert.deepEqual(ex.started.map((j) => j.trialId), ["t_1", "t_2"]);
  await ex.close!();
  assert.equal(ex.closed, true);
  await Deno.remove(base, { recursive: true });
});
