import assert from "#assert";
import {
  contractConfigs,
  CURVE_TRAINABLE,
  schedulerContract,
  simulate,
} from "../contract/scheduler.ts";
import {
  type AllocationContext,
  ashaScheduler,
  distributeResources,
  fifoScheduler,
  pbtScheduler,
  resourceChangingScheduler,
  schedulerFromOptions,
} from "../../plugins/schedulers/mod.ts";
import { choice, grid, type Session, Tuner } from "../../mod.ts";
import { readTrialEvents } from "../../core/store.ts";
import type { TrialResources, TrialResult, TrialSnapshot } from "../../core/trial.ts";
import { captureWarnings, fixture, tempStorage } from "../_helpers.ts";

schedulerContract("resource_changing", () => resourceChangingScheduler());
schedulerContract(
  "resource_changing asha",
  () =>
    resourceChangingScheduler({
      base: ashaScheduler({ maxT: 20, gracePeriod: 1, reductionFactor: 3 }),
    }),
);
schedulerContract(
  "resource_changing pbt",
  () =>
    resourceChangingScheduler({
      base: pbtScheduler({
        perturbationInterval: 4,
        hyperparamMutations: { lr: [1e-4, 1e-3, 1e-2, 1e-1] },
      }),
      allocate: distributeResources({ increaseByTimes: 1 }),
    }),
);

const res = (cpu: number, gpu = 0): TrialResources => ({ cpu, gpu });
const result = (id: string, t: number, extra: Record<string, unknown> = {}): TrialResult => ({
  loss: 1,
  training_iteration: t,
  time_total_s: t,
  time_this_iter_s: 1,
  timestamp: 0,
  trial_id: id,
  ...extra,
} as TrialResult);

/** An allocation context: `live` as [id, cpu, gpu], the first one reporting. */
function ctx(
  live: [string, number, number?][],
  total: TrialResources,
  base: TrialResources & { workers?: number } = res(1),
  iteration = 3,
): AllocationContext {
  const [id, cpu, gpu = 0] = live[0];
  return {
    trial: {
      id,
      status: "running",
      config: {},
      iteration,
      dir: `/nonexistent/${id}`,
      resources: res(cpu, gpu),
    },
    result: result(id, iteration),
    live: live.map(([i, c, g = 0]) => ({ id: i, resources: res(c, g) })),
    total,
    base: { workers: 1, ...base },
    metric: "loss",
    mode: "min",
  };
}

Deno.test("distributeResources follows Ray's DistributeResources (decision table)", () => {
  // [case, options, context, expected]
  const rows: [
    string,
    Parameters<typeof distributeResources>[0],
    AllocationContext,
    TrialResources | undefined,
  ][] = [
    ["two of 8 CPUs: the even share, 4", {}, ctx([["a", 1], ["b", 1]], res(8)), res(4)],
    ["nothing free: unchanged", {}, ctx([["a", 1], ["b", 1], ["c", 1], ["d", 1]], res(4)), res(1)],
    ["1 free after another grew: +1", {}, ctx([["b", 1], ["a", 2]], res(4)), res(2)],
    ["a new trial arrived: shrink by the deficit", {}, ctx([["a", 4], ["b", 1]], res(4)), res(3)],
    ["never below the base", {}, ctx([["a", 1], ["b", 2], ["c", 2]], res(4)), res(1)],
    ["alone: everything", {}, ctx([["a", 1]], res(8)), res(8)],
    [
      "increaseByTimes 2 caps at base + 2 steps",
      { increaseByTimes: 2 },
      ctx([["a", 1]], res(8)),
      res(3),
    ],
    [
      "increaseBy 2 CPUs: whole steps only",
      { increaseBy: { cpu: 2 } },
      ctx([["a", 1], ["b", 1]], res(8)),
      res(5),
    ],
    [
      "reserveResources kept back",
      { reserveResources: { cpu: 2 } },
      ctx([["a", 1], ["b", 1]], res(8)),
      res(3),
    ],
    [
      "GPU trials grow by whole GPUs",
      {},
      ctx([["a", 1, 1], ["b", 1, 1]], res(8, 4), res(1, 1)),
      res(1, 2),
    ],
    ["fractional base", {}, ctx([["a", 0.5], ["b", 0.5]], res(2), res(0.5)), res(1.5)],
    [
      "2 workers per trial: per-worker amounts",
      {},
      ctx([["a", 1], ["b", 1]], res(8), { ...res(1), workers: 2 }),
      res(2),
    ],
    ["iteration 0: no change (Ray)", {}, ctx([["a", 1]], res(8), res(1), 0), undefined],
    [
      "half GPUs in half steps, once: at most 1",
      { increaseBy: { gpu: 0.5 }, increaseByTimes: 1 },
      ctx([["a", 1, 0.5]], res(2, 2), res(1, 0.5)),
      res(1, 1),
    ],
  ];
  for (const [name, options, c, expected] of rows) {
    assert.deepStrictEqual(distributeResources(options)(c), expected, name);
  }
});

Deno.test("distributeResources refuses bad options by name", () => {
  assert.throws(
    () => distributeResources({ increaseBy: { cpu: 0 } }),
    /"increaseBy" must give cpu or gpu > 0/,
  );
  assert.throws(
    () => distributeResources({ increaseBy: { cpu: -1 } }),
    /"increaseBy.cpu" must be a finite number >= 0, got -1/,
  );
  assert.throws(
    () => distributeResources({ increaseBy: { memory: 1 } as never }),
    /takes cpu and gpu, not "memory"/,
  );
  assert.throws(
    () => distributeResources({ increaseByTimes: 1.5 }),
    /"increaseByTimes" must be an integer/,
  );
  assert.throws(() => distributeResources({ increseBy: {} } as never), /increseBy/);
});

const SETUP = {
  metric: "loss",
  mode: "min" as const,
  seed: 0,
  resources: { total: res(4), trial: res(1) },
};
const snap = (id: string, cpu = 1, status: TrialSnapshot["status"] = "running"): TrialSnapshot => ({
  id,
  status,
  config: {},
  iteration: 2,
  dir: `/nonexistent/${id}`,
  resources: res(cpu),
});

Deno.test("resourceChangingScheduler reallocates only what its base lets continue", () => {
  const stopper = {
    name: "stopper",
    onReport: () => ({ kind: "stop" as const, reason: "pruned" }),
  };
  const s = resourceChangingScheduler({ base: stopper });
  s.setup!(SETUP);
  s.onTrialAdd!(snap("a", 1, "pending"));
  assert.deepStrictEqual(s.onReport(snap("a"), result("a", 2, { checkpoint_dir_name: "c" })), {
    kind: "stop",
    reason: "pruned",
  });
  const f = resourceChangingScheduler({ base: fifoScheduler() });
  f.setup!(SETUP);
  for (const id of ["a", "b"]) f.onTrialAdd!(snap(id, 1, "pending"));
  assert.deepStrictEqual(f.onReport(snap("a"), result("a", 2, { checkpoint_dir_name: "c" })), {
    kind: "reallocate",
    resources: res(2),
  });
  // "a" holds 2 from here: "b" gets the other 2, no more.
  assert.deepStrictEqual(f.onReport(snap("b"), result("b", 2, { checkpoint_dir_name: "c" })), {
    kind: "reallocate",
    resources: res(2),
  });
  assert.deepStrictEqual(f.onReport(snap("a", 2), result("a", 3)), { kind: "continue" });
  // "b" ends: "a" may take everything.
  f.onComplete!(snap("b", 2, "terminated"), result("b", 3));
  assert.deepStrictEqual(f.onReport(snap("a", 2), result("a", 4, { checkpoint_dir_name: "c" })), {
    kind: "reallocate",
    resources: res(4),
  });
});

Deno.test("resourceChangingScheduler: an allocation that cannot be met is a clear error", () => {
  const make = (r: unknown) => {
    const s = resourceChangingScheduler({ allocate: () => r as TrialResources });
    s.setup!({ ...SETUP, resources: { total: res(8, 2), trial: res(1) } });
    s.onTrialAdd!(snap("a", 1, "pending"));
    return () => s.onReport(snap("a"), result("a", 1));
  };
  assert.throws(
    make({ cpu: 9, gpu: 0 }),
    /trial "a" asks for cpu=9, gpu=0, but the experiment has cpu=8, gpu=2/,
  );
  assert.throws(
    make({ cpu: 1, gpu: 3 }),
    /asks for cpu=1, gpu=3, but the experiment has cpu=8, gpu=2/,
  );
  assert.throws(make({ cpu: -1, gpu: 0 }), /cpu must be a finite number >= 0, got -1/);
  assert.throws(make({ cpu: 1, gpu: 1.5 }), /gpu is 1.5, but GPUs above 1 must be a whole number/);
  assert.throws(make({ cpu: 2 }), /gpu must be a finite number >= 0, got undefined/);
  assert.throws(make({ cpu: 1, gpu: 0, memoryMb: 1 }), /only cpu and gpu can be changed/);
  // undefined: keep what it has.
  assert.deepStrictEqual(make(undefined)(), { kind: "continue" });
  // Bad options.
  assert.throws(
    () => resourceChangingScheduler({ base: {} as never }),
    /"base" must be a scheduler/,
  );
  assert.throws(
    () => resourceChangingScheduler({ allocate: 3 as never }),
    /"allocate" must be a function/,
  );
  assert.throws(() => resourceChangingScheduler({ bse: 1 } as never), /bse/);
  assert.throws(
    () => resourceChangingScheduler({ base: resourceChangingScheduler() }),
    /cannot be another/,
  );
  assert.throws(
    () => resourceChangingScheduler().setup!({ metric: "loss", mode: "min", seed: 0 }),
    /setup needs the experiment's resources/,
  );
});

Deno.test("resource_changing from YAML options: a base by name, Ray's keys, a spec to resume by", () => {
  const s = schedulerFromOptions("resource_changing", {
    baseScheduler: { name: "async_hyperband", max_t: 10, grace_period: 2 },
    allocate: { increase_by: { CPU: 2 }, increase_by_times: 1 },
  });
  assert.equal(s.name, "resource_changing");
  s.setup!({ ...SETUP, resources: { total: res(8), trial: res(1) } });
  s.onTrialAdd!(snap("a", 1, "pending"));
  assert.deepStrictEqual(s.onReport(snap("a"), result("a", 1, { checkpoint_dir_name: "c" })), {
    kind: "reallocate",
    resources: res(3),
  });
  assert.throws(
    () => schedulerFromOptions("resource_changing", { base: { name: "ashaa" } }),
    /"base": Unknown scheduler "ashaa".*did you mean "asha"/,
  );
  assert.throws(
    () => schedulerFromOptions("resource_changing", { base: { name: "asha", max_tt: 3 } }),
    /"base": .*max_?[tT]t/,
  );
  assert.throws(
    () => schedulerFromOptions("resource_changing", { allocate: { increase_by: { cpu: -2 } } }),
    /"increaseBy.cpu" must be a finite number >= 0, got -2/,
  );
  // Built in code by name, it records how to make it again.
  const spec = (resourceChangingScheduler({
    base: ashaScheduler({ maxT: 10 }),
    allocate: distributeResources({ increaseByTimes: 2 }),
  }) as { spec?: unknown }).spec;
  assert.deepStrictEqual(spec, {
    name: "resource_changing",
    options: { base: { name: "asha", options: { maxT: 10 } }, allocate: { increaseByTimes: 2 } },
  });
  const again = schedulerFromOptions(
    "resource_changing",
    (spec as { options: Record<string, unknown> }).options,
  );
  assert.equal(again.name, "resource_changing");
  // A custom allocation function cannot be recorded: restore must be given the scheduler.
  assert.equal(
    (resourceChangingScheduler({ allocate: () => undefined }) as { spec?: unknown }).spec,
    undefined,
  );
});

Deno.test("simulate: trials grow as others end and restart from their checkpoint", () => {
  const r = simulate(resourceChangingScheduler(), CURVE_TRAINABLE, {
    configs: contractConfigs(5),
    concurrency: 3,
    cpus: 4,
    secondsPerIteration: (_c, i) => 5 + i,
  });
  const grown = r.trials.filter((t) => t.allocations.length > 1);
  assert.ok(grown.length >= 2, `trials grew: ${grown.map((t) => t.id)}`);
  for (const t of r.trials) {
    assert.equal(t.status, "terminated");
    assert.equal(t.iteration, CURVE_TRAINABLE.iterations);
    assert.ok(t.resources.cpu <= 4);
  }
  // The last trial alone ends with every CPU.
  const last = r.trials.reduce((
    a,
    b,
  ) => (b.results.at(-1)!.time_total_s > a.results.at(-1)!.time_total_s ? b : a));
  assert.equal(last.resources.cpu, 4);
});

Deno.test("the runner: an allocation asking more than exists ends the experiment, naming the scheduler", async () => {
  await assert.rejects(
    async () =>
      await new Tuner({
        trainable: async (_c: { x: number }, s: Session<{ x: number }>) => {
          await s.report({ loss: 1 }, { checkpoint: () => {} });
        },
        space: { x: choice([1]) },
        metric: "loss",
        mode: "min",
        cpus: 2,
        scheduler: resourceChangingScheduler({ allocate: () => res(3) }),
        storage: await tempStorage(),
        reporter: false,
      }).fit(),
    /resource_changing.*asks for cpu=3, gpu=0, but the experiment has cpu=2, gpu=0/s,
  );
});

Deno.test("the runner: a trial without a checkpoint is not reallocated, and the runner says so", async () => {
  const seen: number[] = [];
  const { value, warnings } = await captureWarnings(async () =>
    await new Tuner({
      trainable: async (_c: { x: number }, s: Session<{ x: number }>) => {
        for (let i = s.iteration; i < 3; i++) {
          seen.push(s.resources.cpu);
          await s.report({ loss: i });
        }
      },
      space: { x: choice([1]) },
      metric: "loss",
      mode: "min",
      cpus: 4,
      gpus: 0,
      scheduler: resourceChangingScheduler(),
      storage: await tempStorage(),
      reporter: false,
    }).fit()
  );
  assert.deepStrictEqual(seen, [1, 1, 1]);
  assert.equal(value.trials[0].iterations, 3);
  assert.equal(
    warnings.filter((w) =>
      /is not given cpu=4, gpu=0 \(it holds cpu=1, gpu=0\).*carried none/.test(w)
    ).length,
    1,
    warnings.join("\n"),
  );
});

Deno.test("end to end (subprocess): trials see session.resources.cpu grow as others finish, from their checkpoints", async () => {
  const storage = await tempStorage();
  const lengths = [2, 4, 8, 14];
  const r = await new Tuner({
    trainable: fixture("resources.ts"),
    space: { iters: grid(lengths), x: 1 },
    metric: "sum",
    mode: "max",
    seed: 3,
    cpus: 4,
    gpus: 0,
    scheduler: resourceChangingScheduler(),
    storage,
    name: "rc",
    reporter: false,
  }).fit();
  assert.equal(r.trials.length, 4);
  let restarts = 0;
  for (const t of r.trials) {
    const n = t.config.iters as number;
    assert.equal(t.status, "terminated", `${t.id}: ${t.error ?? ""}`);
    const h = r.history(t.id);
    // Every iteration once, in order, and the running sum right: each restart resumed from its
    // checkpoint.
    assert.deepStrictEqual(
      h.map((x) => x.training_iteration),
      lengths.slice(0, 0).concat(Array.from({ length: n }, (_, i) => i + 1)),
    );
    assert.deepStrictEqual(
      h.map((x) => x.sum),
      h.map((x) => x.training_iteration * (x.training_iteration + 1) / 2),
    );
    for (let i = 1; i < h.length; i++) {
      assert.ok((h[i].cpu as number) <= 4 && (h[i].cpu as number) >= 1);
      if (h[i].cpu !== h[i - 1].cpu) {
        restarts++;
        // A new allocation starts a new run, from the checkpoint of the report before.
        assert.equal(h[i].iterations_since_restore, 1, `${t.id} at ${i + 1}`);
        assert.equal(h[i].restored_from, h[i - 1].training_iteration);
      }
    }
  }
  const longest = r.trials.find((t) => t.config.iters === 14)!;
  const cpus = r.history(longest.id).map((x) => x.cpu as number);
  assert.equal(cpus[0], 1);
  assert.ok(cpus.at(-1)! > 1, `the longest trial grew: ${cpus}`);
  assert.ok(restarts >= 1);
  // The journal records every change, for resume.
  const events = await readTrialEvents(`${storage}/rc`);
  const changes = events.filter((e) => e.event === "resources");
  assert.equal(changes.length, restarts);
  for (const e of changes) assert.ok(e.resources && e.resources.cpu > 1);
});

Deno.test("resume (CLI, Ctrl-C): a grown trial restarts with the resources the journal recorded", async () => {
  const storage = await tempStorage();
  const yaml = fixture("resources.yaml").pathname;
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "run", yaml, "--storage", storage, "--name", "rc"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dir = `${storage}/rc`;
  // Interrupt once the long trial runs with 2 CPUs and has reported with them.
  let long = "";
  for (let i = 0; i < 600 && !long; i++) {
    await new Promise((r) => setTimeout(r, 50));
    for (const e of await Array.fromAsync(Deno.readDir(dir)).catch(() => [])) {
      if (!e.isDirectory) continue;
      const lines = (await Deno.readTextFile(`${dir}/${e.name}/result.jsonl`).catch(() => ""))
        .trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      if (lines.some((l) => l.cpu === 2 && l.iterations_since_restore >= 2)) long = e.name;
    }
  }
  assert.ok(long, "the long trial grew to 2 CPUs");
  child.kill("SIGINT");
  const out = await child.output();
  assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
  const before = (await readTrialEvents(dir)).filter((e) => e.event === "resources");
  assert.deepStrictEqual(before.map((e) => [e.trial, e.resources]), [[long, res(2)]]);

  const resumed = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "resume", dir],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
  const lines = (await Deno.readTextFile(`${dir}/${long}/result.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  const last = lines.at(-1);
  assert.equal(last.training_iteration, 40);
  // Every run after the reallocation, the resumed one included, held 2 CPUs.
  const grownAt = lines.findIndex((l) => l.cpu === 2);
  assert.ok(
    lines.slice(grownAt).every((l) => l.cpu === 2),
    JSON.stringify(lines.map((l) => l.cpu)),
  );
  const restarts = lines.filter((l, i) => i > grownAt && l.iterations_since_restore === 1);
  assert.ok(restarts.length >= 1, "the resumed run started again from a checkpoint");
  // The sum is right at every iteration that was kept: each run restored its checkpoint.
  for (const l of lines) assert.equal(l.sum, l.training_iteration * (l.training_iteration + 1) / 2);
  // No new reallocation: it already held everything.
  assert.equal((await readTrialEvents(dir)).filter((e) => e.event === "resources").length, 1);
});

async function onFakeCluster(cpus?: number) {
  const { inprocessExecutor } = await import("../../plugins/executors/inprocess.ts");
  type Cfg = { iters: number };
  const inner = inprocessExecutor<Cfg>(async (c, s) => {
    for (let i = s.iteration; i < c.iters; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await s.report({ loss: i, cpu: s.resources.cpu }, { checkpoint: () => {} });
    }
  });
  const starts: [string, number | undefined][] = [];
  let running = 0, most = 0;
  const executor = {
    name: "fake-cluster",
    lazyTrialDir: true,
    // What the cluster holds: 3 trials of 1 CPU.
    capacity: () => 3,
    start(job: Parameters<typeof inner.start>[0], listener: Parameters<typeof inner.start>[1]) {
      starts.push([job.trialId, job.resources?.cpu]);
      most = Math.max(most, ++running);
      const h = inner.start(job, listener);
      h.exited.finally(() => running--);
      return h;
    },
  };
  const r = await new Tuner({
    trainable: (() => {}) as never,
    executor,
    space: { iters: grid([1, 2, 40]) },
    metric: "loss",
    mode: "min",
    resources: { cpu: 1 },
    ...(cpus ? { cpus } : {}),
    scheduler: resourceChangingScheduler(),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const long = r.trials.find((t) => t.config.iters === 40)!;
  const mine = starts.filter(([id]) => id === long.id).map(([, cpu]) => cpu);
  const seen = r.history(long.id).map((x) => x.cpu);
  return { mine, seen, most, starts };
}

Deno.test("a cluster executor (one with capacity) gets each trial's current resources at every start", async () => {
  const { mine, seen, starts } = await onFakeCluster();
  // It starts with 1 CPU, is given more as the others end (3 in all), each at a new start.
  assert.equal(mine[0], 1);
  assert.equal(mine.at(-1), 3, JSON.stringify(starts));
  assert.deepStrictEqual([...new Set(seen)], mine, "session.resources followed every start");
});

Deno.test("on a cluster, the cpus option caps what trials hold together", async () => {
  const { mine, most, starts } = await onFakeCluster(2);
  assert.equal(most, 2, "2 CPUs: 2 trials of 1 at once");
  assert.equal(mine.at(-1), 2, JSON.stringify(starts));
});

Deno.test("the runner: a fractional GPU grown by whole GPUs is a clear error, not a trial that waits forever", async () => {
  await assert.rejects(
    async () =>
      await new Tuner({
        trainable: async (_c: { x: number }, s: Session<{ x: number }>) => {
          await s.report({ loss: 1 }, { checkpoint: () => {} });
        },
        space: { x: choice([1]) },
        metric: "loss",
        mode: "min",
        cpus: 2,
        gpus: 2,
        resources: { cpu: 1, gpu: 0.5 },
        scheduler: resourceChangingScheduler(),
        storage: await tempStorage(),
        reporter: false,
      }).fit(),
    /resource_changing.*trial "\w+": gpu is 1.5, but GPUs above 1 must be a whole number.*trials of a fractional GPU \(0.5\) cannot grow by whole GPUs/s,
  );
});

Deno.test("end to end (subprocess): a GPU trial grows by whole devices and gets them in CUDA_VISIBLE_DEVICES", async () => {
  const { hostileTrainable } = await import("../sandbox/_hostile.ts");
  const train = await hostileTrainable(`
    for (let i = session.iteration; i < config.iters; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await session.report(
        { loss: i, gpu: session.resources.gpu, cuda: Deno.env.get("CUDA_VISIBLE_DEVICES") ?? "unset" },
        { checkpoint: (d: string) => Deno.writeTextFile(d + "/i", String(i)) },
      );
    }
  `);
  const r = await new Tuner({
    trainable: train,
    space: { iters: grid([1, 10]) },
    metric: "loss",
    mode: "min",
    cpus: 2,
    gpus: 2,
    resources: { cpu: 1, gpu: 1 },
    scheduler: resourceChangingScheduler(),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const long = r.trials.find((t) => t.config.iters === 10)!;
  const h = r.history(long.id);
  assert.equal(long.status, "terminated", long.error);
  assert.equal(h[0].gpu, 1);
  assert.equal(String(h[0].cuda).split(",").length, 1);
  // Grown to both GPUs once the short trial ended (its CPUs stay at the base: GPU steps only).
  const last = h.at(-1)!;
  assert.equal(last.gpu, 2, JSON.stringify(h.map((x) => [x.gpu, x.cuda])));
  assert.deepStrictEqual(String(last.cuda).split(",").sort(), ["0", "1"]);
});
