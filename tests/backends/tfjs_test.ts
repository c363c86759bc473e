import { deepStrictEqual, equal, match, ok, rejects, throws } from "#assert";
import type { SandboxPolicy } from "../../core/plugin.ts";
import { discoverGpus, ResourcePool } from "../../core/resources.ts";
import { loadMnist, mnistTensors } from "../../plugins/backends/mnist.ts";
import {
  type LayersModel,
  loadTfjs,
  restoreModel,
  type Tf,
  tfjsBackend,
  tuneCallback,
} from "../../plugins/backends/tfjs.ts";
import { RecordingSession } from "./_session.ts";

const PROBE = new URL("./_probe_tfjs.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

function mlp(tf: Tf, hidden = 64): LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: hidden,
        activation: "relu",
        inputShape: [784],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        units: 10,
        activation: "softmax",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  model.compile({
    optimizer: tf.train.adam(1e-3),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  return model;
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`Expected ${what}, got undefined`);
  return value;
}

/** The `deno run` permission flags for a policy, as the driver would build them. */
function flags(policy: SandboxPolicy): string[] {
  const out: string[] = [];
  const add = (flag: string, list: readonly string[] | undefined) => {
    if (list && list.length > 0) out.push(`--allow-${flag}=${list.join(",")}`);
  };
  add("read", policy.read);
  add("write", policy.write);
  add("env", policy.env);
  add("sys", policy.sys);
  add("ffi", policy.ffi);
  return out;
}

interface ProbeResult {
  backend: string;
  active: string;
  sum: number;
  warnings: string[];
}

/** Runs the probe in a sandboxed child with only `perms` and `env`. */
async function probe(
  prefer: string[] | "default",
  perms: string[],
  env: Record<string, string> = {},
): Promise<ProbeResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--cached-only",
      `--config=${CONFIG}`,
      ...perms,
      PROBE,
      prefer === "default" ? prefer : JSON.stringify(prefer),
    ],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  ok(out.success, `probe failed (code ${out.code}):\n${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("loadTfjs picks wasm when it is preferred and its .wasm files are readable", async () => {
  const warnings: string[] = [];
  const { tf, backend, skipped } = await loadTfjs({
    prefer: ["wasm", "cpu"],
    warn: (m) => warnings.push(m),
  });
  equal(backend, "wasm");
  equal(tf.getBackend(), "wasm");
  deepStrictEqual([skipped, warnings], [[], []]);
});

Deno.test("tuneCallback reports the mapped metrics per epoch and checkpoints on real MNIST", async () => {
  const { tf } = await loadTfjs({ prefer: ["wasm"] });
  const data = await loadMnist({ train: 512, validation: 128, test: 256 });
  const train = mnistTensors(tf, data.train);
  const val = mnistTensors(tf, data.validation);
  const test = mnistTensors(tf, data.test);
  const dir = await Deno.makeTempDir({ prefix: "tunebox_tfjs_" });
  try {
    const session = new RecordingSession(dir);
    await loadTfjs({ prefer: ["wasm"], session }); // tags the session's first report
    const model = mlp(tf);
    const history = await model.fit(train.xs, train.ys, {
      epochs: 2,
      batchSize: 64,
      shuffle: false,
      validationData: [val.xs, val.ys],
      verbose: 0,
      callbacks: [
        tuneCallback(session, {
          metrics: { val_loss: "val_loss", val_acc: "val_acc", loss: "loss" },
          on: "epochEnd",
          checkpoint: true,
        }),
      ],
    });
    equal(session.reports.length, 2);
    deepStrictEqual(Object.keys(session.reports[0]).sort(), [
      "backend",
      "loss",
      "val_acc",
      "val_loss",
    ]);
    equal(session.reports[0].backend, "wasm");
    deepStrictEqual(Object.keys(session.reports[1]).sort(), ["loss", "val_acc", "val_loss"]);
    for (let epoch = 0; epoch < 2; epoch++) {
      equal(session.reports[epoch].val_loss, history.history.val_loss[epoch]);
      equal(session.reports[epoch].val_acc, history.history.val_acc[epoch]);
    }
    // One epoch on 512 real digits already beats chance (0.1) by far.
    ok((session.reports[1].val_acc as number) > 0.5, JSON.stringify(session.reports));
    equal(session.checkpoints.length, 2);
    for (const c of session.checkpoints) {
      deepStrictEqual(
        [...Deno.readDirSync(c)].map((e) => e.name).sort(),
        ["model.json", "weights.bin"],
      );
    }

    const restored = must(await restoreModel(session), "a restored model");
    const a = (model.predict(test.xs) as ReturnType<Tf["tensor2d"]>).dataSync();
    const b = (restored.predict(test.xs) as ReturnType<Tf["tensor2d"]>).dataSync();
    deepStrictEqual(Array.from(b), Array.from(a));
    // The optimizer came back too: the restored model trains on without compile().
    equal(restored.optimizer?.getClassName(), "Adam");
    await restored.fit(train.xs, train.ys, { epochs: 1, batchSize: 64, verbose: 0 });
    restored.dispose();
    model.dispose();
  } finally {
    tf.dispose([train.xs, train.ys, val.xs, val.ys, test.xs, test.ys]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tuneCallback stops model.fit when the session's signal is aborted", async () => {
  const { tf } = await loadTfjs({ prefer: ["wasm"] });
  const data = await loadMnist({ train: 128, test: 0 });
  const train = mnistTensors(tf, data.train);
  const dir = await Deno.makeTempDir({ prefix: "tunebox_tfjs_" });
  try {
    const session = new RecordingSession(dir, { stopAfter: 2 });
    const model = mlp(tf, 16);
    await model.fit(train.xs, train.ys, {
      epochs: 10,
      verbose: 0,
      callbacks: [tuneCallback(session, { metrics: ["loss"], checkpointEvery: 2 })],
    });
    equal(session.reports.length, 2);
    equal(session.checkpoints.length, 1); // every 2nd report only
    model.dispose();
  } finally {
    tf.dispose([train.xs, train.ys]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTfjs tags the first report even when the trainable calls session.report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_tfjs_" });
  try {
    const session = new RecordingSession(dir);
    await loadTfjs({ prefer: ["cpu"], session });
    await session.report({ score: 1 });
    await session.report({ score: 2 });
    deepStrictEqual(session.reports, [{ score: 1, backend: "cpu" }, { score: 2 }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tuneCallback names a log key model.fit did not log, and the keys it did", async () => {
  const { tf } = await loadTfjs({ prefer: ["cpu"] });
  const session = new RecordingSession(await Deno.makeTempDir({ prefix: "tunebox_tfjs_" }));
  const model = mlp(tf, 4);
  try {
    await rejects(
      () =>
        model.fit(tf.zeros([8, 784]), tf.oneHot(tf.zeros([8], "int32"), 10), {
          epochs: 1,
          verbose: 0,
          callbacks: [tuneCallback(session, { metrics: { val_loss: "val_loss" } })],
        }),
      {
        name: "TypeError",
        message: 'tuneCallback: metric "val_loss" reads log key "val_loss", which model.fit did ' +
          "not log at epochEnd (it logged: loss, acc). val_* keys need validationData or " +
          "validationSplit.",
      },
    );
  } finally {
    model.dispose();
    await Deno.remove(session.trialDir, { recursive: true });
  }
});

Deno.test("tuneCallback and loadTfjs reject malformed options with messages naming them", async () => {
  const session = new RecordingSession("/nonexistent");
  throws(() => tuneCallback(session, { on: "epoch" as "epochEnd" }), {
    name: "TypeError",
    message: 'tuneCallback option "on" must be "epochEnd" or "batchEnd", got "epoch"',
  });
  throws(() => tuneCallback(session, { metrics: {} }), {
    name: "TypeError",
    message: 'tuneCallback option "metrics" must map reported names to model.fit log keys, ' +
      'e.g. { val_loss: "val_loss" }, or list log keys; got {}',
  });
  throws(() => tuneCallback(session, { checkpointEvery: 0 }), {
    name: "RangeError",
    message: 'tuneCallback option "checkpointEvery" must be a whole number >= 1, got 0',
  });
  throws(() => tuneCallback(undefined as unknown as RecordingSession), {
    name: "TypeError",
    message: "tuneCallback needs the trial's session (an object with report()), got undefined",
  });
  await rejects(() => loadTfjs({ prefer: [] }), {
    name: "TypeError",
    message: 'loadTfjs option "prefer" must be a non-empty list of backends (tensorflow-gpu, ' +
      "webgpu, tensorflow, wasm, cpu), got []",
  });
  await rejects(() => loadTfjs({ prefer: ["webgl" as "wasm"] }), {
    name: "TypeError",
    message: 'loadTfjs option "prefer" has an unknown backend "webgl": expected one of ' +
      "tensorflow-gpu, webgpu, tensorflow, wasm, cpu",
  });
  throws(() => tfjsBackend({ native: "yes" as unknown as boolean }), {
    name: "TypeError",
    message: 'tfjsBackend option "native" must be a boolean, got "yes"',
  });
  const empty = await Deno.makeTempDir({ prefix: "tunebox_tfjs_" });
  try {
    await rejects(() => restoreModel(empty), {
      name: "NotFound",
      message: `No model checkpoint in "${empty}": model.json is missing (was it saved with ` +
        "tuneCallback or saveModel?)",
    });
    equal(await restoreModel(session), undefined); // a fresh trial has nothing to restore
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("a sandboxed trial with tfjsBackend().permissions() runs on wasm", async () => {
  const backend = tfjsBackend();
  const policy = backend.permissions();
  match(policy.read?.[0] ?? "", /tfjs-backend-wasm\/dist$/);
  equal(policy.ffi, undefined); // no FFI unless native backends are asked for
  const r = await probe(["wasm", "cpu"], flags(policy), backend.env([]));
  deepStrictEqual(r, { backend: "wasm", active: "wasm", sum: 512, warnings: [] });
});

Deno.test("a sandboxed trial without read on the .wasm folder falls back to cpu and says why", async () => {
  const r = await probe(["wasm", "cpu"], []);
  equal(r.backend, "cpu");
  equal(r.active, "cpu");
  equal(r.warnings.length, 1);
  match(
    r.warnings[0],
    /^wasm skipped: the sandbox does not allow reading .*tfjs-backend-wasm\/dist \(grant --allow-read=.*, as tfjsBackend\(\)\.permissions\(\) does\) — using cpu$/,
  );
});

Deno.test("loadTfjs falls back from tensorflow-gpu with the setup hint when tfjs-node-gpu is not built", async () => {
  const r = await probe(
    ["tensorflow-gpu", "wasm"],
    flags(tfjsBackend({ native: true }).permissions()),
  );
  deepStrictEqual(r.warnings, [
    "tfjs-node-gpu is not built (no lib/napi-v*/tfjs_binding.node): build it with `deno task " +
    "setup:tensorflow --gpu` (or `tunebox backend install tensorflow-gpu`) — using wasm",
  ]);
  equal(r.backend, "wasm");
});

Deno.test("a trial given a GPU but no GPU backend warns even with the default preferences", async () => {
  const backend = tfjsBackend();
  const env = backend.env([{ index: 0, name: "GPU 0" }]);
  const r = await probe("default", flags(backend.permissions()), env);
  equal(r.backend, "wasm");
  equal(r.warnings.length, 1);
  match(
    r.warnings[0],
    /^This trial holds GPU 0 \(CUDA_VISIBLE_DEVICES\) but no GPU backend loaded: tfjs-node-gpu (is not built|skipped)/,
  );
  match(r.warnings[0], / — using wasm$/);
});

Deno.test("a trial with no GPU skips tfjs-node-gpu quietly under the default preferences", async () => {
  const backend = tfjsBackend();
  const pool = new ResourcePool({ cpus: 1, gpus: [{ index: 0, name: "GPU 0" }] });
  const alloc = must(pool.tryAcquire("t", { cpu: 1, gpu: 0 }), "an allocation");
  const r = await probe("default", flags(backend.permissions()), { ...alloc.env });
  deepStrictEqual([r.backend, r.warnings], ["wasm", []]);
});

const gpus = await discoverGpus({ warn: () => {} }).catch(() => []);
Deno.test({
  name: gpus.length > 0
    ? `GPU smoke: a trial pinned to ${gpus[0].name} loads a backend and trains`
    : "GPU smoke: ignored, nvidia-smi -L lists no GPU on this machine",
  ignore: gpus.length === 0,
  async fn() {
    const pool = new ResourcePool({ cpus: 1, gpus });
    const alloc = must(pool.tryAcquire("gpu-smoke", { cpu: 1, gpu: 0.5 }), "an allocation");
    equal(alloc.env.TF_FORCE_GPU_ALLOW_GROWTH, "true");
    const backend = tfjsBackend({ native: true });
    const policy = backend.permissions();
    const r = await probe(
      ["tensorflow-gpu", "webgpu", "wasm", "cpu"],
      flags(policy),
      { ...alloc.env },
    );
    console.log(`GPU smoke: backend ${r.backend}; ${r.warnings.join(" | ") || "no warnings"}`);
    equal(r.sum, 512);
    ok(["tensorflow-gpu", "webgpu", "wasm"].includes(r.backend));
  },
});
