import { equal, match, ok as assert, rejects, throws } from "#assert";
import { grid, loguniform, ResultGrid, TuneError, Tuner, uniform } from "../../mod.ts";
import { byConfig, captureWarnings, fixture, tempStorage } from "../_helpers.ts";

Deno.test("a trial that throws, hangs past trialTimeoutMs or exits without reporting fails alone; the others finish", async () => {
  const storage = await tempStorage();
  const { value: results, warnings } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("behaviors.ts"),
      space: { behavior: grid(["ok", "throw", "hang", "exit"]), x: 0.5 },
      metric: "loss",
      mode: "min",
      storage,
      trialTimeoutMs: 3000,
      maxConcurrent: 2,
      reporter: false,
    }).fit()
  );
  const t = byConfig(results, "behavior");
  equal(t.get("ok")!.status, "terminated");
  equal(t.get("throw")!.status, "error");
  match(t.get("throw")!.error!, /Error: boom from the trainable/);
  equal(t.get("hang")!.status, "error");
  match(t.get("hang")!.error!, /timed out after 3000 ms \(trialTimeoutMs\)/);
  equal(t.get("exit")!.status, "error");
  match(t.get("exit")!.error!, /exited with code 3 before finishing/);
  equal(results.errors.length, 3);
  assert(warnings.some((w) => w.includes(t.get("throw")!.id)), "the failure names the trial id");
  equal(results.best().config.behavior, "ok");
});

Deno.test("a failed trial is retried from its last checkpoint up to maxFailures", async () => {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("flaky.ts"),
      space: { x: 1 },
      metric: "loss",
      mode: "min",
      storage,
      maxFailures: 1,
      reporter: false,
    }).fit()
  );
  const trial = results.trials[0];
  equal(trial.status, "terminated", trial.error);
  const history = results.history(trial.id);
  // Iterations 1-2 from the first run, 3-4 from the retry, which restored iteration 2's state.
  equal(history.map((r) => r.training_iteration).join(), "1,2,3,4");
  equal(history[2].restored_from, 1);
});

Deno.test("without retries left the failure is final and recorded in error.txt", async () => {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("flaky.ts"),
      space: { x: 1 },
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    })
      .fit()
  );
  equal(results.trials[0].status, "error");
  match(await Deno.readTextFile(`${results.trials[0].path}/error.txt`), /transient failure/);
});

Deno.test("a NaN metric is recorded, warned about, and never picked as best", async () => {
  const storage = await tempStorage();
  const { value: results, warnings } = await captureWarnings(() =>
    new Tuner({
      trainable: async (config, session) => {
        await session.report({ loss: config.x === 0 ? NaN : config.x });
      },
      space: { x: grid([0, 3, 2]) },
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    }).fit()
  );
  assert(
    warnings.some((w) =>
      /reported loss=NaN at iteration 1: recorded, never picked as best/.test(w)
    ),
  );
  const nanTrial = results.trials.find((t) => t.config.x === 0)!;
  assert(Number.isNaN(nanTrial.metrics!.loss));
  equal(results.best().config.x, 2);
  // It survives the round trip through result.jsonl.
  const loaded = await ResultGrid.load(results.path);
  assert(Number.isNaN(loaded.trials.find((t) => t.config.x === 0)!.metrics!.loss));
});

Deno.test("a metric never reported is named with the keys that were reported", async () => {
  const storage = await tempStorage();
  const { value: results, warnings } = await captureWarnings(() =>
    new Tuner({
      trainable: async (_config, session) => {
        await session.report({ val_loss: 1, acc: 0.5 });
      },
      space: { x: uniform(0, 1) },
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    }).fit()
  );
  assert(
    warnings.some((w) => /did not report the metric "loss" \(it reported val_loss, acc\)/.test(w)),
    warnings.join("\n"),
  );
  throws(() => results.best(), /No trial reported a finite "loss" \(reported keys: .*val_loss/);
});

Deno.test("a metric that is not JSON fails the trial with the metric's name", async () => {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: async (_c, session) => {
        await session.report({ loss: new Map() as unknown as number });
      },
      space: {},
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    }).fit()
  );
  match(results.trials[0].error!, /metric "loss" is a Map, not a JSON value/);
});

Deno.test("a missing trainable module fails before any trial starts", async () => {
  const storage = await tempStorage();
  await rejects(
    new Tuner({
      trainable: fixture("nope.ts"),
      space: { x: 1 },
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    }).fit(),
    (e: Error) =>
      e instanceof TuneError && /Cannot load the trainable module .*nope\.ts/.test(e.message),
  );
});

Deno.test("a trainable module without a default export stops the experiment with a clear error", async () => {
  const storage = await tempStorage();
  const { value: err } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("no_default.ts"),
      space: { x: grid([1, 2, 3]) },
      metric: "loss",
      mode: "min",
      storage,
      name: "nodefault",
      maxConcurrent: 1,
      reporter: false,
    }).fit().then(() => undefined, (e) => e as Error)
  );
  assert(err instanceof TuneError);
  match(err!.message, /has no default export to run: end it with `export default defineTrainable/);
  // It did not go on to start the other trials.
  const events = await Deno.readTextFile(`${storage}/nodefault/trials.jsonl`);
  equal(events.split("\n").filter((l) => l.includes('"started"')).length, 1);
});

Deno.test("an unwritable storage folder is reported before anything runs", async () => {
  const file = await Deno.makeTempFile();
  await rejects(
    new Tuner({
      trainable: () => {},
      space: {},
      metric: "loss",
      mode: "min",
      storage: `${file}/sub`,
      reporter: false,
    }).fit(),
    /The storage folder ".*sub" is not writable/,
  );
});

Deno.test("invalid options fail at construction, naming the option", () => {
  const base = {
    trainable: () => {},
    space: { lr: loguniform(1e-4, 1e-1) },
    metric: "loss",
    mode: "min" as const,
  };
  throws(
    () => new Tuner({ ...base, mode: "minimize" as "min" }),
    /"mode" must be "min" or "max", got "minimize"/,
  );
  throws(
    () => new Tuner({ ...base, numSamples: 0 }),
    /"numSamples" must be a positive integer or -1/,
  );
  throws(
    () => new Tuner({ ...base, numSample: 3 } as never),
    /unknown option "numSample" \(did you mean "numSamples"\?\)/,
  );
  throws(
    () => new Tuner({ ...base, space: { f: () => 1 } }),
    /Search space parameter "f": function is neither a domain nor a JSON constant/,
  );
  throws(
    () => new Tuner({ ...base, space: { f: NaN } }),
    /Search space parameter "f": NaN is neither/,
  );
  throws(
    () => new Tuner({ ...base, resources: { cpu: 1, gpus: 1 } as never }),
    /unknown resource "gpus" \(did you mean "gpu"\?\)/,
  );
  throws(
    () => new Tuner({ ...base, stop: { training_iteration: "10" as unknown as number } }),
    /"stop.training_iteration" must be a number/,
  );
  throws(
    () => new Tuner({ ...base, scheduler: { name: "x" } as never }),
    /"scheduler": scheduler "x" has no onReport\(\) method/,
  );
  throws(
    () => new Tuner({ ...base, checkpoint: { numToKeep: 0 } }),
    /"checkpoint.numToKeep" must be a positive integer/,
  );
  throws(() => new Tuner({ ...base, name: "../x" }), /"name" must be a folder name/);
});

Deno.test("an existing experiment folder is not overwritten", async () => {
  const storage = await tempStorage();
  const opts = {
    trainable: () => {},
    space: {},
    metric: "loss",
    mode: "min" as const,
    storage,
    name: "same",
    reporter: false as const,
  };
  await new Tuner(opts).fit();
  await rejects(new Tuner(opts).fit(), /already exists: resume it with Tuner.restore/);
});
