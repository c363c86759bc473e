import assert from "#assert";
import { findPluginFactory } from "../../tuner/plugin_table.ts";
import { choice, grid, loguniform, randint, uniform } from "../../core/space.ts";
import type { Config } from "../../core/trial.ts";
import { randomSearcher } from "../../plugins/searchers/mod.ts";
import { configProblems, contextOf, drive, searcherContract } from "../contract/searcher.ts";

searcherContract("randomSearcher", () => randomSearcher());
searcherContract(
  "randomSearcher(constantGridSearch)",
  () => randomSearcher({ constantGridSearch: true }),
);

Deno.test("randomSearcher expands a grid per sample: grid([1,2]) x randint x 4 samples = 8", () => {
  const s = randomSearcher();
  s.setup?.(contextOf({ a: grid([1, 2]), b: randint(0, 3) }, 1, 4));
  const { configs, done } = drive(s, 50);
  assert.ok(done);
  assert.deepEqual(configs.map((c) => c.a), [1, 2, 1, 2, 1, 2, 1, 2]);
  for (const c of configs) assert.ok([0, 1, 2].includes(c.b as number));
});

Deno.test("randomSearcher cycles the first grid parameter (by path) fastest", () => {
  const s = randomSearcher();
  // Declared b before a: Ray sorts grid parameters by path, so "a" still cycles fastest.
  s.setup?.(contextOf({ b: grid(["x", "y"]), a: grid([1, 2, 3]) }, 1, 1));
  const got = drive(s, 10).configs.map((c) => `${c.a}${c.b}`);
  assert.deepEqual(got, ["1x", "2x", "3x", "1y", "2y", "3y"]);
});

Deno.test("randomSearcher resamples random parameters at every grid point by default", () => {
  const s = randomSearcher();
  s.setup?.(contextOf({ a: grid([1, 2, 3]), x: uniform(0, 1) }, 4, 2));
  const xs = drive(s, 10).configs.map((c) => c.x);
  assert.equal(new Set(xs).size, 6);
});

Deno.test("randomSearcher with constantGridSearch holds random parameters across a sample's grid", () => {
  const s = randomSearcher({ constantGridSearch: true });
  s.setup?.(contextOf({ a: grid([1, 2, 3]), x: uniform(0, 1) }, 4, 2));
  const xs = drive(s, 10).configs.map((c) => c.x as number);
  assert.equal(xs.length, 6);
  assert.equal(new Set(xs.slice(0, 3)).size, 1);
  assert.equal(new Set(xs.slice(3)).size, 1);
  assert.notEqual(xs[0], xs[3]);
});

Deno.test("randomSearcher tries pointsToEvaluate first and completes partial points by sampling", () => {
  const space = {
    lr: loguniform(1e-4, 1e-1),
    opt: choice([{ name: "sgd", momentum: uniform(0, 1) }, { name: "adam", beta: uniform(0, 1) }]),
    epochs: 3,
  };
  const s = randomSearcher({
    pointsToEvaluate: [{ lr: 0.01, opt: { name: "adam", beta: 0.9 } }, { opt: { name: "sgd" } }],
  });
  s.setup?.(contextOf(space, 1, 4));
  const { configs, done } = drive(s, 10);
  assert.ok(done);
  assert.equal(configs.length, 4);
  assert.deepEqual(configs[0], { lr: 0.01, opt: { name: "adam", beta: 0.9 }, epochs: 3 });
  assert.equal((configs[1].opt as Config).name, "sgd");
  assert.equal(typeof (configs[1].opt as Config).momentum, "number");
  for (const c of configs) assert.deepEqual(configProblems(space, c), []);
});

Deno.test("randomSearcher: a preset grid value collapses that grid for its sample", () => {
  const s = randomSearcher({ pointsToEvaluate: [{ a: 2 }] });
  s.setup?.(contextOf({ a: grid([1, 2, 3]), b: grid(["x", "y"]) }, 1, 2));
  const got = drive(s, 20).configs.map((c) => `${c.a}${c.b}`);
  assert.deepEqual(got, ["2x", "2y", "1x", "2x", "3x", "1y", "2y", "3y"]);
});

Deno.test("randomSearcher runs every point even when there are more points than numSamples", () => {
  const s = randomSearcher({ pointsToEvaluate: [{ x: 0.1 }, { x: 0.2 }, { x: 0.3 }] });
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 2));
  const { configs, done } = drive(s, 10);
  assert.ok(done);
  assert.deepEqual(configs.map((c) => c.x), [0.1, 0.2, 0.3]);
});

Deno.test("randomSearcher draws each option of a choice and covers an integer range", () => {
  const s = randomSearcher();
  s.setup?.(contextOf({ c: choice(["a", "b", "c"]), i: randint(0, 5) }, 9, 300));
  const { configs } = drive(s, 300);
  assert.deepEqual(new Set(configs.map((c) => c.c)), new Set(["a", "b", "c"]));
  assert.deepEqual(new Set(configs.map((c) => c.i)), new Set([0, 1, 2, 3, 4]));
});

Deno.test("randomSearcher restores a snapshot taken in the middle of a sample's grid", () => {
  const ctx = contextOf({ a: grid([1, 2, 3]), x: uniform(0, 1) }, 3, 3);
  const a = randomSearcher({ constantGridSearch: true });
  a.setup?.(ctx);
  drive(a, 4);
  const b = randomSearcher({ constantGridSearch: true });
  b.restore?.(JSON.parse(JSON.stringify(a.snapshot?.())));
  b.setup?.(ctx); // restore before setup is kept until setup
  assert.deepEqual(drive(b, 20), drive(a, 20));
});

Deno.test('randomSearcher is made by its YAML name "random"', async () => {
  const f = await findPluginFactory("searcher", "random");
  assert.ok(f);
  const s = f!({ constantGridSearch: true }) as { name: string };
  assert.equal(s.name, "random");
});

Deno.test("randomSearcher rejects bad options with messages naming them", () => {
  assert.throws(() => randomSearcher({ pointToEvaluate: [] } as never), {
    name: "TypeError",
    message: /unknown option "pointToEvaluate".*did you mean "pointsToEvaluate"/,
  });
  assert.throws(() => randomSearcher({ pointsToEvaluate: {} as never }), {
    name: "TypeError",
    message: /"pointsToEvaluate" must be an array of \(partial\) configs, got \{\}/,
  });
  assert.throws(() => randomSearcher({ pointsToEvaluate: [3 as never] }), {
    name: "TypeError",
    message: /"pointsToEvaluate\[0\]" must be an object \(a partial config\), got 3/,
  });
  assert.throws(() => randomSearcher({ constantGridSearch: "yes" as never }), {
    name: "TypeError",
    message: /"constantGridSearch" must be a boolean, got "yes"/,
  });
  assert.throws(() => randomSearcher({ seed: 1.5 }), {
    name: "TypeError",
    message: /"seed" must be an integer, got 1.5/,
  });
  assert.throws(() => randomSearcher(7 as never), {
    name: "TypeError",
    message: /options must be an object, got 7/,
  });
});

Deno.test("randomSearcher rejects points that do not fit the space when it is set up", () => {
  const space = { lr: uniform(0, 1), act: choice(["relu", "tanh"]) };
  const typo = randomSearcher({ pointsToEvaluate: [{ lrr: 0.1 }] });
  assert.throws(() => typo.setup?.(contextOf(space, 1, 1)), {
    name: "TypeError",
    message:
      /"pointsToEvaluate\[0\]": "lrr" is not a parameter of the search space \(did you mean "lr"\?\)/,
  });
  const option = randomSearcher({ pointsToEvaluate: [{ act: "gelu" }] });
  assert.throws(() => option.setup?.(contextOf(space, 1, 1)), {
    name: "TypeError",
    message: /"act" is "gelu", which is none of the options \["relu","tanh"\]/,
  });
  const number = randomSearcher({ pointsToEvaluate: [{ lr: "big" }] });
  assert.throws(() => number.setup?.(contextOf(space, 1, 1)), {
    name: "TypeError",
    message: /"lr" must be a finite number, got "big"/,
  });
});

Deno.test("randomSearcher says when suggest comes before setup", () => {
  assert.throws(() => randomSearcher().suggest("t"), /suggest\(\) was called before setup\(\)/);
});
