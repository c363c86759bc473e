import { deepEqual, equal, throws } from "#assert";
import { Rng } from "../../core/random.ts";

Deno.test("an Rng restored from a snapshot taken between two normals continues the same stream", () => {
  const a = new Rng(11);
  a.normal(); // the second Box–Muller value is now cached
  const state = JSON.parse(JSON.stringify(a.snapshot()));
  equal(state.length, 5);
  const b = new Rng(0);
  b.restore(state);
  const next = (r: Rng) => [r.normal(), r.normal(), r.next(), r.normal()];
  deepEqual(next(b), next(a));
});

Deno.test("an Rng snapshot without a cached normal has the four state words, as before", () => {
  const a = new Rng(3);
  a.next();
  equal(a.snapshot().length, 4);
  a.normal();
  a.normal(); // the cached one is used up
  const s = a.snapshot();
  equal(s.length, 4);
  const b = new Rng(9);
  b.normal(); // a stale cached normal in b must not survive the restore
  b.restore(s);
  deepEqual([b.normal(), b.next()], [a.normal(), a.next()]);
});

Deno.test("Rng.restore refuses a state of the wrong shape", () => {
  throws(() => new Rng(1).restore([1, 2, 3]), /4 numbers \(5 with a cached normal\), got 3/);
  throws(() => new Rng(1).restore([1, 2, 3, NaN]), /finite numbers/);
});
