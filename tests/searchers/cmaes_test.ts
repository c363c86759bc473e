import assert from "#assert";
import { choice, randint, uniform } from "../../core/space.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import type { Searcher } from "../../core/plugin.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";
import { cmaesSearcher, randomSearcher } from "../../plugins/searchers/mod.ts";
import { eigenSym } from "../../plugins/searchers/cmaes.ts";
import { configProblems, contextOf, drive, searcherContract } from "../contract/searcher.ts";

searcherContract("cmaesSearcher", () => cmaesSearcher());
searcherContract(
  "cmaesSearcher(popsize 4, no restarts)",
  () => cmaesSearcher({ popsize: 4, restarts: "none" }),
  { trials: 40 },
);

Deno.test("eigenSym decomposes a symmetric matrix: C = B·diag(d)·Bᵀ with orthonormal B", () => {
  const n = 4;
  const C = Float64Array.from([4, 1, 0.5, 0, 1, 3, 0.2, 0.1, 0.5, 0.2, 2, 0.3, 0, 0.1, 0.3, 1]);
  const { d, B } = eigenSym(C, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let c = 0, o = 0;
      for (let k = 0; k < n; k++) {
        c += B[i * n + k] * d[k] * B[j * n + k];
        o += B[k * n + i] * B[k * n + j];
      }
      assert.ok(Math.abs(c - C[i * n + j]) < 1e-10, `C[${i}][${j}]`);
      assert.ok(Math.abs(o - (i === j ? 1 : 0)) < 1e-10, `BᵀB[${i}][${j}]`);
    }
  }
});

const sphere = (c: Config) => {
  let s = 0;
  for (let i = 0; i < 5; i++) s += ((c[`x${i}`] as number) - 1.5) ** 2;
  return s;
};
const space5 = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`x${i}`, uniform(-5, 5)]));

function bestOf(s: Searcher, n: number, seed: number, concurrency = 1): number {
  s.setup?.(contextOf(space5, seed, n));
  return Math.min(...drive(s, n, { objective: sphere, concurrency }).configs.map(sphere));
}

Deno.test("cmaesSearcher converges on a 5-D sphere where random search does not (5 seeds)", () => {
  for (let seed = 0; seed < 5; seed++) {
    const cma = bestOf(cmaesSearcher(), 300, seed);
    const rnd = bestOf(randomSearcher(), 300, seed);
    // Measured: 2e-4 to 2e-3 vs 2.2 to 7.5.
    assert.ok(cma < 1e-2 && rnd > 0.5, `seed ${seed}: cma ${cma}, random ${rnd}`);
  }
});

Deno.test("cmaesSearcher keeps converging with 6 trials running at once", () => {
  const cma = bestOf(cmaesSearcher(), 400, 3, 6);
  assert.ok(cma < 0.05, `best ${cma}`);
});

Deno.test("cmaesSearcher restarts with a doubled population once it has converged (IPOP)", () => {
  // An integer-only space: CMA-ES converges onto one point, then must restart.
  const space = { a: randint(0, 5), b: randint(0, 5) };
  const f = (c: Config) => ((c.a as number) - 2) ** 2 + ((c.b as number) - 4) ** 2;
  const s = cmaesSearcher();
  s.setup?.(contextOf(space, 1, 400));
  const { configs } = drive(s, 400, { objective: f });
  for (const c of configs) assert.deepEqual(configProblems(space, c), []);
  assert.ok(configs.some((c) => f(c) === 0));
  const st = (s.snapshot!() as { model: { state: { restarts: number; lambda: number } } }).model
    .state;
  assert.ok(st.restarts >= 1, `restarts ${st.restarts}`);
  assert.equal(st.lambda, 6 * 2 ** st.restarts);
  const none = cmaesSearcher({ restarts: "none" });
  none.setup?.(contextOf(space, 1, 400));
  drive(none, 400, { objective: f });
  assert.equal(
    (none.snapshot!() as { model: { state: { restarts: number } } }).model.state.restarts,
    0,
  );
});

Deno.test("cmaesSearcher proposes choices with a TPE and numbers with CMA-ES", () => {
  const space = { x: uniform(-3, 3), y: uniform(-3, 3), act: choice(["a", "b", "c"]) };
  const f = (c: Config) =>
    ((c.x as number) - 1) ** 2 + ((c.y as number) + 1) ** 2 + (c.act === "c" ? 0 : 2);
  const s = cmaesSearcher();
  s.setup?.(contextOf(space, 5, 150));
  const { configs } = drive(s, 150, { objective: f });
  const late = configs.slice(100);
  const cShare = late.filter((c) => c.act === "c").length / late.length;
  assert.ok(cShare > 0.6, `share of the best option late: ${cShare}`);
  assert.ok(Math.min(...configs.map(f)) < 0.05);
});

Deno.test("cmaesSearcher refuses a snapshot of another space", () => {
  const a = cmaesSearcher();
  a.setup?.(contextOf(space5, 1, 20));
  drive(a, 10, { objective: sphere });
  const state = a.snapshot!() as JsonValue;
  const b = cmaesSearcher();
  b.setup?.(contextOf({ x: uniform(0, 1) }, 1, 20));
  assert.throws(() => b.restore!(state), {
    name: "TypeError",
    message: /the snapshot has 5 numeric parameters but the space has 1/,
  });
});

Deno.test('cmaesSearcher is made by its YAML name "cmaes" and rejects bad options', async () => {
  const s = (await findPluginFactory("searcher", "cmaes"))!({
    popsize: 8,
    sigma0: 0.3,
  }) as Searcher;
  assert.equal(s.name, "cmaes");
  assert.throws(() => cmaesSearcher({ popsize: 1 }), {
    name: "RangeError",
    message: /"popsize" must be >= 2, got 1/,
  });
  assert.throws(() => cmaesSearcher({ sigma0: 0 }), {
    name: "RangeError",
    message: /"sigma0" must be in \(0, 1\], got 0/,
  });
  assert.throws(() => cmaesSearcher({ restarts: "bipop" as "ipop" }), {
    name: "TypeError",
    message: /"restarts" must be "ipop" or "none", got "bipop"/,
  });
  assert.throws(() => cmaesSearcher({ popSize: 3 } as never), {
    name: "TypeError",
    message: /unknown option "popSize".*did you mean "popsize"/,
  });
});
