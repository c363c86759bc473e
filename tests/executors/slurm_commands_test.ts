// Slurm's resource flags for one trial and for each worker of a multi-worker trial: --mem and
// --gres count per node, so a worker's memory goes per CPU and its GPUs per task.
import { deepEqual, throws } from "#assert";
import { resourceArgs } from "../../plugins/executors/_slurm_commands.ts";

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
