// The Ray executor against a real two-node Ray cluster (tests/peers/ray_cluster.ts: head on
// 127.0.0.2, worker on 127.0.0.3, token auth on): one cluster for the whole file, stopped at the
// end even on failure. TUNEBOX_RAY_ONLY=<regex> runs only the matching steps. Each case runs real trials as Ray jobs and reads the outcome (trial
// status, error text, the node each trial ran on, Ray's own job records).
import { equal, match, ok as assert } from "#assert";
import { grid, ResultGrid, Tuner } from "../../mod.ts";
import { ashaScheduler } from "../../plugins/schedulers/mod.ts";
import { tableReporter } from "../../plugins/reporters/table.ts";
import { rayExecutor, type RayExecutorOptions } from "../../plugins/executors/ray.ts";
import { rayJobsClient } from "../../plugins/executors/_ray_client.ts";
import { peerPython, type RayCluster, rayMissing, startRayCluster } from "../peers/ray_cluster.ts";
import { hostileTrainable } from "../sandbox/_hostile.ts";
import { byConfig, captureWarnings, tempStorage } from "../_helpers.ts";
import { tfjsBackend } from "../../plugins/backends/tfjs/permissions.ts";
import { writeMnistCache } from "../../plugins/backends/mnist.ts";
import { dirname } from "node:path";

const missing = await rayMissing();
if (missing) console.warn(`\n*** SKIPPING the Ray executor tests: ${missing} ***\n`);

function executor(c: RayCluster, train: string, o: RayExecutorOptions = {}) {
  return rayExecutor(train, {
    address: c.address,
    token: c.token,
    driverHost: "127.0.0.1",
    heartbeatMs: 5000,
    pollMs: 250,
    graceMs: 1000,
    probe: false,
    ...o,
  });
}

/** The nodes the table reporter showed for each trial id. */
function nodesOf(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of lines.join("").split("\n")) {
    const m = /^(\S+_\d{5})\s+\S+\s+(127\.0\.0\.\d)\b/.exec(l.trim());
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/**
 * A folder holding the PyPI wheel of this Deno (`pip download`, once, into the user's cache), for
 * `deno: "pip"` without network on the nodes.
 */
async function denoWheel(): Promise<string> {
  const home = Deno.env.get("HOME") ?? "/tmp";
  const dir = `${Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`}/tunebox/wheels`;
  const have = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
  if (have.some((e) => e.name.startsWith(`deno-${Deno.version.deno}-`))) return dir;
  const out = await new Deno.Command(peerPython(), {
    args: ["-m", "pip", "download", "--no-deps", `deno==${Deno.version.deno}`, "-d", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `cannot download the deno==${Deno.version.deno} wheel into ${dir} for the deno: "pip" ` +
        `test: ${new TextDecoder().decode(out.stderr).trim().split("\n").pop()}`,
    );
  }
  return dir;
}

/** Our jobs Ray still counts as PENDING or RUNNING. */
async function liveJobs(c: RayCluster): Promise<{ id: string; status: string }[]> {
  return (await ourJobs(c)).filter((j) => j.status === "PENDING" || j.status === "RUNNING");
}

async function ourJobs(c: RayCluster): Promise<{ id: string; status: string }[]> {
  const ray = rayJobsClient(c.address, c.token);
  return (await ray.list()).filter((j) => j.submission_id.startsWith("tunebox-"))
    .map((j) => ({ id: j.submission_id, status: j.status }));
}

async function until(
  what: string,
  ok: () => Promise<boolean>,
  ms = 120_000,
  c?: RayCluster,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // The dashboard answers 500 now and then under load: ask again.
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  const jobs = c ? JSON.stringify(await ourJobs(c)) : "";
  throw new Error(`timed out waiting for ${what} ${jobs}`);
}

Deno.test({
  name: "ray executor on a real two-node cluster",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const c = await startRayCluster();
  // TUNEBOX_RAY_ONLY=<regex> runs only the steps whose names match (the cluster is heavy).
  const only = Deno.env.get("TUNEBOX_RAY_ONLY");
  const step = (name: string, fn: () => Promise<void>) =>
    t.step({ name, fn, ignore: only ? !new RegExp(only).test(name) : false });
  try {
    await step("a missing or wrong token fails before any trial, in one line", async () => {
      const train = await hostileTrainable(`await session.report({ loss: 1 });`);
      for (const token of [undefined, "not-the-token"]) {
        const storage = await tempStorage();
        const err = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          storage,
          name: "auth",
          executor: rayExecutor(train, {
            address: c.address,
            ...(token ? { token } : {}),
            driverHost: "127.0.0.1",
          }),
          reporter: false,
        }).fit().then(() => undefined, (e) => e as Error);
        assert(err, `token ${token} was accepted`);
        match(
          err!.message,
          token ? /Invalid authentication token/ : /Missing authentication token/,
        );
        match(err!.message, /rayExecutor\(\{ token \}\) or set RAY_AUTH_TOKEN/);
        equal(err!.message.includes("\n"), false, err!.message);
        const trials = await Array.fromAsync(Deno.readDir(`${storage}/auth`)).catch(() => []);
        equal(trials.filter((e) => e.isDirectory && /_\d{5}$/.test(e.name)).length, 0);
      }
      equal((await ourJobs(c)).length, 0);
    });

    await step(
      "a probe job checks Deno on the nodes; custom resources place trials on each node, GPUs get CUDA_VISIBLE_DEVICES",
      async () => {
        const train = await hostileTrainable(`
        await session.report({ loss: config.x, cuda: Deno.env.get("CUDA_VISIBLE_DEVICES") ?? "unset",
          token: Deno.env.get("RAY_AUTH_TOKEN") ?? "none", ray: Deno.env.get("RAY_ADDRESS") ?? "none" });
      `);
        for (
          const [custom, ip, gpu] of [["node1", "127.0.0.2", 0], [
            "node2",
            "127.0.0.3",
            0.5,
          ]] as const
        ) {
          const lines: string[] = [];
          const r = await new Tuner({
            trainable: train,
            space: { x: grid([1, 2, 3]) },
            metric: "loss",
            mode: "min",
            storage: await tempStorage(),
            resources: { cpu: 1, gpu, custom: { [custom]: 1 } },
            // Allowed by the sandbox, unset in the driver: only Ray's environment could set them.
            sandbox: { env: ["RAY_AUTH_TOKEN", "RAY_ADDRESS"] },
            executor: executor(c, train, { probe: custom === "node1" }),
            reporter: tableReporter({ write: (s: string) => lines.push(s), live: false }),
          }).fit();
          const nodes = nodesOf(lines);
          for (const x of r.trials) {
            equal(x.status, "terminated", x.error);
            equal(nodes.get(x.id), ip, `${x.id} ran on ${nodes.get(x.id)}: ${lines.join("")}`);
            // Ray's environment (its token included) never reaches the trial.
            equal(x.metrics?.token, "none");
            equal(x.metrics?.ray, "none");
            if (gpu) match(String(x.metrics?.cuda), /^[01]$/);
            else equal(x.metrics?.cuda, "");
          }
        }
      },
    );

    await step("ASHA stops Ray jobs early, and no job is left running", async () => {
      const train = await hostileTrainable(`
        for (let i = 1; i <= 8; i++) await session.report({ loss: config.x / i });
      `);
      const r = await new Tuner({
        trainable: train,
        space: { x: grid([1, 2, 3, 4, 5, 6]) },
        metric: "loss",
        mode: "min",
        storage: await tempStorage(),
        scheduler: ashaScheduler({ maxT: 8, gracePeriod: 1, reductionFactor: 2 }),
        // Two at a time: the later (worse) trials meet the rung results of the earlier ones.
        maxConcurrent: 2,
        resources: { cpu: 1 },
        executor: executor(c, train),
        reporter: false,
      }).fit();
      const stopped = r.trials.filter((x) => x.iterations < 8);
      assert(stopped.length >= 2, `ASHA stopped ${stopped.length} trials`);
      for (const x of r.trials) equal(x.status, "terminated", x.error);
      await until(
        "every job to end",
        async () => (await liveJobs(c)).length === 0,
        120_000,
        c,
      );
    });

    await step(
      "a trial that fails fails over from its checkpoint on shared storage",
      async () => {
        const train = new URL("../fixtures/flaky.ts", import.meta.url).pathname;
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          maxFailures: 1,
          executor: executor(c, train),
          reporter: false,
        }).fit();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.iterations, 4);
          equal(x.metrics?.restored_from, 1, "the retry restored the checkpoint of iteration 2");
        }
      },
    );

    await step("a job no node can place fails at once naming the resource", async () => {
      const train = await hostileTrainable(`await session.report({ loss: 1 });`);
      const err = await new Tuner({
        trainable: train,
        space: { x: grid([1]) },
        metric: "loss",
        mode: "min",
        storage: await tempStorage(),
        resources: { cpu: 1, custom: { tpu_v9: 1 } },
        executor: executor(c, train),
        reporter: false,
      }).fit().then(() => undefined, (e) => e as Error);
      assert(err, "an unplaceable trial was not refused");
      match(err!.message, /Ray cannot place trial .*no node has the resource "tpu_v9" \(asked 1\)/);
      const big = await new Tuner({
        trainable: train,
        space: { x: grid([1]) },
        metric: "loss",
        mode: "min",
        storage: await tempStorage(),
        resources: { cpu: 64 },
        executor: executor(c, train),
        reporter: false,
      }).fit().then(() => undefined, (e) => e as Error);
      match(big?.message ?? "", /asked 64 "CPU" but the largest node has 4/);
    });

    await step(
      "a PENDING job past pendingTimeoutMs fails its trial; stopped while PENDING, it does not run on",
      async () => {
        // Trial 1 takes all of node2's "slot"; trial 2 waits PENDING for it and times out. Ray
        // does not cancel a PENDING job on stop: it runs it once trial 1 ends, and the driver
        // must refuse that late trial's token, then delete the job. Trial 1 reports until trial 2
        // has ended (however long Ray takes to place trial 1 under load), then is stopped.
        const train = await hostileTrainable(`
        for (let i = 0; i < 600; i++) {
          await session.report({ loss: config.x });
          await new Promise((r) => setTimeout(r, 500));
        }
      `);
        const warnings: string[] = [];
        const ended = new Set<string>();
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          resources: { cpu: 1, custom: { node2: 100 } },
          maxConcurrent: 2,
          stop: (id) => [...ended].some((x) => x !== id),
          callbacks: [{ name: "ends", onTrialEnd: (e) => void ended.add(e.trial.id) }],
          executor: executor(c, train, {
            pendingTimeoutMs: 60_000,
            log: (m) => warnings.push(m),
          }),
          reporter: false,
        }).fit();
        // Whichever Ray placed first ran; the other waited and timed out.
        const one = r.trials.find((x) => x.status === "terminated");
        const two = r.trials.find((x) => x.status !== "terminated");
        assert(one && two, JSON.stringify(r.trials.map((x) => [x.status, x.error])));
        equal(two!.status, "error");
        match(two!.error ?? "", /Ray did not place trial .* within 60000 ms/);
        match(two!.error ?? "", /"node2":100/);
        // Ray ends the stopped job (STOPPED) or runs it late; then the driver stops it again
        // (and refuses its trial's token); either way the job is deleted.
        await until("the late job to end", async () => {
          const jobs = await liveJobs(c);
          return jobs.length === 0;
        }, 90_000);
      },
    );

    await step(
      "the trainable's folder is shipped as a working_dir package without shared storage",
      async () => {
        const train = await hostileTrainable(
          `
        const data = await Deno.readTextFile(new URL("./data.txt", import.meta.url));
        console.log("read", data.trim(), "in", Deno.cwd());
        await Deno.writeTextFile("out.txt", "x");
        await session.report({ loss: Number(data) * config.x, here: import.meta.url });
      `,
          { files: { "data.txt": "21\n" } },
        );
        const warnings: string[] = [];
        const run = async () =>
          await new Tuner({
            trainable: train,
            space: { x: grid([1, 2]) },
            metric: "loss",
            mode: "min",
            storage: await tempStorage(),
            executor: executor(c, train, { sharedStorage: false, log: (m) => warnings.push(m) }),
            reporter: false,
          }).fit();
        const r = await run();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.metrics?.loss, 21 * Number(x.config.x));
          // It ran from the unpacked package, not from the driver's file.
          match(
            String(x.metrics?.here),
            /runtime_resources\/working_dir_files\/_ray_pkg_[0-9a-f]+\//,
          );
          const out = await Deno.readTextFile(`${x.path}/stdout.log`);
          const cwd = /read 21 in (\/tmp\/tunebox-\S+)/.exec(out)?.[1];
          assert(cwd, out);
          // The trial's temp folder on its node is gone once the trial ended.
          equal(await Deno.stat(cwd!).then(() => true, () => false), false, `${cwd} is left`);
        }
        match(
          warnings.join("\n"),
          /shipping the trainable as Ray package gcs:\/\/_ray_pkg_\w+\.zip .*uploaded\)/,
        );
        // The same contents again: the package is not uploaded twice.
        warnings.length = 0;
        await run();
        match(warnings.join("\n"), /already on the cluster/);
      },
    );

    await step(
      "without shared storage, a running trial's output reaches its stdout.log live (Ray's /logs/tail)",
      async () => {
        // The trial prints and reports until the driver sees its first line in stdout.log, which
        // only a live log can show before the trial ends (it would run 600 reports otherwise).
        const train = await hostileTrainable(`
        for (let i = 0; i < 600; i++) {
          console.log("live line " + i);
          await session.report({ loss: i });
          await new Promise((r) => setTimeout(r, 100));
        }
      `);
        const storage = await tempStorage();
        let seenAt = -1;
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          storage,
          name: "live",
          stop: (id, result) => {
            let log = "";
            try {
              log = Deno.readTextFileSync(`${storage}/live/${id}/stdout.log`);
            } catch { /* not written yet */ }
            if (seenAt < 0 && log.includes("live line 0")) seenAt = result.training_iteration;
            return seenAt >= 0;
          },
          executor: executor(c, train, { sharedStorage: false, log: () => {} }),
          reporter: false,
        }).fit();
        const x = r.trials[0];
        equal(x.status, "terminated", x.error);
        assert(seenAt > 0 && x.iterations < 600, `seen at ${seenAt}, ran ${x.iterations}`);
        // Once the job ended, the whole output is there, each line once.
        const log = await Deno.readTextFile(`${x.path}/stdout.log`);
        for (let i = 0; i < x.iterations; i++) {
          equal(log.split(`live line ${i}\n`).length, 2, `line ${i} once in:\n${log}`);
        }
      },
    );

    await step(
      "without shared storage, checkpoints stream to the driver and back: a failed trial fails over from one",
      async () => {
        // Fails once, at iteration 2 of its first run (a retry runs in a fresh folder on its
        // node, so the only memory of the first run is the checkpoint the driver streams back).
        const train = await hostileTrainable(`
        let restoredFrom = -1, intact = true;
        if (session.checkpoint) {
          restoredFrom = JSON.parse(await Deno.readTextFile(session.checkpoint + "/state.json")).i;
          const w = await Deno.readFile(session.checkpoint + "/weights/w.bin");
          intact = w.length === 1_500_000 && w.every((b, k) => b === (k * 31 + restoredFrom) % 256);
        }
        for (let i = session.iteration; i < 4; i++) {
          if (i === 2 && restoredFrom < 0) throw new Error("transient failure");
          await session.report({ loss: config.x + i, restored_from: restoredFrom, intact }, {
            checkpoint: async (dir) => {
              await Deno.writeTextFile(dir + "/state.json", JSON.stringify({ i }));
              await Deno.mkdir(dir + "/weights");
              await Deno.writeFile(dir + "/weights/w.bin",
                new Uint8Array(1_500_000).map((_, k) => (k * 31 + i) % 256));
            },
          });
        }
      `);
        const storage = await tempStorage();
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2]) },
          metric: "loss",
          mode: "min",
          storage,
          name: "streamed",
          maxFailures: 1,
          executor: executor(c, train, { sharedStorage: false, log: () => {} }),
          reporter: false,
        }).fit();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.iterations, 4);
          equal(x.metrics?.restored_from, 1, "the retry restored the checkpoint of iteration 2");
          equal(x.metrics?.intact, true, "the restored checkpoint arrived bit for bit");
          // Every checkpoint is in the driver's experiment folder, as with shared storage.
          for (const i of [0, 1, 2, 3]) {
            const ck = `${x.path}/checkpoint_${String(i + 1).padStart(6, "0")}`;
            equal(JSON.parse(await Deno.readTextFile(`${ck}/state.json`)).i, i);
            equal((await Deno.stat(`${ck}/weights/w.bin`)).size, 1_500_000);
          }
        }
        // A checkpoint over checkpointMaxBytes fails its trial, saying so.
        const over = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          storage,
          name: "too-big",
          executor: executor(c, train, {
            sharedStorage: false,
            checkpointMaxBytes: 1_000_000,
            log: () => {},
          }),
          reporter: false,
        }).fit();
        equal(over.trials[0].status, "error");
        match(over.trials[0].error ?? "", /a checkpoint is larger than 1000000 bytes/);
      },
    );

    await step(
      'deno: "pip" lets Ray install Deno per job (from a wheel folder: denoPipOptions), probe included',
      async () => {
        const wheels = await denoWheel();
        const train = await hostileTrainable(
          `await session.report({ loss: config.x, exe: Deno.execPath(), v: Deno.version.deno });`,
        );
        const warnings: string[] = [];
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          // Deno.execPath() needs read on the binary: Ray's runtime_env lives in the cluster's dir.
          sandbox: { read: [c.dir] },
          // One node: Ray builds the job's virtualenv once per node (the probe runs on the head).
          resources: { cpu: 1, custom: { node1: 1 } },
          executor: executor(c, train, {
            deno: "pip",
            denoPipOptions: ["--no-index", "--find-links", wheels],
            probe: true,
            log: (m) => warnings.push(m),
          }),
          reporter: false,
        }).fit();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.metrics?.v, Deno.version.deno);
          // The Deno of the job's virtualenv, not one on the nodes' PATH.
          match(String(x.metrics?.exe), /runtime_resources\/pip\/[^/]+\/virtualenv\/bin\/deno$/);
        }
        // A version PyPI (here: the wheel folder) does not have: the probe says what to do.
        const err = await new Tuner({
          trainable: train,
          space: { x: grid([1]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          executor: executor(c, train, {
            deno: "pip",
            denoVersion: "0.0.1",
            denoPipOptions: ["--no-index", "--find-links", wheels],
            probe: true,
            log: () => {},
          }),
          reporter: false,
        }).fit().then(() => undefined, (e) => e as Error);
        match(
          err?.message ?? "",
          /Deno does not run on the Ray cluster .*deno==0\.0\.1 from PyPI/s,
        );
      },
    );

    await step(
      "the examples' MNIST trainable trains on the cluster with ASHA, the tfjs backend's env and checkpoints",
      async () => {
        const storage = await tempStorage();
        const dataDir = dirname(await writeMnistCache(`${storage}/mnist_data`));
        const train = new URL("../../examples/mnist_trainable.ts", import.meta.url).pathname;
        const lines: string[] = [];
        const r = await new Tuner({
          trainable: train,
          space: {
            layer_1: 32,
            layer_2: 64,
            lr: grid([3e-3, 1e-2]),
            batch_size: 64,
            epochs: 2,
            train_size: 600,
            data_dir: dataDir,
          },
          metric: "val_loss",
          mode: "min",
          storage,
          scheduler: ashaScheduler({ maxT: 2, gracePeriod: 1, reductionFactor: 2 }),
          resources: { cpu: 1 },
          // The native backend when it is built (FFI on its binding), else wasm; its env() (TF_*)
          // travels with the job.
          backend: tfjsBackend({ native: true }),
          sandbox: { read: [dataDir] },
          executor: executor(c, train),
          reporter: tableReporter({ write: (s: string) => lines.push(s), live: false }),
        }).fit();
        const nodes = nodesOf(lines);
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          assert(x.iterations >= 1);
          match(String(nodes.get(x.id)), /^127\.0\.0\.[23]$/);
          const first = r.history(x.id)[0];
          match(String(first.backend), /^(tensorflow|wasm)$/);
          assert(Number(x.metrics?.val_acc) > 0.3, `val_acc ${x.metrics?.val_acc}`);
          const cks = (await Array.fromAsync(Deno.readDir(x.path!)))
            .filter((e) => e.name.startsWith("checkpoint_"));
          equal(cks.length, x.iterations, "every epoch checkpointed the model");
        }
      },
    );

    await step(
      "a trial of 2 workers is 2 Ray jobs: on both nodes, on 2 GPUs of one node, exact all-reduce, a failing worker named",
      async () => {
        const train = await hostileTrainable(`
        const data = new Float32Array(100_001).fill(session.rank + 1);
        await session.allreduce(data, "sum");
        if (config.fail && session.rank === 1) throw new Error("rank one gives up");
        // The sandbox grants the driver and the ring's ports only: Ray's dashboard is refused.
        let denied = "no";
        try { (await Deno.connect({ hostname: "127.0.0.1", port: ${
          Number(new URL(c.address).port)
        } })).close(); }
        catch (e) { denied = (e as Error).name; }
        const cuda = new Float32Array(2);
        cuda[session.rank] = Number(Deno.env.get("CUDA_VISIBLE_DEVICES") || -1);
        await session.allreduce(cuda);
        if (session.rank > 0) await Deno.writeTextFile(session.trialDir + "/ran", "1");
        await session.report({ sum: data[100_000], first: data[0], world: session.worldSize,
          denied, local: session.localRank, cuda: [...cuda].join(",") });
      `);
        const run = async (resources: Record<string, unknown>, fail: boolean[]) => {
          const lines: string[] = [];
          const storage = await tempStorage();
          const r = await new Tuner({
            trainable: train,
            space: { fail: grid(fail) },
            metric: "sum",
            mode: "max",
            storage,
            maxConcurrent: 1,
            resources,
            executor: executor(c, train),
            reporter: tableReporter({ write: (s: string) => lines.push(s), live: false }),
          }).fit();
          return { r, table: lines.join("") };
        };
        // 3 CPUs per worker on 4-CPU nodes: Ray puts the two jobs on different nodes.
        const spread = await run({ workers: 2, cpu: 3 }, [false, true]);
        const t = byConfig(spread.r, "fail").get(false)!;
        equal(t.status, "terminated", t.error);
        equal(t.metrics?.sum, 3);
        equal(t.metrics?.first, 3);
        equal(t.metrics?.world, 2);
        equal(t.metrics?.local, 0);
        match(String(t.metrics?.denied), /NotCapable|PermissionDenied/);
        match(
          spread.table,
          new RegExp(`${t.id}\\s+\\S+\\s+127\\.0\\.0\\.(2,127\\.0\\.0\\.3|3,127\\.0\\.0\\.2)`),
        );
        equal(spread.r.history(t.id).length, 1, "rank 1's report is not recorded");
        equal(await Deno.readTextFile(`${t.path}/files/rank_1/ran`), "1");
        assert(await Deno.stat(`${t.path}/stdout_rank1.log`).then(() => true, () => false));
        const bad = byConfig(spread.r, "fail").get(true)!;
        equal(bad.status, "error");
        match(bad.error!, /worker rank 1 of 2: Error: rank one gives up/);
        // One GPU each on the node with two: Ray gives each worker's job its own device.
        const gpus = await run({ workers: 2, cpu: 1, gpu: 1, custom: { node2: 1 } }, [false]);
        const g = gpus.r.trials[0];
        equal(g.status, "terminated", g.error);
        equal(String(g.metrics?.cuda).split(",").sort().join(","), "0,1");
        equal(g.metrics?.local, 0);
        match(gpus.table, new RegExp(`${g.id}\\s+\\S+\\s+127\\.0\\.0\\.3,127\\.0\\.0\\.3`));
        await until("every job to end", async () => (await liveJobs(c)).length === 0, 120_000, c);
      },
    );

    await step(
      "2-worker trials: no room for both is refused at once, a PENDING worker times out, ASHA stops both jobs, a killed worker fails over",
      async () => {
        const train = new URL("../fixtures/workers.ts", import.meta.url).pathname;
        const base = {
          trainable: train,
          metric: "loss",
          mode: "min" as const,
          reporter: false as const,
        };
        // node2 has 100 of "node2": one worker asking 60 fits, two never do at once.
        const none = await new Tuner({
          ...base,
          space: { behavior: "steps", n: 1, x: 1, iters: 1 },
          storage: await tempStorage(),
          resources: { workers: 2, cpu: 1, custom: { node2: 60 } },
          executor: executor(c, train),
        }).fit().then(() => undefined, (e) => e as Error);
        match(
          none?.message ?? "",
          /Ray cannot place the 2 workers of trial .*"node2":60.*hold at most 1 such jobs at once/,
        );
        // Without the check, one worker is placed and waits; the other stays PENDING until
        // pendingTimeoutMs, which fails the trial and stops the placed one's job.
        const pending = await new Tuner({
          ...base,
          space: { behavior: "steps", n: 1, x: 1, iters: 1 },
          storage: await tempStorage(),
          resources: { workers: 2, cpu: 1, custom: { node2: 60 } },
          // Long enough for Ray to start the placed worker's job under load.
          executor: executor(c, train, { checkPlacement: false, pendingTimeoutMs: 20_000 }),
        }).fit();
        equal(pending.trials[0].status, "error");
        match(
          pending.trials[0].error!,
          /worker rank [01] of 2: Ray did not place .*"node2":60.*1 of the trial's 2 workers were placed/s,
        );
        await until(
          "the placed worker's job to end",
          async () => (await liveJobs(c)).length === 0,
          120_000,
          c,
        );
        // ASHA stops trials of 2 workers: both jobs of each stopped trial end.
        const storage = await tempStorage();
        const asha = await new Tuner({
          ...base,
          space: { behavior: "steps", n: 1, x: grid([1, 2, 3, 4]), iters: 6 },
          storage,
          scheduler: ashaScheduler({ maxT: 6, gracePeriod: 1, reductionFactor: 2 }),
          maxConcurrent: 2,
          resources: { workers: 2, cpu: 1 },
          executor: executor(c, train),
        }).fit();
        const stopped = asha.trials.filter((x) => x.iterations < 6);
        assert(stopped.length >= 1, `ASHA stopped ${stopped.length} trials`);
        for (const x of asha.trials) equal(x.status, "terminated", x.error);
        await until("every job to end", async () => (await liveJobs(c)).length === 0, 120_000, c);
        for (const x of stopped) {
          const far = Number(await Deno.readTextFile(`${x.path}/files/rank_1/progress`));
          assert(far < 6, `rank 1 of stopped trial ${x.id} ran on to ${far}`);
        }
        // A worker killed with SIGKILL in the middle of all-reducing fails the trial at once;
        // the retry resumes from rank 0's checkpoint.
        const kstore = await tempStorage();
        const killer = (async () => {
          for (;;) {
            const names = await Array.fromAsync(Deno.readDir(`${kstore}/kill`)).catch(() => []);
            for (const e of names) {
              const pid = await Deno.readTextFile(`${kstore}/kill/${e.name}/files/rank_1/pid`)
                .catch(() => "");
              if (pid) return Deno.kill(Number(pid), "SIGKILL");
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
        const { value: killed, warnings } = await captureWarnings(() =>
          new Tuner({
            ...base,
            space: { behavior: "kill", n: 200_000, x: 0, iters: 4 },
            storage: kstore,
            name: "kill",
            maxFailures: 1,
            trialTimeoutMs: 300_000,
            resources: { workers: 2, cpu: 1 },
            executor: executor(c, train),
          }).fit()
        );
        await killer;
        const k = killed.trials[0];
        equal(k.status, "terminated", k.error);
        const history = killed.history(k.id);
        equal(history.map((r) => r.training_iteration).join(), "1,2,3,4");
        equal(history[2].restored_from, 1);
        match(
          warnings.join("\n"),
          /worker rank [01] of 2: .*(exit code 137|FAILED|rank 1 left the ring|left the ring)/s,
        );
        await until("every job to end", async () => (await liveJobs(c)).length === 0, 120_000, c);
      },
    );

    await step(
      "trialsPerJob: one Ray job runs several trials, each its own sandboxed process; a failed or stopped trial leaves the job to the next",
      async () => {
        const train = await hostileTrainable(`
        let read = "no";
        try { Deno.readTextFileSync("/etc/passwd"); } catch (e) { read = (e as Error).name; }
        for (let i = 1; i <= 6; i++) {
          if (config.x === 3) throw new Error("three gives up");
          await session.report({ loss: config.x / i, ppid: Deno.ppid, pid: Deno.pid, read,
            token: Deno.env.get("RAY_AUTH_TOKEN") ?? "none" });
        }
      `);
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2, 3, 4, 5, 6]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          scheduler: ashaScheduler({ maxT: 6, gracePeriod: 1, reductionFactor: 2 }),
          maxConcurrent: 2,
          resources: { cpu: 1 },
          sandbox: { env: ["RAY_AUTH_TOKEN"] },
          executor: executor(c, train, { trialsPerJob: 8 }),
          reporter: false,
        }).fit();
        const bad = byConfig(r, "x").get(3)!;
        equal(bad.status, "error");
        match(bad.error!, /three gives up/);
        const good = r.trials.filter((x) => x.config.x !== 3);
        for (const x of good) {
          equal(x.status, "terminated", x.error);
          match(String(x.metrics?.read), /NotCapable|PermissionDenied/);
          equal(x.metrics?.token, "none");
        }
        assert(good.some((x) => x.iterations < 6), "ASHA stopped a pooled trial");
        // The trials' parent is the launcher of their job: two jobs (two at a time) for 6 trials,
        // each trial a process of its own.
        const launchers = new Set(good.map((x) => x.metrics?.ppid));
        assert(launchers.size <= 2, `${launchers.size} launchers for ${good.length} trials`);
        equal(new Set(good.map((x) => x.metrics?.pid)).size, good.length);
        await until("every job to end", async () => (await liveJobs(c)).length === 0, 60_000, c);
      },
    );

    await step(
      "trialsPerJob without shared storage: pooled trials' output and checkpoints come to the driver",
      async () => {
        const train = await hostileTrainable(`
        console.log("hello from " + config.x);
        for (let i = session.iteration; i < 2; i++) {
          await session.report({ loss: config.x },
            { checkpoint: (dir) => Deno.writeTextFile(dir + "/s.txt", String(i)) });
        }
      `);
        // The pooled jobs Ray runs meanwhile (a trial's parent here is its job's shell, not the
        // launcher: the shell stays to remove the trial's temp folder).
        const pools = new Set<string>();
        let watching = true;
        const watch = (async () => {
          while (watching) {
            for (const j of await liveJobs(c).catch(() => [])) {
              if (j.id.includes("-pool-")) pools.add(j.id);
            }
            await new Promise((r) => setTimeout(r, 250));
          }
        })();
        const r = await new Tuner({
          trainable: train,
          space: { x: grid([1, 2, 3]) },
          metric: "loss",
          mode: "min",
          storage: await tempStorage(),
          maxConcurrent: 1,
          resources: { cpu: 1 },
          executor: executor(c, train, {
            sharedStorage: false,
            trialsPerJob: 4,
            log: () => {},
          }),
          reporter: false,
        }).fit();
        for (const x of r.trials) {
          equal(x.status, "terminated", x.error);
          equal(x.iterations, 2);
          match(
            await Deno.readTextFile(`${x.path}/stdout.log`),
            new RegExp(`hello from ${x.config.x}`),
          );
          const cks = (await Array.fromAsync(Deno.readDir(x.path!)))
            .filter((e) => e.name.startsWith("checkpoint_"));
          assert(cks.length >= 1, `${x.id} has no checkpoint on the driver`);
        }
        watching = false;
        await watch;
        equal(pools.size, 1, `one job ran the three trials: ${[...pools]}`);
        await until("every job to end", async () => (await liveJobs(c)).length === 0, 60_000, c);
      },
    );

    await step(
      "a driver killed with SIGKILL: resume stops its stale jobs and finishes the experiment",
      async () => {
        const storage = await tempStorage();
        const train = new URL("../fixtures/slow.ts", import.meta.url).pathname;
        const script = `${storage}/driver.ts`;
        const mod = new URL("../../mod.ts", import.meta.url).href;
        const ray = new URL("../../plugins/executors/ray.ts", import.meta.url).href;
        await Deno.writeTextFile(
          script,
          `import { grid, Tuner } from ${JSON.stringify(mod)};\n` +
            `import { rayExecutor } from ${JSON.stringify(ray)};\n` +
            `await new Tuner({ trainable: ${
              JSON.stringify(train)
            }, space: { x: grid([1, 2, 3]) },\n` +
            `  metric: "loss", mode: "min", storage: ${
              JSON.stringify(storage)
            }, name: "killed",\n` +
            `  executor: rayExecutor(${JSON.stringify(train)}, { address: ${
              JSON.stringify(c.address)
            },\n` +
            `    token: ${JSON.stringify(c.token)}, driverHost: "127.0.0.1", probe: false,\n` +
            `    heartbeatMs: 60000, pollMs: 250 }),\n` +
            `  reporter: false }).fit();\n`,
        );
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", script],
          stdout: "null",
          stderr: "null",
        }).spawn();
        const dir = `${storage}/killed`;
        await until("a trial to checkpoint on the cluster", async () => {
          const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
          for (const e of entries.filter((x) => x.isDirectory && /_\d{5}$/.test(x.name))) {
            const cks = await Array.fromAsync(Deno.readDir(`${dir}/${e.name}`));
            if (cks.some((x) => x.name.startsWith("checkpoint_"))) return true;
          }
          return false;
        });
        child.kill("SIGKILL");
        await child.status;
        const stale = (await ourJobs(c)).filter((j) =>
          j.status === "RUNNING" || j.status === "PENDING"
        );
        assert(stale.length > 0, "jobs were running when the driver died");
        const warnings: string[] = [];
        const tuner = await Tuner.restore(dir, {
          executor: executor(c, train, { log: (m) => warnings.push(m) }),
          reporter: false,
        });
        const after = await tuner.fit();
        for (const x of after.trials) equal(x.status, "terminated", `${x.id}: ${x.error}`);
        equal(after.trials.length, 3);
        for (const j of stale) match(warnings.join("\n"), new RegExp(`stopping Ray job ${j.id}`));
        const loaded = await ResultGrid.load(dir);
        assert(
          loaded.trials.some((x) => loaded.history(x.id).some((h) => h.resumed_at === 1)),
          "a trial continued from its checkpoint",
        );
        // The stale jobs were stopped: Ray ends them (under load it may take a while to say so).
        await until(
          "the stale jobs to end",
          async () => {
            const live = new Set((await liveJobs(c)).map((j) => j.id));
            return stale.every((j) => !live.has(j.id));
          },
          240_000,
          c,
        );
      },
    );
  } finally {
    await c.close();
  }
});
