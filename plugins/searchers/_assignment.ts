/**
 * Shared helpers of the searchers: sampling an {@linkcode Assignment} parameter by parameter,
 * turning a (partial) user config into one, the grid order of Ray's BasicVariantGenerator, and
 * option checks.
 *
 * @module
 */

import type { Config, JsonValue } from "../../core/trial.ts";
import type { Rng } from "../../core/random.ts";
import {
  type ChoiceDomain,
  type Domain,
  isDomain,
  isPlainObject,
  parameters,
  type ParamInfo,
  sampleConfig,
  sampleValue,
  type Space,
  suggest,
} from "../../core/space.ts";

/** A parameter a searcher draws itself (not a grid and not a `sampleFrom`). */
export type Drawable = Exclude<Domain, { kind: "grid" } | { kind: "sample_from" }>;

/** Whether a parameter is one a searcher draws (numbers and choices). */
export function isDrawable(p: ParamInfo): p is ParamInfo & { domain: Drawable } {
  return p.domain.kind !== "grid" && p.domain.kind !== "sample_from";
}

/** Whether a parameter's condition holds in an assignment (unconditional ones always do). */
export function isActive(p: ParamInfo, a: ReadonlyMap<string, unknown>): boolean {
  return !p.condition || a.get(p.condition.key) === p.condition.index;
}

/**
 * Draws every active drawable parameter not in `fixed` (parents are listed before children, so
 * a branch's parameters are drawn only once its choice is known).
 */
export function sampleAssignment(
  params: readonly ParamInfo[],
  rng: Rng,
  fixed: ReadonlyMap<string, unknown> = new Map(),
): Map<string, unknown> {
  const out = new Map<string, unknown>(fixed);
  for (const p of params) {
    if (!isDrawable(p) || out.has(p.key) || !isActive(p, out)) continue;
    out.set(p.key, sampleValue(p.domain, rng));
  }
  return out;
}

/** The grid dimensions of one sample, in Ray's order (sorted by path; the first cycles fastest). */
export interface GridPlan {
  /** Keys of the grid parameters still expanded. */
  readonly keys: readonly string[];
  /** Their values. */
  readonly values: readonly (readonly unknown[])[];
  /** Number of grid points. */
  readonly size: number;
}

/** The grid of a space, without the grid parameters that `preset` already fixes. */
export function gridPlan(
  params: readonly ParamInfo[],
  preset?: ReadonlyMap<string, unknown>,
): GridPlan {
  const dims = params
    .filter((p) => p.domain.kind === "grid" && !preset?.has(p.key))
    .map((p) => {
      if (p.condition) {
        throw new TypeError(
          `Search space parameter "${p.key}": a grid inside a choice branch is not supported`,
        );
      }
      return { key: p.path.join("/"), values: (p.domain as { values: readonly unknown[] }).values };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    keys: dims.map((d) => d.key),
    values: dims.map((d) => d.values),
    size: dims.reduce((n, d) => n * d.values.length, 1),
  };
}

/** The grid values of point `index` of a plan, added to `into`. */
export function addGridPoint(plan: GridPlan, index: number, into: Map<string, unknown>): void {
  let rest = index;
  for (let i = 0; i < plan.keys.length; i++) {
    const vs = plan.values[i];
    into.set(plan.keys[i], vs[rest % vs.length]);
    rest = Math.floor(rest / vs.length);
  }
}

/**
 * Builds the config of an assignment: values of `a` are used, anything missing is sampled, then
 * `sampleFrom` domains are resolved and `overlay` (a user's preset point) is merged over it.
 */
export function buildConfig(
  space: Space,
  rng: Rng,
  a: ReadonlyMap<string, unknown>,
  overlay?: Config,
): Config {
  const config = sampleConfig(space, rng, a);
  return overlay ? merge(config, overlay) as Config : config;
}

function merge(base: JsonValue, over: JsonValue): JsonValue {
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, JsonValue> = { ...(base as Record<string, JsonValue>) };
    for (const [k, v] of Object.entries(over)) {
      out[k] = k in out ? merge(out[k], v as JsonValue) : structuredClone(v as JsonValue);
    }
    return out;
  }
  return structuredClone(over);
}

/** Canonical JSON (sorted keys) for equality of JSON values. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/**
 * Turns a user's (partial) config into an assignment keyed by {@linkcode ParamInfo.key}: numbers
 * as given, a choice as the index of the matching option (for a sub-space option, the option whose
 * constants match), grids as the value.
 *
 * @throws {TypeError} naming `where` and the path when a key is not in the space or a value matches
 * no option of a choice.
 */
export function presetAssignment(space: Space, point: Config, where: string): Map<string, unknown> {
  checkPaths(space, point, where);
  const out = new Map<string, unknown>();
  const params = parameters(space);
  for (const p of params) {
    if (!isActive(p, out)) continue;
    const found = lookup(point, p.path);
    if (!found.ok) continue;
    const v = found.value;
    const d = p.domain;
    if (d.kind === "grid" || d.kind === "sample_from") {
      if (d.kind === "grid") out.set(p.key, v);
      continue;
    }
    if (d.kind === "choice") {
      const index = matchOption(d, v);
      if (index < 0) {
        throw new TypeError(
          `${where}: "${p.path.join(".")}" is ${canonical(v)}, which is none of the options ${
            canonical(d.options.map((o) => (hasDomain(o) ? "<sub-space>" : o)))
          }`,
        );
      }
      out.set(p.key, index);
      continue;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(
        `${where}: "${p.path.join(".")}" must be a finite number, got ${canonical(v)}`,
      );
    }
    out.set(p.key, v);
  }
  return out;
}

function hasDomain(node: unknown): boolean {
  if (isDomain(node)) return true;
  if (isPlainObject(node)) return Object.values(node).some(hasDomain);
  return false;
}

function matchOption(d: ChoiceDomain, v: unknown): number {
  const c = canonical(v);
  const exact = d.options.findIndex((o) => !hasDomain(o) && canonical(o) === c);
  if (exact >= 0) return exact;
  if (!isPlainObject(v)) return -1;
  // A sub-space option matches when every constant it holds equals the preset's value and the
  // preset names no key the option lacks.
  return d.options.findIndex((o) => isPlainObject(o) && fits(o, v));
}

function fits(option: Record<string, unknown>, v: Record<string, unknown>): boolean {
  for (const k of Object.keys(v)) if (!(k in option)) return false;
  for (const [k, o] of Object.entries(option)) {
    if (!(k in v) || isDomain(o)) continue;
    if (isPlainObject(o)) {
      if (!isPlainObject(v[k]) || !fits(o, v[k] as Record<string, unknown>)) return false;
    } else if (canonical(o) !== canonical(v[k])) return false;
  }
  return true;
}

function lookup(config: Config, path: readonly string[]): { ok: boolean; value?: unknown } {
  let node: unknown = config;
  for (const k of path) {
    if (!isPlainObject(node) || !(k in node)) return { ok: false };
    node = node[k];
  }
  return { ok: true, value: node };
}

/** Every path (joined by `.`) a config of the space may hold, for typo checks. */
function spacePaths(space: Space): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown, path: string): void => {
    if (path) out.add(path);
    if (isDomain(node)) {
      if (node.kind === "choice") {
        for (const o of node.options) if (isPlainObject(o)) walk(o, path);
      }
      return;
    }
    if (isPlainObject(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(space, "");
  return out;
}

function checkPaths(space: Space, point: Config, where: string): void {
  const known = spacePaths(space);
  const walk = (node: unknown, path: string): void => {
    if (!isPlainObject(node)) return;
    for (const [k, v] of Object.entries(node)) {
      const p = path ? `${path}.${k}` : k;
      if (!known.has(p)) {
        throw new TypeError(
          `${where}: "${p}" is not a parameter of the search space` + suggest(p, [...known]),
        );
      }
      walk(v, p);
    }
  };
  walk(point, "");
}

/** Checks an options object: a plain object whose keys are all known. */
export { checkKeys as checkOptionKeys } from "../../core/options.ts";

/** Validates the `pointsToEvaluate` option: an array of plain objects (partial configs). */
export function checkPoints(factory: string, points: unknown): Config[] {
  if (points === undefined) return [];
  if (!Array.isArray(points)) {
    throw new TypeError(
      `${factory}: "pointsToEvaluate" must be an array of (partial) configs, got ${
        canonical(points)
      }`,
    );
  }
  return points.map((p, i) => {
    if (!isPlainObject(p)) {
      throw new TypeError(
        `${factory}: "pointsToEvaluate[${i}]" must be an object (a partial config), got ${
          canonical(p)
        }`,
      );
    }
    return structuredClone(p) as Config;
  });
}

/** Validates an optional seed option. */
export function checkSeed(factory: string, seed: unknown): number | undefined {
  if (seed === undefined) return undefined;
  if (typeof seed !== "number" || !Number.isInteger(seed)) {
    throw new TypeError(`${factory}: "seed" must be an integer, got ${canonical(seed)}`);
  }
  return seed;
}

/** Reads a JSON object state field for `restore`, with a clear message. */
export function stateObject(name: string, state: JsonValue): Record<string, JsonValue> {
  if (!isPlainObject(state)) {
    throw new TypeError(
      `${name}: restore() expects the object snapshot() returned, got ${canonical(state)}`,
    );
  }
  return state as Record<string, JsonValue>;
}
