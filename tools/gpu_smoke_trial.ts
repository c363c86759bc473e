/**
 * The trainable of tools/gpu_smoke.ts, run in sandboxed trials. `mode`:
 * - `devices`: reports the trial's `CUDA_VISIBLE_DEVICES` and when it ran (no TensorFlow.js);
 * - `bench`: loads TensorFlow.js the default way (GPU backend first), then measures a small conv
 *   net's training samples/s on each backend of `backends`;
 * - `share`: loads the default backend and trains the conv net for `steps` batches, reporting
 *   the device it was given and when it ran (two of these share one GPU with `gpu: 0.5`);
 * - `workers`: a multi-worker trial (`resources.workers`): every worker checks an all-reduce of
 *   exact values, then times the all-reduce of `floats` floats; rank 0 reports the devices every
 *   worker was given and the bandwidth (no TensorFlow.js).
 */
import { defineTrainable } from "../trainable.ts";
import { loadTfjs, type Tf, type TfjsBackendName } from "../plugins/backends/tfjs.ts";

interface SmokeConfig {
  mode: "devices" | "bench" | "share" | "workers";
  floats?: number;
  backends?: string[];
  steps?: number;
  i?: number;
}

const env = (k: string) => {
  try {
    return Deno.env.get(k) ?? "(unset)";
  } catch {
    return "(not readable)";
  }
};

function convNet(tf: Tf) {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: "relu" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  return model;
}

/**
 * Training samples/s of the conv net on the active backend (one warm-up batch first). Where the
 * backend lacks the convolution's gradient kernels (wasm: Conv2DBackpropFilter), inference
 * samples/s instead, marked "predict".
 */
async function convSamplesPerS(tf: Tf, samples: number): Promise<{ sps: number; kind: string }> {
  const batch = 64;
  const xs = tf.randomNormal([samples, 28, 28, 1], 0, 1, "float32", 1);
  const ys = tf.oneHot(tf.randomUniform([samples], 0, 10, "int32", 2) as never, 10);
  const model = convNet(tf);
  try {
    let kind = "train";
    try {
      await model.fit(xs.slice(0, batch), ys.slice(0, batch), {
        epochs: 1,
        batchSize: batch,
        verbose: 0,
      });
    } catch (e) {
      if (!/not registered for backend/.test((e as Error).message)) throw e;
      kind = "predict";
    }
    const t0 = performance.now();
    if (kind === "train") await model.fit(xs, ys, { epochs: 1, batchSize: batch, verbose: 0 });
    else {tf.tidy(() =>
        (model.predict(xs, { batchSize: batch }) as ReturnType<Tf["zeros"]>).dataSync()
      );}
    return { sps: samples / ((performance.now() - t0) / 1000), kind };
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}

export default defineTrainable<SmokeConfig>(async (config, session) => {
  const start = Date.now() / 1000;
  const cuda = env("CUDA_VISIBLE_DEVICES");
  const growth = env("TF_FORCE_GPU_ALLOW_GROWTH");
  if (config.mode === "devices") {
    await new Promise((r) => setTimeout(r, 1500)); // long enough for trials to overlap
    await session.report({ cuda, growth, start, end: Date.now() / 1000, score: 1 });
    return;
  }
  if (config.mode === "workers") {
    const { rank, worldSize } = session;
    // Exact in float32, so the sum over the ranks is exact too.
    const value = (i: number, r: number) => ((i * 31 + r * 17) % 101) - 50;
    const n = 100_003;
    const data = new Float32Array(n).map((_, i) => value(i, rank));
    await session.allreduce(data, "sum");
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      let want = 0;
      for (let r = 0; r < worldSize; r++) want += value(i, r);
      if (data[i] !== want) wrong++;
    }
    // Every worker's CUDA_VISIBLE_DEVICES (an index or a GPU-<uuid>), gathered through the ring:
    // slot r holds rank r's string as character codes, the other slots are zeros.
    const width = 96;
    const codes = new Float32Array(worldSize * width);
    for (let i = 0; i < Math.min(cuda.length, width); i++) {
      codes[rank * width + i] = cuda.charCodeAt(i);
    }
    await session.allreduce(codes, "sum");
    const devices = Array.from(
      { length: worldSize },
      (_, r) =>
        String.fromCharCode(...codes.subarray(r * width, (r + 1) * width).filter((c) => c > 0))
          .replace(/^GPU-(\w{8})[\w-]*$/, "GPU-$1…"),
    );
    const big = new Float32Array(config.floats ?? 25_000_000).fill(1);
    await session.allreduce(big, "sum"); // warm-up: buffers and TCP windows
    await session.barrier();
    const t0 = performance.now();
    const rounds = 3;
    for (let i = 0; i < rounds; i++) await session.allreduce(big, "mean");
    const seconds = (performance.now() - t0) / 1000 / rounds;
    await session.report({
      wrong,
      world: worldSize,
      devices: devices.join(" "),
      allreduce_s: seconds,
      gbps: (big.byteLength / 1e9) / seconds,
      score: 1,
    });
    return;
  }
  const warnings: string[] = [];
  const { tf, backend } = await loadTfjs({ warn: (m) => warnings.push(m) });
  const metrics: Record<string, string | number> = {
    cuda,
    growth,
    backend,
    active: tf.getBackend(),
    warnings: warnings.join(" | "),
    start,
  };
  if (config.mode === "share") {
    const r = await convSamplesPerS(tf, 64 * (config.steps ?? 16));
    metrics.sps = r.sps;
    metrics.kind = r.kind;
  } else {
    for (const name of config.backends ?? []) {
      const b = name === "default" ? backend : name as TfjsBackendName;
      try {
        await loadTfjs({ prefer: [b], warn: () => {} });
        const samples = b === "cpu" ? 64 : b === "wasm" ? 512 : 4096;
        const r = await convSamplesPerS(tf, samples);
        metrics[`sps_${b}`] = r.sps;
        metrics[`kind_${b}`] = r.kind;
      } catch (e) {
        metrics[`err_${b}`] = (e as Error).message.split("\n")[0];
      }
    }
  }
  metrics.end = Date.now() / 1000;
  metrics.score = 1;
  await session.report(metrics);
});
