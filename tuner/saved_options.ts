/**
 * What `experiment.json` keeps of a `Tuner`'s options, and how `Tuner.restore` makes them
 * again (the backend, the stop criteria, the options kept as they are).
 *
 * @module
 */

import type { Backend } from "../core/plugin.ts";
import { resolveModule } from "../core/plugin.ts";
import type { JsonValue } from "../core/trial.ts";
import type { Space } from "../core/space.ts";
import type { StopCriteria } from "../core/runner.ts";
import { TuneError } from "../core/errors.ts";
import { findPluginFactory } from "./plugin_table.ts";
import { SAVED_AS_IS } from "./option_table.ts";
import type { TunerOptions } from "./tuner.ts";

/** The backend an experiment saved, made again (`tfjs`), or an error saying to pass it. */
export async function backendFromSpec(
  saved: JsonValue | undefined,
  dir: string,
): Promise<Backend | undefined> {
  if (!saved || typeof saved !== "object" || Array.isArray(saved)) return undefined;
  const spec = saved as { name?: JsonValue; options?: JsonValue };
  if (spec.name === "tfjs" && spec.options && typeof spec.options === "object") {
    const { tfjsBackend } = await import("../plugins/backends/tfjs/permissions.ts");
    return tfjsBackend(spec.options as Record<string, unknown>) as Backend;
  }
  throw new TuneError(
    `The experiment in "${dir}" used the backend ${JSON.stringify(spec.name)}: pass it again ` +
      `with Tuner.restore(path, { backend })`,
  );
}

/** The options `experiment.json` keeps as they are (`SAVED_AS_IS`), for `Tuner.restore`. */
export function restoreScalars(saved: Record<string, JsonValue>): Partial<TunerOptions<Space>> {
  const out: Record<string, unknown> = {};
  for (const k of SAVED_AS_IS) {
    if (saved[k] !== undefined && saved[k] !== null) out[k] = saved[k];
  }
  return out as Partial<TunerOptions<Space>>;
}

/** The saved `stop`: criteria as they are, a stopper's spec made again by its registered name. */
export async function restoreStop(
  saved: JsonValue | undefined,
  dir: string,
): Promise<StopCriteria | undefined> {
  if (saved === undefined || saved === null) return undefined;
  const again = (what: string) =>
    new TuneError(
      `The experiment in "${dir}" stopped trials with ${what}: pass it again with ` +
        `Tuner.restore(path, { stop })`,
    );
  if (saved === "<function>") throw again("a stop function");
  if (typeof saved !== "object" || Array.isArray(saved)) return undefined;
  const spec = saved as { name?: JsonValue; options?: JsonValue };
  if (typeof spec.name !== "string") return saved as { readonly [key: string]: number };
  const factory = await findPluginFactory("stopper", spec.name);
  if (!factory) {
    throw again(`the stopper "${spec.name}" (register its name with registerPlugin first)`);
  }
  const options = spec.options && typeof spec.options === "object" ? spec.options : {};
  return factory(options as Record<string, unknown>) as StopCriteria;
}

/** What `experiment.json` keeps of the options: values, and the specs of plugins made by name. */
export function savedOptions(o: TunerOptions<Space>, seed: number): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {
    trainable: typeof o.trainable === "function"
      ? "<function>"
      : o.trainable instanceof URL
      ? o.trainable.href
      : resolveModule(o.trainable),
    numSamples: o.numSamples ?? 1,
    seed,
  };
  for (const k of SAVED_AS_IS as readonly (keyof TunerOptions<Space>)[]) {
    if (o[k] !== undefined) out[k] = o[k] as JsonValue;
  }
  const spec = (p: unknown) => (p as { spec?: JsonValue } | undefined)?.spec;
  if (o.stop && typeof o.stop !== "function") out.stop = o.stop as JsonValue;
  else if (o.stop) out.stop = spec(o.stop) ?? "<function>";
  if (spec(o.scheduler)) out.scheduler = spec(o.scheduler)!;
  if (spec(o.searcher)) out.searcher = spec(o.searcher)!;
  if (spec(o.executor)) out.executor = spec(o.executor)!;
  if (o.backend) out.backend = spec(o.backend) ?? { name: o.backend.name };
  return out;
}
