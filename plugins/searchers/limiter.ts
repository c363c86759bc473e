/**
 * A wrapper that caps how many of a searcher's trials run at once (Ray's `ConcurrencyLimiter`).
 *
 * @module
 */

import { checkPluginShape, type Searcher, type SearcherContext } from "../../core/plugin.ts";
import type { Config, JsonValue, TrialResult } from "../../core/trial.ts";
import { checkOptionKeys, stateObject } from "./_assignment.ts";

/** Options of {@linkcode concurrencyLimiter}. */
export interface ConcurrencyLimiterOptions {
  /**
   * Wait until the whole batch of `maxConcurrent` trials has finished, then tell the searcher all
   * their results and let it suggest the next batch (Ray's `batch=True`).
   * @default false
   */
  readonly batch?: boolean;
}

type Info = { readonly error?: boolean; readonly stopped?: boolean };

/**
 * Wraps a searcher so that at most `maxConcurrent` of its trials are live (suggested and not yet
 * complete); beyond that `suggest` answers `"wait"`. Sequential model-based searchers (TPE) learn
 * more per trial with a small limit.
 *
 * @param searcher the searcher to wrap.
 * @param maxConcurrent how many trials may be live at once (≥ 1).
 * @param options batch mode.
 * @returns a searcher named `concurrency_limiter(<inner name>)`.
 * @throws {TypeError} when `searcher` is not a searcher or an option has the wrong type.
 * @throws {RangeError} when `maxConcurrent` is not an integer ≥ 1.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concurrencyLimiter } from "./limiter.ts";
 * import { tpeSearcher } from "./tpe/mod.ts";
 * const searcher = concurrencyLimiter(tpeSearcher(), 2);
 * assert.equal(searcher.name, "concurrency_limiter(tpe)");
 * ```
 */
export function concurrencyLimiter(
  searcher: Searcher,
  maxConcurrent: number,
  options: ConcurrencyLimiterOptions = {},
): Searcher {
  const F = "concurrencyLimiter";
  const problem = checkPluginShape("searcher", searcher);
  if (problem) throw new TypeError(`${F}: ${problem}`);
  if (typeof maxConcurrent !== "number" || !Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new RangeError(
      `${F}: "maxConcurrent" must be an integer >= 1, got ${JSON.stringify(maxConcurrent)}`,
    );
  }
  const o = checkOptionKeys(F, options, ["batch"]);
  if (o.batch !== undefined && typeof o.batch !== "boolean") {
    throw new TypeError(`${F}: "batch" must be a boolean, got ${JSON.stringify(o.batch)}`);
  }
  const batch = o.batch === true;
  const live = new Set<string>();
  // Batch mode: results held back until the batch is complete.
  let held: [string, TrialResult | undefined, Info][] = [];

  const flush = (): void => {
    for (const [id, final, info] of held) {
      live.delete(id);
      searcher.onComplete?.(id, final, info);
    }
    held = [];
  };

  return {
    name: `concurrency_limiter(${searcher.name})`,
    multiObjective: searcher.multiObjective === true,
    setup(ctx: SearcherContext): void {
      searcher.setup?.(ctx);
    },
    suggest(trialId: string): Config | "wait" | "done" {
      if (live.size >= maxConcurrent) return "wait";
      const r = searcher.suggest(trialId);
      if (r !== "wait" && r !== "done") live.add(trialId);
      return r;
    },
    onReport(trialId: string, result: TrialResult): void {
      if (live.has(trialId)) searcher.onReport?.(trialId, result);
    },
    onComplete(trialId: string, final: TrialResult | undefined, info?: Info): void {
      if (!live.has(trialId)) return;
      if (!batch) {
        live.delete(trialId);
        searcher.onComplete?.(trialId, final, info);
        return;
      }
      held.push([trialId, final, { ...info }]);
      // The batch is complete once every live trial has finished (fewer than maxConcurrent when
      // the searcher ran out).
      if (held.length >= live.size) flush();
    },
    snapshot(): JsonValue {
      return {
        live: [...live],
        held: held.map(([id, final, info]) => [id, final ?? null, info as JsonValue]),
        inner: searcher.snapshot?.() ?? null,
      };
    },
    restore(state: JsonValue): void {
      const s = stateObject(F, state);
      if (!Array.isArray(s.live) || !Array.isArray(s.held)) {
        throw new TypeError(`${F}: restore() expects { live, held, inner } from snapshot()`);
      }
      live.clear();
      for (const id of s.live) live.add(String(id));
      held = (s.held as JsonValue[][]).map(([id, final, info]) => [
        String(id),
        (final ?? undefined) as TrialResult | undefined,
        (info ?? {}) as Info,
      ]);
      if (s.inner !== null && s.inner !== undefined) searcher.restore?.(s.inner);
    },
  };
}
