import assert from "#assert";
import { uniform } from "../../core/space.ts";
import type { Config } from "../../core/trial.ts";
import { concurrencyLimiter, randomSearcher, tpeSearcher } from "../../plugins/searchers/mod.ts";
import { contextOf, drive, resultOf, searcherContract } from "../contract/searcher.ts";

searcherContract("concurrencyLimiter(tpe, 1)", () => concurrencyLimiter(tpeSearcher(), 1));
searcherContract(
  "concurrencyLimiter(random, 2, batch)",
  () => concurrencyLimiter(randomSearcher(), 2, { batch: true }),
);

Deno.test("concurrencyLimiter says wait at the limit and goes on when a trial completes", () => {
  const s = concurrencyLimiter(randomSearcher(), 2);
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 10));
  assert.equal(typeof s.suggest("a"), "object");
  assert.equal(typeof s.suggest("b"), "object");
  assert.equal(s.suggest("c"), "wait");
  s.onComplete?.("unknown", resultOf("unknown", "loss", 1)); // not one of its trials: no effect
  assert.equal(s.suggest("c"), "wait");
  s.onComplete?.("a", resultOf("a", "loss", 1));
  assert.equal(typeof s.suggest("c"), "object");
  assert.equal(s.suggest("d"), "wait");
});

Deno.test("concurrencyLimiter in batch mode tells the searcher the results once the batch is done", () => {
  const s = concurrencyLimiter(tpeSearcher(), 2, { batch: true });
  s.setup?.(contextOf({ x: uniform(0, 1) }, 1, 10));
  const observed = () => ((s.snapshot?.() as { inner: { obs: unknown[] } }).inner.obs.length);
  s.suggest("a");
  s.suggest("b");
  s.onComplete?.("a", resultOf("a", "loss", 1));
  assert.equal(observed(), 0);
  assert.equal(s.suggest("c"), "wait");
  s.onComplete?.("b", resultOf("b", "loss", 2));
  assert.equal(observed(), 2);
  assert.equal(typeof s.suggest("c"), "object");
});

Deno.test("concurrencyLimiter passes done through and resumes from a snapshot", () => {
  const ctx = contextOf({ x: uniform(0, 1) }, 1, 3);
  const a = concurrencyLimiter(randomSearcher(), 2);
  a.setup?.(ctx);
  const first = a.suggest("a") as Config;
  const b = concurrencyLimiter(randomSearcher(), 2);
  b.setup?.(ctx);
  b.restore?.(JSON.parse(JSON.stringify(a.snapshot?.())));
  assert.ok(first);
  assert.deepEqual(b.suggest("b"), a.suggest("b"));
  assert.equal(b.suggest("c"), "wait"); // a and b are live in the restored state too
  b.onComplete?.("a", resultOf("a", "loss", 1));
  assert.equal(typeof b.suggest("c"), "object");
  b.onComplete?.("b", resultOf("b", "loss", 1));
  assert.equal(b.suggest("d"), "done");
  assert.deepEqual(drive(b, 5).done, true);
});

Deno.test("concurrencyLimiter rejects bad arguments with messages naming them", () => {
  assert.throws(() => concurrencyLimiter(randomSearcher(), 0), {
    name: "RangeError",
    message: /"maxConcurrent" must be an integer >= 1, got 0/,
  });
  assert.throws(() => concurrencyLimiter(randomSearcher(), 1.5), {
    name: "RangeError",
    message: /"maxConcurrent" must be an integer >= 1, got 1.5/,
  });
  assert.throws(() => concurrencyLimiter({ name: "x" } as never, 2), {
    name: "TypeError",
    message: /concurrencyLimiter: searcher "x" has no suggest\(\) method/,
  });
  assert.throws(() => concurrencyLimiter(randomSearcher(), 2, { batch: 1 } as never), {
    name: "TypeError",
    message: /"batch" must be a boolean, got 1/,
  });
  assert.throws(() => concurrencyLimiter(randomSearcher(), 2, { bacth: true } as never), {
    name: "TypeError",
    message: /unknown option "bacth".*did you mean "batch"/,
  });
});
