/**
 * Population Based Training (Jaderberg et al. 2017) with Ray Tune's `PopulationBasedTraining`
 * semantics and defaults, and `pbtReplay` to replay the schedule PBT found for one trial.
 *
 * @module
 */

import type { Decision, ExploitRequest, Scheduler } from "../../core/plugin.ts";

export type { ExploitRequest };
import type { Config, JsonValue, TrialSnapshot } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import { type Domain, isDomain, isPlainObject, sampleValue } from "../../core/space.ts";
import { basename, dirname, join } from "node:path";
import {
  booleanOption,
  checkContext,
  checkOptions,
  CONTINUE,
  decodeNumber,
  encodeNumber,
  fmt,
  needSetup,
  noCheckpointMessage,
  numberOption,
  PAUSE,
  type Phase,
  readSnapshot,
  resultValue,
  roundHalfEven,
  scoreOf,
  stringOption,
  type Target,
  timeOf,
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

interface TrialInfo {
  phase: Phase;
  config: Config;
  checkpoint?: string;
  iteration: number;
  dir: string;
  score?: number;
  lastPerturbationTime: number;
  lastTrainTime: number;
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
 * import { pbtScheduler } from "./pbt.ts";
 * import { loguniform } from "../../core/space.ts";
 * const s = pbtScheduler({
 *   timeAttr: "training_iteration",
 *   perturbationInterval: 4,
 *   hyperparamMutations: { lr: loguniform(1e-4, 1e-1), batch: [16, 32, 64] },
 * });
 * console.log(s.name); // "pbt"
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

  let target: Target | undefined;
  let rng = new Rng(0);
  let trials = new Map<string, TrialInfo>();
  let nextSync = Math.max(interval, burnIn);
  let exploits: ExploitRequest[] = [];

  function add(snap: TrialSnapshot, fromReport: boolean): TrialInfo {
    let info = trials.get(snap.id);
    if (!info) {
      info = {
        phase: "pending",
        config: snap.config,
        iteration: snap.iteration,
        dir: snap.dir,
        lastPerturbationTime: 0,
        lastTrainTime: 0,
        ...(snap.checkpoint ? { checkpoint: snap.checkpoint } : {}),
      };
      trials.set(snap.id, info);
    } else if (fromReport) {
      info.config = snap.config;
      info.iteration = snap.iteration;
      info.dir = snap.dir;
      if (snap.checkpoint) info.checkpoint = snap.checkpoint;
    }
    return info;
  }

  /** Ray's `_quantiles`: [lower, upper] ids among live trials with a score. */
  function quantiles(): [string[], string[]] {
    const ranked = [...trials]
      .filter(([, t]) => t.score !== undefined && t.phase !== "done")
      .map(([id, t], i) => ({ id, s: t.score!, i }))
      .sort((a, b) => a.s - b.s || a.i - b.i)
      .map((e) => e.id);
    if (ranked.length <= 1) return [[], []];
    let k = Math.ceil(ranked.length * quantile - 1e-9);
    if (k > ranked.length / 2) k = Math.floor(ranked.length / 2);
    return [ranked.slice(0, k), ranked.slice(ranked.length - k)];
  }

  function exploit(id: string, upper: string[], t: number): ExploitRequest {
    const tg = target!;
    const info = trials.get(id)!;
    const from = rng.pick(upper);
    const donor = trials.get(from)!;
    if (!donor.checkpoint) {
      throw new TypeError(noCheckpointMessage(
        FN,
        from,
        `trial "${id}" (${tg.metric} in the bottom ${fmt(quantile * 100)}%) must clone trial ` +
          `"${from}" at ${timeAttr} ${fmt(t)}, which means copying the donor's latest checkpoint`,
      ));
    }
    let config: Config = explore(donor.config, mutations, p, factors, rng);
    if (custom) {
      const c = (custom as (c: Config, r: Rng) => Config)(config, rng);
      if (!isPlainObject(c)) {
        throw new TypeError(
          `${FN}: customExplore must return the new config object, got ${
            JSON.stringify(c) ?? typeof c
          }`,
        );
      }
      config = c;
    }
    if (logConfig) log(id, info, from, donor, config);
    info.config = config;
    info.lastPerturbationTime = t;
    info.lastTrainTime = t;
    return { trialId: id, from, config };
  }

  function log(id: string, info: TrialInfo, from: string, donor: TrialInfo, config: Config) {
    const dir = dirname(info.dir);
    const row = JSON.stringify([id, from, info.iteration, donor.iteration, donor.config, config]);
    const mine = join(dir, `pbt_policy_${id}.txt`);
    try {
      Deno.copyFileSync(join(dirname(donor.dir), `pbt_policy_${from}.txt`), mine);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      // The donor was never exploited: this trial's own history goes on.
    }
    Deno.writeTextFileSync(mine, row + "\n", { append: true });
    Deno.writeTextFileSync(join(dir, "pbt_global.txt"), row + "\n", { append: true });
  }

  /** Synchronous round: everyone is at the perturbation point. */
  function round(time: number, reporter: string | undefined): Decision {
    const [lower, upper] = quantiles();
    let decision: Decision = CONTINUE;
    for (const [, t] of trials) t.lastPerturbationTime = time;
    for (const id of lower) {
      const req = exploit(id, upper, time);
      if (id === reporter) decision = { kind: "exploit", from: req.from, config: req.config };
      else exploits.push(req);
    }
    let maxTrain = -Infinity;
    for (const [, t] of trials) maxTrain = Math.max(maxTrain, t.lastTrainTime);
    nextSync = Math.max(nextSync + interval, maxTrain);
    return decision;
  }

  function live(except?: string): [string, TrialInfo][] {
    return [...trials].filter(([id, t]) => id !== except && t.phase !== "done");
  }

  function barrierOpen(except?: string): boolean {
    return live(except).every(([, t]) => t.lastTrainTime >= nextSync);
  }

  return {
    name: "pbt",
    // The whole population exists from the start and shares the slots, least trained first.
    pendingTrials: Infinity,
    setup(ctx) {
      target = checkContext(FN, ctx);
      rng = new Rng(seedOption ?? target.seed);
    },
    onTrialAdd(trial) {
      needSetup(FN, target);
      add(trial, true);
    },
    onReport(trial, result) {
      const tg = needSetup(FN, target);
      const info = add(trial, true);
      info.phase = "running";
      const t = timeOf(result, timeAttr), score = scoreOf(result, tg);
      if (t === undefined || score === undefined) {
        if (!requireAttrs) return CONTINUE;
        const missing = t === undefined ? `"${timeAttr}" (timeAttr)` : `the metric "${tg.metric}"`;
        const has = resultValue(result, t === undefined ? timeAttr : tg.metric);
        throw new TypeError(
          `${FN}: trial "${trial.id}" reported a result without ${missing}` +
            (has === undefined ? "" : ` as a number (got ${JSON.stringify(has)})`) +
            `; it reported ${Object.keys(result).join(", ")}. Report it every time, or pass ` +
            `\`requireAttrs: false\` to ignore such results.`,
        );
      }
      if (t < burnIn) return CONTINUE;
      if (t - info.lastPerturbationTime < interval) return CONTINUE;
      info.score = score;
      info.lastTrainTime = t;
      if (!synch) {
        info.lastPerturbationTime = t;
        const [lower, upper] = quantiles();
        if (lower.includes(trial.id)) {
          const req = exploit(trial.id, upper, t);
          return { kind: "exploit", from: req.from, config: req.config };
        }
        const waiting = live(trial.id).some(([, x]) =>
          x.phase === "pending" || x.phase === "paused"
        );
        if (waiting) {
          info.phase = "paused";
          return PAUSE;
        }
        return CONTINUE;
      }
      if (!barrierOpen(trial.id)) {
        info.phase = "paused";
        return PAUSE;
      }
      return round(t, trial.id);
    },
    onComplete(trial) {
      const info = trials.get(trial.id);
      if (!info || info.phase === "done") return;
      info.phase = "done";
      // A synchronous round waits for every live trial: one that ended may have been the last.
      const rest = live();
      if (synch && rest.length && rest.every(([, t]) => t.phase === "paused") && barrierOpen()) {
        round(Math.max(...rest.map(([, t]) => t.lastTrainTime)), undefined);
      }
    },
    chooseNext(runnable) {
      const candidates = runnable
        .map((snap, i) => ({ id: snap.id, info: add(snap, false), i }))
        .filter(({ info }) => info.phase !== "done" && (!synch || info.lastTrainTime < nextSync))
        .sort((a, b) => a.info.lastTrainTime - b.info.lastTrainTime || a.i - b.i);
      const pick = candidates[0];
      if (!pick) return undefined;
      pick.info.phase = "running";
      return pick.id;
    },
    takeExploits() {
      const out = exploits;
      exploits = [];
      return out;
    },
    snapshot(): JsonValue {
      return {
        kind: "pbt",
        version: 1,
        rng: rng.snapshot(),
        nextSync,
        trials: [...trials].map(([id, t]) => ({
          id,
          phase: t.phase,
          config: t.config,
          iteration: t.iteration,
          dir: t.dir,
          checkpoint: t.checkpoint ?? null,
          score: t.score === undefined ? null : encodeNumber(t.score),
          lastPerturbationTime: t.lastPerturbationTime,
          lastTrainTime: t.lastTrainTime,
        })),
        exploits: exploits.map((e) => ({ trialId: e.trialId, from: e.from, config: e.config })),
      };
    },
    restore(state) {
      const s = readSnapshot(FN, "pbt", state);
      rng.restore(s.rng as number[]);
      nextSync = s.nextSync as number;
      trials = new Map();
      for (const t of s.trials as Record<string, JsonValue>[]) {
        trials.set(t.id as string, {
          phase: t.phase as Phase,
          config: t.config as Config,
          iteration: t.iteration as number,
          dir: t.dir as string,
          ...(t.checkpoint === null ? {} : { checkpoint: t.checkpoint as string }),
          ...(t.score === null ? {} : { score: decodeNumber(t.score) }),
          lastPerturbationTime: t.lastPerturbationTime as number,
          lastTrainTime: t.lastTrainTime as number,
        });
      }
      exploits = (s.exploits as unknown as ExploitRequest[]).map((e) => ({ ...e }));
    },
  };
}

/** The PBT replay scheduler: a {@linkcode Scheduler} that knows the config to start from. */
export interface PbtReplayScheduler extends Scheduler {
  /**
   * The config the replayed lineage started with: use it as the experiment's space (with
   * `numSamples: 1`). Undefined when the policy file has no exploit.
   */
  readonly initialConfig: Config | undefined;
  /** The config changes: from `training_iteration` `at` on, the trial runs with `config`. */
  readonly schedule: readonly { readonly at: number; readonly config: Config }[];
}

/**
 * Replays the hyperparameter schedule PBT found for one trial (Ray's
 * `PopulationBasedTrainingReplay`), read from its `pbt_policy_<trial>.txt`.
 *
 * The experiment runs one trial whose config is `initialConfig`; when its `training_iteration`
 * reaches each change point, the scheduler answers `{ kind: "exploit", from: <itself>, config }`:
 * the runner restarts it from its own latest checkpoint with the next config. Reads Ray's
 * policy files too (same format).
 *
 * @param policyFile the path of a `pbt_policy_<trial>.txt` file.
 * @returns the scheduler, named `"pbt_replay"`.
 * @throws {TypeError} when the file cannot be read or a line is not a policy row.
 * @example
 * ```ts ignore
 * import { pbtReplay } from "./pbt.ts";
 * const replay = pbtReplay("./tunebox_results/pbt/pbt_policy_a2b9e_00003.txt");
 * console.log(replay.initialConfig, replay.schedule);
 * ```
 */
export function pbtReplay(policyFile: string): PbtReplayScheduler {
  const fn = "pbtReplay";
  if (typeof policyFile !== "string" || !policyFile) {
    throw new TypeError(
      `${fn}: "policyFile" must be a file path, got ${JSON.stringify(policyFile)}`,
    );
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(policyFile);
  } catch (e) {
    throw new TypeError(
      `${fn}: cannot read the policy file "${policyFile}": ${e instanceof Error ? e.message : e}` +
        ` (PBT writes pbt_policy_<trial>.txt into the experiment folder)`,
      { cause: e },
    );
  }
  const rows: [JsonValue, JsonValue, number, number, Config, Config][] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new TypeError(`${fn}: ${basename(policyFile)}:${i + 1} is not JSON`, { cause: e });
    }
    if (
      !Array.isArray(row) || row.length !== 6 || typeof row[3] !== "number" ||
      !isPlainObject(row[4]) || !isPlainObject(row[5])
    ) {
      throw new TypeError(
        `${fn}: ${basename(policyFile)}:${i + 1} is not a policy row ` +
          `[target, donor, target_iteration, donor_iteration, donor_config, new_config]`,
      );
    }
    rows.push(row as [JsonValue, JsonValue, number, number, Config, Config]);
  });
  // Ray: walk back from the last row while each row's target is the next row's donor.
  const schedule: { at: number; config: Config }[] = [];
  let initialConfig: Config | undefined;
  let lastDonor: JsonValue | undefined;
  for (let i = rows.length - 1; i >= 0; i--) {
    const [targetTag, donorTag, , donorIter, donorConfig, newConfig] = rows[i];
    if (lastDonor !== undefined && !same(targetTag, lastDonor)) break;
    lastDonor = donorTag;
    initialConfig = donorConfig;
    schedule.unshift({ at: donorIter, config: newConfig });
  }

  let trialId: string | undefined;
  let next = 0;
  return {
    name: "pbt_replay",
    initialConfig,
    schedule,
    onTrialAdd(trial) {
      if (trialId !== undefined && trialId !== trial.id) {
        throw new TypeError(
          `${fn}: a replay runs one trial, but trial "${trial.id}" was added after "${trialId}": ` +
            `set numSamples to 1`,
        );
      }
      trialId = trial.id;
      if (initialConfig && !same(sortKeys(trial.config), sortKeys(initialConfig))) {
        throw new TypeError(
          `${fn}: trial "${trial.id}" starts with config ${
            JSON.stringify(trial.config)
          }, but the ` +
            `replayed schedule starts from ${JSON.stringify(initialConfig)}: use ` +
            `\`replay.initialConfig\` as the space`,
        );
      }
    },
    onReport(trial, result) {
      if (trialId === undefined) trialId = trial.id;
      const change = schedule[next];
      const step = result.training_iteration;
      if (trial.id !== trialId || !change || typeof step !== "number" || step < change.at) {
        return CONTINUE;
      }
      if (!trial.checkpoint) {
        throw new TypeError(noCheckpointMessage(
          fn,
          trial.id,
          `the replay changes the config at training_iteration ${change.at} and resumes the ` +
            `trial from its checkpoint`,
        ));
      }
      next++;
      return { kind: "exploit", from: trial.id, config: change.config };
    },
    snapshot(): JsonValue {
      return { kind: "pbt_replay", version: 1, trialId: trialId ?? null, next };
    },
    restore(state) {
      const s = readSnapshot(fn, "pbt_replay", state);
      trialId = s.trialId === null ? undefined : s.trialId as string;
      next = s.next as number;
    },
  };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isPlainObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
}
