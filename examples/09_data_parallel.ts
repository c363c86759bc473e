#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * Data-parallel trials: every trial of the MNIST classifier is trained by 2 workers (Ray Train's
 * `ScalingConfig(num_workers=2)`), each a sandboxed `deno run` process with its part of every
 * batch, averaging gradients over a ring all-reduce; ASHA stops the worse trials, both workers
 * at once.
 *
 * Smaller or bigger: NUM_SAMPLES=2 EPOCHS=2 WORKERS=4 deno task example:data-parallel
 * On Slurm (inside `salloc`, or an sbatch script): EXECUTOR=slurm [DRIVER_HOST=<address the nodes
 * reach>] — each trial is then one step of 2 tasks, placed by Slurm across the nodes.
 */
import { slurmExecutor, Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { backendsUsed, mnistSetup, mnistSpace, mnistTable } from "./mnist_setup.ts";

const setup = await mnistSetup({ epochs: 6, trainSize: 4000, numSamples: 4 });
const workers = Number(Deno.env.get("WORKERS") ?? 2);
const trainable = new URL("./mnist_dp_trainable.ts", import.meta.url);
const driverHost = Deno.env.get("DRIVER_HOST");
const onSlurm = Deno.env.get("EXECUTOR") === "slurm";

const results = await new Tuner({
  trainable,
  ...(onSlurm ? { executor: slurmExecutor(trainable, driverHost ? { driverHost } : {}) } : {}),
  space: mnistSpace(setup),
  metric: "val_loss",
  mode: "min",
  numSamples: setup.numSamples,
  maxConcurrent: 1,
  seed: setup.seed,
  resources: { workers, cpu: 1 },
  scheduler: ashaScheduler({ maxT: setup.epochs, gracePeriod: 1, reductionFactor: 2 }),
  sandbox: setup.sandbox,
  storage: setup.storage,
  name: setup.name,
  reporter: mnistTable(),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)}, val_acc ${
    Number(best.metrics?.val_acc).toFixed(3)
  } with ${best.metrics?.workers} workers per trial and`,
  {
    layer_1: best.config.layer_1,
    layer_2: best.config.layer_2,
    lr: best.config.lr,
    batch_size: best.config.batch_size,
  },
);
console.log(`TensorFlow.js backend: ${backendsUsed(results)}`);
console.log(`Experiment folder: ${results.path}`);
