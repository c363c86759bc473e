// Per-trial resources: what a trial holds is counted against the experiment's CPUs (`cpus`),
// handed to the executor with the job, and shown to the trainable as `session.resources`.

import assert from "#assert";
import { type Session, Tuner, uniform } from "../../mod.ts";
import { tempStorage } from "../_helpers.ts";

Deno.test("session.resources shows what the trial holds, frozen", async () => {
  const seen: unknown[] = [];
  await new Tuner({
    trainable: async (_c: { x: number }, s: Session<{ x: number }>) => {
      seen.push(s.resources);
      assert.ok(Object.isFrozen(s.resources));
      await s.report({ loss: 1 });
    },
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: 2,
    resources: { cpu: 2 },
    cpus: 4,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  assert.deepEqual(seen, [{ cpu: 2, gpu: 0 }, { cpu: 2, gpu: 0 }]);
});

Deno.test("cpus caps the trials running at once by their resources", async () => {
  let running = 0, most = 0;
  await new Tuner({
    trainable: async (_c: { x: number }, s: Session<{ x: number }>) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      await s.report({ loss: 1 });
    },
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: 6,
    resources: { cpu: 1.5 },
    cpus: 3.5,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  assert.equal(most, 2);
});

Deno.test("a bad cpus option is refused by name", () => {
  for (const cpus of [0, -2, NaN, Infinity]) {
    assert.throws(
      () =>
        new Tuner({
          trainable: () => {},
          space: {},
          metric: "loss",
          mode: "min",
          cpus,
        }),
      /"cpus" must be a number of CPUs > 0/,
    );
  }
  // More per trial than the experiment has: the pool says what exists.
  return assert.rejects(
    async () =>
      await new Tuner({
        trainable: () => {},
        space: {},
        metric: "loss",
        mode: "min",
        cpus: 2,
        resources: { cpu: 3 },
        storage: await tempStorage(),
        reporter: false,
      }).fit(),
    /resources.cpu = 3 but the pool has 2 CPU\(s\)/,
  );
});
