/**
 * The JSON (YAML) form of a space: `{ type: loguniform, min, max }` to domains and back.
 *
 * @module
 */

import { suggest } from "../options.ts";
import type { JsonValue } from "../trial.ts";
import {
  choice,
  fmt,
  grid,
  isDomain,
  lograndint,
  loguniform,
  qlograndint,
  qloguniform,
  qrandint,
  quniform,
  randint,
  randn,
  type Space,
  uniform,
} from "./domains.ts";
import { isPlainObject } from "./walk.ts";

/**
 * The JSON form of a space as written in YAML (`{ type: loguniform, min, max }`), for
 * `experiment.json`. `sampleFrom` domains become `{ type: "sample_from" }` and cannot be restored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loguniform, spaceToJson } from "../space.ts";
 *
 * assert.deepEqual(spaceToJson({ lr: loguniform(1e-4, 1e-1) }), {
 *   lr: { type: "loguniform", min: 1e-4, max: 1e-1 },
 * });
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
 * import assert from "node:assert/strict";
 * import { SpaceSpecError } from "../space.ts";
 *
 * const e = new SpaceSpecError("bad", ["lr", "min"]);
 * assert.deepEqual(e.path, ["lr", "min"]);
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
 * import { spaceFromJson } from "../space.ts";
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
