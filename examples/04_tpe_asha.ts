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
import { choice, loguniform, Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { tpeSearcher } from "../plugins/searchers/mod.ts";
import { tensorboardLogger } from "../plugins/loggers/tensorboard/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { tfjsBackend } from "../plugins/backends/tfjs.ts";
import { writeMnistCache } from "../plugins/backends/mnist.ts";

const epochs = Number(Deno.env.get("EPOCHS") ?? 8);
const storage = Deno.env.get("STORAGE") ?? "./tunebox_results";
const dataDir = `${storage}/mnist_data`;
await writeMnistCache(dataDir);

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  space: {
    layer_1: choice([32, 64, 128]),
    layer_2: choice([64, 128, 256]),
    lr: loguniform(1e-4, 1e-1),
    batch_size: choice([32, 64, 128]),
    epochs,
    train_size: Number(Deno.env.get("TRAIN_SIZE") ?? 4000),
    data_dir: await Deno.realPath(dataDir),
  },
  metric: "val_loss",
  mode: "min",
  numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 16),
  maxConcurrent: 2,
  seed: Number(Deno.env.get("SEED") ?? 0),
  searcher: tpeSearcher({ initialPoints: 5 }),
  scheduler: ashaScheduler({ maxT: epochs, gracePeriod: 1, reductionFactor: 2 }),
  callbacks: [tensorboardLogger()],
  sandbox: { read: [await Deno.realPath(dataDir), ...(tfjsBackend().permissions().read ?? [])] },
  storage,
  name: Deno.env.get("NAME"),
  reporter: tableReporter({
    parameterColumns: { layer_1: "l1", layer_2: "l2", lr: "lr", batch_size: "batch" },
    metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
  }),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)}, val_acc ${
    Number(best.metrics?.val_acc).toFixed(3)
  } (trial ${best.id})`,
);
console.log(`See every trial and its hyperparameters: tensorboard --logdir ${results.path}`);
