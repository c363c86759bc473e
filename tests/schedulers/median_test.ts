import assert from "#assert";
import { schedulerContract, type SimTrainable, simulate } from "../contract/scheduler.ts";
import { medianStoppingScheduler } from "../../plugins/schedulers/mod.ts";
import { Rng } from "../../core/random.ts";
import type { Config } from "../../core/trial.ts";
import type { Scheduler } from "../../core/plugin.ts";
import { result, trial } from "./_util.ts";

schedulerContract("median_stopping", () => medianStoppingScheduler());
schedulerContract(
  "median_stopping soft",
  () =>
    medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 3, hardStop: false }),
);

/** Feeds whole curves (values at t = 1, 2, ...) of finished peers. */
function peers(s: Scheduler, curves: Record<string, (number | null)[]>, metric = "acc"): void {
  for (const [id, values] of Object.entries(curves)) {
    s.onTrialAdd!(trial(id));
    values.forEach((v, i) =>
      s.onReport(trial(id, { iteration: i + 1 }), result(id, i + 1, { [metric]: v }))
    );
    s.onComplete!(trial(id, { status: "terminated", iteration: values.length }));
  }
}

Deno.test("medianStoppingScheduler stops a trial whose best is below the median of running averages", () => {
  const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  peers(s, { A: [1, 2, 3, 4, 5], B: [2, 2, 2, 2, 2], C: [3, 3, 3, 3, 3] });
  s.onTrialAdd!(trial("D"));
  // Hand-computed running means at t = 1..4: A 1, 1.5, 2, 2.5; B 2; C 3 -> medians 2, 2, 2, 2.5.
  // D's best is 2.5, which is not strictly worse: it continues. At t = 5, A's mean is 3 and the
  // median 3 > 2.5: stop.
  const d = [2.5, 1, 1, 1, 1].map((v, i) =>
    s.onReport(trial("D", { iteration: i + 1 }), result("D", i + 1, { acc: v }))
  );
  assert.deepStrictEqual(d.slice(0, 4).map((x) => x.kind), [
    "continue",
    "continue",
    "continue",
    "continue",
  ]);
  assert.deepStrictEqual(d[4], {
    kind: "stop",
    reason: "median stopping: best acc 2.5 is worse than the median 3 of 3 other trials' running " +
      "averages at training_iteration 5",
  });
});

Deno.test("medianStoppingScheduler compares minimised metrics the other way", () => {
  const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
  s.setup!({ metric: "loss", mode: "min", seed: 0 });
  peers(s, { A: [-1, -2, -3, -4, -5], B: [-2, -2, -2, -2, -2], C: [-3, -3, -3, -3, -3] }, "loss");
  const d = [-2.5, -1, -1, -1, -1].map((v, i) =>
    s.onReport(trial("D", { iteration: i + 1 }), result("D", i + 1, { loss: v }))
  );
  assert.deepStrictEqual(d.map((x) => x.kind), [
    "continue",
    "continue",
    "continue",
    "continue",
    "stop",
  ]);
});

Deno.test("medianStoppingScheduler waits for the grace period and for enough peers", () => {
  const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 3 });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  peers(s, { A: [5, 5, 5, 5], B: [5, 5, 5, 5] });
  const at = (t: number, acc: number) =>
    s.onReport(trial("D", { iteration: t }), result("D", t, { acc }));
  assert.equal(at(1, 0).kind, "continue"); // before the grace period
  assert.equal(at(3, 0).kind, "continue"); // 2 peers < minSamplesRequired 3
  peers(s, { C: [5, 5, 5, 5] });
  assert.equal(at(4, 0).kind, "stop");
  // Peers that never reached t do not count: at t = 5 nobody else is there.
  const late = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
  late.setup!({ metric: "acc", mode: "max", seed: 0 });
  peers(late, { A: [5, 5], B: [5, 5], C: [5, 5] });
  assert.equal(
    late.onReport(trial("D", { iteration: 5 }), result("D", 5, { acc: 0 })).kind,
    "continue",
  );
});

Deno.test("medianStoppingScheduler yields the slot to a waiting trial while it cannot judge", () => {
  const s = medianStoppingScheduler({ gracePeriod: 0, minTimeSliceMs: 2500 });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  s.onTrialAdd!(trial("A"));
  s.onTrialAdd!(trial("B")); // pending
  const at = (sec: number, checkpoint?: string | null) =>
    s.onReport(trial("A", { iteration: sec, checkpoint }), result("A", sec, { acc: 1 }, sec)).kind;
  assert.equal(at(1, null), "continue"); // no checkpoint to resume from: keep going
  assert.equal(at(2), "pause"); // first yield
  assert.equal(s.chooseNext!([trial("A", { status: "paused", iteration: 2 }), trial("B")]), "B");
  assert.equal(at(3), "continue"); // B runs now; nobody waits
  s.onTrialAdd!(trial("C"));
  assert.equal(at(4), "continue"); // only 2 s since the last yield (slice 2.5 s)
  assert.equal(at(5), "pause");
});

Deno.test("medianStoppingScheduler with hardStop false pauses losers and resumes them last, FIFO", () => {
  const s = medianStoppingScheduler({
    timeAttr: "training_iteration",
    gracePeriod: 1,
    hardStop: false,
  });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  peers(s, { A: [5, 5], B: [5, 5], C: [5, 5] });
  assert.equal(s.onReport(trial("D", { iteration: 1 }), result("D", 1, { acc: 0 })).kind, "pause");
  s.onTrialAdd!(trial("E"));
  const runnable = [trial("D", { status: "paused", iteration: 1 }), trial("E")];
  assert.equal(s.chooseNext!(runnable), "E");
  assert.equal(s.chooseNext!([runnable[0]]), "D");
  // Once resumed it runs FIFO: never judged again.
  assert.equal(
    s.onReport(trial("D", { iteration: 2 }), result("D", 2, { acc: 0 })).kind,
    "continue",
  );
});

Deno.test("medianStoppingScheduler: a diverged peer never lowers the bar (decision table)", () => {
  // Each row: peers' curves (null = NaN), the judged trial's curve, and its decisions up to the
  // first stop. Written from Ray's running means and the Vizier rule, with np.nanmedian over the
  // peers.
  const rows: {
    name: string;
    mode: "min" | "max";
    peers: Record<string, (number | null)[]>;
    curve: (number | null)[];
    want: string[];
  }[] = [
    {
      // Valid means 5, 3, 1: median 3 > 2, stop. Counting N as -inf gave median 2: continue.
      name: "a diverged peer is left out of the median",
      mode: "max",
      peers: { A: [5, 5], B: [3, 3], C: [1, 1], N: [null, null] },
      curve: [2, 2],
      want: ["stop"],
    },
    {
      // Two valid peers < minSamplesRequired 3: not judged, however bad.
      name: "a diverged peer is not a sample",
      mode: "max",
      peers: { A: [5, 5], B: [5, 5], N: [null, null] },
      curve: [0, 0],
      want: ["continue", "continue"],
    },
    {
      // N recovered at t = 2, but its window [1, 2] holds a NaN: still left out.
      name: "a NaN inside the window leaves the peer out",
      mode: "max",
      peers: { A: [5, 5], B: [3, 3], C: [1, 1], N: [null, 9] },
      curve: [2, 2],
      want: ["stop"],
    },
    {
      // Minimised: valid means -1, -3, -5 (as scores) are losses 1, 3, 5; median 3 < 4: stop.
      name: "the same for a minimised metric",
      mode: "min",
      peers: { A: [1, 1], B: [3, 3], C: [5, 5], N: [null, null] },
      curve: [4, 4],
      want: ["stop"],
    },
    {
      // Its best (9) beats the median 5, but its current result is NaN: it diverged.
      name: "a trial that diverges is stopped even with a good best",
      mode: "max",
      peers: { A: [5, 5, 5], B: [5, 5, 5], C: [5, 5, 5] },
      curve: [9, null],
      want: ["continue", "stop"],
    },
    {
      // Peers all diverged: nothing to judge against, so it continues.
      name: "no valid peers, no judgement",
      mode: "max",
      peers: { A: [null, null], B: [null, null], C: [null, null] },
      curve: [0, null],
      want: ["continue", "continue"],
    },
  ];
  for (const row of rows) {
    const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
    s.setup!({ metric: "m", mode: row.mode, seed: 0 });
    peers(s, row.peers, "m");
    s.onTrialAdd!(trial("D"));
    const got = [];
    for (const [i, v] of row.curve.entries()) {
      const d = s.onReport(trial("D", { iteration: i + 1 }), result("D", i + 1, { m: v }));
      got.push(d.kind);
      if (d.kind === "stop") break;
    }
    assert.deepStrictEqual(got, row.want, row.name);
  }
});

Deno.test("medianStoppingScheduler names a diverged trial in its stop reason, and survives a snapshot", () => {
  const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
  s.setup!({ metric: "loss", mode: "min", seed: 0 });
  peers(s, { A: [1, 1], B: [2, 2], C: [3, 3], N: [null, null] }, "loss");
  const copy = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 1 });
  copy.setup!({ metric: "loss", mode: "min", seed: 0 });
  copy.restore!(JSON.parse(JSON.stringify(s.snapshot!())));
  for (const x of [s, copy]) {
    assert.deepStrictEqual(
      x.onReport(trial("D", { iteration: 2 }), result("D", 2, { loss: null })),
      {
        kind: "stop",
        reason: "median stopping: loss is not a number (the trial diverged) at " +
          "training_iteration 2, where 3 other trials have running averages",
      },
    );
    // The diverged peer N does not drag the median (2) towards the worst.
    assert.equal(
      x.onReport(trial("E", { iteration: 2 }), result("E", 2, { loss: 2.5 })).kind,
      "stop",
    );
  }
});

/** Noisy curves with a seeded asymptote per trial; they cross early. */
const CURVES: SimTrainable<null> = {
  iterations: 40,
  init: () => null,
  step: (_s, c, iteration, rng) => {
    const t = iteration + 1, q = c.q as number, tau = c.tau as number;
    return {
      state: null,
      metrics: { loss: q + (4 - q) * Math.exp(-t / tau) + rng.normal(0, 0.02) },
    };
  },
};

Deno.test("medianStoppingScheduler saves compute and never stops the best trial on seeded curves", () => {
  for (const seed of [1, 2, 3]) {
    const rng = new Rng(seed);
    const configs = Array.from(
      { length: 16 },
      (): Config => ({ q: rng.uniform(0, 2), tau: rng.uniform(2, 6) }),
    );
    const r = simulate(
      medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 5 }),
      CURVES,
      { configs, concurrency: 4, seed },
    );
    const best = configs.map((c, i) => ({ q: c.q as number, i })).sort((a, b) => a.q - b.q)[0].i;
    assert.equal(r.trials[best].iteration, 40, `seed ${seed}: the best trial was stopped`);
    const stopped = r.trials.filter((t) => t.iteration < 40);
    assert.ok(stopped.length >= 4, `seed ${seed}: only ${stopped.length} stopped`);
    assert.ok(r.iterations < 0.8 * 16 * 40, `seed ${seed}: ${r.iterations} iterations`);
  }
});

Deno.test("medianStoppingScheduler rejects bad options with messages naming them", () => {
  assert.throws(
    () => medianStoppingScheduler({ minTimeSlice: 1 } as never),
    /unknown option "minTimeSlice" \(did you mean "minTimeSliceMs"\?\)/,
  );
  assert.throws(
    () => medianStoppingScheduler({ gracePeriod: -1 }),
    /"gracePeriod" must be >= 0, got -1/,
  );
  assert.throws(
    () => medianStoppingScheduler({ minSamplesRequired: 0 }),
    /"minSamplesRequired" must be >= 1, got 0/,
  );
  assert.throws(
    () => medianStoppingScheduler({ hardStop: 1 } as never),
    /"hardStop" must be true or false/,
  );
});
