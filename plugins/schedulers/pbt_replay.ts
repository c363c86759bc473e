/**
 * Replays the hyperparameter schedule PBT (or PB2) found for one trial, read from its
 * `pbt_policy_<trial>.txt`: Ray Tune's `PopulationBasedTrainingReplay`.
 *
 * @module
 */

import type { Scheduler } from "../../core/plugin.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import { isPlainObject } from "../../core/space.ts";
import { basename } from "../../core/_path.ts";
import { CONTINUE, noCheckpointMessage, readSnapshot } from "./_common.ts";

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
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
 * import assert from "node:assert/strict";
 * import { pbtReplay } from "./pbt_replay.ts";
 * const replay = pbtReplay("./tunebox_results/pbt/pbt_policy_a2b9e_00003.txt");
 * assert.equal(replay.name, "pbt_replay");
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
