import assert from "#assert";
import { findPluginFactory, knownPluginNames } from "../../tuner/plugin_table.ts";
import { SCHEDULER_NAMES, schedulerFromOptions } from "../../plugins/schedulers/mod.ts";
import type { Scheduler } from "../../core/plugin.ts";

Deno.test("every scheduler is known to YAML by name", async () => {
  for (
    const name of ["fifo", "asha", "hyperband", "median_stopping", "pbt", "pb2", "pbt_replay"]
  ) {
    assert.ok(knownPluginNames("scheduler").includes(name), name);
  }
  const asha = (await findPluginFactory("scheduler", "asha"))!({
    maxT: 10,
    gracePeriod: 1,
  }) as Scheduler;
  assert.equal(asha.name, "asha");
  const median = (await findPluginFactory("scheduler", "median_stopping"))!({
    hardStop: false,
  }) as Scheduler;
  assert.equal(median.name, "median_stopping");
  assert.equal(
    ((await findPluginFactory("scheduler", "hyperband"))!({}) as Scheduler).name,
    "hyperband",
  );
  assert.equal(((await findPluginFactory("scheduler", "fifo"))!({}) as Scheduler).name, "fifo");
  assert.deepStrictEqual([...SCHEDULER_NAMES].sort(), [
    "asha",
    "async_hyperband",
    "asynchyperband",
    "fifo",
    "hb_bohb",
    "hyperband",
    "hyperband_for_bohb",
    "median_stopping",
    "median_stopping_rule",
    "medianstopping",
    "pb2",
    "pbt",
    "pbt_replay",
    "resource_changing",
  ]);
});

Deno.test("YAML scheduler options are validated with a did-you-mean", async () => {
  const asha = (await findPluginFactory("scheduler", "asha"))!;
  const fifo = (await findPluginFactory("scheduler", "fifo"))!;
  const pbtReplay = (await findPluginFactory("scheduler", "pbt_replay"))!;
  assert.throws(
    () => asha({ maxT: 10, gracePeriods: 1 }),
    /ashaScheduler: unknown option "gracePeriods" \(did you mean "gracePeriod"\?\); expected one of timeAttr, maxT/,
  );
  assert.throws(
    () => fifo({ maxT: 3 }),
    /fifoScheduler: unknown option "maxT"/,
  );
  assert.throws(
    () => pbtReplay({ policyfile: "x" }),
    /pbtReplay: unknown option "policyfile" \(did you mean "policyFile"\?\)/,
  );
  assert.throws(
    () => schedulerFromOptions("hyper_band", {}),
    /Unknown scheduler "hyper_band" \(did you mean "hyperband"\?\)/,
  );
});

Deno.test("schedulers check the experiment's metric and mode, and need setup first", () => {
  for (const name of ["asha", "hyperband", "median_stopping", "pbt"]) {
    const options = name === "pbt" ? { hyperparamMutations: { lr: [1, 2] } } : {};
    const make = () => schedulerFromOptions(name, options);
    assert.throws(
      () => make().setup!({ metric: "loss", mode: "maximize" as never, seed: 0 }),
      /setup needs mode "min" or "max", got "maximize"/,
    );
    assert.throws(
      () => make().setup!({ metric: "", mode: "min", seed: 0 }),
      /setup needs a metric name/,
    );
    const s = make();
    assert.throws(
      () =>
        s.onReport(
          { id: "a", status: "running", config: {}, iteration: 1, dir: "/x/a" },
          {
            loss: 1,
            training_iteration: 1,
            time_total_s: 1,
            time_this_iter_s: 1,
            timestamp: 0,
            trial_id: "a",
          },
        ),
      /setup\(\) must be called before the first trial/,
    );
  }
});

Deno.test("Ray's median_stopping_rule options: min_time_slice in seconds of time_total_s", () => {
  const s = schedulerFromOptions("median_stopping_rule", { minTimeSlice: 2, hardStop: false });
  assert.deepStrictEqual((s as { spec?: { options: unknown } }).spec?.options, {
    minTimeSliceMs: 2000,
    hardStop: false,
  });
  assert.throws(
    () =>
      schedulerFromOptions("median_stopping", { timeAttr: "training_iteration", minTimeSlice: 2 }),
    /Ray's "minTimeSlice" counts in timeAttr units \(here "training_iteration"\).*"minTimeSliceMs"/,
  );
  assert.throws(
    () => schedulerFromOptions("median_stopping", { minTimeSlice: 2, minTimeSliceMs: 3 }),
    /not both/,
  );
});

Deno.test("Ray's scheduler names are accepted", () => {
  for (
    const [ray, ours] of [
      ["async_hyperband", "asha"],
      ["asynchyperband", "asha"],
      ["median_stopping_rule", "median_stopping"],
      ["medianstopping", "median_stopping"],
      ["hb_bohb", "hyperband"],
    ]
  ) {
    assert.equal(schedulerFromOptions(ray, {}).name, ours, ray);
  }
});
