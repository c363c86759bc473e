// Multi-worker trials on Slurm: the workers of a trial are the tasks of one step (srun -n N),
// across the two nodes of the test cluster (tests/peers/slurm_cluster.ts), forming their ring
// over the nodes' addresses.
import { equal, match, ok as assert } from "#assert";
import { grid, Tuner } from "../../mod.ts";
import { slurmExecutor } from "../../plugins/executors/slurm.ts";
import { slurmMissing, startSlurmCluster } from "../peers/slurm_cluster.ts";
import { hostileTrainable } from "../sandbox/_hostile.ts";
import { byConfig, captureWarnings, tempStorage } from "../_helpers.ts";

const missing = await slurmMissing();
if (missing) console.warn(`\n*** SKIPPING the Slurm multi-worker test: ${missing} ***\n`);
const PATH = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";

Deno.test({
  name:
    "slurm step mode: a trial of 2 workers is one step of 2 tasks on both nodes, ring across them",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const c = await startSlurmCluster();
  try {
    const train = await hostileTrainable(`
      // Slot r holds rank r's node number: after the all-reduce rank 0 knows where both ran.
      const where = new Float32Array(session.worldSize);
      where[session.rank] = Number((Deno.env.get("SLURMD_NODENAME") ?? "n0").slice(1));
      await session.allreduce(where);
      if (config.fail && session.rank === 1) throw new Error("rank one gives up");
      const data = new Float32Array(100_001).fill(session.rank + 1);
      await session.allreduce(data, "sum");
      await session.report({ sum: data[100_000], world: session.worldSize, nodes: [...where].join(",") });
    `);
    const id = await c.allocate(["-N2", `-n${2 * c.cpusPerNode}`]);
    try {
      const commandEnv = {
        ...c.env,
        PATH,
        SLURM_JOB_ID: id,
        SLURM_JOB_CPUS_PER_NODE: `${c.cpusPerNode}(x2)`,
      };
      const { value: r } = await captureWarnings(() =>
        new Tuner({
          trainable: train,
          space: { fail: grid([false, true]) },
          metric: "sum",
          mode: "max",
          storage: Deno.makeTempDirSync(),
          maxConcurrent: 1,
          // 3 CPUs per worker on 4-CPU nodes: the two tasks land on different nodes.
          resources: { workers: 2, cpu: 3 },
          executor: slurmExecutor(train, {
            commandEnv,
            driverHost: "127.0.0.1",
            heartbeatMs: 3000,
            pollMs: 200,
            graceMs: 1000,
          }),
          reporter: false,
        }).fit()
      );
      const t = byConfig(r, "fail").get(false)!;
      equal(t.status, "terminated", t.error);
      equal(t.metrics?.sum, 3);
      equal(t.metrics?.world, 2);
      equal(String(t.metrics?.nodes).split(",").sort().join(","), "1,2");
      // A worker that fails fails the trial, named; srun ends the other task.
      const bad = byConfig(r, "fail").get(true)!;
      equal(bad.status, "error");
      match(bad.error!, /worker rank 1 of 2: Error: rank one gives up/);
    } finally {
      await c.run("scancel", [id]);
    }
    // The batch mode runs one worker per trial: asking it for more is refused up front.
    const e = await new Tuner({
      trainable: train,
      space: { x: 1 },
      metric: "sum",
      mode: "max",
      storage: await tempStorage(),
      resources: { workers: 2 },
      executor: slurmExecutor(train, { commandEnv: { ...c.env, PATH }, mode: "sbatch" }),
      reporter: false,
    }).fit().then(() => undefined, (e) => e as Error);
    assert(e);
    match(e!.message, /resources\.workers is 2, but the "slurm" executor runs one worker/);
    const g = await new Tuner({
      trainable: train,
      space: { x: 1 },
      metric: "sum",
      mode: "max",
      storage: await tempStorage(),
      resources: { workers: 2, gpu: 1 },
      executor: slurmExecutor(train, { commandEnv: { ...c.env, PATH }, mode: "step" }),
      reporter: false,
    }).fit().then(() => undefined, (e) => e as Error);
    match(String(g?.message), /does not yet place GPUs per worker/);
  } finally {
    await c.close();
  }
});
