import { deepEqual, equal, match, ok as assert, throws } from "#assert";
import { choice, grid, ResultGrid, Tuner, uniform } from "../../mod.ts";
import { fixture, tempStorage } from "../_helpers.ts";

const quadratic = async (
  config: { x: number },
  session: { iteration: number; report(m: Record<string, unknown>): Promise<void> },
) => {
  for (let i = session.iteration; i < 3; i++) {
    await session.report({ loss: (config.x - 1) ** 2 + 1 / (i + 1) });
  }
};

Deno.test("an experiment with a seed produces the same configs in the same order", async () => {
  const run = async () => {
    const r = await new Tuner({
      trainable: quadratic,
      space: { x: uniform(-3, 3), act: choice(["relu", "tanh"]) },
      metric: "loss",
      mode: "min",
      numSamples: 8,
      seed: 42,
      storage: await tempStorage(),
      reporter: false,
    }).fit();
    return r.trials.map((t) => t.config);
  };
  deepEqual(await run(), await run());
});

Deno.test("grid combines with numSamples as in Ray: every sample runs the whole grid", async () => {
  const r = await new Tuner({
    trainable: quadratic,
    space: { a: grid([1, 2]), x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: 3,
    seed: 1,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  equal(r.trials.length, 6);
  deepEqual(r.trials.map((t) => t.config.a), [1, 2, 1, 2, 1, 2]);
});

Deno.test("a stop dict ends trials when any value is reached (Ray's >= meaning)", async () => {
  const r = await new Tuner({
    trainable: async (_c, session) => {
      for (let i = 0; i < 100; i++) await session.report({ acc: i / 10 });
    },
    space: { x: grid([1, 2]) },
    metric: "acc",
    mode: "max",
    stop: { training_iteration: 50, acc: 0.4 },
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  for (const t of r.trials) {
    equal(t.status, "terminated");
    equal(t.iterations, 5);
    equal(t.reason, "acc >= 0.4");
  }
  // Loading the folder gives the same trials as fit() did.
  const loaded = await ResultGrid.load(r.path);
  deepEqual(loaded.trials.map((t) => [t.id, t.reason]), r.trials.map((t) => [t.id, t.reason]));
});

Deno.test("timeBudgetMs stops the experiment cleanly and keeps what was recorded", async () => {
  const r = await new Tuner({
    trainable: async (_c, session) => {
      for (let i = 0; i < 1000; i++) {
        await new Promise((res) => setTimeout(res, 20));
        await session.report({ loss: 1 / (i + 1) });
      }
    },
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: 4,
    maxConcurrent: 2,
    timeBudgetMs: 400,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  assert(r instanceof ResultGrid, String(r));
  assert(r.interrupted);
  assert(r.trials.length >= 2);
  for (const t of r.trials.filter((t) => t.iterations > 0)) {
    equal(r.history(t.id).length, t.iterations);
  }
});

Deno.test("checkpoint retention keeps the best by score and always the latest", async () => {
  const r = await new Tuner({
    trainable: async (_c, session) => {
      const accs = [0.5, 0.9, 0.6, 0.8, 0.7];
      for (const acc of accs) {
        await session.report({ acc }, {
          checkpoint: (dir) => Deno.writeTextFile(`${dir}/a.txt`, String(acc)),
        });
      }
    },
    space: {},
    metric: "acc",
    mode: "max",
    checkpoint: { numToKeep: 2, scoreAttribute: "acc", scoreOrder: "max" },
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const dirs = [];
  for await (const e of Deno.readDir(r.trials[0].path)) {
    if (e.name.startsWith("checkpoint_")) dirs.push(e.name);
  }
  deepEqual(dirs.sort(), ["checkpoint_000002", "checkpoint_000004", "checkpoint_000005"]);
  equal(r.trials[0].checkpoint, `${r.trials[0].path}/checkpoint_000005`);
});

Deno.test("results: best by last or all, history, CSV, and load from the folder", async () => {
  const r = await new Tuner({
    trainable: async (config, session) => {
      // Trial x=1 peaks early then degrades; x=2 improves steadily.
      const curve = config.x === 1 ? [0.9, 0.2, 0.1] : [0.5, 0.6, 0.7];
      for (const [i, acc] of curve.entries()) {
        // A key that first appears in a later report (Ray's CSV logger drops it).
        await session.report({ acc, nested: { v: acc * 2 }, ...(i === 2 ? { late: i } : {}) });
      }
    },
    space: { x: grid([1, 2]) },
    metric: "acc",
    mode: "max",
    storage: await tempStorage(),
    reporter: false,
    // The trial folders too (an in-process trial's are else only written when it needs one).
    trialFolders: "end",
  }).fit();
  equal(r.best().config.x, 2);
  equal(r.best("acc", "max", "all").config.x, 1);
  equal(r.best("nested/v", "min").config.x, 1);
  equal(r.history(r.trials[0].id).length, 3);
  const csv = r.toCsv().split("\n");
  match(csv[0], /^trial_id,status,iterations,config\/x,acc,nested\/v,late,training_iteration/);
  equal(csv.length, 4);
  const loaded = await ResultGrid.load(r.path);
  deepEqual(
    loaded.trials.map((t) => [t.id, t.status, t.iterations]),
    r.trials.map((t) => [t.id, t.status, t.iterations]),
  );
  equal(loaded.best().id, r.best().id);
  const html = await loaded.toHtml();
  match(html, /^<!doctype html>/i);
  match(html, new RegExp(r.trials[0].id));
  const progress = await Deno.readTextFile(`${r.trials[0].path}/progress.csv`);
  const lines = progress.trim().split("\n");
  equal(lines.length, 4);
  assert(lines[0].endsWith(",late"), lines[0]);
  assert(lines[3].endsWith(",2") && lines[1].endsWith(","), progress);
  match(
    progress.split("\n")[0],
    /^acc,nested\/v,training_iteration,time_this_iter_s,time_total_s,timestamp,date,trial_id/,
  );
  const params = JSON.parse(await Deno.readTextFile(`${r.trials[0].path}/params.json`));
  deepEqual(params, { x: 1 });
});

Deno.test("a driver killed with SIGKILL resumes: finished trials are kept, the others continue from their checkpoints", async () => {
  const storage = await tempStorage();
  const yaml = fixture("slow.yaml").pathname;
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "run", yaml, "--storage", storage],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const dir = `${storage}/slow`;
  // Wait until at least one trial has checkpointed twice, then kill the driver outright.
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const cks = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    const trialDirs = cks.filter((e) => e.isDirectory);
    let n = 0;
    for (const t of trialDirs) {
      n += (await Array.fromAsync(Deno.readDir(`${dir}/${t.name}`))).filter((e) =>
        e.name.startsWith("checkpoint_")
      ).length;
    }
    if (n >= 3) break;
  }
  child.kill("SIGKILL");
  await child.status;
  // The orphaned trials notice that the driver is gone (stdin closes) and exit on their own.
  let left = "";
  for (let i = 0; i < 100; i++) {
    const ps = await new Deno.Command("pgrep", {
      args: ["-f", `${dir}/`],
      stdout: "piped",
    }).output();
    left = new TextDecoder().decode(ps.stdout).trim();
    if (!left) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  equal(left, "", "no trial process outlived the killed driver");
  const before = await ResultGrid.load(dir);
  assert(
    before.trials.some((t) => t.status === "running"),
    "some trial was running when the driver died",
  );

  const resumed = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "resume", dir],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await resumed.output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const after = await ResultGrid.load(dir);
  equal(after.trials.length, 4);
  equal(new Set(after.trials.map((t) => t.config.x)).size, 4, "no config was suggested twice");
  for (const t of after.trials) {
    equal(t.status, "terminated", `${t.id}: ${t.error}`);
    const iters = after.history(t.id).map((r) => r.training_iteration);
    // Every iteration 1..6 is there (some may be repeated after the checkpoint).
    deepEqual([...new Set(iters)].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
  }
  const resumedTrial = after.trials.find((t) =>
    after.history(t.id).some((r) => r.resumed_at === 1)
  );
  assert(resumedTrial, "a trial restarted from its checkpoint");
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "status", dir],
    stdout: "piped",
  }).output();
  match(new TextDecoder().decode(status.stdout), /slow: finished, 4 trials \(4 terminated\)/);
});

Deno.test("Ctrl-C stops the trials, saves the state, prints the resume command, and resume finishes", async () => {
  const storage = await tempStorage();
  const yaml = fixture("slow.yaml").pathname;
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "run", yaml, "--storage", storage, "--name", "ctrlc"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dir = `${storage}/ctrlc`;
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const text = await Deno.readTextFile(`${dir}/trials.jsonl`).catch(() => "");
    const started = text.split("\n").filter((l) => l.includes('"started"')).length;
    const results = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    let reported = 0;
    for (const e of results.filter((e) => e.isDirectory)) {
      reported += (await Deno.readTextFile(`${dir}/${e.name}/result.jsonl`).catch(() =>
        ""
      )).split("\n").length - 1;
    }
    if (started >= 2 && reported >= 2) break;
  }
  child.kill("SIGINT");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 130, stderr);
  match(stderr, /SIGINT received: stopping trials and saving state; resume with `tunebox resume /);
  match(stderr, /Interrupted: resume with `tunebox resume .*ctrlc`/);
  equal(JSON.parse(await Deno.readTextFile(`${dir}/experiment.json`)).status, "interrupted");

  const resumed = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "resume", dir],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  equal(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
  const after = await ResultGrid.load(dir);
  equal(after.trials.length, 4);
  for (const t of after.trials) {
    equal(t.status, "terminated");
    equal(t.iterations, 6);
  }
});

Deno.test("a backend's permissions join the sandbox and its env(devices) reaches every sandboxed trial; the allocation's CUDA_* win", async () => {
  const { hostileTrainable } = await import("../sandbox/_hostile.ts");
  const train = await hostileTrainable(`
    const e = (k: string) => Deno.env.get(k) ?? "unset";
    await session.report({ loss: 0, ld: e("LD_LIBRARY_PATH"), devs: e("MYLIB_DEVICES"),
      cuda: e("CUDA_VISIBLE_DEVICES"), home: e("MYLIB_HOME") });
  `);
  Deno.env.set("MYLIB_HOME", "/opt/mylib");
  const seen: number[][] = [];
  try {
    const r = await new Tuner({
      trainable: train,
      space: { x: grid([1, 2]) },
      metric: "loss",
      mode: "min",
      storage: await tempStorage(),
      gpus: [{ index: 0, name: "GPU 0", uuid: "GPU-aaaa" }, { index: 3, name: "GPU 3" }],
      resources: { cpu: 1, gpu: 1 },
      backend: {
        name: "mylib",
        // Only the backend grants MYLIB_HOME: the experiment's sandbox does not.
        permissions: () => ({ env: ["MYLIB_HOME"] }),
        env: (devices) => {
          seen.push(devices.map((d) => d.index));
          return {
            LD_LIBRARY_PATH: "/opt/mylib/lib",
            MYLIB_DEVICES: devices.map((d) => d.uuid ?? String(d.index)).join(","),
            CUDA_VISIBLE_DEVICES: "not-this",
          };
        },
      },
      reporter: false,
    }).fit();
    const got = r.trials.map((t) => t.metrics!).sort((a, b) =>
      String(a.devs) < String(b.devs) ? -1 : 1
    );
    for (const m of got) {
      equal(m.ld, "/opt/mylib/lib");
      equal(m.home, "/opt/mylib");
      equal(m.cuda, m.devs, "the allocation's CUDA_VISIBLE_DEVICES, not the backend's");
    }
    deepEqual(got.map((m) => m.devs).sort(), ["3", "GPU-aaaa"]);
    deepEqual(seen.flat().sort(), [0, 3]);
  } finally {
    Deno.env.delete("MYLIB_HOME");
  }
});

Deno.test("tfjsBackend is saved with the experiment and made again on resume; a custom backend must be given again", async () => {
  const { tfjsBackend } = await import("../../plugins/backends/tfjs/permissions.ts");
  const storage = await tempStorage();
  const run = (name: string, backend: ConstructorParameters<typeof Tuner>[0]["backend"]) =>
    new Tuner({
      trainable: quadratic,
      space: { x: grid([1]) },
      metric: "loss",
      mode: "min",
      storage,
      name,
      backend,
      reporter: false,
    }).fit();
  await run("tfjs", tfjsBackend({ native: true }));
  const saved = JSON.parse(await Deno.readTextFile(`${storage}/tfjs/experiment.json`));
  deepEqual(saved.options.backend, { name: "tfjs", options: { native: true } });
  const again = await Tuner.restore(`${storage}/tfjs`, { trainable: quadratic as never });
  equal(again.options.backend?.name, "tfjs");
  equal(again.options.backend?.env([]).TF_CPP_MIN_LOG_LEVEL, "2", "native: true was kept");
  await run("custom", { name: "mine", permissions: () => ({}), env: () => ({}) });
  const err = await Tuner.restore(`${storage}/custom`, { trainable: quadratic as never }).then(
    () => undefined,
    (e) => e as Error,
  );
  match(
    err?.message ?? "",
    /used the backend "mine": pass it again with Tuner\.restore\(path, \{ backend \}\)/,
  );
  throws(
    () =>
      new Tuner({
        trainable: quadratic as never,
        space: {},
        metric: "loss",
        mode: "min",
        backend: {} as never,
      }),
    {
      message: /"backend" must be an object with a name, permissions\(\) and env\(devices\)/,
    },
  );
});
