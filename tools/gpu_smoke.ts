/**
 * The Deno half of tools/gpu_smoke.sh: one line per check, `ok`, `FAIL` or `SKIP` with the reason.
 * Needs no network: every package comes from the Deno cache it is run with.
 *
 *   deno run -A tools/gpu_smoke.ts [--fake-gpus N] [--config deno.json] [--storage DIR]
 *
 * The last check runs multi-worker trials (2 and 4 workers, `resources.workers`): devices per
 * worker and the ring all-reduce's bandwidth on this machine's cores.
 *
 * `--fake-gpus N` pretends N GPUs exist (for trying the script on a machine without one: the
 * scheduling checks run, the device checks are skipped).
 */
import { parseArgs } from "node:util";
import { grid, Tuner } from "../mod.ts";
import { discoverGpus } from "../core/resources.ts";
import type { Device } from "../core/resources.ts";
import { tfjsBackend } from "../plugins/backends/tfjs/permissions.ts";
import { findBinding, nodeModulesRoot } from "../plugins/backends/tfjs/packages.ts";
import type { ResultGrid } from "../core/results.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "fake-gpus": { type: "string" },
    config: { type: "string" },
    storage: { type: "string" },
  },
});
const trainable = new URL("./gpu_smoke_trial.ts", import.meta.url);
const storage = values.storage ?? await Deno.makeTempDir({ prefix: "tunebox_gpu_smoke_" });
const denoConfig = values.config ?? new URL("../deno.json", import.meta.url).pathname;
let failed = 0;

function say(status: "ok" | "FAIL" | "SKIP", name: string, detail: string): void {
  if (status === "FAIL") failed++;
  console.log(`${status.padEnd(4)}  ${name}: ${detail}`);
}

const fake = values["fake-gpus"] ? Number(values["fake-gpus"]) : 0;
let gpus: Device[] = [];
if (fake > 0) {
  gpus = Array.from({ length: fake }, (_, i) => ({ index: i, name: `fake GPU ${i}` }));
  say("SKIP", "driver seen", `--fake-gpus ${fake}: pretending (no nvidia-smi check)`);
} else {
  gpus = [...await discoverGpus({ warn: (m) => console.log(`      (${m})`) }).catch(() => [])];
  if (gpus.length === 0) say("FAIL", "driver seen", "nvidia-smi -L lists no GPU");
  else say("ok", "driver seen", `${gpus.length} GPU(s): ${gpus.map((g) => g.name).join(", ")}`);
}

const backend = tfjsBackend({ native: true });
const sandbox = backend.permissions();
const base = {
  trainable,
  metric: "score",
  mode: "max" as const,
  storage,
  reporter: false as const,
  denoConfig,
  sandbox,
  gpus,
  trialTimeoutMs: 180_000,
};

function metricsOf(results: ResultGrid): Record<string, unknown>[] {
  return results.trials.map((t) => ({ id: t.id, status: t.status, error: t.error, ...t.metrics }));
}

// 1. Each trial gets its own device in CUDA_VISIBLE_DEVICES.
if (gpus.length > 0) {
  const n = Math.min(4, gpus.length * 2);
  const r = await new Tuner({
    ...base,
    name: "devices",
    space: { mode: "devices", i: grid(Array.from({ length: n }, (_, i) => i)) },
    resources: { cpu: 0.25, gpu: 1 },
  }).fit();
  const ms = metricsOf(r);
  const bad = ms.filter((m) => m.status !== "terminated" || !/^[\w-]+$/.test(String(m.cuda)));
  const overlapsShareDevice = ms.some((a, i) =>
    ms.some((b, j) =>
      j > i && a.cuda === b.cuda && Number(a.start) < Number(b.end) &&
      Number(b.start) < Number(a.end)
    )
  );
  if (bad.length > 0) {
    say("FAIL", "CUDA_VISIBLE_DEVICES per trial", JSON.stringify(bad));
  } else if (overlapsShareDevice) {
    say("FAIL", "CUDA_VISIBLE_DEVICES per trial", `two gpu: 1 trials ran at once on one device`);
  } else {
    say(
      "ok",
      "CUDA_VISIBLE_DEVICES per trial",
      `${n} trials with gpu: 1 got ${ms.map((m) => m.cuda).join(", ")}, never two at once on one`,
    );
  }
} else {
  say("SKIP", "CUDA_VISIBLE_DEVICES per trial", "no GPU");
}

// 2. Native tensorflow-gpu is there only if it was built on this machine.
const nm = nodeModulesRoot();
const gpuBinding = nm ? await findBinding(`${nm}/@tensorflow/tfjs-node-gpu`) : undefined;
if (gpuBinding) say("ok", "native tensorflow-gpu built", gpuBinding);
else {
  say(
    "SKIP",
    "native tensorflow-gpu",
    "not built here: it needs PyPI's tensorflow and nvidia-*-cu12 wheels (~3 GB), which cannot " +
      "travel to an offline machine; on a networked GPU machine run `deno task setup:tensorflow " +
      "--gpu` first and this script checks it too",
  );
}

// 3. tf.getBackend() in a GPU trial, and the conv net's samples/s on it vs the CPU backends.
{
  const r = await new Tuner({
    ...base,
    name: "bench",
    space: { mode: "bench", backends: ["default", "wasm", "cpu"] },
    resources: { cpu: 1, gpu: gpus.length > 0 ? 1 : 0 },
  }).fit();
  const [m] = metricsOf(r);
  if (!m || m.status !== "terminated") {
    say("FAIL", "tf.getBackend() in a GPU trial", JSON.stringify(m));
  } else {
    const onGpu = m.backend === "tensorflow-gpu" || m.backend === "webgpu";
    say(
      gpus.length > 0 && !onGpu && fake === 0 ? "FAIL" : "ok",
      "tf.getBackend() in a GPU trial",
      `${m.active} (loadTfjs picked ${m.backend}; CUDA_VISIBLE_DEVICES=${m.cuda})${
        m.warnings ? `; fallback: ${m.warnings}` : ""
      }`,
    );
    const sps = (k: string) =>
      typeof m[`sps_${k}`] === "number"
        ? `${(m[`sps_${k}`] as number).toFixed(0)}${
          m[`kind_${k}`] === "predict" ? " (predict)" : ""
        }`
        : "-";
    const gpuName = String(m.backend);
    say(
      gpuName === "tensorflow-gpu" || gpuName === "webgpu" || fake > 0 ? "ok" : "SKIP",
      "conv net samples/s, GPU vs CPU",
      `${gpuName} ${sps(gpuName)} vs wasm ${sps("wasm")} vs cpu ${sps("cpu")} ` +
        `(training, 28x28x1 conv16-conv32-dense64, batch 64; wasm has no conv gradients)${
          Object.keys(m).filter((k) => k.startsWith("err_")).map((k) => `; ${k}: ${m[k]}`).join("")
        }`,
    );
  }
}

// 4. Two trials share one GPU with gpu: 0.5, at the same time.
if (gpus.length > 0) {
  const r = await new Tuner({
    ...base,
    name: "share",
    space: { mode: "share", steps: 24, i: grid([0, 1]) },
    resources: { cpu: 0.5, gpu: 0.5 },
    maxConcurrent: 2,
    gpus: [gpus[0]],
  }).fit();
  const ms = metricsOf(r);
  const done = ms.filter((m) => m.status === "terminated");
  const [a, b] = done;
  const together = a && b && Number(a.start) < Number(b.end) && Number(b.start) < Number(a.end);
  if (done.length !== 2) say("FAIL", "two trials share one GPU (gpu: 0.5)", JSON.stringify(ms));
  else if (a.cuda !== b.cuda || !together || a.growth !== "true") {
    say(
      "FAIL",
      "two trials share one GPU (gpu: 0.5)",
      `devices ${a.cuda}/${b.cuda}, overlapping ${together}, TF_FORCE_GPU_ALLOW_GROWTH ${a.growth}`,
    );
  } else {
    say(
      "ok",
      "two trials share one GPU (gpu: 0.5)",
      `both on CUDA_VISIBLE_DEVICES=${a.cuda} at once (TF_FORCE_GPU_ALLOW_GROWTH=true), ` +
        `${a.backend} ${Number(a.sps).toFixed(0)} + ${
          Number(b.sps).toFixed(0)
        } samples/s (${a.kind})`,
    );
  }
} else {
  say("SKIP", "two trials share one GPU (gpu: 0.5)", "no GPU");
}

// 5. Multi-worker trials: the workers of one trial on the GPUs, and the ring all-reduce's bandwidth
// with 2 and 4 workers on this machine's cores (100 MB of float32).
{
  const hosts = navigator.hardwareConcurrency;
  for (const workers of [2, 4]) {
    const perWorker = gpus.length >= workers ? 1 : gpus.length > 0 ? 0.5 : 0;
    if (workers > hosts) {
      say("SKIP", `multi-worker trial (${workers} workers)`, `${hosts} CPUs`);
      continue;
    }
    const r = await new Tuner({
      ...base,
      name: `workers${workers}`,
      space: { mode: "workers", floats: 25_000_000 },
      resources: { workers, cpu: 1, gpu: workers === 2 ? perWorker : 0 },
      gpus: workers === 2 && perWorker === 0.5 ? [gpus[0]] : gpus,
    }).fit();
    const [m] = metricsOf(r);
    const ok = m?.status === "terminated" && m.wrong === 0 && m.world === workers;
    say(
      ok ? "ok" : "FAIL",
      `multi-worker trial (${workers} workers${workers === 2 ? `, gpu: ${perWorker} each` : ""})`,
      ok
        ? `all-reduce exact; devices per rank ${m.devices}; 100 MB all-reduce ${
          Number(m.allreduce_s).toFixed(3)
        } s (${Number(m.gbps).toFixed(2)} GB/s of data per worker) on ${hosts} CPUs`
        : JSON.stringify(m),
    );
  }
}

console.log(`${failed === 0 ? "all checks passed" : `${failed} check(s) failed`} (${storage})`);
Deno.exit(failed === 0 ? 0 : 1);
