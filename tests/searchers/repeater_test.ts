import assert from "#assert";
import { uniform } from "../../core/space.ts";
import type { Config } from "../../core/trial.ts";
import {
  randomSearcher,
  repeater,
  tpeSearcher,
  TRIAL_INDEX_KEY,
} from "../../plugins/searchers/mod.ts";
import { contextOf, drive, resultOf, searcherContract } from "../contract/searcher.ts";

searcherContract("repeater(random, 2)", () => repeater(randomSearcher(), 2), {
  extraKeys: [TRIAL_INDEX_KEY],
});
searcherContract(
  "repeater(tpe, 2, setIndex false)",
  () => repeater(tpeSearcher(), 2, { setIndex: false }),
);

type TpeState = { obs: [unknown, number | null, number, boolean][] };
const innerObs = (
  s: { snapshot?: () => unknown },
) => ((s.snapshot?.() as { inner: TpeState }).inner.obs);

Deno.test("repeater runs each config repeat times with a trial index", () => {
  const s = repeater(randomSearcher(), 3);
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 6));
  const { configs, done } = drive(s, 20);
  assert.ok(done);
  assert.equal(configs.length, 6);
  assert.deepEqual(configs.map((c) => c[TRIAL_INDEX_KEY]), [0, 1, 2, 0, 1, 2]);
  assert.equal(configs[0].x, configs[2].x);
  assert.notEqual(configs[0].x, configs[3].x);
});

Deno.test("repeater tells the searcher the mean once every repetition finished", () => {
  const s = repeater(tpeSearcher(), 3);
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 30));
  for (const id of ["a", "b", "c"]) s.suggest(id);
  s.onComplete?.("a", resultOf("a", "loss", 1));
  s.onComplete?.("c", resultOf("c", "loss", 4));
  assert.equal(innerObs(s).length, 0);
  s.onComplete?.("b", resultOf("b", "loss", 7));
  assert.equal(innerObs(s).length, 1);
  assert.equal(innerObs(s)[0][1], 4);
});

Deno.test("repeater leaves failed repetitions out of the mean and reports a fully failed group as failed", () => {
  const s = repeater(tpeSearcher(), 2);
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 30));
  for (const id of ["a", "b", "c", "d"]) s.suggest(id);
  s.onComplete?.("a", resultOf("a", "loss", 3));
  s.onComplete?.("b", resultOf("b", "loss", 100), { error: true });
  s.onComplete?.("c", undefined, { error: true });
  s.onComplete?.("d", { ...resultOf("d", "other", 1) }); // no metric
  const obs = innerObs(s);
  assert.equal(obs.length, 1);
  assert.equal(obs[0][1], 3);
});

Deno.test("repeater resumes a half-issued group from a snapshot", () => {
  const ctx = contextOf({ x: uniform(0, 1) }, 5, 10);
  const a = repeater(randomSearcher(), 2);
  a.setup?.(ctx);
  const first = a.suggest("a") as Config;
  const b = repeater(randomSearcher(), 2);
  b.setup?.(ctx);
  b.restore?.(JSON.parse(JSON.stringify(a.snapshot?.())));
  const second = b.suggest("b") as Config;
  assert.equal(second.x, first.x);
  assert.equal(second[TRIAL_INDEX_KEY], 1);
});

Deno.test("repeater rejects bad arguments with messages naming them", () => {
  assert.throws(() => repeater(randomSearcher(), 0), {
    name: "RangeError",
    message: /"repeat" must be an integer >= 1, got 0/,
  });
  assert.throws(() => repeater(null as never, 2), {
    name: "TypeError",
    message: /repeater: a searcher must be an object, got null/,
  });
  assert.throws(() => repeater(randomSearcher(), 2, { setIndex: "no" } as never), {
    name: "TypeError",
    message: /"setIndex" must be a boolean, got "no"/,
  });
});
