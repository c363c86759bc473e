#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:pb2`: the MNIST classifier of example 03 with Population Based Bandits
 * (PB2) instead of PBT, and half the population. After every epoch a trial in the bottom half
 * copies a trial of the top half (model and config), and a GP bandit, fitted to how fast each
 * trial's validation loss fell under its learning rate, picks its new learning rate inside
 * `hyperparamBounds` (PBT would multiply it by 0.8 or 1.2 at random). The first copies keep the
 * donor's rate: the bandit needs two results under one rate to see a change. Each trial's lineage is in
 * `pbt_policy_<trial>.txt`, which `pbtReplay` replays.
 *
 * Smaller: NUM_SAMPLES=2 EPOCHS=4 deno task example:pb2
 */
import { Tuner, uniform } from "../mod.ts";
import { pb2Scheduler } from "../plugins/schedulers/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { mnistSetup, mnistSpace } from "./mnist_setup.ts";

const setup = await mnistSetup({ epochs: 8, trainSize: 3000, numSamples: 4 });

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  // PB2's hyperparameters are continuous and must be in the space, inside their bounds.
  space: { ...mnistSpace(setup), lr: uniform(1e-4, 0.05), layer_1: 64, layer_2: 128 },
  metric: "val_loss",
  mode: "min",
  numSamples: setup.numSamples,
  maxConcurrent: 2,
  seed: setup.seed,
  scheduler: pb2Scheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 1,
    quantileFraction: 0.5,
    hyperparamBounds: { lr: [1e-4, 0.05] },
  }),
  sandbox: setup.sandbox,
  storage: setup.storage,
  name: setup.name,
  reporter: tableReporter({
    parameterColumns: { lr: "lr" },
    metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
  }),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)} (trial ${best.id}), final lr ${best.config.lr}`,
);
console.log(`Lineages (pbt_policy_<trial>.txt) and trials: ${results.path}`);
