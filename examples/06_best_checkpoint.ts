#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:best`: the last step of a tuning job. Take the best trial, load its model
 * from its latest checkpoint, and measure its accuracy on held-out test digits that no trial saw,
 * neither for training nor for validation.
 *
 * Without an argument it first runs a small ASHA tuning of example 02's classifier. With an
 * experiment folder of the MNIST trainable (examples 02 to 05) it loads that one instead:
 *
 *     deno task example:best tunebox_results/mnist-yaml
 *
 * Smaller: NUM_SAMPLES=2 EPOCHS=1 TRAIN_SIZE=300 deno task example:best
 */
import { ResultGrid, Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { loadTfjs, restoreModel } from "../plugins/backends/tfjs.ts";
import { loadMnist, MNIST_COUNT, mnistTensors } from "../plugins/backends/mnist.ts";
import { mnistSetup, mnistSpace, mnistTable } from "./mnist_setup.ts";

async function tune(): Promise<ResultGrid> {
  const setup = await mnistSetup({ epochs: 5, trainSize: 4000, numSamples: 8 });
  return await new Tuner({
    trainable: new URL("./mnist_trainable.ts", import.meta.url),
    space: mnistSpace(setup),
    metric: "val_loss",
    mode: "min",
    numSamples: setup.numSamples,
    maxConcurrent: 2,
    seed: setup.seed,
    scheduler: ashaScheduler({ maxT: setup.epochs, gracePeriod: 1, reductionFactor: 2 }),
    checkpoint: { numToKeep: 1 }, // only the latest checkpoint of each trial is needed here
    sandbox: setup.sandbox,
    storage: setup.storage,
    name: setup.name,
    reporter: mnistTable(),
  }).fit();
}

const results = Deno.args[0] ? await ResultGrid.load(Deno.args[0]) : await tune();
// The trial with the best last val_loss; its latest checkpoint holds the model of that report.
const best = results.best();
if (!best.checkpoint) throw new Error(`The best trial ${best.id} saved no checkpoint`);
const { tf, backend } = await loadTfjs();
console.log(`TensorFlow.js backend: ${backend}`);
const model = (await restoreModel(best.checkpoint))!; // a folder always gives a model (or throws)

// Trials train on the first `train_size` digits of loadMnist's shuffled order and validate on the
// next 1000; test digits are taken from the end of that order, so they never overlap.
const unseen = MNIST_COUNT - Number(best.config.train_size) - 1000;
const { test } = await loadMnist({ train: 0, test: Math.min(2000, unseen) });
const { xs, ys } = mnistTensors(tf, test);
const predicted = tf.tidy(() => (model.predict(xs) as typeof xs).argMax(-1));
const correct = tf.tidy(() => predicted.equal(ys.argMax(-1)).sum().dataSync()[0]);
console.log(
  `\nThe model of trial ${best.id} (val_acc ${
    Number(best.metrics?.val_acc).toFixed(3)
  }): ${best.checkpoint}`,
);
console.log(`Test accuracy: ${(correct / test.count).toFixed(4)} on ${test.count} held-out digits`);
