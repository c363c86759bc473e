/**
 * A wrapper that runs each suggested config several times and tells the searcher the average
 * (Ray's `Repeater`), for noisy objectives.
 *
 * @module
 */

import {
  checkPluginShape,
  requireSingleObjective,
  type Searcher,
  type SearcherContext,
} from "../../core/plugin.ts";
import type { Config, JsonValue, TrialResult } from "../../core/trial.ts";
import { checkOptionKeys, stateObject } from "./_assignment.ts";

/** Options of {@linkcode repeater}. */
export interface RepeaterOptions {
  /**
   * Add `__trial_index__` (0 … repeat − 1) to each repeated config, so the trainable can, for
   * example, pick a different data split or seed per repetition.
   * @default true
   */
  readonly setIndex?: boolean;
}

/** The key `setIndex` adds to configs. */
export const TRIAL_INDEX_KEY = "__trial_index__";

type Info = { readonly error?: boolean; readonly stopped?: boolean };

interface Group {
  config: Config;
  issued: string[];
  /** Per finished trial: its metric value (null: failed or missing). */
  scores: Record<string, number | null>;
  /** The last result of a finished trial of the group, as a template for the averaged one. */
  template: TrialResult | null;
  stopped: boolean;
}

/**
 * Wraps a searcher so that each config it suggests runs `repeat` times (consecutive trials); once
 * all repetitions have finished, the searcher is told the mean of their metric (failed ones and
 * ones without the metric left out, as `nanmean`) under the first repetition's trial id. The
 * searcher is set up with `ceil(numSamples / repeat)` samples; choose `numSamples` as a multiple of
 * `repeat`.
 *
 * @param searcher the searcher to wrap.
 * @param repeat how many times to run each config (≥ 1).
 * @param options whether to add `__trial_index__` to configs.
 * @returns a searcher named `repeater(<inner name>)`.
 * @throws {TypeError} when `searcher` is not a searcher or an option has the wrong type.
 * @throws {RangeError} when `repeat` is not an integer ≥ 1.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { repeater } from "./repeater.ts";
 * import { tpeSearcher } from "./tpe/mod.ts";
 * const searcher = repeater(tpeSearcher(), 3);
 * assert.equal(searcher.name, "repeater(tpe)");
 * ```
 */
export function repeater(
  searcher: Searcher,
  repeat: number,
  options: RepeaterOptions = {},
): Searcher {
  const F = "repeater";
  const problem = checkPluginShape("searcher", searcher);
  if (problem) throw new TypeError(`${F}: ${problem}`);
  if (typeof repeat !== "number" || !Number.isInteger(repeat) || repeat < 1) {
    throw new RangeError(`${F}: "repeat" must be an integer >= 1, got ${JSON.stringify(repeat)}`);
  }
  const o = checkOptionKeys(F, options, ["setIndex"]);
  if (o.setIndex !== undefined && typeof o.setIndex !== "boolean") {
    throw new TypeError(`${F}: "setIndex" must be a boolean, got ${JSON.stringify(o.setIndex)}`);
  }
  const setIndex = o.setIndex !== false;
  let metric = "loss";
  const groups = new Map<string, Group>();
  const groupOf = new Map<string, string>();
  let current: string | undefined;

  const withIndex = (config: Config, i: number): Config =>
    setIndex ? { ...structuredClone(config), [TRIAL_INDEX_KEY]: i } : structuredClone(config);

  const finish = (primary: string, g: Group): void => {
    for (const id of g.issued) groupOf.delete(id);
    groups.delete(primary);
    if (current === primary) current = undefined;
    const scores = Object.values(g.scores).filter((v): v is number => v !== null);
    if (scores.length === 0 || !g.template) {
      searcher.onComplete?.(primary, undefined, { error: true });
      return;
    }
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    const result: TrialResult = { ...g.template, [metric]: mean, trial_id: primary };
    searcher.onComplete?.(primary, result, g.stopped ? { stopped: true } : {});
  };

  return {
    name: `repeater(${searcher.name})`,
    setup(ctx: SearcherContext): void {
      requireSingleObjective("repeater", ctx);
      metric = ctx.metric;
      const n = ctx.numSamples < 0 ? -1 : Math.ceil(ctx.numSamples / repeat);
      searcher.setup?.({ ...ctx, numSamples: n });
    },
    suggest(trialId: string): Config | "wait" | "done" {
      const g = current === undefined ? undefined : groups.get(current);
      if (g && g.issued.length < repeat) {
        g.issued.push(trialId);
        groupOf.set(trialId, current!);
        return withIndex(g.config, g.issued.length - 1);
      }
      const r = searcher.suggest(trialId);
      if (r === "wait" || r === "done") return r;
      groups.set(trialId, {
        config: structuredClone(r),
        issued: [trialId],
        scores: {},
        template: null,
        stopped: false,
      });
      groupOf.set(trialId, trialId);
      current = trialId;
      return withIndex(r, 0);
    },
    onComplete(trialId: string, final: TrialResult | undefined, info?: Info): void {
      const primary = groupOf.get(trialId);
      if (primary === undefined) return;
      const g = groups.get(primary)!;
      const v = final?.[metric];
      const ok = !info?.error && typeof v === "number" && Number.isFinite(v);
      g.scores[trialId] = ok ? v as number : null;
      if (ok) g.template = final!;
      if (info?.stopped) g.stopped = true;
      if (Object.keys(g.scores).length >= repeat) finish(primary, g);
    },
    snapshot(): JsonValue {
      return {
        groups: [...groups].map(([id, g]) => [id, g as unknown as JsonValue]),
        current: current ?? null,
        inner: searcher.snapshot?.() ?? null,
      };
    },
    restore(state: JsonValue): void {
      const s = stateObject(F, state);
      if (!Array.isArray(s.groups)) {
        throw new TypeError(`${F}: restore() expects { groups, current, inner } from snapshot()`);
      }
      groups.clear();
      groupOf.clear();
      for (const [id, g] of s.groups as [string, Group][]) {
        groups.set(id, structuredClone(g));
        for (const t of g.issued) groupOf.set(t, id);
      }
      current = typeof s.current === "string" ? s.current : undefined;
      if (s.inner !== null && s.inner !== undefined) searcher.restore?.(s.inner);
    },
  };
}
