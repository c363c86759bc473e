import { deepEqual, equal, ok as assert, throws } from "#assert";
import { forestImportance } from "../../plugins/reporters/_html_importance.ts";
import { importanceOf, type ReportTrial } from "../../plugins/reporters/_html_data.ts";
import { Rng } from "../../core/random.ts";

function sample(n: number, d: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng.next()));
}

Deno.test("forestImportance ranks first the one parameter that drives the objective", () => {
  const xs = sample(80, 3, 1);
  const rng = new Rng(2);
  // x0 explains nearly everything, x1 a little, x2 nothing.
  const ys = xs.map(([a, b]) => 10 * (a - 0.3) ** 2 + b + 0.01 * rng.normal());
  const shares = forestImportance(xs, ys, { seed: 0 });
  equal(shares.length, 3);
  assert(Math.abs(shares.reduce((s, v) => s + v, 0) - 1) < 1e-9, `shares sum to 1: ${shares}`);
  assert(shares[0] > 0.8, `x0 share ${shares[0]}`);
  assert(shares[1] > shares[2], `x1 (${shares[1]}) above the unused x2 (${shares[2]})`);
  assert(shares[2] < 0.05, `unused x2 share ${shares[2]}`);
});

Deno.test("forestImportance finds a categorical parameter with a non-monotonic effect", () => {
  const rng = new Rng(7);
  const xs = Array.from({ length: 60 }, () => [rng.int(0, 2), rng.next(), rng.next()]);
  const effect = [1, 0, 2];
  const ys = xs.map(([c, u]) => effect[c] + 0.1 * u);
  const shares = forestImportance(xs, ys, { seed: 3 });
  assert(shares[0] > 0.8, `category share ${shares[0]}`);
});

Deno.test("forestImportance is deterministic for a seed", () => {
  const xs = sample(40, 4, 5);
  const ys = xs.map(([a, b, c]) => Math.sin(6 * a) + b * c);
  deepEqual(forestImportance(xs, ys, { seed: 9 }), forestImportance(xs, ys, { seed: 9 }));
});

Deno.test("forestImportance gives zeros when the metric does not vary", () => {
  const xs = sample(20, 2, 1);
  deepEqual(forestImportance(xs, xs.map(() => 1)), [0, 0]);
});

Deno.test("forestImportance rejects rows and targets of different lengths", () => {
  throws(() => forestImportance([[1], [2]], [1]), {
    name: "RangeError",
    message: "forestImportance: 2 rows but 1 targets",
  });
  throws(() => forestImportance([[1], [2, 3]], [1, 2]), {
    name: "RangeError",
    message: "forestImportance: every row must have 1 columns",
  });
});

Deno.test("importanceOf says why it has no shares with fewer than 5 scored trials", () => {
  const trial = (id: string, x: number): ReportTrial => ({
    id,
    status: "terminated",
    failures: 0,
    config: { x },
    params: { x },
    iterations: [1],
    values: [x],
    times: [0],
    best: x,
    bestIteration: 1,
    last: x,
    iteration: 1,
    time: 0,
    link: `${id}/`,
    segments: [],
  });
  const imp = importanceOf([{ key: "x", scale: "linear" }], [trial("a", 1), trial("b", 2)]);
  equal(imp.unavailable, "needs 5 or more trials that reported the metric, has 2");
  deepEqual(imp.shares, []);
  const none = importanceOf([], [trial("a", 1)]);
  equal(none.unavailable, "the space has no tunable parameter");
});
