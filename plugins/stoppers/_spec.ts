// Private to the stoppers family: the spec a stopper made by name carries, so that `experiment.json`
// keeps it and `tunebox resume` makes it again.

import type { JsonValue } from "../../core/trial.ts";
import type { Stopper } from "../../core/runner.ts";

/** How a stopper is saved in `experiment.json`, so that `tunebox resume` can make it again. */
export interface StopperSpec {
  /** The stopper's name (`trial_plateau`, `experiment_plateau`, `combined`, or a registered one). */
  readonly name: string;
  /** The factory's options. */
  readonly options: { readonly [key: string]: JsonValue };
}

/** The spec a stopper built by a named factory carries, or undefined. */
export function stopperSpec(stopper: unknown): StopperSpec | undefined {
  const spec = (stopper as { spec?: unknown } | null | undefined)?.spec;
  return spec && typeof spec === "object" && typeof (spec as StopperSpec).name === "string"
    ? spec as StopperSpec
    : undefined;
}

/** Records `spec` on a stopper (not enumerable; a YAML loader may set it again). */
export function withSpec<T extends Stopper>(stopper: T, spec: StopperSpec): T {
  Object.defineProperty(stopper, "spec", { value: spec, enumerable: false, configurable: true });
  return stopper;
}
