// Built-in plugins made in code record their spec (name and options), so Tuner.restore makes them
// again by name, and it loads their family itself: no side-effect import is needed.

import assert from "#assert";
import { Tuner } from "../../tuner/tuner.ts";
import { uniform } from "../../core/space.ts";
import { recordSpec } from "../../core/plugin.ts";
import { ashaScheduler } from "../../plugins/schedulers/asha.ts";
import { tpeSearcher } from "../../plugins/searchers/tpe/mod.ts";
import { tempStorage } from "../_helpers.ts";

async function quadratic(config: { x: number }, session: { report(m: object): Promise<void> }) {
  for (let i = 0; i < 3; i++) await session.report({ loss: (config.x - 1) ** 2 + 1 / (i + 1) });
}

Deno.test("code-built ashaScheduler and tpeSearcher are saved with their options and made again on restore", async () => {
  const storage = await tempStorage();
  await new Tuner({
    trainable: quadratic,
    space: { x: uniform(-2, 2) },
    metric: "loss",
    mode: "min",
    numSamples: 3,
    scheduler: ashaScheduler({ maxT: 3, gracePeriod: 1 }),
    searcher: tpeSearcher({ seed: 3, initialPoints: 2 }),
    storage,
    name: "coded",
    reporter: false,
  }).fit();
  const saved = JSON.parse(await Deno.readTextFile(`${storage}/coded/experiment.json`));
  assert.deepEqual(saved.options.scheduler, { name: "asha", options: { maxT: 3, gracePeriod: 1 } });
  assert.deepEqual(saved.options.searcher, { name: "tpe", options: { seed: 3, initialPoints: 2 } });
  const again = await Tuner.restore(`${storage}/coded`, { trainable: quadratic as never });
  assert.equal(again.options.scheduler?.name, "asha");
  assert.equal(again.options.searcher?.name, "tpe");
  assert.deepEqual((again.options.scheduler as { spec?: unknown }).spec, saved.options.scheduler);
  await Deno.remove(storage, { recursive: true });
});

Deno.test("Tuner.restore loads the built-in families itself (a fresh process that imported none)", async () => {
  const storage = await tempStorage();
  await new Tuner({
    trainable: quadratic,
    space: { x: uniform(-2, 2) },
    metric: "loss",
    mode: "min",
    numSamples: 2,
    scheduler: ashaScheduler({ maxT: 3 }),
    searcher: tpeSearcher({ seed: 1 }),
    storage,
    name: "fresh",
    reporter: false,
  }).fit();
  const script = `
    import { Tuner } from ${JSON.stringify(new URL("../../tuner/tuner.ts", import.meta.url).href)};
    const t = await Tuner.restore(${JSON.stringify(`${storage}/fresh`)}, { trainable: () => {} });
    console.log(t.options.scheduler.name, t.options.searcher.name);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.equal(text.trim(), "asha tpe");
  await Deno.remove(storage, { recursive: true });
});

Deno.test("recordSpec records only plain JSON options", () => {
  const kept = recordSpec("x", { a: [1, { b: "c" }] }, { name: "x" }) as { spec?: unknown };
  assert.deepEqual(kept.spec, { name: "x", options: { a: [1, { b: "c" }] } });
  const fn = recordSpec("x", { explore: () => 1 }, { name: "x" }) as { spec?: unknown };
  assert.equal(fn.spec, undefined);
  const nan = recordSpec("x", { v: NaN }, { name: "x" }) as { spec?: unknown };
  assert.equal(nan.spec, undefined);
});

Deno.test("recordSpec keeps a copy of the options: later changes do not reach it, a __proto__ key stays a key", () => {
  const options = JSON.parse('{"a":[1,{"b":"c"}],"__proto__":{"x":1},"z":-0}');
  const s = recordSpec("x", options, { name: "x" }) as {
    spec?: { options: Record<string, unknown> };
  };
  options.a[1].b = "changed";
  options.a.push(2);
  const kept = s.spec!.options;
  assert.deepEqual(kept.a, [1, { b: "c" }]);
  assert.ok(Object.hasOwn(kept, "__proto__"));
  assert.equal(Object.getPrototypeOf(kept), Object.prototype);
  assert.deepEqual(Object.keys(kept), ["a", "__proto__", "z"]);
  assert.ok(Object.is(kept.z, -0));
});
