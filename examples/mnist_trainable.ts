/**
 * The MNIST classifier of PyTorch Lightning's Ray Tune tutorial, in TensorFlow.js: two hidden
 * layers, tuned sizes, learning rate and batch size. Each epoch reports `val_loss`/`val_acc` and
 * checkpoints the model, so ASHA can stop it and PBT can copy it.
 *
 * Runs inside a sandboxed trial: it reads the shared data folder the experiment declares
 * (`sandbox.read`) and writes only its own trial folder.
 */
import { defineTrainable, type Session } from "../trainable.ts";
import { loadTfjs, restoreModel, tuneCallback } from "../plugins/backends/tfjs.ts";
import { loadMnist, mnistTensors } from "../plugins/backends/mnist.ts";

/** The config the examples tune. */
export interface MnistConfig {
  layer_1: number;
  layer_2: number;
  lr: number;
  batch_size: number;
  epochs: number;
  train_size: number;
  /** A folder holding `writeMnistCache`'s binary; without it the digits are decoded from the package. */
  data_dir?: string;
}

/**
 * Loads TensorFlow.js and the digits, and the model: the trial's checkpoint if it has one, else
 * a fresh 784-layer_1-layer_2-10 classifier (not compiled). Shared with `mnist_dp_trainable.ts`.
 */
export async function prepareMnist(config: MnistConfig, session: Session<MnistConfig>) {
  const { tf } = await loadTfjs({ session });
  const data = await loadMnist({
    train: config.train_size,
    validation: 1000,
    test: 0,
    cacheDir: config.data_dir,
  });
  const train = mnistTensors(tf, data.train);
  const val = mnistTensors(tf, data.validation);
  const model = await restoreModel(session) ??
    tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [784], units: config.layer_1, activation: "relu" }),
        tf.layers.dense({ units: config.layer_2, activation: "relu" }),
        tf.layers.dense({ units: 10, activation: "softmax" }),
      ],
    });
  return { tf, data, train, val, model };
}

export default defineTrainable<MnistConfig>(async (config, session) => {
  const { tf, train, val, model } = await prepareMnist(config, session);
  // PBT may change the learning rate of a restored model: compile with this trial's config.
  model.compile({
    optimizer: tf.train.adam(config.lr),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  await model.fit(train.xs, train.ys, {
    epochs: config.epochs,
    initialEpoch: session.iteration,
    batchSize: config.batch_size,
    validationData: [val.xs, val.ys],
    shuffle: true,
    verbose: 0,
    callbacks: [
      tuneCallback(session, {
        metrics: { val_loss: "val_loss", val_acc: "val_acc", loss: "loss" },
        // The model's size, for the accuracy-against-size trade-off of example 08.
        extra: { params: model.countParams() },
      }),
    ],
  });
});
