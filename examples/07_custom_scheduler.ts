#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys
/**
 * `deno task example:scheduler`: writing your own scheduler plugin. A scheduler is a plain object
 * with a `name` and `onReport(trial, result)`, which returns a decision: continue, stop, pause,
 * or exploit another trial. This one stops a trial whose metric has not improved for `patience`
 * reports (Ray's `TrialPlateauStopper`, or Keras' early stopping, as a scheduler). It keeps its
 * state as JSON in `snapshot()` and takes it back in `restore()`, so an interrupted experiment
 * resumes with it. `tests/examples/custom_scheduler_test.ts` runs Tunebox's scheduler contract
 * suite on it.
 *
 * Use it from a YAML experiment: `scheduler: { module: ./07_custom_scheduler.ts, options: {
 * patience: 3 } }` (the default export is the factory).
 *
 * Smaller: NUM_SAMPLES=4 deno task example:scheduler
 */
import { loguniform, Tuner } from "../mod.ts";
import type { Decision, JsonValue, Scheduler, SchedulerContext } from "../mod.ts";

/** Options of {@linkcode plateauScheduler}. */
export interface PlateauSchedulerOptions {
  /** Reports in a row without improvement after which a trial stops. @default 3 */
  readonly patience?: number;
  /** How much better than its best so far a value must be to count as an improvement. @default 0 */
  readonly minDelta?: number;
}

/** Per trial: its best value so far (negated when maximising) and reports since it improved. */
type Progress = Record<string, { best: number; stale: number }>;

/**
 * A scheduler that stops a trial once its metric has not improved for `patience` reports.
 *
 * @param options the patience and the smallest change that counts as an improvement.
 * @returns the scheduler, named `"plateau"`.
 * @throws {RangeError} when `patience` is not a whole number >= 1 or `minDelta` is negative.
 * @example
 * ```ts
 * import plateauScheduler from "./07_custom_scheduler.ts";
 * const scheduler = plateauScheduler({ patience: 5, minDelta: 0.001 });
 * console.log(scheduler.name); // "plateau"
 * ```
 */
export default function plateauScheduler(options: PlateauSchedulerOptions = {}): Scheduler {
  const patience = options.patience ?? 3;
  const minDelta = options.minDelta ?? 0;
  if (!Number.isInteger(patience) || patience < 1) {
    throw new RangeError(
      `plateauScheduler option "patience" must be a whole number >= 1, got ${patience}`,
    );
  }
  if (typeof minDelta !== "number" || !(minDelta >= 0)) {
    throw new RangeError(`plateauScheduler option "minDelta" must be >= 0, got ${minDelta}`);
  }
  let metric = "";
  let sign = 1; // +1: lower is better; -1: higher is better
  let trials: Progress = {};

  return {
    name: "plateau",
    setup(ctx: SchedulerContext): void {
      metric = ctx.metric;
      sign = ctx.mode === "min" ? 1 : -1;
    },
    onReport(trial, result): Decision {
      const value = result[metric];
      // A report without the metric (or with NaN) neither improves nor spoils anything.
      if (typeof value !== "number" || !Number.isFinite(value)) return { kind: "continue" };
      const t = trials[trial.id];
      if (t === undefined || sign * value < t.best - minDelta) {
        trials[trial.id] = { best: sign * value, stale: 0 };
      } else if (++t.stale >= patience) {
        return { kind: "stop", reason: `no improvement of ${metric} in ${patience} reports` };
      }
      return { kind: "continue" };
    },
    onComplete(trial): void {
      delete trials[trial.id];
    },
    snapshot(): JsonValue {
      return { kind: "plateau", version: 1, trials: structuredClone(trials) };
    },
    restore(state: JsonValue): void {
      const s = state as { kind?: unknown; version?: unknown; trials?: unknown } | null;
      if (s?.kind !== "plateau" || s.version !== 1 || typeof s.trials !== "object" || !s.trials) {
        throw new TypeError(
          `plateauScheduler cannot restore ${JSON.stringify(state)}: not a state it wrote`,
        );
      }
      trials = structuredClone(s.trials as Progress);
    },
  };
}

if (import.meta.main) {
  const steps = 50;
  const results = await new Tuner({
    // Learning curves that flatten out: the higher the learning rate, the sooner.
    trainable: async (config, session) => {
      const floor = (Math.log10(config.lr) + 2.5) ** 2 / 4;
      const speed = 3 * Math.sqrt(config.lr);
      for (let step = session.iteration; step < steps; step++) {
        await session.report({ loss: floor + (3 - floor) * Math.exp(-speed * step) });
      }
    },
    space: { lr: loguniform(1e-4, 1e-1) },
    metric: "loss",
    mode: "min",
    numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 10),
    scheduler: plateauScheduler({ patience: 3, minDelta: 0.01 }),
    storage: Deno.env.get("STORAGE") ?? "./tunebox_results",
    name: Deno.env.get("NAME"),
    seed: 3,
    reporter: false,
  }).fit();

  for (const t of results.trials) {
    console.log(
      `${t.id} lr ${Number(t.config.lr).toExponential(1)}: ${t.iterations} of ${steps} reports,` +
        ` loss ${Number(t.metrics?.loss).toFixed(4)}`,
    );
  }
  const stopped = results.trials.filter((t) => t.iterations < steps).length;
  console.log(`${stopped} of ${results.trials.length} trials stopped on a plateau`);
  console.log(`best loss ${results.best().score.toFixed(4)} with`, results.best().config);
}
