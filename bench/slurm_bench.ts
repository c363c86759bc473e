/**
 * The Slurm executor on the two-node test cluster (tests/peers/slurm_cluster.ts), next to the
 * local subprocess executor:
 * - submit-to-first-report latency per trial (trial start event -> its first report reaching the
 *   driver) and total wall for N trivial trials x R reports, at 8 trials at once;
 * - reports per second through the TLS channel (one trial reporting as fast as acks come back);
 * - with --startup only: six trials one at a time, each start's timeline (runner start -> trial
 *   process start -> trainable imported -> first report at the driver), local and step mode.
 *
 *     deno run -A bench/slurm_bench.ts            # 64 trials x 20 reports
 *     deno run -A bench/slurm_bench.ts --quick    # 16 trials x 20 reports
 *     deno run -A bench/slurm_bench.ts --startup  # the start-up timelines
 *     deno run -A bench/slurm_bench.ts --startup --hold 1000  # trials that last 1 s after their
 *                                                  # report (a warm start has time to boot)
 *
 * Needs root and `slurmctld slurmd slurm-client munge` installed (.ci/run installs them).
 */
import { grid, Tuner } from "../mod.ts";
import type { Callback, Executor } from "../mod.ts";
import { slurmExecutor } from "../plugins/executors/slurm.ts";
import { subprocessExecutor } from "../plugins/executors/subprocess.ts";
import { slurmMissing, startSlurmCluster } from "../tests/peers/slurm_cluster.ts";

const quick = Deno.args.includes("--quick");
const startupOnly = Deno.args.includes("--startup");
const holdAt = Deno.args.indexOf("--hold");
const HOLD_MS = holdAt >= 0 ? Number(Deno.args[holdAt + 1]) : 0;
const TRIALS = quick ? 16 : 64;
const REPORTS = 20;
const CONCURRENT = 8;

const why = await slurmMissing();
if (why) {
  console.log(`skipped: ${why}`);
  Deno.exit(0);
}

// Runs on an idle machine finish within one second: default names (train_<time>) would clash.
let runs = 0;
const dir = await Deno.makeTempDir({ prefix: "tunebox_slurm_bench_" });
const trainable = `${dir}/train.ts`;
const trainableFast = `${dir}/fast.ts`;
const tb = JSON.stringify(new URL("../trainable.ts", import.meta.url).href);
await Deno.writeTextFile(
  trainable,
  `import { defineTrainable } from ${tb};\n` +
    `export default defineTrainable(async (config: { x: number }, session) => {\n` +
    `  for (let i = 1; i <= ${REPORTS}; i++) await session.report({ loss: config.x / i });\n});\n`,
);
await Deno.writeTextFile(
  trainableFast,
  `import { defineTrainable } from ${tb};\n` +
    `export default defineTrainable(async (config: { n: number }, session) => {\n` +
    `  for (let i = 1; i <= config.n; i++) await session.report({ loss: 1 / i });\n});\n`,
);

const trainableTimed = `${dir}/timed.ts`;
await Deno.writeTextFile(
  trainableTimed,
  `import { defineTrainable } from ${tb};\nconst imported = Date.now();\n` +
    `export default defineTrainable(async (config: { x: number; hold: number }, session) => {\n` +
    `  await session.report({ loss: config.x, origin: performance.timeOrigin, imported });\n` +
    `  await new Promise((r) => setTimeout(r, config.hold));\n});\n`,
);

/** Six trials one at a time: where each start's time goes, in ms. */
async function timeline(label: string, executor: Executor): Promise<void> {
  const started = new Map<string, number>();
  const rows: string[] = [];
  await new Tuner({
    trainable: trainableTimed,
    space: { x: grid([1, 2, 3, 4, 5, 6]), hold: HOLD_MS },
    metric: "loss",
    mode: "min",
    storage: dir,
    name: `run${++runs}`,
    maxConcurrent: 1,
    executor,
    callbacks: [{
      name: "timeline",
      onTrialStart(e) {
        started.set(e.trial.id, Date.now());
      },
      onReport(e) {
        const t0 = started.get(e.trial.id)!, now = Date.now();
        const origin = Number(e.result.origin), imported = Number(e.result.imported);
        rows.push(
          `${Math.round(origin - t0)}/${Math.round(imported - origin)}/${now - imported}`,
        );
      },
    }],
    reporter: false,
  }).fit();
  console.log(
    `${label.padEnd(22)} start->process/process->imported/imported->first report (ms): ` +
      rows.join("  "),
  );
}

function latencyProbe(): { callback: Callback; latencies: number[] } {
  const started = new Map<string, number>();
  const latencies: number[] = [];
  return {
    latencies,
    callback: {
      name: "latency",
      onTrialStart(e) {
        started.set(e.trial.id, performance.now());
      },
      onReport(e) {
        const t0 = started.get(e.trial.id);
        if (t0 !== undefined) {
          latencies.push((performance.now() - t0) / 1000);
          started.delete(e.trial.id);
        }
      },
    },
  };
}

async function many(label: string, executor: Executor): Promise<void> {
  const probe = latencyProbe();
  const t0 = performance.now();
  const r = await new Tuner({
    trainable,
    space: { x: grid(Array.from({ length: TRIALS }, (_, i) => i + 1)) },
    metric: "loss",
    mode: "min",
    storage: dir,
    name: `run${++runs}`,
    maxConcurrent: CONCURRENT,
    executor,
    callbacks: [probe.callback],
    reporter: false,
  }).fit();
  const wall = (performance.now() - t0) / 1000;
  const ok = r.trials.filter((t) => t.status === "terminated").length;
  const l = probe.latencies.sort((a, b) => a - b);
  const q = (p: number) => l[Math.min(l.length - 1, Math.floor(p * l.length))].toFixed(3);
  console.log(
    `${label.padEnd(22)} ${TRIALS} trials x ${REPORTS} reports: wall ${wall.toFixed(2)} s ` +
      `(${ok} ok); submit-to-first-report median ${q(0.5)} s, p90 ${q(0.9)} s`,
  );
}

async function rate(label: string, executor: Executor, n: number): Promise<void> {
  let first = 0, last = 0, count = 0;
  await new Tuner({
    trainable: trainableFast,
    space: { n: grid([n]) },
    metric: "loss",
    mode: "min",
    storage: dir,
    name: `run${++runs}`,
    executor,
    callbacks: [{
      name: "rate",
      onReport() {
        last = performance.now();
        if (count++ === 0) first = last;
      },
    }],
    reporter: false,
  }).fit();
  console.log(
    `${label.padEnd(22)} ${count} reports: ${
      ((count - 1) / ((last - first) / 1000)).toFixed(0)
    } reports/s`,
  );
}

const cluster = await startSlurmCluster();
try {
  const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  const common = { driverHost: "127.0.0.1", pollMs: 200, heartbeatMs: 30_000 };
  if (startupOnly) {
    await timeline("local subprocess", subprocessExecutor(trainableTimed));
    const alloc = await cluster.allocate(["-N2", `-n${CONCURRENT}`]);
    const stepEnv = { ...cluster.env, PATH, SLURM_JOB_ID: alloc, SLURM_JOB_CPUS_PER_NODE: "4(x2)" };
    await timeline(
      "slurm step (srun)",
      slurmExecutor(trainableTimed, { ...common, commandEnv: stepEnv }),
    );
    await cluster.run("scancel", [alloc]);
  } else {
    await many("local subprocess", subprocessExecutor(trainable));
    const alloc = await cluster.allocate(["-N2", `-n${CONCURRENT}`]);
    const stepEnv = { ...cluster.env, PATH, SLURM_JOB_ID: alloc, SLURM_JOB_CPUS_PER_NODE: "4(x2)" };
    await many("slurm step (srun)", slurmExecutor(trainable, { ...common, commandEnv: stepEnv }));
    await cluster.run("scancel", [alloc]);
    await many(
      "slurm sbatch",
      slurmExecutor(trainable, {
        ...common,
        mode: "sbatch",
        maxJobs: CONCURRENT,
        commandEnv: { ...cluster.env, PATH },
      }),
    );
    const n = quick ? 2000 : 10_000;
    await rate("local unix socket", subprocessExecutor(trainableFast), n);
    await rate(
      "slurm sbatch over TLS",
      slurmExecutor(trainableFast, {
        ...common,
        mode: "sbatch",
        commandEnv: { ...cluster.env, PATH },
      }),
      n,
    );
  }
} finally {
  await cluster.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
