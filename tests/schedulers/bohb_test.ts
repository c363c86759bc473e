// BOHB: the searcher half (plugins/searchers/bohb.ts) and the YAML names of both halves.
import assert from "#assert";
import { searcherContract } from "../contract/searcher.ts";
import { bohbSearcher, type BohbSearcherOptions } from "../../plugins/searchers/mod.ts";
import type { Scheduler, Searcher } from "../../core/plugin.ts";
import { choice, uniform } from "../../core/space.ts";
import type { Config } from "../../core/trial.ts";
import { result } from "./_util.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";

searcherContract("bohbSearcher", () => bohbSearcher({ minPointsInModel: 2 }), { grids: false });

const SPACE = { x: uniform(0, 1), act: choice(["relu", "tanh"]) };
const CTX = { space: SPACE, metric: "loss", mode: "min" as const, seed: 0, numSamples: -1 };

/**
 * A BOHB searcher that has seen `n` random trials report at each budget: trial i reports at
 * every budget whose `n` exceeds i, with `loss(config)` (as under HyperBand, the best trials go
 * on to larger budgets; here simply the first ones).
 */
function fed(
  options: BohbSearcherOptions,
  budgets: { budget: number; n: number; loss: (c: Config) => number }[],
): Searcher {
  const feeder = bohbSearcher({ seed: 1, randomFraction: 1 });
  feeder.setup!(CTX);
  const n = Math.max(...budgets.map((b) => b.n));
  for (let i = 0; i < n; i++) {
    const id = `t${i}`;
    const c = feeder.suggest(id) as Config;
    for (const b of budgets) {
      if (i < b.n) feeder.onReport!(id, result(id, b.budget, { loss: b.loss(c) }));
    }
  }
  const s = bohbSearcher({ seed: 1, ...options });
  s.setup!(CTX);
  s.restore!(feeder.snapshot!());
  return s;
}

const near = (target: number) => (c: Config) =>
  (c.x as number - target) ** 2 + (c.act === "tanh" ? 0 : 0.5);

function medianDistance(s: Searcher, target: number): { d: number; tanh: number } {
  const xs: number[] = [];
  let tanh = 0;
  for (let i = 0; i < 40; i++) {
    const c = s.suggest(`new${i}`) as Config;
    xs.push(Math.abs(c.x as number - target));
    if (c.act === "tanh") tanh++;
  }
  return { d: xs.sort((a, b) => a - b)[20], tanh };
}

Deno.test("bohbSearcher samples where the good density is, from the largest budget with a model", () => {
  // 30 observations at budget 9 favour x = 0.8 and "tanh": with no random share, suggestions
  // gather there (uniform sampling: median distance about 0.3, half of them tanh).
  const s = fed({ randomFraction: 0 }, [{ budget: 9, n: 30, loss: near(0.8) }]);
  const at9 = medianDistance(s, 0.8);
  assert.ok(at9.d < 0.15, `median |x - 0.8| = ${at9.d}`);
  assert.ok(at9.tanh >= 30, `${at9.tanh} of 40 tanh`);
  // Budget 1 favours 0.2 with many points, budget 9 favours 0.8: the largest budget with a model
  // (more than minPointsInModel + 1 = 4 observations) decides.
  const both = fed({ randomFraction: 0 }, [
    { budget: 1, n: 30, loss: near(0.2) },
    { budget: 9, n: 10, loss: near(0.8) },
  ]);
  const at9of10 = medianDistance(both, 0.8).d;
  assert.ok(at9of10 < 0.2, `median |x - 0.8| = ${at9of10}`);
  // With too few at budget 9 (4), budget 1 decides.
  const few = fed({ randomFraction: 0 }, [
    { budget: 1, n: 30, loss: near(0.2) },
    { budget: 9, n: 4, loss: near(0.8) },
  ]);
  assert.ok(medianDistance(few, 0.2).d < 0.15);
  // randomFraction 1: always random.
  const random = fed({ randomFraction: 1 }, [{ budget: 9, n: 30, loss: near(0.8) }]);
  assert.ok(medianDistance(random, 0.8).d > 0.15);
});

Deno.test("bohb YAML names: scheduler hyperband_for_bohb (Ray's HyperBandForBOHB) and searcher bohb", async () => {
  const scheduler = (await findPluginFactory("scheduler", "hyperband_for_bohb"))!({
    maxT: 27,
  }) as Scheduler;
  assert.equal(scheduler.name, "hyperband");
  const bohb = (await findPluginFactory("searcher", "bohb"))!;
  const searcher = bohb({ topNPercent: 20 }) as Searcher;
  assert.equal(searcher.name, "bohb");
  assert.throws(
    () => bohb({ top_n_percent: 20 }),
    /bohbSearcher: unknown option "top_n_percent"/,
  );
  assert.throws(
    () => bohbSearcher({ topNPercent: 0 }),
    /"topNPercent" must be between 1 and 99, got 0/,
  );
  assert.throws(
    () => bohbSearcher({ randomFraction: "a" as never }),
    /"randomFraction" must be a number, got "a"/,
  );
});
