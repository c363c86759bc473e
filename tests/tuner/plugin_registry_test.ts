// Importing a plugin module registers nothing: the built-ins are known through the one table
// (tuner/plugin_table.ts), and `registerPlugin` is for a user's own plugins. This file imports
// every module of the plugin families first, before anything in it registers a name.

import assert from "#assert";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { lookupPlugin, pluginNames, type PluginRole, registerPlugin } from "../../core/plugin.ts";
import {
  builtinPluginNames,
  findPluginFactory,
  knownPluginNames,
} from "../../tuner/plugin_table.ts";

const ROLES: readonly PluginRole[] = ["scheduler", "searcher", "stopper", "callback"];
const plugins = fileURLToPath(new URL("../../plugins/", import.meta.url));

/** Every module under plugins/, but the backends (tfjs loads a native library; they name no
 * plugin). */
async function pluginModules(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) {
      if (relative(plugins, path) !== "backends") out.push(...await pluginModules(path));
    } else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

Deno.test("importing every plugin module registers no name", async () => {
  const modules = await pluginModules(plugins);
  assert.ok(modules.length > 40, `only ${modules.length} modules found`);
  for (const m of modules) await import(pathToFileURL(m).href);
  for (const role of ROLES) {
    assert.deepEqual(pluginNames(role), [], role);
    for (const name of builtinPluginNames(role)) {
      assert.equal(lookupPlugin(role, name), undefined, `${role} ${name}`);
    }
  }
});

Deno.test("a registered name and every built-in name resolve", async () => {
  const mine = (options: Record<string, unknown>) => ({ name: "mine_sched", options });
  registerPlugin("scheduler", "registry_test_mine", mine);
  assert.equal(lookupPlugin("scheduler", "registry_test_mine"), mine);
  assert.deepEqual(pluginNames("scheduler"), ["registry_test_mine"]);
  assert.equal(await findPluginFactory("scheduler", "registry_test_mine"), mine);
  assert.ok(knownPluginNames("scheduler").includes("registry_test_mine"));
  for (const role of ROLES) {
    assert.ok(builtinPluginNames(role).length > 0, role);
    for (const name of builtinPluginNames(role)) {
      assert.ok(knownPluginNames(role).includes(name), `${role} ${name}`);
      assert.equal(typeof await findPluginFactory(role, name), "function", `${role} ${name}`);
    }
  }
});

Deno.test("a saved combined stopper makes its parts again: built-in and registered", async () => {
  const { combinedStopper, stopperFromOptions, trialPlateauStopper, STOPPER_NAMES } = await import(
    "../../plugins/stoppers/mod.ts"
  );
  assert.deepEqual([...STOPPER_NAMES].sort(), builtinPluginNames("stopper"));
  let made = 0;
  const never = Object.defineProperty(() => false, "spec", {
    value: { name: "registry_test_never", options: {} },
  });
  registerPlugin("stopper", "registry_test_never", () => (made++, never));
  const saved = (combinedStopper(
    { training_iteration: 5 },
    trialPlateauStopper({ metric: "loss", std: 0.001 }),
    never,
  ) as unknown as { spec: { options: Record<string, unknown> } }).spec;
  const again = stopperFromOptions("combined", structuredClone(saved.options));
  assert.deepEqual((again as unknown as { spec: unknown }).spec, saved);
  assert.equal(made, 1);
  assert.throws(
    () => stopperFromOptions("combined", { stoppers: [{ name: "nope", options: {} }] }),
    /"nope", which is not a registered stopper; known: combined, experiment_plateau, registry_test_never, trial_plateau/,
  );
});
