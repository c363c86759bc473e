#!/usr/bin/env -S deno run -A
/**
 * MLflow logger throughput against a real `mlflow server` (started from the project's venv,
 * sqlite store, 127.0.0.1): the time a report spends in the logger's hook, and how many
 * reports and metric points per second reach the server.
 *
 * Run: `deno run -A bench/mlflow_bench.ts [trials] [reportsPerTrial]` (default 8 x 250).
 * Prints figures; asserts nothing about speed.
 *
 * @module
 */

import { mlflowLogger, type TrialResult, type TrialSnapshot } from "../plugins/loggers/mlflow.ts";
import { freePort, startMlflowServer } from "../tests/peers/mlflow_server.ts";

const TRIALS = Number(Deno.args[0] ?? 8);
const REPORTS = Number(Deno.args[1] ?? 250);
const USER_METRICS = 5; // + training_iteration, time_total_s, time_this_iter_s

function result(id: string, i: number): TrialResult {
  const m: Record<string, number> = {};
  for (let k = 0; k < USER_METRICS; k++) m[`metric_${k}`] = Math.sin(i + k);
  return {
    ...m,
    training_iteration: i,
    time_total_s: i * 0.1,
    time_this_iter_s: 0.1,
    timestamp: Date.now() / 1000,
    trial_id: id,
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

interface Run {
  hookMs: number[];
  wallMs: number;
  pending: number;
  delivered: number;
}

/** One experiment; `pace` yields to the event loop after every report (small batches). */
async function experiment(
  url: string,
  label: string,
  pace: boolean,
  drainMs = 120_000,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mlflow_bench_" });
  const logger = mlflowLogger({
    trackingUri: url,
    experiment: `bench-${label}`,
    drainTimeoutMs: drainMs,
    warn: () => {},
  });
  const trials: TrialSnapshot[] = Array.from({ length: TRIALS }, (_, t) => ({
    id: `bench_${String(t).padStart(5, "0")}`,
    status: "running",
    config: { lr: 10 ** -(t % 4), layers: t % 3 + 1, opt: t % 2 ? "adam" : "sgd" },
    iteration: 0,
    dir: `${dir}/t${t}`,
  }));
  const t0 = performance.now();
  await logger.onExperimentStart!({
    name: label,
    dir,
    space: {},
    metric: "metric_0",
    mode: "min",
    searcher: "random",
    scheduler: "fifo",
    resumed: false,
  });
  for (const trial of trials) logger.onTrialStart!({ trial, resumed: false });
  const hookMs: number[] = [];
  for (let i = 1; i <= REPORTS; i++) {
    for (const trial of trials) {
      const r = result(trial.id, i);
      const e = {
        trial: { ...trial, iteration: i },
        result: r,
        decision: { kind: "continue" } as const,
      };
      const h0 = performance.now();
      logger.onReport!(e);
      hookMs.push(performance.now() - h0);
      if (pace) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  for (const trial of trials) {
    logger.onTrialEnd!({ trial: { ...trial, status: "terminated" }, outcome: "completed" });
  }
  await logger.onExperimentEnd!({ trials, interrupted: false });
  const wallMs = performance.now() - t0;
  const d = await logger.flush(0);
  await Deno.remove(dir, { recursive: true });
  return { hookMs, wallMs, pending: d.pending, delivered: d.delivered };
}

function print(label: string, r: Run): void {
  const reports = TRIALS * REPORTS;
  const points = reports * (USER_METRICS + 3);
  const mean = r.hookMs.reduce((a, b) => a + b, 0) / r.hookMs.length;
  console.log(
    `${label.padEnd(34)} hook mean ${us(mean)}, p50 ${us(pct(r.hookMs, 0.5))}, ` +
      `p99 ${us(pct(r.hookMs, 0.99))} | ${reports} reports (${points} points) delivered in ` +
      `${(r.wallMs / 1000).toFixed(2)} s: ${(reports / (r.wallMs / 1000)).toFixed(0)} reports/s, ` +
      `${(points / (r.wallMs / 1000)).toFixed(0)} points/s` +
      (r.pending ? ` (${r.pending} items NOT delivered)` : ""),
  );
}

const server = await startMlflowServer();
try {
  console.log(
    `mlflow ${server.version} at ${server.url} (sqlite); ${TRIALS} trials x ${REPORTS} reports x ` +
      `${USER_METRICS + 3} metrics; Deno ${Deno.version.deno}`,
  );
  await experiment(server.url, "warmup", false); // first requests warm the server's imports
  print("burst (all reports, then drain)", await experiment(server.url, "burst", false));
  print("paced (yield after every report)", await experiment(server.url, "paced", true));
  const down = await experiment(`http://127.0.0.1:${freePort()}`, "down", false, 0);
  const mean = down.hookMs.reduce((a, b) => a + b, 0) / down.hookMs.length;
  console.log(
    `${"server unreachable".padEnd(34)} hook mean ${us(mean)}, p99 ${
      us(pct(down.hookMs, 0.99))
    }; ` +
      `${down.pending} items kept and spooled`,
  );
} finally {
  await server.close();
}
