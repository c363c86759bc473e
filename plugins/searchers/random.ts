/**
 * The default searcher: random sampling with grid expansion, as Ray Tune's
 * `BasicVariantGenerator`.
 *
 * @module
 */

import { recordSpec } from "../../core/plugin.ts";
import type { Searcher, SearcherContext } from "../../core/plugin.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import { parameters, type ParamInfo, type Space } from "../../core/space.ts";
import {
  addGridPoint,
  buildConfig,
  checkOptionKeys,
  checkPoints,
  checkSeed,
  type GridPlan,
  gridPlan,
  presetAssignment,
  sampleAssignment,
  stateObject,
} from "./_assignment.ts";

/** Options of {@linkcode randomSearcher}. */
export interface RandomSearcherOptions {
  /**
   * Configs to try first, in order; each uses one of the `numSamples` samples. A partial config
   * is completed by sampling; a preset grid parameter collapses that grid for its sample.
   * @default []
   */
  readonly pointsToEvaluate?: readonly Config[];
  /**
   * Sample the random parameters once per sample and hold them across that sample's grid,
   * instead of resampling them at every grid point (Ray's `constant_grid_search`).
   * @default false
   */
  readonly constantGridSearch?: boolean;
  /**
   * Seed of this searcher's random stream.
   * @default the experiment seed
   */
  readonly seed?: number;
}

const OPTION_KEYS = ["pointsToEvaluate", "constantGridSearch", "seed"] as const;

interface RandomState {
  sample: number;
  gridIndex: number;
  rng: number[];
  constant: [string, unknown][] | null;
}

/**
 * Random search with Ray's grid semantics: each of `numSamples` samples expands the full grid
 * (the first grid parameter, by path, cycles fastest) and the random parameters are drawn anew
 * for every grid point; after `numSamples × gridSize` configs it says `"done"` (`numSamples: -1`
 * never ends). Seeded and reproducible; snapshots to JSON for resume.
 *
 * @param options points to try first, constant grid search, seed.
 * @returns a searcher named `"random"`.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomSearcher } from "./random.ts";
 * import { grid, uniform } from "../../core/space.ts";
 * const s = randomSearcher({ pointsToEvaluate: [{ lr: 0.1 }] });
 * s.setup?.({ space: { lr: uniform(0, 1), layers: grid([1, 2]) }, metric: "loss", mode: "min", seed: 1, numSamples: 2 });
 * assert.deepEqual(s.suggest("t0"), { lr: 0.1, layers: 1 });
 * ```
 */
export function randomSearcher(options: RandomSearcherOptions = {}): Searcher {
  const o = checkOptionKeys("randomSearcher", options, OPTION_KEYS);
  const points = checkPoints("randomSearcher", o.pointsToEvaluate);
  if (o.constantGridSearch !== undefined && typeof o.constantGridSearch !== "boolean") {
    throw new TypeError(
      `randomSearcher: "constantGridSearch" must be a boolean, got ${
        JSON.stringify(o.constantGridSearch)
      }`,
    );
  }
  const constantGrid = o.constantGridSearch === true;
  const seedOption = checkSeed("randomSearcher", o.seed);

  let space: Space | undefined;
  let params: ParamInfo[] = [];
  let presets: Map<string, unknown>[] = [];
  let samples = 0; // -1: unlimited
  let rng = new Rng(0);
  let sample = 0;
  let gridIndex = 0;
  let plan: GridPlan | undefined; // of the current sample
  let constant: Map<string, unknown> | null = null;
  let pending: RandomState | undefined;

  const planOf = (s: number): GridPlan =>
    gridPlan(params, s < presets.length ? presets[s] : undefined);

  const apply = (st: RandomState): void => {
    sample = st.sample;
    gridIndex = st.gridIndex;
    rng.restore(st.rng);
    constant = st.constant ? new Map(st.constant) : null;
    plan = undefined;
  };

  return recordSpec("random", options, {
    name: "random",
    multiObjective: true,
    setup(ctx: SearcherContext): void {
      space = ctx.space;
      params = parameters(space);
      presets = points.map((p, i) =>
        presetAssignment(ctx.space, p, `randomSearcher: "pointsToEvaluate[${i}]"`)
      );
      gridPlan(params); // throws early on a grid inside a choice branch
      samples = ctx.numSamples < 0 ? -1 : Math.max(ctx.numSamples, points.length);
      rng = new Rng(seedOption ?? ctx.seed);
      sample = 0;
      gridIndex = 0;
      plan = undefined;
      constant = null;
      if (pending) apply(pending);
      pending = undefined;
    },
    suggest(): Config | "done" {
      if (!space) throw new Error("randomSearcher: suggest() was called before setup()");
      if (samples >= 0 && sample >= samples) return "done";
      plan ??= planOf(sample);
      const preset = sample < presets.length ? presets[sample] : new Map<string, unknown>();
      if (gridIndex === 0 && constantGrid) constant = sampleAssignment(params, rng, preset);
      const a = new Map(constantGrid && constant ? constant : preset);
      addGridPoint(plan, gridIndex, a);
      const full = constantGrid ? a : sampleAssignment(params, rng, a);
      const config = buildConfig(
        space,
        rng,
        full,
        sample < points.length ? points[sample] : undefined,
      );
      if (++gridIndex >= plan.size) {
        gridIndex = 0;
        sample++;
        plan = undefined;
        constant = null;
      }
      return config;
    },
    snapshot(): JsonValue {
      const st: RandomState = {
        sample,
        gridIndex,
        rng: rng.snapshot(),
        constant: constant ? [...constant] : null,
      };
      return st as unknown as JsonValue;
    },
    restore(state: JsonValue): void {
      const s = stateObject("randomSearcher", state);
      if (
        typeof s.sample !== "number" || typeof s.gridIndex !== "number" || !Array.isArray(s.rng)
      ) {
        throw new TypeError(
          "randomSearcher: restore() expects { sample, gridIndex, rng, constant } from snapshot()",
        );
      }
      const st = s as unknown as RandomState;
      if (space) apply(st);
      else pending = st;
    },
  });
}
