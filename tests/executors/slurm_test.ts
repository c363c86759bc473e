// The Slurm executor against a real two-node Slurm cluster (tests/peers/slurm_cluster.ts): one
// cluster for the whole file, stopped at the end even on failure. Each case runs real trials
// through slurmExecutor and reads the outcome (trial status, error text, Slurm's own records).
import { deepEqual, equal, match, ok as assert } from "#assert";
import { grid, Tuner } from "../../mod.ts";
import { ashaScheduler, resourceChangingScheduler } from "../../plugins/schedulers/mod.ts";
import { slurmExecutor, type SlurmExecutorOptions } from "../../plugins/executors/slurm.ts";
import { type SlurmCluster, slurmMissing, startSlurmCluster } from "../peers/slurm_cluster.ts";
import { hostileTrainable } from "../sandbox/_hostile.ts";
import { tempStorage } from "../_helpers.ts";

const missing = await slurmMissing();
if (missing) console.warn(`\n*** SKIPPING the Slurm executor tests: ${missing} ***\n`);

const PATH = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function waitFor(ok: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Result lines written so far across the trials of an experiment folder. */
async function resultLines(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory) continue;
      const text = await Deno.readTextFile(`${dir}/${e.name}/result.jsonl`).catch(() => "");
      n += text.split("\n").filter(Boolean).length;
    }
  } catch { /* not yet */ }
  return n;
}

function env(c: SlurmCluster, extra: Record<string, string> = {}): Record<string, string> {
  return { ...c.env, PATH, ...extra };
}

/** Runs `fn` inside a fresh allocation of both nodes (as `salloc -N2` would), then frees it. */
async function inAllocation<T>(
  c: SlurmCluster,
  fn: (commandEnv: Record<string, string>) => Promise<T>,
): Promise<T> {
  const id = await c.allocate(["-N2", `-n${2 * c.cpusPerNode}`]);
  try {
    return await fn(
      env(c, { SLURM_JOB_ID: id, SLURM_JOB_CPUS_PER_NODE: `${c.cpusPerNode}(x2)` }),
    );
  } finally {
    await c.run("scancel", [id]);
  }
}

function executor(
  train: string,
  commandEnv: Record<string, string>,
  o: SlurmExecutorOptions = {},
) {
  return slurmExecutor(train, {
    commandEnv,
    driverHost: "127.0.0.1",
    heartbeatMs: 3000,
    pollMs: 200,
    graceMs: 1000,
    ...o,
  });
}

/** A trial's job for the executor's own calls, with its folder made: 2 CPUs, a fresh start. */
function trialJob(storage: string, trialId: string, config: Record<string, number | boolean>) {
  const dir = `${storage}/${trialId}`;
  Deno.mkdirSync(`${dir}/files`, { recursive: true });
  return {
    trialId,
    dir,
    workDir: `${dir}/files`,
    sandbox: {},
    env: {},
    resources: { cpu: 2 },
    config,
    iteration: 0,
    timeOffsetS: 0,
  };
}

async function squeueAll(c: SlurmCluster): Promise<string> {
  return (await c.run("squeue", ["-h", "-o", "%i %j %T"])).out.trim();
}

Deno.test({
  name: "slurm executor on a real two-node cluster",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const c = await startSlurmCluster();
  try {
    await t.step(
      "step mode places trials on both nodes, and the live table shows where",
      async () => {
        const train = await hostileTrainable(`
        for (let i = 1; i <= 2; i++) {
          await new Promise((r) => setTimeout(r, 300));
          await session.report({ loss: config.x * i, node: Deno.env.get("SLURMD_NODENAME") ?? "?" });
        }
      `);
        const lines: string[] = [];
        const { tableReporter } = await import("../../plugins/reporters/table.ts");
        // 3 CPUs per trial: only one fits on a 4-CPU node, so two run at once on n1 and n2.
        const storage = await tempStorage();
        const r = await inAllocation(c, (e) =>
          new Tuner({
            trainable: train,
            space: { x: grid([1, 2, 3, 4]) },
            metric: "loss",
            mode: "min",
            storage,
            resources: { cpu: 3 },
            executor: executor(train, e),
            reporter: tableReporter({ write: (s: string) => lines.push(s), live: false }),
          }).fit());
        const nodes = new Set(r.trials.map((x) => String(x.metrics?.node)));
        for (const x of r.trials) equal(x.status, "terminated", x.error);
        equal([...nodes].sort().join(","), "n1,n2");
        const table = lines.join("");
        match(table, /node/);
        match(table, /n1/);
        match(table, /n2/);
      },
    );

    await t.step(
      "step mode: warm starts hand each step its own trial, and one waiting for CPUs stalls nothing",
      async () => {
        const train = await hostileTrainable(`
        await new Promise((r) => setTimeout(r, 300));
        await session.report({ loss: config.x, origin: performance.timeOrigin });
      `);
        // Room in the allocation: the next trial's step starts while the current one runs.
        // Tight (2 CPUs, 2 per trial): the warm step waits inside Slurm for the running one's
        // CPUs, which it takes when that one ends.
        for (
          const [alloc, cpu] of [[["-N1", "-n4", "-w", "n1"], 1], [["-N1", "-n2"], 2]] as const
        ) {
          const id = await c.allocate(alloc);
          try {
            const started = new Map<string, number>();
            const t0 = Date.now();
            const r = await new Tuner({
              trainable: train,
              space: { x: grid([1, 2, 3, 4]) },
              metric: "loss",
              mode: "min",
              storage: await tempStorage(),
              maxConcurrent: 1,
              resources: { cpu },
              executor: executor(
                train,
                env(c, { SLURM_JOB_ID: id, SLURM_JOB_CPUS_PER_NODE: alloc[1].slice(2) }),
              ),
              callbacks: [{
                name: "starts",
                onTrialStart(e) {
                  started.set(e.trial.id, Date.now());
                },
              }],
              reporter: false,
            }).fit();
            equal(r.trials.length, 4);
            for (const x of r.trials) {
              equal(x.status, "terminated", x.error);
              equal(x.metrics?.loss, x.config.x); // its own trial
            }
            const ahead = r.trials.filter((x) =>
              Number(x.metrics?.origin) < started.get(x.id)!
            ).length;
            if (cpu === 1) assert(ahead >= 1, "no trial's step started ahead");
            // 4 trials of 0.3 s one after another: no step waited long for another's CPUs.
            assert(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
            // No warm step outlives the experiment.
            await waitFor(async () => {
              const steps = await c.run("squeue", ["-h", "-s", "-j", id, "-o", "%j"]);
              return !/tunebox-/.test(steps.out);
            }, 10_000);
          } finally {
            await c.run("scancel", [id]);
          }
        }
      },
    );
    await t.step(
      "step mode: a warm step holding the only CPUs gives them up when another trial starts",
      async () => {
        const train = await hostileTrainable(`await session.report({ loss: config.x });`);
        // 2 CPUs, 2 per trial: the warm step of "a" takes them all; "b" starts instead.
        const id = await c.allocate(["-N1", "-n2"]);
        const storage = await tempStorage();
        const ex = executor(train, env(c, { SLURM_JOB_ID: id, SLURM_JOB_CPUS_PER_NODE: "2" }));
        try {
          await ex.prepare!({ experimentDir: storage });
          const job = (trialId: string) =>
            trialJob(storage, trialId, { x: trialId === "a" ? 1 : 2 });
          ex.warm!(job("a"));
          // The steps of the allocation as "<step id> <name> <state>" lines.
          const steps = async () => {
            const r = await c.run("squeue", [
              "-h",
              "-s",
              "-j",
              id,
              "-O",
              "StepId,StepName,StepState",
            ]);
            if (r.code !== 0) throw new Error(`squeue failed: ${r.err}`);
            return r.out;
          };
          const stepOfA = async () => /^\s*(\S+)\s+tunebox-a\b/m.exec(await steps())?.[1];
          await waitFor(async () => (await stepOfA()) !== undefined, 20_000);
          const warmStep = (await stepOfA())!;
          const reports: unknown[] = [];
          const h = ex.start(job("b"), {
            report(r) {
              reports.push(r.metrics);
              return Promise.resolve("continue");
            },
          });
          const exit = await h.exited;
          equal(exit.kind, "done", JSON.stringify(exit));
          equal(JSON.stringify(reports), JSON.stringify([{ loss: 2 }]));
          // That warm step is gone. ("a" is still the next trial ahead, so the executor may
          // warm it again once b's step is out of the way: that is a new step.)
          const runs = (out: string) =>
            out.split("\n").some((l) => l.trim().split(/\s+/)[0] === warmStep);
          await waitFor(async () => !runs(await steps()), 10_000).catch(() => {});
          const left = await steps();
          assert(
            !runs(left),
            `the warm step ${warmStep} of a still runs: ${left}`,
          );
        } finally {
          await ex.close?.();
          await c.run("scancel", [id]);
        }
      },
    );
    await t.step(
      "step mode: a step stopped while srun still launches it, and a hung trial killed for " +
        "silence, leave no step holding CPUs (by step id), and the next trial starts",
      async () => {
        // "hung" reports once, then its event loop stops (no heartbeat); the others report once.
        const train = await hostileTrainable(`
        if (config.hang) {
          await session.report({ loss: 0 });
          const until = Date.now() + 30000;
          while (Date.now() < until) { /* no heartbeat can leave */ }
        }
        await session.report({ loss: config.x });
      `);
        // srun runs its --prolog after the controller granted the step (which then holds its
        // CPUs) and before any task starts: for the trial "slow" it lasts 8 s, so its step is
        // stopped while srun still launches it. (The prolog's arguments are the step's command,
        // whose --location names the trial.)
        const prolog = `${await Deno.makeTempDir({ prefix: "tunebox_prolog_" })}/prolog.sh`;
        await Deno.writeTextFile(
          prolog,
          `#!/bin/sh\ncase "$*" in *//slow-*) sleep 8 ;; esac\nexit 0\n`,
          { mode: 0o755 },
        );
        // 2 CPUs, 2 per trial: a step left holding CPUs keeps every later trial waiting.
        const id = await c.allocate(["-N1", "-n2", "-w", "n1"]);
        const storage = await tempStorage();
        const ex = executor(train, env(c, { SLURM_JOB_ID: id, SLURM_JOB_CPUS_PER_NODE: "2" }), {
          heartbeatMs: 1500,
          slurm: { extraArgs: [`--prolog=${prolog}`] },
        });
        const job = (trialId: string, config: Record<string, number | boolean>) =>
          trialJob(storage, trialId, config);
        const reports = new Map<string, unknown[]>();
        const listener = (trialId: string) => ({
          report(r: { metrics: unknown }) {
            reports.set(trialId, [...reports.get(trialId) ?? [], r.metrics]);
            return Promise.resolve("continue" as const);
          },
        });
        // The allocation's steps as "<step id> <name>" pairs.
        const steps = async () => {
          const r = await c.run("squeue", ["-h", "-s", "-j", id, "-o", "%i %j"]);
          if (r.code !== 0) throw new Error(`squeue failed: ${r.err}`);
          return r.out.trim().split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/));
        };
        const stepOf = async (trialId: string) =>
          (await steps()).find(([, name]) => name === `tunebox-${trialId}`)?.[0];
        // A bound on waits that would otherwise hang the test (a step holding the CPUs).
        const within = <T>(p: Promise<T>, what: string): Promise<T> =>
          Promise.race([
            p,
            new Promise<never>((_, rej) =>
              setTimeout(() => rej(new Error(`${what} within 60 s`)), 60_000)
            ),
          ]);
        const nextTrialRuns = async (trialId: string, x: number) => {
          const h = ex.start(job(trialId, { x }), listener(trialId));
          const exit = await within(
            h.exited,
            `${trialId} did not end (steps: ${JSON.stringify(await steps())})`,
          );
          equal(exit.kind, "done", JSON.stringify(exit));
          deepEqual(reports.get(trialId), [{ loss: x }]);
        };
        try {
          await ex.prepare!({ experimentDir: storage });
          // Stopped while srun launches it: the step is granted, its task not started.
          const slow = ex.start(job("slow", { x: 1 }), listener("slow"));
          await waitFor(async () => (await stepOf("slow")) !== undefined, 30_000);
          const slowStep = (await stepOf("slow"))!;
          await slow.stop(0);
          equal((await slow.exited).kind, "stopped");
          equal(reports.get("slow"), undefined);
          let left = await steps();
          assert(
            !left.some(([step]) => step === slowStep),
            `the stopped step ${slowStep} of "slow" still holds its CPUs: ${JSON.stringify(left)}`,
          );
          await nextTrialRuns("after_slow", 2);
          // A hung trial: killed for its silence, its step must be gone too.
          const hung = ex.start(job("hung", { hang: true, x: 3 }), listener("hung"));
          // Its step is listed from the moment Slurm grants it until it is gone.
          await waitFor(async () => (await stepOf("hung")) !== undefined, 30_000);
          const hungStep = (await stepOf("hung"))!;
          const exit = await within(hung.exited, "hung was not given up");
          deepEqual(reports.get("hung"), [{ loss: 0 }]);
          equal(exit.kind, "error");
          match(exit.kind === "error" ? exit.message : "", /went silent for 1500 ms/);
          left = await steps();
          assert(
            !left.some(([step]) => step === hungStep),
            `the step ${hungStep} of the silent trial still holds its CPUs: ${
              JSON.stringify(left)
            }`,
          );
          await nextTrialRuns("after_hung", 4);
        } finally {
          await ex.close?.();
          await c.run("scancel", [id]);
        }
      },
    );
    await t.step(
      "a constraint (--constraint) puts every trial on the node with that feature",
      async () => {
        const train = await hostileTrainable(`
        await session.report({ loss: 1, node: Deno.env.get("SLURMD_NODENAME") ?? "?" });
      `);
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          executor: executor(train, env(c), { mode: "sbatch", slurm: { constraint: "two" } }),
          reporter: false,
        }).fit();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.metrics?.node, "n2");
        }
      },
    );

    await t.step({
      name:
        "storage a node does not see: the first trial says so, the experiment ends, nothing is lost",
      ignore: c.unsharedDir === undefined,
      fn: async () => {
        // n2 has an empty tmpfs over unsharedDir: like a node without the cluster file system.
        const train = await hostileTrainable(`await session.report({ loss: 1 });`);
        for (const mode of ["sbatch", "step"] as const) {
          const storage = await Deno.makeTempDir({ dir: c.unsharedDir, prefix: `${mode}_` });
          const run = (e: Record<string, string>) =>
            new Tuner({
              trainable: train,
              space: { x: grid([1, 2, 3]) },
              metric: "loss",
              mode: "min",
              storage,
              name: "unshared",
              maxConcurrent: 1,
              executor: executor(train, e, { mode, slurm: { nodelist: "n2" } }),
              reporter: false,
            }).fit();
          const message = `the experiment folder ${storage}/unshared is not visible on the ` +
            `node the first trial ran on: storage must be shared by every node`;
          // The refusal is fatal: fit() says so, and no second trial is started to fail alike.
          const caught = await (mode === "step" ? inAllocation(c, run) : run(env(c))).then(
            () => undefined,
            (e: Error) => e,
          );
          assert(caught, `${mode}: fit() did not fail`);
          match(caught?.message ?? "", new RegExp(`The trainable cannot run: ${message}`));
          // Nothing the driver wrote is lost: the record and the trial's error are on disk.
          const dir = `${storage}/unshared`;
          const record = JSON.parse(await Deno.readTextFile(`${dir}/experiment.json`));
          equal(record.name, "unshared");
          const trials = [];
          for await (const e of Deno.readDir(dir)) {
            if (e.isDirectory && e.name !== ".deno_dir") trials.push(e.name);
          }
          equal(trials.length, 1, `${mode}: ${trials}`);
          match(await Deno.readTextFile(`${dir}/${trials[0]}/error.txt`), new RegExp(message));
          // The trial's job ends (a cancelled job may show as COMPLETING for a moment).
          await waitFor(async () => !(await squeueAll(c)).includes("tunebox-"), 20_000);
        }
      },
    });

    await t.step({
      name:
        "a driver address a node cannot reach (driverHost: localhost): a clear error, nothing lost",
      ignore: !c.localhostElsewhereOnN2,
      fn: async () => {
        // On n2, as on any real compute node, localhost is the node itself: nothing listens.
        const train = await hostileTrainable(`await session.report({ loss: 1 });`);
        for (const mode of ["sbatch", "step"] as const) {
          const storage = await tempStorage();
          const run = (e: Record<string, string>) =>
            new Tuner({
              trainable: train,
              space: { x: grid([1, 2, 3]) },
              metric: "loss",
              mode: "min",
              storage,
              name: "unreachable",
              maxConcurrent: 1,
              executor: executor(train, e, {
                mode,
                driverHost: "localhost",
                slurm: { nodelist: "n2" },
              }),
              reporter: false,
            }).fit();
          const caught = await (mode === "step" ? inAllocation(c, run) : run(env(c))).then(
            () => undefined,
            (e: Error) => e,
          );
          const message =
            /the trial could not reach the driver at tls:localhost:\d+ \(.*[Cc]onnection refused.*\): driverHost must be an address every compute node reaches/;
          match(caught?.message ?? "fit() did not fail", message);
          const dir = `${storage}/unreachable`;
          equal(JSON.parse(await Deno.readTextFile(`${dir}/experiment.json`)).name, "unreachable");
          const trials = [];
          for await (const e of Deno.readDir(dir)) {
            if (e.isDirectory && e.name !== ".deno_dir") trials.push(e.name);
          }
          equal(trials.length, 1, `${mode}: ${trials}`);
          match(await Deno.readTextFile(`${dir}/${trials[0]}/error.txt`), message);
          // The trial's job ends (a cancelled job may show as COMPLETING for a moment).
          await waitFor(async () => !(await squeueAll(c)).includes("tunebox-"), 20_000);
        }
      },
    });

    await t.step(
      "the job's environment is exactly the sandbox's: nothing of the submitting environment leaks in",
      async () => {
        const train = await hostileTrainable(`
        await session.report({ loss: 1, leak: Deno.env.get("LEAK_ME") ?? "none" });
      `);
        for (const mode of ["sbatch", "step"] as const) {
          const run = (e: Record<string, string>) =>
            tempStorage().then((storage) =>
              new Tuner({
                trainable: train,
                space: { x: grid([1]) },
                metric: "loss",
                mode: "min",
                storage,
                // Granted, so only the environment can keep it out.
                sandbox: { env: ["LEAK_ME"] },
                executor: executor(train, { ...e, LEAK_ME: "from-the-submitter" }, { mode }),
                reporter: false,
              }).fit()
            );
          const r = mode === "step" ? await inAllocation(c, run) : await run(env(c));
          equal(r.trials[0].status, "terminated", r.trials[0].error);
          equal(r.trials[0].metrics?.leak, "none", mode);
        }
      },
    );

    await t.step("ASHA stops remote trials early", async () => {
      const train = await hostileTrainable(`
        for (let i = 1; i <= 8; i++) {
          // Worse trials report later, so every rung already holds a better
          // result when they reach it, however Slurm staggers the step starts.
          await new Promise((r) => setTimeout(r, config.x * 100));
          await session.report({ loss: config.x / i });
        }
      `);
      const storage = await tempStorage();
      const r = await inAllocation(c, (e) =>
        new Tuner({
          trainable: train,
          space: { x: grid([1, 2, 3, 4, 5, 6]) },
          metric: "loss",
          mode: "min",
          storage,
          scheduler: ashaScheduler({ maxT: 8, gracePeriod: 1, reductionFactor: 2 }),
          // Two at a time: trials 3 to 6 meet a rung that trials 1 and 2
          // filled, so ASHA's verdict does not depend on start order.
          maxConcurrent: 2,
          executor: executor(train, e),
          reporter: false,
        }).fit());
      const stopped = r.trials.filter((x) => x.iterations < 8);
      assert(stopped.length >= 2, `ASHA stopped ${stopped.length} trials`);
      for (const x of r.trials) equal(x.status, "terminated", x.error);
      equal(r.trials.filter((x) => x.iterations === 8).length >= 1, true);
    });

    await t.step(
      "a trial over its --mem is killed by Slurm and fails with OUT_OF_MEMORY",
      async () => {
        const train = await hostileTrainable(`
        await session.report({ loss: 1 });
        const keep: Uint8Array[] = [];
        for (let i = 0; i < 100; i++) {
          keep.push(new Uint8Array(16 << 20).fill(1));
          await new Promise((r) => setTimeout(r, 50));
        }
        await session.report({ loss: keep.length });
      `);
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          resources: { cpu: 1, memoryMb: 150 },
          executor: executor(train, env(c), { mode: "sbatch" }),
          reporter: false,
        }).fit();
        const x = r.trials[0];
        equal(x.status, "error");
        match(x.error ?? "", /OUT_OF_MEMORY/);
        match(x.error ?? "", /memory/);
      },
    );

    await t.step(
      "a trial that ignores the stop decision is cancelled by the scheduler (scancel)",
      async () => {
        const train = await hostileTrainable(`
        for (let i = 1; ; i++) {
          try { await session.report({ loss: 10 - i }); } catch { /* ignores TrialStopped */ }
          await new Promise((r) => setTimeout(r, 100));
        }
      `);
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          stop: { training_iteration: 3 },
          storage: await tempStorage(),
          executor: executor(train, env(c), { mode: "sbatch", graceMs: 500 }),
          reporter: false,
        }).fit();
        const x = r.trials[0];
        equal(x.status, "terminated", x.error);
        const jobs = (await c.run("squeue", ["-h", "-t", "all", "-o", "%j %T"])).out;
        // Slurm's record of the job: cancelled, not left running.
        const job = (await c.run("scontrol", ["show", "job", "-o"])).out.split("\n")
          .find((l) => l.includes(`JobName=tunebox-${x.id}`));
        assert(job, `no Slurm job for ${x.id}: ${jobs}`);
        match(job!, /JobState=CANCELLED/);
      },
    );

    await t.step(
      "a trial whose event loop goes silent is given up by the driver (heartbeat)",
      async () => {
        const train = await hostileTrainable(`
        await session.report({ loss: 1 });
        const until = Date.now() + 15000;
        while (Date.now() < until) { /* no heartbeat can leave */ }
        await session.report({ loss: 2 });
      `);
        const t0 = Date.now();
        const storage = await tempStorage();
        const r = await inAllocation(c, (e) =>
          new Tuner({
            trainable: train,
            space: { x: grid([1]) },
            metric: "loss",
            mode: "min",
            storage,
            executor: executor(train, e, { heartbeatMs: 1500 }),
            reporter: false,
          }).fit());
        const x = r.trials[0];
        equal(x.status, "error");
        match(x.error ?? "", /went silent for 1500 ms/);
        assert(Date.now() - t0 < 14000, "the driver waited for the silent trial");
      },
    );

    await t.step(
      "a refused request is shown in Slurm's words and ends the experiment",
      async () => {
        const train = await hostileTrainable(`await session.report({ loss: 1 });`);
        for (
          const [mode, resources, slurm, words] of [
            ["sbatch", { cpu: 64 }, {}, /Slurm refused.*More processors requested than permitted/],
            ["sbatch", { cpu: 1 }, { constraint: "nosuch" }, /Slurm refused.*Invalid feature/],
            ["step", { cpu: 64 }, {}, /Slurm refused the trial's step: srun: error: .*/],
          ] as const
        ) {
          const storage = await tempStorage();
          const run = (e: Record<string, string>) =>
            new Tuner({
              trainable: train,
              space: { x: grid([1]) },
              metric: "loss",
              mode: "min",
              storage,
              resources,
              executor: executor(train, e, { mode, slurm }),
              reporter: false,
            }).fit().then(() => undefined, (e) => e as Error);
          const err = mode === "step" ? await inAllocation(c, run) : await run(env(c));
          assert(err, `${mode} ${JSON.stringify(resources)} was not refused`);
          match(err!.message, words);
        }
      },
    );

    await t.step(
      "outside Slurm, without an allocation, and with a fractional GPU: clear errors",
      async () => {
        const train = await hostileTrainable(`await session.report({ loss: 1 });`);
        const run = async (o: SlurmExecutorOptions, commandEnv: Record<string, string>, gpu = 0) =>
          new Tuner({
            trainable: train,
            space: { x: grid([1]) },
            metric: "loss",
            mode: "min",
            storage: await tempStorage(),
            resources: { cpu: 1, gpu },
            gpus: gpu ? 1 : 0,
            executor: executor(train, commandEnv, o),
            reporter: false,
          }).fit().then(() => undefined, (e) => e as Error);
        const none = await run({ mode: "sbatch" }, { PATH: "/nonexistent" });
        match(none?.message ?? "", /not inside a Slurm installation: `sbatch` was not found/);
        const noAlloc = await run({ mode: "step" }, env(c));
        match(noAlloc?.message ?? "", /no allocation here \(SLURM_JOB_ID is not set\)/);
        const frac = await run({ mode: "sbatch" }, env(c), 0.5);
        match(frac?.message ?? "", /fractional GPUs/);
      },
    );
    for (const mode of ["sbatch", "step"] as const) {
      await t.step(
        `${mode} mode: a driver killed with -9 leaves no job behind for long, and resume finishes`,
        async () => {
          const train = await hostileTrainable(`
          const start = session.checkpoint ? Number(await Deno.readTextFile(session.checkpoint + "/i")) : 0;
          for (let i = start + 1; i <= 12; i++) {
            await new Promise((r) => setTimeout(r, 250));
            await session.report({ loss: 1 / i }, {
              checkpoint: (dir) => Deno.writeTextFile(dir + "/i", String(i)),
            });
          }
        `);
          const storage = await tempStorage();
          const yaml = `${storage}/exp.yaml`;
          await Deno.writeTextFile(
            yaml,
            [
              `name: killed`,
              `trainable: ${train}`,
              `metric: loss`,
              `mode: min`,
              `storage: ${storage}`,
              `space: { x: { type: grid, values: [1, 2] } }`,
              `reporter: false`,
              `executor: { name: slurm, mode: ${mode}, driver_host: 127.0.0.1, heartbeat_ms: 1500, poll_ms: 200 }`,
            ].join("\n") + "\n",
          );
          const alloc = mode === "step" ? await c.allocate(["-N2", "-n4"]) : undefined;
          try {
            const runEnv = env(
              c,
              alloc ? { SLURM_JOB_ID: alloc, SLURM_JOB_CPUS_PER_NODE: "2(x2)" } : {},
            );
            const driver = new Deno.Command(Deno.execPath(), {
              args: ["run", "-A", CLI, "run", yaml],
              env: runEnv,
              clearEnv: true,
              stdout: "null",
              stderr: "piped",
            }).spawn();
            const dir = `${storage}/killed`;
            // Wait until both trials reported a few times, then kill the driver like a crash.
            await waitFor(async () => (await resultLines(dir)) >= 6, 60_000);
            driver.kill("SIGKILL");
            await driver.output();
            // No trial job outlives the driver for long: batch jobs notice the silent driver
            // (heartbeat), steps die with their srun.
            await waitFor(async () => !(await squeueAll(c)).includes("tunebox-"), 20_000);
            const resumed = await new Deno.Command(Deno.execPath(), {
              args: ["run", "-A", CLI, "resume", dir],
              env: runEnv,
              clearEnv: true,
              stdout: "piped",
              stderr: "piped",
            }).output();
            equal(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
            const { ResultGrid } = await import("../../mod.ts");
            const g = await ResultGrid.load(dir);
            for (const x of g.trials) {
              equal(x.status, "terminated", x.error);
              equal(x.iterations, 12);
            }
          } finally {
            if (alloc) await c.run("scancel", [alloc]);
          }
        },
      );
    }

    await t.step(
      "examples/05 (MNIST, TPE + ASHA) runs from its YAML with --executor slurm inside salloc",
      async () => {
        const storage = await tempStorage();
        await inAllocation(c, async (e) => {
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              CLI,
              "run",
              new URL("../../examples/05_experiment.yaml", import.meta.url).pathname,
              "--executor",
              "slurm",
              "--storage",
              storage,
              "--set",
              "num_samples=2",
              "--set",
              "space.epochs=2",
              "--set",
              "space.train_size=256",
              "--set",
              "scheduler.max_t=2",
              "--set",
              "loggers=[]",
              "--set",
              "executor.driver_host=127.0.0.1",
            ],
            env: e,
            clearEnv: true,
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
          equal(out.code, 0, text);
          match(text, /node/);
          match(text, /n[12]/);
        });
        const { ResultGrid } = await import("../../mod.ts");
        const g = await ResultGrid.load(`${storage}/mnist-yaml`);
        equal(g.trials.length, 2);
        for (const x of g.trials) {
          equal(x.status, "terminated", x.error);
          assert(typeof x.metrics?.val_acc === "number");
        }
        const saved = JSON.parse(await Deno.readTextFile(`${storage}/mnist-yaml/experiment.json`));
        equal(saved.options.executor.name, "slurm");
      },
    );

    await t.step(
      "resource_changing: a grown trial is submitted again with the new -c, from its checkpoint",
      async () => {
        const train = await hostileTrainable(`
        let sum = 0;
        if (session.checkpoint) {
          sum = JSON.parse(await Deno.readTextFile(session.checkpoint + "/s.json")).sum;
        }
        for (let i = session.iteration; i < config.iters; i++) {
          sum += i + 1;
          await new Promise((r) => setTimeout(r, 200));
          await session.report({ sum, cpu: session.resources.cpu }, {
            checkpoint: (d: string) => Deno.writeTextFile(d + "/s.json", JSON.stringify({ sum })),
          });
        }
      `);
        const r = await new Tuner({
          trainable: train,
          space: { iters: grid([2, 14]) },
          metric: "sum",
          mode: "max",
          storage: await tempStorage(),
          cpus: 2,
          scheduler: resourceChangingScheduler(),
          executor: executor(train, env(c), { mode: "sbatch" }),
          reporter: false,
        }).fit();
        const long = r.trials.find((x) => x.config.iters === 14)!;
        for (const x of r.trials) equal(x.status, "terminated", x.error);
        const h = r.history(long.id);
        deepEqual(h.map((x) => x.training_iteration), Array.from({ length: 14 }, (_, i) => i + 1));
        for (const x of h) equal(x.sum, x.training_iteration * (x.training_iteration + 1) / 2);
        equal(h[0].cpu, 1);
        equal(h.at(-1)!.cpu, 2, JSON.stringify(h.map((x) => x.cpu)));
        // Slurm's own record of the trial's jobs: one with -c 1, then one with -c 2.
        const jobs = (await c.run("scontrol", ["show", "job", "-o"])).out.split("\n")
          .filter((l) => l.includes(`JobName=tunebox-${long.id} `));
        const perTask = jobs.map((l) => Number(/CPUs\/Task=(\d+)/.exec(l)?.[1])).sort();
        deepEqual(perTask, [1, 2], jobs.join("\n"));
      },
    );
  } finally {
    const left = await squeueAll(c).catch(() => "");
    await c.close();
    if (left) console.warn(`jobs still queued at the end: ${left}`);
  }
});
