/**
 * Search spaces: the domains a hyperparameter can take, their validation, sampling, and the
 * typed config a trainable receives.
 *
 * Conventions follow Ray Tune so that spaces port one to one:
 * - `loguniform(min, max)` takes its bounds in real space (not log space as hyperopt does);
 * - `randint(min, max)` and `lograndint(min, max)` exclude `max`; `qrandint` and `qlograndint`
 *   include it;
 * - quantized floats sample in `[min, max]` and round to a multiple of `q`;
 * - `grid(values)` is Ray's `grid_search`: every one of `numSamples` samples runs the whole grid;
 * - a `choice` whose options are objects holding domains is a conditional sub-space: the chosen
 *   branch's parameters are sampled, the others do not exist in the config.
 *
 * @module
 */

import { suggest } from "./options.ts";
import type { Config, JsonValue } from "./trial.ts";
import type { Rng } from "./random.ts";

/** The brand every domain carries (how `isDomain` tells a domain from a constant object). */
export const DOMAIN: unique symbol = Symbol.for("tunebox.domain");

/** What every domain has. */
export interface DomainBase {
  /** The brand. */
  readonly [DOMAIN]: true;
  /** The factory name (`uniform`, `qrandint`, ...), also the YAML `type:`. */
  readonly type: string;
}

/** A float parameter: `uniform`, `loguniform`, `quniform`, `qloguniform`. */
export interface FloatDomain extends DomainBase {
  /** Discriminant. */
  readonly kind: "float";
  /** Lower bound (inclusive). */
  readonly min: number;
  /** Upper bound. */
  readonly max: number;
  /** Sampled uniformly in log space. */
  readonly log: boolean;
  /** Quantization step, when quantized. */
  readonly q?: number;
}

/** An integer parameter. `min` and `max` here are both inclusive, whatever the factory took. */
export interface IntDomain extends DomainBase {
  /** Discriminant. */
  readonly kind: "int";
  /** Smallest value (inclusive). */
  readonly min: number;
  /** Largest value (inclusive). */
  readonly max: number;
  /** Sampled uniformly in log space. */
  readonly log: boolean;
  /** Step: values are multiples of `q` (1 when not quantized). */
  readonly q: number;
}

/** A normally distributed float: `randn(mean, sd)`. */
export interface NormalDomain extends DomainBase {
  /** Discriminant. */
  readonly kind: "normal";
  /** Mean. */
  readonly mean: number;
  /** Standard deviation. */
  readonly sd: number;
  /** Quantization step, when quantized. */
  readonly q?: number;
}

/** A categorical parameter; options may be constants or sub-spaces (conditional parameters). */
export interface ChoiceDomain<T = unknown> extends DomainBase {
  /** Discriminant. */
  readonly kind: "choice";
  /** The options, in order. */
  readonly options: readonly T[];
}

/** A grid dimension (Ray's `grid_search`): every value is tried once per sample. */
export interface GridDomain<T = unknown> extends DomainBase {
  /** Discriminant. */
  readonly kind: "grid";
  /** The values, in order. */
  readonly values: readonly T[];
}

/** A value computed from the rest of the config (Ray's `sample_from`). */
export interface SampleFromDomain<T = unknown> extends DomainBase {
  /** Discriminant. */
  readonly kind: "sample_from";
  /** Computes the value from the config resolved so far and a random number generator. */
  readonly fn: (config: Config, rng: Rng) => T;
}

/** Any domain. */
export type Domain =
  | FloatDomain
  | IntDomain
  | NormalDomain
  | ChoiceDomain
  | GridDomain
  | SampleFromDomain;

/**
 * A search space: an object whose leaves are domains or constants; objects nest.
 *
 * @example
 * ```ts
 * import { choice, loguniform, type Space } from "./space.ts";
 * const space: Space = { lr: loguniform(1e-4, 1e-1), batch: choice([32, 64]), epochs: 10 };
 * ```
 */
export type Space = { readonly [key: string]: unknown };

/** The value type a domain or space node resolves to. */
export type ValueOf<D> = D extends FloatDomain | IntDomain | NormalDomain ? number
  : D extends ChoiceDomain<infer T> ? ValueOf<T>
  : D extends GridDomain<infer T> ? T
  : D extends SampleFromDomain<infer T> ? T
  : D extends readonly unknown[] ? D
  : D extends (...args: never[]) => unknown ? never
  : D extends object ? { -readonly [K in keyof D]: ValueOf<D[K]> }
  : D;

/**
 * The typed config a trainable receives for a space.
 *
 * @example
 * ```ts
 * import { choice, loguniform, type ConfigOf } from "./space.ts";
 * const space = { lr: loguniform(1e-4, 1e-1), act: choice(["relu", "tanh"] as const) };
 * type C = ConfigOf<typeof space>; // { lr: number; act: "relu" | "tanh" }
 * const c: C = { lr: 0.01, act: "relu" };
 * ```
 */
export type ConfigOf<S> = ValueOf<S>;

/**
 * Whether a value is a domain made by one of this module's factories.
 *
 * @example
 * ```ts
 * import { isDomain, uniform } from "./space.ts";
 * console.log(isDomain(uniform(0, 1)), isDomain(3)); // true false
 * ```
 */
export function isDomain(value: unknown): value is Domain {
  return typeof value === "object" && value !== null && DOMAIN in value;
}

function make<D extends Domain>(fields: Omit<D, typeof DOMAIN>): D {
  return Object.freeze({ [DOMAIN]: true, ...fields }) as unknown as D;
}

function fmt(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function finite(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${fn}: "${name}" must be a finite number, got ${fmt(v)}`);
  }
  return v;
}

function bounds(fn: string, min: unknown, max: unknown, log: boolean): [number, number] {
  const lo = finite(fn, "min", min), hi = finite(fn, "max", max);
  if (!(lo < hi)) {
    throw new RangeError(`${fn}(${lo}, ${hi}): the range is empty; "min" must be < "max"`);
  }
  if (log && lo <= 0) {
    throw new RangeError(
      `${fn}(${lo}, ${hi}): a log scale needs "min" > 0 (bounds are in real space, as in Ray Tune)`,
    );
  }
  return [lo, hi];
}

function step(fn: string, q: unknown): number {
  const v = finite(fn, "q", q);
  if (v <= 0) throw new RangeError(`${fn}: "q" must be > 0, got ${v}`);
  return v;
}

/**
 * A float sampled uniformly in `[min, max)`.
 *
 * @throws {RangeError} when `min >= max`.
 * @example
 * ```ts
 * import { uniform } from "./space.ts";
 * const dropout = uniform(0, 0.5);
 * ```
 */
export function uniform(min: number, max: number): FloatDomain {
  const [lo, hi] = bounds("uniform", min, max, false);
  return make<FloatDomain>({ kind: "float", type: "uniform", min: lo, max: hi, log: false });
}

/**
 * A float sampled uniformly in log space; bounds are real values (`loguniform(1e-4, 1e-1)`).
 *
 * @throws {RangeError} when `min >= max` or `min <= 0`.
 * @example
 * ```ts
 * import { loguniform } from "./space.ts";
 * const lr = loguniform(1e-4, 1e-1);
 * ```
 */
export function loguniform(min: number, max: number): FloatDomain {
  const [lo, hi] = bounds("loguniform", min, max, true);
  return make<FloatDomain>({ kind: "float", type: "loguniform", min: lo, max: hi, log: true });
}

/**
 * A float sampled uniformly in `[min, max]` and rounded to a multiple of `q`.
 *
 * @throws {RangeError} when the range is empty, `q <= 0`, or no multiple of `q` lies in it.
 * @example
 * ```ts
 * import { quniform } from "./space.ts";
 * const momentum = quniform(0.5, 0.99, 0.01);
 * ```
 */
export function quniform(min: number, max: number, q: number): FloatDomain {
  const [lo, hi] = bounds("quniform", min, max, false);
  const s = step("quniform", q);
  checkMultiple("quniform", lo, hi, s);
  return make<FloatDomain>({ kind: "float", type: "quniform", min: lo, max: hi, log: false, q: s });
}

/**
 * A float sampled in log space in `[min, max]` and rounded to a multiple of `q`.
 *
 * @throws {RangeError} when the range is empty, `min <= 0`, or `q <= 0`.
 * @example
 * ```ts
 * import { qloguniform } from "./space.ts";
 * const wd = qloguniform(1e-4, 1e-1, 1e-4);
 * ```
 */
export function qloguniform(min: number, max: number, q: number): FloatDomain {
  const [lo, hi] = bounds("qloguniform", min, max, true);
  const s = step("qloguniform", q);
  checkMultiple("qloguniform", lo, hi, s);
  return make<FloatDomain>({
    kind: "float",
    type: "qloguniform",
    min: lo,
    max: hi,
    log: true,
    q: s,
  });
}

function checkMultiple(fn: string, lo: number, hi: number, q: number): void {
  if (Math.ceil(lo / q - 1e-9) * q > hi + 1e-12) {
    throw new RangeError(`${fn}(${lo}, ${hi}, ${q}): no multiple of q=${q} lies in the range`);
  }
}

function int(fn: string, name: string, v: unknown): number {
  const n = finite(fn, name, v);
  if (!Number.isInteger(n)) throw new TypeError(`${fn}: "${name}" must be an integer, got ${n}`);
  return n;
}

/**
 * An integer sampled uniformly in `[min, max)` — `max` is excluded, as in Ray Tune.
 *
 * @throws {RangeError} when `min >= max`.
 * @example
 * ```ts
 * import { randint } from "./space.ts";
 * const hidden = randint(32, 257); // 32..256
 * ```
 */
export function randint(min: number, max: number): IntDomain {
  const lo = int("randint", "min", min), hi = int("randint", "max", max);
  bounds("randint", lo, hi, false);
  return make<IntDomain>({ kind: "int", type: "randint", min: lo, max: hi - 1, log: false, q: 1 });
}

/**
 * An integer in `[min, max]` (both included) that is a multiple of `q`.
 *
 * @throws {RangeError} when `min > max`, `q <= 0`, or no multiple of `q` lies in the range.
 * @example
 * ```ts
 * import { qrandint } from "./space.ts";
 * const batch = qrandint(16, 256, 16);
 * ```
 */
export function qrandint(min: number, max: number, q = 1): IntDomain {
  const lo = int("qrandint", "min", min), hi = int("qrandint", "max", max);
  if (lo > hi) {
    throw new RangeError(`qrandint(${lo}, ${hi}): the range is empty; "min" must be <= "max"`);
  }
  const s = int("qrandint", "q", q);
  if (s <= 0) throw new RangeError(`qrandint: "q" must be > 0, got ${s}`);
  const first = Math.ceil(lo / s) * s;
  if (first > hi) {
    throw new RangeError(`qrandint(${lo}, ${hi}, ${s}): no multiple of q in the range`);
  }
  return make<IntDomain>({
    kind: "int",
    type: "qrandint",
    min: first,
    max: Math.floor(hi / s) * s,
    log: false,
    q: s,
  });
}

/**
 * An integer sampled uniformly in log space in `[min, max)` — `max` excluded, as in Ray Tune.
 *
 * @throws {RangeError} when `min >= max` or `min <= 0`.
 * @example
 * ```ts
 * import { lograndint } from "./space.ts";
 * const units = lograndint(8, 1025);
 * ```
 */
export function lograndint(min: number, max: number): IntDomain {
  const lo = int("lograndint", "min", min), hi = int("lograndint", "max", max);
  bounds("lograndint", lo, hi, true);
  return make<IntDomain>({
    kind: "int",
    type: "lograndint",
    min: lo,
    max: hi - 1,
    log: true,
    q: 1,
  });
}

/**
 * An integer sampled in log space in `[min, max]` (both included), a multiple of `q`.
 *
 * @throws {RangeError} when `min > max`, `min <= 0` or `q <= 0`.
 * @example
 * ```ts
 * import { qlograndint } from "./space.ts";
 * const units = qlograndint(8, 1024, 8);
 * ```
 */
export function qlograndint(min: number, max: number, q = 1): IntDomain {
  const lo = int("qlograndint", "min", min), hi = int("qlograndint", "max", max);
  if (lo <= 0) throw new RangeError(`qlograndint(${lo}, ${hi}): a log scale needs "min" > 0`);
  if (lo > hi) {
    throw new RangeError(`qlograndint(${lo}, ${hi}): the range is empty; "min" must be <= "max"`);
  }
  const s = int("qlograndint", "q", q);
  if (s <= 0) throw new RangeError(`qlograndint: "q" must be > 0, got ${s}`);
  const first = Math.ceil(lo / s) * s;
  if (first > hi) {
    throw new RangeError(`qlograndint(${lo}, ${hi}, ${s}): no multiple of q in the range`);
  }
  return make<IntDomain>({
    kind: "int",
    type: "qlograndint",
    min: first,
    max: Math.floor(hi / s) * s,
    log: true,
    q: s,
  });
}

/**
 * A float drawn from a normal distribution `N(mean, sd²)`, optionally rounded to a multiple of `q`.
 *
 * @throws {RangeError} when `sd <= 0` or `q <= 0`.
 * @example
 * ```ts
 * import { randn } from "./space.ts";
 * const offset = randn(0, 0.1);
 * ```
 */
export function randn(mean = 0, sd = 1, q?: number): NormalDomain {
  const m = finite("randn", "mean", mean), s = finite("randn", "sd", sd);
  if (s <= 0) throw new RangeError(`randn: "sd" must be > 0, got ${s}`);
  const fields = {
    kind: "normal",
    type: q === undefined ? "randn" : "qrandn",
    mean: m,
    sd: s,
  } as const;
  return make<NormalDomain>(q === undefined ? fields : { ...fields, q: step("qrandn", q) });
}

/**
 * One of `options`, uniformly. Options that are objects holding domains are sub-spaces: the
 * chosen branch is sampled in turn (conditional parameters, like hyperopt's nested `hp.choice`).
 *
 * @throws {RangeError} when `options` is empty.
 * @example
 * ```ts
 * import { choice, loguniform, uniform } from "./space.ts";
 * const batch = choice([32, 64, 128]);
 * const optimizer = choice([
 *   { name: "sgd", lr: loguniform(1e-3, 1), momentum: uniform(0, 0.99) },
 *   { name: "adam", lr: loguniform(1e-5, 1e-2) },
 * ]);
 * ```
 */
export function choice<const T>(options: readonly T[]): ChoiceDomain<T> {
  if (!Array.isArray(options)) {
    throw new TypeError(`choice: "options" must be an array, got ${fmt(options)}`);
  }
  if (options.length === 0) {
    throw new RangeError('choice: "options" is empty; give at least one option');
  }
  options.forEach((o, i) => assertSpaceValue(o, `choice option ${i}`));
  return make<ChoiceDomain<T>>({
    kind: "choice",
    type: "choice",
    options: Object.freeze([...options]),
  });
}

/**
 * A grid dimension (Ray's `grid_search`): each of `numSamples` samples runs every value.
 *
 * @throws {RangeError} when `values` is empty.
 * @example
 * ```ts
 * import { grid } from "./space.ts";
 * const layers = grid([1, 2, 3]);
 * ```
 */
export function grid<const T>(values: readonly T[]): GridDomain<T> {
  if (!Array.isArray(values)) {
    throw new TypeError(`grid: "values" must be an array, got ${fmt(values)}`);
  }
  if (values.length === 0) throw new RangeError('grid: "values" is empty; give at least one value');
  values.forEach((v, i) => assertSpaceValue(v, `grid value ${i}`));
  return make<GridDomain<T>>({ kind: "grid", type: "grid", values: Object.freeze([...values]) });
}

/**
 * A value computed from the rest of the config (Ray's `sample_from`). Such a space cannot be
 * saved to `experiment.json`: pass it again to `Tuner.restore`.
 *
 * @example
 * ```ts
 * import { randint, sampleFrom } from "./space.ts";
 * const space = {
 *   layers: randint(1, 4),
 *   width: sampleFrom((c) => 256 / (c.layers as number)),
 * };
 * ```
 */
export function sampleFrom<T>(fn: (config: Config, rng: Rng) => T): SampleFromDomain<T> {
  if (typeof fn !== "function") {
    throw new TypeError(`sampleFrom: expected a function, got ${fmt(fn)}`);
  }
  return make<SampleFromDomain<T>>({ kind: "sample_from", type: "sample_from", fn });
}

function assertSpaceValue(v: unknown, where: string): void {
  if (
    v === undefined || typeof v === "function" || typeof v === "symbol" || typeof v === "bigint"
  ) {
    throw new TypeError(`${where}: ${typeof v} is not a JSON value`);
  }
  if (typeof v === "number" && !Number.isFinite(v)) {
    throw new TypeError(`${where}: ${v} is not a JSON value (NaN/Infinity cannot be saved)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Walking, validating and sampling

/** A path into a config, e.g. `["optimizer", "lr"]`; shown joined by `/`. */
export type ParamPath = readonly string[];

/**
 * One tunable parameter of a space, for searchers. Parameters inside a `choice` branch carry the
 * condition under which they exist.
 */
export interface ParamInfo {
  /** The path of the parameter, e.g. `["optimizer", "lr"]` (the branch index is not part of it). */
  readonly path: ParamPath;
  /** The path joined by `/`, unique per parameter (branch parameters get `/<index>` after the choice). */
  readonly key: string;
  /** The domain. */
  readonly domain: Domain;
  /** Present when the parameter only exists if a choice picked a given branch. */
  readonly condition?: { readonly key: string; readonly index: number };
}

/**
 * Lists every domain of a space depth first, with conditions for branch parameters. Grid and
 * `sampleFrom` domains are listed too; searchers decide what to do with them.
 *
 * @example
 * ```ts
 * import { choice, parameters, uniform } from "./space.ts";
 * const ps = parameters({ opt: choice([{ lr: uniform(0, 1) }, { wd: uniform(0, 1) }]) });
 * console.log(ps.map((p) => p.key)); // ["opt", "opt/0/lr", "opt/1/wd"]
 * ```
 */
export function parameters(space: Space): ParamInfo[] {
  const out: ParamInfo[] = [];
  const walk = (node: unknown, path: string[], key: string, cond?: ParamInfo["condition"]) => {
    if (isDomain(node)) {
      out.push({ path, key, domain: node, ...(cond ? { condition: cond } : {}) });
      if (node.kind === "choice") {
        node.options.forEach((o, i) => {
          if (isPlainObject(o)) walkObject(o, path, `${key}/${i}`, { key, index: i });
        });
      }
      return;
    }
    if (isPlainObject(node)) walkObject(node, path, key, cond);
  };
  const walkObject = (
    obj: Record<string, unknown>,
    path: string[],
    key: string,
    cond?: ParamInfo["condition"],
  ) => {
    for (const k of Object.keys(obj)) {
      walk(obj[k], [...path, k], key ? `${key}/${k}` : k, cond);
    }
  };
  walkObject(space, [], "");
  return out;
}

/**
 * Whether a space (or a choice option) contains any domain.
 *
 * @example
 * ```ts
 * import { hasDomains, uniform } from "./space.ts";
 * console.log(hasDomains({ a: { b: uniform(0, 1) } }), hasDomains({ a: 1 })); // true false
 * ```
 */
export function hasDomains(node: unknown): boolean {
  if (isDomain(node)) return true;
  if (Array.isArray(node)) return node.some(hasDomains);
  if (isPlainObject(node)) return Object.values(node).some(hasDomains);
  return false;
}

/**
 * Checks a whole space: every leaf is a domain or a JSON constant.
 *
 * @throws {TypeError} naming the parameter path when a value cannot be part of a config.
 * @example
 * ```ts
 * import { uniform, validateSpace } from "./space.ts";
 * validateSpace({ lr: uniform(0, 1), epochs: 3 });
 * ```
 */
export function validateSpace(space: unknown): asserts space is Space {
  if (!isPlainObject(space)) {
    throw new TypeError(`The search space must be an object of parameters, got ${fmt(space)}`);
  }
  const walk = (node: unknown, path: string): void => {
    if (isDomain(node)) {
      if (node.kind === "choice") node.options.forEach((o, i) => walk(o, `${path}[${i}]`));
      if (node.kind === "grid") node.values.forEach((o, i) => walk(o, `${path}[${i}]`));
      return;
    }
    if (Array.isArray(node)) return node.forEach((v, i) => walk(v, `${path}[${i}]`));
    if (isPlainObject(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k);
      return;
    }
    if (node === null || typeof node === "string" || typeof node === "boolean") return;
    if (typeof node === "number" && Number.isFinite(node)) return;
    throw new TypeError(
      `Search space parameter "${path}": ${typeof node === "number" ? node : typeof node} is ` +
        `neither a domain nor a JSON constant (configs are saved as JSON)`,
    );
  };
  walk(space, "");
}

/** Re-exported from `options.ts`, where the did-you-mean of every option check lives. */
export { suggest };

/**
 * Whether a value is a plain object (not an array, a domain, or a class instance).
 *
 * @example
 * ```ts
 * import { isPlainObject } from "./space.ts";
 * console.log(isPlainObject({}), isPlainObject([])); // true false
 * ```
 */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || isDomain(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Samples one value of a number or choice domain (grid and sampleFrom are resolved by
 * {@linkcode sampleConfig}). For a choice it returns the option index.
 *
 * @example
 * ```ts
 * import { Rng } from "./random.ts";
 * import { loguniform, sampleValue } from "./space.ts";
 * const lr = sampleValue(loguniform(1e-4, 1e-1), new Rng(1));
 * ```
 */
export function sampleValue(
  domain: FloatDomain | IntDomain | NormalDomain | ChoiceDomain,
  rng: Rng,
): number {
  switch (domain.kind) {
    case "float": {
      const x = domain.log
        ? Math.exp(rng.uniform(Math.log(domain.min), Math.log(domain.max)))
        : rng.uniform(domain.min, domain.max);
      return domain.q ? quantize(x, domain.q, domain.min, domain.max) : Math.min(x, domain.max);
    }
    case "int": {
      if (!domain.log) {
        return domain.min + domain.q * rng.int(0, (domain.max - domain.min) / domain.q);
      }
      const x = Math.exp(rng.uniform(Math.log(domain.min), Math.log(domain.max + domain.q)));
      return Math.min(domain.max, Math.max(domain.min, Math.floor(x / domain.q) * domain.q));
    }
    case "normal": {
      const x = rng.normal(domain.mean, domain.sd);
      return domain.q ? roundTo(Math.round(x / domain.q) * domain.q, domain.q) : x;
    }
    case "choice":
      return rng.int(0, domain.options.length - 1);
  }
}

/**
 * Rounds `x` to a multiple of `q` inside `[min, max]`, without float noise (0.30000000000000004).
 *
 * @example
 * ```ts
 * import { quantize } from "./space.ts";
 * console.log(quantize(0.3049, 0.01, 0, 1)); // 0.3
 * ```
 */
export function quantize(x: number, q: number, min: number, max: number): number {
  const lo = Math.ceil(min / q - 1e-9), hi = Math.floor(max / q + 1e-9);
  const k = Math.min(hi, Math.max(lo, Math.round(x / q)));
  return roundTo(k * q, q);
}

function roundTo(x: number, q: number): number {
  const decimals = Math.max(0, Math.min(15, -Math.floor(Math.log10(q)) + 6));
  return Number(x.toFixed(decimals));
}

/** The grid dimensions of a space, sorted by path (Ray's order: the first cycles fastest). */
export interface GridDimension {
  /** Parameter path. */
  readonly path: ParamPath;
  /** The grid's values. */
  readonly values: readonly unknown[];
}

/**
 * The grid dimensions of a space (grids inside choice branches are not supported and throw).
 *
 * @example
 * ```ts
 * import { grid, gridDimensions } from "./space.ts";
 * console.log(gridDimensions({ a: grid([1, 2]), b: { c: grid(["x"]) } }).length); // 2
 * ```
 */
export function gridDimensions(space: Space): GridDimension[] {
  const dims = parameters(space).filter((p) => p.domain.kind === "grid");
  for (const d of dims) {
    if (d.condition) {
      throw new TypeError(
        `Search space parameter "${d.key}": a grid inside a choice branch is not supported`,
      );
    }
  }
  return dims
    .map((d) => ({ path: d.path, values: (d.domain as GridDomain).values }))
    .sort((
      a,
      b,
    ) => (a.path.join("/") < b.path.join("/") ? -1 : a.path.join("/") > b.path.join("/") ? 1 : 0));
}

/**
 * How many configs one sample of the space expands to (the product of grid sizes; 1 without grids).
 *
 * @example
 * ```ts
 * import { grid, gridSize } from "./space.ts";
 * console.log(gridSize({ a: grid([1, 2]), b: grid([1, 2, 3]) })); // 6
 * ```
 */
export function gridSize(space: Space): number {
  return gridDimensions(space).reduce((n, d) => n * d.values.length, 1);
}

/**
 * The grid values of grid point `index` (0-based; the first dimension cycles fastest).
 *
 * @example
 * ```ts
 * import { grid, gridPoint } from "./space.ts";
 * const space = { a: grid([1, 2]), b: grid(["x", "y"]) };
 * console.log(gridPoint(space, 1)); // Map { "a" => 2, "b" => "x" }
 * ```
 */
export function gridPoint(space: Space, index: number): Map<string, unknown> {
  const out = new Map<string, unknown>();
  let rest = index;
  for (const d of gridDimensions(space)) {
    out.set(d.path.join("/"), d.values[rest % d.values.length]);
    rest = Math.floor(rest / d.values.length);
  }
  return out;
}

/**
 * Values a searcher chose, keyed by {@linkcode ParamInfo.key}; for a choice the value is the
 * option index.
 */
export type Assignment = ReadonlyMap<string, unknown>;

/**
 * Builds a config from a space: parameters in `fixed` (keyed by {@linkcode ParamInfo.key}; choice
 * values are option indices; grid values are the values) are taken from it, the rest are
 * sampled with `rng`, then `sampleFrom` domains are resolved against the finished config.
 *
 * @throws {TypeError} when a `sampleFrom` function throws or returns a non-JSON value.
 * @example
 * ```ts
 * import { Rng } from "./random.ts";
 * import { sampleConfig, uniform } from "./space.ts";
 * const config = sampleConfig({ lr: uniform(0, 1), epochs: 3 }, new Rng(7));
 * ```
 */
export function sampleConfig(space: Space, rng: Rng, fixed: Assignment = new Map()): Config {
  const deferred: {
    target: Record<string, unknown>;
    key: string;
    domain: SampleFromDomain;
    path: string;
  }[] = [];
  const resolve = (
    node: unknown,
    key: string,
    target: Record<string, unknown>,
    name: string,
  ): void => {
    if (isDomain(node)) {
      if (node.kind === "sample_from") {
        deferred.push({ target, key: name, domain: node, path: key });
        target[name] = null;
        return;
      }
      if (node.kind === "grid") {
        target[name] = clone(fixed.has(key) ? fixed.get(key) : rng.pick(node.values));
        return;
      }
      const v = fixed.has(key) ? (fixed.get(key) as number) : sampleValue(node, rng);
      if (node.kind === "choice") {
        const option = node.options[v];
        if (isPlainObject(option)) {
          const sub: Record<string, unknown> = {};
          for (const [k, child] of Object.entries(option)) {
            resolve(child, `${key}/${v}/${k}`, sub, k);
          }
          target[name] = sub;
        } else {
          target[name] = clone(option);
        }
        return;
      }
      target[name] = v;
      return;
    }
    if (isPlainObject(node)) {
      const sub: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(node)) {
        resolve(child, key ? `${key}/${k}` : k, sub, k);
      }
      target[name] = sub;
      return;
    }
    target[name] = clone(node);
  };
  const root: Record<string, unknown> = {};
  for (const [k, child] of Object.entries(space)) resolve(child, k, root, k);
  // sampleFrom may depend on other sampleFrom values: resolve in passes, as Ray does.
  for (let pass = 0; pass < 20 && deferred.length; pass++) {
    for (let i = 0; i < deferred.length; i++) {
      const d = deferred[i];
      let value: unknown;
      try {
        value = d.domain.fn(root as Config, rng);
      } catch (e) {
        if (pass < 19 && e instanceof TypeError) continue;
        throw new TypeError(
          `Search space parameter "${d.path}": sampleFrom threw: ${
            e instanceof Error ? e.message : e
          }`,
          { cause: e },
        );
      }
      assertSpaceValue(value, `Search space parameter "${d.path}" (sampleFrom result)`);
      d.target[d.key] = value;
      deferred.splice(i--, 1);
    }
  }
  return root as Config;
}

function clone<T>(v: T): T {
  return v === null || typeof v !== "object" ? v : structuredClone(v);
}

/**
 * The JSON form of a space as written in YAML (`{ type: loguniform, min, max }`), for
 * `experiment.json`. `sampleFrom` domains become `{ type: "sample_from" }` and cannot be restored.
 *
 * @example
 * ```ts
 * import { loguniform, spaceToJson } from "./space.ts";
 * console.log(spaceToJson({ lr: loguniform(1e-4, 1e-1) }));
 * ```
 */
export function spaceToJson(space: Space): JsonValue {
  const conv = (node: unknown): JsonValue => {
    if (isDomain(node)) {
      switch (node.kind) {
        case "float":
          return {
            type: node.type,
            min: node.min,
            max: node.max,
            ...(node.q ? { q: node.q } : {}),
          };
        case "int": {
          const exclusive = node.type === "randint" || node.type === "lograndint";
          return {
            type: node.type,
            min: node.min,
            max: exclusive ? node.max + 1 : node.max,
            ...(node.q !== 1 ? { q: node.q } : {}),
          };
        }
        case "normal":
          return {
            type: node.type,
            mean: node.mean,
            sd: node.sd,
            ...(node.q ? { q: node.q } : {}),
          };
        case "choice":
          return { type: "choice", options: node.options.map(conv) };
        case "grid":
          return { type: "grid", values: node.values.map(conv) };
        case "sample_from":
          return { type: "sample_from" };
      }
    }
    if (Array.isArray(node)) return node.map(conv);
    if (isPlainObject(node)) {
      const out: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(node)) out[k] = conv(v);
      return out;
    }
    return node as JsonValue;
  };
  return conv(space);
}

/** The keys each YAML `type:` takes (aliases map to the canonical name). */
const SPEC_KEYS: Record<string, { required: string[]; optional: string[] }> = {
  uniform: { required: ["min", "max"], optional: [] },
  loguniform: { required: ["min", "max"], optional: [] },
  quniform: { required: ["min", "max", "q"], optional: [] },
  qloguniform: { required: ["min", "max", "q"], optional: [] },
  randint: { required: ["min", "max"], optional: [] },
  qrandint: { required: ["min", "max"], optional: ["q"] },
  lograndint: { required: ["min", "max"], optional: [] },
  qlograndint: { required: ["min", "max"], optional: ["q"] },
  randn: { required: [], optional: ["mean", "sd"] },
  qrandn: { required: ["q"], optional: ["mean", "sd"] },
  choice: { required: ["options"], optional: [] },
  grid: { required: ["values"], optional: [] },
};

const KEY_ALIASES: Record<string, string> = {
  lower: "min",
  upper: "max",
  std: "sd",
  categories: "options",
};
const TYPE_ALIASES: Record<string, string> = { grid_search: "grid" };

/** The YAML `type:` names a parameter may have. */
export const DOMAIN_TYPES: readonly string[] = Object.keys(SPEC_KEYS);

/**
 * An error in a space spec, with the path of the offending key so YAML can point at it.
 *
 * @example
 * ```ts
 * import { SpaceSpecError } from "./space.ts";
 * const e = new SpaceSpecError("bad", ["lr", "min"]);
 * console.log(e.path); // ["lr", "min"]
 * ```
 */
export class SpaceSpecError extends TypeError {
  /** Path (inside the space) of the key at fault. */
  readonly path: readonly (string | number)[];
  /** Creates the error. */
  constructor(message: string, path: readonly (string | number)[], options?: ErrorOptions) {
    super(message, options);
    this.name = "SpaceSpecError";
    this.path = path;
  }
}

/**
 * Builds a space from its JSON/YAML form (`{ lr: { type: loguniform, min: 1e-4, max: 0.1 } }`).
 * Objects with a `type` key are domains; other objects nest; choice options that are objects
 * without `type` are sub-spaces. Ray/itwinai spellings `lower`/`upper`, `std`, `grid_search`
 * are accepted.
 *
 * @throws {SpaceSpecError} naming the parameter, the rule and the value.
 * @example
 * ```ts
 * import { spaceFromJson } from "./space.ts";
 * const space = spaceFromJson({ lr: { type: "loguniform", min: 1e-4, max: 0.1 }, epochs: 3 });
 * ```
 */
export function spaceFromJson(json: unknown): Space {
  if (!isPlainObject(json)) {
    throw new SpaceSpecError(`"space" must be a mapping of parameters, got ${fmt(json)}`, []);
  }
  const conv = (node: unknown, path: (string | number)[]): unknown => {
    if (Array.isArray(node)) return node.map((v, i) => conv(v, [...path, i]));
    if (!isPlainObject(node)) return node;
    if (!("type" in node)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = conv(v, [...path, k]);
      return out;
    }
    const name = path.join(".");
    const rawType = node.type;
    const type = typeof rawType === "string" ? TYPE_ALIASES[rawType] ?? rawType : rawType;
    if (typeof type !== "string" || !(type in SPEC_KEYS)) {
      throw new SpaceSpecError(
        `Parameter "${name}": unknown type ${fmt(rawType)}; expected one of ${
          DOMAIN_TYPES.join(", ")
        }` +
          suggest(String(rawType), DOMAIN_TYPES),
        [...path, "type"],
      );
    }
    const spec = SPEC_KEYS[type];
    const args: Record<string, unknown> = {};
    for (const [rawKey, v] of Object.entries(node)) {
      if (rawKey === "type") continue;
      const k = KEY_ALIASES[rawKey] ?? rawKey;
      if (!spec.required.includes(k) && !spec.optional.includes(k)) {
        const allowed = [...spec.required, ...spec.optional];
        throw new SpaceSpecError(
          `Parameter "${name}": unknown key "${rawKey}" for type ${type}; expected ${
            allowed.join(", ")
          }` +
            suggest(rawKey, allowed),
          [...path, rawKey],
        );
      }
      args[k] = k === "options" || k === "values"
        ? (Array.isArray(v) ? v.map((o, i) => conv(o, [...path, rawKey, i])) : v)
        : v;
    }
    for (const k of spec.required) {
      if (!(k in args)) {
        throw new SpaceSpecError(`Parameter "${name}": type ${type} needs "${k}"`, path);
      }
    }
    try {
      switch (type) {
        case "uniform":
          return uniform(args.min as number, args.max as number);
        case "loguniform":
          return loguniform(args.min as number, args.max as number);
        case "quniform":
          return quniform(args.min as number, args.max as number, args.q as number);
        case "qloguniform":
          return qloguniform(args.min as number, args.max as number, args.q as number);
        case "randint":
          return randint(args.min as number, args.max as number);
        case "qrandint":
          return qrandint(args.min as number, args.max as number, (args.q ?? 1) as number);
        case "lograndint":
          return lograndint(args.min as number, args.max as number);
        case "qlograndint":
          return qlograndint(args.min as number, args.max as number, (args.q ?? 1) as number);
        case "randn":
          return randn((args.mean ?? 0) as number, (args.sd ?? 1) as number);
        case "qrandn":
          return randn((args.mean ?? 0) as number, (args.sd ?? 1) as number, args.q as number);
        case "choice":
          return choice(args.options as unknown[]);
        default:
          return grid(args.values as unknown[]);
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const badKey = /"(min|max|q|sd|mean|options|values)"/.exec(msg)?.[1];
      const rawKey = badKey
        ? Object.keys(node).find((k) => (KEY_ALIASES[k] ?? k) === badKey)
        : undefined;
      throw new SpaceSpecError(`Parameter "${name}": ${msg}`, rawKey ? [...path, rawKey] : path, {
        cause: e,
      });
    }
  };
  return conv(json, []) as Space;
}
