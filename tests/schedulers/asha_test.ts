import assert from "#assert";
import { schedulerContract, type SimTrainable, simulate } from "../contract/scheduler.ts";
import { ashaMilestones, ashaScheduler } from "../../plugins/schedulers/mod.ts";
import type { Config } from "../../core/trial.ts";
import { result, trial } from "./_util.ts";

schedulerContract("asha", () => ashaScheduler({ maxT: 20, gracePeriod: 1, reductionFactor: 3 }));
schedulerContract(
  "asha brackets",
  () => ashaScheduler({ maxT: 27, reductionFactor: 3, brackets: 3 }),
);
schedulerContract(
  "asha promote",
  () => ashaScheduler({ maxT: 27, gracePeriod: 1, reductionFactor: 3, mode: "promote" }),
);

Deno.test("ashaMilestones matches Ray's rung arithmetic", () => {
  // Ray's defaults (max_t 100, grace 1, rf 4): 1, 4, 16, 64.
  assert.deepStrictEqual(ashaMilestones(), [[1, 4, 16, 64]]);
  assert.deepStrictEqual(ashaMilestones({ maxT: 100, brackets: 3 }), [
    [1, 4, 16, 64],
    [4, 16, 64],
    [16, 64],
  ]);
  assert.deepStrictEqual(ashaMilestones({ maxT: 81, reductionFactor: 3 }), [[1, 3, 9, 27, 81]]);
  assert.deepStrictEqual(ashaMilestones({ maxT: 10, reductionFactor: 2 }), [[1, 2, 4, 8]]);
  assert.deepStrictEqual(ashaMilestones({ maxT: 1000, reductionFactor: 10 }), [[1, 10, 100, 1000]]);
  assert.deepStrictEqual(ashaMilestones({ maxT: 50, gracePeriod: 5, reductionFactor: 3 }), [[
    5,
    15,
    45,
  ]]);
});

const MAX = { metric: "acc", mode: "max" as const, seed: 0 };

Deno.test("ashaScheduler cuts at the (1 - 1/rf) percentile of the trials already at the rung", () => {
  const s = ashaScheduler(); // rf 4: the 75th percentile, linear interpolation
  s.setup!(MAX);
  const at1 = (id: string, acc: number) =>
    s.onReport(trial(id, { iteration: 1 }), result(id, 1, { acc }));
  // Hand-computed: A alone continues; B vs [0.1] -> cutoff 0.1; C vs [0.1, 0.2] -> 0.175;
  // D vs [0.1, 0.15, 0.2] -> 0.175; E vs [0.1, 0.15, 0.2, 0.3] -> 0.225.
  assert.equal(at1("A", 0.1).kind, "continue");
  assert.equal(at1("B", 0.2).kind, "continue");
  const c = at1("C", 0.15);
  assert.equal(c.kind, "stop");
  assert.match(
    (c as { reason: string }).reason,
    /acc 0\.15 is worse than the cutoff 0\.175 .*top 1\/4 of 2 trial\(s\) at training_iteration 1/,
  );
  assert.equal(at1("D", 0.3).kind, "continue");
  const e = at1("E", 0.17);
  assert.equal(e.kind, "stop");
  assert.match((e as { reason: string }).reason, /cutoff 0\.225/);
  // The next rung (4) starts empty: the first trial there continues.
  assert.equal(
    s.onReport(trial("A", { iteration: 4 }), result("A", 4, { acc: 0.01 })).kind,
    "continue",
  );
});

Deno.test("ashaScheduler negates the metric for mode min", () => {
  const s = ashaScheduler({ reductionFactor: 2 });
  s.setup!({ metric: "loss", mode: "min", seed: 0 });
  assert.equal(
    s.onReport(trial("A", { iteration: 1 }), result("A", 1, { loss: 1 })).kind,
    "continue",
  );
  assert.equal(s.onReport(trial("B", { iteration: 1 }), result("B", 1, { loss: 2 })).kind, "stop");
  assert.equal(
    s.onReport(trial("C", { iteration: 1 }), result("C", 1, { loss: 0.5 })).kind,
    "continue",
  );
});

Deno.test("ashaScheduler stops a trial at maxT unless stopLastTrials is false", () => {
  const s = ashaScheduler({ maxT: 10, reductionFactor: 2 });
  s.setup!(MAX);
  const d = s.onReport(trial("A", { iteration: 10 }), result("A", 10, { acc: 1 }));
  assert.deepStrictEqual(d, {
    kind: "stop",
    reason: "ASHA: reached maxT (training_iteration 10 >= 10)",
    completed: true,
  });
  const keep = ashaScheduler({ maxT: 10, reductionFactor: 2, stopLastTrials: false });
  keep.setup!(MAX);
  assert.equal(
    keep.onReport(trial("A", { iteration: 12 }), result("A", 12, { acc: 1 })).kind,
    "continue",
  );
});

Deno.test("ashaScheduler judges only the highest newly reached rung when reports skip milestones", () => {
  const s = ashaScheduler({ maxT: 100, reductionFactor: 2 }); // rungs 1, 2, 4, 8, 16, 32, 64
  s.setup!(MAX);
  s.onReport(trial("A", { iteration: 5 }), result("A", 5, { acc: 0.9 })); // recorded at rung 4 only
  // B at rung 4 is compared with A (0.9); at rung 1 nobody is recorded, so it would pass there.
  assert.equal(
    s.onReport(trial("B", { iteration: 1 }), result("B", 1, { acc: 0.1 })).kind,
    "continue",
  );
  assert.equal(s.onReport(trial("B", { iteration: 4 }), result("B", 4, { acc: 0.5 })).kind, "stop");
});

Deno.test("ashaScheduler: a diverged trial never lowers the bar for the others (decision table)", () => {
  // rf 4, mode max, rung 1. Ray computes the cut-off with np.nanpercentile over the trials
  // already recorded, so a NaN peer is left out; the case is row 1 (before the fix the
  // percentile of {-Infinity, 450} was -Infinity and 400 passed).
  //   peers recorded           new     cut-off                     ours       Ray
  const table: [(number | null)[], number | null, string, string, string][] = [
    [[450, null], 400, "75th pct of [450] = 450", "stop", "stop"],
    [[null], 400, "none: no finite peer", "continue", "continue"],
    [[null, null], 500, "none", "continue", "continue"],
    [[450, 300, null], 420, "300 + .75 * 150 = 412.5", "continue", "continue"],
    [[450, 300, null], 410, "412.5", "stop", "stop"],
    [[], null, "first at the rung", "continue", "continue"],
    // Ours stops a diverged trial once any peer is recorded; Ray's `NaN < cutoff` is false.
    [[450], null, "450", "stop", "continue"],
    [[null], null, "none", "stop", "continue"],
  ];
  for (const [peers, value, why, ours, ray] of table) {
    const s = ashaScheduler();
    s.setup!(MAX);
    peers.forEach((acc, i) =>
      s.onReport(trial(`p${i}`, { iteration: 1 }), result(`p${i}`, 1, { acc }))
    );
    const d = s.onReport(trial("X", { iteration: 1 }), result("X", 1, { acc: value }));
    assert.equal(
      d.kind,
      ours,
      `peers ${JSON.stringify(peers)}, new ${value} (cut-off ${why}; Ray: ${ray})`,
    );
  }
  const s = ashaScheduler();
  s.setup!(MAX);
  s.onReport(trial("A", { iteration: 1 }), result("A", 1, { acc: -5 }));
  const d = s.onReport(trial("C", { iteration: 1 }), result("C", 1, { acc: NaN }));
  assert.deepStrictEqual(d, {
    kind: "stop",
    reason: "ASHA: acc is not a number (the trial diverged) at training_iteration 1, where 1 " +
      "trial(s) are recorded",
  });
  // Results without the metric are not judged at all (as Ray).
  assert.equal(
    s.onReport(trial("D", { iteration: 1 }), result("D", 1, { other: 1 })).kind,
    "continue",
  );
});

Deno.test("ashaScheduler promote mode: diverged trials neither count in the quota nor get promoted", () => {
  // rf 2, rung 1 holds A 0.9, B NaN, C 0.5, D NaN: the quota is floor(2 finite / 2) = 1, so only
  // A is promoted (counting the NaN trials, floor(4/2) = 2 would have promoted C too).
  const s = ashaScheduler({ maxT: 4, reductionFactor: 2, mode: "promote" });
  s.setup!(MAX);
  for (const [id, acc] of [["A", 0.9], ["B", null], ["C", 0.5], ["D", null]] as const) {
    s.onTrialAdd!(trial(id));
    assert.equal(s.onReport(trial(id, { iteration: 1 }), result(id, 1, { acc })).kind, "pause");
  }
  const paused = (ids: string[]) => ids.map((id) => trial(id, { status: "paused", iteration: 1 }));
  assert.equal(s.chooseNext!(paused(["A", "B", "C", "D"])), "A");
  assert.equal(s.chooseNext!(paused(["B", "C", "D"])), undefined);
});

/** Curves whose order never changes: loss = 10 - q (1 - e^(-t/5)) plus tiny seeded noise. */
const RANKED: SimTrainable<null> = {
  iterations: 1000,
  init: () => null,
  step: (_s, config, iteration, rng) => {
    const q = config.q as number, t = iteration + 1;
    return {
      state: null,
      metrics: { loss: 10 - q * (1 - Math.exp(-t / 5)) + rng.normal(0, 1e-4) },
    };
  },
};

const Q = [5, 3, 8, 1, 7, 2, 6, 4];

Deno.test("ashaScheduler stops the right trials on seeded learning curves (hand-computed)", () => {
  // One trial at a time, rf 2 (cutoff = median of the earlier trials at the rung), rungs
  // 1, 2, 4, 8, stop at 16. Worked by hand: T1 (3 < 5), T3, T5, T7 stop at rung 1; T6 (6 < 7 =
  // median of 5, 8, 7) at rung 2; T0, T2, T4 run to maxT.
  const r = simulate(ashaScheduler({ maxT: 16, gracePeriod: 1, reductionFactor: 2 }), RANKED, {
    configs: Q.map((q): Config => ({ q })),
    concurrency: 1,
    seed: 4,
  });
  assert.deepStrictEqual(r.trials.map((t) => t.iteration), [16, 1, 16, 1, 16, 1, 2, 1]);
  assert.equal(r.iterations, 54); // FIFO: 8 * 16 = 128
  for (const t of r.trials) assert.equal(t.status, "terminated");
  assert.match(r.trials[6].reason!, /rung|cutoff/);
  assert.match(r.trials[0].reason!, /reached maxT/);
});

Deno.test("ashaScheduler promote mode pauses at rungs and resumes the top 1/rf (hand-computed)", () => {
  // rf 3, rungs 1 and 3, maxT 9, one trial at a time. Worked by hand from the paper's rule
  // (promote the top floor(n/3) of a rung): T2 and T8 go on at once, T4 is promoted from its
  // pause when T5's result makes the rung hold 6, T8 reaches maxT; when nothing is left, the
  // other paused trials are stopped.
  const q = [5, 3, 8, 1, 7, 2, 6, 4, 9];
  const r = simulate(
    ashaScheduler({ maxT: 9, gracePeriod: 1, reductionFactor: 3, mode: "promote" }),
    RANKED,
    { configs: q.map((q): Config => ({ q })), concurrency: 1, seed: 2 },
  );
  const id = (i: number) => r.trials[i].id;
  assert.deepStrictEqual(r.chosen, [
    id(0),
    id(1),
    id(2),
    id(3),
    id(4),
    id(5),
    id(4),
    id(6),
    id(7),
    id(8),
    undefined,
  ]);
  assert.deepStrictEqual(r.trials.map((t) => t.iteration), [1, 1, 3, 1, 3, 1, 1, 1, 9]);
  assert.equal(r.iterations, 21); // FIFO: 81
  assert.deepStrictEqual(r.stops.map((s) => s.trialId).sort(), [0, 1, 2, 3, 4, 5, 6, 7].map(id));
  assert.match(r.stops[0].reason, /not promoted from the rung/);
  assert.equal(r.fallbacks, 0);
});

Deno.test("ashaScheduler promote mode lets the best line reach maxT when nothing else is left", () => {
  // 3 trials, rf 3: only T2 passes rung 1; alone at rung 3 it would never be promoted by
  // floor(1/3) = 0, so the end rule promotes the best of each rung.
  const r = simulate(
    ashaScheduler({ maxT: 9, gracePeriod: 1, reductionFactor: 3, mode: "promote" }),
    RANKED,
    { configs: [1, 2, 3].map((q): Config => ({ q })), concurrency: 1, seed: 1 },
  );
  const id = (i: number) => r.trials[i].id;
  assert.deepStrictEqual(r.chosen, [id(0), id(1), id(2), id(2), undefined]);
  assert.deepStrictEqual(r.trials.map((t) => t.iteration), [1, 1, 9]);
});

Deno.test("ashaScheduler assigns brackets with probability proportional to e^(rungs)", () => {
  const s = ashaScheduler({ maxT: 100, brackets: 3 }); // 4, 3 and 2 rungs
  s.setup!(MAX);
  const n = 3000;
  for (let i = 0; i < n; i++) s.onTrialAdd!(trial(`t${i}`));
  const state = s.snapshot!() as { trials: [string, number][] };
  const counts = [0, 0, 0];
  for (const [, b] of state.trials) counts[b]++;
  const z = 1 + Math.exp(-1) + Math.exp(-2);
  const expected = [1 / z, Math.exp(-1) / z, Math.exp(-2) / z]; // 0.665, 0.245, 0.090
  counts.forEach((c, i) => assert.ok(Math.abs(c / n - expected[i]) < 0.03, `bracket ${i}: ${c}`));
});

Deno.test("ashaScheduler rejects bad options with messages naming them", () => {
  const cases: [unknown, RegExp][] = [
    [{ max_t: 10 }, /unknown option "max_t" \(did you mean "maxT"\?\)/],
    [{ gracePeriod: 0 }, /"gracePeriod" must be > 0, got 0/],
    [{ maxT: 5, gracePeriod: 10 }, /"gracePeriod" must be <= "maxT" \(5\), got 10/],
    [{ reductionFactor: 1 }, /"reductionFactor" must be > 1, got 1/],
    [{ brackets: 5 }, /"brackets" must be <= 4 .*got 5: .*would have no rung .*Ray accepts it/],
    [{ brackets: 1.5 }, /"brackets" must be an integer, got 1.5/],
    [{ mode: "max" }, /"mode" must be "stop" or "promote", got "max" \(the metric's min\/max mode/],
    [{ maxT: "10" }, /"maxT" must be a finite number, got "10"/],
    [{ timeAttr: "" }, /"timeAttr" must be a non-empty string/],
    [{ stopLastTrials: "yes" }, /"stopLastTrials" must be true or false/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => ashaScheduler(options as never), message);
  }
  assert.throws(() => ashaScheduler({ brackets: 0 }), RangeError);
  assert.throws(() => ashaScheduler({ maxT: 1, bogus: 1 } as never), TypeError);
});

Deno.test("ashaScheduler refuses to restore a snapshot of other options", () => {
  const a = ashaScheduler({ brackets: 2 });
  a.setup!(MAX);
  const b = ashaScheduler({ brackets: 1 });
  b.setup!(MAX);
  assert.throws(
    () => b.restore!(a.snapshot!()),
    /restore with the options the experiment was started with/,
  );
});
