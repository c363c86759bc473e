/**
 * Population Based Training (Jaderberg et al. 2017) with Ray Tune's `PopulationBasedTraining`
 * semantics and defaults (`pbtReplay` in `pbt_replay.ts` replays the schedule it found).
 *
 * @module
 */

import type { ExploitRequest, Scheduler } from "../../core/plugin.ts";
import { populationScheduler } from "./_population.ts";

export type { ExploitRequest };
import type { Config, JsonValue } from "../../core/trial.ts";
import type { Rng } from "../../core/random.ts";
import { type Domain, isDomain, isPlainObject, sampleValue } from "../../core/space.ts";
import {
  booleanOption,
  checkOptions,
  numberOption,
  roundHalfEven,
  stringOption,
} from "./_common.ts";

/**
 * How PBT may change one hyperparameter: a list of values (move to a neighbour or resample), a
 * number domain (`uniform`, `loguniform`, `randint`, ...: multiply by a perturbation factor or
 * resample), a `choice` of constants (treated as a list), a function drawing a new value, or an
 * object of mutations for a nested config.
 */
export type Mutation =
  | readonly JsonValue[]
  | ((rng: Rng) => JsonValue)
  // A domain (`uniform(0, 1)`, `choice([...])`, ...) or an object of nested mutations.
  | object;

/** Options of {@linkcode pbtScheduler}; the defaults are Ray Tune's. */
export interface PbtSchedulerOptions {
  /** The result key that measures training progress; it must increase. @default "time_total_s" */
  readonly timeAttr?: string;
  /** A trial is considered for exploit/explore every this much `timeAttr`. @default 60 */
  readonly perturbationInterval?: number;
  /** No perturbation before this much `timeAttr`. @default 0 */
  readonly burnInPeriod?: number;
  /**
   * The hyperparameters to perturb and how (see {@linkcode Mutation}). At least one of
   * `hyperparamMutations` and `customExplore` is needed. The keys must be in the trials'
   * configs: unlike Ray, PBT does not add missing keys when a trial is created (a missing key
   * is sampled at its first explore).
   * @default {}
   */
  readonly hyperparamMutations?: { readonly [key: string]: Mutation };
  /** The bottom fraction of trials clone the top fraction; between 0 and 0.5. @default 0.25 */
  readonly quantileFraction?: number;
  /** The chance of resampling a hyperparameter instead of perturbing it. @default 0.25 */
  readonly resampleProbability?: number;
  /** A perturbed number is multiplied by one of these, chosen at random. @default [1.2, 0.8] */
  readonly perturbationFactors?: readonly number[];
  /** Runs after the built-in explore on the new config and returns the config to use. */
  readonly customExplore?: (config: Config, rng: Rng) => Config;
  /**
   * Synchronous PBT: every trial pauses at each perturbation point until the whole population is
   * there, then all are exploited/explored together. Default: asynchronous, each trial on its
   * own.
   * @default false
   */
  readonly synch?: boolean;
  /** A result without `timeAttr` or the metric is an error (else it is ignored). @default true */
  readonly requireAttrs?: boolean;
  /**
   * Write `pbt_policy_<trial>.txt` (one JSON line per exploit:
   * `[target, donor, target_iteration, donor_iteration, donor_config, new_config]`, the donor's
   * lines first, as Ray) and `pbt_global.txt` into the experiment folder (the parent of the
   * trial folder).
   * @default true
   */
  readonly logConfig?: boolean;
  /** Seed of the explore randomness. @default the experiment's seed */
  readonly seed?: number;
}

/** The PBT scheduler: a {@linkcode Scheduler} that can also ask to exploit paused trials. */
export interface PbtScheduler extends Scheduler {
  /**
   * Exploits decided for trials that are not the reporting one (synchronous PBT, where the whole
   * population waits paused): the runner copies `from`'s latest checkpoint into each trial, sets
   * its config, and leaves it paused. Called after each hook, like `takeStops`.
   */
  takeExploits(): readonly ExploitRequest[];
}

const FN = "pbtScheduler";
const KEYS = [
  "timeAttr",
  "perturbationInterval",
  "burnInPeriod",
  "hyperparamMutations",
  "quantileFraction",
  "resampleProbability",
  "perturbationFactors",
  "customExplore",
  "synch",
  "requireAttrs",
  "logConfig",
  "seed",
] as const;

function checkMutations(node: unknown, path: string): void {
  if (Array.isArray(node)) {
    if (!node.length) throw new RangeError(`${FN}: mutation "${path}" is an empty list`);
    return;
  }
  if (typeof node === "function") return;
  if (isDomain(node)) {
    if (node.kind === "grid" || node.kind === "sample_from") {
      throw new TypeError(
        `${FN}: mutation "${path}" is a ${node.type} domain, which PBT cannot perturb; use a ` +
          `list, a number domain (uniform, loguniform, randint, ...), choice, or a function (rng) => value`,
      );
    }
    if (node.kind === "choice" && node.options.some((o) => isPlainObject(o))) {
      throw new TypeError(
        `${FN}: mutation "${path}" is a choice of sub-spaces, which PBT cannot perturb`,
      );
    }
    return;
  }
  if (isPlainObject(node)) {
    if (!Object.keys(node).length) {
      throw new RangeError(`${FN}: mutation "${path}" is an empty object`);
    }
    for (const [k, v] of Object.entries(node)) checkMutations(v, path ? `${path}.${k}` : k);
    return;
  }
  throw new TypeError(
    `${FN}: mutation "${path}" must be a list, a domain, a function or an object of mutations, ` +
      `got ${JSON.stringify(node) ?? typeof node}`,
  );
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Ray's `_explore`: a new config from the donor's, one mutation at a time. */
function explore(
  config: Config,
  mutations: { readonly [key: string]: Mutation },
  p: number,
  factors: readonly number[],
  rng: Rng,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = structuredClone(config) as Record<string, JsonValue>;
  for (const [key, spec] of Object.entries(mutations)) {
    const old = config[key];
    if (isPlainObject(spec) && !isDomain(spec)) {
      out[key] = explore(
        (isPlainObject(old) ? old : {}) as Config,
        spec as { readonly [key: string]: Mutation },
        p,
        factors,
        rng,
      );
      continue;
    }
    const list = Array.isArray(spec)
      ? spec as readonly JsonValue[]
      : isDomain(spec) && spec.kind === "choice"
      ? spec.options as readonly JsonValue[]
      : undefined;
    if (list) {
      const at = list.findIndex((v) => same(v, old));
      if (rng.next() < p || at < 0) out[key] = structuredClone(rng.pick(list));
      else {
        const shift = rng.pick([-1, 1]);
        out[key] = structuredClone(list[Math.min(Math.max(at + shift, 0), list.length - 1)]);
      }
      continue;
    }
    const resample = (): JsonValue =>
      typeof spec === "function"
        ? (spec as (rng: Rng) => JsonValue)(rng)
        : sampleValue(spec as Exclude<Domain, { kind: "grid" | "sample_from" }>, rng);
    let value: JsonValue;
    if (rng.next() < p || typeof old !== "number") value = resample();
    else value = old * rng.pick(factors);
    // Ray 2.60: `int(round(x))` when the value was a Python int. Our numbers do not say int or
    // float, so an integer domain, or a function whose current value is an integer, says it.
    const integer = isDomain(spec)
      ? spec.kind === "int"
      : typeof spec === "function" && Number.isInteger(old);
    if (integer && typeof value === "number" && Number.isFinite(value)) {
      value = roundHalfEven(value);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Population Based Training.
 *
 * Each trial is considered every `perturbationInterval` of `timeAttr` (after `burnInPeriod`):
 * its latest score is recorded, the live trials with a score are ranked, and if it is in the
 * bottom `quantileFraction` (at most half of them) it clones a trial drawn from the top
 * fraction: the decision is `{ kind: "exploit", from, config }`, where `config` is the donor's
 * config explored (numbers multiplied by a random `perturbationFactors` entry, or resampled
 * from their domain with `resampleProbability`; lists move to a neighbour or resample;
 * `customExplore` last). Otherwise, in asynchronous mode, it pauses when another trial is
 * waiting (so a population larger than the machine shares it, least trained first, through
 * `chooseNext`) and continues when none is. In `synch` mode every trial pauses at the
 * perturbation point until all live trials are there; then all are processed together and
 * paused losers are exploited through {@linkcode PbtScheduler.takeExploits}.
 *
 * Needs checkpoints: the donor's latest checkpoint is what a clone starts from. A donor without
 * one is an error from `onReport` telling the trainable to pass `checkpoint` to `report`.
 *
 * An integer hyperparameter stays an integer after a perturbation (`7 * 1.2` becomes 8, as
 * Ray's `int(round(x))`, halves to even): one whose mutation is an integer domain (`randint`,
 * `lograndint`, `qrandint`), or a function whose current value is an integer. A list or
 * `choice` only ever yields its own values.
 *
 * Differences from Ray:
 * - the donor's latest checkpoint is used (Ray asks it to save one);
 * - a cloned trial keeps its own iteration count and clock (the runner's convention), so its
 *   next perturbation is one interval after the clone;
 * - a `choice` domain is perturbed like a list (Ray multiplies it like a number);
 * - a float domain never rounds, even when the current value happens to be a whole number
 *   (Ray rounds when the value is a Python `int`, which JSON cannot tell from a float);
 * - the synchronous barrier is also released when a trial ends while the others wait, and the
 *   reporting trial of a synchronous round continues at once instead of pausing;
 * - a NaN metric (JSON `null`) ranks last.
 *
 * @param options see {@linkcode PbtSchedulerOptions}; defaults are Ray's.
 * @returns the scheduler, named `"pbt"`.
 * @throws {TypeError} on an unknown option (with a "did you mean"), a value of the wrong type, a
 *   mutation PBT cannot perturb, or neither `hyperparamMutations` nor `customExplore`.
 * @throws {RangeError} when `perturbationInterval <= 0`, `quantileFraction` is outside
 *   [0, 0.5], `resampleProbability` outside [0, 1], or a perturbation factor is not > 0.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pbtScheduler } from "./pbt.ts";
 * import { loguniform } from "../../core/space.ts";
 * const s = pbtScheduler({
 *   timeAttr: "training_iteration",
 *   perturbationInterval: 4,
 *   hyperparamMutations: { lr: loguniform(1e-4, 1e-1), batch: [16, 32, 64] },
 * });
 * assert.equal(s.name, "pbt");
 * ```
 */
export function pbtScheduler(options: PbtSchedulerOptions = {}): PbtScheduler {
  const raw = checkOptions(FN, options, KEYS);
  const timeAttr = stringOption(FN, raw, "timeAttr", "time_total_s");
  const interval = numberOption(FN, raw, "perturbationInterval", 60, { minExclusive: 0 });
  const burnIn = numberOption(FN, raw, "burnInPeriod", 0, { min: 0 });
  const quantile = numberOption(FN, raw, "quantileFraction", 0.25, { min: 0, max: 0.5 });
  const p = numberOption(FN, raw, "resampleProbability", 0.25, { min: 0, max: 1 });
  const synch = booleanOption(FN, raw, "synch", false);
  const requireAttrs = booleanOption(FN, raw, "requireAttrs", true);
  const logConfig = booleanOption(FN, raw, "logConfig", true);
  const seedOption = raw.seed === undefined
    ? undefined
    : numberOption(FN, raw, "seed", 0, { integer: true });
  const factors = (raw.perturbationFactors ?? [1.2, 0.8]) as readonly number[];
  if (
    !Array.isArray(factors) || !factors.length ||
    factors.some((f) => typeof f !== "number" || !Number.isFinite(f))
  ) {
    throw new TypeError(
      `${FN}: "perturbationFactors" must be a non-empty list of numbers, got ${
        JSON.stringify(factors)
      }`,
    );
  }
  if (factors.some((f) => f <= 0)) {
    throw new RangeError(
      `${FN}: "perturbationFactors" must all be > 0, got ${JSON.stringify(factors)}`,
    );
  }
  const mutations = (raw.hyperparamMutations ?? {}) as { readonly [key: string]: Mutation };
  if (!isPlainObject(mutations)) {
    throw new TypeError(
      `${FN}: "hyperparamMutations" must be an object of mutations, got ${
        JSON.stringify(mutations)
      }`,
    );
  }
  for (const [k, v] of Object.entries(mutations)) checkMutations(v, k);
  const custom = raw.customExplore;
  if (custom !== undefined && typeof custom !== "function") {
    throw new TypeError(`${FN}: "customExplore" must be a function (config, rng) => config`);
  }
  if (!Object.keys(mutations).length && !custom) {
    throw new TypeError(
      `${FN}: give "hyperparamMutations" (what to perturb and how) or "customExplore", or both`,
    );
  }

  return populationScheduler({
    name: "pbt",
    fn: FN,
    timeAttr,
    interval,
    burnIn,
    quantile,
    synch,
    requireAttrs,
    logConfig,
    seed: seedOption,
    customExplore: custom as ((c: Config, r: Rng) => Config) | undefined,
    explore: ({ donorConfig, rng }) => explore(donorConfig, mutations, p, factors, rng),
  });
}
