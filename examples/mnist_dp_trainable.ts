/**
 * The MNIST classifier of `mnist_trainable.ts`, trained data-parallel by the workers of a trial
 * (`resources.workers`): each worker takes its part of every global batch (`session.shard`),
 * `dataParallel` averages the gradients across the workers with the ring all-reduce, and every
 * replica applies the same update. Rank 0 evaluates, reports and checkpoints each epoch; the
 * others only train. Every worker restores from rank 0's checkpoint.
 */
import { defineTrainable } from "../trainable.ts";
import { dataParallel, saveModel } from "../plugins/backends/tfjs.ts";
import { type MnistConfig, prepareMnist } from "./mnist_trainable.ts";

export default defineTrainable<MnistConfig>(async (config, session) => {
  const { tf, data, train, val, model } = await prepareMnist(config, session);
  model.compile({ optimizer: "sgd", loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const dp = dataParallel(model, { optimizer: tf.train.adam(config.lr), session });
  await dp.sync(); // rank 0's weights everywhere (fresh models differ by their random init)
  const n = data.train.count;
  // batch_size is the global batch: each of the worldSize workers computes its part of it.
  for (let epoch = session.iteration; epoch < config.epochs; epoch++) {
    let loss = 0, steps = 0;
    for (let start = 0; start < n; start += config.batch_size) {
      const size = Math.min(config.batch_size, n - start);
      const lo = start + Math.floor((size * session.rank) / session.worldSize);
      const hi = start + Math.floor((size * (session.rank + 1)) / session.worldSize);
      const xs = train.xs.slice([lo, 0], [hi - lo, 784]);
      const ys = train.ys.slice([lo, 0], [hi - lo, 10]);
      loss += await dp.step(xs, ys);
      steps++;
      tf.dispose([xs, ys]);
    }
    if (session.rank !== 0) continue;
    const [valLoss, valAcc] =
      (model.evaluate(val.xs, val.ys) as import("@tensorflow/tfjs").Scalar[])
        .map((t) => t.dataSync()[0]);
    await session.report(
      { val_loss: valLoss, val_acc: valAcc, loss: loss / steps, workers: session.worldSize },
      { checkpoint: (dir) => saveModel(model, dir, { includeOptimizer: false }) },
    );
  }
});
