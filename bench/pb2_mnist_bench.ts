/**
 * PB2 against PBT on the MNIST trainable of the examples (issue 16: "PB2 should match PBT with
 * fewer trials"): the learning rate is explored, layer sizes and batch size are fixed (models
 * are copied between trials), one perturbation per epoch, the bottom half copies the top half.
 * Rows: PBT with 4 trials, PB2 with 4, PB2 with 2; each over the seeds given. Prints the best
 * final validation loss and accuracy per run and the wall time.
 *
 *     deno run -A bench/pb2_mnist_bench.ts                 # seeds 0 1, 6 epochs, 2,000 digits
 *     deno run -A bench/pb2_mnist_bench.ts --quick         # seed 0, 3 epochs, 1,000 digits
 */
import { type ResultGrid, Tuner, uniform } from "../mod.ts";
import { pb2Scheduler, pbtScheduler } from "../plugins/schedulers/mod.ts";
import { mnistSetup } from "../examples/mnist_setup.ts";

const quick = Deno.args.includes("--quick");
const storage = await Deno.makeTempDir({ prefix: "tunebox_pb2_mnist_" });
Deno.env.set("STORAGE", storage);
const setup = await mnistSetup({
  epochs: quick ? 3 : 6,
  trainSize: quick ? 1000 : 2000,
  numSamples: 4,
});
const seeds = quick ? [0] : [0, 1];
const LR: [number, number] = [1e-4, 0.05];

async function run(kind: "pbt" | "pb2", trials: number, seed: number): Promise<ResultGrid> {
  return await new Tuner({
    trainable: new URL("../examples/mnist_trainable.ts", import.meta.url),
    space: {
      lr: uniform(LR[0], LR[1]),
      layer_1: 64,
      layer_2: 128,
      batch_size: 64,
      epochs: setup.epochs,
      train_size: setup.trainSize,
      data_dir: setup.dataDir,
    },
    metric: "val_loss",
    mode: "min",
    numSamples: trials,
    maxConcurrent: 2,
    seed,
    scheduler: kind === "pbt"
      ? pbtScheduler({
        timeAttr: "training_iteration",
        perturbationInterval: 1,
        quantileFraction: 0.5,
        hyperparamMutations: { lr: uniform(LR[0], LR[1]) },
      })
      : pb2Scheduler({
        timeAttr: "training_iteration",
        perturbationInterval: 1,
        quantileFraction: 0.5,
        hyperparamBounds: { lr: LR },
      }),
    sandbox: setup.sandbox,
    storage,
    reporter: false,
  }).fit();
}

try {
  for (const [kind, trials] of [["pbt", 4], ["pb2", 4], ["pb2", 2]] as const) {
    for (const seed of seeds) {
      const t0 = performance.now();
      const r = await run(kind, trials, seed);
      const wall = (performance.now() - t0) / 1000;
      const best = r.best();
      const acc = Number(best.metrics?.val_acc ?? NaN);
      const line = `${kind.toUpperCase()} ${trials} trials, seed ${seed}: best val_loss ` +
        `${best.score.toFixed(4)}, its val_acc ${acc.toFixed(3)}, final lr ` +
        `${Number(best.config.lr).toFixed(5)}; ${setup.epochs} epochs x ${setup.trainSize} ` +
        `digits; wall ${wall.toFixed(1)} s`;
      console.log(line);
    }
  }
} finally {
  await Deno.remove(storage, { recursive: true }).catch(() => {});
}
