/**
 * Walking a space: its tunable parameters (with the conditions of `choice` branches) and
 * its validation.
 *
 * @module
 */

import { type Domain, fmt, isDomain, type Space } from "./domains.ts";

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
 * import assert from "node:assert/strict";
 * import { choice, parameters, uniform } from "../space.ts";
 *
 * const ps = parameters({ opt: choice([{ lr: uniform(0, 1) }, { wd: uniform(0, 1) }]) });
 * assert.deepEqual(ps.map((p) => p.key), ["opt", "opt/0/lr", "opt/1/wd"]);
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
 * import assert from "node:assert/strict";
 * import { hasDomains, uniform } from "../space.ts";
 *
 * assert.equal(hasDomains({ a: { b: uniform(0, 1) } }), true);
 * assert.equal(hasDomains({ a: 1 }), false);
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
 * import { uniform, validateSpace } from "../space.ts";
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

/**
 * Whether a value is a plain object (not an array, a domain, or a class instance).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPlainObject } from "../space.ts";
 *
 * assert.equal(isPlainObject({}), true);
 * assert.equal(isPlainObject([]), false);
 * ```
 */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || isDomain(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
