/**
 * The registry of your own plugins' names for the YAML experiment file
 * (`scheduler: { name: mine }` -> a factory), and the spec a built-in plugin records so that
 * `Tuner.restore` can make it again. Part of the plugin contracts: {@linkcode ./plugin.ts}
 * re-exports everything here.
 *
 * The built-in plugins are not in this registry: importing a plugin module registers nothing.
 * They are named in one table in the layer above (`tuner/plugin_table.ts`, exported as
 * `findPluginFactory` and `knownPluginNames`), which imports a built-in's module only when its
 * name is asked for, and which looks here first, so a registration can stand in for a built-in.
 *
 * @module
 */

import { isPlainJson } from "./_plain_json.ts";

/**
 * The roles a plugin can play, for the YAML registry. A `"stopper"` is a stop function for the
 * experiment's `stop` (see `Stopper`), not an object.
 */
export type PluginRole = "searcher" | "scheduler" | "callback" | "stopper";

/** The factory type a registry entry or a plugin module's default export has. */
export type PluginFactory<T> = (options: Record<string, unknown>) => T;

const registry: Record<PluginRole, Map<string, PluginFactory<unknown>>> = {
  searcher: new Map(),
  scheduler: new Map(),
  callback: new Map(),
  stopper: new Map(),
};

/**
 * Registers your own plugin factory under a name for YAML files (`scheduler: { name: mine }`)
 * and for `Tuner.restore`. YAML options arrive with snake_case keys converted to camelCase. A
 * registered name comes before a built-in of the same name.
 *
 * @example
 * ```ts
 * import { registerPlugin } from "./plugin.ts";
 * registerPlugin("scheduler", "my_fifo", () => ({ name: "my_fifo", onReport: () => ({ kind: "continue" }) }));
 * ```
 */
export function registerPlugin<T>(role: PluginRole, name: string, factory: PluginFactory<T>): void {
  registry[role].set(name, factory as PluginFactory<unknown>);
}

/**
 * Records how a built-in plugin was made — its registered name and its options — as a hidden
 * `spec` property, so that `Tuner.restore` can make it again by name, whether it was built from
 * YAML or in code. Options that are not plain JSON (functions, domains) are not recorded: such a
 * plugin must be given again to `Tuner.restore`.
 *
 * @param name The name the plugin's factory is registered under (`"asha"`, `"tpe"`).
 * @param options The options the factory was given.
 * @param plugin The plugin.
 * @returns `plugin`, with `spec` set when the options are plain JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordSpec } from "./plugin.ts";
 *
 * const s = recordSpec("my_fifo", { patience: 3 }, { name: "my_fifo" });
 * assert.deepEqual((s as { spec?: unknown }).spec, { name: "my_fifo", options: { patience: 3 } });
 * assert.deepEqual(Object.keys(s), ["name"]);
 * ```
 */
export function recordSpec<T extends object>(name: string, options: unknown, plugin: T): T {
  const o = options ?? {};
  if (isPlainJson(o, 0) && typeof o === "object" && !Array.isArray(o)) {
    Object.defineProperty(plugin, "spec", {
      value: { name, options: copyJson(o) },
      enumerable: false,
      configurable: true,
    });
  }
  return plugin;
}

/**
 * A copy of a value {@linkcode isPlainJson} accepted. Not `structuredClone`: its first call in a
 * process costs Deno ~0.6 ms (it sets up the message-port converters), and every experiment made
 * a recorded plugin's spec at start. `Object.fromEntries` defines keys as own data properties, so
 * a `"__proto__"` key stays a key, as with `structuredClone`.
 */
function copyJson(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(copyJson);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyJson(x)]));
}

/**
 * The factory registered with {@linkcode registerPlugin} under a name, or undefined.
 *
 * Migration note: importing a plugin family (`@tunebox/tunebox/schedulers`, `/searchers`,
 * `/stoppers`, the loggers, `/dashboard`) used to register its built-ins here as a side effect,
 * so `lookupPlugin("scheduler", "asha")` found ASHA once its family was imported. Imports have
 * no side effects now, and this finds only your registrations. To find any plugin by name,
 * built-in or registered, use `await findPluginFactory(role, name)` from `@tunebox/tunebox`,
 * which imports a built-in's module when asked; `knownPluginNames(role)` replaces
 * `pluginNames(role)` the same way.
 *
 * @param role The role the name was registered for.
 * @param name The registered name.
 * @returns The registered factory, or undefined (always undefined for a built-in's name that
 *   was not registered).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPlugin, registerPlugin } from "./plugin.ts";
 * registerPlugin("scheduler", "my_fifo", () => ({ name: "my_fifo", onReport: () => ({ kind: "continue" }) }));
 * assert.equal(typeof lookupPlugin("scheduler", "my_fifo"), "function");
 * assert.equal(lookupPlugin("scheduler", "nope"), undefined);
 * ```
 */
export function lookupPlugin(role: PluginRole, name: string): PluginFactory<unknown> | undefined {
  return registry[role].get(name);
}

/**
 * The names registered with {@linkcode registerPlugin} for a role, sorted. The built-ins are not
 * among them (see the migration note of {@linkcode lookupPlugin}): `knownPluginNames(role)` from
 * `@tunebox/tunebox` lists both.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pluginNames, registerPlugin } from "./plugin.ts";
 * registerPlugin("scheduler", "my_fifo", () => ({ name: "my_fifo", onReport: () => ({ kind: "continue" }) }));
 * assert.ok(pluginNames("scheduler").includes("my_fifo"));
 * ```
 */
export function pluginNames(role: PluginRole): string[] {
  return [...registry[role].keys()].sort();
}
