import assert from "#assert";
import { schedulerContract, type SimTrainable, simulate } from "../contract/scheduler.ts";
import {
  hyperbandBrackets,
  hyperbandScheduler,
  schedulerFromOptions,
} from "../../plugins/schedulers/mod.ts";
import { Rng } from "../../core/random.ts";
import type { Config } from "../../core/trial.ts";
import { result, trial } from "./_util.ts";

schedulerContract("hyperband", () => hyperbandScheduler({ maxT: 27, reductionFactor: 3 }));
schedulerContract("hyperband eta 2", () => hyperbandScheduler({ maxT: 16, reductionFactor: 2 }));

Deno.test("hyperbandBrackets matches Li et al. and Ray for maxT 81, eta 3", () => {
  const b = hyperbandBrackets();
  assert.deepStrictEqual(b.map((x) => [x.s, x.n, x.r]), [
    [0, 5, 81],
    [1, 8, 27],
    [2, 15, 9],
    [3, 34, 3],
    [4, 81, 1],
  ]);
  assert.deepStrictEqual(b.map((x) => x.milestones), [
    [81],
    [27, 81],
    [9, 27, 81],
    [3, 9, 27, 81],
    [1, 3, 9, 27, 81],
  ]);
  // Survivors keep ceil(n / eta) (Ray); the paper's table floors: 34, 11, 3, 1.
  assert.deepStrictEqual(b.map((x) => x.trials), [
    [5],
    [8, 3],
    [15, 5, 2],
    [34, 12, 4, 2],
    [81, 27, 9, 3, 1],
  ]);
});

Deno.test("hyperbandBrackets for budgets that are not powers of eta", () => {
  // maxT 100: s_max1 = round(log3 100) + 1 = 5; r = int(100 / 3^s); each later milestone is
  // int(min(r * eta, max_t)) (Ray 2.60's successive_halving), so a bracket may end below maxT.
  assert.deepStrictEqual(
    hyperbandBrackets({ maxT: 100 }).map((x) => [x.n, x.r, x.milestones]),
    [
      [5, 100, [100]],
      [8, 33, [33, 99]],
      [15, 11, [11, 33, 99]],
      [34, 3, [3, 9, 27, 81]],
      [81, 1, [1, 3, 9, 27, 81]],
    ],
  );
  // maxT 10: s_max1 = round(2.096) + 1 = 3: (3, 10), (5, 3), (9, 1).
  assert.deepStrictEqual(
    hyperbandBrackets({ maxT: 10 }).map((x) => [x.n, x.r, x.milestones]),
    [[3, 10, [10]], [5, 3, [3, 9]], [9, 1, [1, 3, 9]]],
  );
  // eta 2.5 (not an integer): Ray truncates after each step: 16 -> int(40) -> int(min(100, 100)).
  assert.deepStrictEqual(
    hyperbandBrackets({ maxT: 100, reductionFactor: 2.5 })[2].milestones,
    [16, 40, 100],
  );
});

/** Curves that keep their order: loss = 10 - q (1 - e^(-t/4)), q seeded per trial. */
const RANKED: SimTrainable<null> = {
  iterations: 1000,
  init: () => null,
  step: (_s, config, iteration) => {
    const q = config.q as number, t = iteration + 1;
    return { state: null, metrics: { loss: 10 - q * (1 - Math.exp(-t / 4)) } };
  },
};

Deno.test("hyperbandScheduler keeps the top ceil(n/eta) of each bracket on seeded curves", () => {
  // maxT 9, eta 3: brackets (3, 9), (5, 3 -> 9), (9, 1 -> 3 -> 9); 17 trials fill one band.
  const rng = new Rng(12);
  const q = Array.from({ length: 17 }, () => rng.uniform(0, 5));
  // Trials created up front, or one at a time as slots free up with slow process exits (the
  // runner's way): a bracket is judged only once it is full either way.
  // Ray's way keeps the newest bracket filled with pending trials, so it decides the same here.
  const ways = [{}, { lazy: true }, { lazy: true, slowRelease: true }].flatMap((how) =>
    [true, false].map((waitForFullBrackets) => ({ how, waitForFullBrackets }))
  );
  for (const { how, waitForFullBrackets } of ways) {
    const r = simulate(hyperbandScheduler({ maxT: 9, waitForFullBrackets }), RANKED, {
      configs: q.map((q): Config => ({ q })),
      concurrency: 4,
      seed: 12,
      ...how,
    });
    const top = (ids: number[], k: number) =>
      [...ids].sort((a, b) => q[b] - q[a]).slice(0, k).sort((a, b) => a - b);
    const reached = (m: number) =>
      r.trials.filter((t) => t.iteration >= m).map((t) => t.index).sort((a, b) => a - b);
    const b0 = [0, 1, 2], b1 = [3, 4, 5, 6, 7], b2 = [8, 9, 10, 11, 12, 13, 14, 15, 16];
    const at9 = [...b0, ...top(b1, 2), ...top(b2, 1)].sort((a, b) => a - b);
    assert.deepStrictEqual(reached(9), at9);
    assert.deepStrictEqual(reached(3), [...b0, ...b1, ...top(b2, 3)].sort((a, b) => a - b));
    for (const t of r.trials) {
      assert.ok([1, 3, 9].includes(t.iteration), `${t.id} ended at ${t.iteration}`);
      assert.equal(t.status, "terminated");
    }
    // Hand-computed budget: 3*9 + (5*3 + 2*6) + (9*1 + 3*2 + 1*6) = 75 iterations (FIFO: 153).
    assert.equal(r.iterations, 75);
    assert.equal(r.fallbacks, 0);
  }
});

Deno.test("hyperbandScheduler halves an unfilled bracket by its planned size (Ray) or the trials it has", () => {
  // 12 trials: brackets (3), (5), then 4 of the 9 planned, q rising with the index.
  const q = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const run = (waitForFullBrackets: boolean) =>
    simulate(hyperbandScheduler({ maxT: 9, waitForFullBrackets }), RANKED, {
      configs: q.map((q): Config => ({ q })),
      concurrency: 3,
    }).trials.slice(8).map((t) => t.iteration);
  // Ray: keep ceil(9/3) = 3 of the 4 at rung 1, then ceil(3/3) = 1.
  assert.deepStrictEqual(run(false), [1, 3, 3, 9]);
  // The paper's way, judged with what it has: keep ceil(4/3) = 2, then 1.
  assert.deepStrictEqual(run(true), [1, 1, 3, 9]);
});

Deno.test("hyperbandScheduler: trials that end early, error or come after a halving (decision table)", () => {
  // maxT 9, eta 3: bracket s=0 holds t0..t2 (milestone 9); s=1 plans 5 trials (milestones 3, 9);
  // s=2 plans 9 (1, 3, 9). Only t3..t5 of s=1 exist when they reach milestone 3.
  for (const full of [false, true]) {
    const s = hyperbandScheduler({ maxT: 9, waitForFullBrackets: full });
    s.setup!({ metric: "acc", mode: "max", seed: 0 });
    for (let i = 0; i < 6; i++) s.onTrialAdd!(trial(`t${i}`));
    const at = (id: string, t: number, acc: number) =>
      s.onReport(trial(id, { iteration: t }), result(id, t, { acc })).kind;
    //                                       Ray (default)  paper's way
    assert.equal(at("t3", 3, 0.3), "pause");
    assert.equal(at("t4", 3, 0.9), "pause");
    // Every live trial is at 3: Ray halves now, keeping ceil(5/3) = 2 of 3; the paper's way
    // waits for the two trials the bracket still expects.
    assert.equal(at("t5", 3, 0.1), full ? "pause" : "stop");
    assert.deepStrictEqual(s.takeStops!(), []);
    // t4 errors: Ray's bracket has 1 live trial of 2 and takes the next new trial, which must
    // catch up to milestone 9; the paper's bracket (t6 makes 4 of 5) still waits.
    s.onComplete!(trial("t4", { status: "error", iteration: 3 }));
    s.onTrialAdd!(trial("t6"));
    assert.equal(at("t6", 1, 0.5), "continue");
    assert.equal(at("t6", 3, 0.5), full ? "pause" : "continue");
    s.onTrialAdd!(trial("t7"));
    // t7: the paper's way, the 5th trial of s=1; Ray's, the first of s=2 (milestones 1, 3),
    // where it is the only live trial, so each halving keeps it (ceil(9/3) = 3 places).
    assert.equal(at("t7", 1, 0.2), "continue");
    assert.equal(at("t7", 3, 0.2), full ? "stop" : "continue");
    if (full) {
      // Judged at 3 with ceil(5/3) = 2 kept: t6 (0.5) and t3 (0.3); t5 ended by request.
      assert.deepStrictEqual(s.takeStops!().map((x) => x.trialId), ["t5"]);
    } else {
      assert.equal(at("t6", 9, 0.5), "stop"); // reached maxT
      assert.deepStrictEqual(s.takeStops!(), []);
    }
  }
});

Deno.test("hyperbandScheduler stopLastTrials: false lets the last rung run past maxT (Ray)", () => {
  const s = schedulerFromOptions("hyperband", { maxT: 9, stopLastTrials: false });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  for (let i = 0; i < 8; i++) s.onTrialAdd!(trial(`t${i}`));
  const at = (id: string, t: number, acc: number) =>
    s.onReport(trial(id, { iteration: t }), result(id, t, { acc })).kind;
  // Bracket s=0 has one rung, at 9: its trials run on.
  assert.equal(at("t0", 9, 0.5), "continue");
  assert.equal(at("t0", 30, 0.5), "continue");
  // Bracket s=1 still halves at 3; its survivors run past 9.
  for (const [id, acc] of [["t3", 0.3], ["t4", 0.9], ["t5", 0.1], ["t6", 0.5]] as const) {
    assert.equal(at(id, 3, acc), "pause");
  }
  assert.equal(at("t7", 3, 0.2), "stop");
  assert.deepStrictEqual(s.takeStops!().map((x) => x.trialId).sort(), ["t3", "t5"]);
  assert.equal(at("t4", 9, 1), "continue");
  assert.equal(at("t4", 12, 1), "continue");
  // With the default, the same trial stops at its bracket's last milestone.
  const d = hyperbandScheduler({ maxT: 100 });
  d.setup!({ metric: "acc", mode: "max", seed: 0 });
  for (let i = 0; i < 6; i++) d.onTrialAdd!(trial(`u${i}`)); // u5 is the first of s=1 (33, 99)
  for (let i = 0; i < 8; i++) {
    d.onReport(trial(`u${i}`, { iteration: 33 }), result(`u${i}`, 33, { acc: i === 5 ? 1 : 0 }));
  }
  const last = d.onReport(trial("u5", { iteration: 99 }), result("u5", 99, { acc: 1 }));
  assert.deepStrictEqual(last, {
    kind: "stop",
    reason: "HyperBand: reached the bracket's last milestone (training_iteration 99 >= 99)",
    completed: true,
  });
});

Deno.test("hyperbandScheduler pauses at the milestone and judges when the last trial arrives", () => {
  const s = hyperbandScheduler({ maxT: 9 });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  // The first 3 trials fill bracket s=0; the next 5 are bracket s=1 (milestones 3, 9).
  const ids = Array.from({ length: 8 }, (_, i) => `t${i}`);
  for (const id of ids) s.onTrialAdd!(trial(id));
  const at3 = (i: number, acc: number) =>
    s.onReport(trial(ids[i], { iteration: 3 }), result(ids[i], 3, { acc }));
  assert.equal(
    s.onReport(trial("t3", { iteration: 1 }), result("t3", 1, { acc: 0 })).kind,
    "continue",
  );
  assert.equal(at3(3, 0.3).kind, "pause");
  assert.equal(at3(4, 0.9).kind, "pause");
  assert.equal(at3(5, 0.1).kind, "pause");
  assert.equal(at3(6, 0.5).kind, "pause");
  assert.deepStrictEqual(s.takeStops!(), []);
  // t7 fails before the milestone: the bracket is judged without it, keeping ceil(5/3) = 2.
  s.onComplete!(trial("t7", { status: "error", iteration: 2 }));
  const stops = s.takeStops!();
  assert.deepStrictEqual(stops.map((x) => x.trialId).sort(), ["t3", "t5"]);
  assert.match(
    stops[0].reason,
    /not in the top 2 \(ceil\(5\/3\)\) of the 4 trial\(s\) at training_iteration 3 \(bracket s=1/,
  );
  const paused = ["t3", "t4", "t5", "t6"].map((id) =>
    trial(id, { status: "paused", iteration: 3 })
  );
  const first = s.chooseNext!(paused.filter((p) => p.id === "t4" || p.id === "t6"));
  assert.ok(first === "t4" || first === "t6");
  // The last trial to arrive gets its verdict directly.
  const t = hyperbandScheduler({ maxT: 9 });
  t.setup!({ metric: "acc", mode: "max", seed: 0 });
  for (const id of ids) t.onTrialAdd!(trial(id));
  for (const [i, acc] of [[3, 0.3], [4, 0.9], [5, 0.1], [6, 0.5]]) {
    t.onReport(trial(ids[i], { iteration: 3 }), result(ids[i], 3, { acc }));
  }
  assert.equal(
    t.onReport(trial("t7", { iteration: 3 }), result("t7", 3, { acc: 0.2 })).kind,
    "stop",
  );
  assert.deepStrictEqual(t.takeStops!().map((x) => x.trialId).sort(), ["t3", "t5"]);
  const winner = t.onReport(trial("t4", { iteration: 9 }), result("t4", 9, { acc: 1 }));
  assert.deepStrictEqual(winner, {
    kind: "stop",
    reason: "HyperBand: reached maxT (training_iteration 9 >= 9)",
    completed: true,
  });
});

Deno.test("hyperbandScheduler chooses pending trials of the least complete bracket first", () => {
  const s = hyperbandScheduler({ maxT: 9 });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  for (let i = 0; i < 8; i++) s.onTrialAdd!(trial(`t${i}`));
  // Bracket s=0 (t0..t2) has made progress, bracket s=1 (t3..t7) none: t3 goes first.
  s.onReport(trial("t0", { iteration: 5 }), result("t0", 5, { acc: 0 }));
  const pending = ["t1", "t2", "t3", "t4"].map((id) => trial(id));
  assert.equal(s.chooseNext!(pending), "t3");
});

Deno.test("hyperbandScheduler rejects bad options with messages naming them", () => {
  assert.throws(
    () => hyperbandScheduler({ max_t: 10 } as never),
    /unknown option "max_t" \(did you mean "maxT"\?\)/,
  );
  assert.throws(
    () => hyperbandScheduler({ reductionFactor: 1 }),
    /"reductionFactor" must be > 1, got 1/,
  );
  assert.throws(() => hyperbandScheduler({ maxT: 0 }), /"maxT" must be > 0, got 0/);
  assert.throws(
    () => hyperbandScheduler({ gracePeriod: 1 } as never),
    /unknown option "gracePeriod"/,
  );
});

Deno.test("hyperbandScheduler largestBracketFirst fills the bracket with the most halvings first (Ray's HyperBandForBOHB)", () => {
  const s = hyperbandScheduler({ maxT: 9, largestBracketFirst: true, waitForFullBrackets: true });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  // maxT 9, eta 3: s=2 (9 trials, milestones 1, 3, 9) first, then s=1 (5), then s=0 (3).
  for (let i = 0; i < 18; i++) s.onTrialAdd!(trial(`t${i}`));
  const at = (id: string, t: number) =>
    s.onReport(trial(id, { iteration: t }), result(id, t, { acc: 0.5 })).kind;
  assert.equal(at("t0", 1), "pause"); // s=2: milestone 1
  assert.equal(at("t9", 1), "continue"); // s=1: milestone 3
  assert.equal(at("t9", 3), "pause");
  assert.equal(at("t14", 3), "continue"); // s=0: milestone 9
  assert.equal(at("t14", 9), "stop");
  assert.equal(at("t17", 1), "pause"); // a new band starts at s=2 again
});
