/**
 * The built-in plugins a YAML file or a saved experiment names, and where each one lives: one
 * table of name → import, like Ray Tune's `SEARCH_ALG_IMPORT`. A module is loaded only when its
 * name is needed, so `tunebox run` with `scheduler: { name: asha }` loads ASHA and not the
 * searchers, and `Tuner.restore` makes any built-in again without the caller importing its
 * family first.
 *
 * Names registered with `registerPlugin` (your own plugins) come first, so a registration can
 * stand in for a built-in of the same name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinPluginNames, findPluginFactory } from "./plugin_table.ts";
 *
 * assert.ok(builtinPluginNames("scheduler").includes("asha"));
 * const asha = await findPluginFactory("scheduler", "asha");
 * assert.equal((asha!({ maxT: 10 }) as { name: string }).name, "asha");
 * assert.equal(await findPluginFactory("scheduler", "nope"), undefined);
 * ```
 *
 * @module
 */

import { lookupPlugin, type PluginFactory, pluginNames, type PluginRole } from "../core/plugin.ts";

/** Loads a built-in's module and returns its factory (options with camelCase keys → plugin). */
type Importer = () => Promise<PluginFactory<unknown>>;

/**
 * Imports a built-in's module by a computed specifier (relative to this file): Deno's module
 * graph does not follow it, so a trial process whose trainable imports `mod.ts` (which exports
 * this table) does not read, parse and hash every plugin at start, as a literal `import("...")`
 * would make it do.
 */
function load<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}

const schedulers = () =>
  load<typeof import("../plugins/schedulers/mod.ts")>("../plugins/schedulers/mod.ts");
const searchers = () =>
  load<typeof import("../plugins/searchers/mod.ts")>("../plugins/searchers/mod.ts");
const stoppers = () =>
  load<typeof import("../plugins/stoppers/mod.ts")>("../plugins/stoppers/mod.ts");

function scheduler(name: string): Importer {
  return async () => {
    const { schedulerFromOptions } = await schedulers();
    return (options) => schedulerFromOptions(name, options);
  };
}

function searcher(name: string): Importer {
  return async () => {
    const { searcherFromOptions } = await searchers();
    return (options) => searcherFromOptions(name, options);
  };
}

function stopper(name: string): Importer {
  return async () => {
    const { stopperFromOptions } = await stoppers();
    return (options) => stopperFromOptions(name, options);
  };
}

/** A logger whose YAML entry may still carry its own `name` among the options. */
function withoutName<T>(
  name: string,
  make: (options: Record<string, unknown>) => T,
): PluginFactory<T> {
  return (options) => {
    const { name: given, ...rest } = options;
    return make(given === name ? rest : options);
  };
}

/** Every built-in by role and name: the one list of them. */
const BUILTINS: Readonly<Record<PluginRole, Readonly<Record<string, Importer>>>> = {
  scheduler: {
    fifo: scheduler("fifo"),
    asha: scheduler("asha"),
    hyperband: scheduler("hyperband"),
    hyperband_for_bohb: scheduler("hyperband_for_bohb"),
    median_stopping: scheduler("median_stopping"),
    pbt: scheduler("pbt"),
    pb2: scheduler("pb2"),
    pbt_replay: scheduler("pbt_replay"),
    resource_changing: scheduler("resource_changing"),
    // Ray Tune's names (`tune.create_scheduler`).
    async_hyperband: scheduler("async_hyperband"),
    asynchyperband: scheduler("asynchyperband"),
    median_stopping_rule: scheduler("median_stopping_rule"),
    medianstopping: scheduler("medianstopping"),
    hb_bohb: scheduler("hb_bohb"),
  },
  searcher: {
    random: searcher("random"),
    tpe: searcher("tpe"),
    bayes: searcher("bayes"),
    gp: searcher("gp"),
    cmaes: searcher("cmaes"),
    nsga2: searcher("nsga2"),
    bohb: searcher("bohb"),
  },
  stopper: {
    trial_plateau: stopper("trial_plateau"),
    experiment_plateau: stopper("experiment_plateau"),
    combined: stopper("combined"),
  },
  callback: {
    tensorboard: async () => {
      const { tensorboardLogger } = await load<
        typeof import("../plugins/loggers/tensorboard/mod.ts")
      >(
        "../plugins/loggers/tensorboard/mod.ts",
      );
      return (o) => tensorboardLogger(o as never);
    },
    mlflow: async () => {
      const { mlflowLogger } = await load<typeof import("../plugins/loggers/mlflow/mod.ts")>(
        "../plugins/loggers/mlflow/mod.ts",
      );
      return withoutName("mlflow", (o) => mlflowLogger(o as never));
    },
    dashboard: async () => {
      const { dashboardCallback } = await load<typeof import("../plugins/reporters/dashboard.ts")>(
        "../plugins/reporters/dashboard.ts",
      );
      return withoutName("dashboard", (o) => dashboardCallback(o as never));
    },
  },
};

/**
 * The names of the built-in plugins of a role, sorted.
 *
 * @param role The role.
 * @returns The names a YAML file can give as `name:` for that role.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinPluginNames } from "./plugin_table.ts";
 * assert.deepEqual(builtinPluginNames("stopper"), ["combined", "experiment_plateau", "trial_plateau"]);
 * ```
 */
export function builtinPluginNames(role: PluginRole): string[] {
  return Object.keys(BUILTINS[role]).sort();
}

/**
 * Every name a YAML file can use for a role: the built-ins and the names registered with
 * `registerPlugin`, sorted and without repeats.
 *
 * @param role The role.
 * @returns The known names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registerPlugin } from "../core/plugin.ts";
 * import { knownPluginNames } from "./plugin_table.ts";
 * registerPlugin("searcher", "my_grid", () => ({ name: "my_grid", suggest: () => null }));
 * assert.ok(knownPluginNames("searcher").includes("my_grid"));
 * assert.ok(knownPluginNames("searcher").includes("tpe"));
 * ```
 */
export function knownPluginNames(role: PluginRole): string[] {
  return [...new Set([...builtinPluginNames(role), ...pluginNames(role)])].sort();
}

/**
 * The factory of the plugin called `name`: a registered one first, else the built-in, whose
 * module is imported now. Undefined when neither knows the name.
 *
 * @param role The role.
 * @param name The plugin's name (`"asha"`, `"tpe"`, `"tensorboard"`).
 * @returns The factory, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findPluginFactory } from "./plugin_table.ts";
 * const tpe = await findPluginFactory("searcher", "tpe");
 * assert.equal((tpe!({ initialPoints: 3 }) as { name: string }).name, "tpe");
 * ```
 */
export async function findPluginFactory(
  role: PluginRole,
  name: string,
): Promise<PluginFactory<unknown> | undefined> {
  const registered = lookupPlugin(role, name);
  if (registered) return registered;
  const load = Object.hasOwn(BUILTINS[role], name) ? BUILTINS[role][name] : undefined;
  return load ? await load() : undefined;
}
