import assert from "#assert";
import { schedulerContract, type SimTrainable, simulate } from "../contract/scheduler.ts";
import {
  pbtReplay,
  pbtScheduler,
  type PbtSchedulerOptions,
  schedulerFromOptions,
} from "../../plugins/schedulers/mod.ts";
import {
  choice,
  grid,
  lograndint,
  loguniform,
  qrandint,
  randint,
  sampleFrom,
  uniform,
} from "../../core/space.ts";
import type { Rng } from "../../core/random.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import { result, trial } from "./_util.ts";

const MUTATIONS = { lr: loguniform(1e-4, 1), width: [16, 32, 64, 128] };
schedulerContract(
  "pbt",
  () => pbtScheduler({ perturbationInterval: 40, hyperparamMutations: MUTATIONS }),
);
schedulerContract(
  "pbt synch",
  () =>
    pbtScheduler({
      timeAttr: "training_iteration",
      perturbationInterval: 4,
      hyperparamMutations: MUTATIONS,
      synch: true,
    }),
);

// ---------------------------------------------------------------- the PBT paper's toy problem

/**
 * Jaderberg et al. 2017, Fig. 2: maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) with gradient
 * steps on the surrogate Q^(theta | h) = 1.2 - (h0 theta0^2 + h1 theta1^2); theta starts at
 * (0.9, 0.9). The checkpoint is theta itself.
 */
const TOY: SimTrainable<number[]> = {
  iterations: 100,
  init: () => [0.9, 0.9],
  step: (theta, config) => {
    const h = [config.h0 as number, config.h1 as number], alpha = 0.02;
    const next = theta.map((x, i) => x - alpha * 2 * h[i] * x);
    return { state: next, metrics: { Q: 1.2 - next[0] ** 2 - next[1] ** 2 } };
  },
};
const TOY_POPULATION: Config[] = [{ h0: 1, h1: 0 }, { h0: 0, h1: 1 }];

function toy(seed: number, quantileFraction: number): number {
  const r = simulate(
    pbtScheduler({
      timeAttr: "training_iteration",
      perturbationInterval: 4,
      hyperparamMutations: { h0: uniform(0, 1), h1: uniform(0, 1) },
      quantileFraction,
    }),
    TOY,
    { configs: TOY_POPULATION, metric: "Q", mode: "max", concurrency: 2, seed },
  );
  assert.equal(r.iterations, 200); // equal compute: 2 workers x 100 steps
  return Math.max(...r.trials.map((t) => t.results.at(-1)!.Q as number));
}

Deno.test("pbtScheduler reaches a higher Q on the PBT paper's toy problem than without exploit/explore", () => {
  const seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const pbt = median(seeds.map((s) => toy(s, 0.5)));
  const plain = median(seeds.map((s) => toy(s, 0))); // the same population, never exploited
  // Without exploit each worker only shrinks one coordinate: Q < 1.2 - 0.81 = 0.39.
  assert.ok(plain < 0.39, `without exploit/explore: Q ${plain}`);
  assert.ok(pbt > 1.1, `PBT: Q ${pbt}`); // measured: median 1.176 over these seeds
});

// ---------------------------------------------------------------- exploit and explore

/** Two trials: A (donor, acc 1) and B (acc 0) -> B exploits A; returns the decision. */
function exploitOnce(
  options: Partial<PbtSchedulerOptions>,
  donor: Config,
  seed: number,
  checkpoint?: string | null,
) {
  const s = pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 1,
    logConfig: false,
    ...options,
  } as PbtSchedulerOptions);
  s.setup!({ metric: "acc", mode: "max", seed });
  s.onTrialAdd!(trial("A", { config: donor }));
  s.onTrialAdd!(trial("B", { config: donor }));
  assert.equal(
    s.onReport(trial("A", { iteration: 1, config: donor, checkpoint }), result("A", 1, { acc: 1 }))
      .kind,
    "pause", // B is waiting: A yields its slot (time-multiplexing)
  );
  return s.onReport(trial("B", { iteration: 1, config: donor }), result("B", 1, { acc: 0 }));
}

Deno.test("pbtScheduler exploit clones a top trial and perturbs its config as Ray does", () => {
  const donor = { lr: 1, n: 10, opt: "b", act: "tanh", nested: { m: 1 }, fixed: "x" };
  const mutations = {
    lr: uniform(0, 10),
    n: randint(1, 100),
    opt: ["a", "b", "c"],
    act: choice(["relu", "tanh", "gelu"]),
    nested: { m: [1, 2, 3] },
  };
  const seen = { lr: new Set<JsonValue>(), n: new Set<JsonValue>(), opt: new Set<JsonValue>() };
  for (let seed = 0; seed < 40; seed++) {
    const d = exploitOnce({ hyperparamMutations: mutations, resampleProbability: 0 }, donor, seed);
    assert.equal(d.kind, "exploit");
    if (d.kind !== "exploit") continue;
    assert.equal(d.from, "A");
    const c = d.config as typeof donor;
    assert.ok([1.2, 0.8].includes(c.lr), `lr ${c.lr}`);
    assert.ok([12, 8].includes(c.n), `n ${c.n}`); // ints stay ints
    assert.ok(["a", "c"].includes(c.opt), `opt ${c.opt}`); // a neighbour
    assert.ok(["relu", "gelu"].includes(c.act), `act ${c.act}`); // choice: like a list
    assert.ok([1, 2].includes(c.nested.m), `m ${c.nested.m}`); // index 0 - 1 clamps to 0
    assert.equal(c.fixed, "x");
    seen.lr.add(c.lr), seen.n.add(c.n), seen.opt.add(c.opt);
  }
  assert.equal(seen.lr.size, 2);
  assert.equal(seen.opt.size, 2);
  // resampleProbability 1: fresh values from the domains.
  for (let seed = 0; seed < 20; seed++) {
    const d = exploitOnce({ hyperparamMutations: mutations, resampleProbability: 1 }, donor, seed);
    const c = (d as unknown as { config: typeof donor }).config;
    assert.ok(c.lr >= 0 && c.lr < 10 && Number.isInteger(c.n) && c.n >= 1 && c.n <= 99);
    assert.ok(["a", "b", "c"].includes(c.opt));
  }
});

Deno.test("pbtScheduler keeps integer hyperparameters integers (decision table, Ray's int(round(x)))", () => {
  //  mutation                     donor  factors      ours          Ray 2.60 (Python int donor)
  const table: [string, unknown, number, number[], number[]][] = [
    ["randint", randint(1, 100), 7, [1.2, 0.8], [8, 6]], // 8.4 -> 8, 5.6 -> 6
    ["lograndint", lograndint(1, 100), 7, [1.2, 0.8], [8, 6]],
    ["qrandint", qrandint(1, 100, 1), 10, [1.25], [12]], // 12.5 -> 12 (half to even)
    ["function, int value", (rng: Rng) => rng.int(1, 9), 7, [1.2, 0.8], [8, 6]],
    ["randint, half to even", randint(1, 100), 5, [0.5], [2]], // 2.5 -> 2
    ["randint, half to even", randint(1, 100), 7, [0.5], [4]], // 3.5 -> 4
    ["list of ints", [1, 2, 4, 8], 2, [1.2], [1, 4]], // neighbours only
    ["uniform stays a float", uniform(0, 100), 7, [1.2, 0.8], [7 * 1.2, 7 * 0.8]],
  ];
  for (const [what, mutation, value, factors, allowed] of table) {
    const seen = new Set<JsonValue>();
    for (let seed = 0; seed < 12; seed++) {
      const d = exploitOnce(
        {
          hyperparamMutations: { n: mutation as never },
          resampleProbability: 0,
          perturbationFactors: factors,
        },
        { n: value },
        seed,
      );
      assert.equal(d.kind, "exploit");
      const n = (d as { config: Config }).config.n as number;
      assert.ok(
        allowed.includes(n),
        `${what}: ${value} x ${factors} gave ${n}, expected ${allowed}`,
      );
      seen.add(n);
    }
    assert.equal(seen.size, allowed.length, what);
  }
});

Deno.test("pbtScheduler resamples a list value that is not in the list, and applies customExplore last", () => {
  const d = exploitOnce(
    {
      hyperparamMutations: { opt: ["a", "b"] },
      resampleProbability: 0,
      customExplore: (c) => ({ ...c, extra: 1 }),
    },
    { opt: "zzz" },
    3,
  );
  assert.equal(d.kind, "exploit");
  const c = (d as { config: Config }).config;
  assert.ok(c.opt === "a" || c.opt === "b");
  assert.equal(c.extra, 1);
  assert.throws(
    () => exploitOnce({ customExplore: () => null as never }, { opt: "a" }, 1),
    /customExplore must return the new config object, got null/,
  );
});

Deno.test("pbtScheduler tells a trainable that never checkpoints to pass `checkpoint` to report", () => {
  assert.throws(
    () => exploitOnce({ hyperparamMutations: MUTATIONS }, { lr: 0.1, width: 16 }, 1, null),
    (e: unknown) => {
      if (!(e instanceof TypeError)) return false;
      assert.match(e.message, /must clone trial "A" at training_iteration 1/);
      assert.match(e.message, /trial "A" has no checkpoint\. Pass one to `report`/);
      assert.match(
        e.message,
        /session\.report\(metrics, \{ checkpoint: \(dir\) => save\(model, dir\) \}\)/,
      );
      return true;
    },
  );
});

Deno.test("pbtScheduler ranks by the quantile arithmetic of Ray (ceil, capped at half)", () => {
  const s = pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 1,
    hyperparamMutations: MUTATIONS,
    logConfig: false,
  });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  const ids = ["a", "b", "c", "d", "e", "f", "g", "h"];
  const config = { lr: 0.1, width: 32 };
  const report = (id: string, acc: number, t: number) =>
    s.onReport(trial(id, { iteration: t, config }), result(id, t, { acc }));
  // 8 trials, quantile 0.25: k = ceil(2) = 2. A first round in rising order: each newcomer is
  // the best so far and continues. In the second round a and b are the bottom 2 and clone g or h.
  ids.forEach((id, i) => assert.equal(report(id, i + 1, 1).kind, "continue", id));
  const second = ids.map((id, i) => report(id, i + 1, 2));
  assert.deepStrictEqual(second.map((d) => d.kind), [
    "exploit",
    "exploit",
    ...Array(6).fill("continue"),
  ]);
  for (const d of second.slice(0, 2)) assert.ok(["g", "h"].includes((d as { from: string }).from));
  // 3 trials, quantile 0.5: ceil(1.5) = 2 > 1.5, capped at floor(1.5) = 1.
  const t3 = pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 1,
    hyperparamMutations: MUTATIONS,
    quantileFraction: 0.5,
    logConfig: false,
  });
  t3.setup!({ metric: "acc", mode: "max", seed: 0 });
  const r3 = (id: string, acc: number, t: number) =>
    t3.onReport(trial(id, { iteration: t, config }), result(id, t, { acc })).kind;
  assert.deepStrictEqual([r3("x", 1, 1), r3("y", 2, 1), r3("z", 3, 1)], [
    "continue",
    "continue",
    "continue",
  ]);
  // Uncapped, y would be in the bottom 2 and clone z.
  assert.deepStrictEqual([r3("x", 1, 2), r3("y", 2, 2), r3("z", 3, 2)], [
    "exploit",
    "continue",
    "continue",
  ]);
});

Deno.test("pbtScheduler waits for the perturbation interval and the burn-in period", () => {
  const s = pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 3,
    burnInPeriod: 5,
    hyperparamMutations: MUTATIONS,
    logConfig: false,
  });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  const config = { lr: 0.1, width: 32 };
  const kinds = (id: string, acc: number) =>
    Array.from(
      { length: 9 },
      (_, i) =>
        s.onReport(trial(id, { iteration: i + 1, config }), result(id, i + 1, { acc })).kind,
    );
  kinds("a", 1);
  // b is worse; first considered at t = 5 (burn-in), then every 3: t = 8.
  assert.deepStrictEqual(kinds("b", 0), [
    "continue",
    "continue",
    "continue",
    "continue",
    "exploit",
    "continue",
    "continue",
    "exploit",
    "continue",
  ]);
});

Deno.test("pbtScheduler synch mode pauses everyone at the barrier, then exploits the paused losers", () => {
  const s = pbtScheduler({
    timeAttr: "training_iteration",
    perturbationInterval: 2,
    hyperparamMutations: { lr: [1, 2, 3, 4] },
    synch: true,
    logConfig: false,
  });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  const acc = { A: 4, B: 3, C: 1, D: 2 } as Record<string, number>;
  for (const id of Object.keys(acc)) s.onTrialAdd!(trial(id, { config: { lr: 2 } }));
  const at = (id: string, t: number) =>
    s.onReport(trial(id, { iteration: t, config: { lr: 2 } }), result(id, t, { acc: acc[id] }));
  for (const id of Object.keys(acc)) assert.equal(at(id, 1).kind, "continue");
  assert.equal(at("A", 2).kind, "pause");
  assert.equal(at("B", 2).kind, "pause");
  assert.equal(at("C", 2).kind, "pause");
  assert.deepStrictEqual(s.takeExploits(), []);
  assert.equal(at("D", 2).kind, "continue"); // the last one releases the barrier
  const ex = s.takeExploits();
  assert.equal(ex.length, 1); // k = ceil(4 * 0.25) = 1: C clones A
  assert.equal(ex[0].trialId, "C");
  assert.equal(ex[0].from, "A");
  assert.ok([1, 2, 3, 4].includes(ex[0].config.lr as number));
  const paused = ["A", "B", "C"].map((id) => trial(id, { status: "paused", iteration: 2 }));
  assert.equal(s.chooseNext!(paused), "A");
  // Next round at t = 4: D arrives last and is now the worst: its own decision is the exploit.
  acc.D = 0;
  assert.equal(at("A", 3).kind, "continue");
  for (const id of ["A", "B", "C"]) assert.equal(at(id, 4).kind, "pause");
  assert.equal(at("D", 3).kind, "continue");
  assert.equal(at("D", 4).kind, "exploit");
});

Deno.test("pbtScheduler writes Ray's policy logs and pbtReplay replays a lineage", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tunebox_pbt_" });
  try {
    const s = pbtScheduler({
      timeAttr: "training_iteration",
      perturbationInterval: 1,
      hyperparamMutations: { lr: [1, 2, 3, 4] },
    });
    s.setup!({ metric: "acc", mode: "max", seed: 0 });
    const config: Record<string, Config> = { A: { lr: 2 }, B: { lr: 3 } };
    const at = (id: string, t: number, acc: number) => {
      const d = s.onReport(
        trial(id, { iteration: t, config: config[id], dir: `${dir}/${id}` }),
        result(id, t, { acc }),
      );
      if (d.kind === "exploit") config[id] = d.config;
      return d;
    };
    s.onTrialAdd!(trial("A", { config: config.A, dir: `${dir}/A` }));
    s.onTrialAdd!(trial("B", { config: config.B, dir: `${dir}/B` }));
    at("A", 1, 1);
    const b = at("B", 1, 0); // B clones A
    assert.equal(b.kind, "exploit");
    const a = at("A", 2, 0.5); // above B's 0 at t = 1: A continues
    assert.equal(a.kind, "continue");
    at("B", 2, 5);
    const a3 = at("A", 3, 0); // A clones B
    assert.equal(a3.kind, "exploit");
    const read = (f: string) =>
      Deno.readTextFileSync(`${dir}/${f}`).trim().split("\n").map((l) => JSON.parse(l));
    const policyB = read("pbt_policy_B.txt");
    assert.deepStrictEqual(policyB, [[
      "B",
      "A",
      1,
      1,
      { lr: 2 },
      (b as { config: Config }).config,
    ]]);
    const policyA = read("pbt_policy_A.txt");
    assert.equal(policyA.length, 2); // B's history first, then A's own exploit
    assert.deepStrictEqual(policyA[0], policyB[0]);
    assert.deepStrictEqual(policyA[1].slice(0, 4), ["A", "B", 3, 2]);
    assert.equal(read("pbt_global.txt").length, 2);

    const replay = pbtReplay(`${dir}/pbt_policy_A.txt`);
    assert.deepStrictEqual(replay.initialConfig, { lr: 2 });
    assert.deepStrictEqual(replay.schedule.map((x) => x.at), [1, 2]);
    replay.onTrialAdd!(trial("R", { config: { lr: 2 } }));
    const kinds = [1, 2, 3].map((t) =>
      replay.onReport(trial("R", { iteration: t, config: {} }), result("R", t, { acc: 0 }))
    );
    assert.deepStrictEqual(kinds[0], {
      kind: "exploit",
      from: "R",
      config: replay.schedule[0].config,
    });
    assert.deepStrictEqual(kinds[1], {
      kind: "exploit",
      from: "R",
      config: replay.schedule[1].config,
    });
    assert.deepStrictEqual(kinds[2], { kind: "continue" });
    assert.throws(
      () => replay.onTrialAdd!(trial("S")),
      /a replay runs one trial.*set numSamples to 1/,
    );
    const other = pbtReplay(`${dir}/pbt_policy_A.txt`);
    assert.throws(
      () => other.onTrialAdd!(trial("R", { config: { lr: 4 } })),
      /use `replay\.initialConfig` as the space/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pbtReplay reads Ray's policy files and follows only the last lineage", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tunebox_pbt_" });
  try {
    const file = `${dir}/pbt_policy_x.txt`;
    Deno.writeTextFileSync(
      file,
      [
        `["2_lr=0.3", "5_lr=0.9", 2, 2, {"lr": 0.9}, {"lr": 0.72}]`, // overwritten history
        `["1_lr=0.1", "0_lr=0.2", 4, 4, {"lr": 0.2}, {"lr": 0.24}]`,
        `["2_lr=0.3", "1_lr=0.1", 12, 12, {"lr": 0.24}, {"lr": 0.288}]`,
        "",
      ].join("\n"),
    );
    const r = pbtReplay(file);
    assert.deepStrictEqual(r.initialConfig, { lr: 0.2 });
    assert.deepStrictEqual(r.schedule, [{ at: 4, config: { lr: 0.24 } }, {
      at: 12,
      config: { lr: 0.288 },
    }]);
    Deno.writeTextFileSync(file, `["a", "b", 1, 1, {}, {}]\nnot json\n`);
    assert.throws(() => pbtReplay(file), /pbt_policy_x\.txt:2 is not JSON/);
    Deno.writeTextFileSync(file, `[1, 2, 3]\n`);
    assert.throws(() => pbtReplay(file), /pbt_policy_x\.txt:1 is not a policy row/);
    assert.throws(
      () => pbtReplay(`${dir}/missing.txt`),
      /cannot read the policy file ".*missing\.txt"/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pbtScheduler requires the metric and timeAttr in every result unless told not to", () => {
  const s = pbtScheduler({ hyperparamMutations: MUTATIONS });
  s.setup!({ metric: "acc", mode: "max", seed: 0 });
  assert.throws(
    () => s.onReport(trial("a", { iteration: 1 }), result("a", 1, { loss: 1 })),
    /trial "a" reported a result without the metric "acc"; it reported loss, training_iteration.*requireAttrs: false/,
  );
  const lax = pbtScheduler({
    hyperparamMutations: MUTATIONS,
    requireAttrs: false,
    timeAttr: "steps",
  });
  lax.setup!({ metric: "acc", mode: "max", seed: 0 });
  assert.equal(
    lax.onReport(trial("a", { iteration: 1 }), result("a", 1, { acc: 1 })).kind,
    "continue",
  );
});

Deno.test("pbtScheduler rejects bad options with messages naming them", () => {
  const cases: [unknown, RegExp][] = [
    [
      { hyperparam_mutations: {} },
      /unknown option "hyperparam_mutations" \(did you mean "hyperparamMutations"\?\)/,
    ],
    [{}, /give "hyperparamMutations" \(what to perturb and how\) or "customExplore"/],
    [
      { hyperparamMutations: MUTATIONS, quantileFraction: 0.6 },
      /"quantileFraction" must be <= 0.5, got 0.6/,
    ],
    [
      { hyperparamMutations: MUTATIONS, perturbationInterval: 0 },
      /"perturbationInterval" must be > 0, got 0/,
    ],
    [
      { hyperparamMutations: MUTATIONS, resampleProbability: 2 },
      /"resampleProbability" must be <= 1, got 2/,
    ],
    [
      { hyperparamMutations: MUTATIONS, perturbationFactors: [] },
      /"perturbationFactors" must be a non-empty list/,
    ],
    [
      { hyperparamMutations: MUTATIONS, perturbationFactors: [1.2, -1] },
      /"perturbationFactors" must all be > 0/,
    ],
    [
      { hyperparamMutations: { lr: grid([1, 2]) } },
      /mutation "lr" is a grid domain, which PBT cannot perturb/,
    ],
    [{ hyperparamMutations: { lr: sampleFrom(() => 1) } }, /mutation "lr" is a sample_from domain/],
    [{ hyperparamMutations: { opt: { lr: [] } } }, /mutation "opt.lr" is an empty list/],
    [
      { hyperparamMutations: { lr: 0.1 } },
      /mutation "lr" must be a list, a domain, a function or an object/,
    ],
    [{ hyperparamMutations: MUTATIONS, customExplore: 1 }, /"customExplore" must be a function/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => pbtScheduler(options as PbtSchedulerOptions), message);
  }
});

Deno.test("schedulerFromOptions builds PBT mutations from the YAML space syntax", () => {
  const s = schedulerFromOptions("pbt", {
    perturbationInterval: 5,
    hyperparamMutations: { lr: { type: "loguniform", min: 1e-4, max: 0.1 }, batch: [32, 64] },
  });
  assert.equal(s.name, "pbt");
  assert.throws(
    () =>
      schedulerFromOptions("pbt", {
        hyperparamMutations: { lr: { type: "logunifrom", min: 1, max: 2 } },
      }),
    (e: unknown) => {
      if (!(e instanceof TypeError)) return false;
      assert.deepStrictEqual((e as unknown as { path: unknown }).path, [
        "hyperparamMutations",
        "lr",
        "type",
      ]);
      assert.match(e.message, /did you mean "loguniform"/);
      return true;
    },
  );
});
