// Runs the MLflow logger against a real `mlflow server` (from the project's Python venv) and
// reads everything back through MLflow's REST API. The runner is not involved: the tests call
// the Callback hooks in the order the runner does, with real event objects.

import assert from "#assert";
import {
  type ExperimentStart,
  mlflowLogger,
  type MlflowLoggerOptions,
  type TrialResult,
  type TrialSnapshot,
} from "../../plugins/loggers/mlflow.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";
import { freePort, type MlflowServer, startMlflowServer } from "../peers/mlflow_server.ts";

// -- real event objects -------------------------------------------------------------------------

function trial(
  id: string,
  config: TrialSnapshot["config"],
  dir: string,
  extra: Partial<TrialSnapshot> = {},
): TrialSnapshot {
  return { id, status: "running", config, iteration: 0, dir: `${dir}/${id}`, ...extra };
}

function result(id: string, iteration: number, metrics: Record<string, unknown>): TrialResult {
  return {
    ...(metrics as Record<string, never>),
    training_iteration: iteration,
    time_total_s: iteration * 1.5,
    time_this_iter_s: 1.5,
    timestamp: Math.floor(Date.now() / 1000),
    trial_id: id,
  };
}

function experiment(name: string, dir: string, resumed = false): ExperimentStart {
  return {
    name,
    dir,
    space: {},
    metric: "loss",
    mode: "min",
    searcher: "random",
    scheduler: "asha",
    resumed,
  };
}

/** Calls onReport the way the runner does. */
function report(
  logger: ReturnType<typeof mlflowLogger>,
  t: TrialSnapshot,
  iteration: number,
  metrics: Record<string, unknown>,
): void {
  const r = result(t.id, iteration, metrics);
  logger.onReport!({
    trial: { ...t, iteration, lastResult: r },
    result: r,
    decision: { kind: "continue" },
  });
}

// -- reading back through the REST API ----------------------------------------------------------

interface Run {
  info: {
    run_id: string;
    run_name: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
  };
  data: {
    params?: { key: string; value: string }[];
    tags?: { key: string; value: string }[];
    metrics?: { key: string; value: number | string; step: number }[];
  };
}

async function api(
  server: MlflowServer,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const r = await fetch(`${server.url}/api/2.0/mlflow/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${text}`);
  return JSON.parse(text);
}

async function runsOf(server: MlflowServer, experimentName: string): Promise<Run[]> {
  const e = await api(
    server,
    `experiments/get-by-name?experiment_name=${encodeURIComponent(experimentName)}`,
  );
  const id = (e.experiment as { experiment_id: string }).experiment_id;
  const r = await api(server, "runs/search", { experiment_ids: [id], max_results: 1000 });
  return ((r.runs ?? []) as Run[]).sort((a, b) => a.info.run_name.localeCompare(b.info.run_name));
}

const tagsOf = (run: Run): Record<string, string> =>
  Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
const paramsOf = (run: Run): Record<string, string> =>
  Object.fromEntries((run.data.params ?? []).map((t) => [t.key, t.value]));

async function history(
  server: MlflowServer,
  runId: string,
  key: string,
): Promise<{ value: number | string; step: number; timestamp: number }[]> {
  const r = await api(
    server,
    `metrics/get-history?run_id=${runId}&metric_key=${encodeURIComponent(key)}`,
  );
  const ms = (r.metrics ?? []) as { value: number | string; step: number; timestamp: number }[];
  return ms.sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
}

function byName(runs: Run[], name: string): Run {
  const run = runs.find((r) => r.info.run_name === name);
  if (!run) throw new Error(`no run named ${name} among ${runs.map((r) => r.info.run_name)}`);
  return run;
}

function collector(): { warnings: string[]; warn: (m: string) => void } {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m) };
}

/** A hook that waited on the network (a request, a retry, a drain) would take seconds here;
 * the bound is loose because the test suite runs in parallel on two busy cores. */
const HOOK_BOUND_MS = 1000;

async function timed<T>(fn: () => T | Promise<T>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// -- against a real server ------------------------------------------------------------------------

Deno.test("mlflowLogger against a real mlflow server", async (t) => {
  const server = await startMlflowServer();
  const tmp = await Deno.makeTempDir({ prefix: "tunebox_mlflow_test_" });
  const base = (extra: MlflowLoggerOptions = {}): MlflowLoggerOptions => ({
    trackingUri: server.url,
    drainTimeoutMs: 20_000,
    retryDelayMs: 50,
    maxRetryDelayMs: 400,
    ...extra,
  });
  try {
    await t.step(
      "logs a parent run and nested trial runs with params, metric histories, tags and statuses",
      async () => {
        const dir = `${tmp}/main`;
        await Deno.mkdir(dir);
        const { warnings, warn } = collector();
        const logger = mlflowLogger(
          base({ experiment: "tunebox-main", tags: { team: "ml" }, warn }),
        );
        const t0 = Date.now();
        await logger.onExperimentStart!(experiment("exp-main", dir));
        const t1 = trial("abc12_00000", {
          lr: 0.01,
          model: { layers: 2, act: "relu" },
          opt: "adam",
        }, dir);
        const t2 = trial(
          "abc12_00001",
          { lr: 0.1, model: { layers: 3, act: "tanh" }, opt: "sgd" },
          dir,
        );
        const t3 = trial(
          "abc12_00002",
          { lr: 1, model: { layers: 1, act: "relu" }, opt: "sgd" },
          dir,
        );
        const t4 = trial("abc12_00003", {
          lr: 0.001,
          model: { layers: 4, act: "gelu" },
          opt: "adam",
        }, dir);
        for (const tr of [t1, t2, t3, t4]) logger.onTrialStart!({ trial: tr, resumed: false });
        const losses = [0.9, 0.5, 0.25];
        for (let i = 1; i <= 3; i++) {
          report(logger, t1, i, {
            loss: losses[i - 1],
            acc: i / 4,
            val: { loss: losses[i - 1] * 2 },
          });
          if (i <= 2) report(logger, t2, i, { loss: 1 / i, acc: 0.1 });
        }
        report(logger, t3, 1, { loss: NaN, acc: 0, note: "diverged", done: false });
        report(logger, t4, 1, { loss: 0.7, acc: 0.3 });
        logger.onTrialEnd!({ trial: { ...t4, status: "paused" }, outcome: "paused" });
        logger.onTrialStart!({ trial: t4, resumed: true });
        report(logger, t4, 2, { loss: 0.6, acc: 0.4 });
        logger.onTrialEnd!({ trial: { ...t1, status: "terminated" }, outcome: "completed" });
        logger.onTrialEnd!({
          trial: { ...t2, status: "terminated" },
          outcome: "stopped",
          reason: "asha: below the rung cutoff",
        });
        logger.onTrialEnd!({ trial: { ...t3, status: "error" }, outcome: "error", reason: "boom" });
        logger.onTrialEnd!({ trial: { ...t4, status: "terminated" }, outcome: "completed" });
        await logger.onExperimentEnd!({
          trials: [t1, t2, t3, t4].map((x) => ({ ...x, status: "terminated" as const })),
          interrupted: false,
        });
        const after = Date.now();
        const delivery = await logger.flush(0);
        assert.equal(delivery.pending, 0);
        assert.deepEqual(warnings, []);

        const runs = await runsOf(server, "tunebox-main");
        assert.equal(runs.length, 5);
        const parent = byName(runs, "exp-main");
        const pt = tagsOf(parent);
        assert.equal(pt["mlflow.parentRunId"], undefined);
        assert.equal(pt["tunebox.experiment"], "exp-main");
        assert.equal(pt["tunebox.scheduler"], "asha");
        assert.equal(pt["tunebox.searcher"], "random");
        assert.equal(pt["team"], "ml");
        assert.deepEqual(paramsOf(parent), {
          metric: "loss",
          mode: "min",
          searcher: "random",
          scheduler: "asha",
        });
        assert.equal(parent.info.status, "FINISHED");
        assert.ok(parent.info.end_time! >= t0 && parent.info.end_time! <= after);

        const expected: [TrialSnapshot, string][] = [
          [t1, "FINISHED"],
          [t2, "KILLED"],
          [t3, "FAILED"],
          [t4, "FINISHED"],
        ];
        for (const [tr, status] of expected) {
          const run = byName(runs, tr.id);
          const tags = tagsOf(run);
          assert.equal(tags["mlflow.parentRunId"], parent.info.run_id);
          assert.equal(tags["tunebox.trial_id"], tr.id);
          assert.equal(tags["tunebox.experiment"], "exp-main");
          assert.equal(tags["tunebox.scheduler"], "asha");
          assert.equal(tags["tunebox.searcher"], "random");
          assert.equal(tags["team"], "ml");
          assert.equal(run.info.status, status, tr.id);
          assert.ok(run.info.start_time >= t0 && run.info.end_time! >= run.info.start_time);
          assert.ok(run.info.end_time! <= after);
          const c = tr.config as {
            lr: number;
            model: { layers: number; act: string };
            opt: string;
          };
          assert.deepEqual(paramsOf(run), {
            lr: String(c.lr),
            "model/layers": String(c.model.layers),
            "model/act": c.model.act,
            opt: c.opt,
          });
        }
        assert.equal(
          tagsOf(byName(runs, t2.id))["tunebox.stop_reason"],
          "asha: below the rung cutoff",
        );
        assert.equal(tagsOf(byName(runs, t3.id))["tunebox.error"], "boom");

        const r1 = byName(runs, t1.id);
        const loss = await history(server, r1.info.run_id, "loss");
        assert.deepEqual(loss.map((m) => [m.step, m.value]), [[1, 0.9], [2, 0.5], [3, 0.25]]);
        for (const m of loss) assert.ok(m.timestamp >= t0 && m.timestamp <= after);
        assert.deepEqual(
          (await history(server, r1.info.run_id, "val/loss")).map((m) => [m.step, m.value]),
          [[1, 1.8], [2, 1], [3, 0.5]],
        );
        assert.deepEqual(
          (await history(server, r1.info.run_id, "training_iteration")).map((m) => m.value),
          [1, 2, 3],
        );
        assert.deepEqual(
          (await history(server, r1.info.run_id, "time_total_s")).map((m) => m.value),
          [1.5, 3, 4.5],
        );
        const keys = (r1.data.metrics ?? []).map((m) => m.key).sort();
        assert.deepEqual(keys, [
          "acc",
          "loss",
          "time_this_iter_s",
          "time_total_s",
          "training_iteration",
          "val/loss",
        ]);
        const r3 = byName(runs, t3.id);
        assert.deepEqual((await history(server, r3.info.run_id, "loss")).map((m) => m.value), [
          "NaN",
        ]);
        assert.ok(!(r3.data.metrics ?? []).some((m) => m.key === "note" || m.key === "done"));
        const r4 = byName(runs, t4.id);
        assert.deepEqual(
          (await history(server, r4.info.run_id, "loss")).map((m) => [m.step, m.value]),
          [[1, 0.7], [2, 0.6]],
        );

        const state = JSON.parse(await Deno.readTextFile(`${dir}/mlflow.json`));
        assert.equal(state.parent.runId, parent.info.run_id);
        assert.equal(state.trials.length, 4);
        assert.ok(state.trials.every((s: { pending?: unknown }) => s.pending === undefined));
      },
    );

    await t.step(
      "truncates a long param value with a warning instead of failing the request",
      async () => {
        const dir = `${tmp}/long`;
        await Deno.mkdir(dir);
        const { warnings, warn } = collector();
        const logger = mlflowLogger(base({ experiment: "tunebox-long", warn }));
        await logger.onExperimentStart!(experiment("long", dir));
        const long = "é".repeat(6100);
        const t1 = trial("lng00_00000", { long, short: "s", "lr (init)": 0.5, "a:b": 1 }, dir);
        logger.onTrialStart!({ trial: t1, resumed: false });
        report(logger, t1, 1, { loss: 1 });
        logger.onTrialEnd!({ trial: t1, outcome: "completed" });
        await logger.onExperimentEnd!({ trials: [t1], interrupted: false });

        const run = byName(await runsOf(server, "tunebox-long"), t1.id);
        const params = paramsOf(run);
        assert.equal(params.long, "é".repeat(6000));
        assert.equal(params.short, "s");
        assert.equal(params["lr _init_"], "0.5");
        assert.equal(params["a_b"], "1");
        assert.equal(run.info.status, "FINISHED");
        assert.ok(
          warnings.some((w) => w.startsWith('[mlflow] param "long"') && w.includes("truncated")),
          warnings.join("\n"),
        );
        assert.ok(warnings.some((w) => w.includes(`key "lr (init)" was sent as "lr _init_"`)));

        // a smaller limit for old servers
        const dir2 = `${tmp}/long2`;
        await Deno.mkdir(dir2);
        const c2 = collector();
        const small = mlflowLogger(
          base({ experiment: "tunebox-long", maxParamValueLength: 250, warn: c2.warn }),
        );
        await small.onExperimentStart!(experiment("long2", dir2));
        const t2 = trial("lng00_00001", { long }, dir2);
        small.onTrialStart!({ trial: t2, resumed: false });
        await small.onExperimentEnd!({
          trials: [{ ...t2, status: "terminated" }],
          interrupted: false,
        });
        const run2 = byName(await runsOf(server, "tunebox-long"), t2.id);
        assert.equal(paramsOf(run2).long, "é".repeat(250));
        assert.equal(run2.info.status, "FINISHED");
        assert.equal(c2.warnings.filter((w) => w.includes("truncated")).length, 1);
      },
    );

    await t.step("uploads a trial's best checkpoint through the artifact proxy", async () => {
      const dir = `${tmp}/ckpt`;
      const tr = trial("ckp00_00000", { lr: 0.1 }, dir);
      for (const [i, text] of [[1, "one"], [2, "two"]] as const) {
        await Deno.mkdir(`${tr.dir}/checkpoint_00000${i}/sub`, { recursive: true });
        await Deno.writeTextFile(`${tr.dir}/checkpoint_00000${i}/model.txt`, text);
        await Deno.writeFile(
          `${tr.dir}/checkpoint_00000${i}/sub/w.bin`,
          new Uint8Array([i, 0, 255]),
        );
      }
      const logger = mlflowLogger(base({ experiment: "tunebox-ckpt", checkpoint: "best" }));
      await logger.onExperimentStart!(experiment("ckpt", dir));
      logger.onTrialStart!({ trial: tr, resumed: false });
      report(logger, tr, 1, { loss: 0.2 });
      logger.onCheckpoint!({ trial: tr, path: `${tr.dir}/checkpoint_000001`, iteration: 1 });
      report(logger, tr, 2, { loss: 0.4 });
      logger.onCheckpoint!({ trial: tr, path: `${tr.dir}/checkpoint_000002`, iteration: 2 });
      const last = {
        ...tr,
        status: "terminated" as const,
        checkpoint: `${tr.dir}/checkpoint_000002`,
      };
      logger.onTrialEnd!({ trial: last, outcome: "completed" });
      await logger.onExperimentEnd!({ trials: [last], interrupted: false });

      const run = byName(await runsOf(server, "tunebox-ckpt"), tr.id);
      assert.equal(tagsOf(run)["tunebox.checkpoint"], "checkpoint_000001");
      const list = async (path: string) =>
        ((await api(server, `artifacts/list?run_id=${run.info.run_id}&path=${path}`)).files ??
          []) as { path: string; is_dir: boolean }[];
      assert.deepEqual((await list("checkpoint_000001")).map((f) => f.path), [
        "checkpoint_000001/model.txt",
        "checkpoint_000001/sub",
      ]);
      assert.deepEqual((await list("checkpoint_000001/sub")).map((f) => f.path), [
        "checkpoint_000001/sub/w.bin",
      ]);
      const prefix = run.info.artifact_uri.replace(/^mlflow-artifacts:\/?/, "");
      const get = async (rel: string) => {
        const r = await fetch(`${server.url}/api/2.0/mlflow-artifacts/artifacts/${prefix}/${rel}`);
        return new Uint8Array(await r.arrayBuffer());
      };
      assert.equal(new TextDecoder().decode(await get("checkpoint_000001/model.txt")), "one");
      assert.deepEqual([...await get("checkpoint_000001/sub/w.bin")], [1, 0, 255]);
      assert.deepEqual(await list("checkpoint_000002"), []);
    });

    await t.step("a resumed experiment reuses the parent run and the trial's run", async () => {
      const dir = `${tmp}/resume`;
      await Deno.mkdir(dir);
      const tr = trial("rsm00_00000", { lr: 0.3 }, dir);
      const first = mlflowLogger(base({ experiment: "tunebox-resume" }));
      await first.onExperimentStart!(experiment("resume", dir));
      first.onTrialStart!({ trial: tr, resumed: false });
      report(first, tr, 1, { loss: 3 });
      await first.onExperimentEnd!({ trials: [tr], interrupted: true });
      let runs = await runsOf(server, "tunebox-resume");
      assert.deepEqual(runs.map((r) => [r.info.run_name, r.info.status]), [
        ["resume", "KILLED"],
        [tr.id, "KILLED"],
      ]);
      const ids = runs.map((r) => r.info.run_id);

      const second = mlflowLogger(base({ experiment: "tunebox-resume" }));
      await second.onExperimentStart!(experiment("resume", dir, true));
      second.onTrialStart!({ trial: { ...tr, iteration: 1 }, resumed: true });
      report(second, tr, 2, { loss: 2 });
      const done = { ...tr, status: "terminated" as const, iteration: 2 };
      second.onTrialEnd!({ trial: done, outcome: "completed" });
      await second.onExperimentEnd!({ trials: [done], interrupted: false });
      runs = await runsOf(server, "tunebox-resume");
      assert.deepEqual(runs.map((r) => r.info.run_id), ids);
      assert.deepEqual(runs.map((r) => r.info.status), ["FINISHED", "FINISHED"]);
      assert.deepEqual(
        (await history(server, ids[1], "loss")).map((m) => [m.step, m.value]),
        [[1, 3], [2, 2]],
      );
      assert.equal(tagsOf(runs[1])["mlflow.parentRunId"], ids[0]);
    });

    await t.step(
      "a param the server refuses is dropped alone and the rest of its batch arrives",
      async () => {
        // A crash after the params reached the server but before mlflow.json recorded it, then
        // a resume with a changed config: the server refuses to change "lr".
        const dir = `${tmp}/refused`;
        await Deno.mkdir(dir);
        const tr = trial("ref00_00000", { lr: 0.1, bs: 32 }, dir);
        const first = mlflowLogger(base({ experiment: "tunebox-refused" }));
        await first.onExperimentStart!(experiment("refused", dir));
        first.onTrialStart!({ trial: tr, resumed: false });
        report(first, tr, 1, { loss: 1 });
        await first.onExperimentEnd!({ trials: [tr], interrupted: true });
        const state = JSON.parse(await Deno.readTextFile(`${dir}/mlflow.json`));
        state.trials[0].sentParams = [];
        await Deno.writeTextFile(`${dir}/mlflow.json`, JSON.stringify(state));

        const { warnings, warn } = collector();
        const second = mlflowLogger(base({ experiment: "tunebox-refused", warn }));
        await second.onExperimentStart!(experiment("refused", dir, true));
        const changed = { ...tr, config: { lr: 0.2, bs: 32, wd: 0.01 }, iteration: 1 };
        second.onTrialStart!({ trial: changed, resumed: true });
        for (let i = 2; i <= 4; i++) report(second, changed, i, { loss: 1 / i });
        const done = { ...changed, status: "terminated" as const };
        second.onTrialEnd!({ trial: done, outcome: "completed" });
        await second.onExperimentEnd!({ trials: [done], interrupted: false });
        assert.equal((await second.flush(0)).pending, 0);

        const run = byName(await runsOf(server, "tunebox-refused"), tr.id);
        assert.deepEqual(paramsOf(run), { lr: "0.1", bs: "32", wd: "0.01" });
        assert.equal(run.info.status, "FINISHED");
        assert.deepEqual(
          (await history(server, run.info.run_id, "loss")).map((m) => [m.step, m.value]),
          [[1, 1], [2, 0.5], [3, 1 / 3], [4, 0.25]],
        );
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(
          warnings[0],
          /^\[mlflow\] MLflow refused param "lr" of run "ref00_00000" and it was dropped: .*INVALID_PARAMETER_VALUE/,
        );
      },
    );

    await t.step(
      "retries 429 after Retry-After and lost answers without duplicating points or runs",
      async () => {
        // A reverse proxy in front of the real server, the way rate limits and lost answers
        // happen in practice: it answers 429 itself, or forwards and then drops the answer.
        type Act = "429" | "lost";
        const plan: Record<string, (Act | "forward")[]> = {
          "runs/create": ["forward", "lost"], // the parent, then the trial: lost answer
        };
        const seen: { path: string; at: number; act: string; points: number }[] = [];
        const proxy = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen: () => {} },
          async (req) => {
            const url = new URL(req.url);
            const path = url.pathname.replace("/api/2.0/mlflow/", "");
            const act = plan[path]?.shift() ?? "forward";
            const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
            const points = path === "runs/log-batch"
              ? JSON.parse(new TextDecoder().decode(body)).metrics?.length ?? 0
              : 0;
            seen.push({ path, at: performance.now(), act, points });
            if (act === "429") {
              return new Response("slow down", { status: 429, headers: { "retry-after": "1" } });
            }
            const res = await fetch(`${server.url}${url.pathname}${url.search}`, {
              method: req.method,
              headers: req.headers,
              body,
            });
            const text = await res.text();
            if (act === "lost") return new Response("upstream reset", { status: 502 });
            return new Response(text, { status: res.status, headers: res.headers });
          },
        );
        try {
          const dir = `${tmp}/proxy`;
          await Deno.mkdir(dir);
          const { warnings, warn } = collector();
          const logger = mlflowLogger({
            trackingUri: `http://127.0.0.1:${proxy.addr.port}`,
            experiment: "tunebox-proxy",
            retryDelayMs: 50,
            maxRetryDelayMs: 100,
            warn,
          });
          await logger.onExperimentStart!(experiment("proxy", dir));
          const tr = trial("prx00_00000", { lr: 0.5 }, dir);
          logger.onTrialStart!({ trial: tr, resumed: false });
          assert.equal((await logger.flush(20_000)).pending, 0); // parent and trial runs exist
          plan["runs/log-batch"] = ["429", "lost"]; // now hits the batch with the metric points
          for (let i = 1; i <= 3; i++) report(logger, tr, i, { loss: i / 10 });
          const done = { ...tr, status: "terminated" as const };
          logger.onTrialEnd!({ trial: done, outcome: "completed" });
          await logger.onExperimentEnd!({ trials: [done], interrupted: false });
          assert.equal((await logger.flush(0)).pending, 0);

          const runs = await runsOf(server, "tunebox-proxy");
          assert.deepEqual(runs.map((r) => [r.info.run_name, r.info.status]), [
            ["proxy", "FINISHED"],
            [tr.id, "FINISHED"],
          ]);
          const h = await history(server, byName(runs, tr.id).info.run_id, "loss");
          assert.deepEqual(h.map((m) => [m.step, m.value]), [[1, 0.1], [2, 0.2], [3, 0.3]]);
          assert.ok(seen.some((x) => x.path === "runs/search"), "looked for the lost run");
          const batches = seen.filter((x) => x.path === "runs/log-batch");
          const i = batches.findIndex((x) => x.act === "429");
          assert.equal(batches[i + 1].act, "lost");
          assert.ok(batches[i + 1].points > 0, "the lost answer was for a batch of metric points");
          assert.equal(batches[i + 2].points, batches[i + 1].points, "the same batch was resent");
          const gap = batches[i + 1].at - batches[i].at;
          assert.ok(gap >= 950, `retried ${gap.toFixed(0)} ms after a 429 with Retry-After: 1`);
          assert.ok(warnings.some((w) => w.includes("HTTP 429")), warnings.join("\n"));
          assert.ok(warnings.some((w) => w.includes("HTTP 502")), warnings.join("\n"));
        } finally {
          await proxy.shutdown();
        }
      },
    );

    await t.step(
      "reads MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME when the experiment starts",
      async () => {
        const dir = `${tmp}/env`;
        await Deno.mkdir(dir);
        const logger = mlflowLogger({ drainTimeoutMs: 20_000 }); // built before the env is set
        Deno.env.set("MLFLOW_TRACKING_URI", `${server.url}/`);
        Deno.env.set("MLFLOW_EXPERIMENT_NAME", "tunebox-from-env");
        try {
          await logger.onExperimentStart!(experiment("env", dir));
        } finally {
          Deno.env.delete("MLFLOW_TRACKING_URI");
          Deno.env.delete("MLFLOW_EXPERIMENT_NAME");
        }
        const tr = trial("env00_00000", { lr: 0.5 }, dir);
        logger.onTrialStart!({ trial: tr, resumed: false });
        report(logger, tr, 1, { loss: 0.5 });
        await logger.onExperimentEnd!({
          trials: [{ ...tr, status: "terminated" }],
          interrupted: false,
        });
        const runs = await runsOf(server, "tunebox-from-env");
        assert.deepEqual(runs.map((r) => [r.info.run_name, r.info.status]), [
          ["env", "FINISHED"],
          [tr.id, "FINISHED"],
        ]);
      },
    );

    await t.step("works in a process without env permission", async () => {
      const dir = await Deno.makeTempDir({ dir: tmp, prefix: "noenv_" });
      const mod = new URL("../../plugins/loggers/mlflow.ts", import.meta.url).href;
      const script = `${dir}/main.ts`;
      await Deno.writeTextFile(
        script,
        `import { mlflowLogger } from ${JSON.stringify(mod)};
const [url, dir] = Deno.args;
const warnings: string[] = [];
const logger = mlflowLogger({ trackingUri: url, warn: (m) => warnings.push(m) });
await logger.onExperimentStart!({ name: "tunebox-noenv", dir, space: {}, metric: "loss",
  mode: "min", searcher: "random", scheduler: "fifo", resumed: false });
const trial = { id: "nen00_00000", status: "running", config: { x: 1 }, iteration: 0, dir } as const;
logger.onTrialStart!({ trial, resumed: false });
const result = { loss: 1, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1,
  timestamp: 0, trial_id: trial.id };
logger.onReport!({ trial, result, decision: { kind: "continue" } });
await logger.onExperimentEnd!({ trials: [{ ...trial, status: "terminated" }], interrupted: false });
console.log(JSON.stringify({ warnings, delivery: await logger.flush(0) }));
`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--no-config",
          `--allow-read`,
          `--allow-write=${dir}`,
          "--allow-net=127.0.0.1",
          script,
          server.url,
          dir,
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const got = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(got.warnings, []);
      assert.equal(got.delivery.pending, 0);
      const runs = await runsOf(server, "tunebox-noenv");
      assert.deepEqual(runs.map((r) => [r.info.run_name, r.info.status]), [
        ["nen00_00000", "FINISHED"],
        ["tunebox-noenv", "FINISHED"],
      ]);
      assert.equal(tagsOf(runs[0])["mlflow.user"], undefined);
    });

    await t.step(
      "keeps data while the server is down and delivers every point exactly once when it is back",
      async () => {
        // Two experiments share one outage: "live" goes on across it and delivers when the
        // server is back; "ended" finishes during it, spools, and its resume delivers the rest.
        const dirLive = `${tmp}/live`, dirEnded = `${tmp}/ended`;
        await Deno.mkdir(dirLive);
        await Deno.mkdir(dirEnded);
        const live = collector(), ended = collector();
        const opts = (name: string, warn: (m: string) => void) =>
          base({
            experiment: `tunebox-${name}`,
            drainTimeoutMs: 1000,
            maxRetryDelayMs: 2000,
            warn,
          });
        const lv = mlflowLogger(opts("live", live.warn));
        const en = mlflowLogger(opts("ended", ended.warn));
        await lv.onExperimentStart!(experiment("live", dirLive));
        await en.onExperimentStart!(experiment("ended", dirEnded));
        const a = trial("liv00_00000", { lr: 0.1 }, dirLive);
        const b = trial("end00_00000", { lr: 0.2 }, dirEnded);
        lv.onTrialStart!({ trial: a, resumed: false });
        en.onTrialStart!({ trial: b, resumed: false });
        for (let i = 1; i <= 3; i++) {
          report(lv, a, i, { loss: 10 - i });
          report(en, b, i, { loss: i });
        }
        assert.equal((await lv.flush(20_000)).pending, 0);
        assert.equal((await en.flush(20_000)).pending, 0);

        await server.stop(); // killed in the middle of both experiments
        let slowest = 0;
        for (let i = 4; i <= 8; i++) {
          slowest = Math.max(slowest, await timed(() => report(lv, a, i, { loss: 10 - i })));
        }
        for (let i = 4; i <= 6; i++) {
          slowest = Math.max(slowest, await timed(() => report(en, b, i, { loss: i })));
        }
        const bEnd = { ...b, status: "terminated" as const };
        slowest = Math.max(
          slowest,
          await timed(() => en.onTrialEnd!({ trial: bEnd, outcome: "completed" })),
        );
        assert.ok(slowest < HOOK_BOUND_MS, `a hook took ${slowest} ms while the server was down`);
        const endMs = await timed(() =>
          en.onExperimentEnd!({ trials: [bEnd], interrupted: false })
        );
        assert.ok(endMs < 1000 + 3000, `onExperimentEnd took ${endMs} ms`);
        assert.ok((await lv.flush(300)).pending > 0);
        for (const c of [live, ended]) {
          assert.equal(
            c.warnings.filter((w) =>
              w.startsWith(`[mlflow] cannot reach the tracking server at ${server.url}`)
            ).length,
            1,
            c.warnings.join("\n"),
          );
        }
        assert.ok(
          ended.warnings.some((w) => w.includes(`kept in ${dirEnded}/mlflow.json`)),
          ended.warnings.join("\n"),
        );
        const spool = JSON.parse(await Deno.readTextFile(`${dirEnded}/mlflow.json`));
        assert.deepEqual(
          spool.trials[0].pending.metrics.filter((m: unknown[]) => m[0] === "loss")
            .map((m: unknown[]) => m[3]),
          [4, 5, 6],
        );
        assert.equal(spool.trials[0].pending.status.status, "FINISHED");

        await server.restart();
        for (let i = 9; i <= 10; i++) report(lv, a, i, { loss: 10 - i });
        const aEnd = { ...a, status: "terminated" as const };
        lv.onTrialEnd!({ trial: aEnd, outcome: "completed" });
        // The restarted server may take seconds to answer on a busy machine: wait until the live
        // experiment has delivered what it kept (backoff is capped at 2 s above), then end it.
        assert.equal((await lv.flush(60_000)).pending, 0, live.warnings.join("\n"));
        await lv.onExperimentEnd!({ trials: [aEnd], interrupted: false });
        assert.equal((await lv.flush(0)).pending, 0);
        assert.ok(live.warnings.some((w) => w.includes("answers again")), live.warnings.join("\n"));
        const resumed = mlflowLogger(opts("ended", ended.warn));
        await resumed.onExperimentStart!(experiment("ended", dirEnded, true));
        await resumed.onExperimentEnd!({ trials: [bEnd], interrupted: false });
        assert.equal((await resumed.flush(60_000)).pending, 0);

        const cases = [["live", a, 10, dirLive], ["ended", b, 6, dirEnded]] as const;
        for (const [name, tr, steps, dir] of cases) {
          const runs = await runsOf(server, `tunebox-${name}`);
          assert.deepEqual(runs.map((r) => [r.info.run_name, r.info.status]), [
            [tr.id, "FINISHED"],
            [name, "FINISHED"],
          ]);
          const h = await history(server, byName(runs, tr.id).info.run_id, "loss");
          assert.deepEqual(h.map((m) => m.step), Array.from({ length: steps }, (_, i) => i + 1));
          const want = h.map((m) => (name === "live" ? 10 - m.step : m.step));
          assert.deepEqual(h.map((m) => m.value), want);
          const state = JSON.parse(await Deno.readTextFile(`${dir}/mlflow.json`));
          assert.ok(state.trials.every((s: { pending?: unknown }) => s.pending === undefined));
        }
      },
    );
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

// -- without a server ------------------------------------------------------------------------------

Deno.test("mlflowLogger warns once and never stalls the experiment when the server is unreachable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mlflow_down_" });
  try {
    const url = `http://127.0.0.1:${freePort()}`; // nothing listens there
    const { warnings, warn } = collector();
    const logger = mlflowLogger({
      trackingUri: url,
      experiment: "down",
      drainTimeoutMs: 300,
      retryDelayMs: 20,
      maxRetryDelayMs: 100,
      warn,
    });
    const hookMs: number[] = [];
    hookMs.push(await timed(() => logger.onExperimentStart!(experiment("down", dir))));
    const tr = trial("dwn00_00000", { lr: 0.1 }, dir);
    hookMs.push(await timed(() => logger.onTrialStart!({ trial: tr, resumed: false })));
    for (let i = 1; i <= 50; i++) {
      hookMs.push(await timed(() => report(logger, tr, i, { loss: 1 / i, acc: i / 50 })));
    }
    hookMs.push(await timed(() => logger.onTrialEnd!({ trial: tr, outcome: "completed" })));
    assert.ok(Math.max(...hookMs) < HOOK_BOUND_MS, `slowest hook: ${Math.max(...hookMs)} ms`);
    const endMs = await timed(() =>
      logger.onExperimentEnd!({ trials: [{ ...tr, status: "terminated" }], interrupted: false })
    );
    assert.ok(endMs >= 250 && endMs < 3000, `onExperimentEnd took ${endMs} ms`);

    const unreachable = warnings.filter((w) =>
      w.startsWith(`[mlflow] cannot reach the tracking server at ${url}`)
    );
    assert.equal(unreachable.length, 1, warnings.join("\n"));
    const end = warnings.find((w) => w.startsWith("[mlflow] could not deliver"));
    assert.ok(end?.includes(`kept in ${dir}/mlflow.json`), warnings.join("\n"));
    const spool = JSON.parse(await Deno.readTextFile(`${dir}/mlflow.json`));
    assert.equal(spool.trackingUri, url);
    assert.equal(spool.experimentId, undefined);
    // 50 reports x (loss, acc, training_iteration, time_total_s, time_this_iter_s)
    assert.equal(spool.trials[0].pending.metrics.length, 250);
    assert.equal(spool.trials[0].pending.status.status, "FINISHED");
    assert.equal(spool.parent.pending.status.status, "FINISHED");
    const delivery = await logger.flush(0);
    assert.equal(delivery.delivered, 0);
    // + runs to create, params, tags and statuses of the parent and the trial
    assert.ok(delivery.pending > 250 + 10, String(delivery.pending));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startMlflowServer fails with a clear message when the venv's Python is missing", async () => {
  const before = Deno.env.get("TUNEBOX_PYTHON");
  Deno.env.set("TUNEBOX_PYTHON", "/nonexistent/tunebox/python");
  try {
    await assert.rejects(startMlflowServer(), {
      message:
        /Python for the MLflow test peer not found at "\/nonexistent\/tunebox\/python".*pip install mlflow.*TUNEBOX_PYTHON/,
    });
  } finally {
    if (before === undefined) Deno.env.delete("TUNEBOX_PYTHON");
    else Deno.env.set("TUNEBOX_PYTHON", before);
  }
});

Deno.test("mlflowLogger rejects bad options with messages that name the option", () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [
      { trackingUri: "ftp://x" },
      "TypeError",
      /option "trackingUri" must be an http\(s\) URL .* got "ftp:\/\/x"/,
    ],
    [{ trackingUri: "" }, "TypeError", /option "trackingUri" must be a non-empty string, got ""/],
    [
      { trackinguri: "http://x" },
      "TypeError",
      /unknown option "trackinguri" \(did you mean "trackingUri"\?\)/,
    ],
    [{ experiment: 3 }, "TypeError", /option "experiment" must be a non-empty string, got 3/],
    [
      { experiment: "x".repeat(501) },
      "RangeError",
      /option "experiment" must be at most 500 characters/,
    ],
    [
      { username: "u" },
      "TypeError",
      /options "username" and "password" go together, got only "username"/,
    ],
    [{ tags: { a: 1 } }, "TypeError", /option "tags" must map to strings, got a: 1/],
    [
      { checkpoint: "all" },
      "TypeError",
      /option "checkpoint" must be "none", "best" or "last", got "all"/,
    ],
    [
      { maxParamValueLength: 0 },
      "RangeError",
      /option "maxParamValueLength" must be an integer from 1 to 1000000, got 0/,
    ],
    [
      { maxParamValueLength: 2.5 },
      "RangeError",
      /"maxParamValueLength" must be an integer .* got 2.5/,
    ],
    [
      { drainTimeoutMs: -1 },
      "RangeError",
      /option "drainTimeoutMs" must be a number from 0 to 86400000, got -1/,
    ],
    [
      { requestTimeoutMs: "5s" },
      "TypeError",
      /option "requestTimeoutMs" must be a finite number, got "5s"/,
    ],
    [
      { retryDelayMs: 1000, maxRetryDelayMs: 10 },
      "RangeError",
      /option "maxRetryDelayMs" must be a number from 1000/,
    ],
    [{ warn: "console" }, "TypeError", /option "warn" must be a function, got "console"/],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(
      () => mlflowLogger(options as MlflowLoggerOptions),
      { name, message },
      JSON.stringify(options),
    );
  }
});

Deno.test('mlflowLogger is made by its YAML name "mlflow"', async () => {
  const factory = await findPluginFactory("callback", "mlflow");
  if (!factory) throw new Error("mlflow is not a callback name");
  const logger = factory({
    name: "mlflow",
    trackingUri: "http://127.0.0.1:5000",
    experiment: "mnist",
  }) as {
    name: string;
  };
  assert.equal(logger.name, "mlflow");
  assert.throws(() => factory({ tracking_uri: "http://127.0.0.1:5000" }), {
    name: "TypeError",
    message: /unknown option "tracking_uri" \(did you mean "trackingUri"\?\)/,
  });
});
