// Figures for the tfjs backend (prints, asserts nothing); run one backend per process:
//   deno run -A tests/backends/_bench_tfjs.ts wasm   (or cpu)
// Trains the MLP of the examples (784-128-256-10, the PyTorch Lightning MNIST tutorial's layer
// sizes) for one epoch on 2048 real digits, batch 64, and times loading MNIST.
import { loadMnist, mnistTensors, writeMnistCache } from "../../plugins/backends/mnist.ts";
import { loadTfjs, type TfjsBackendName } from "../../plugins/backends/tfjs.ts";

const backendName = (Deno.args[0] ?? "wasm") as TfjsBackendName;
const ms = (t: number) => Math.round(performance.now() - t);

let t = performance.now();
await loadMnist({ train: 2048, test: 512 });
const decodeMs = ms(t);
const cacheDir = await Deno.makeTempDir({ prefix: "tunebox_bench_" });
await writeMnistCache(cacheDir);
t = performance.now();
const data = await loadMnist({ train: 2048, test: 512, cacheDir });
const cachedMs = ms(t);
await Deno.remove(cacheDir, { recursive: true });

t = performance.now();
const { tf, backend } = await loadTfjs({ prefer: [backendName] });
const loadTfjsMs = ms(t);
const { xs, ys } = mnistTensors(tf, data.train);
const model = tf.sequential({
  layers: [
    tf.layers.dense({ units: 128, activation: "relu", inputShape: [784] }),
    tf.layers.dense({ units: 256, activation: "relu" }),
    tf.layers.dense({ units: 10, activation: "softmax" }),
  ],
});
model.compile({
  optimizer: tf.train.adam(1e-3),
  loss: "categoricalCrossentropy",
  metrics: ["acc"],
});
const epochs: number[] = [];
for (let e = 0; e < 2; e++) {
  t = performance.now();
  await model.fit(xs, ys, { epochs: 1, batchSize: 64, verbose: 0 });
  epochs.push(ms(t));
}
console.log(JSON.stringify({
  backend,
  mnistDecodeMs: decodeMs,
  mnistCachedMs: cachedMs,
  loadTfjsMs,
  epoch1Ms: epochs[0],
  epoch2Ms: epochs[1],
  samplesPerS: Math.round(2048 / (epochs[1] / 1000)),
}));
