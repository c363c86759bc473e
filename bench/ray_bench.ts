/**
 * The Ray executor on a real two-node Ray cluster (tests/peers/ray_cluster.ts, head 127.0.0.2 +
 * worker 127.0.0.3, 4 CPUs each, on this one machine): submit-to-first-report latency of one
 * trial, the cost of Ray's per-job Python supervisor (a job that only runs `true`), and 64
 * trials x 20 reports of a trivial objective, 8 at a time, on Ray vs the local subprocess
 * executor with the same concurrency. With `--peers`, Ray Tune itself on the same cluster
 * (bench/peers/ray_tune_cluster.py). The same 64 x 20 with `trialsPerJob: 8` (one Ray job runs
 * 8 trials one after another: Ray's per-job supervisor is paid 8 times instead of 64). `--pool`
 * measures only the two Ray runs, with and without pooling, back to back.
 *
 *     TUNEBOX_PYTHON=.venv/bin/python deno run -A bench/ray_bench.ts [--quick] [--peers] [--pool]
 */
import { Tuner, uniform } from "../mod.ts";
import type { Callback } from "../core/plugin.ts";
import { rayExecutor } from "../plugins/executors/ray.ts";
import { rayJobsClient } from "../plugins/executors/_ray_client.ts";
import { peerPython, startRayCluster } from "../tests/peers/ray_cluster.ts";

const quick = Deno.args.includes("--quick");
const peers = Deno.args.includes("--peers");
const poolOnly = Deno.args.includes("--pool");
const TRIALS = quick ? 8 : 64;
const CONCURRENT = 8;
const trivial = new URL("./fixtures/trivial.ts", import.meta.url).pathname;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Time from a trial's start (job submitted) to its first report, per trial. */
function firstReports(): { cb: Callback; ms: number[] } {
  const started = new Map<string, number>();
  const ms: number[] = [];
  return {
    ms,
    cb: {
      name: "first-report",
      onTrialStart(e) {
        started.set(e.trial.id, performance.now());
      },
      onReport(e) {
        const t0 = started.get(e.trial.id);
        if (t0 !== undefined) {
          ms.push(performance.now() - t0);
          started.delete(e.trial.id);
        }
      },
    },
  };
}

const figures: Record<string, number> = {};
const c = await startRayCluster();
try {
  const ray = rayJobsClient(c.address, c.token);
  // Ray's own cost per job: submit `true` and wait until it SUCCEEDED.
  const supervisor: number[] = [];
  for (let i = 0; i < (quick ? 3 : 8); i++) {
    const id = `tunebox-bench-true-${i}-${crypto.randomUUID().slice(0, 6)}`;
    const t0 = performance.now();
    await ray.submit({ submission_id: id, entrypoint: "true", entrypoint_num_cpus: 1 });
    for (;;) {
      const j = await ray.get(id);
      if (j && ["SUCCEEDED", "FAILED", "STOPPED"].includes(j.status)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    supervisor.push(performance.now() - t0);
    await ray.delete(id).catch(() => {});
  }
  figures.ray_job_true_submit_to_end_ms = median(supervisor);

  const run = async (
    kind: "ray" | "local",
    trials: number,
    concurrent: number,
    trialsPerJob = 1,
  ) => {
    const storage = await Deno.makeTempDir();
    const first = firstReports();
    const t0 = performance.now();
    await new Tuner({
      trainable: trivial,
      space: { x: uniform(0, 1) },
      metric: "loss",
      mode: "min",
      numSamples: trials,
      maxConcurrent: concurrent,
      seed: 1,
      storage,
      reporter: false,
      callbacks: [first.cb],
      ...(kind === "ray"
        ? {
          executor: rayExecutor(trivial, {
            address: c.address,
            token: c.token,
            driverHost: "127.0.0.1",
            pollMs: 100,
            probe: false,
            trialsPerJob,
          }),
        }
        : {}),
    }).fit();
    const wall = performance.now() - t0;
    await Deno.remove(storage, { recursive: true }).catch(() => {});
    return { wall, first: median(first.ms) };
  };
  if (poolOnly) {
    const r = await run("ray", TRIALS, CONCURRENT);
    figures[`ray_${TRIALS}x20_wall_s`] = r.wall / 1000;
    figures[`ray_${TRIALS}x20_first_report_median_ms`] = r.first;
    const p = await run("ray", TRIALS, CONCURRENT, TRIALS / CONCURRENT);
    figures[`ray_pooled_${TRIALS / CONCURRENT}_per_job_${TRIALS}x20_wall_s`] = p.wall / 1000;
    figures[`ray_pooled_${TRIALS}x20_first_report_median_ms`] = p.first;
  } else {
    const one = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) one.push((await run("ray", 1, 1)).first);
    figures.ray_submit_to_first_report_ms = median(one);
    const localOne = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) localOne.push((await run("local", 1, 1)).first);
    figures.local_start_to_first_report_ms = median(localOne);
    const r = await run("ray", TRIALS, CONCURRENT);
    figures[`ray_${TRIALS}x20_wall_s`] = r.wall / 1000;
    figures[`ray_${TRIALS}x20_first_report_median_ms`] = r.first;
    const p = await run("ray", TRIALS, CONCURRENT, TRIALS / CONCURRENT);
    figures[`ray_pooled_${TRIALS / CONCURRENT}_per_job_${TRIALS}x20_wall_s`] = p.wall / 1000;
    figures[`ray_pooled_${TRIALS}x20_first_report_median_ms`] = p.first;
    const l = await run("local", TRIALS, CONCURRENT);
    figures[`local_${TRIALS}x20_wall_s`] = l.wall / 1000;
    // A checkpoint's cost, shared storage against streamed to the driver: the time a report with
    // a 32 MiB checkpoint takes to be acknowledged (median of the 3 reports).
    const ckpt = new URL("./fixtures/checkpoint_mb.ts", import.meta.url).pathname;
    for (const shared of [true, false]) {
      const storage = await Deno.makeTempDir();
      const res = await new Tuner({
        trainable: ckpt,
        space: { mb: 32 },
        metric: "loss",
        mode: "min",
        storage,
        reporter: false,
        executor: rayExecutor(ckpt, {
          address: c.address,
          token: c.token,
          driverHost: "127.0.0.1",
          pollMs: 100,
          probe: false,
          sharedStorage: shared,
          log: () => {},
        }),
      }).fit();
      const ms = res.history(res.trials[0].id).slice(1).map((h) => Number(h.report_ms));
      figures[`ray_32MiB_checkpoint_report_${shared ? "shared" : "streamed"}_ms`] = median(ms);
      await Deno.remove(storage, { recursive: true }).catch(() => {});
    }
  }
  if (peers) {
    const out = await new Deno.Command(peerPython(), {
      args: [
        new URL("./peers/ray_tune_cluster.py", import.meta.url).pathname,
        `127.0.0.2:${c.gcsPort}`,
        String(TRIALS),
        String(CONCURRENT),
      ],
      env: { RAY_AUTH_MODE: "token", RAY_AUTH_TOKEN: c.token, RAY_USAGE_STATS_ENABLED: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const m = /ray_tune_wall_s (\S+)/.exec(text);
    if (m) figures[`ray_tune_${TRIALS}x20_wall_s`] = Number(m[1]);
    else console.error(new TextDecoder().decode(out.stderr).slice(-2000));
  }
} finally {
  await c.close();
}
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(46)} ${v.toFixed(2)}`);
