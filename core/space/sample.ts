/**
 * Sampling: one value of a domain, and a whole config from a space.
 *
 * @module
 */

import type { Config } from "../trial.ts";
import type { Rng } from "../random.ts";
import {
  assertSpaceValue,
  type ChoiceDomain,
  type FloatDomain,
  type IntDomain,
  isDomain,
  type NormalDomain,
  type SampleFromDomain,
  type Space,
} from "./domains.ts";
import { isPlainObject } from "./walk.ts";

/**
 * Samples one value of a number or choice domain (grid and sampleFrom are resolved by
 * {@linkcode sampleConfig}). For a choice it returns the option index.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { loguniform, sampleValue } from "../space.ts";
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
 * import assert from "node:assert/strict";
 * import { quantize } from "../space.ts";
 *
 * assert.equal(quantize(0.3049, 0.01, 0, 1), 0.3);
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
 * import { Rng } from "../random.ts";
 * import { sampleConfig, uniform } from "../space.ts";
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
