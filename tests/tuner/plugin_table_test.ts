// The one table of built-in plugins (tuner/plugin_table.ts): it names every built-in of each family,
// loads a module only when its name is asked for, and lets a registration stand in for a name.

import assert from "#assert";
import { registerPlugin, type Scheduler } from "../../core/plugin.ts";
import {
  builtinPluginNames,
  findPluginFactory,
  knownPluginNames,
} from "../../tuner/plugin_table.ts";

Deno.test("the table names exactly the schedulers and searchers their families make", async () => {
  const { SCHEDULER_NAMES } = await import("../../plugins/schedulers/mod.ts");
  const { SEARCHER_NAMES } = await import("../../plugins/searchers/mod.ts");
  assert.deepEqual(builtinPluginNames("scheduler"), [...SCHEDULER_NAMES].sort());
  assert.deepEqual(builtinPluginNames("searcher"), [...SEARCHER_NAMES].sort());
  assert.deepEqual(builtinPluginNames("callback"), ["dashboard", "mlflow", "tensorboard"]);
  for (const role of ["scheduler", "searcher", "stopper", "callback"] as const) {
    for (const name of builtinPluginNames(role)) {
      assert.equal(typeof await findPluginFactory(role, name), "function", `${role} ${name}`);
    }
  }
});

Deno.test("every built-in is made from its name with options, as YAML gives them", async () => {
  const made = async (role: "scheduler" | "searcher", name: string, o = {}) =>
    ((await findPluginFactory(role, name))!(o) as { name: string }).name;
  assert.equal(await made("scheduler", "asha", { maxT: 5 }), "asha");
  assert.equal(await made("scheduler", "hyperband_for_bohb", { maxT: 9 }), "hyperband");
  assert.equal(await made("searcher", "tpe", { nRandomSteps: 3 }), "tpe");
  assert.equal(await made("searcher", "bayes"), "gp");
  assert.equal(await made("searcher", "bohb"), "bohb");
  const stop = (await findPluginFactory("stopper", "trial_plateau"))!({
    metric: "loss",
    mode: "min",
    numResults: 3,
  });
  assert.equal(typeof stop, "function");
  // A wrong option is the factory's error, naming the option.
  await assert.rejects(
    async () => (await findPluginFactory("scheduler", "asha"))!({ maxTT: 5 }),
    /maxTT/,
  );
});

Deno.test("an unknown name is undefined; a registered name comes before the built-in", async () => {
  assert.equal(await findPluginFactory("searcher", "nope"), undefined);
  assert.equal(await findPluginFactory("scheduler", "toString"), undefined);
  const mine: Scheduler = { name: "mine", onReport: () => ({ kind: "continue" }) };
  registerPlugin("scheduler", "table_test_mine", () => mine);
  assert.equal((await findPluginFactory("scheduler", "table_test_mine"))!({}), mine);
  assert.ok(knownPluginNames("scheduler").includes("table_test_mine"));
  assert.ok(knownPluginNames("scheduler").includes("asha"));
});

Deno.test("the YAML loader finds every built-in in a fresh process that imported no family", async () => {
  const yaml = [
    "trainable: ./t.ts",
    "metric: loss",
    "mode: min",
    "space: { x: { type: uniform, lower: 0, upper: 1 } }",
    "scheduler: { name: median_stopping }",
    "searcher: { name: cmaes }",
    "stop: { name: trial_plateau, metric: loss, mode: min, num_results: 3 }",
    "loggers: [{ name: tensorboard }]",
  ].join("\n");
  const script = `
    import { parseExperiment } from ${
    JSON.stringify(new URL("../../tuner/experiment_file.ts", import.meta.url).href)
  };
    const options = await parseExperiment(${JSON.stringify(yaml)}, "/tmp/x.yaml");
    console.log(options.scheduler.name, options.searcher.name, options.callbacks[0].name);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.equal(text.trim(), "median_stopping cmaes tensorboard");
});
