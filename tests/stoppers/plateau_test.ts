// Ray's plateau stoppers: decision tables from ray/tune/stopper/{trial,experiment}_plateau.py,
// then through the real runner.
import assert from "#assert";
import { type Session, Tuner, uniform } from "../../mod.ts";
import { experimentPlateauStopper, trialPlateauStopper } from "../../plugins/stoppers/mod.ts";
import type { JsonValue, TrialResult } from "../../core/trial.ts";
import { tempStorage } from "../_helpers.ts";

function r(metrics: Record<string, JsonValue>): TrialResult {
  return {
    ...metrics,
    training_iteration: 1,
    time_total_s: 1,
    time_this_iter_s: 1,
    timestamp: 0,
    trial_id: "x",
  };
}

Deno.test("trialPlateauStopper follows Ray's TrialPlateauStopper (decision table)", () => {
  // Each row: options, the metric values one trial reports, the decisions Ray's stopper gives.
  const table: [Parameters<typeof trialPlateauStopper>[0], (number | null)[], boolean[]][] = [
    // Defaults: std 0.01, 4 results, grace 4; np.std([1, 1, 1, 1]) = 0 < 0.01 at the 4th.
    [{ metric: "m" }, [1, 1, 1, 1, 1], [false, false, false, true, true]],
    // A window of the last 4: [5, 1, 1, 1] has std 1.73; [1, 1, 1, 1] at the 5th.
    [{ metric: "m" }, [5, 1, 1, 1, 1], [false, false, false, false, true]],
    // Population std (ddof 0): [1, 1.01] -> 0.005 < 0.01.
    [{ metric: "m", numResults: 2, gracePeriod: 0 }, [1, 1.01], [false, true]],
    // std not strictly below: [0, 0.02] -> 0.01, not < 0.01.
    [{ metric: "m", numResults: 2, gracePeriod: 0 }, [0, 0.02], [false, false]],
    // The grace period counts results: nothing before the 6th.
    [{ metric: "m", numResults: 2, gracePeriod: 6 }, [1, 1, 1, 1, 1, 1], [
      false,
      false,
      false,
      false,
      false,
      true,
    ]],
    // metricThreshold, mode max: the latest value must be >= 0.9 to stop.
    [
      { metric: "m", numResults: 2, gracePeriod: 0, metricThreshold: 0.9, mode: "max" },
      [0.5, 0.5, 0.95, 0.95],
      [false, false, false, true],
    ],
    // mode min: the latest value must be <= 0.1.
    [
      { metric: "m", numResults: 2, gracePeriod: 0, metricThreshold: 0.1, mode: "min" },
      [0.5, 0.5, 0.05, 0.05],
      [false, false, false, true],
    ],
    // A result without the metric breaks the window (Ray: np.std over a None fails, no stop).
    [{ metric: "m", numResults: 2, gracePeriod: 0 }, [1, null, 1, 1], [false, false, false, true]],
  ];
  for (const [options, values, expected] of table) {
    const stop = trialPlateauStopper(options);
    const got = values.map((v) => stop("t", r(v === null ? {} : { m: v })));
    assert.deepStrictEqual(got, expected, `${JSON.stringify(options)} on ${values}`);
    assert.equal(stop.stopAll!(), false);
  }
  // Each trial has its own window.
  const stop = trialPlateauStopper({ metric: "m", numResults: 2, gracePeriod: 0 });
  assert.deepStrictEqual(
    [
      stop("a", r({ m: 1 })),
      stop("b", r({ m: 2 })),
      stop("a", r({ m: 1 })),
      stop("b", r({ m: 3 })),
    ],
    [false, false, true, false],
  );
  // Nested metrics by path.
  const nested = trialPlateauStopper({ metric: "val/loss", numResults: 2, gracePeriod: 0 });
  nested("a", r({ val: { loss: 1 } }));
  assert.equal(nested("a", r({ val: { loss: 1 } })), true);
});

Deno.test("experimentPlateauStopper follows Ray's ExperimentPlateauStopper (decision table)", () => {
  const table: [Parameters<typeof experimentPlateauStopper>[0], number[], boolean[]][] = [
    // top 2, std 0.01, mode min: the two lowest so far; [0.1, 0.105] has std 0.0025.
    [{ metric: "m", top: 2, std: 0.01 }, [0.5, 0.1, 0.105], [false, false, true]],
    // mode max keeps the two highest: [0.5, 0.1] no, [0.5, 0.505] yes.
    [{ metric: "m", top: 2, std: 0.01, mode: "max" }, [0.5, 0.1, 0.505], [false, false, true]],
    // patience 2: the plateau counter is 1 at the 2nd result, 2 at the 3rd: stop there.
    [
      { metric: "m", top: 2, std: 0.01, patience: 2 },
      [0.1, 0.1, 0.9, 0.9],
      [false, false, true, true],
    ],
    // patience 3 on the same values: one result later.
    [
      { metric: "m", top: 2, std: 0.01, patience: 3 },
      [0.1, 0.1, 0.9, 0.9],
      [false, false, false, true],
    ],
    // A better value breaks the plateau and resets the counter.
    [
      { metric: "m", top: 2, std: 0.01, patience: 2 },
      [0.1, 0.1, 0.01, 0.011, 0.0105],
      [false, false, false, false, true],
    ],
  ];
  for (const [options, values, expected] of table) {
    const stop = experimentPlateauStopper(options);
    const got = values.map((v, i) => stop(`t${i}`, r({ m: v })));
    assert.deepStrictEqual(got, expected, `${JSON.stringify(options)} on ${values}`);
    assert.equal(stop.stopAll!(), expected.at(-1));
  }
});

Deno.test("plateau stoppers reject bad options with messages naming them", () => {
  assert.throws(() => trialPlateauStopper({} as never), /"metric" must be the name/);
  assert.throws(() => trialPlateauStopper({ metric: "m", std: 0 }), /"std" must be > 0, got 0/);
  assert.throws(
    () => trialPlateauStopper({ metric: "m", metricThreshold: 1 }),
    /"metricThreshold" needs "mode" "min" or "max"/,
  );
  assert.throws(
    () => trialPlateauStopper({ metric: "m", num_results: 2 } as never),
    /unknown option "num_results"/,
  );
  assert.throws(
    () => experimentPlateauStopper({ metric: "m", top: 1 }),
    /"top" must be > 1, got 1/,
  );
  assert.throws(
    () => experimentPlateauStopper({ metric: "m", patience: -1 }),
    /"patience" must be >= 0, got -1/,
  );
  assert.throws(
    () => experimentPlateauStopper({ metric: "m", mode: "maximize" as never }),
    /"mode" must be "min" or "max", got "maximize"/,
  );
});

type Cfg = { q: number };

Deno.test("experimentPlateauStopper through the runner ends the experiment and starts no new trial", async () => {
  // Every trial converges to the same loss: after a few results the best values plateau.
  const r = await new Tuner({
    trainable: async (c: Cfg, s: Session<Cfg>) => {
      for (let t = 1; t <= 50; t++) await s.report({ loss: 1 + c.q / t ** 2 });
    },
    space: { q: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: 20,
    maxConcurrent: 2,
    seed: 1,
    stop: experimentPlateauStopper({ metric: "loss", top: 4, std: 0.001 }),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const started = r.trials.filter((t) => t.iterations > 0);
  assert.ok(started.length < 20, `${started.length} trials ran`);
  for (const t of started) {
    assert.equal(t.status, "terminated");
    assert.ok(t.iterations < 50, `${t.id} ran ${t.iterations} iterations`);
  }
});

Deno.test("trialPlateauStopper through the runner stops each trial once its metric is flat", async () => {
  const r = await new Tuner({
    trainable: async (c: Cfg, s: Session<Cfg>) => {
      // Flat from iteration 5 on (at q), so the stopper ends it at the 8th result.
      for (let t = 1; t <= 30; t++) await s.report({ acc: t < 5 ? t / 10 : c.q });
    },
    space: { q: uniform(0, 1) },
    metric: "acc",
    mode: "max",
    numSamples: 3,
    maxConcurrent: 2,
    stop: trialPlateauStopper({ metric: "acc", std: 1e-6 }),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  assert.deepStrictEqual(r.trials.map((t) => [t.status, t.iterations]), [
    ["terminated", 8],
    ["terminated", 8],
    ["terminated", 8],
  ]);
});
