/**
 * The part every model-based searcher (GP, CMA-ES) shares: grids expanded as Ray does, preset
 * points, random start-up trials, running trials and their last results, the `numSamples`
 * limit, and snapshots; the model only suggests and learns assignments.
 *
 * @module
 */

import { requireSingleObjective, type Searcher, type SearcherContext } from "../../core/plugin.ts";
import type { Config, JsonValue, TrialResult } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import { parameters, type ParamInfo, type Space } from "../../core/space.ts";
import {
  addGridPoint,
  buildConfig,
  type GridPlan,
  gridPlan,
  presetAssignment,
  sampleAssignment,
  stateObject,
} from "./_assignment.ts";

/** An assignment: parameter key → value (numbers; option indices for choices; grid values). */
export type Assignment = Map<string, unknown>;

/** The algorithm inside a {@linkcode modelSearcher}. */
export interface SearchModel {
  /**
   * Completes `fixed` (grid and preset values) into an assignment of every active drawable
   * parameter; `running` are the assignments of the trials still running.
   */
  suggest(
    rng: Rng,
    fixed: ReadonlyMap<string, unknown>,
    running: readonly Assignment[],
    trialId: string,
  ): Assignment;
  /** Learns a finished trial (`loss` is minimised; Infinity for a failed metric). */
  observe(
    a: ReadonlyMap<string, unknown>,
    loss: number,
    iteration: number,
    stopped: boolean,
    trialId: string,
    rng: Rng,
  ): void;
  /** Whether the model wants to suggest yet (before that, trials are random). */
  ready(): boolean;
  /** The model's state as JSON. */
  snapshot(): JsonValue;
  /** Restores {@linkcode SearchModel.snapshot}; throws TypeError on anything else. */
  restore(state: JsonValue): void;
}

/** What a {@linkcode modelSearcher} needs. */
export interface ModelSearcherSpec {
  /** The searcher's name (`"gp"`, `"cmaes"`). */
  readonly name: string;
  /** The factory's name, for messages. */
  readonly factory: string;
  /** Preset configs to try first. */
  readonly points: readonly Config[];
  /** Fixed seed, else the experiment's. */
  readonly seed?: number;
  /** Builds the model for a space (called by setup). */
  readonly makeModel: (params: readonly ParamInfo[], ctx: SearcherContext) => SearchModel;
}

interface Running {
  a: Assignment;
  lastIter?: number;
  lastValue?: number;
}

const toJson = (a: ReadonlyMap<string, unknown>): JsonValue =>
  [...a].map(([k, v]) => [k, v as JsonValue]);

const fromJson = (v: JsonValue): Assignment => new Map(v as [string, unknown][]);

/** A searcher around a model: see the module doc. */
export function modelSearcher(spec: ModelSearcherSpec): Searcher {
  const F = spec.factory;
  let space: Space | undefined;
  let params: ParamInfo[] = [];
  let model: SearchModel | undefined;
  let presets: Map<string, unknown>[] = [];
  let plan: GridPlan = { keys: [], values: [], size: 1 };
  let limit = -1;
  let metric = "loss";
  let sign = 1;
  let rng = new Rng(0);
  let count = 0;
  const running = new Map<string, Running>();
  let restored: Record<string, JsonValue> | undefined;

  const apply = (s: Record<string, JsonValue>): void => {
    rng.restore(s.rng as number[]);
    count = s.count as number;
    running.clear();
    for (const r of s.running as JsonValue[][]) {
      const [id, a, it, lv] = r as [string, JsonValue, number | null, number | null];
      running.set(id, {
        a: fromJson(a),
        ...(it !== null ? { lastIter: it } : {}),
        ...(lv !== null ? { lastValue: lv } : {}),
      });
    }
    model!.restore(s.model);
  };

  return {
    name: spec.name,
    setup(ctx: SearcherContext): void {
      requireSingleObjective(F, ctx);
      space = ctx.space;
      params = parameters(space);
      plan = gridPlan(params);
      presets = spec.points.map((pt, i) =>
        presetAssignment(ctx.space, pt, `${F}: "pointsToEvaluate[${i}]"`)
      );
      limit = ctx.numSamples < 0 ? -1 : ctx.numSamples * plan.size;
      if (limit >= 0) limit = Math.max(limit, spec.points.length);
      metric = ctx.metric;
      sign = ctx.mode === "max" ? -1 : 1;
      rng = new Rng(spec.seed ?? ctx.seed);
      count = 0;
      running.clear();
      model = spec.makeModel(params, ctx);
      if (restored) apply(restored);
      restored = undefined;
    },
    suggest(trialId: string): Config | "done" {
      if (!space || !model) throw new Error(`${F}: suggest() was called before setup()`);
      if (limit >= 0 && count >= limit) return "done";
      const i = count++;
      const fixed = new Map<string, unknown>();
      addGridPoint(plan, i % plan.size, fixed);
      if (i < presets.length) { for (const [k, v] of presets[i]) fixed.set(k, v); }
      const a = i < presets.length || !model.ready()
        ? sampleAssignment(params, rng, fixed)
        : model.suggest(rng, fixed, [...running.values()].map((r) => r.a), trialId);
      running.set(trialId, { a });
      return buildConfig(space, rng, a, i < spec.points.length ? spec.points[i] : undefined);
    },
    onReport(trialId: string, result: TrialResult): void {
      const t = running.get(trialId);
      if (!t) return;
      const v = result[metric];
      t.lastIter = result.training_iteration;
      t.lastValue = typeof v === "number" ? v : NaN;
    },
    onComplete(
      trialId: string,
      final: TrialResult | undefined,
      info?: { readonly error?: boolean; readonly stopped?: boolean },
    ): void {
      const t = running.get(trialId);
      if (!t || !model) return;
      running.delete(trialId);
      if (info?.error) return;
      let value: unknown = t.lastValue, iter = t.lastIter;
      if (final) {
        value = final[metric];
        iter = final.training_iteration;
      }
      if (iter === undefined) return; // never reported: nothing to learn
      const l = typeof value === "number" && Number.isFinite(value) ? sign * value : Infinity;
      model.observe(
        t.a,
        l,
        typeof iter === "number" ? iter : 1,
        info?.stopped === true,
        trialId,
        rng,
      );
    },
    snapshot(): JsonValue {
      const list: JsonValue[] = [];
      for (const [id, t] of running) {
        list.push([id, toJson(t.a), t.lastIter ?? null, t.lastValue ?? null]);
      }
      return {
        version: 1,
        count,
        rng: rng.snapshot(),
        running: list,
        model: model ? model.snapshot() : null,
      };
    },
    restore(state: JsonValue): void {
      const s = stateObject(F, state);
      if (
        s.version !== 1 || !Array.isArray(s.rng) || !Array.isArray(s.running) ||
        typeof s.count !== "number"
      ) {
        throw new TypeError(`${F}: restore() expects the object snapshot() returned (version 1)`);
      }
      if (space) apply(s);
      else restored = s;
    },
  };
}

/** Serialises an assignment for a model snapshot. */
export const assignmentToJson: (a: ReadonlyMap<string, unknown>) => JsonValue = toJson;
/** Reads an assignment of {@linkcode assignmentToJson}. */
export const assignmentFromJson: (v: JsonValue) => Assignment = fromJson;
