import { equal, match, ok as assert } from "#assert";
import { grid, SandboxViolation, Tuner } from "../../mod.ts";
import { byConfig, captureWarnings, fixture, tempStorage } from "../_helpers.ts";

const BEHAVIORS = ["ok", "read_passwd", "write_outside", "net", "env", "spawn"];

Deno.test("sandboxed trials that break their sandbox fail with the permission and target, the others finish", async () => {
  const storage = await tempStorage();
  const { value: results, warnings } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("behaviors.ts"),
      space: { behavior: grid(BEHAVIORS), x: 0.5 },
      metric: "loss",
      mode: "min",
      storage,
      name: "sandbox",
      maxConcurrent: 2,
      reporter: false,
    }).fit()
  );
  const t = byConfig(results, "behavior");
  equal(results.trials.length, BEHAVIORS.length);
  equal(t.get("ok")!.status, "terminated");
  equal(t.get("ok")!.iterations, 3);
  const expect: Record<string, RegExp> = {
    read_passwd: /needs read access to "\/etc\/passwd"/,
    write_outside: /needs write access to ".*sandbox\/[0-9a-f]{5}_\d{5}\/escape\.txt"/,
    net: /needs net access to "127\.0\.0\.1:8080"/,
    env: /needs env access to "HOME"/,
    spawn: /needs run access to "ls"/,
  };
  for (const [behavior, re] of Object.entries(expect)) {
    const trial = t.get(behavior)!;
    equal(trial.status, "error", `${behavior} should fail`);
    match(trial.error!, re);
    match(trial.error!, /sandbox violation/);
    const errorTxt = await Deno.readTextFile(`${trial.path}/error.txt`);
    match(errorTxt, re);
  }
  // Nothing escaped.
  await Deno.stat(`${storage}/sandbox/escape.txt`).then(
    () => assert(false, "the trial wrote outside its folder"),
    (e) => assert(e instanceof Deno.errors.NotFound),
  );
  assert(warnings.some((w) => w.includes("sandbox violation")));
  // SandboxViolation is the error class users match on when they inspect errors themselves.
  assert(new SandboxViolation("t", "read", "/etc/passwd", "x") instanceof Error);
});

Deno.test("the user's console output lands in stdout.log and does not corrupt the protocol", async () => {
  const storage = await tempStorage();
  const results = await new Tuner({
    trainable: fixture("behaviors.ts"),
    space: { behavior: "ok", x: 2 },
    metric: "loss",
    mode: "min",
    storage,
    reporter: false,
  }).fit();
  const trial = results.trials[0];
  equal(trial.status, "terminated");
  const out = await Deno.readTextFile(`${trial.path}/stdout.log`);
  match(out, /trial .* starts with ok/);
  match(out, /raw bytes without newline/);
  equal(results.history(trial.id).length, 3);
  // Checkpoints were committed atomically under their iteration.
  const state = JSON.parse(await Deno.readTextFile(`${trial.path}/checkpoint_000003/state.json`));
  equal(state.i, 2);
});

Deno.test("a path declared in sandbox.read is readable by trials", async () => {
  const storage = await tempStorage();
  const data = await Deno.makeTempFile();
  await Deno.writeTextFile(data, "hello");
  const results = await new Tuner({
    trainable: fixture("behaviors.ts"),
    space: { behavior: "read_declared", x: 1, target: data },
    metric: "loss",
    mode: "min",
    storage,
    sandbox: { read: [data] },
    reporter: false,
  }).fit();
  equal(results.trials[0].status, "terminated", results.trials[0].error);
});
