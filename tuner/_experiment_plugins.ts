// Private to the experiment file loader (experiment_file.ts): plugins and stoppers named in the
// file (`name:` or `module:`), made by their factories, with errors at the key they concern.

import { checkPluginShape, type PluginRole, resolveModule } from "../core/plugin.ts";
import type { Stopper } from "../core/runner.ts";
import { SpaceSpecError, suggest } from "../core/space.ts";
import { isOptionError } from "../core/options.ts";
import { findPluginFactory, knownPluginNames } from "./plugin_table.ts";
import { combinedStopper, type StopperPart } from "../plugins/stoppers/mod.ts";
import { camelKeys, type Path, snake } from "./_yaml.ts";

/** A stopper mapping names one (`name:` or `module:`); anything else is a criteria mapping. */
function isStopperSpec(v: unknown): boolean {
  return !!v && typeof v === "object" && !Array.isArray(v) &&
    (typeof (v as Record<string, unknown>).name === "string" ||
      typeof (v as Record<string, unknown>).module === "string");
}

/** `stop:` as criteria, one stopper, or a list of both (Ray's `CombinedStopper`). */
export async function loadStop(
  stop: unknown,
  base: string,
  err: (m: string, p: Path, key?: boolean) => never,
): Promise<unknown> {
  if (isStopperSpec(stop)) return await loadPlugin<Stopper>("stopper", stop, ["stop"], base, err);
  if (!Array.isArray(stop)) return stop; // criteria: the Tuner checks them, naming the key
  if (!stop.length) {
    err(`"stop" is an empty list: give criteria or stoppers, or leave it out`, [
      "stop",
    ]);
  }
  const parts: StopperPart[] = [];
  for (const [i, item] of stop.entries()) {
    if (isStopperSpec(item)) {
      parts.push(await loadPlugin<Stopper>("stopper", item, ["stop", i], base, err));
      continue;
    }
    if (!item || typeof item !== "object" || Array.isArray(item)) {
      err(
        `"stop[${i}]" must be criteria like { training_iteration: 10 } or a stopper ` +
          `{ name: trial_plateau, metric: ... }, got ${JSON.stringify(item)}`,
        ["stop", i],
      );
    }
    for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
      if (typeof v !== "number" || Number.isNaN(v)) {
        err(
          `"stop[${i}].${k}" must be a number (stop when the result reaches it), got ${
            JSON.stringify(v)
          }`,
          ["stop", i, k],
        );
      }
    }
    parts.push(item as Record<string, number>);
  }
  return combinedStopper(...parts);
}

export async function loadPlugin<T>(
  role: PluginRole,
  spec: unknown,
  path: Path,
  base: string,
  err: (m: string, p: Path, key?: boolean) => never,
): Promise<T> {
  const what = role === "callback" ? "logger" : role;
  if (typeof spec === "string") spec = { name: spec };
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    err(
      `A ${what} must be { name: ..., <options> } or { module: ./file.ts, options: {...} }, got ${
        JSON.stringify(spec)
      }`,
      path,
    );
  }
  const s = spec as Record<string, unknown>;
  let factory: ((o: Record<string, unknown>) => unknown) | undefined;
  let options: Record<string, unknown>;
  let label: string;
  if (typeof s.module === "string") {
    for (const k of Object.keys(s)) {
      if (k !== "module" && k !== "options") {
        err(
          `Unknown key "${k}" beside "module"; put plugin options under "options"`,
          [...path, k],
          true,
        );
      }
    }
    const url = resolveModule(s.module, base);
    label = s.module;
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (e) {
      return err(
        `Cannot load the ${what} module "${s.module}": ${(e as Error).message.split("\n")[0]}`,
        [...path, "module"],
      );
    }
    if (typeof mod.default !== "function") {
      err(
        `The ${what} module "${s.module}" must default-export a factory function (options) => ${what}`,
        [...path, "module"],
      );
    }
    factory = mod.default as (o: Record<string, unknown>) => unknown;
    options = (s.options ?? {}) as Record<string, unknown>;
  } else if (typeof s.name === "string") {
    label = s.name;
    factory = await findPluginFactory(role, s.name);
    if (!factory) {
      const names = knownPluginNames(role);
      err(
        `Unknown ${what} "${s.name}"${suggest(s.name, names)}; known: ${
          names.join(", ") || "none"
        } (or load one with module: ./file.ts)`,
        [...path, "name"],
      );
    }
    options = {};
    const nested = s.options && typeof s.options === "object"
      ? (s.options as Record<string, unknown>)
      : {};
    for (const [k, v] of Object.entries({ ...s, ...nested })) {
      if (k !== "name" && k !== "options") options[k] = v;
    }
  } else {
    return err(`A ${what} needs "name" (a registered ${what}) or "module" (a file)`, path);
  }
  const camelOptions = camelKeys(options);
  let plugin: unknown;
  try {
    plugin = factory!(camelOptions);
  } catch (e) {
    if (e instanceof SpaceSpecError && e.path.length) {
      // e.g. a bad domain inside PBT's hyperparam_mutations: point at it.
      const [head, ...rest] = e.path;
      const key = snake(String(head));
      const base = s.options ? [...path, "options"] : path;
      const where = key in options ? [...base, key, ...rest] : path;
      return err(`${what} "${label}": ${e.message}`, where, e.message.includes("nknown key"));
    }
    // Errors of the options module carry the key; a third-party plugin's plain TypeError may
    // only name it in its message.
    const named = isOptionError(e)
      ? e.key.split(".")[0]
      : /"(\w+)"/.exec((e as Error).message)?.[1];
    const key = named ? snake(named) : undefined;
    const where = key && key in options
      ? (s.options ? [...path, "options", key] : [...path, key])
      : path;
    const msg = (e as Error).message.replace(/"(\w+)"/g, (_, k: string) => `"${snake(k)}"`);
    return err(`${what} "${label}": ${msg}`, where, msg.includes("nknown"));
  }
  const problem = checkPluginShape(role, plugin);
  if (problem) err(`${what} "${label}": ${problem}`, path);
  // Saved in experiment.json so that `tunebox resume` can rebuild the plugin by name.
  if (typeof s.name === "string") {
    Object.defineProperty(plugin, "spec", {
      value: { name: s.name, options: camelOptions as never },
      enumerable: false,
      configurable: true,
    });
  }
  return plugin as T;
}
