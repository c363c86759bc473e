/**
 * Several stop criteria at once, as Ray Tune's `CombinedStopper`, and the names stoppers have in
 * experiment files (`stop: { name: trial_plateau, metric: loss }`).
 *
 * @module
 */

import type { Stopper } from "../../core/runner.ts";
import type { JsonValue, TrialResult } from "../../core/trial.ts";
import { lookupPlugin, type PluginFactory, pluginNames } from "../../core/plugin.ts";
import { suggest } from "../../core/options.ts";
import { stopperSpec, withSpec } from "./_spec.ts";
import {
  experimentPlateauStopper,
  type ExperimentPlateauStopperOptions,
  trialPlateauStopper,
  type TrialPlateauStopperOptions,
} from "./plateau.ts";

/** What {@linkcode combinedStopper} combines: a stop function or Ray's criteria dict. */
export type StopperPart = Stopper | { readonly [key: string]: number };

function lookup(key: string, result: TrialResult): number | undefined {
  let node: JsonValue | undefined = result[key];
  if (node === undefined && key.includes("/")) {
    node = result;
    for (const part of key.split("/")) {
      node = node && typeof node === "object" && !Array.isArray(node)
        ? (node as Record<string, JsonValue>)[part]
        : undefined;
    }
  }
  return typeof node === "number" ? node : undefined;
}

/**
 * Ray's criteria dict as a stop function: true once any listed result value reaches its limit
 * (`>=`). Keys may be paths into nested metrics joined by `/`.
 *
 * @param criteria e.g. `{ training_iteration: 10, acc: 0.99 }`.
 * @returns the stop function.
 * @throws {TypeError} when a limit is not a number.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { criteriaStopper } from "./combined.ts";
 * const stop = criteriaStopper({ training_iteration: 3 });
 * assert.equal(stop("a", { training_iteration: 3, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "a" }), true);
 * ```
 */
export function criteriaStopper(criteria: { readonly [key: string]: number }): Stopper {
  if (!criteria || typeof criteria !== "object" || Array.isArray(criteria)) {
    throw new TypeError(
      `criteriaStopper: criteria must be an object like { training_iteration: 10 }, got ${
        JSON.stringify(criteria)
      }`,
    );
  }
  const entries = Object.entries(criteria);
  for (const [k, v] of entries) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new TypeError(
        `criteriaStopper: "${k}" must be a number (stop when the result reaches it), got ${
          JSON.stringify(v)
        }`,
      );
    }
  }
  const stopper: Stopper = (_trialId, result) =>
    entries.some(([k, limit]) => {
      const v = lookup(k, result);
      return v !== undefined && v >= limit;
    });
  return stopper;
}

/**
 * Stops a trial when any of `parts` says so, and the experiment when any part's `stopAll()`
 * does (Ray's `CombinedStopper`). A part is a stop function or a criteria dict
 * (`{ training_iteration: 10 }`). In an experiment file, `stop:` given as a list is this.
 *
 * Difference from Ray: every part sees every result (Ray's `any(...)` stops asking at the first
 * part that says stop, so a later stateful part such as an experiment plateau stopper misses
 * that result); a criteria key missing from a result is not warned about, as the runner does
 * for a plain criteria dict.
 *
 * @param parts the stop functions and criteria dicts.
 * @returns one stop function with `stopAll()`; it carries a spec (and so resumes by itself)
 *   when each part is a criteria dict or was made by a stopper factory that records its spec
 *   (the built-ins do).
 * @throws {TypeError} when a part is neither a function nor a criteria dict, or no part is given.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combinedStopper } from "./combined.ts";
 * import { trialPlateauStopper } from "./plateau.ts";
 * const stop = combinedStopper(
 *   { training_iteration: 100 },
 *   trialPlateauStopper({ metric: "loss", std: 0.001 }),
 * );
 * assert.equal(typeof stop, "function");
 * assert.equal(stop.stopAll?.(), false);
 * ```
 */
export function combinedStopper(...parts: readonly StopperPart[]): Stopper {
  if (!parts.length) throw new TypeError("combinedStopper: give at least one stopper");
  const fns: Stopper[] = parts.map((p, i) => {
    if (typeof p === "function") return p;
    if (p && typeof p === "object" && !Array.isArray(p)) return criteriaStopper(p);
    throw new TypeError(
      `combinedStopper: stopper ${i + 1} must be a function or a criteria object like ` +
        `{ training_iteration: 10 }, got ${JSON.stringify(p)}`,
    );
  });
  const stopper: Stopper = (trialId, result) => {
    let stop = false;
    for (const f of fns) if (f(trialId, result) === true) stop = true;
    return stop;
  };
  stopper.stopAll = () => fns.some((f) => typeof f.stopAll === "function" && f.stopAll() === true);
  const specs: JsonValue[] = [];
  for (const p of parts) {
    if (typeof p !== "function") specs.push({ ...p });
    else {
      const spec = stopperSpec(p);
      if (!spec) return stopper;
      specs.push(spec as unknown as JsonValue);
    }
  }
  return withSpec(stopper, { name: "combined", options: { stoppers: specs } });
}

/** The names of the built-in stoppers in an experiment file (`stop: { name: trial_plateau }`). */
export const STOPPER_NAMES: readonly string[] = ["trial_plateau", "experiment_plateau", "combined"];

/**
 * Makes a built-in stopper from its experiment-file name and options (keys in camelCase), as a
 * YAML file, `Tuner.restore` or a saved combined stopper does.
 *
 * @param name One of {@linkcode STOPPER_NAMES}.
 * @param options The stopper's options.
 * @returns The stop function, carrying its spec.
 * @throws {TypeError} for an unknown name or a wrong option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stopperFromOptions } from "./combined.ts";
 * const stop = stopperFromOptions("trial_plateau", { metric: "loss", std: 0.001 });
 * assert.equal(typeof stop, "function");
 * assert.throws(() => stopperFromOptions("trial_plateu", {}), /did you mean "trial_plateau"/);
 * ```
 */
export function stopperFromOptions(name: string, options: Record<string, unknown>): Stopper {
  switch (name) {
    case "trial_plateau":
      return trialPlateauStopper(options as unknown as TrialPlateauStopperOptions);
    case "experiment_plateau":
      return experimentPlateauStopper(options as unknown as ExperimentPlateauStopperOptions);
    case "combined":
      return combinedFromOptions(options);
  }
  throw new TypeError(
    `Unknown stopper "${name}"${suggest(name, STOPPER_NAMES)}; expected one of ${
      STOPPER_NAMES.join(", ")
    }`,
  );
}

/** The factory of a stopper's name: one registered with `registerPlugin` first, else a built-in. */
function stopperFactory(name: string): PluginFactory<unknown> | undefined {
  const registered = lookupPlugin("stopper", name);
  if (registered) return registered;
  return STOPPER_NAMES.includes(name) ? (o) => stopperFromOptions(name, o) : undefined;
}

/**
 * Makes a stopper again from its saved form: a `{ name, options }` spec of a known name, or a
 * criteria dict.
 */
function fromSaved(value: JsonValue, i: number): StopperPart {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const saved = value as { readonly [key: string]: JsonValue };
    if (typeof saved.name !== "string") return saved as { readonly [key: string]: number };
    const factory = stopperFactory(saved.name);
    if (!factory) {
      const known = [...new Set([...STOPPER_NAMES, ...pluginNames("stopper")])].sort();
      throw new TypeError(
        `combinedStopper: stopper ${i + 1} is "${saved.name}", which is not a registered ` +
          `stopper; known: ${known.join(", ")}`,
      );
    }
    const options = saved.options && typeof saved.options === "object" &&
        !Array.isArray(saved.options)
      ? saved.options
      : {};
    return factory(options as Record<string, unknown>) as Stopper;
  }
  throw new TypeError(
    `combinedStopper: stopper ${i + 1} must be { name, options } or a criteria object like ` +
      `{ training_iteration: 10 }, got ${JSON.stringify(value)}`,
  );
}

/**
 * The `combined` factory: `{ stoppers: [...] }` of specs and criteria dicts (the
 * form {@linkcode combinedStopper} saves).
 */
export function combinedFromOptions(options: Record<string, unknown>): Stopper {
  const keys = Object.keys(options).filter((k) => k !== "stoppers");
  if (keys.length) {
    throw new TypeError(`combinedStopper: unknown option "${keys[0]}"; expected stoppers`);
  }
  const list = options.stoppers;
  if (!Array.isArray(list) || !list.length) {
    throw new TypeError(
      `combinedStopper: "stoppers" must be a non-empty list, got ${JSON.stringify(list)}`,
    );
  }
  return combinedStopper(...list.map((x, i) => fromSaved(x as JsonValue, i)));
}
