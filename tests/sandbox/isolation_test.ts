// No shared state between trials, limits a user can set, and what is refused at once.
import { equal, match, ok as assert, rejects } from "#assert";
import { grid, TuneError, Tuner } from "../../mod.ts";
import { subprocessExecutor } from "../../plugins/executors/subprocess.ts";
import { tableReporter } from "../../plugins/reporters/table.ts";
import { captureWarnings, tempStorage } from "../_helpers.ts";
import { byKey, experimentStatus, hostileTrainable } from "./_hostile.ts";

Deno.test("trials do not share localStorage or the Cache API, within or across experiments", async () => {
  const train = await hostileTrainable(`
    const seenStorage = localStorage.getItem("who");
    const cache = await caches.open("shared");
    const hit = await cache.match("http://tunebox.invalid/who");
    const seenCache = hit ? await hit.text() : null;
    localStorage.setItem("who", session.trialId);
    await cache.put("http://tunebox.invalid/who", new Response(session.trialId));
    await session.report({ loss: 1, seen: JSON.stringify([seenStorage, seenCache]) });
  `);
  const storage = await tempStorage();
  for (const name of ["first", "second"]) {
    const r = await new Tuner({
      trainable: train,
      space: { n: grid([1, 2, 3]) },
      metric: "loss",
      mode: "min",
      storage,
      name,
      maxConcurrent: 1,
      reporter: false,
    }).fit();
    for (const t of r.trials) {
      equal(t.status, "terminated", t.error);
      equal(t.metrics!.seen, "[null,null]");
    }
  }
});

Deno.test("a trial's npm import writes no node_modules or lockfile, and deno.json cannot turn on unstable APIs", async () => {
  const train = await hostileTrainable(
    `
    const spec = ["npm:", "yaml@^2.8.0"].join("");
    let how = "loaded";
    try { await import(spec); } catch (e) { how = (e as Error).name; }
    await session.report({ loss: 1, how });
  `,
    { files: { "deno.json": JSON.stringify({ nodeModulesDir: "auto" }) } },
  );
  const dir = train.slice(0, train.lastIndexOf("/"));
  const storage = await tempStorage();
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { x: 1 },
      metric: "loss",
      mode: "min",
      storage,
      reporter: false,
    }).fit()
  );
  equal(r.trials[0].status, "terminated", r.trials[0].error);
  for (const name of ["node_modules", "deno.lock"]) {
    await Deno.stat(`${dir}/${name}`).then(
      () => assert(false, `the trial created ${name} beside its trainable`),
      (e) => assert(e instanceof Deno.errors.NotFound),
    );
  }
  // A deno.json that turns on unstable APIs is refused unless the experiment lists them.
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ unstable: ["kv"] }));
  await rejects(
    () =>
      new Tuner({
        trainable: train,
        space: { x: 1 },
        metric: "loss",
        mode: "min",
        storage,
        name: "unstable",
        reporter: false,
      }).fit(),
    (e: Error) => {
      assert(e instanceof TuneError);
      match(e.message, /deno\.json turns on unstable Deno APIs \("kv"\).*sandbox\.unstable/);
      return true;
    },
  );
  // Nor may it take its import map from outside its folder.
  const secretDir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${secretDir}/map.json`, JSON.stringify({ imports: { k: "./v.ts" } }));
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({ importMap: `${secretDir}/map.json` }),
  );
  await rejects(
    () =>
      new Tuner({
        trainable: train,
        space: { x: 1 },
        metric: "loss",
        mode: "min",
        storage,
        name: "importmap",
        reporter: false,
      }).fit(),
    (e: Error) => {
      assert(e instanceof TuneError);
      match(e.message, /takes its import map from ".*map\.json", outside its folder/);
      return true;
    },
  );
  const kv = await hostileTrainable(
    `
    const db = await Deno.openKv();
    await db.set(["k"], 1);
    db.close();
    await session.report({ loss: 1 });
  `,
    { files: { "deno.json": JSON.stringify({ unstable: ["kv"] }) } },
  );
  const ok = await new Tuner({
    trainable: kv,
    space: { x: 1 },
    metric: "loss",
    mode: "min",
    storage,
    name: "kv",
    sandbox: { unstable: ["kv"] },
    reporter: false,
  }).fit();
  equal(ok.trials[0].status, "terminated", ok.trials[0].error);
});

Deno.test("resources.memoryMb caps a trial's heap and its allocations; the others finish", async () => {
  const train = await hostileTrainable(`
    if (config.kind === "heap") { const a: number[][] = []; for (;;) a.push(new Array(1e6).fill(1.5)); }
    if (config.kind === "buffer") { const b: Uint8Array[] = []; for (;;) b.push(new Uint8Array(64 << 20).fill(1)); }
    await session.report({ loss: 1 });
  `);
  const storage = await tempStorage();
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { kind: grid(["heap", "buffer", "ok"]) },
      metric: "loss",
      mode: "min",
      storage,
      name: "memory",
      resources: { cpu: 1, memoryMb: 128 },
      maxConcurrent: 1,
      reporter: false,
    }).fit()
  );
  const t = byKey(r, "kind");
  equal(t.get("ok")!.status, "terminated", t.get("ok")!.error);
  equal(t.get("heap")!.status, "error");
  match(t.get("heap")!.error!, /over its memory cap of 128 MiB|out of memory|heap limit/i);
  equal(t.get("buffer")!.status, "error");
  match(t.get("buffer")!.error!, /memory|allocation/i);
  equal(await experimentStatus(`${storage}/memory`), "finished");
});

Deno.test("stdout.log and stderr.log stop at their cap with a note; the trial goes on", async () => {
  const train = await hostileTrainable(`
    for (let i = 0; i < 2000; i++) console.log("line " + i + " " + "y".repeat(80));
    await session.report({ loss: 1 });
  `);
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable: train,
    executor: subprocessExecutor(train, { maxLogBytes: 16384 }),
    space: { x: 1 },
    metric: "loss",
    mode: "min",
    storage,
    reporter: false,
  }).fit();
  equal(r.trials[0].status, "terminated");
  const log = await Deno.readTextFile(`${r.trials[0].path}/stdout.log`);
  assert(log.length < 16384 + 200, `stdout.log has ${log.length} bytes`);
  match(log, /reached its cap of 16384 bytes \(maxLogBytes\); later output was dropped/);
});

Deno.test("a FIFO or a folder as the trainable, or an http(s) one, is refused at once", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/train.ts`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const base = { space: { x: 1 }, metric: "loss", mode: "min" as const, reporter: false as const };
  const storage = await tempStorage();
  let n = 0;
  for (
    const [trainable, re] of [
      [fifo, /is a FIFO; give a module file/],
      [dir, /is a folder; give a module file/],
      ["https://example.invalid/train.ts", /is a remote module.*allowRemoteTrainable: true/],
      ["http://127.0.0.2:9/train.ts", /is a remote module/],
    ] as const
  ) {
    await rejects(
      () => new Tuner({ ...base, trainable, storage, name: `t${n++}` }).fit(),
      (e: Error) => {
        assert(e instanceof TuneError);
        match(e.message, re);
        return true;
      },
    );
  }
});

Deno.test("control characters a trial sends never reach the terminal: table, error lines, warnings", async () => {
  const train = await hostileTrainable(`
    const evil = "\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;owned\\x07\\x1b[2J\\u202e";
    if (config.kind === "metric") await session.report({ loss: 1, note: evil });
    else throw new Error("bad " + evil);
  `);
  const storage = await tempStorage();
  let out = "";
  const { warnings } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { kind: grid(["metric", "error"]) },
      metric: "loss",
      mode: "min",
      storage,
      reporter: tableReporter({
        metricColumns: ["loss", "note"],
        live: false,
        write: (s) => (out += s),
      }),
    }).fit()
  );
  const all = out + warnings.join("\n");
  // deno-lint-ignore no-control-regex
  assert(!/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/.test(all), JSON.stringify(all));
  match(out, /\\x1b\]52;c/);
  match(warnings.join("\n"), /bad \\x1b\]52;c;cHduZWQ=\\x07/);
});
