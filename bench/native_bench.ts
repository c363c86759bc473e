/**
 * The native TensorFlow backend's figures (issue 12):
 *
 * 1. Training samples/s of the examples' MLP (784-128-256-10) and of a small conv net
 *    (conv16-conv32-dense64) on real MNIST, batch 64, one epoch after a one-batch warm-up:
 *    tensorflow (native) vs wasm vs cpu, each run a fresh `deno run` process, the backends
 *    alternating; with the time to load the backend and the peak RSS. wasm cannot train the conv
 *    net (no Conv2DBackpropFilter kernel): its inference speed is shown instead, marked.
 * 2. The demo end to end (`deno task demo`, small budget) with trials on native vs on wasm
 *    (`BACKEND=wasm`), alternating: wall time and best val_acc.
 * 3. With `--setup-cold`: `deno task setup:tensorflow` into an empty cache with pip's cache off
 *    (downloads the 274 MB wheel): time per step, total, disk used. Then restores the project's
 *    build from the normal cache.
 *
 * Prints figures with the load average next to them; asserts nothing.
 *
 *     deno run -A bench/native_bench.ts [--quick] [--rounds=N] [--only=throughput,demo]
 *                                       [--setup-cold]
 */
import { writeMnistCache } from "../plugins/backends/mnist.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const only = flag("only")?.split(",") ?? ["throughput", "demo"];
const rounds = Number(flag("rounds") ?? (quick ? 1 : 3));
const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const loadavg = () => Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs: number[], d = 0) =>
  `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;

async function sh(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    ok: out.success,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

const native = await sh([deno, "run", "-A", "tools/setup_tensorflow.ts"]);
if (!native.ok) {
  console.log(`The native backend is not built, so it is left out:\n${native.text}`);
}
const backends = native.ok ? ["tensorflow", "wasm", "cpu"] : ["wasm", "cpu"];

if (only.includes("throughput")) {
  const dataDir = await Deno.makeTempDir({ prefix: "tunebox_native_bench_" });
  await writeMnistCache(dataDir);
  const samples = (b: string, model: string) =>
    b === "cpu" ? (model === "conv" ? 128 : 1000) : model === "conv" ? 2000 : 8000;
  type Row = { sps: number[]; loadMs: number[]; rss: number[]; kind: string; load: number[] };
  const rows = new Map<string, Row>();
  for (let r = 0; r < rounds; r++) {
    const order = backends.map((_, i) => backends[(i + r) % backends.length]);
    for (const b of order) {
      for (const model of ["mlp", "conv"]) {
        const load0 = loadavg();
        const out = await sh([
          deno,
          "run",
          "-A",
          "bench/fixtures/native_fit.ts",
          b,
          model,
          String(samples(b, model)),
          dataDir,
        ], { TF_CPP_MIN_LOG_LEVEL: "2" });
        const line = out.text.trim().split("\n").find((l) => l.startsWith("{"));
        if (!out.ok || !line) {
          console.log(`${b} ${model}: failed\n${out.text}`);
          continue;
        }
        const m = JSON.parse(line);
        const key = `${model} ${b}`;
        const row: Row = rows.get(key) ?? { sps: [], loadMs: [], rss: [], kind: m.kind, load: [] };
        row.sps.push(m.sps);
        row.loadMs.push(m.loadMs);
        row.rss.push(m.peakRssMb);
        row.load.push(load0);
        rows.set(key, row);
      }
    }
  }
  console.log(
    `\nThroughput, ${rounds} round(s), backends alternating; median (min–max); load avg ` +
      `during the runs ${range([...rows.values()].flatMap((r) => r.load), 1)}`,
  );
  console.log("model backend      samples/s            load backend ms   peak RSS MB");
  for (const [key, r] of rows) {
    const [model, b] = key.split(" ");
    console.log(
      `${model.padEnd(5)} ${b.padEnd(12)} ${
        (range(r.sps) + (r.kind === "predict" ? " predict" : "")).padEnd(20)
      } ${range(r.loadMs).padEnd(17)} ${range(r.rss)}`,
    );
  }
  for (const model of ["mlp", "conv"]) {
    const nat = rows.get(`${model} tensorflow`), w = rows.get(`${model} wasm`);
    const c = rows.get(`${model} cpu`);
    if (nat && w && w.kind === "train") {
      console.log(`${model}: native / wasm = ${(median(nat.sps) / median(w.sps)).toFixed(2)}x`);
    }
    if (nat && c) {
      console.log(`${model}: native / cpu = ${(median(nat.sps) / median(c.sps)).toFixed(1)}x`);
    }
  }
  await Deno.remove(dataDir, { recursive: true });
}

if (only.includes("demo") && native.ok) {
  const env = { NUM_SAMPLES: "4", EPOCHS: "3", TRAIN_SIZE: "4000" };
  const res: Record<string, { wall: number[]; acc: number[]; load: number[] }> = {};
  for (let r = 0; r < Math.max(1, rounds - 1); r++) {
    for (const b of r % 2 === 0 ? ["tensorflow", "wasm"] : ["wasm", "tensorflow"]) {
      const storage = await Deno.makeTempDir({ prefix: "tunebox_native_demo_" });
      const load0 = loadavg();
      const t0 = performance.now();
      const out = await sh([deno, "task", "demo"], {
        ...env,
        STORAGE: storage,
        NAME: "demo",
        ...(b === "wasm" ? { BACKEND: "wasm" } : {}),
      });
      const wall = (performance.now() - t0) / 1000;
      const acc = Number(/val_acc (\d\.\d+)/.exec(out.text)?.[1]);
      const used = /TensorFlow.js backend: (.*)/.exec(out.text)?.[1] ?? "?";
      if (!out.ok) console.log(`demo on ${b} failed:\n${out.text.slice(-2000)}`);
      else console.log(`demo ${b}: ${wall.toFixed(1)} s, best val_acc ${acc} (${used})`);
      (res[b] ??= { wall: [], acc: [], load: [] }).wall.push(wall);
      res[b].acc.push(acc);
      res[b].load.push(load0);
      await Deno.remove(storage, { recursive: true });
    }
  }
  console.log(
    `\nDemo end to end (NUM_SAMPLES=4 EPOCHS=3 TRAIN_SIZE=4000, 2 trials at once), median (min–max)`,
  );
  for (const [b, r] of Object.entries(res)) {
    console.log(
      `${b.padEnd(11)} wall ${range(r.wall, 1)} s, best val_acc ${range(r.acc, 3)}, load avg ${
        range(r.load, 1)
      }`,
    );
  }
}

if (args.includes("--setup-cold")) {
  const cache = await Deno.makeTempDir({ prefix: "tunebox_cold_cache_" });
  const t0 = performance.now();
  const out = await sh(
    [deno, "run", "-A", "tools/setup_tensorflow.ts", "--cache-dir", cache, "--force"],
    { PIP_NO_CACHE_DIR: "1" },
  );
  const total = (performance.now() - t0) / 1000;
  console.log(`\nSetup, cold (empty cache, pip cache off), load avg ${loadavg()}:`);
  console.log(out.text.trim());
  const du = await sh(["du", "-sb", cache]);
  console.log(
    `total ${total.toFixed(1)} s; disk: ${(Number(du.text.split(/\s/)[0]) / 1e6).toFixed(0)} MB`,
  );
  await Deno.remove(cache, { recursive: true });
  const again = await sh([deno, "run", "-A", "tools/setup_tensorflow.ts"]);
  console.log(`restored the project's build: ${again.text.trim().split("\n").at(-1)}`);
}
