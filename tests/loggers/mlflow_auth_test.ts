// The MLflow logger against a real `mlflow server --app-name basic-auth` (MLflow's own
// authentication app, `pip install "mlflow[auth]"`): the right user name and password log
// everything; a wrong password, a wrong token or no credentials give one clear authentication
// error, one request, and an experiment that goes on and ends promptly with its data kept.
// A small pass-through proxy on 127.0.0.1 counts the requests the logger sends.

import assert from "#assert";
import {
  type ExperimentStart,
  mlflowLogger,
  type MlflowLoggerOptions,
  type TrialSnapshot,
} from "../../plugins/loggers/mlflow.ts";
import { type MlflowServer, startMlflowServer } from "../peers/mlflow_server.ts";

const ADMIN = { username: "tunebox-admin", password: "right-password-0123" };

// -- a counting pass-through proxy ----------------------------------------------------------------

interface Proxy {
  readonly url: string;
  /** `"<METHOD> <path> <status>"` of every request, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

function countingProxy(target: string): Proxy {
  const requests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const u = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const body = req.method === "GET" || req.method === "HEAD"
        ? undefined
        : await req.arrayBuffer();
      const res = await fetch(target + u.pathname + u.search, {
        method: req.method,
        headers,
        body,
      });
      const data = await res.arrayBuffer();
      requests.push(`${req.method} ${u.pathname} ${res.status}`);
      const out = new Headers(res.headers);
      out.delete("content-encoding");
      out.delete("content-length");
      return new Response(data, { status: res.status, headers: out });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

// -- a small experiment, hook by hook as the runner calls them -------------------------------------

function trial(id: string, config: TrialSnapshot["config"], dir: string): TrialSnapshot {
  return { id, status: "running", config, iteration: 0, dir: `${dir}/${id}` };
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

/** A hook that waited on the network (a request, a retry, a drain) would take seconds here;
 * the bound is loose because the test suite runs in parallel on two busy cores. */
const HOOK_BOUND_MS = 1000;

async function timed(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Two trials, three reports each, one stopped by the scheduler; returns hook timings. */
async function runExperiment(
  options: MlflowLoggerOptions,
  name: string,
  dir: string,
): Promise<{ slowestHookMs: number; endMs: number; logger: ReturnType<typeof mlflowLogger> }> {
  await Deno.mkdir(dir, { recursive: true });
  const logger = mlflowLogger(options);
  const hooks: number[] = [];
  hooks.push(await timed(() => logger.onExperimentStart!(experiment(name, dir))));
  const trials = [trial("aut00_00000", { lr: 0.01, bs: 32 }, dir)];
  trials.push(trial("aut00_00001", { lr: 0.1, bs: 64 }, dir));
  for (const t of trials) {
    hooks.push(await timed(() => logger.onTrialStart!({ trial: t, resumed: false })));
  }
  for (let i = 1; i <= 3; i++) {
    for (const [k, t] of trials.entries()) {
      const result = {
        loss: (k + 1) / i,
        training_iteration: i,
        time_total_s: i,
        time_this_iter_s: 1,
        timestamp: Math.floor(Date.now() / 1000),
        trial_id: t.id,
      };
      hooks.push(
        await timed(() =>
          logger.onReport!({
            trial: { ...t, iteration: i, lastResult: result },
            result,
            decision: { kind: "continue" },
          })
        ),
      );
    }
  }
  const [a, b] = trials.map((t) => ({ ...t, status: "terminated" as const, iteration: 3 }));
  hooks.push(await timed(() => logger.onTrialEnd!({ trial: a, outcome: "completed" })));
  hooks.push(
    await timed(() => logger.onTrialEnd!({ trial: b, outcome: "stopped", reason: "asha" })),
  );
  const endMs = await timed(() => logger.onExperimentEnd!({ trials: [a, b], interrupted: false }));
  return { slowestHookMs: Math.max(...hooks), endMs, logger };
}

// -- reading back as the admin -----------------------------------------------------------------------

interface Run {
  info: { run_id: string; run_name: string; status: string };
  data: { tags?: { key: string; value: string }[] };
}

async function api(server: MlflowServer, path: string, body?: unknown): Promise<Response> {
  return await fetch(`${server.url}/api/2.0/mlflow/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...server.headers,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function json(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.url}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

async function runsOf(server: MlflowServer, name: string): Promise<Run[]> {
  const e = await json(
    await api(server, `experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`),
  );
  const id = (e.experiment as { experiment_id: string }).experiment_id;
  const r = await json(await api(server, "runs/search", { experiment_ids: [id] }));
  return ((r.runs ?? []) as Run[]).sort((x, y) => x.info.run_name.localeCompare(y.info.run_name));
}

async function lossSteps(server: MlflowServer, run: Run): Promise<[number, number][]> {
  const r = await json(
    await api(server, `metrics/get-history?run_id=${run.info.run_id}&metric_key=loss`),
  );
  return ((r.metrics ?? []) as { step: number; value: number }[])
    .map((m): [number, number] => [m.step, m.value])
    .sort((x, y) => x[0] - y[0]);
}

/** Both trial runs and the parent, with their statuses and every loss point exactly once. */
async function assertAllDelivered(server: MlflowServer, name: string, experimentName: string) {
  const runs = await runsOf(server, name);
  const byName = new Map(runs.map((r) => [r.info.run_name, r]));
  assert.deepEqual(Object.fromEntries(runs.map((r) => [r.info.run_name, r.info.status])), {
    [experimentName]: "FINISHED",
    aut00_00000: "FINISHED",
    aut00_00001: "KILLED",
  });
  assert.deepEqual(await lossSteps(server, byName.get("aut00_00000")!), [
    [1, 1],
    [2, 0.5],
    [3, 1 / 3],
  ]);
  assert.deepEqual(await lossSteps(server, byName.get("aut00_00001")!), [
    [1, 2],
    [2, 1],
    [3, 2 / 3],
  ]);
}

// -- the test -----------------------------------------------------------------------------------------

Deno.test("mlflowLogger against an mlflow server with basic authentication", async (t) => {
  const server = await startMlflowServer({ auth: ADMIN });
  const proxy = countingProxy(server.url);
  const tmp = await Deno.makeTempDir({ prefix: "tunebox_mlflow_auth_" });
  const base = (warn: (m: string) => void, extra: MlflowLoggerOptions): MlflowLoggerOptions => ({
    trackingUri: proxy.url,
    drainTimeoutMs: 20_000,
    retryDelayMs: 50,
    maxRetryDelayMs: 400,
    warn,
    ...extra,
  });
  try {
    // The server really checks: no credentials and a wrong password are refused.
    const anonymous = await fetch(`${server.url}/api/2.0/mlflow/experiments/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401);

    await t.step("the right user name and password log every run", async () => {
      const warnings: string[] = [];
      const dir = `${tmp}/right`;
      const { slowestHookMs, logger } = await runExperiment(
        base((m) => warnings.push(m), { ...ADMIN, experiment: "auth-right" }),
        "right",
        dir,
      );
      assert.ok(slowestHookMs < HOOK_BOUND_MS, `slowest hook: ${slowestHookMs} ms`);
      const delivery = await logger.flush(0);
      assert.equal(delivery.pending, 0);
      assert.equal(delivery.problem, undefined);
      assert.deepEqual(warnings, []);
      assert.ok(proxy.requests.every((r) => !/ 40[13]$/.test(r)), proxy.requests.join("\n"));
      await assertAllDelivered(server, "auth-right", "right");
    });

    // Each request costs the server a PBKDF2 check (about 0.5 s on a busy CPU): only the first
    // case resumes with the right credentials to show that nothing was lost.
    const rejected: [string, MlflowLoggerOptions, boolean][] = [
      ["a wrong password", { username: ADMIN.username, password: "wrong-password-0123" }, true],
      ["a wrong token", { token: "not-a-valid-token" }, false],
      ["no credentials", {}, false],
    ];
    for (const [what, credentials, resume] of rejected) {
      await t.step(
        `${what}: one clear authentication error, one request, and the experiment ends promptly`,
        async () => {
          const slug = what.replaceAll(" ", "-");
          const warnings: string[] = [];
          const dir = `${tmp}/${slug}`;
          const sent = proxy.requests.length;
          const { slowestHookMs, endMs, logger } = await runExperiment(
            base((m) => warnings.push(m), { ...credentials, experiment: `auth-${slug}` }),
            slug,
            dir,
          );
          assert.ok(slowestHookMs < HOOK_BOUND_MS, `slowest hook: ${slowestHookMs} ms`);
          // Gives up at once instead of waiting out drainTimeoutMs (20 s) or retrying.
          assert.ok(endMs < 3000, `onExperimentEnd took ${endMs} ms`);
          assert.deepEqual(proxy.requests.slice(sent), [
            "GET /api/2.0/mlflow/experiments/get-by-name 401",
          ]);

          const auth = warnings.filter((w) => w.startsWith("[mlflow] authentication failed"));
          assert.equal(auth.length, 1, warnings.join("\n"));
          assert.match(auth[0], /HTTP 401/);
          assert.match(auth[0], /rejected the credentials/);
          for (const v of ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]) {
            assert.ok(auth[0].includes(v), auth[0]);
          }
          assert.ok(auth[0].includes("MLFLOW_TRACKING_TOKEN"), auth[0]);
          const end = warnings.find((w) => w.startsWith("[mlflow] could not deliver"));
          assert.ok(end?.includes(`kept in ${dir}/mlflow.json`), warnings.join("\n"));
          assert.equal(warnings.length, 2, warnings.join("\n"));

          const delivery = await logger.flush(0);
          assert.equal(delivery.delivered, 0);
          assert.ok(delivery.pending > 0);
          assert.match(delivery.problem ?? "", /rejected the credentials/);
          const missing = await api(
            server,
            `experiments/get-by-name?experiment_name=auth-${slug}`,
          );
          await missing.body?.cancel();
          assert.equal(missing.status, 404, "nothing reached the server");

          if (!resume) return;
          // Nothing is lost: resumed with the right credentials, everything kept arrives once.
          const resumed = mlflowLogger(
            base((m) => warnings.push(m), { ...ADMIN, experiment: `auth-${slug}` }),
          );
          await resumed.onExperimentStart!(experiment(slug, dir, true));
          // Each request costs the server a PBKDF2 check, seconds on a busy machine: wait for
          // delivery rather than for a fixed drain, then end.
          assert.equal((await resumed.flush(180_000)).pending, 0, warnings.join("\n"));
          await resumed.onExperimentEnd!({ trials: [], interrupted: false });
          assert.equal((await resumed.flush(0)).pending, 0);
          assert.equal(warnings.length, 2, warnings.join("\n"));
          await assertAllDelivered(server, `auth-${slug}`, slug);
        },
      );
    }
  } finally {
    await proxy.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
