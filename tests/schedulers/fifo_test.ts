import assert from "#assert";
import { schedulerContract } from "../contract/scheduler.ts";
import { fifoScheduler } from "../../plugins/schedulers/mod.ts";
import { result, trial } from "./_util.ts";

schedulerContract("fifo", () => fifoScheduler());

Deno.test("fifoScheduler always continues", () => {
  const s = fifoScheduler();
  for (let t = 1; t < 5; t++) {
    assert.deepStrictEqual(s.onReport(trial("a", { iteration: t }), result("a", t, { loss: t })), {
      kind: "continue",
    });
  }
});
