import { deepEqual, equal, match, ok as assert, rejects, throws } from "#assert";
import { ResultGrid, Tuner, uniform } from "../../mod.ts";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError } from "../../mod.ts";
import { dominates } from "../../core/pareto.ts";
import { ashaScheduler } from "../../plugins/schedulers/mod.ts";
import { gpSearcher } from "../../plugins/searchers/mod.ts";
import { tempStorage } from "../_helpers.ts";

// Two objectives in conflict: error falls with x, size grows with it.
const tradeoff = async (
  config: { x: number; y: number },
  session: { report(m: Record<string, unknown>): Promise<void> },
) => {
  await session.report({ error: (1 - config.x) ** 2 + config.y, size: 10 * config.x + config.y });
};

Deno.test("a multi-objective experiment records every objective and returns its Pareto front", async () => {
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable: tradeoff,
    space: { x: uniform(0, 1), y: uniform(0, 1) },
    metric: ["error", "size"],
    mode: ["min", "min"],
    numSamples: 30,
    seed: 3,
    storage,
    name: "mo",
    reporter: false,
  }).fit();
  deepEqual(r.metrics, ["error", "size"]);
  deepEqual(r.modes, ["min", "min"]);
  const front = r.paretoFront();
  const all = r.trials.map((t) => [t.metrics!.error as number, t.metrics!.size as number]);
  // Brute force: a trial is on the front when no trial dominates it.
  const expected = r.trials.filter((_, i) => !all.some((q) => dominates(q, all[i])));
  deepEqual(front.map((t) => t.id), expected.map((t) => t.id));
  assert(front.length >= 2 && front.length < 30, `front of ${front.length}`);
  for (const t of front) deepEqual(t.objectives, [t.metrics!.error, t.metrics!.size]);
  // No single best: the message names the objectives and the way out.
  throws(
    () => r.best(),
    /2 objectives \(error: min, size: min\), so there is no single best trial: name one with best\("error"\), or take the trials no other beats in every objective with paretoFront\(\)/,
  );
  // Naming a metric takes its mode from the experiment.
  equal(r.best("size").score, Math.min(...all.map((p) => p[1])));
  // Maximising one objective flips its side of the front.
  const flipped = r.paretoFront({ metrics: ["error", "size"], modes: ["min", "max"] });
  assert(flipped.every((t) => !all.some((q) => q[0] <= t.objectives[0] && q[1] > t.objectives[1])));
  throws(() => r.paretoFront({ metrics: ["acc"] }), /"acc" is not an objective/);
  // The folder keeps the objectives: a loaded grid has the same front.
  const loaded = await ResultGrid.load(`${storage}/mo`);
  deepEqual(loaded.metrics, ["error", "size"]);
  deepEqual(loaded.paretoFront().map((t) => t.id), front.map((t) => t.id));
  const record = JSON.parse(await Deno.readTextFile(`${storage}/mo/experiment.json`));
  deepEqual([record.metric, record.metrics, record.modes], ["error", ["error", "size"], [
    "min",
    "min",
  ]]);
});

Deno.test("a single-objective grid's Pareto front is its best trial", async () => {
  const r = await new Tuner({
    trainable: tradeoff,
    space: { x: uniform(0, 1), y: uniform(0, 1) },
    metric: "error",
    mode: "min",
    numSamples: 6,
    seed: 1,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  deepEqual(r.paretoFront().map((t) => t.id), [r.best().id]);
});

Deno.test("bad metric and mode combinations are refused with what to write", () => {
  const base = {
    trainable: tradeoff,
    space: { x: uniform(0, 1), y: uniform(0, 1) },
  };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ metric: ["a", "b"], mode: "min" }, /"metric" lists 2 metrics, so "mode" must list 2 modes/],
    [{ metric: ["a", "b"], mode: ["min"] }, /"metric" lists 2 metrics but "mode" lists 1 modes/],
    [{ metric: "a", mode: ["min", "max"] }, /"mode" is a list .* but "metric" is one name/],
    [{ metric: ["a", "a"], mode: ["min", "min"] }, /"metric" lists "a" twice/],
    [{ metric: [], mode: [] }, /"metric" is an empty list/],
    [{ metric: ["a", 3], mode: ["min", "min"] }, /"metric" entry 2 must be a metric name, got 3/],
    [
      { metric: ["a", "b"], mode: ["min", "up"] },
      /"mode" entry 2 \(for b\) must be "min" or "max"/,
    ],
    [
      { metric: ["a", "b"], mode: ["min", "min"], scheduler: ashaScheduler() },
      /"scheduler": asha decides by one metric, but "metric" lists 2 \("a", "b"\): use fifoScheduler/,
    ],
    [
      { metric: ["a", "b"], mode: ["min", "min"], searcher: gpSearcher() },
      /"searcher": gp optimises one metric, but "metric" lists 2 .*nsga2Searcher/,
    ],
  ];
  for (const [o, re] of cases) {
    throws(() => new Tuner({ ...base, ...o } as never), re, JSON.stringify(o));
  }
  // One metric in a list is a single-objective experiment.
  new Tuner({ ...base, metric: ["a"], mode: ["max"], scheduler: ashaScheduler() });
});

Deno.test("a single-objective scheduler set up with several metrics says which to use", () => {
  const s = ashaScheduler();
  throws(
    () =>
      s.setup?.({ metric: "a", mode: "min", seed: 0, metrics: ["a", "b"], modes: ["min", "min"] }),
    /ashaScheduler optimises one metric, but the experiment has 2 objectives \("a", "b"\)/,
  );
});

const YAML = `name: exp
trainable: ./train.ts
metric: [error, size]
mode: [min, max]
space:
  x: { type: uniform, min: 0, max: 1 }
`;

Deno.test("YAML takes metric and mode lists, and places a bad one at its line", async () => {
  const o = await parseExperiment(YAML, "/exp/experiment.yaml");
  deepEqual([o.metric, o.mode], [["error", "size"], ["min", "max"]]);
  const err = async (text: string) => {
    let caught: unknown;
    await parseExperiment(text, "/exp/experiment.yaml").catch((e) => (caught = e));
    assert(caught instanceof ConfigError, String(caught));
    return (caught as ConfigError).message;
  };
  equal(
    await err(YAML.replace("[min, max]", "[min, most]")),
    '/exp/experiment.yaml:4:13: "mode" entry 2 must be min or max, got "most"',
  );
  equal(
    await err(YAML.replace("[min, max]", "min")),
    '/exp/experiment.yaml:4:7: "metric" lists 2 metrics, so "mode" must list 2 modes (one per metric, in order), got "min"; e.g. metric: ["val_loss", "latency_ms"], mode: ["min", "min"]',
  );
  match(
    await err(YAML + "scheduler: { name: asha }\n"),
    /^\/exp\/experiment.yaml:7:\d+: "scheduler": asha decides by one metric/,
  );
});

Deno.test("ResultGrid.load of a single-objective experiment keeps best() as it was", async () => {
  const storage = await tempStorage();
  await new Tuner({
    trainable: tradeoff,
    space: { x: uniform(0, 1), y: uniform(0, 1) },
    metric: "size",
    mode: "max",
    numSamples: 3,
    seed: 2,
    storage,
    name: "so",
    reporter: false,
  }).fit();
  const g = await ResultGrid.load(`${storage}/so`);
  deepEqual(g.metrics, ["size"]);
  equal(g.best().score, Math.max(...g.trials.map((t) => t.metrics!.size as number)));
  await rejects(() => ResultGrid.load(`${storage}/nope`));
});
