/**
 * Data-parallel training throughput: the MNIST classifier of `examples/mnist_dp_trainable.ts`
 * (784-128-256-10, global batch 128) trained by 1, 2 and 4 workers of one trial.
 *
 *     deno run -A bench/data_parallel_bench.ts            # 4000 digits, 3 epochs
 *     deno run -A bench/data_parallel_bench.ts --quick    # 1000 digits, 2 epochs
 *
 * Figures: samples/s of the last epoch (steady state: start-up, data loading and the first
 * epoch's compilation excluded) and of the whole trial. Nothing is asserted.
 */
import { Tuner } from "../mod.ts";
import { writeMnistCache } from "../plugins/backends/mnist.ts";
import { tfjsBackend } from "../plugins/backends/tfjs.ts";

const quick = Deno.args.includes("--quick");
const trainSize = quick ? 1000 : 4000;
const epochs = quick ? 2 : 3;
const storage = await Deno.makeTempDir({ prefix: "tunebox_dp_bench_" });
await writeMnistCache(`${storage}/mnist_data`);
const dataDir = await Deno.realPath(`${storage}/mnist_data`);
const native = tfjsBackend({ native: Deno.env.get("BACKEND") !== "wasm" }).permissions();

console.log(
  `data-parallel MNIST MLP, ${trainSize} digits x ${epochs} epochs, global batch 128; ` +
    `${navigator.hardwareConcurrency} CPUs`,
);
console.log(
  "\n| workers | backend | last epoch s | samples/s (last epoch) | whole trial s | samples/s (whole) |",
);
console.log("|---|---|---|---|---|---|");
for (const workers of [1, 2, 4]) {
  const results = await new Tuner({
    trainable: new URL("../examples/mnist_dp_trainable.ts", import.meta.url),
    space: {
      layer_1: 128,
      layer_2: 256,
      lr: 1e-3,
      batch_size: 128,
      epochs,
      train_size: trainSize,
      data_dir: dataDir,
    },
    metric: "val_loss",
    mode: "min",
    resources: { workers, cpu: 1 },
    sandbox: { ...native, read: [dataDir, ...(native.read ?? [])] },
    storage,
    name: `w${workers}`,
    reporter: false,
  }).fit();
  const t = results.trials[0];
  if (t.status !== "terminated") throw new Error(`${workers} workers: ${t.error}`);
  const h = results.history(t.id);
  const last = h[h.length - 1];
  const lastS = Number(last.time_this_iter_s);
  const totalS = Number(last.time_total_s);
  console.log(
    `| ${workers} | ${h[0].backend ?? "?"} | ${lastS.toFixed(2)} | ${
      (trainSize / lastS).toFixed(0)
    } | ${totalS.toFixed(2)} | ${(trainSize * epochs / totalS).toFixed(0)} |`,
  );
}
await Deno.remove(storage, { recursive: true }).catch(() => {});
