// Private to the Slurm executor (slurm.ts): what `prepare()` does once per experiment, and the
// command line and Slurm flags of each trial built from it.

import {
  cacheTrialGraph,
  clusterJobEnv,
  merge,
  passedEnv,
  registryEnv,
  trialConfig,
  v8Args,
  writeTrialEntry,
} from "./_shared.ts";
import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { dirname, join } from "../../core/_path.ts";
import type { SandboxPolicy, WarmJob } from "../../core/plugin.ts";
import {
  checkModuleGraph,
  checkTrainableSource,
  sandboxFlags,
  tuneboxRoot,
} from "../../core/sandbox.ts";
import {
  openRemoteChannel,
  REMOTE_ENV_NAMES,
  type RemoteChannel,
} from "../../core/remote/channel.ts";
import { resourceArgs } from "./_slurm_commands.ts";
import { onPath, pdeathsig, requireSlurm } from "./_slurm_host.ts";
import { JOB_PREFIX, type SlurmContext } from "./_slurm_context.ts";

/**
 * What `prepare()` found on the host and wrote into the experiment folder, fixed for the
 * experiment: every trial's command line is built from it.
 */
export interface SlurmSetup {
  /** The TLS channel trials connect to. */
  readonly channel: RemoteChannel;
  /** The experiment folder (shared storage). */
  readonly experimentDir: string;
  /** The generated entry module trials run. */
  readonly entry: string;
  /** The `DENO_DIR` the driver cached the module graph into (shared storage). */
  readonly denoDir: string;
  /** The `deno.json` trials resolve imports with, if any. */
  readonly configFile?: string;
  /** Whether a `node_modules` sits beside it. */
  readonly nodeModules: boolean;
  /** The folders every trial may read (trainable, Tunebox, packages, npm cache). */
  readonly readRoots: readonly string[];
  /** `setpriv --pdeathsig SIGKILL --` in step mode where it works: srun dies with the driver. */
  readonly setpriv: readonly string[];
  /** The driver's `srun` (a batch job of several workers runs them with it). */
  readonly srunPath: string;
}

/**
 * Checks Slurm and the trainable, runs `cleanup` (leftovers of an earlier driver), caches the
 * module graph into a `DENO_DIR` every node sees and opens the channel.
 */
export async function prepareSlurm(
  ctx: SlurmContext,
  experimentDir: string,
  sandbox: SandboxPolicy | undefined,
  cleanup: () => Promise<void>,
): Promise<SlurmSetup> {
  const { options, moduleUrl, mode, cmdEnv } = ctx;
  await requireSlurm(mode, cmdEnv);
  // A batch job of several workers runs them with the srun of the driver's installation.
  const srunPath = await onPath("srun", cmdEnv.PATH) ?? "srun";
  // A step dies with its srun; srun dies with the driver (even one killed with SIGKILL).
  const setpriv = mode === "step" ? await pdeathsig() : [];
  const policy = merge(options.sandbox ?? {}, sandbox ?? {});
  await checkTrainableSource(moduleUrl);
  const { configFile, nodeModules } = await trialConfig(moduleUrl, options.denoConfig, policy);
  await cleanup();
  const entry = await writeTrialEntry(experimentDir);
  // The module graph is cached once, by the driver, into a DENO_DIR every node sees:
  // trials run --cached-only.
  const denoDir = options.denoDir ?? join(experimentDir, ".deno_dir");
  await cacheTrialGraph(denoDir, configFile, policy, [entry, moduleUrl], moduleUrl, registryEnv());
  const tunebox = tuneboxRoot();
  const packages = configFile && nodeModules ? join(dirname(configFile), "node_modules") : "";
  // A linked node_modules is read where it really is (Deno resolves packages through it).
  const realPackages = packages ? await Deno.realPath(packages).catch(() => packages) : "";
  const readRoots = [
    ...(moduleUrl.startsWith("file:") ? [dirname(fromFileUrl(moduleUrl))] : []),
    ...(tunebox ? [tunebox] : []),
    ...new Set([packages, realPackages].filter(Boolean)),
    join(denoDir, "npm"),
  ];
  await checkModuleGraph(moduleUrl, {
    roots: [...readRoots, ...(policy.read ?? [])],
    ...(configFile ? { configFile } : {}),
    unstable: policy.unstable ?? [],
  });
  const channel = await openRemoteChannel({
    ...(options.driverHost ? { host: options.driverHost } : {}),
    ...(options.driverPort ? { port: options.driverPort } : {}),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.channel ? { limits: options.channel } : {}),
    log: ctx.log,
  });
  return {
    channel,
    experimentDir,
    entry,
    denoDir,
    ...(configFile ? { configFile } : {}),
    nodeModules,
    readRoots,
    setpriv,
    srunPath,
  };
}

/** A trial's Deno command line and the environment it runs with (exactly the sandbox's). */
export function trialCommand(
  ctx: SlurmContext,
  setup: SlurmSetup,
  job: WarmJob,
  run: number,
  ring?: { readonly net: readonly string[] },
): { argv: string[]; env: Record<string, string> } {
  const { options } = ctx;
  const ch = setup.channel;
  const policy = merge(
    merge(options.sandbox ?? {}, job.sandbox),
    ring ? { net: [...ring.net] } : {},
  );
  const passEnv = passedEnv(policy);
  // Slurm sets CUDA_VISIBLE_DEVICES for the GPUs it gives (--gres).
  const jobEnv = clusterJobEnv(job.env);
  const resolution = registryEnv();
  const envNames = [
    ...Object.keys(resolution),
    ...REMOTE_ENV_NAMES,
    "TUNEBOX_MODULE",
    "DENO_DIR",
    "SLURMD_NODENAME",
    // The GPUs Slurm gave the step (or task), and the batch job's.
    "CUDA_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "SLURM_STEP_GPUS",
    "SLURM_JOB_GPUS",
    ...(ring ? ["SLURM_PROCID"] : []),
    ...Object.keys(jobEnv),
  ];
  const memoryMb = job.resources?.memoryMb ?? job.memoryMb;
  const v8 = v8Args(options.v8Flags, memoryMb);
  const args = [
    ...sandboxFlags({
      trialDir: job.workDir,
      recordDir: job.dir,
      readRoots: [...setup.readRoots],
      ...(setup.configFile ? { configFile: setup.configFile } : {}),
      nodeModules: setup.nodeModules,
      envNames,
      policy: { ...policy, net: [ch.netPermission, ...(policy.net ?? [])] },
      location: `http://${job.trialId.replace(/[^a-zA-Z0-9-]/g, "-")}-${run}.trial.invalid`,
    }),
    ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
    setup.entry,
  ];
  return {
    argv: [Deno.execPath(), ...args],
    env: {
      ...passEnv,
      ...jobEnv,
      ...resolution,
      DENO_DIR: setup.denoDir,
      NO_COLOR: "1",
      PATH: "/usr/local/bin:/usr/bin:/bin",
      TUNEBOX_MODULE: ctx.moduleUrl,
    },
  };
}

/** The `srun`/`sbatch` flags of a trial: tasks, name, folder, resources, placement. */
export function slurmArgs(ctx: SlurmContext, job: WarmJob): string[] {
  const r = job.resources ?? {};
  const workers = r.workers ?? 1;
  return [
    // A trial of N workers: N tasks of one step, wherever Slurm fits them.
    ...(workers > 1 ? [`--ntasks=${workers}`] : ["--nodes=1", "--ntasks=1"]),
    `--job-name=${JOB_PREFIX}${job.trialId}`,
    `--chdir=${job.workDir}`,
    ...resourceArgs(
      {
        cpu: r.cpu ?? 1,
        ...(r.memoryMb ?? job.memoryMb ? { memoryMb: r.memoryMb ?? job.memoryMb } : {}),
        ...(r.gpu ? { gpu: r.gpu } : {}),
        workers,
      },
      ctx.options.slurm ?? {},
    ),
  ];
}
