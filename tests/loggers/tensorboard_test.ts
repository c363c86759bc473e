// The TensorBoard logger, checked against TensorBoard itself: its Python EventAccumulator (via
// tests/peers/tb_read.py) and a real `tensorboard` server on 127.0.0.1, with both of its back
// ends (the Python multiplexer and the Rust data server).

import { deepEqual, equal, ok, throws } from "#assert";
import type { Callback, TrialOutcome } from "../../core/plugin.ts";
import { Rng } from "../../core/random.ts";
import {
  choice,
  loguniform,
  randint,
  sampleConfig,
  type Space,
  uniform,
} from "../../core/space.ts";
import type {
  Config,
  JsonValue,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "../../core/trial.ts";
import { crc32c, maskCrc, maskedCrc32c } from "../../plugins/loggers/tensorboard/_crc32c.ts";
import {
  EventFileWriter,
  fileVersionEvent,
} from "../../plugins/loggers/tensorboard/_event_file.ts";
import {
  EXPERIMENT_TAG,
  experimentContent,
  flattenConfig,
  type HParamValue,
  pluginContent,
  readExperiment,
  SESSION_START_TAG,
  sessionEndContent,
  sessionStartContent,
} from "../../plugins/loggers/tensorboard/_hparams.ts";
import { decodeFields, fieldsOf, readFloat } from "../../plugins/loggers/tensorboard/_proto.ts";
import { frameRecord, readRecords } from "../../plugins/loggers/tensorboard/_tfrecord.ts";
import { tensorboardLogger } from "../../plugins/loggers/tensorboard/mod.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";

// ---------------------------------------------------------------------------------------------
// Python peer

const REPO = new URL("../../", import.meta.url).pathname;
const PEER = `${REPO}tests/peers/tb_read.py`;

function python(): string {
  const py = Deno.env.get("TUNEBOX_PYTHON") ?? `${REPO}.venv/bin/python`;
  try {
    Deno.statSync(py);
  } catch {
    throw new Error(
      `The TensorBoard tests need Python with tensorboard installed, and ${py} does not exist. ` +
        `Create it with "python3 -m venv .venv && .venv/bin/pip install tensorboard" in the ` +
        `repository, or set TUNEBOX_PYTHON to such a python.`,
    );
  }
  return py;
}

/** A float as the peer and TensorBoard's HTTP API write it. */
type Num = number | "NaN" | "Infinity" | "-Infinity";
type Point = [wallTime: number, step: number, value: Num];

interface PeerRun {
  scalars: Record<string, Point[]>;
  dataClass: Record<string, number>;
  plugin: Record<string, string>;
  hparams: Record<string, HParamsData>;
}

interface ValueJson {
  [key: string]: unknown;
}
interface HParamInfoJson {
  name: string;
  type?: string;
  domainDiscrete?: HParamValue[];
  domainInterval?: { minValue?: number; maxValue?: number };
}
interface HParamsData {
  experiment?: {
    name?: string;
    description?: string;
    hparamInfos?: HParamInfoJson[];
    metricInfos?: { name: { tag?: string; group?: string } }[];
  };
  sessionStartInfo?: { hparams?: Record<string, ValueJson>; startTimeSecs?: number };
  sessionEndInfo?: { status?: string; endTimeSecs?: number };
}

async function peer<T>(...args: string[]): Promise<T> {
  const out = await new Deno.Command(python(), { args: [PEER, ...args], stdin: "null" }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`tb_read.py ${args[0]} failed (${out.code}):\n${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

async function peerRuns(logdir: string): Promise<Record<string, PeerRun>> {
  return (await peer<{ runs: Record<string, PeerRun> }>("runs", logdir)).runs;
}

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`Missing: ${what}`);
  return v;
}

function num(v: number): Num {
  const f = Math.fround(v);
  return Number.isNaN(f) ? "NaN" : f === Infinity ? "Infinity" : f === -Infinity ? "-Infinity" : f;
}

// ---------------------------------------------------------------------------------------------
// A realistic experiment: five trials, one completed, one stopped by the scheduler, one that
// fails, is retried and fails for good, one paused and resumed, one with NaN and ±Infinity.

const SPACE: Space = {
  lr: loguniform(1e-4, 1e-1),
  batch_size: choice([32, 64, 128]),
  hidden: randint(32, 257),
  activation: choice(["relu", "tanh"]),
  batch_norm: choice([true, false]),
  optimizer: choice([
    { name: "sgd", momentum: uniform(0, 0.99) },
    { name: "adam", beta1: uniform(0.8, 0.999) },
  ]),
  epochs: 6,
};

const STATUS = ["STATUS_SUCCESS", undefined, "STATUS_FAILURE", "STATUS_SUCCESS", "STATUS_SUCCESS"];

interface SimTrial {
  attempt: number;
  id: string;
  dir: string;
  config: Config;
  results: TrialResult[];
}

function clock(): () => number {
  let t = 1_800_000_000;
  return () => (t += 0.5);
}

function result(tr: SimTrial, t: number, i: number, total: number): TrialResult {
  const lr = tr.config.lr as number, id = tr.id;
  const r: Record<string, JsonValue> = {
    val_loss: 1 / (i + 2) + t / 7 + lr + tr.attempt / 3,
    val_acc: 1 - 1 / (i + 3) - t / 11,
    train: { loss: 1 / (i + 1) + t / 13, acc: 0.5 + i / 17 },
    phase: "train",
    converged: i >= 5,
    hist: [i, i + 1],
    training_iteration: i,
    time_this_iter_s: 0.1 + t / 100 + i / 1000,
    time_total_s: total,
    timestamp: 1_700_000_000 + t * 1000 + i + 0.125,
    trial_id: id,
    date: "2026-07-01_12-00-00",
  };
  if (t === 4) r.grad_norm = i === 3 ? NaN : i === 4 ? -Infinity : i === 5 ? Infinity : i / 3;
  return r as TrialResult;
}

type Action =
  | { kind: "start"; resumed: boolean }
  | { kind: "retry"; from: number }
  | { kind: "report"; i: number }
  | { kind: "end"; outcome: TrialOutcome; status: TrialStatus };

async function simulate(root: string, logger: Callback, until = Infinity): Promise<SimTrial[]> {
  await logger.onExperimentStart?.({
    name: "mnist-asha",
    dir: root,
    space: SPACE,
    metric: "val_loss",
    mode: "min",
    searcher: "random",
    scheduler: "asha",
    resumed: false,
  });
  const rng = new Rng(42);
  const reports = (from: number, to: number): Action[] =>
    Array.from({ length: to - from + 1 }, (_, k) => ({ kind: "report", i: from + k }));
  const start = (resumed = false): Action => ({ kind: "start", resumed });
  const retry = (from: number): Action => ({ kind: "retry", from });
  const end = (outcome: TrialOutcome, status: TrialStatus): Action => ({
    kind: "end",
    outcome,
    status,
  });
  const plans: Action[][] = [
    [start(), ...reports(1, 6), end("completed", "terminated")],
    [start(), ...reports(1, 2), end("stopped", "terminated")],
    // Fails at 3, is retried from its checkpoint at 1 (the runner sends no TrialEnd for that),
    // redoes 2 and 3 with other values, fails for good.
    [start(), ...reports(1, 3), retry(1), ...reports(2, 3)].concat(
      end("error", "error"),
    ),
    [start(), ...reports(1, 2), end("paused", "paused"), start(true), ...reports(3, 6)].concat(
      end("completed", "terminated"),
    ),
    [start(), ...reports(1, 6), end("completed", "terminated")],
  ];
  const trials: SimTrial[] = plans.map((_, t) => {
    const id = `a2b9e_0000${t}`;
    const dir = `${root}/${id}`;
    const config = sampleConfig(SPACE, rng, new Map([["optimizer", t % 2]]));
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${dir}/params.json`, JSON.stringify(config));
    return { id, dir, config, results: [], attempt: 0 };
  });
  const totals = trials.map(() => 0);
  // `until` cuts the experiment short (trials still running, no experiment end).
  // Round robin, as a runner with several trials in flight interleaves them.
  for (let step = 0; step < until && plans.some((p) => step < p.length); step++) {
    for (let t = 0; t < plans.length; t++) {
      const a = plans[t][step];
      if (!a) continue;
      const tr = trials[t];
      const snap = (status: TrialStatus): TrialSnapshot => ({
        id: tr.id,
        status,
        config: tr.config,
        iteration: tr.results.length,
        lastResult: tr.results.at(-1),
        dir: tr.dir,
        ...(status === "error" ? { error: "boom" } : {}),
      });
      if (a.kind === "start") {
        await logger.onTrialStart?.({ trial: snap("running"), resumed: a.resumed });
      } else if (a.kind === "retry") {
        tr.results.length = a.from;
        tr.attempt++;
        await logger.onTrialStart?.({ trial: snap("running"), resumed: true });
      } else if (a.kind === "report") {
        const r = result(tr, t, a.i, totals[t] += 0.5);
        tr.results.push(r);
        await logger.onReport?.({
          trial: snap("running"),
          result: r,
          decision: { kind: "continue" },
        });
      } else {
        await logger.onTrialEnd?.({ trial: snap(a.status), outcome: a.outcome, reason: "why" });
      }
    }
  }
  if (until !== Infinity) return trials;
  await logger.onExperimentEnd?.({
    trials: trials.map((tr) => ({
      id: tr.id,
      status: "terminated",
      config: tr.config,
      iteration: tr.results.length,
      dir: tr.dir,
    })),
    interrupted: false,
  });
  return trials;
}

/** Every scalar a trial's results should give: tag -> [wall time, step, float32 value]. */
function expectedScalars(tr: SimTrial): Record<string, Point[]> {
  const out: Record<string, Point[]> = {};
  const add = (tag: string, r: TrialResult, v: number) =>
    (out[tag] ??= []).push([r.timestamp, r.training_iteration, num(v)]);
  for (const r of tr.results) {
    for (const k of ["val_loss", "val_acc", "time_this_iter_s", "time_total_s", "grad_norm"]) {
      if (typeof r[k] === "number") add(k, r, r[k] as number);
    }
    const train = r.train as Record<string, number>;
    add("train/loss", r, train.loss);
    add("train/acc", r, train.acc);
  }
  return out;
}

function configJson(config: Config): Record<string, HParamValue> {
  return Object.fromEntries(flattenConfig(config));
}

const EXPECTED_HPARAMS: Record<string, Omit<HParamInfoJson, "name">> = {
  lr: { type: "DATA_TYPE_FLOAT64", domainInterval: { minValue: 1e-4, maxValue: 0.1 } },
  batch_size: { type: "DATA_TYPE_FLOAT64", domainDiscrete: [32, 64, 128] },
  hidden: { type: "DATA_TYPE_FLOAT64", domainInterval: { minValue: 32, maxValue: 256 } },
  activation: { type: "DATA_TYPE_STRING", domainDiscrete: ["relu", "tanh"] },
  batch_norm: { type: "DATA_TYPE_BOOL", domainDiscrete: [true, false] },
  "optimizer/name": { type: "DATA_TYPE_STRING", domainDiscrete: ["sgd", "adam"] },
  "optimizer/momentum": {
    type: "DATA_TYPE_FLOAT64",
    domainInterval: { minValue: 0, maxValue: 0.99 },
  },
  "optimizer/beta1": {
    type: "DATA_TYPE_FLOAT64",
    domainInterval: { minValue: 0.8, maxValue: 0.999 },
  },
};

function hparamsByName(infos: HParamInfoJson[]): Record<string, Omit<HParamInfoJson, "name">> {
  return Object.fromEntries(infos.map((h) => {
    const { name, type, domainDiscrete, domainInterval } = h;
    return [name, {
      type,
      ...(domainDiscrete ? { domainDiscrete } : {}),
      ...(domainInterval
        ? {
          domainInterval: {
            minValue: domainInterval.minValue ?? 0,
            maxValue: domainInterval.maxValue ?? 0,
          },
        }
        : {}),
    }];
  }));
}

const METRICS = [
  "val_loss",
  "val_acc",
  "train/loss",
  "train/acc",
  "time_this_iter_s",
  "time_total_s",
  "grad_norm",
];

async function withTempDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_tb_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading our files back with TensorBoard's accumulator

Deno.test("tensorboardLogger files read back by TensorBoard's EventAccumulator hold every value, step and hparam", async () => {
  await withTempDir(async (root) => {
    const trials = await simulate(root, tensorboardLogger({ now: clock() }));
    const runs = await peerRuns(root);
    deepEqual(Object.keys(runs).sort(), [".", ...trials.map((t) => t.id)].sort());

    // The root run holds the experiment summary and nothing else.
    const rootRun = runs["."];
    deepEqual(rootRun.scalars, {});
    deepEqual(Object.keys(rootRun.hparams), [EXPERIMENT_TAG]);
    equal(rootRun.dataClass[EXPERIMENT_TAG], 2);
    const exp = rootRun.hparams[EXPERIMENT_TAG].experiment!;
    equal(exp.name, "mnist-asha");
    ok(exp.description?.includes("val_loss"));
    deepEqual(hparamsByName(exp.hparamInfos!), EXPECTED_HPARAMS);
    deepEqual(exp.metricInfos!.map((m) => m.name.tag), METRICS);
    ok(exp.metricInfos!.every((m) => !m.name.group));

    trials.forEach((tr, t) => {
      const run = runs[tr.id];
      // Every numeric value of every report, at its iteration, in float32; nothing else.
      deepEqual(run.scalars, expectedScalars(tr));
      for (const tag of Object.keys(run.scalars)) {
        equal(run.dataClass[tag], 1, `data class of ${tag}`);
        equal(run.plugin[tag], "scalars");
      }
      const start = run.hparams["_hparams_/session_start_info"].sessionStartInfo!;
      deepEqual(start.hparams, configJson(tr.config));
      ok(start.startTimeSecs! > 1_800_000_000);
      const endInfo = must(
        run.hparams["_hparams_/session_end_info"]?.sessionEndInfo,
        `${tr.id} has a session end`,
      );
      equal(endInfo.status, STATUS[t], `status of ${tr.id}`);
      ok(endInfo.endTimeSecs! > start.startTimeSecs!);
    });
    // NaN and ±Infinity pass through.
    deepEqual(runs[trials[4].id].scalars.grad_norm.map((p) => p[2]).slice(2, 5), [
      "NaN",
      "-Infinity",
      "Infinity",
    ]);
    // One event file per trial, even for the paused and the retried trial.
    for (const tr of trials) {
      const files = [...Deno.readDirSync(tr.dir)].filter((e) => e.name.includes("tfevents"));
      equal(files.length, 1, `${tr.id}: ${files.map((f) => f.name)}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A real TensorBoard server

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`, { cause: last });
    // Polling another process; nothing to await in between.
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function withTensorboard(
  logdir: string,
  loadFast: boolean,
  fn: (
    get: (path: string) => Promise<unknown>,
    post: (path: string, body: unknown) => Promise<unknown>,
  ) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(python(), {
    args: [
      "-m",
      "tensorboard.main",
      "--logdir",
      logdir,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      `--load_fast=${loadFast}`,
      "--reload_interval",
      "1",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own process group: the Rust data server goes down with it
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]).then(([o, e]) => o + e);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const json = async (res: Response): Promise<unknown> => {
    const text = await res.text();
    if (!res.ok) throw new Error(`${res.url}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text);
  };
  const get = async (path: string) => json(await fetch(base + path));
  const post = async (path: string, body: unknown) =>
    json(
      await fetch(base + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }),
    );
  try {
    await poll("tensorboard to listen", async () => {
      if (exited) throw new Error("tensorboard exited");
      await get("/data/runs");
      return true;
    });
    await fn(get, post);
  } catch (e) {
    if (exited) throw new Error(`tensorboard exited early:\n${await output}`, { cause: e });
    throw e;
  } finally {
    try {
      Deno.kill(-child.pid, "SIGTERM");
    } catch { /* already gone */ }
    await status;
    try {
      Deno.kill(-child.pid, "SIGKILL"); // anything of its group still alive
    } catch { /* none left */ }
    await output;
  }
}

interface SessionGroupsJson {
  totalSize: number;
  sessionGroups: {
    name: string;
    hparams: Record<string, HParamValue>;
    metricValues: { name: { tag: string; group?: string }; value: Num; trainingStep: number }[];
    sessions: { name: string; status?: string; endTimeSecs?: number }[];
  }[];
}

Deno.test("a TensorBoard server lists every trial with its scalars, hyperparameters, status and final metrics", async (t) => {
  await withTempDir(async (root) => {
    const trials = await simulate(root, tensorboardLogger({ now: clock() }));
    const runNames = [".", ...trials.map((tr) => tr.id)].sort();
    for (const loadFast of [false, true]) {
      await t.step(
        loadFast ? "Rust data server (--load_fast=true)" : "Python multiplexer",
        async () => {
          await withTensorboard(root, loadFast, async (get, post) => {
            const runs = await poll("all runs", async () => {
              const r = (await get("/data/runs")) as string[];
              return r.length === runNames.length ? r : undefined;
            });
            deepEqual([...runs].sort(), runNames);

            for (const tr of trials) {
              const expected = expectedScalars(tr);
              for (const [tag, points] of Object.entries(expected)) {
                const q = `run=${encodeURIComponent(tr.id)}&tag=${encodeURIComponent(tag)}`;
                // The server loads in the background: wait until every point is in.
                const got = await poll(`${tr.id}/${tag}`, async () => {
                  const ps = (await get(`/data/plugin/scalars/scalars?${q}`)) as Point[];
                  return ps.length >= points.length ? ps : undefined;
                });
                deepEqual(got, points, `${tr.id} ${tag}`);
              }
            }

            const exp = (await post("/data/plugin/hparams/experiment", {
              experimentName: "",
            })) as NonNullable<HParamsData["experiment"]>;
            deepEqual(hparamsByName(exp.hparamInfos!), EXPECTED_HPARAMS);
            deepEqual(exp.metricInfos!.map((m) => m.name.tag).sort(), [...METRICS].sort());

            const groups = await poll("all session groups", async () => {
              const g = (await post("/data/plugin/hparams/session_groups", {
                experimentName: "",
                allowedStatuses: [
                  "STATUS_UNKNOWN",
                  "STATUS_SUCCESS",
                  "STATUS_FAILURE",
                  "STATUS_RUNNING",
                ],
                colParams: [],
                startIndex: 0,
                sliceSize: 100,
              })) as SessionGroupsJson;
              return g.totalSize === trials.length ? g : undefined;
            });
            trials.forEach((tr, i) => {
              const group = must(
                groups.sessionGroups.find((g) => g.name === tr.id),
                `session group of ${tr.id}`,
              );
              deepEqual(group.hparams, configJson(tr.config));
              equal(group.sessions.length, 1);
              equal(group.sessions[0].status ?? "STATUS_UNKNOWN", STATUS[i] ?? "STATUS_UNKNOWN");
              ok(group.sessions[0].endTimeSecs! > 0, `${tr.id} has an end time`);
              // The final value of every metric, at the last step.
              const last = tr.results.at(-1)!;
              const finals = Object.fromEntries(
                Object.entries(expectedScalars(tr)).map(([tag, ps]) => [tag, ps.at(-1)![2]]),
              );
              deepEqual(
                Object.fromEntries(group.metricValues.map((m) => [m.name.tag, m.value])),
                finals,
              );
              ok(group.metricValues.every((m) => m.trainingStep === last.training_iteration));
            });
          });
        },
      );
    }
  });
});

Deno.test("trials of a running experiment show in TensorBoard's HParams tab before it ends", async () => {
  await withTempDir(async (root) => {
    // Cut after every trial reported 3 times: t1 was stopped, t2 waits for a retry, t3 is paused.
    const trials = await simulate(
      root,
      tensorboardLogger({ now: clock(), stoppedStatus: "success" }),
      4,
    );
    // No experiment summary yet: TensorBoard infers it from the sessions and their scalars.
    equal(eventFiles(root).length, 0);
    await withTensorboard(root, true, async (_get, post) => {
      const groups = await poll("all session groups", async () => {
        const g = (await post("/data/plugin/hparams/session_groups", {
          experimentName: "",
          allowedStatuses: ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
          colParams: [],
          startIndex: 0,
          sliceSize: 100,
        })) as SessionGroupsJson;
        const complete = g.totalSize === trials.length &&
          g.sessionGroups.every((s) => s.metricValues.length >= 6);
        return complete ? g : undefined;
      });
      for (const tr of trials) {
        const group = must(groups.sessionGroups.find((g) => g.name === tr.id), tr.id);
        deepEqual(group.hparams, configJson(tr.config));
        const status = group.sessions[0].status ?? "STATUS_UNKNOWN";
        equal(status, tr.id.endsWith("1") ? "STATUS_SUCCESS" : "STATUS_UNKNOWN", tr.id);
        const loss = group.metricValues.find((m) => m.name.tag === "val_loss");
        equal(loss?.value, num(tr.results.at(-1)!.val_loss as number));
      }
      const exp = (await post("/data/plugin/hparams/experiment", {
        experimentName: "",
      })) as NonNullable<HParamsData["experiment"]>;
      const names = exp.hparamInfos!.map((h) => h.name);
      ok(Object.keys(EXPECTED_HPARAMS).every((n) => names.includes(n)), names.join());
      const tags = exp.metricInfos!.map((m) => m.name.tag);
      ok(["val_loss", "train/acc", "grad_norm"].every((m) => tags.includes(m)), tags.join());
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Killed writers

Deno.test("an event file cut off mid-record is read up to its last complete record", async () => {
  await withTempDir(async (root) => {
    const src = `${root}/src`;
    const w = EventFileWriter.create(src, { now: () => 1_700_000_000 });
    for (let step = 1; step <= 10; step++) {
      w.scalars(step, 1_700_000_000 + step, ["loss", "acc"], [1 / step, step / 10]);
    }
    w.close();
    const bytes = Deno.readFileSync(w.path);
    const ends: number[] = [];
    let at = 0;
    for (const r of readRecords(bytes).records) ends.push(at += r.length + 16);
    equal(ends.length, 11);
    equal(ends.at(-1), bytes.length);
    const last = ends[9]; // end of the record of step 9
    const cuts: Record<string, [cut: number, steps: number]> = {
      in_length: [last + 5, 9],
      in_length_crc: [last + 10, 9],
      in_data: [last + 20, 9],
      in_data_crc: [bytes.length - 1, 9],
      at_boundary: [last, 9],
      whole: [bytes.length, 10],
      first_record_only: [ends[0], 0],
    };
    for (const [name, [cut]] of Object.entries(cuts)) {
      Deno.mkdirSync(`${root}/cuts/${name}`, { recursive: true });
      Deno.writeFileSync(`${root}/cuts/${name}/events.out.tfevents.1.cut`, bytes.subarray(0, cut));
      const scan = readRecords(bytes.subarray(0, cut));
      equal(scan.records.length - 1, cuts[name][1], `our reader, ${name}`);
      equal(scan.truncated, cut !== ends[scan.records.length - 1]);
    }
    const runs = await peerRuns(`${root}/cuts`);
    for (const [name, [, steps]] of Object.entries(cuts)) {
      const loss = runs[name]?.scalars.loss ?? [];
      deepEqual(
        loss.map((p) => [p[1], p[2]]),
        Array.from({ length: steps }, (_, i) => [i + 1, num(1 / (i + 1))]),
        `TensorBoard reading the file cut ${name}`,
      );
    }
  });
});

Deno.test("a driver killed while it reports leaves a file TensorBoard reads up to the last full report", async () => {
  await withTempDir(async (root) => {
    const mod = new URL("../../plugins/loggers/tensorboard/mod.ts", import.meta.url).href;
    const dir = `${root}/k_00000`;
    const code = `
      import { tensorboardLogger } from ${JSON.stringify(mod)};
      const cb = tensorboardLogger();
      const trial = { id: "k_00000", status: "running", config: { lr: 0.5 }, iteration: 0,
        dir: ${JSON.stringify(dir)} };
      cb.onTrialStart({ trial, resumed: false });
      for (let i = 1; ; i++) {
        const metrics = {};
        for (let m = 0; m < 50; m++) metrics["metric_" + m] = i + m / 64;
        const result = { ...metrics, training_iteration: i, time_total_s: i, time_this_iter_s: 1,
          timestamp: 1700000000 + i, trial_id: "k_00000" };
        cb.onReport({ trial, result, decision: { kind: "continue" } });
        if (i === 300) console.log("ready");
      }`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", code],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    try {
      while (!seen.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
    } finally {
      child.kill("SIGKILL");
      await reader.cancel();
      const status = await child.status;
      const err = await new Response(child.stderr).text();
      ok(seen.includes("ready"), `the writer never got ready: ${err}`);
      equal(status.signal, "SIGKILL");
    }
    const file = [...Deno.readDirSync(dir)].find((e) => e.name.includes("tfevents"))!.name;
    const scan = readRecords(Deno.readFileSync(`${dir}/${file}`));
    const runs = await peerRuns(root);
    const points = runs["k_00000"].scalars.metric_7;
    ok(points.length >= 300, `only ${points.length} reports read`);
    // Three records before the reports: file version, SessionLog START, session start info.
    equal(points.length, scan.records.length - 3);
    deepEqual(
      points.map((p) => [p[1], p[2]]),
      points.map((_, i) => [i + 1, num(i + 1 + 7 / 64)]),
    );
    ok(runs["k_00000"].hparams["_hparams_/session_start_info"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Byte-level checks

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) =>
  new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));

Deno.test("crc32c matches the iSCSI (RFC 3720) test vectors and TensorBoard's masked_crc32c", async () => {
  equal(crc32c(ascii("123456789")), 0xe3069283);
  equal(crc32c(new Uint8Array(0)), 0);
  equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  equal(maskedCrc32c(ascii("123456789")), 0xc78ab0e5);
  equal(maskedCrc32c(new Uint8Array(0)), 0xa282ead8);
  equal(maskCrc(0), 0xa282ead8);
  equal(maskedCrc32c(unhex("1800000000000000")), 0x224b7fa3);
  // In pieces, and at offsets that are not multiples of 8.
  const data = ascii("The quick brown fox jumps over the lazy dog, twice over.");
  equal(crc32c(data, 13, 40), crc32c(data.slice(13, 40)));
  equal(crc32c(data, 20, data.length, crc32c(data, 0, 20)), crc32c(data));

  const rng = new Rng(7);
  const samples = [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000].map((n) =>
    Uint8Array.from({ length: n }, () => rng.int(0, 256))
  );
  const theirs = await peer<{ crc: number; masked: number }[]>("crc", ...samples.map(hex));
  deepEqual(
    samples.map((s) => ({ crc: crc32c(s), masked: maskedCrc32c(s) })),
    theirs,
  );
});

Deno.test("the first record and a scalar event have TensorBoard's exact bytes", async () => {
  // Event{wall_time: 1700000000, file_version: "brain.Event:2"} framed.
  deepEqual(
    hex(frameRecord(fileVersionEvent(1_700_000_000))),
    "1800000000000000a37f4b22" + "0900000040fc54d941" + "1a0d" + hex(ascii("brain.Event:2")) +
      "eced8f9d",
  );
  await withTempDir(async (dir) => {
    const w = EventFileWriter.create(dir, { now: () => 1_700_000_000, writer: "tunebox" });
    w.scalars(3, 1_700_000_001.5, ["loss"], [0.25]);
    w.scalars(4, 1_700_000_001.5, ["loss"], [0.5]);
    w.close();
    const records = readRecords(Deno.readFileSync(w.path)).records;
    equal(records.length, 3);
    // The first value of a tag carries the scalars metadata (data_class SCALAR) ...
    equal(
      hex(records[1]),
      "09000060" + "40fc54d941" + "1003" + "2a23" + "0a21" + "0a04" + hex(ascii("loss")) +
        "4a0d0a090a07" + hex(ascii("scalars")) + "2001" + "420a080112002a04" +
        "0000803e",
    );
    // ... later ones only the tag and the rank-0 DT_FLOAT tensor.
    equal(
      hex(records[2]),
      "0900006040fc54d941" + "1004" + "2a14" + "0a12" + "0a04" + hex(ascii("loss")) +
        "420a08011200" + "2a04" + "0000003f",
    );
    // And TensorBoard's record reader parses the whole file.
    const { events } = await peer<{ events: Record<string, unknown>[] }>("records", w.path);
    equal(events[0].fileVersion, "brain.Event:2");
    deepEqual(events[0].sourceMetadata, { writer: "tunebox" });
    equal(events.length, 3);
  });
});

Deno.test("hparams contents match tensorboardX's expected bytes", () => {
  equal(
    hex(experimentContent({
      name: "",
      description: "",
      timeCreatedSecs: 0,
      hparams: [{ name: "lr", type: "float64" }],
      metrics: ["accuracy"],
    })),
    "1216" + "2206" + "0a02" + hex(ascii("lr")) + "2003" + "2a0c0a0a1208" + hex(ascii("accuracy")),
  );
  equal(
    hex(sessionStartContent(new Map([["lr", 0.1]]), 0)),
    "1a110a0f0a02" + hex(ascii("lr")) + "120911" + "9a9999999999b93f",
  );
  equal(
    hex(sessionStartContent(new Map([["string_var", "hi"]]), 0)),
    "1a140a120a0a" + hex(ascii("string_var")) + "12041a02" + hex(ascii("hi")),
  );
  equal(
    hex(sessionStartContent(new Map([["bool_var", true]]), 0)),
    "1a100a0e0a08" + hex(ascii("bool_var")) + "12022001",
  );
  // false and 0 are oneof members: written, not left out.
  equal(hex(sessionStartContent(new Map([["b", false]]), 0)), "1a090a070a01" + "62" + "12022000");
  equal(hex(sessionEndContent("success", 0)), "22020801");
  equal(hex(sessionEndContent("failure", 0)), "22020802");
  equal(hex(sessionEndContent("unknown", 0)), "2200");
  const c = experimentContent({
    name: "x",
    description: "d",
    timeCreatedSecs: 12.5,
    hparams: [],
    metrics: ["a", "b/c"],
  });
  deepEqual(readExperiment(c), { metrics: ["a", "b/c"], timeCreatedSecs: 12.5 });
});

// ---------------------------------------------------------------------------------------------
// Behaviour without the Python peer (decoded with our own reader)

function readScalarsOf(path: string): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  const dec = new TextDecoder();
  for (const ev of readRecords(Deno.readFileSync(path)).records) {
    const fields = decodeFields(ev);
    const step = fields.find((f) => f.field === 2)?.int ?? 0;
    for (const s of fields.filter((f) => f.field === 5)) {
      for (const v of fieldsOf(s.bytes, 1)) {
        const vf = decodeFields(v.bytes);
        const tensor = vf.find((f) => f.field === 8);
        if (!tensor) continue;
        const fv = fieldsOf(tensor.bytes, 5)[0];
        if (!fv) continue;
        const tag = dec.decode(vf.find((f) => f.field === 1)!.bytes);
        if (!out.has(tag)) out.set(tag, []);
        out.get(tag)!.push([step, readFloat(fv.bytes)]);
      }
    }
  }
  return out;
}

function eventFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => e.name.includes("tfevents")).map((e) =>
    `${dir}/${e.name}`
  ).sort();
}

function trialSnap(
  id: string,
  dir: string,
  status: TrialStatus = "running",
  iteration = 0,
): TrialSnapshot {
  return {
    id,
    status,
    iteration,
    config: { lr: 0.1, layers: [8, 8], opt: { name: "sgd" } },
    dir,
  };
}

function report(i: number, metrics: Record<string, JsonValue>): TrialResult {
  return {
    ...metrics,
    training_iteration: i,
    time_total_s: i,
    time_this_iter_s: 1,
    timestamp: 1_700_000_000 + i,
    trial_id: "r_00000",
  };
}

Deno.test("a resumed experiment keeps the session start, redoes steps after the checkpoint in a new file and merges metrics", async () => {
  await withTempDir(async (root) => {
    const start = (resumed: boolean) => ({
      name: "resume",
      dir: root,
      space: { lr: uniform(0, 1) },
      metric: "loss",
      mode: "min" as const,
      searcher: "random",
      scheduler: "fifo",
      resumed,
    });
    const dir = `${root}/r_00000`;
    const a = tensorboardLogger({ now: clock() });
    await a.onExperimentStart?.(start(false));
    await a.onTrialStart?.({ trial: trialSnap("r_00000", dir), resumed: false });
    for (let i = 1; i <= 2; i++) {
      await a.onReport?.({
        trial: trialSnap("r_00000", dir, "running", i),
        result: report(i, { loss: i }),
        decision: { kind: "continue" },
      });
    }
    await a.onExperimentEnd?.({ trials: [], interrupted: true });

    // A new driver process goes on from the trial's checkpoint at iteration 1: step 2 is redone.
    const b = tensorboardLogger({ now: clock() });
    await b.onExperimentStart?.(start(true));
    await b.onTrialStart?.({ trial: trialSnap("r_00000", dir, "running", 1), resumed: true });
    for (let i = 2; i <= 4; i++) {
      await b.onReport?.({
        trial: trialSnap("r_00000", dir, "running", i),
        result: report(i, { loss: 10 + i, extra: i }),
        decision: { kind: "continue" },
      });
    }
    await b.onTrialEnd?.({
      trial: trialSnap("r_00000", dir, "terminated", 4),
      outcome: "completed",
    });
    await b.onExperimentEnd?.({ trials: [], interrupted: false });

    const files = eventFiles(dir);
    equal(files.length, 2);
    const records = files.map((f) => readRecords(Deno.readFileSync(f)).records);
    ok(pluginContent(records[0], SESSION_START_TAG));
    equal(pluginContent(records[1], SESSION_START_TAG), undefined);
    deepEqual(readScalarsOf(files[0]).get("loss"), [[1, 1], [2, 2]]);
    deepEqual(readScalarsOf(files[1]).get("loss"), [[2, 12], [3, 13], [4, 14]]);
    // The second file describes its tags again (metadata is per file).
    const root2 = readRecords(Deno.readFileSync(eventFiles(root)[0])).records;
    const exp = readExperiment(pluginContent(root2, EXPERIMENT_TAG)!);
    deepEqual(exp.metrics, ["loss", "time_total_s", "time_this_iter_s", "extra"]);
    equal(exp.timeCreatedSecs, 1_800_000_000.5);

    const runs = await peerRuns(root);
    // TensorBoard drops the first run's step 2 (SessionLog START at step 2).
    deepEqual(runs["r_00000"].scalars.loss.map((p) => [p[1], p[2]]), [[1, 1], [2, 12], [3, 13], [
      4,
      14,
    ]]);
    deepEqual(runs["r_00000"].scalars.extra.map((p) => p[1]), [2, 3, 4]);
    equal(runs["r_00000"].dataClass.extra, 1);
    equal(
      runs["r_00000"].hparams["_hparams_/session_end_info"].sessionEndInfo!.status,
      "STATUS_SUCCESS",
    );
    deepEqual(runs["r_00000"].hparams[SESSION_START_TAG].sessionStartInfo!.hparams, {
      lr: 0.1,
      layers: "[8,8]",
      "opt/name": "sgd",
    });
  });
});

Deno.test("declared metrics put the experiment summary on disk at experiment start", async () => {
  await withTempDir(async (root) => {
    const logger = tensorboardLogger({ metrics: ["acc", "loss"], logdir: `${root}/tb` });
    await logger.onExperimentStart?.({
      name: "declared",
      dir: root,
      space: { lr: uniform(0, 1), act: choice(["a", 1]) },
      metric: "loss",
      mode: "min",
      searcher: "random",
      scheduler: "fifo",
      resumed: false,
    });
    const records = readRecords(Deno.readFileSync(eventFiles(`${root}/tb`)[0])).records;
    deepEqual(readExperiment(pluginContent(records, EXPERIMENT_TAG)!).metrics, ["loss", "acc"]);
    // With `logdir`, trial runs go to <logdir>/<trial id>.
    await logger.onTrialStart?.({ trial: trialSnap("d_00000", `${root}/d_00000`), resumed: false });
    await logger.onReport?.({
      trial: trialSnap("d_00000", `${root}/d_00000`),
      result: report(1, { loss: 1, acc: 0.5 }),
      decision: { kind: "continue" },
    });
    await logger.onExperimentEnd?.({ trials: [], interrupted: false });
    equal(eventFiles(`${root}/tb/d_00000`).length, 1);
    deepEqual([...Deno.readDirSync(`${root}`)].map((e) => e.name).sort(), ["tb"]);
    const again = readRecords(Deno.readFileSync(eventFiles(`${root}/tb`)[0])).records;
    deepEqual(readExperiment(pluginContent(again, EXPERIMENT_TAG)!).metrics, ["loss", "acc"]);
  });
});

Deno.test("reports write only numbers: excluded keys, strings, booleans, arrays and, on request, non-finite values are left out", async () => {
  await withTempDir(async (root) => {
    const dir = `${root}/n_00000`;
    const logger = tensorboardLogger({
      nonFinite: "skip",
      exclude: ["training_iteration", "timestamp", "time_total_s", "a/skip"],
    });
    const metrics = {
      loss: NaN,
      acc: 0.5,
      inf: Infinity,
      s: "x",
      b: true,
      arr: [1, 2],
      n: null,
      a: { keep: 1, skip: 2, deeper: { x: 3 } },
    };
    await logger.onReport?.({
      trial: trialSnap("n_00000", dir),
      result: report(7, metrics),
      decision: { kind: "continue" },
    });
    await logger.onTrialEnd?.({ trial: trialSnap("n_00000", dir, "error"), outcome: "error" });
    const scalars = readScalarsOf(eventFiles(dir)[0]);
    deepEqual(Object.fromEntries(scalars), {
      acc: [[7, 0.5]],
      "a/keep": [[7, 1]],
      "a/deeper/x": [[7, 3]],
      time_this_iter_s: [[7, 1]],
    });
    // A report before any TrialStart still opens the run with its session start.
    const records = readRecords(Deno.readFileSync(eventFiles(dir)[0])).records;
    ok(pluginContent(records, SESSION_START_TAG));
  });
});

Deno.test("tensorboardLogger rejects bad options with messages naming the option", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ logDir: "x" }, /unknown option "logDir" \(did you mean "logdir"\?\)/],
    [{ logdir: "" }, /option "logdir" must be a non-empty path, got ""/],
    [{ metrics: "loss" }, /option "metrics" must be an array of non-empty strings, got "loss"/],
    [{ exclude: [1] }, /option "exclude" must be an array of non-empty strings, got \[1\]/],
    [
      { stoppedStatus: "stopped" },
      /option "stoppedStatus" must be one of "success", "failure", "unknown", got "stopped"/,
    ],
    [{ nonFinite: "drop" }, /option "nonFinite" must be one of "write", "skip", got "drop"/],
    [{ now: 5 }, /option "now" must be a function/],
  ];
  for (const [options, message] of bad) {
    throws(() => tensorboardLogger(options as never), { name: "TypeError", message });
  }
});

Deno.test("the plugin table builds the logger by the name tensorboard", async () => {
  const factory = must(await findPluginFactory("callback", "tensorboard"), "a callback name");
  equal((factory({ stoppedStatus: "failure" }) as Callback).name, "tensorboard");
  throws(() => factory({ bogus: 1 }), /unknown option "bogus"/);
});

Deno.test("a step that is not a non-negative integer is refused", async () => {
  await withTempDir((dir) => {
    const w = EventFileWriter.create(dir);
    try {
      throws(() => w.scalars(-1, 0, ["x"], [1]), {
        name: "RangeError",
        message: "A step must be a non-negative safe integer, got -1",
      });
      throws(() => w.scalars(1.5, 0, ["x"], [1]), /got 1.5/);
    } finally {
      w.close();
    }
  });
});
