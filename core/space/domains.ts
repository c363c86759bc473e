/**
 * The domains a hyperparameter can take (`uniform`, `loguniform`, `choice`, `grid`, ...), their
 * brand and the typed config they give.
 *
 * @module
 */

import type { Config } from "../trial.ts";
import type { Rng } from "../random.ts";

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
 * import { choice, loguniform, type Space } from "../space.ts";
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
 * import { choice, loguniform, type ConfigOf } from "../space.ts";
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
 * import assert from "node:assert/strict";
 * import { isDomain, uniform } from "../space.ts";
 *
 * assert.equal(isDomain(uniform(0, 1)), true);
 * assert.equal(isDomain(3), false);
 * ```
 */
export function isDomain(value: unknown): value is Domain {
  return typeof value === "object" && value !== null && DOMAIN in value;
}

function make<D extends Domain>(fields: Omit<D, typeof DOMAIN>): D {
  return Object.freeze({ [DOMAIN]: true, ...fields }) as unknown as D;
}

/** A value as shown in messages (internal: not re-exported by space.ts). */
export function fmt(v: unknown): string {
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
 * import { uniform } from "../space.ts";
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
 * import { loguniform } from "../space.ts";
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
 * import { quniform } from "../space.ts";
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
 * import { qloguniform } from "../space.ts";
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
 * import { randint } from "../space.ts";
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
 * import { qrandint } from "../space.ts";
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
 * import { lograndint } from "../space.ts";
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
 * import { qlograndint } from "../space.ts";
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
 * import { randn } from "../space.ts";
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
 * import { choice, loguniform, uniform } from "../space.ts";
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
 * import { grid } from "../space.ts";
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
 * import { randint, sampleFrom } from "../space.ts";
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

/** Throws when `v` cannot be saved as JSON (internal: not re-exported by space.ts). */
export function assertSpaceValue(v: unknown, where: string): void {
  if (
    v === undefined || typeof v === "function" || typeof v === "symbol" || typeof v === "bigint"
  ) {
    throw new TypeError(`${where}: ${typeof v} is not a JSON value`);
  }
  if (typeof v === "number" && !Number.isFinite(v)) {
    throw new TypeError(`${where}: ${v} is not a JSON value (NaN/Infinity cannot be saved)`);
  }
}
