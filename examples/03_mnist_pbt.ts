#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:pbt`: the MNIST classifier of example 02 with Population Based Training.
 * Every epoch checkpoints the model; at each perturbation interval the bottom quarter of the
 * population copies a top trial's model and config, and perturbs its learning rate and batch
 * size. Layer sizes stay fixed. Each trial's lineage is in `pbt_policy_<trial>.txt`.
 *
 * Smaller: NUM_SAMPLES=4 EPOCHS=4 deno task example:pbt
 */
import { choice, loguniform, Tuner } from "../mod.ts";
import { pbtScheduler } from "../plugins/schedulers/mod.ts";
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
    layer_1: 64,
    layer_2: 128,
    lr: loguniform(1e-4, 1e-1),
    batch_size: choice([32, 64, 128]),
    epochs,
    train_size: Number(Deno.env.get("TRAIN_SIZE") ?? 3000),
    data_dir: await Deno.realPath(dataDir),
  },
  metric: "val_loss",
  mode: "min",
  numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 8),
  maxConcurrent: 2,
  seed: Number(Deno.env.get("SEED") ?? 0),
  scheduler: pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 2,
    hyperparamMutations: { lr: loguniform(1e-4, 1e-1), batch_size: [32, 64, 128] },
  }),
  sandbox: { read: [await Deno.realPath(dataDir), ...(tfjsBackend().permissions().read ?? [])] },
  storage,
  name: Deno.env.get("NAME"),
  reporter: tableReporter({
    parameterColumns: { lr: "lr", batch_size: "batch" },
    metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
  }),
}).fit();

const best = results.best();
console.log(
  `\nBest: val_loss ${best.score.toFixed(4)} (trial ${best.id}), final lr ${best.config.lr}`,
);
console.log(`Lineages (pbt_policy_<trial>.txt) and trials: ${results.path}`);
