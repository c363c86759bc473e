// The scheduler written in examples/07_custom_scheduler.ts passes the contract every scheduler
// passes, and rejects bad options by name.
import { equal, throws } from "#assert";
import { schedulerContract } from "../contract/scheduler.ts";
import plateauScheduler from "../../examples/07_custom_scheduler.ts";
import type { TrialResult, TrialSnapshot } from "../../core/trial.ts";

schedulerContract("plateau", () => plateauScheduler({ patience: 3, minDelta: 0.001 }));

Deno.test("plateauScheduler stops a trial after `patience` reports without improvement", () => {
  const s = plateauScheduler({ patience: 2, minDelta: 0.1 });
  s.setup?.({ metric: "acc", mode: "max", seed: 0 });
  const trial: TrialSnapshot = {
    id: "t_00000",
    status: "running",
    config: {},
    iteration: 0,
    dir: "",
  };
  const report = (acc: number, i: number) =>
    s.onReport({ ...trial, iteration: i }, {
      acc,
      training_iteration: i,
      time_total_s: i,
      time_this_iter_s: 1,
      timestamp: 0,
      trial_id: trial.id,
    } as TrialResult).kind;
  // 0.5 -> 0.7 improves; 0.75 and 0.78 are within minDelta of 0.7: the second one stops it.
  equal(report(0.5, 1), "continue");
  equal(report(0.7, 2), "continue");
  equal(report(0.75, 3), "continue");
  equal(report(0.78, 4), "stop");
});

Deno.test("plateauScheduler rejects bad options with the option's name and value", () => {
  throws(() => plateauScheduler({ patience: 0 }), {
    name: "RangeError",
    message: 'plateauScheduler option "patience" must be a whole number >= 1, got 0',
  });
  throws(
    () => plateauScheduler({ patience: 1.5 }),
    /"patience" must be a whole number >= 1, got 1.5/,
  );
  throws(() => plateauScheduler({ minDelta: -1 }), {
    name: "RangeError",
    message: 'plateauScheduler option "minDelta" must be >= 0, got -1',
  });
});
