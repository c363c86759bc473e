// The shipped Callback contract (testing/callback.ts) run on the built-in loggers that need no
// server, and shown to fail a callback that breaks the runner's expectations.

import assert from "#assert";
import { callbackContract, driveCallback } from "../../testing/mod.ts";
import { tableReporter } from "../../plugins/reporters/table.ts";
import { tensorboardLogger } from "../../plugins/loggers/tensorboard/mod.ts";

callbackContract("table", () => tableReporter({ write: () => {}, live: false }));
callbackContract("tensorboard", () => tensorboardLogger());

Deno.test("driveCallback names the hook of a callback that throws, mutates or hangs", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    () =>
      driveCallback({
        name: "thrower",
        onTrialEnd: () => {
          throw new Error("nope");
        },
      }, dir),
    /thrower\.onTrialEnd failed: nope/,
  );
  await assert.rejects(
    () =>
      driveCallback({
        name: "mutator",
        onReport: (e) => {
          (e.result as unknown as { loss: number }).loss = 0;
        },
      }, dir),
    /mutator\.onReport failed: .*read only/,
  );
  let release!: () => void;
  const forever = new Promise<void>((r) => (release = r));
  await assert.rejects(
    () =>
      driveCallback({ name: "hang", onExperimentEnd: () => forever }, dir, { hookTimeoutMs: 50 }),
    /hang\.onExperimentEnd did not settle within 50 ms/,
  );
  release();
  await Deno.remove(dir, { recursive: true });
});
