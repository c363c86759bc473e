/**
 * Reports per second from one trial process (core/trial_main.ts, a trivial trainable that
 * reports as fast as acks come back), through each layer:
 * - the protocol alone: a driver that acks at once (driveTrial), over the local unix socket
 *   channel and over the remote TLS channel (core/remote/channel.ts) on 127.0.0.1;
 * - the whole runner (Tuner + subprocessExecutor: result.jsonl, progress.csv, scheduler,
 *   callbacks) over the unix socket;
 * - an in-process trainable through the runner (no channel at all), the ceiling.
 * The Slurm executor's TLS figure through the runner is in bench/slurm_bench.ts.
 *
 *     deno run -A bench/channel_bench.ts            # 20,000 reports per layer
 *     deno run -A bench/channel_bench.ts --quick    # 3,000
 *
 * Every report is a round trip (the trial waits for its ack), so the figures measure latency
 * per report: on a loaded machine both processes wait for a CPU at every turn.
 */
import { join } from "node:path";
import { grid, type Session, Tuner } from "../mod.ts";
import { driveTrial, TrialChannelServer } from "../core/channel.ts";
import { openRemoteChannel } from "../core/remote/channel.ts";
import { subprocessExecutor } from "../plugins/executors/subprocess.ts";
import type { TrialJob } from "../core/plugin.ts";

const N = Deno.args.includes("--quick") ? 3000 : 20_000;
const dir = await Deno.makeTempDir({ prefix: "tunebox_channel_bench_" });
const tb = JSON.stringify(new URL("../trainable.ts", import.meta.url).href);
const trainable = join(dir, "fast.ts");
await Deno.writeTextFile(
  trainable,
  `import { defineTrainable } from ${tb};\n` +
    `export default defineTrainable(async (config: { n: number }, session) => {\n` +
    `  for (let i = 1; i <= config.n; i++) await session.report({ loss: 1 / i, i });\n});\n`,
);
const entry = join(dir, "entry.ts");
await Deno.writeTextFile(
  entry,
  `import { boot } from ${
    JSON.stringify(new URL("../core/trial_main.ts", import.meta.url).href)
  };\nawait (await boot()).run();\n`,
);

function job(id: string): TrialJob {
  return {
    trialId: id,
    config: { n: N },
    dir,
    workDir: dir,
    iteration: 0,
    timeOffsetS: 0,
    sandbox: {},
    env: {},
  };
}

/** Runs one trial process against `server`; returns reports per second. */
async function protocolOnly(
  server: TrialChannelServer,
  env: Record<string, string>,
  net: string[],
  id: string,
  token: string,
): Promise<number> {
  const connected = server.expect(id, token);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", "--allow-env", ...net, entry],
    clearEnv: true,
    env: { ...env, TUNEBOX_MODULE: new URL(`file://${trainable}`).href, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const conn = await connected;
  let first = 0, last = 0, count = 0;
  await driveTrial(conn, job(id), {
    report() {
      last = performance.now();
      if (count++ === 0) first = last;
      return Promise.resolve("continue");
    },
  });
  conn.close();
  await child.stdin.close().catch(() => {});
  await child.status;
  return (count - 1) / ((last - first) / 1000);
}

async function throughRunner(executor: "subprocess" | "inprocess"): Promise<number> {
  let first = 0, last = 0, count = 0;
  const fn = async (c: { n: number }, s: Session<{ n: number }>) => {
    for (let i = 1; i <= c.n; i++) await s.report({ loss: 1 / i, i });
  };
  await new Tuner({
    trainable: executor === "inprocess" ? fn : trainable,
    ...(executor === "subprocess" ? { executor: subprocessExecutor(trainable) } : {}),
    space: { n: grid([N]) },
    metric: "loss",
    mode: "min",
    storage: dir,
    callbacks: [{
      name: "rate",
      onReport() {
        last = performance.now();
        if (count++ === 0) first = last;
      },
    }],
    reporter: false,
  } as never).fit();
  return (count - 1) / ((last - first) / 1000);
}

const rows: [string, number][] = [];
try {
  const sock = join(dir, "c.sock");
  const unix = new TrialChannelServer(Deno.listen({ transport: "unix", path: sock }));
  rows.push([
    "protocol only, unix socket",
    await protocolOnly(
      unix,
      { TUNEBOX_CHANNEL: `unix:${sock}`, TUNEBOX_TRIAL_ID: "u1", TUNEBOX_TOKEN: "tok-u1" },
      [`--allow-write=${sock}`, `--allow-net=unix:${sock}`],
      "u1",
      "tok-u1",
    ),
  ]);
  unix.close();
  const tls = await openRemoteChannel({ host: "127.0.0.1", log: () => {} });
  rows.push([
    "protocol only, TLS 127.0.0.1",
    await protocolOnly(
      tls.server,
      tls.trialEnv("t1", "tok-t1"),
      [`--allow-net=${tls.netPermission}`],
      "t1",
      "tok-t1",
    ),
  ]);
  tls.close();
  rows.push(["runner, subprocess (unix socket)", await throughRunner("subprocess")]);
  rows.push(["runner, in-process (no channel)", await throughRunner("inprocess")]);
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
for (const [label, rate] of rows) {
  console.log(`${label.padEnd(34)} ${N} reports: ${rate.toFixed(0).padStart(6)} reports/s`);
}
