/**
 * One way to check an options object, used by every plugin factory and by `Tuner`: unknown
 * keys are refused with a "did you mean", values are read by typed readers, and every error is
 * an {@linkcode OptionError} (or {@linkcode OptionRangeError}) that carries the function and
 * the option key, so that the experiment-file loader can point at the YAML line of that key
 * without reading the message text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKeys, numberOption, OptionError } from "./options.ts";
 *
 * function myScheduler(options?: { patience?: number }) {
 *   const o = checkKeys("myScheduler", options, ["patience"]);
 *   return { patience: numberOption("myScheduler", o, "patience", 3, { min: 1, integer: true }) };
 * }
 * assert.equal(myScheduler({ patience: 5 }).patience, 5);
 * assert.throws(
 *   () => myScheduler({ patince: 5 } as never),
 *   (e) => e instanceof OptionError && e.key === "patince" && /did you mean "patience"/.test(e.message),
 * );
 * ```
 *
 * @module
 */

/**
 * A bad option: an unknown key or a value of the wrong type. A `TypeError` (and named so), so
 * code that catches or matches `TypeError` keeps working; `fn` names the function that was called and `key` the
 * option (a dotted path for nested options, e.g. `"checkpoint.numToKeep"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OptionError } from "./options.ts";
 *
 * const e = new OptionError("ashaScheduler", "maxT", 'ashaScheduler: "maxT" must be a number');
 * assert.ok(e instanceof TypeError);
 * assert.equal(e.key, "maxT");
 * ```
 */
export class OptionError extends TypeError {
  /** The function whose options were checked, e.g. `"ashaScheduler"` or `"Tuner"`. */
  readonly fn: string;
  /** The option key, camelCase as the function takes it; dotted for nested options. */
  readonly key: string;

  /**
   * Makes the error.
   *
   * @param fn The function whose options were checked.
   * @param key The option key.
   * @param message The whole message, starting with `fn`.
   * @param options `cause`, when wrapping another error.
   */
  constructor(fn: string, key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.fn = fn;
    this.key = key;
  }
}

/**
 * An option value of the right type but out of range (`RangeError`), with the same `fn` and
 * `key` as {@linkcode OptionError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OptionRangeError } from "./options.ts";
 *
 * const e = new OptionRangeError("Tuner", "numSamples", "Tuner: numSamples must be > 0");
 * assert.ok(e instanceof RangeError);
 * assert.equal(e.fn, "Tuner");
 * ```
 */
export class OptionRangeError extends RangeError {
  /** The function whose options were checked. */
  readonly fn: string;
  /** The option key, camelCase as the function takes it; dotted for nested options. */
  readonly key: string;

  /**
   * Makes the error.
   *
   * @param fn The function whose options were checked.
   * @param key The option key.
   * @param message The whole message, starting with `fn`.
   * @param options `cause`, when wrapping another error.
   */
  constructor(fn: string, key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.fn = fn;
    this.key = key;
  }
}

/**
 * Whether `e` is an {@linkcode OptionError} or an {@linkcode OptionRangeError}.
 *
 * @param e Anything caught.
 * @returns True when `e` carries `fn` and `key`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isOptionError, OptionError } from "./options.ts";
 *
 * assert.ok(isOptionError(new OptionError("f", "k", "f: bad k")));
 * assert.ok(!isOptionError(new TypeError("bad")));
 * ```
 */
export function isOptionError(e: unknown): e is OptionError | OptionRangeError {
  return e instanceof OptionError || e instanceof OptionRangeError;
}

/**
 * A ` (did you mean "x"?)` suffix when a close name exists, else an empty string.
 *
 * @param input The name that was given.
 * @param candidates The names that exist.
 * @returns The suffix, with a leading space, or `""`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suggest } from "./options.ts";
 *
 * assert.equal(suggest("num_sample", ["num_samples", "name"]), ' (did you mean "num_samples"?)');
 * assert.equal(suggest("zzz", ["num_samples"]), "");
 * ```
 */
export function suggest(input: string, candidates: readonly string[]): string {
  let best = "", bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(input.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best && bestD <= Math.max(2, Math.floor(input.length / 3))
    ? ` (did you mean "${best}"?)`
    : "";
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * A value shown in an error message: strings quoted, functions and `undefined` named.
 *
 * @param v Any value.
 * @returns A short text for an error message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { showValue } from "./options.ts";
 *
 * assert.equal(showValue("x"), '"x"');
 * assert.equal(showValue([1, 2]), "[1,2]");
 * ```
 */
export function showValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "function") return "a function";
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** How {@linkcode checkKeys} words its refusal. */
export interface CheckKeysOptions {
  /**
   * Append `; expected one of a, b, c` to an unknown-key message.
   * @default {true}
   */
  list?: boolean;
  /**
   * A prefix of the key, for nested options: with `"checkpoint"`, an unknown `foo` is reported
   * (and carried in {@linkcode OptionError.key}) as `"checkpoint.foo"`.
   */
  prefix?: string;
  /**
   * What the keys are called in the message.
   * @default {"option"}
   */
  what?: string;
}

/**
 * Checks that `options` is `undefined` or a plain object whose keys are all in `allowed`, and
 * returns it as a record (`{}` for `undefined`).
 *
 * @param fn The function whose options these are; every message starts with it.
 * @param options What the caller gave.
 * @param allowed The known keys.
 * @param how How to word the refusal.
 * @returns The options as a record.
 * @throws {OptionError} when `options` is not an object or holds an unknown key (with a "did you
 * mean" and, unless `list: false`, the known keys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKeys } from "./options.ts";
 *
 * assert.deepEqual(checkKeys("f", undefined, ["a"]), {});
 * assert.throws(() => checkKeys("f", { seeds: 1 }, ["seed", "metric"]), {
 *   message: 'f: unknown option "seeds" (did you mean "seed"?); expected one of seed, metric',
 * });
 * ```
 */
export function checkKeys(
  fn: string,
  options: unknown,
  allowed: readonly string[],
  how: CheckKeysOptions = {},
): Record<string, unknown> {
  const at = how.prefix ? `${how.prefix}.` : "";
  if (options === undefined) return {};
  if (!isRecord(options)) {
    throw new OptionError(
      fn,
      how.prefix ?? "",
      `${fn}: ${how.prefix ? `"${how.prefix}"` : "options"} must be an object, got ${
        showValue(options)
      }`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new OptionError(
        fn,
        at + key,
        `${fn}: unknown ${how.what ?? "option"} "${at}${key}"${suggest(key, allowed)}${
          how.list === false ? "" : `; expected one of ${allowed.join(", ")}`
        }`,
      );
    }
  }
  return options;
}

/** Bounds for {@linkcode numberOption}. */
export interface NumberRule {
  /** The smallest allowed value. */
  min?: number;
  /** The value must be greater than this. */
  minExclusive?: number;
  /** The largest allowed value. */
  max?: number;
  /** The value must be an integer. */
  integer?: boolean;
}

/**
 * Reads a finite number option, with optional bounds; `undefined` gives `fallback`.
 *
 * @param fn The function whose option this is.
 * @param options The options record.
 * @param key The option key.
 * @param fallback The default.
 * @param rule Bounds.
 * @returns The value.
 * @throws {OptionError} when the value is not a finite number.
 * @throws {OptionRangeError} when it breaks `rule`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberOption } from "./options.ts";
 *
 * assert.equal(numberOption("f", {}, "maxT", 100), 100);
 * assert.throws(() => numberOption("f", { maxT: 0 }, "maxT", 100, { min: 1 }), RangeError);
 * ```
 */
export function numberOption(
  fn: string,
  options: Record<string, unknown>,
  key: string,
  fallback: number,
  rule: NumberRule = {},
): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new OptionError(fn, key, `${fn}: "${key}" must be a finite number, got ${showValue(v)}`);
  }
  const range = (m: string) =>
    new OptionRangeError(fn, key, `${fn}: "${key}" must be ${m}, got ${v}`);
  if (rule.integer && !Number.isInteger(v)) throw range("an integer");
  if (rule.minExclusive !== undefined && !(v > rule.minExclusive)) {
    throw range(`> ${rule.minExclusive}`);
  }
  if (rule.min !== undefined && v < rule.min) throw range(`>= ${rule.min}`);
  if (rule.max !== undefined && v > rule.max) throw range(`<= ${rule.max}`);
  return v;
}

/**
 * Reads a boolean option; `undefined` gives `fallback`.
 *
 * @param fn The function whose option this is.
 * @param options The options record.
 * @param key The option key.
 * @param fallback The default.
 * @returns The value.
 * @throws {OptionError} when the value is not a boolean.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { booleanOption } from "./options.ts";
 *
 * assert.equal(booleanOption("f", { on: true }, "on", false), true);
 * assert.throws(() => booleanOption("f", { on: "yes" }, "on", false), /"on" must be true or false/);
 * ```
 */
export function booleanOption(
  fn: string,
  options: Record<string, unknown>,
  key: string,
  fallback: boolean,
): boolean {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") {
    throw new OptionError(fn, key, `${fn}: "${key}" must be true or false, got ${showValue(v)}`);
  }
  return v;
}

/**
 * Reads a non-empty string option; `undefined` gives `fallback`.
 *
 * @param fn The function whose option this is.
 * @param options The options record.
 * @param key The option key.
 * @param fallback The default.
 * @returns The value.
 * @throws {OptionError} when the value is not a non-empty string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stringOption } from "./options.ts";
 *
 * assert.equal(stringOption("f", {}, "timeAttr", "training_iteration"), "training_iteration");
 * assert.throws(() => stringOption("f", { timeAttr: "" }, "timeAttr", "x"), TypeError);
 * ```
 */
export function stringOption(
  fn: string,
  options: Record<string, unknown>,
  key: string,
  fallback: string,
): string {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !v) {
    throw new OptionError(
      fn,
      key,
      `${fn}: "${key}" must be a non-empty string, got ${showValue(v)}`,
    );
  }
  return v;
}

/**
 * Reads an option that is one of a few strings; `undefined` gives `fallback`.
 *
 * @param fn The function whose option this is.
 * @param options The options record.
 * @param key The option key.
 * @param values The allowed strings.
 * @param fallback The default.
 * @param hint Text appended to the message, e.g. how to choose.
 * @returns The value.
 * @throws {OptionRangeError} when the value is not one of `values`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { enumOption } from "./options.ts";
 *
 * assert.equal(enumOption("f", { mode: "max" }, "mode", ["min", "max"], "min"), "max");
 * assert.throws(() => enumOption("f", { mode: "up" }, "mode", ["min", "max"], "min"), {
 *   message: 'f: "mode" must be "min" or "max", got "up"',
 * });
 * ```
 */
export function enumOption<T extends string>(
  fn: string,
  options: Record<string, unknown>,
  key: string,
  values: readonly T[],
  fallback: T,
  hint = "",
): T {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !values.includes(v as T)) {
    throw new OptionRangeError(
      fn,
      key,
      `${fn}: "${key}" must be ${values.map((x) => `"${x}"`).join(" or ")}, got ${
        showValue(v)
      }${hint}`,
    );
  }
  return v as T;
}
