// Private to the Ray executor: its heavy half, which ray.ts loads by a computed specifier on
// `prepare()` (a trial whose trainable imports mod.ts then never reads it). ray.ts keeps the
// name, the options check (`raySettings`), `capacity()` and the saved spec; everything that runs
// trials is here.

import type { Executor } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import type { RaySettings } from "./_ray_options.ts";
import { RayContext } from "./_ray_context.ts";
import { LauncherPool } from "./_ray_pool.ts";
import { PooledRayTrial } from "./_ray_pooled_trial.ts";
import { RingPorts, startGroup } from "./_ray_group.ts";
import { RayTrial } from "./_ray_trial.ts";

/** What ray.ts delegates to once loaded. */
export type RayRunner = Required<Pick<Executor, "prepare" | "start" | "close">>;

/** The executor's trial side for the trainable at `moduleUrl` with the checked `settings`. */
export function rayRunner(moduleUrl: string, settings: RaySettings): RayRunner {
  const ctx = new RayContext(moduleUrl, settings);
  const pool = new LauncherPool(ctx);
  const ringPorts = new RingPorts();
  return {
    async prepare({ experimentDir, sandbox }) {
      await ctx.prepare(experimentDir, sandbox);
    },
    start(job, listener) {
      const ch = ctx.channel;
      if (!ctx.prepared || !ch) {
        throw new TuneError("rayExecutor: prepare() must run before start()");
      }
      const workers = job.resources?.workers ?? 1;
      if (workers > 1) return startGroup(ctx, ringPorts, ch, job, listener, workers);
      if (settings.trialsPerJob > 1) {
        return new PooledRayTrial(ctx, pool, ch, job, listener, ++ctx.runs).handle();
      }
      return new RayTrial(ctx, ch, job, listener, ++ctx.runs).handle();
    },
    async close() {
      pool.close();
      const left = await ctx.jobs.drain();
      ctx.channel?.close();
      if (ctx.experimentDir) await ctx.jobs.keepLeftovers(ctx.experimentDir, left);
    },
  };
}
