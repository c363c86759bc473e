// Slurm's resource flags for one trial and for each worker of a multi-worker trial: --mem and
// --gres count per node, so a worker's memory goes per CPU and its GPUs per task.
import { deepEqual, equal, rejects, throws } from "#assert";
import { parseStepsOfSrun, resourceArgs } from "../../plugins/executors/_slurm_commands.ts";
import { BatchJobs } from "../../plugins/executors/_slurm_batch.ts";
import { slurmExecutor } from "../../plugins/executors/slurm.ts";
import { TuneError } from "../../core/errors.ts";
import type { TrialJob, TrialListener } from "../../core/plugin.ts";

Deno.test("resourceArgs: one trial gets --mem and --gres, each worker --mem-per-cpu and --gpus-per-task", () => {
  deepEqual(resourceArgs({ cpu: 2, memoryMb: 1000, gpu: 1 }, {}), [
    "--cpus-per-task=2",
    "--mem=1000M",
    "--gres=gpu:1",
  ]);
  deepEqual(resourceArgs({ cpu: 2, memoryMb: 1001, gpu: 2, workers: 4 }, { partition: "gpu" }), [
    "--cpus-per-task=2",
    "--mem-per-cpu=501M",
    "--gpus-per-task=2",
    "--partition=gpu",
  ]);
  deepEqual(resourceArgs({ cpu: 1, workers: 2 }, {}), ["--cpus-per-task=1"]);
});

Deno.test("resourceArgs: fractional GPUs or CPUs per worker are refused", () => {
  throws(() => resourceArgs({ cpu: 1, gpu: 0.5, workers: 2 }, {}), Error, "fractional GPUs");
  throws(() => resourceArgs({ cpu: 1.5, workers: 2 }, {}), Error, "whole CPUs");
});

Deno.test("parseStepsOfSrun: the steps an srun holds, by its pid, without a request still waiting", () => {
  // As `scontrol show step -o 1` prints them (Slurm 22.05), abridged.
  const text = [
    "StepId=1.0 UserId=0 State=RUNNING NodeList=n1 CPUs=2 Name=tunebox-a Network=(null) " +
    "SrunHost:Pid=vm:22124",
    "StepId=1.TDB UserId=0 State=PENDING NodeList=n1 CPUs=1 Name=(null) SrunHost:Pid=vm:22311",
    "StepId=1.2 UserId=0 State=RUNNING NodeList=n1 CPUs=1 Name=tunebox-b SrunHost:Pid=vm:122311",
    "StepId=1.3 UserId=0 State=RUNNING NodeList=n1 CPUs=1 Name=tunebox-b SrunHost:Pid=vm:22311",
  ].join("\n");
  deepEqual(parseStepsOfSrun(text, 22124), ["1.0"]);
  deepEqual(parseStepsOfSrun(text, 22311), ["1.3"]);
  deepEqual(parseStepsOfSrun("Job step 1. not found", 22124), []);
});

Deno.test("slurmExecutor checks its mode when built and answers capacity() before prepare()", async () => {
  throws(
    () => slurmExecutor("/tmp/t.ts", { mode: "batch" as "sbatch", commandEnv: {} }),
    TypeError,
    'mode must be "step" or "sbatch"',
  );
  const sbatch = slurmExecutor("/tmp/t.ts", { commandEnv: {} });
  equal(sbatch.capacity!({ cpu: 4 }), 32);
  equal(sbatch.warm, undefined);
  throws(() => sbatch.capacity!({ cpu: 1, gpu: 0.5 }), TuneError, "fractional GPUs");
  const step = slurmExecutor("/tmp/t.ts", {
    commandEnv: { SLURM_JOB_ID: "7", SLURM_JOB_CPUS_PER_NODE: "4(x2),2" },
  });
  equal(step.capacity!({ cpu: 3 }), 3);
  equal(typeof step.warm, "function");
  // The trial side is loaded by prepare(): before it, start() refuses and close() has nothing to end.
  throws(() => step.start({} as TrialJob, {} as TrialListener), TuneError, "prepare() must run");
  await step.close!();
});

Deno.test("BatchJobs: close() before the leftovers were cancelled keeps .slurm_jobs for the next driver", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A killed driver's list, and a prepare() that failed before it cancelled them.
    await Deno.writeTextFile(`${dir}/.slurm_jobs`, "41\n42\n");
    const failed = new BatchJobs({}, 60_000, () => {});
    failed.dir = dir;
    await failed.close();
    equal(await Deno.readTextFile(`${dir}/.slurm_jobs`), "41\n42\n");

    // Once the leftovers are dealt with, the list is this executor's and close() removes it.
    await Deno.remove(`${dir}/.slurm_jobs`);
    const jobs = new BatchJobs({}, 60_000, () => {});
    jobs.dir = dir;
    await jobs.cancelLeftovers();
    await jobs.watch("43", () => {});
    equal(await Deno.readTextFile(`${dir}/.slurm_jobs`), "43\n");
    await jobs.close();
    await rejects(() => Deno.stat(`${dir}/.slurm_jobs`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
