#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:tpe`: the MNIST classifier of example 02, searched with TPE (HyperOpt's
 * algorithm) instead of random sampling, ASHA stopping the weak trials early, and TensorBoard
 * logging every trial with its hyperparameters (the HPARAMS tab).
 *
 * TPE samples the first `initialPoints` configs at random, then proposes configs that look like
 * the best quarter seen so far. Trials that ASHA stopped early count by how far they got.
 *
 * Smaller: NUM_SAMPLES=6 EPOCHS=3 TRAIN_SIZE=1000 deno task example:tpe
 */
import { Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { tpeSearcher } from "../plugins/searchers/mod.ts";
import { tensorboardLogger } from "../plugins/loggers/tensorboard/mod.ts";
import { backendsUsed, mnistSetup, mnistSpace, mnistTable } from "./mnist_setup.ts";

const setup = await mnistSetup({ epochs: 8, trainSize: 4000, numSamples: 16 });

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  space: mnistSpace(setup),
  metric: "val_loss",
  mode: "min",
  numSamples: setup.numSamples,
  maxConcurrent: 2,
  seed: setup.seed,
  searcher: tpeSearcher({ initialPoints: 5 }),
  scheduler: ashaScheduler({ maxT: setup.epochs, gracePeriod: 1, reductionFactor: 2 }),
  callbacks: [tensorboardLogger()],
  sandbox: setup.sandbox,
  storage: setup.storage,
  name: setup.name,
  reporter: mnistTable(),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)}, val_acc ${
    Number(best.metrics?.val_acc).toFixed(3)
  } (trial ${best.id})`,
);
console.log(`TensorFlow.js backend: ${backendsUsed(results)}`);
console.log(`See every trial and its hyperparameters: tensorboard --logdir ${results.path}`);
