/**
 * Grid search: the grid dimensions of a space, its size and its points.
 *
 * @module
 */

import type { GridDomain, Space } from "./domains.ts";
import { parameters, type ParamPath } from "./walk.ts";

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
 * import assert from "node:assert/strict";
 * import { grid, gridDimensions } from "../space.ts";
 *
 * assert.equal(gridDimensions({ a: grid([1, 2]), b: { c: grid(["x"]) } }).length, 2);
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
 * import assert from "node:assert/strict";
 * import { grid, gridSize } from "../space.ts";
 *
 * assert.equal(gridSize({ a: grid([1, 2]), b: grid([1, 2, 3]) }), 6);
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
 * import assert from "node:assert/strict";
 * import { grid, gridPoint } from "../space.ts";
 *
 * const space = { a: grid([1, 2]), b: grid(["x", "y"]) };
 * assert.deepEqual(gridPoint(space, 1), new Map<string, unknown>([["a", 2], ["b", "x"]]));
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
