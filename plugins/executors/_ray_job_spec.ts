// Private to the Ray executor (ray.ts): what a trial's Ray job asks for (its resources, checked
// against the cluster's nodes) and what it runs (its entrypoint: the trial's sandboxed command,
// or a pooled job's launcher).

import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { join } from "../../core/_path.ts";
import type { Resources, TrialJob } from "../../core/plugin.ts";
import { sandboxFlags } from "../../core/sandbox.ts";
import { REMOTE_ENV_NAMES, type RemoteChannel } from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import { clusterJobEnv, merge, passedEnv, shq, v8Args } from "./_shared.ts";
import { type RayJobRequest, unplaceable } from "./_ray_client.ts";
import { IMPORT_MAP } from "./_ray_package.ts";
import { logSuffix } from "./_ray_io.ts";
import type { RayContext } from "./_ray_context.ts";

/** A job's resources as the Jobs API takes them. */
export type RayJobResources = Pick<
  RayJobRequest,
  "entrypoint_num_cpus" | "entrypoint_num_gpus" | "entrypoint_memory" | "entrypoint_resources"
>;

/** The resources a trial asks for (per worker), as Ray's job request names them. */
export function rayResources(job: TrialJob): RayJobResources {
  const r: Resources & { custom?: Readonly<Record<string, number>> } = job.resources ?? {};
  const memoryMb = r.memoryMb ?? job.memoryMb;
  return {
    entrypoint_num_cpus: r.cpu ?? 1,
    ...(r.gpu ? { entrypoint_num_gpus: r.gpu } : {}),
    ...(memoryMb ? { entrypoint_memory: Math.ceil(memoryMb * 1024 * 1024) } : {}),
    ...(r.custom && Object.keys(r.custom).length ? { entrypoint_resources: { ...r.custom } } : {}),
  };
}

/** The resources as Ray's node totals name them, for the placement check. */
export function need(job: TrialJob): Record<string, number> {
  const r = rayResources(job);
  return {
    ...(r.entrypoint_num_cpus ? { CPU: r.entrypoint_num_cpus } : {}),
    ...(r.entrypoint_num_gpus ? { GPU: r.entrypoint_num_gpus } : {}),
    ...(r.entrypoint_memory ? { memory: r.entrypoint_memory } : {}),
    ...r.entrypoint_resources,
  };
}

/**
 * The error that refuses a trial (of one worker) no alive node can hold, or undefined when one
 * can or the check is off (`checkPlacement: false`).
 */
export async function placementError(
  ctx: RayContext,
  job: TrialJob,
): Promise<TuneError | undefined> {
  if (!ctx.settings.checkPlacement) return undefined;
  const why = unplaceable(need(job), await ctx.clusterNodes());
  if (!why) return undefined;
  return new TuneError(
    `Ray cannot place trial ${job.trialId} on any node of ${ctx.settings.address}: ${why}. ` +
      `Ask for resources a node has (resources: { cpu, gpu, custom }), add such a node, ` +
      `or set checkPlacement: false for an autoscaling cluster`,
  );
}

/** The job's entrypoint: find Deno, then `exec env -i <sandbox env> deno run <flags> entry`. */
export function entrypoint(
  ctx: RayContext,
  job: TrialJob,
  run: number,
  ch: RemoteChannel,
  token: string,
  trialDir: string,
  worker?: { readonly rank: number },
  ringNet: readonly string[] = [],
): string {
  const { options, shared } = ctx.settings;
  const { configFile, denoDir, moduleUrl } = ctx;
  const policy = merge(options.sandbox ?? {}, job.sandbox);
  const passEnv = passedEnv(policy);
  // Ray sets CUDA_VISIBLE_DEVICES for the GPUs it gives.
  const jobEnv = clusterJobEnv(job.env);
  const envNames = [
    ...REMOTE_ENV_NAMES,
    "TUNEBOX_MODULE",
    "DENO_DIR",
    "CUDA_VISIBLE_DEVICES",
    // A worker of a multi-worker trial says its rank in its hello (trial_main also asks for
    // Slurm's node name then, unset here).
    ...(worker ? ["TUNEBOX_RANK", "SLURMD_NODENAME"] : []),
    ...Object.keys(jobEnv),
  ];
  const memoryMb = job.resources?.memoryMb ?? job.memoryMb;
  const v8 = v8Args(options.v8Flags, memoryMb);
  // Without shared storage the shipped files are under the job's working dir ($W on the node).
  const W = "\u0000W\u0000";
  const here = (p: string) => shared ? p : `${W}/${ctx.packagePath(p)}`;
  const args = [
    ...sandboxFlags({
      trialDir,
      ...(shared ? { recordDir: job.dir } : {}),
      readRoots: ctx.readRoots.map(here),
      ...(configFile ? { configFile: here(configFile) } : {}),
      nodeModules: ctx.nodeModules,
      envNames,
      policy: { ...policy, net: [ch.netPermission, ...ringNet, ...(policy.net ?? [])] },
      location: `http://${job.trialId.replace(/[^a-zA-Z0-9-]/g, "-")}-${run}.trial.invalid`,
    }),
    ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
    here(ctx.entry),
  ];
  if (!shared) args.splice(1, 0, `--import-map=${W}/${IMPORT_MAP}`);
  const env: Record<string, string> = {
    ...passEnv,
    ...jobEnv,
    ...ch.trialEnv(job.trialId, token),
    ...(worker ? { TUNEBOX_RANK_VAR: "TUNEBOX_RANK", TUNEBOX_RANK: String(worker.rank) } : {}),
    DENO_DIR: here(denoDir),
    NO_COLOR: "1",
    PATH: "/usr/local/bin:/usr/bin:/bin",
    TUNEBOX_MODULE: shared ? moduleUrl : `file://${here(fromFileUrl(moduleUrl))}`,
  };
  const q = (s: string) => shq(s).replaceAll(W, `'"$W"'`);
  const assigns = Object.entries(env).map(([k, v]) => q(`${k}=${v}`));
  const sfx = logSuffix(worker);
  const out = shared
    ? `>>${shq(join(job.dir, `stdout${sfx}.log`))} 2>>${shq(join(job.dir, `stderr${sfx}.log`))}`
    : "";
  return [
    ctx.denoLookup(),
    `W=$(pwd)`,
    `mkdir -p ${q(trialDir)}`,
    `cd ${q(trialDir)}`,
    // Without shared storage the trial's folder is a temp folder on the node: removed when the
    // trial ends (Ray signals the shell and its child alike on stop). With shared storage
    // nothing needs cleaning, and the shell gives its place to Deno.
    ...(shared ? [] : [
      `trap ${shq(`cd /; rm -rf ${shq(trialDir)}`)} EXIT`,
      `trap 'exit 143' TERM INT`,
    ]),
    [
      shared ? "exec env -i" : "env -i",
      ...assigns,
      `CUDA_VISIBLE_DEVICES="\${CUDA_VISIBLE_DEVICES-}"`,
      `"$D"`,
      ...args.map(q),
      out,
      "</dev/null",
    ].filter(Boolean).join(" "),
  ].join("; ");
}

/** The job's entrypoint for a pooled job: Tunebox's launcher, connected to the driver. */
export function launcherEntrypoint(
  ctx: RayContext,
  ch: RemoteChannel,
  id: string,
  token: string,
): string {
  const { shared } = ctx.settings;
  const { launcherUrl } = ctx;
  // Not `env -i`: the launcher is Tunebox's own code, and the trials' commands it runs need
  // what Ray gives the job (PATH to Deno, CUDA_VISIBLE_DEVICES); each of them starts its trial
  // through `env -i` with only that trial's variables.
  // Without shared storage the launcher and the module cache are in the job's working dir.
  const env = { ...ch.trialEnv(id, token), NO_COLOR: "1" };
  const local = !shared && launcherUrl.startsWith("file:");
  return [
    ctx.denoLookup(),
    `W=$(pwd)`,
    [
      "exec env",
      ...Object.entries(env).map(([k, v]) => shq(`${k}=${v}`)),
      shared ? shq(`DENO_DIR=${ctx.denoDir}`) : `DENO_DIR="$W/deno_dir"`,
      `"$D" run --no-config --no-lock --no-prompt --cached-only`,
      shq(`--allow-net=${ch.netPermission}`),
      "--allow-run=/bin/sh --allow-env",
      local ? `"$W/"${shq(ctx.packagePath(fromFileUrl(launcherUrl)))}` : shq(launcherUrl),
      "</dev/null",
    ].join(" "),
  ].join("; ");
}
