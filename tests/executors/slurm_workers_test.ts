// Multi-worker trials on Slurm: the workers of a trial are the tasks of one step (srun -n N),
// or of one batch job that runs them with srun, across the two nodes of the test cluster
// (tests/peers/slurm_cluster.ts, 2 fake GPUs per node), forming their ring over the nodes'
// addresses; each worker keeps network permission for its next neighbour alone.
import { equal, match, ok as assert } from "#assert";
import { grid, Tuner } from "../../mod.ts";
import { slurmExecutor } from "../../plugins/executors/slurm.ts";
import { slurmMissing, startSlurmCluster } from "../peers/slurm_cluster.ts";
import { hostileTrainable } from "../sandbox/_hostile.ts";
import { byConfig, captureWarnings, tempStorage } from "../_helpers.ts";

const missing = await slurmMissing();
if (missing) console.warn(`\n*** SKIPPING the Slurm multi-worker test: ${missing} ***\n`);
const PATH = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";

// Each rank fills its slots of a few arrays, which an all-reduce gathers for rank 0 to report:
// its node, its GPUs (CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS: Slurm's, through the sandbox) and
// what it may still reach once its ring is formed (its neighbour on the other node, and nothing
// else of what it was granted at launch: every node at both ring ports).
const BODY = `
  const w = session.worldSize, r = session.rank;
  const addr = (n: number) => "127.0.0." + (n + 1);
  const node = Number((Deno.env.get("SLURMD_NODENAME") ?? "n0").slice(1));
  const other = 3 - node;
  const next = (r + 1) % w;
  const q = (h: string) => Deno.permissions.querySync({ name: "net", host: h }).state;
  const reach = [
    q(addr(other) + ":" + (config.base + next)),
    q(addr(node) + ":" + (config.base + next)),
    q(addr(node) + ":" + (config.base + r)),
    q(addr(other) + ":" + (config.base + r)),
  ].join(" ");
  let elsewhere = "connected";
  try {
    (await Deno.connect({ hostname: addr(node), port: config.base + next })).close();
  } catch (e) {
    elsewhere = (e as Error).name;
  }
  const slots = new Float32Array(4 * w);
  slots[r] = node;
  slots[w + r] = Number(Deno.env.get("CUDA_VISIBLE_DEVICES") ?? -2) + 1;
  slots[2 * w + r] = Deno.env.get("SLURM_STEP_GPUS") === Deno.env.get("CUDA_VISIBLE_DEVICES") ? 1 : 0;
  slots[3 * w + r] = reach === "granted prompt prompt prompt" && elsewhere === "NotCapable" ? 1 : 0;
  await session.allreduce(slots);
  if (config.fail && r === 1) throw new Error("rank one gives up");
  const data = new Float32Array(100_001).fill(r + 1);
  await session.allreduce(data, "sum");
  const part = (i: number) => [...slots.subarray(i * w, (i + 1) * w)].join(",");
  await session.report({
    sum: data[100_000], world: w, nodes: part(0), gpus: part(1), stepGpus: part(2),
    narrowed: part(3), reach, elsewhere,
  });
`;

for (const mode of ["step", "sbatch"] as const) {
  Deno.test({
    name: `slurm ${mode} mode: a trial of 2 workers with a GPU each runs on both nodes, each ` +
      `worker reaching its ring neighbour alone`,
    ignore: missing !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    const c = await startSlurmCluster();
    try {
      const train = await hostileTrainable(BODY);
      const id = mode === "step"
        ? await c.allocate(["-N2", `-n${2 * c.cpusPerNode}`, `--gres=gpu:${c.gpusPerNode}`])
        : undefined;
      try {
        const commandEnv = {
          ...c.env,
          PATH,
          ...(id ? { SLURM_JOB_ID: id, SLURM_JOB_CPUS_PER_NODE: `${c.cpusPerNode}(x2)` } : {}),
        };
        const base = 30000 + Math.floor(Math.random() * 20000);
        const { value: r } = await captureWarnings(() =>
          new Tuner({
            trainable: train,
            space: { fail: grid([false, true]), base },
            metric: "sum",
            mode: "max",
            storage: Deno.makeTempDirSync(),
            maxConcurrent: 1,
            // 3 CPUs per worker on 4-CPU nodes: the two tasks land on different nodes.
            resources: { workers: 2, cpu: 3, gpu: 1 },
            executor: slurmExecutor(train, {
              mode,
              commandEnv,
              driverHost: "127.0.0.1",
              heartbeatMs: 3000,
              pollMs: 200,
              graceMs: 1000,
              ringPorts: base,
            }),
            reporter: false,
          }).fit()
        );
        const t = byConfig(r, "fail").get(false)!;
        equal(t.status, "terminated", t.error);
        equal(t.metrics?.sum, 3);
        equal(t.metrics?.world, 2);
        equal(String(t.metrics?.nodes).split(",").sort().join(","), "1,2");
        // One GPU per worker (--gpus-per-task=1): device 0 of each node, seen in the sandbox.
        equal(t.metrics?.gpus, "1,1");
        equal(t.metrics?.stepGpus, "1,1");
        // Rank 0 may reach rank 1's port on rank 1's node, and nothing else it was granted.
        equal(t.metrics?.reach, "granted prompt prompt prompt");
        equal(t.metrics?.elsewhere, "NotCapable");
        equal(t.metrics?.narrowed, "1,1");
        // A worker that fails fails the trial, named; srun ends the other task.
        const bad = byConfig(r, "fail").get(true)!;
        equal(bad.status, "error");
        match(bad.error!, /worker rank 1 of 2: Error: rank one gives up/);
      } finally {
        if (id) await c.run("scancel", [id]);
      }
      if (mode === "step") {
        // A fractional GPU per worker is refused before any trial runs.
        const g = await new Tuner({
          trainable: train,
          space: { x: 1 },
          metric: "sum",
          mode: "max",
          storage: await tempStorage(),
          resources: { workers: 2, gpu: 1.5 },
          executor: slurmExecutor(train, { commandEnv: { ...c.env, PATH }, mode: "sbatch" }),
          reporter: false,
        }).fit().then(() => undefined, (e) => e as Error);
        assert(g);
        match(g!.message, /fractional GPUs/);
      }
    } finally {
      await c.close();
    }
  });
}

Deno.test({
  name: "examples/09 (MNIST, 2 workers per trial, ASHA) runs inside salloc with EXECUTOR=slurm",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const c = await startSlurmCluster();
  try {
    const id = await c.allocate(["-N2", `-n${2 * c.cpusPerNode}`]);
    try {
      const storage = await tempStorage();
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../examples/09_data_parallel.ts", import.meta.url).pathname,
        ],
        env: {
          ...c.env,
          PATH,
          HOME: Deno.env.get("HOME") ?? "/root",
          SLURM_JOB_ID: id,
          SLURM_JOB_CPUS_PER_NODE: `${c.cpusPerNode}(x2)`,
          EXECUTOR: "slurm",
          DRIVER_HOST: "127.0.0.1",
          NUM_SAMPLES: "2",
          EPOCHS: "2",
          TRAIN_SIZE: "400",
          STORAGE: storage,
          NAME: "dp",
          NO_COLOR: "1",
        },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      equal(out.code, 0, text);
      match(text, /Best: val_loss \d+\.\d+, val_acc \d\.\d+ with 2 workers per trial/);
      const { ResultGrid } = await import("../../mod.ts");
      const g = await ResultGrid.load(`${storage}/dp`);
      equal(g.trials.length, 2);
      for (const t of g.trials) equal(t.status, "terminated", t.error);
      // Each trial was a step of the allocation, launched by the nodes' slurmd.
      const logs = await Promise.all(
        c.nodes.map((n) => Deno.readTextFile(`${c.dir}/log/slurmd-${n}.log`)),
      );
      const steps = new Set(logs.join("\n").match(new RegExp(`StepId=${id}\\.\\d+`, "g")));
      assert(steps.size >= 2, `steps of the allocation: ${[...steps]}`);
    } finally {
      await c.run("scancel", [id]);
    }
  } finally {
    await c.close();
  }
});
