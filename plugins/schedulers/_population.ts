// The population machinery PBT and PB2 share (Ray's PopulationBasedTraining, of which PB2 is a
// subclass): readiness, quantiles, exploit with checkpoint cloning, the policy logs, synchronous
// rounds, time-multiplexing and snapshots. Only the explore step differs.
// Private module (leading underscore): not part of the public API.

import type { Decision, ExploitRequest, Scheduler } from "../../core/plugin.ts";
import type { Config, JsonValue, TrialSnapshot } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import { isPlainObject } from "../../core/space.ts";
import { dirname, join } from "../../core/_path.ts";
import {
  checkContext,
  CONTINUE,
  decodeNumber,
  encodeNumber,
  fmt,
  needSetup,
  noCheckpointMessage,
  PAUSE,
  type Phase,
  readSnapshot,
  resultValue,
  scoreOf,
  type Target,
  timeOf,
} from "./_common.ts";

/** A population scheduler: a {@linkcode Scheduler} that can also ask to exploit paused trials. */
export interface PopulationScheduler extends Scheduler {
  /**
   * Exploits decided for trials that are not the reporting one (synchronous mode, where the
   * whole population waits paused): the runner copies `from`'s latest checkpoint into each
   * trial, sets its config, and leaves it paused. Called after each hook, like `takeStops`.
   */
  takeExploits(): readonly ExploitRequest[];
}

/** What PBT and PB2 hand the shared machinery. */
export interface PopulationSpec {
  /** The scheduler's name and snapshot kind: "pbt" or "pb2". */
  readonly name: string;
  /** The factory's name, for messages. */
  readonly fn: string;
  readonly timeAttr: string;
  readonly interval: number;
  readonly burnIn: number;
  readonly quantile: number;
  readonly synch: boolean;
  readonly requireAttrs: boolean;
  readonly logConfig: boolean;
  readonly seed: number | undefined;
  readonly customExplore: ((config: Config, rng: Rng) => Config) | undefined;
  /** The new config of trial `id`, which clones `from` (whose config is `donorConfig`). */
  explore(e: {
    id: string;
    from: string;
    donorConfig: Config;
    time: number;
    rng: Rng;
  }): Config;
  /** A trial reached a perturbation point: its time, config and score (Ray's `_save_trial_state`). */
  onReady?(id: string, time: number, config: Config, score: number): void;
  /** Extra state for the snapshot. */
  snapshot?(): JsonValue;
  /** Restores {@linkcode PopulationSpec.snapshot}'s state. */
  restore?(state: unknown): void;
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

/** Builds a population scheduler from checked options. */
export function populationScheduler(o: PopulationSpec): PopulationScheduler {
  const FN = o.fn, timeAttr = o.timeAttr, interval = o.interval, burnIn = o.burnIn;
  const quantile = o.quantile, synch = o.synch, requireAttrs = o.requireAttrs;
  const logConfig = o.logConfig, seedOption = o.seed, custom = o.customExplore;
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
    let config: Config = o.explore({ id, from, donorConfig: donor.config, time: t, rng });
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
    name: o.name,
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
      o.onReady?.(trial.id, t, info.config, score);
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
        kind: o.name,
        version: 1,
        ...(o.snapshot ? { extra: o.snapshot() } : {}),
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
      const s = readSnapshot(FN, o.name, state);
      o.restore?.(s.extra);
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
