/**
 * Training figures (issue 6): the examples' MLP (784-128-256-10, adam, batch 64, real MNIST).
 *
 * 1. MNIST load: decoding the `mnist` package's JSON vs reading the binary cache.
 * 2. Throughput (samples/s) on the wasm and cpu backends, in plain `deno run -A` processes,
 *    training only (no validation, no checkpoints), the backends alternating.
 * 3. The sandbox's cost: the same training (validation, a report and a checkpoint every epoch)
 *    as a sandboxed Tunebox trial (subprocess executor, the demo's sandbox flags) and as a plain
 *    `deno run -A` of the same module (bench/fixtures/mnist_fit.ts), alternating S P, P S, ...
 *    Timings come from inside each process: start-up (spawn to `onTrainBegin`), training
 *    (samples/s and CPU during epochs), the report + checkpoint between epochs, teardown.
 * 4. `02_mnist_asha` end to end (`deno task demo`): wall time and best validation accuracy.
 *
 * Prints figures with the load average (/proc/loadavg) next to each; asserts nothing.
 *
 *     deno run -A bench/training_bench.ts [--quick] [--only=load,throughput,sandbox,demo]
 *                                         [--runs=N] [--json=out.json]
 */
import { Tuner } from "../mod.ts";
import type { Callback } from "../core/plugin.ts";
import { tfjsBackend } from "../plugins/backends/tfjs.ts";
import { loadMnist, writeMnistCache } from "../plugins/backends/mnist.ts";
import type { MnistFitConfig, MnistFitTimings } from "./fixtures/mnist_fit.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const flag = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const only = flag("only")?.split(",") ?? ["load", "throughput", "sandbox", "demo"];
const runsArg = flag("runs");
const jsonOut = flag("json");

const root = new URL("..", import.meta.url).pathname;
const fixture = new URL("./fixtures/mnist_fit.ts", import.meta.url);
const deno = Deno.execPath();
const now = (): number => performance.timeOrigin + performance.now();

function loadavg(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function spread(xs: number[], digits = 0): string {
  const f = (x: number) => x.toFixed(digits);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;

/** What one run of the fixture measured, in ms unless named otherwise. */
interface Run {
  variant: "sandboxed" | "plain";
  backend: string;
  /** Load average (1 min) before and after the run. */
  load: [number, number];
  /** Spawn (plain) or the trial's start (sandboxed) to its exit. */
  wallMs: number;
  /** Spawn to `onTrainBegin`. */
  startupMs: number;
  /** The parts of start-up: exec + runtime boot, module graph (+ handshake), tfjs, data+model. */
  bootMs: number;
  moduleMs: number;
  tfjsMs: number;
  dataMs: number;
  /** Time inside epochs (batches and the validation pass), all epochs. */
  trainMs: number;
  trainCpuMs: number;
  /** Training samples per second of `trainMs`. */
  samplesPerS: number;
  /** Samples per second of the median epoch after the first (steady state). */
  steadySamplesPerS: number;
  /** Samples per second of the fastest epoch (the least disturbed by other load). */
  bestEpochSamplesPerS: number;
  /** Training samples per second of process CPU time (robust to other load). */
  samplesPerCpuS: number;
  /** Process CPU from the runtime's start to `onTrainBegin`. */
  startupCpuMs: number;
  /** Time between epochs (the report and checkpoint), mean per epoch. */
  betweenEpochsMs: number;
  /** `model.fit` returned to the process's exit (as the bench or the driver saw it). */
  teardownMs: number;
  /** Process CPU from start to `fit` end. */
  totalCpuMs: number;
  /** Sandboxed only: `Tuner.fit()` from call to return (prepare, `deno cache`, close). */
  tunerWallMs?: number;
}

function derive(
  variant: Run["variant"],
  t: MnistFitTimings,
  cfg: MnistFitConfig,
  spawn: number,
  exit: number,
  load: [number, number],
): Run {
  const trainMs = t.epochs.reduce((s, e) => s + (e.end - e.begin), 0);
  let between = 0;
  t.epochs.forEach((e, i) => (between += (t.epochs[i + 1]?.begin ?? t.fitEnd) - e.end));
  const steady = t.epochs.length > 1
    ? median(t.epochs.slice(1).map((e) => e.end - e.begin))
    : t.epochs[0].end - t.epochs[0].begin;
  return {
    variant,
    backend: t.backend,
    load,
    wallMs: exit - spawn,
    startupMs: t.fitStart - spawn,
    bootMs: t.processStart - spawn,
    moduleMs: t.runStart - t.processStart,
    tfjsMs: t.tfjsReady - t.runStart,
    dataMs: t.ready - t.tfjsReady,
    trainMs,
    trainCpuMs: t.epochs.reduce((s, e) => s + e.cpuMs, 0),
    samplesPerS: (cfg.train_size * t.epochs.length) / (trainMs / 1000),
    steadySamplesPerS: cfg.train_size / (steady / 1000),
    bestEpochSamplesPerS: cfg.train_size /
      (Math.min(...t.epochs.map((e) => e.end - e.begin)) / 1000),
    samplesPerCpuS: (cfg.train_size * t.epochs.length) /
      (t.epochs.reduce((s, e) => s + e.cpuMs, 0) / 1000),
    startupCpuMs: t.totalCpuMs - t.fitCpuMs,
    betweenEpochsMs: between / t.epochs.length,
    teardownMs: exit - t.fitEnd,
    totalCpuMs: t.totalCpuMs,
  };
}

async function plainRun(cfg: MnistFitConfig): Promise<Run> {
  const out = await Deno.makeTempDir({ prefix: "tunebox_train_plain_" });
  const l0 = loadavg();
  const spawn = now();
  const res = await new Deno.Command(deno, {
    args: ["run", "-A", fixture.pathname, JSON.stringify(cfg), out],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const exit = now();
  if (!res.success) {
    throw new Error(`plain run failed: ${new TextDecoder().decode(res.stderr).slice(-2000)}`);
  }
  const t = JSON.parse(await Deno.readTextFile(`${out}/bench_timings.json`)) as MnistFitTimings;
  await Deno.remove(out, { recursive: true });
  return derive("plain", t, cfg, spawn, exit, [l0, loadavg()]);
}

async function sandboxedRun(cfg: MnistFitConfig, dataDir: string): Promise<Run> {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_train_sandboxed_" });
  let start = 0, end = 0, dir = "";
  const timer: Callback = {
    name: "bench-timer",
    onTrialStart: () => void (start = now()),
    onTrialEnd: (e) => {
      end = now();
      dir = e.trial.dir;
    },
  };
  const l0 = loadavg();
  const t0 = now();
  const results = await new Tuner({
    trainable: fixture,
    space: { ...cfg },
    metric: "loss",
    mode: "min",
    numSamples: 1,
    maxConcurrent: 1,
    seed: 0,
    storage,
    name: "sandboxed",
    reporter: false,
    callbacks: [timer],
    // The demo's sandbox: the shared data folder and the wasm files, read-only.
    sandbox: { read: [dataDir, ...(tfjsBackend().permissions().read ?? [])] },
  }).fit();
  const tunerWall = now() - t0;
  const trial = results.trials[0];
  if (trial?.status !== "terminated") {
    const stderr = await Deno.readTextFile(`${dir}/stderr.log`).catch(() => "");
    throw new Error(`sandboxed trial ended ${trial?.status}: ${trial?.error ?? ""} ${stderr}`);
  }
  const t = JSON.parse(await Deno.readTextFile(`${dir}/bench_timings.json`)) as MnistFitTimings;
  await Deno.remove(storage, { recursive: true });
  return {
    ...derive("sandboxed", t, cfg, start, end, [l0, loadavg()]),
    tunerWallMs: tunerWall,
  };
}

const report: Record<string, unknown> = { quick, date: new Date().toISOString() };
const line = (s = "") => console.log(s);

line(
  `Training bench${
    quick ? " (--quick)" : ""
  }: Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs; load average at start ${
    Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
  }`,
);

const dataDir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tunebox_train_data_" }));
await writeMnistCache(dataDir);

const base: MnistFitConfig = {
  layer_1: 128,
  layer_2: 256,
  lr: 1e-3,
  batch_size: 64,
  epochs: 3,
  train_size: 8000,
  validation: 0,
  checkpoint: false,
  backend: "wasm",
  data_dir: dataDir,
};

// ---------------------------------------------------------------- 1. MNIST load
if (only.includes("load")) {
  const decode: number[] = [], cached: number[] = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    let t = performance.now();
    await loadMnist({ train: 8000, validation: 1000, test: 0 });
    decode.push(performance.now() - t);
    t = performance.now();
    await loadMnist({ train: 8000, validation: 1000, test: 0, cacheDir: dataDir });
    cached.push(performance.now() - t);
  }
  line(`\n## MNIST load (9,000 digits; load ${loadavg()})`);
  line(`decode the package's JSON   ${spread(decode)} ms`);
  line(`read the binary cache       ${spread(cached)} ms`);
  report.load = { decodeMs: decode, cachedMs: cached };
}

// ---------------------------------------------------------------- 2. throughput
if (only.includes("throughput")) {
  const runs = Number(runsArg ?? (quick ? 1 : 3));
  const sizes = { wasm: quick ? 2048 : 8000, cpu: quick ? 1024 : 2048 };
  const epochs = quick ? 2 : 3;
  const byBackend: Record<string, Run[]> = { wasm: [], cpu: [] };
  for (let i = 0; i < runs; i++) {
    for (const backend of ["wasm", "cpu"] as const) {
      byBackend[backend].push(
        await plainRun({ ...base, backend, epochs, train_size: sizes[backend] }),
      );
    }
  }
  line(
    `\n## Throughput: MLP 784-128-256-10, adam, batch 64, training only (no validation), ` +
      `plain deno run, ${runs} run(s) × ${epochs} epochs, median (min–max)`,
  );
  line(
    "| backend | digits | samples/s, all epochs | after the first | fastest epoch | " +
      "per CPU-second | load |",
  );
  line("| --- | --- | --- | --- | --- | --- | --- |");
  for (const [backend, rs] of Object.entries(byBackend)) {
    const loads = rs.flatMap((r) => r.load);
    line(
      `| ${backend} | ${sizes[backend as "wasm" | "cpu"]} | ${
        spread(rs.map((r) => r.samplesPerS))
      } | ${spread(rs.map((r) => r.steadySamplesPerS))} | ${
        spread(rs.map((r) => r.bestEpochSamplesPerS))
      } | ${spread(rs.map((r) => r.samplesPerCpuS))} | ${Math.min(...loads)}–${
        Math.max(...loads)
      } |`,
    );
  }
  report.throughput = { sizes, epochs, runs: byBackend };
}

// ---------------------------------------------------------------- 3. sandbox cost
if (only.includes("sandbox")) {
  const pairs = Number(runsArg ?? (quick ? 2 : 6));
  const cfg: MnistFitConfig = {
    ...base,
    epochs: quick ? 2 : 3,
    train_size: quick ? 2048 : 8000,
    validation: 1000,
    checkpoint: true,
  };
  const runs: Run[] = [];
  for (let i = 0; i < pairs; i++) {
    // S P, P S, S P, ...: drift in the machine's load falls on both alike.
    const order = i % 2 === 0 ? ["sandboxed", "plain"] : ["plain", "sandboxed"];
    for (const v of order) {
      const r = v === "plain" ? await plainRun(cfg) : await sandboxedRun(cfg, dataDir);
      runs.push(r);
      console.error(
        `  ${v.padEnd(9)} wall ${(r.wallMs / 1000).toFixed(2)} s, ${
          r.samplesPerS.toFixed(0)
        } samples/s, load ${r.load.join("→")}`,
      );
    }
  }
  const S = runs.filter((r) => r.variant === "sandboxed");
  const P = runs.filter((r) => r.variant === "plain");
  const n = cfg.train_size * cfg.epochs;
  line(
    `\n## Sandbox cost: ${cfg.train_size} digits × ${cfg.epochs} epochs (+ 1,000 validation), ` +
      `report + checkpoint every epoch, wasm; ${pairs} sandboxed and ${pairs} plain runs, ` +
      `alternating; median (min–max)`,
  );
  line("| figure | sandboxed trial | plain deno run -A | sandboxed − plain |");
  line("| ------ | --------------- | ----------------- | ----------------- |");
  const row = (name: string, f: (r: Run) => number, digits = 0, rel = true) => {
    const ms = median(S.map(f)), mp = median(P.map(f));
    const d = ms - mp;
    line(
      `| ${name} | ${spread(S.map(f), digits)} | ${spread(P.map(f), digits)} | ${
        d.toFixed(digits)
      }${rel ? ` (${pct(d / mp)})` : ""} |`,
    );
  };
  row("training samples/s (in epochs)", (r) => r.samplesPerS);
  row("fastest epoch, samples/s", (r) => r.bestEpochSamplesPerS);
  row("training CPU ms per 1,000 samples", (r) => (r.trainCpuMs / n) * 1000, 1);
  row("time in epochs, ms", (r) => r.trainMs);
  row("report + checkpoint between epochs, ms each", (r) => r.betweenEpochsMs, 1, false);
  row("start-up: spawn to fit, ms", (r) => r.startupMs, 0, false);
  row("  exec + runtime boot, ms", (r) => r.bootMs, 0, false);
  row("  module graph (+ handshake), ms", (r) => r.moduleMs, 0, false);
  row("  loadTfjs (wasm), ms", (r) => r.tfjsMs, 0, false);
  row("  digits + tensors + model, ms", (r) => r.dataMs, 0, false);
  row("start-up CPU (process start to fit), ms", (r) => r.startupCpuMs, 0, false);
  row("fit end to exit seen by the parent, ms", (r) => r.teardownMs, 0, false);
  row("wall per trial/run, ms", (r) => r.wallMs);
  // Paired: each sandboxed run against the plain run next to it.
  const paired = (f: (r: Run) => number) =>
    S.map((s, i) => f(s) / f(P[i]) - 1).sort((a, b) => a - b);
  const pr = (name: string, f: (r: Run) => number) => {
    const d = paired(f);
    line(`paired ${name}: median ${pct(median(d))} (${pct(d[0])} to ${pct(d[d.length - 1])})`);
  };
  pr("training time (in epochs), sandboxed/plain − 1", (r) => r.trainMs);
  pr("fastest epoch, sandboxed/plain − 1", (r) => 1 / r.bestEpochSamplesPerS);
  pr("training CPU, sandboxed/plain − 1", (r) => r.trainCpuMs);
  pr("wall per run, sandboxed/plain − 1", (r) => r.wallMs);
  line(
    `Tuner.fit() for the one trial (adds prepare: deno cache, socket, experiment files): ${
      spread(S.map((r) => r.tunerWallMs ?? 0))
    } ms, i.e. ${spread(S.map((r) => (r.tunerWallMs ?? 0) - r.wallMs))} ms around the trial`,
  );
  const loads = runs.flatMap((r) => r.load);
  line(`load average during these runs: ${Math.min(...loads)}–${Math.max(...loads)}`);
  report.sandbox = { config: { ...cfg, data_dir: undefined }, runs };
}

// ---------------------------------------------------------------- 4. the demo
if (only.includes("demo")) {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_train_demo_" });
  const env: Record<string, string> = { STORAGE: storage, NAME: "bench_demo" };
  if (quick) Object.assign(env, { NUM_SAMPLES: "4", EPOCHS: "2", TRAIN_SIZE: "2000" });
  const l0 = loadavg();
  const t0 = now();
  // The permissions of `deno task demo`.
  const res = await new Deno.Command(deno, {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      "--allow-sys",
      "--allow-net",
      "examples/02_mnist_asha.ts",
    ],
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = (now() - t0) / 1000;
  const l1 = loadavg();
  const out = new TextDecoder().decode(res.stdout);
  const best = /Best: val_loss ([\d.]+), val_acc ([\d.]+)/.exec(out);
  let trials = 0, epochs = 0, maxAcc = 0;
  const exp = `${storage}/bench_demo`;
  for await (const e of Deno.readDir(exp)) {
    if (!e.isDirectory) continue;
    const text = await Deno.readTextFile(`${exp}/${e.name}/result.jsonl`).catch(() => "");
    if (!text) continue;
    trials++;
    for (const l of text.trim().split("\n")) {
      epochs++;
      maxAcc = Math.max(maxAcc, Number(JSON.parse(l).val_acc));
    }
  }
  await Deno.remove(storage, { recursive: true });
  line(
    `\n## 02_mnist_asha end to end${
      quick ? " (quick: 4 samples, 2 epochs, 2,000 digits)" : " (defaults)"
    }, exit ${res.code}`,
  );
  if (!best) line(new TextDecoder().decode(res.stderr).slice(-2000));
  line(`wall time                                ${wall.toFixed(1)} s`);
  line(`val_acc of the best trial (by val_loss)  ${best?.[2] ?? "?"} (val_loss ${best?.[1]})`);
  line(`highest val_acc of any trial and epoch   ${maxAcc.toFixed(3)}`);
  line(`trials / epochs trained (ASHA)           ${trials} / ${epochs}`);
  line(`load average before → after              ${l0} → ${l1}`);
  report.demo = {
    wallS: wall,
    bestValLoss: Number(best?.[1]),
    bestValAcc: Number(best?.[2]),
    maxValAcc: maxAcc,
    trials,
    epochs,
    load: [l0, l1],
  };
}

await Deno.remove(dataDir, { recursive: true });
if (jsonOut) await Deno.writeTextFile(jsonOut, JSON.stringify(report, null, 2));
