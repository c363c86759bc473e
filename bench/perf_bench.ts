/**
 * Issue 14's table, side by side with Optuna in the same run: sandboxed trivial trials (the
 * trainable importing `mod.ts`, and `./trainable`), in-process trials (64 × 20 and 10,000 × 1),
 * with the driver's wall time and peak memory, and the CPU time of the driver and of its trial
 * processes; the 10,000-trial row again with `trialFolders: "end"` (every trial's folder
 * written). `--scale` adds 100,000 in-process trials × 1 report and 1,000 sandboxed trials. Each row runs in a fresh driver process, so its peak RSS
 * (`VmHWM`) is that row's alone.
 *
 *     deno run -A bench/perf_bench.ts [--quick] [--scale] [--no-peers]
 *
 * Optuna comes from `$TUNEBOX_PYTHON` (default `.venv/bin/python`; `optuna==5.0.0` is in
 * tests/peers/requirements.txt). Nothing here asserts a speed.
 */
import { Tuner, uniform } from "../mod.ts";

interface Row {
  readonly name: string;
  readonly wallS: number;
  readonly peakMb: number;
  /** CPU seconds of the driver process (user + system). */
  readonly driverCpuS?: number;
  /** CPU seconds of its trial processes that ended (user + system). */
  readonly trialsCpuS?: number;
  /** Optuna: the wall time with `create_study()` too. */
  readonly withCreateS?: number;
}

const here = new URL(".", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;

/** Peak resident memory of this process, in MiB (Linux). */
function peakMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds of this process and of its ended children (Linux, `/proc/self/stat`). */
function cpuS(): { self: number; children: number } {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // Fields 14-17 of proc(5) (utime, stime, cutime, cstime), from field 3 on here.
  return { self: (f[11] + f[12]) / 100, children: (f[13] + f[14]) / 100 };
}

/** One row, run in this process (the child side). */
async function runRow(kind: string, trials: number, reports: number): Promise<Row> {
  const storage = await Deno.makeTempDir({ prefix: "tunebox-perf-" });
  const common = {
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min" as const,
    numSamples: trials,
    maxConcurrent: 2,
    seed: 1,
    storage,
    reporter: false as const,
  };
  // Module loading stays outside the timed window, as `import optuna` does in the peer: the
  // Tuner loads its driver half (runner, store, executors) on the first fit(), so load it now.
  await import("../tuner/_fit.ts");
  const cpu0 = cpuS();
  const t0 = performance.now();
  if (kind === "inprocess" || kind === "inprocess-end") {
    await new Tuner({
      ...common,
      ...(kind === "inprocess-end" ? { trialFolders: "end" as const } : {}),
      trainable: async (config, session) => {
        for (let i = 0; i < reports; i++) {
          await session.report({ loss: (config.x - 0.5) ** 2 + 1 / (i + 1) });
        }
      },
    }).fit();
  } else {
    const fixture = kind === "sandboxed-mod" ? "trivial_mod.ts" : "trivial.ts";
    await new Tuner({ ...common, trainable: new URL(`./fixtures/${fixture}`, import.meta.url) })
      .fit();
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpu1 = cpuS();
  const row = {
    name: `${kind} ${trials}x${reports}`,
    wallS,
    peakMb: peakMb(),
    driverCpuS: cpu1.self - cpu0.self,
    trialsCpuS: cpu1.children - cpu0.children,
  };
  await Deno.remove(storage, { recursive: true });
  return row;
}

async function child(kind: string, trials: number, reports: number): Promise<Row> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}perf_bench.ts`, "--row", kind, String(trials), String(reports)],
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) throw new Error(`row ${kind} ${trials}x${reports} failed: ${text}`);
  return JSON.parse(text);
}

async function optuna(rows: [number, number][]): Promise<Row[]> {
  const python = Deno.env.get("TUNEBOX_PYTHON") ?? `${root}.venv/bin/python`;
  const out: Row[] = [];
  for (const [trials, reports] of rows) {
    const r = await new Deno.Command(python, {
      args: [`${here}peers/optuna_inprocess.py`, "--row", String(trials), String(reports)],
      stderr: "inherit",
    }).output();
    if (!r.success) throw new Error(`the Optuna peer failed (${python})`);
    const j = JSON.parse(new TextDecoder().decode(r.stdout));
    out.push({
      name: `optuna ${trials}x${reports}`,
      wallS: j.wall_s,
      peakMb: j.max_rss_mb,
      withCreateS: j.wall_with_create_s,
    });
  }
  return out;
}

if (Deno.args[0] === "--row") {
  const [, kind, trials, reports] = Deno.args;
  console.log(JSON.stringify(await runRow(kind, Number(trials), Number(reports))));
  Deno.exit(0);
}

const quick = Deno.args.includes("--quick");
const scale = Deno.args.includes("--scale");
const peers = !Deno.args.includes("--no-peers");
const n = quick ? 8 : 64;
const big = quick ? 1000 : 10_000;
const plan: [string, number, number][] = [
  ["sandboxed-mod", n, 20],
  ["sandboxed-trainable", n, 20],
  ["inprocess", n, 20],
  ["inprocess", big, 1],
  ["inprocess-end", big, 1],
  ...(scale ? [["inprocess", 100_000, 1], ["sandboxed-trainable", 1000, 1]] as const : []),
].map((r) => [...r] as [string, number, number]);

const ours: Row[] = [];
for (const [kind, trials, reports] of plan) {
  const r = await child(kind, trials, reports);
  console.log(
    `${r.name.padEnd(36)} ${r.wallS.toFixed(3).padStart(8)} s ${r.peakMb.toFixed(0)} MB ` +
      `(CPU: driver ${r.driverCpuS?.toFixed(2)} s, trials ${r.trialsCpuS?.toFixed(2)} s)`,
  );
  ours.push(r);
}
if (peers) {
  const theirs = await optuna([
    [n, 20],
    [big, 1],
    ...(scale ? [[100_000, 1] as [number, number]] : []),
  ]);
  for (const r of theirs) {
    console.log(
      `${r.name.padEnd(36)} ${r.wallS.toFixed(3).padStart(8)} s ${r.peakMb.toFixed(0)} MB ` +
        `(with create_study: ${r.withCreateS?.toFixed(3)} s)`,
    );
    const mine = ours.find((o) => o.name === r.name.replace("optuna", "inprocess"));
    if (mine) {
      console.log(
        `  ratio tunebox/optuna: time ${(mine.wallS / r.wallS).toFixed(2)}×, ` +
          `peak memory ${(mine.peakMb / r.peakMb).toFixed(2)}×`,
      );
    }
  }
}
