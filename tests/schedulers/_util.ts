// Small builders for direct hook tests of schedulers.
import type { JsonValue, TrialResult, TrialSnapshot, TrialStatus } from "../../core/trial.ts";
import type { Config } from "../../core/trial.ts";

/** A result at `t` (training_iteration and time_total_s both `t` unless given). */
export function result(
  id: string,
  t: number,
  metrics: Record<string, JsonValue>,
  timeTotalS = t,
): TrialResult {
  return {
    ...metrics,
    training_iteration: t,
    time_total_s: timeTotalS,
    time_this_iter_s: 1,
    timestamp: 0,
    trial_id: id,
  };
}

/** A trial snapshot; `checkpoint` is set when `iteration > 0` unless told otherwise. */
export function trial(
  id: string,
  options: {
    status?: TrialStatus;
    iteration?: number;
    config?: Config;
    dir?: string;
    checkpoint?: string | null;
  } = {},
): TrialSnapshot {
  const iteration = options.iteration ?? 0;
  const dir = options.dir ?? `/nonexistent/exp/${id}`;
  const checkpoint = options.checkpoint === null
    ? undefined
    : options.checkpoint ?? (iteration > 0 ? `${dir}/checkpoint_${iteration}` : undefined);
  return {
    id,
    status: options.status ?? (iteration > 0 ? "running" : "pending"),
    config: options.config ?? {},
    iteration,
    dir,
    ...(checkpoint ? { checkpoint } : {}),
  };
}
