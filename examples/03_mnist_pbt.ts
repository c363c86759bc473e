#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:pbt`: the MNIST classifier of example 02 with Population Based Training.
 * Every epoch checkpoints the model; every two epochs the whole population meets (synchronous
 * PBT), and its bottom quarter copies a top trial's model and config and perturbs its learning
 * rate and batch size. Layer sizes stay fixed. Each trial's lineage is in
 * `pbt_policy_<trial>.txt`.
 *
 * Smaller: NUM_SAMPLES=4 EPOCHS=4 deno task example:pbt
 */
import { loguniform, Tuner } from "../mod.ts";
import { pbtScheduler } from "../plugins/schedulers/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { backendsUsed, mnistSetup, mnistSpace } from "./mnist_setup.ts";

const setup = await mnistSetup({ epochs: 8, trainSize: 3000, numSamples: 8 });

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  // Layer sizes are fixed: PBT copies models between trials, so their shapes must agree.
  space: { ...mnistSpace(setup), layer_1: 64, layer_2: 128 },
  metric: "val_loss",
  mode: "min",
  numSamples: setup.numSamples,
  maxConcurrent: 2,
  seed: setup.seed,
  scheduler: pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 2,
    // The population is larger than the two slots, so its trials take turns at each perturbation
    // point anyway; meeting there ranks the whole population at once, so every round exploits
    // its bottom quarter. Asynchronous PBT (the default) ranks a trial only against the scores
    // already in, so the first trials at a point are never exploited.
    synch: true,
    hyperparamMutations: { lr: loguniform(1e-4, 1e-1), batch_size: [32, 64, 128] },
  }),
  sandbox: setup.sandbox,
  storage: setup.storage,
  name: setup.name,
  reporter: tableReporter({
    parameterColumns: { lr: "lr", batch_size: "batch" },
    metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
  }),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)} (trial ${best.id}), final lr ${best.config.lr}`,
);
console.log(`TensorFlow.js backend: ${backendsUsed(results)}`);
console.log(`Lineages (pbt_policy_<trial>.txt) and trials: ${results.path}`);
