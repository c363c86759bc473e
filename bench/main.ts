/**
 * `deno task bench`: runs every benchmark in bench/ one after another and prints its figures.
 * Nothing here asserts a speed; the figures and the peers' go into BENCHMARKS.md.
 *
 *     deno task bench              # our figures
 *     deno task bench --quick      # smaller workloads
 *     deno task bench --peers      # also Ray Tune / Optuna / hyperopt (installed into .venv first)
 */
const quick = Deno.args.includes("--quick");
const peers = Deno.args.includes("--peers");
const root = new URL("..", import.meta.url).pathname;

async function run(title: string, cmd: string, args: string[]): Promise<void> {
  console.log(`\n## ${title}\n$ ${[cmd, ...args].join(" ")}`);
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, cwd: root, stdout: "inherit", stderr: "inherit" })
    .output();
  console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s, exit ${out.code})`);
}

const deno = Deno.execPath();
const q = quick ? ["--quick"] : [];
if (peers) {
  // The peers' pinned versions (bench/peers/requirements.txt) into .venv, beside the tests' peers.
  await run("Setup: the benchmarks' Python peers", deno, [
    "run",
    "-A",
    "tools/setup.ts",
    "--bench",
    "--no-native",
    "--no-chromium",
  ]);
}
await run("Driver overhead (sandboxed subprocess and in-process trials)", deno, [
  "run",
  "-A",
  "bench/driver_bench.ts",
  ...q,
]);
await run(
  "Issue 14: sandboxed and in-process trials next to Optuna (time, peak driver memory)",
  deno,
  [
    "run",
    "-A",
    "bench/perf_bench.ts",
    ...q,
    ...(peers ? [] : ["--no-peers"]),
  ],
);
await run("The driver against hostile trials (new metric keys, a 32 MiB line)", deno, [
  "run",
  "-A",
  "bench/sandbox_bench.ts",
]);
await run("Reports per second through the trial channel (unix socket, TLS, the runner)", deno, [
  "run",
  "-A",
  "bench/channel_bench.ts",
  ...q,
]);
await run("TensorBoard event writer", deno, ["run", "-A", "bench/tensorboard_bench.ts"]);
await run("MLflow logger against a real server", deno, [
  "run",
  "-A",
  "bench/mlflow_bench.ts",
  ...(quick ? ["4", "50"] : []),
]);
await run("Searchers on benchmark functions", deno, [
  "run",
  "-A",
  "bench/searchers_bench.ts",
  ...(quick ? ["--quick"] : []),
]);
await run("Multi-objective searchers: hypervolume on ZDT1-3 and DTLZ2", deno, [
  "run",
  "-A",
  "bench/multi_objective_bench.ts",
  ...q,
  ...(peers ? [] : ["--no-peers"]),
]);
await run("Gaussian-process searcher: time per suggestion", deno, [
  "run",
  "-A",
  "bench/gp_latency_bench.ts",
]);
await run("Schedulers on simulated learning curves; PB2 against PBT", deno, [
  "run",
  "-A",
  "bench/schedulers_bench.ts",
  ...q,
]);
await run("Resource-changing trials against FIFO (wall time)", deno, [
  "run",
  "-A",
  "bench/resource_changing_bench.ts",
  ...q,
]);
await run("PB2 against PBT on the MNIST trainable (4 and 2 trials)", deno, [
  "run",
  "-A",
  "bench/pb2_mnist_bench.ts",
  ...q,
]);
await run("Training: tfjs backends' throughput, the sandbox's cost, the MNIST demo", deno, [
  "run",
  "-A",
  "bench/training_bench.ts",
  ...q,
]);
await run("Native TensorFlow backend: tensorflow vs wasm vs cpu, the demo on each", deno, [
  "run",
  "-A",
  "bench/native_bench.ts",
  ...q,
]);
await run("Slurm executor on the two-node test cluster, next to local trials", deno, [
  "run",
  "-A",
  "bench/slurm_bench.ts",
  ...q,
]);
await run("Ray executor on a two-node Ray cluster (vs local, vs Ray Tune with --peers)", deno, [
  "run",
  "-A",
  "bench/ray_bench.ts",
  ...q,
  ...(peers ? ["--peers"] : []),
]);
await run("Ring all-reduce between 2 and 4 local workers of a trial, vs memcpy", deno, [
  "run",
  "-A",
  "bench/allreduce_bench.ts",
  ...q,
]);
await run("Data-parallel MNIST training with 1, 2 and 4 workers per trial", deno, [
  "run",
  "-A",
  "bench/data_parallel_bench.ts",
  ...q,
]);
if (peers) {
  const ray = `${root}bench/.venv-ray/bin/python`;
  await run("Peer: Ray Tune driver overhead", ray, ["bench/peers/ray_driver.py", ...q]);
  await run("Peer: Optuna in-process", ray, ["bench/peers/optuna_inprocess.py", ...q]);
}
