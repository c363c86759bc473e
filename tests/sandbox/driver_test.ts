// Hostile trials against the driver: each runs through the real subprocess executor and the
// test reads the outcome (error text, the other trials, experiment.json, leftover processes).
import { equal, match, ok as assert } from "#assert";
import { grid, ResultGrid, Tuner } from "../../mod.ts";
import { subprocessExecutor } from "../../plugins/executors/subprocess.ts";
import { captureWarnings, tempStorage } from "../_helpers.ts";
import { byKey, experimentStatus, hostileTrainable, processesMatching } from "./_hostile.ts";

Deno.test("a trial cannot connect to, remove or replace any trial's channel, its own included", async () => {
  const train = await hostileTrainable(`
    const path = Deno.env.get("TUNEBOX_CHANNEL")!.slice("unix:".length);
    const root = path.split("/").slice(0, -1).join("/");
    const seen: string[] = [];
    const others = [1, 2, 3].map((n) => root + "/" + n + ".sock").filter((p) => p !== path);
    for (const target of [path, ...others]) {
      try { (await Deno.connect({ transport: "unix", path: target })).close(); seen.push("connected"); }
      catch (e) { seen.push((e as Error).name); }
      try { await Deno.remove(target); seen.push("removed"); } catch (e) { seen.push((e as Error).name); }
      try { Deno.listen({ transport: "unix", path: target }).close(); seen.push("listened"); }
      catch (e) { seen.push((e as Error).name); }
    }
    for (let i = 0; i < 3; i++) await session.report({ loss: i, seen: seen.join(",") });
  `);
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable: train,
    space: { n: grid([1, 2, 3]) },
    metric: "loss",
    mode: "min",
    storage,
    name: "channels",
    maxConcurrent: 3,
    reporter: false,
  }).fit();
  for (const t of r.trials) {
    equal(t.status, "terminated", t.error);
    equal(t.iterations, 3);
    const seen = String(t.metrics!.seen).split(",");
    // Its own socket is gone once it connected (it may only bind that dead path again, which
    // nobody connects to); every other trial's is out of its sandbox.
    equal(seen.slice(0, 2).join(","), "NotFound,NotFound");
    equal(
      seen.slice(3).join(","),
      "NotCapable,NotCapable,NotCapable,NotCapable,NotCapable,NotCapable",
    );
  }
  equal(await experimentStatus(`${storage}/channels`), "finished");
});

Deno.test("a trial cannot write its own records: result.jsonl, params.json and progress.csv stay the driver's", async () => {
  const train = await hostileTrainable(`
    await session.report({ loss: 1 });
    const records = session.trialDir + "/..";
    await Deno.writeTextFile(records + "/" + config.file, '{"loss": -1e9}\\nnot json\\n', { append: true });
  `);
  const storage = await tempStorage();
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { file: grid(["result.jsonl", "params.json", "progress.csv"]) },
      metric: "loss",
      mode: "min",
      storage,
      name: "records",
      reporter: false,
    }).fit()
  );
  for (const t of r.trials) {
    equal(t.status, "error");
    match(t.error!, new RegExp(`needs write access to ".*${t.id}/${t.config.file}"`));
  }
  // The records read back as the driver wrote them.
  const loaded = await ResultGrid.load(`${storage}/records`);
  equal(loaded.best().score, 1);
  for (const t of loaded.trials) equal(loaded.history(t.id).length, 1);
});

Deno.test("a report over the size cap, with a __proto__ key or nested too deep fails that trial alone", async () => {
  const train = await hostileTrainable(`
    if (config.kind === "huge") await session.report({ loss: 1, blob: "x".repeat(2 << 20) });
    if (config.kind === "proto") await session.report(JSON.parse('{"__proto__": {"polluted": 1}, "loss": 1}'));
    if (config.kind === "deep") {
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 100; i++) deep = { d: deep };
      await session.report({ loss: 1, deep });
    }
    for (let i = 0; i < 3; i++) await session.report({ loss: i });
  `);
  const storage = await tempStorage();
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { kind: grid(["huge", "proto", "deep", "ok"]) },
      metric: "loss",
      mode: "min",
      storage,
      name: "reports",
      maxConcurrent: 3,
      reporter: false,
    }).fit()
  );
  const t = byKey(r, "kind");
  equal(t.get("ok")!.status, "terminated");
  equal(t.get("ok")!.iterations, 3);
  equal(t.get("huge")!.status, "error");
  match(t.get("huge")!.error!, /broke the protocol.*longer than 1048576 bytes/);
  equal(t.get("proto")!.status, "error");
  match(t.get("proto")!.error!, /broke the protocol.*"__proto__" key/);
  equal(t.get("deep")!.status, "error");
  match(t.get("deep")!.error!, /broke the protocol.*nest deeper than 32 levels/);
  equal(await experimentStatus(`${storage}/reports`), "finished");
});

// A trial that swallows TrialStopped, ignores SIGTERM and then blocks its event loop.
const STUBBORN = `
  Deno.addSignalListener("SIGTERM", () => {});
  for (let i = 0; ; i++) {
    try { await session.report({ loss: i }); } catch { /* ignore the stop */ }
    if (i >= 1) { const end = Date.now() + 600_000; while (Date.now() < end) { /* spin */ } }
  }
`;

Deno.test("stop decisions, trial timeouts and the time budget are enforced on trials that ignore them", async () => {
  const train = await hostileTrainable(STUBBORN);
  const storage = await tempStorage();
  const executor = subprocessExecutor(train, { graceMs: 200, killAfterMs: 200 });
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      executor,
      space: { n: grid([1, 2]) },
      metric: "loss",
      mode: "min",
      stop: { training_iteration: 1 },
      storage,
      name: "stubborn",
      maxConcurrent: 2,
      reporter: false,
    }).fit()
  );
  for (const t of r.trials) {
    equal(t.status, "terminated");
    equal(t.iterations, 1);
  }
  const { value: r2 } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      executor: subprocessExecutor(train, { graceMs: 200, killAfterMs: 200 }),
      space: { n: grid([1, 2]) },
      metric: "loss",
      mode: "min",
      trialTimeoutMs: 1500,
      storage,
      name: "stubborn_timeout",
      maxConcurrent: 2,
      reporter: false,
    }).fit()
  );
  for (const t of r2.trials) {
    equal(t.status, "error");
    match(t.error!, /timed out after 1500 ms/);
  }
  const { value: r3 } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      executor: subprocessExecutor(train, { graceMs: 200, killAfterMs: 200 }),
      space: { n: grid([1, 2]) },
      metric: "loss",
      mode: "min",
      timeBudgetMs: 1500,
      storage,
      name: "stubborn_budget",
      maxConcurrent: 2,
      reporter: false,
    }).fit()
  );
  assert(r3.interrupted);
  for (const name of ["stubborn", "stubborn_timeout", "stubborn_budget"]) {
    // A trial process is granted its folder, under the experiment's.
    equal(await processesMatching(`${storage}/${name}/`), "", name);
  }
});

Deno.test("a driver killed with SIGKILL takes its trials with it, even ones that block their event loop", async () => {
  const train = await hostileTrainable(`
    Deno.exit = (() => {}) as never;
    Deno.addSignalListener("SIGTERM", () => {});
    await session.report({ loss: 1 });
    const end = Date.now() + 600_000; while (Date.now() < end) { /* spin */ }
  `);
  const storage = await tempStorage();
  const script = `${storage}/driver.ts`;
  await Deno.writeTextFile(
    script,
    `import { Tuner, grid } from ${
      JSON.stringify(new URL("../../mod.ts", import.meta.url).href)
    };\n` +
      `await new Tuner({ trainable: ${JSON.stringify(train)}, space: { n: grid([1, 2]) }, ` +
      `metric: "loss", mode: "min", storage: ${JSON.stringify(storage)}, name: "orphans", ` +
      `maxConcurrent: 2, reporter: false }).fit();\n`,
  );
  const driver = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // A trial process is granted its folder, under the experiment's (the driver is not).
  const entry = `${storage}/orphans/`;
  try {
    // Wait until both trials reported (and spin).
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const events = await Deno.readTextFile(`${storage}/orphans/trials.jsonl`).catch(() => "");
      const reported = await Array.fromAsync(Deno.readDir(`${storage}/orphans`)).catch(() => [])
        .then((es) =>
          Promise.all(
            es.filter((e) => e.isDirectory).map((e) =>
              Deno.stat(`${storage}/orphans/${e.name}/result.jsonl`).then((s) => s.size > 0, () =>
                false)
            ),
          )
        );
      if (events && reported.filter(Boolean).length >= 2) break;
    }
    assert((await processesMatching(entry)).length > 0, "the trials run");
  } finally {
    driver.kill("SIGKILL");
    await driver.status;
  }
  let left = "";
  for (let i = 0; i < 100; i++) {
    left = await processesMatching(entry);
    if (!left) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  equal(left, "", "no trial outlived the killed driver");
});
