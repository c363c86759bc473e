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
import { choice, loguniform, ResultGrid, Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { loadTfjs, restoreModel, tfjsBackend } from "../plugins/backends/tfjs.ts";
import {
  loadMnist,
  MNIST_COUNT,
  mnistTensors,
  writeMnistCache,
} from "../plugins/backends/mnist.ts";

async function tune(): Promise<ResultGrid> {
  const epochs = Number(Deno.env.get("EPOCHS") ?? 5);
  const storage = Deno.env.get("STORAGE") ?? "./tunebox_results";
  await writeMnistCache(`${storage}/mnist_data`);
  const dataDir = await Deno.realPath(`${storage}/mnist_data`);
  return await new Tuner({
    trainable: new URL("./mnist_trainable.ts", import.meta.url),
    space: {
      layer_1: choice([32, 64, 128]),
      layer_2: choice([64, 128, 256]),
      lr: loguniform(1e-4, 1e-1),
      batch_size: choice([32, 64, 128]),
      epochs,
      train_size: Number(Deno.env.get("TRAIN_SIZE") ?? 4000),
      data_dir: dataDir,
    },
    metric: "val_loss",
    mode: "min",
    numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 8),
    maxConcurrent: 2,
    seed: Number(Deno.env.get("SEED") ?? 0),
    scheduler: ashaScheduler({ maxT: epochs, gracePeriod: 1, reductionFactor: 2 }),
    checkpoint: { numToKeep: 1 }, // only the latest checkpoint of each trial is needed here
    sandbox: { read: [dataDir, ...(tfjsBackend().permissions().read ?? [])] },
    storage,
    name: Deno.env.get("NAME"),
    reporter: tableReporter({
      parameterColumns: { layer_1: "l1", layer_2: "l2", lr: "lr", batch_size: "batch" },
      metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
    }),
  }).fit();
}

const results = Deno.args[0] ? await ResultGrid.load(Deno.args[0]) : await tune();
// The trial with the best last val_loss; its latest checkpoint holds the model of that report.
const best = results.best();
if (!best.checkpoint) throw new Error(`The best trial ${best.id} saved no checkpoint`);
const { tf } = await loadTfjs({ prefer: ["wasm", "cpu"] });
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
