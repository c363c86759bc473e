/**
 * A trial's checkpoints on the driver's side: committing a staged checkpoint folder,
 * keeping the best `numToKeep`, and cloning a donor's checkpoint into a trial (PBT's
 * exploit) through the staging folder (`STAGING_DIR` of `layout.ts`, which the trial's
 * session writes into too). Methods of the runner, kept here.
 *
 * @module
 */

import { join, resolve, sep } from "./_path.ts";
import { STAGING_DIR } from "./layout.ts";
import type { Config, TrialResult } from "./trial.ts";
import { PluginError, TuneError } from "./errors.ts";
import { checkpointName, copyTree, flatten, removeSymlinks, writeParams } from "./store.ts";
import type { Runner, TrialState } from "./runner.ts";

/** Moves a trial's staged checkpoint folder to `checkpoint_<iteration>` and applies retention. */
export async function commitCheckpoint(
  this: Runner,
  t: TrialState,
  staging: string,
  iteration: number,
  result: TrialResult,
): Promise<string> {
  const src = resolve(t.workDir, staging);
  if (!src.startsWith(t.workDir + sep)) {
    throw new TuneError(
      `the checkpoint folder "${staging}" is outside the trial's folder "${t.workDir}"`,
    );
  }
  const info = await Deno.lstat(src);
  if (!info.isDirectory) throw new TuneError(`the checkpoint "${staging}" is not a folder`);
  const removed = await removeSymlinks(src);
  if (removed) {
    this.warnOnce(
      t,
      "symlink",
      `trial "${t.id}": ${removed} symlink(s) removed from its checkpoint (symlinks are never committed)`,
    );
  }
  const dst = join(t.dir, checkpointName(iteration));
  await Deno.remove(dst, { recursive: true }).catch(() => {});
  await Deno.rename(src, dst);
  const attr = this.c.checkpoint.scoreAttribute;
  const scoreValue = attr ? flatten(result)[attr] : undefined;
  t.checkpoints = t.checkpoints.filter((c) => c.path !== dst);
  t.checkpoints.push({
    path: dst,
    iteration,
    ...(typeof scoreValue === "number" ? { score: scoreValue } : {}),
  });
  t.checkpoint = dst;
  await this.retain(t);
  return dst;
}

/** Removes the checkpoints beyond `numToKeep` (best by `scoreAttribute`, or the latest), keeping the latest. */
export async function retain(this: Runner, t: TrialState): Promise<void> {
  const keep = this.c.checkpoint.numToKeep;
  if (keep === undefined || t.checkpoints.length <= keep) return;
  const latest = t.checkpoints[t.checkpoints.length - 1];
  const attr = this.c.checkpoint.scoreAttribute;
  const sign = this.c.checkpoint.scoreOrder === "min" ? -1 : 1;
  const ranked = [...t.checkpoints].sort((a, b) =>
    attr
      ? sign * ((b.score ?? -Infinity * sign) - (a.score ?? -Infinity * sign))
      : b.iteration - a.iteration
  );
  const kept = new Set(ranked.slice(0, keep));
  kept.add(latest); // resume and retries need the latest
  for (const c of t.checkpoints) {
    if (!kept.has(c)) await Deno.remove(c.path, { recursive: true }).catch(() => {});
  }
  t.checkpoints = t.checkpoints.filter((c) => kept.has(c));
}

/** Copies the donor's latest checkpoint into `t` and gives it `config`; false on failure. */
export async function cloneInto(
  this: Runner,
  t: TrialState,
  from: string,
  config: Config,
  hook: string,
): Promise<boolean> {
  const donor = this.trials.get(from);
  if (!donor?.checkpoint) {
    this.fatal ??= new PluginError(
      this.c.scheduler.name,
      hook,
      new Error(`exploit from "${from}", which has no checkpoint`),
    );
    return false;
  }
  // Reports queued in this turn go out before the copy (acknowledged without waiting for it).
  this.log.flush();
  this.materialize(t);
  const dst = join(t.dir, checkpointName(t.iteration));
  const tmp = join(t.dir, STAGING_DIR, `exploit_${Date.now()}`);
  t.staged = true;
  const skipped = await copyTree(donor.checkpoint, tmp);
  if (skipped) this.warn(`exploit: ${skipped} symlink(s) not copied from "${donor.id}"`);
  await Deno.remove(dst, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dst);
  t.checkpoints = t.checkpoints.filter((k) => k.path !== dst);
  t.checkpoints.push({ path: dst, iteration: t.iteration });
  t.checkpoint = dst;
  t.config = config;
  writeParams(t.dir, t.config);
  this.log.append({
    trial: t.id,
    event: "config",
    config: t.config,
    reason: `exploit ${donor.id}`,
    donor: donor.id,
  });
  return true;
}
