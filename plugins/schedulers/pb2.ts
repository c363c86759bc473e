/**
 * Population Based Bandits (PB2, Parker-Holder et al., NeurIPS 2020) with Ray Tune's `PB2`
 * semantics and defaults: PBT whose explore step picks the new hyperparameters with a GP bandit.
 *
 * @module
 */

import type { ExploitRequest, Scheduler } from "../../core/plugin.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import type { Rng } from "../../core/random.ts";
import { isPlainObject } from "../../core/space.ts";
import { populationScheduler } from "./_population.ts";
import { fitGp, fitGpMl, maximise, type TvKernel, ucb } from "./_gp.ts";
import {
  booleanOption,
  checkOptions,
  decodeNumber,
  encodeNumber,
  numberOption,
  stringOption,
} from "./_common.ts";

/** `[low, high]` for one hyperparameter, or an object of them for a nested config. */
export type Pb2Bounds = readonly [number, number] | { readonly [key: string]: Pb2Bounds };

/** Options of {@linkcode pb2Scheduler}; the defaults are Ray Tune's. */
export interface Pb2SchedulerOptions {
  /** The result key that measures training progress; it must increase. @default "time_total_s" */
  readonly timeAttr?: string;
  /** A trial is considered for exploit/explore every this much `timeAttr`. @default 60 */
  readonly perturbationInterval?: number;
  /**
   * The continuous hyperparameters PB2 chooses, each `[low, high]` (nested objects for nested
   * configs). They must be numbers in every trial's config: put them in the space, e.g.
   * `lr: uniform(1e-4, 1e-1)`.
   */
  readonly hyperparamBounds: { readonly [key: string]: Pb2Bounds };
  /** The bottom fraction of trials clone the top fraction; between 0 and 0.5. @default 0.25 */
  readonly quantileFraction?: number;
  /** Runs on the config the bandit chose and returns the config to use. */
  readonly customExplore?: (config: Config, rng: Rng) => Config;
  /** Synchronous rounds, as PBT's `synch`. @default false */
  readonly synch?: boolean;
  /** A result without `timeAttr` or the metric is an error (else it is ignored). @default true */
  readonly requireAttrs?: boolean;
  /** Write `pbt_policy_<trial>.txt` and `pbt_global.txt`, as PBT (and Ray's PB2). @default true */
  readonly logConfig?: boolean;
  /** Seed of the bandit's randomness. @default the experiment's seed */
  readonly seed?: number;
}

/** The PB2 scheduler: a {@linkcode Scheduler} that can also ask to exploit paused trials. */
export interface Pb2Scheduler extends Scheduler {
  /**
   * Exploits decided for paused trials (synchronous mode), applied by the runner as PBT's.
   * Called after each hook, like `takeStops`.
   */
  takeExploits(): readonly ExploitRequest[];
}

const FN = "pb2Scheduler";
const KEYS = [
  "timeAttr",
  "perturbationInterval",
  "hyperparamBounds",
  "quantileFraction",
  "customExplore",
  "synch",
  "requireAttrs",
  "logConfig",
  "seed",
] as const;

/** One hyperparameter: its path in the config and its bounds. */
interface Bound {
  readonly path: readonly string[];
  readonly lo: number;
  readonly hi: number;
}

function flattenBounds(node: unknown, path: string[], out: Bound[]): void {
  if (Array.isArray(node)) {
    const [lo, hi] = node;
    if (
      node.length !== 2 || typeof lo !== "number" || typeof hi !== "number" ||
      !Number.isFinite(lo) || !Number.isFinite(hi)
    ) {
      throw new TypeError(
        `${FN}: "hyperparamBounds.${path.join(".")}" must be [low, high] (two numbers), got ${
          JSON.stringify(node)
        }`,
      );
    }
    if (lo > hi) {
      throw new RangeError(
        `${FN}: "hyperparamBounds.${path.join(".")}" must be [low, high] with low <= high, got ${
          JSON.stringify(node)
        }`,
      );
    }
    out.push({ path, lo, hi });
    return;
  }
  if (isPlainObject(node) && Object.keys(node).length) {
    for (const [k, v] of Object.entries(node)) flattenBounds(v, [...path, k], out);
    return;
  }
  throw new TypeError(
    `${FN}: "hyperparamBounds${path.length ? "." + path.join(".") : ""}" must be [low, high] ` +
      `or an object of them, got ${JSON.stringify(node) ?? typeof node}`,
  );
}

function read(config: Config, path: readonly string[]): unknown {
  let node: unknown = config;
  for (const k of path) node = isPlainObject(node) ? node[k] : undefined;
  return node;
}

function write(config: Record<string, JsonValue>, path: readonly string[], v: number): void {
  let node = config;
  for (const k of path.slice(0, -1)) {
    if (!isPlainObject(node[k])) node[k] = {};
    node = node[k] as Record<string, JsonValue>;
  }
  node[path.at(-1)!] = v;
}

/** One data row: Ray's `(Trial, Time, hyperparameters..., Reward)`. */
interface Row {
  readonly trial: string;
  readonly time: number;
  readonly h: readonly number[];
  readonly reward: number;
}

const MAX_ROWS = 1000; // Ray keeps the last 1000 changes
const GP_ROWS = 200; // Ray's select_length: below 200 all rows; see the differences

function normalize(v: number, lo: number, hi: number): number {
  return (v - lo) / (hi - lo + 1e-8);
}

/**
 * Ray's `_explore` + `_select_config`: the reward change per unit time of each constant-
 * hyperparameter segment, modelled by a time-varying GP over (time, reward before,
 * hyperparameters); the new hyperparameters maximise UCB at the donor's latest (time, reward),
 * with the points already chosen this round lowering the variance around them.
 */
function select(
  data: readonly Row[],
  bounds: readonly Bound[],
  donor: string,
  current: readonly (readonly number[])[] | undefined,
  rng: Rng,
  warm: TvKernel | undefined,
): { h: number[]; time: number; reward: number; kernel: TvKernel } | undefined {
  // Sort by time (stable), then difference within each (trial, hyperparameters) group.
  const rows = data.map((r, i) => ({ r, i })).sort((a, b) => a.r.time - b.r.time || a.i - b.i)
    .map((x) => x.r);
  const last = new Map<string, Row>();
  let pts: {
    time: number;
    before: number;
    h: readonly number[];
    y: number;
    trial: string;
    reward: number;
  }[] = [];
  for (const r of rows) {
    const key = JSON.stringify([r.trial, r.h]);
    const prev = last.get(key);
    last.set(key, r);
    if (!prev) continue;
    const dy = r.reward - prev.reward, dt = r.time - prev.time;
    if (!(dt > 0) || !Number.isFinite(dy)) continue;
    pts.push({
      time: r.time,
      before: r.reward - dy,
      h: r.h,
      y: dy / dt,
      trial: r.trial,
      reward: r.reward,
    });
  }
  pts = pts.slice(-MAX_ROWS);
  const mine = pts.filter((p) => p.trial === donor);
  if (!mine.length) return undefined;
  const newpoint = mine.at(-1)!;
  const used = pts.slice(-GP_ROWS);
  const tLo = Math.min(...used.map((p) => p.time)), tHi = Math.max(...used.map((p) => p.time));
  const rLo = Math.min(...used.map((p) => p.before)), rHi = Math.max(...used.map((p) => p.before));
  const hx = (h: readonly number[]) => h.map((v, i) => normalize(v, bounds[i].lo, bounds[i].hi));
  const x = used.map((
    p,
  ) => [normalize(p.time, tLo, tHi), normalize(p.before, rLo, rHi), ...hx(p.h)]);
  const ys = used.map((p) => p.y);
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sd = Math.sqrt(ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length);
  const y = ys.map((v) => Math.min(2, Math.max(-2, (v - mean) / (sd + 1e-8))));
  const fixed = [normalize(newpoint.time, tLo, tHi), normalize(newpoint.before, rLo, rHi)];
  const m = fitGpMl(x, y, warm);
  if (!m) return undefined;
  let m1 = m;
  if (current?.length) {
    // The variance does not depend on the labels: the points chosen this round get zeros
    // (with m's kernel; Ray fits this second GP's kernel again).
    const extra = current.map((h) => [...fixed, ...hx(h)]);
    m1 = fitGp([...x, ...extra], [...y, ...extra.map(() => 0)], m.kernel) ?? m;
  }
  const best = maximise((h) => ucb(m, m1, fixed, h), bounds.length, rng);
  return {
    h: best.map((v, i) =>
      Math.min(1, Math.max(0, v)) * (bounds[i].hi - bounds[i].lo) + bounds[i].lo
    ),
    time: newpoint.time,
    reward: newpoint.reward,
    kernel: m.kernel,
  };
}

/**
 * Population Based Bandits (Ray's `PB2`).
 *
 * Runs exactly as {@linkcode pbtScheduler} (readiness every `perturbationInterval`, truncation
 * selection between the bottom and top `quantileFraction`, checkpoint cloning, synchronous or
 * asynchronous rounds, the policy logs that `pbtReplay` replays), except the explore step: the
 * new hyperparameters of a cloned trial are chosen by a GP bandit. PB2 records, at every
 * perturbation point, each trial's time, hyperparameters and score; the change in score per
 * unit time of each segment with constant hyperparameters is the GP's target, over (time,
 * score before, hyperparameters) with the time-varying squared exponential kernel (old data
 * counts less); the new point maximises the UCB at the donor's latest (time, score), and the
 * points already chosen in the same round lower the variance there, so a batch spreads out.
 * Until the donor has two results with the same hyperparameters, its config is copied as is.
 *
 * The hyperparameters are continuous, as in the paper: they must be numbers in every trial's
 * config (put them in the space with the same bounds), and the bandit's choices are floats.
 *
 * Differences from Ray:
 * - Ray samples a hyperparameter missing from a trial's config uniformly when the trial is
 *   created; here it is an error naming the trial and key (the space must hold it);
 * - the GP uses the most recent 200 changes (Ray picks between 200 and 1000 by cross-validated
 *   likelihood once it has more than 200);
 * - kernel hyperparameters are fitted by Nelder-Mead on the log marginal likelihood, starting
 *   from the previous fit, and the GP that carries this round's chosen points reuses that
 *   kernel; UCB is maximised by random candidates and a pattern search (Ray: L-BFGS-B for
 *   both, from fixed starts);
 * - a chosen value is always a float (Ray casts it to the type of the donor's value, so an
 *   integer is truncated with `int()`);
 * - everything PBT's JSDoc lists for PBT.
 *
 * @param options see {@linkcode Pb2SchedulerOptions}; defaults are Ray's.
 * @returns the scheduler, named `"pb2"`.
 * @throws {TypeError} on an unknown option, a missing or malformed `hyperparamBounds`, or a
 *   `customExplore` that is not a function.
 * @throws {RangeError} when `perturbationInterval <= 0`, `quantileFraction` is outside [0, 0.5],
 *   or a bound has `low > high`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pb2Scheduler } from "./pb2.ts";
 * const s = pb2Scheduler({
 *   timeAttr: "training_iteration",
 *   perturbationInterval: 4,
 *   hyperparamBounds: { lr: [1e-4, 1e-1], momentum: [0.8, 0.99] },
 * });
 * assert.equal(s.name, "pb2");
 * ```
 */
export function pb2Scheduler(options: Pb2SchedulerOptions): Pb2Scheduler {
  const raw = checkOptions(FN, options, KEYS);
  if (raw.hyperparamBounds === undefined) {
    throw new TypeError(
      `${FN}: "hyperparamBounds" is required: the hyperparameters PB2 chooses, e.g. ` +
        `{ lr: [1e-4, 1e-1] }`,
    );
  }
  const bounds: Bound[] = [];
  flattenBounds(raw.hyperparamBounds, [], bounds);
  const custom = raw.customExplore;
  if (custom !== undefined && typeof custom !== "function") {
    throw new TypeError(`${FN}: "customExplore" must be a function (config, rng) => config`);
  }
  let data: Row[] = [];
  let current: number[][] | undefined;
  let lastExplorationTime = 0;
  // The last fitted kernel: the next fit starts from it (cheaper).
  let warm: TvKernel | undefined;
  const maxTime = () => data.reduce((m, r) => Math.max(m, r.time), -Infinity);

  const values = (id: string, config: Config): number[] =>
    bounds.map((b) => {
      const v = read(config, b.path);
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new TypeError(
          `${FN}: trial "${id}" has ${b.path.join(".")} = ${JSON.stringify(v) ?? "undefined"} ` +
            `in its config, but PB2 needs a number there: add it to the space, e.g. ` +
            `${b.path.join(".")}: uniform(${b.lo}, ${b.hi})`,
        );
      }
      return v;
    });

  return populationScheduler({
    name: "pb2",
    fn: FN,
    timeAttr: stringOption(FN, raw, "timeAttr", "time_total_s"),
    interval: numberOption(FN, raw, "perturbationInterval", 60, { minExclusive: 0 }),
    burnIn: 0,
    quantile: numberOption(FN, raw, "quantileFraction", 0.25, { min: 0, max: 0.5 }),
    synch: booleanOption(FN, raw, "synch", false),
    requireAttrs: booleanOption(FN, raw, "requireAttrs", true),
    logConfig: booleanOption(FN, raw, "logConfig", true),
    seed: raw.seed === undefined ? undefined : numberOption(FN, raw, "seed", 0, { integer: true }),
    customExplore: custom as ((c: Config, r: Rng) => Config) | undefined,
    onReady(id, time, config, score) {
      data.push({ trial: id, time, h: values(id, config), reward: score });
      if (data.length > 4 * MAX_ROWS) data = data.slice(-2 * MAX_ROWS);
    },
    explore({ id, from, donorConfig, rng }) {
      if (maxTime() > lastExplorationTime) current = undefined;
      const old = values(from, donorConfig);
      const pick = select(data, bounds, from, current, rng, warm);
      if (pick) warm = pick.kernel;
      const h = pick?.h ?? old;
      const config = structuredClone(donorConfig) as Record<string, JsonValue>;
      const chosen = h.map((v, i) => {
        write(config, bounds[i].path, v);
        return v;
      });
      if (pick) {
        // The clone starts a new segment at the donor's time and score (Ray adds this row).
        data.push({ trial: id, time: pick.time, h: chosen, reward: pick.reward });
      }
      if (maxTime() > lastExplorationTime) {
        lastExplorationTime = maxTime();
        current = [chosen];
      } else (current ??= []).push(chosen);
      return config;
    },
    snapshot: () => ({
      data: data.map((r) => [r.trial, r.time, [...r.h], encodeNumber(r.reward)]),
      current: current ?? null,
      lastExplorationTime,
      warm: warm ? { ...warm } : null,
    }),
    restore(state) {
      const s = state as {
        data: [string, number, number[], JsonValue][];
        current: number[][] | null;
        lastExplorationTime: number;
        warm: TvKernel | null;
      };
      data = s.data.map(([trial, time, h, reward]) => ({
        trial,
        time,
        h,
        reward: decodeNumber(reward),
      }));
      current = s.current ?? undefined;
      lastExplorationTime = s.lastExplorationTime;
      warm = s.warm ?? undefined;
    },
  });
}
