/**
 * Runs trials on a Slurm cluster: inside an allocation each trial is a job step
 * (`srun --exact`); from a login node each trial is a batch job (`sbatch`), watched with
 * `squeue`/`scontrol` and cancelled with `scancel`. Trials talk to the driver over TLS
 * (`core/remote/channel.ts`) and run with the same Deno permissions as local trials.
 *
 * @module
 */

import {
  DEFAULT_MAX_LOG_BYTES,
  merge,
  pipeToFile,
  registryEnv,
  settle,
  shq,
  stopEscalation,
  trialConfig,
  writeTrialEntry,
} from "./_shared.ts";
import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { dirname, join } from "../../core/_path.ts";
import type {
  Executor,
  Resources,
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
  WarmJob,
} from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import { type Conversation, driveTrial } from "../../core/channel.ts";
import {
  checkModuleGraph,
  checkTrainableSource,
  parseDenial,
  sandboxFlags,
  tuneboxRoot,
} from "../../core/sandbox.ts";
import {
  openRemoteChannel,
  REMOTE_ENV_NAMES,
  type RemoteChannel,
} from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import {
  allocationCpus,
  exportArg,
  isTerminal,
  notInstalled,
  resourceArgs,
  sbatch,
  scancel,
  showJob,
  slurm,
  squeue,
  srunRefusal,
  verdictText,
} from "./_slurm_commands.ts";

export type { SlurmOptions } from "./_slurm_commands.ts";
import type { SlurmExecutorOptions } from "./_slurm_options.ts";
import { onPath, pdeathsig, requireSlurm, stderrOf } from "./_slurm_host.ts";

export type { SlurmExecutorOptions } from "./_slurm_options.ts";

/** The name the executor's jobs carry (`--job-name`), so leftovers can be found and cancelled. */
const JOB_PREFIX = "tunebox-";
const JOBS_FILE = ".slurm_jobs";

/**
 * An executor that runs each trial on a Slurm cluster, sandboxed by the same Deno permissions
 * as a local trial, talking to the driver over TLS. Resources map to Slurm: `cpu` → `-c`,
 * `memoryMb` → `--mem`, `gpu` → `--gres=gpu:<n>` (whole GPUs only). A trial's environment is
 * exactly the sandbox's (`--export=NIL,...`).
 *
 * The experiment folder (storage), the trainable's folder, Tunebox and Deno itself must be on
 * storage every node sees; the driver checks this with the first trial.
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options mode, Slurm flags, driver address, timing.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { slurmExecutor } from "./slurm.ts";
 * const executor = slurmExecutor(new URL("./train.ts", import.meta.url), {
 *   mode: "sbatch",
 *   slurm: { partition: "gpu", account: "proj42", time: "1:00:00" },
 * });
 * ```
 */
export function slurmExecutor(
  trainable: string | URL,
  options: SlurmExecutorOptions = {},
): Executor {
  const moduleUrl = resolveModule(trainable);
  const graceMs = options.graceMs ?? 5000;
  const pollMs = options.pollMs ?? 1000;
  const log = options.log ?? ((m: string) => console.warn(`tunebox: ${m}`));
  const cmdEnv: Record<string, string> = { ...(options.commandEnv ?? Deno.env.toObject()) };
  const mode = options.mode ?? (cmdEnv.SLURM_JOB_ID ? "step" : "sbatch");
  if (mode !== "step" && mode !== "sbatch") {
    throw new TypeError(`slurmExecutor: mode must be "step" or "sbatch", got ${String(mode)}`);
  }
  let channel: RemoteChannel | undefined;
  let experimentDir = "", entry = "", denoDir = "", configFile: string | undefined;
  let nodeModules = false;
  let readRoots: string[] = [];
  let prepared = false;
  let setpriv: string[] = [];
  let srunPath = "srun";
  let runs = 0;
  let firstTrial = true;
  const live = new Map<string, BatchWatch>();
  /** The step started ahead for the trial the runner expects next (step mode). */
  let warmed:
    | {
      trialId: string;
      env: string;
      memoryMb: number | undefined;
      /** The CPUs and GPUs its step asked for (`-c`, `--gres`). */
      resources: string;
      handle: TrialHandle & { kill(): void; ready: Promise<unknown> };
      bind: (b: Binding) => void;
      discard(): void;
    }
    | undefined;
  /** Started trials whose step has not connected yet (it may still wait for CPUs). */
  const launching = new Set<Promise<unknown>>();
  /**
   * The trials the runner asked to start ahead, in the order it expects to start them; only
   * the first gets a warm step, and only once no started trial's step waits for CPUs.
   */
  const ahead: WarmJob[] = [];
  let poller: ReturnType<typeof setInterval> | undefined;

  interface BatchWatch {
    resolve: (v: { state: string; nodes: string }) => void;
    nodes: string;
  }

  function poll(): void {
    poller ??= setInterval(async () => {
      if (!live.size) return;
      const ids = [...live.keys()];
      const states = await squeue(ids, cmdEnv).catch(() => undefined);
      if (!states) return;
      for (const id of ids) {
        const w = live.get(id);
        if (!w) continue;
        const s = states.get(id);
        if (s?.nodes) w.nodes = s.nodes;
        if (!s || isTerminal(s.state)) {
          live.delete(id);
          w.resolve({ state: s?.state ?? "", nodes: w.nodes });
        }
      }
      if (!live.size && poller) {
        clearInterval(poller);
        poller = undefined;
      }
    }, pollMs);
  }

  let addresses: Promise<Record<string, string>> | undefined;

  /**
   * Warm starts in step mode: the step of the trial the runner will start next is launched
   * while every slot is busy, so `srun`, Deno's start, the TLS connection and the trainable's
   * import are done when the trial is handed over. Its `srun --exact` asks for the trial's own
   * CPUs, so it waits inside Slurm until a running step ends and frees them — the CPUs this
   * trial takes next anyway. Only one warm step at a time (the next trial's; two could take
   * each other's CPUs), launched only once every started trial's step is running (else it could
   * be given their CPUs first), and discarded when another trial starts instead: a warm step
   * never holds CPUs another trial waits for. Multi-worker trials start cold.
   */
  function warm(next: WarmJob): void {
    if (!prepared || !channel || (next.resources?.workers ?? 1) > 1) return;
    if (ahead.some((w) => w.trialId === next.trialId)) return;
    ahead.push(next);
    launchWarm();
  }

  function unwarm(trialId: string): void {
    const i = ahead.findIndex((w) => w.trialId === trialId);
    if (i >= 0) ahead.splice(i, 1);
    if (warmed?.trialId === trialId) {
      warmed.discard();
      warmed = undefined;
    }
    launchWarm();
  }

  /** Launches the warm step of the first trial ahead, when nothing is in its way. */
  function launchWarm(): void {
    const next = ahead[0];
    if (!channel || warmed || !next || launching.size) return;
    let bind!: (b: Binding) => void, refuse!: (e: Error) => void;
    const binding = new Promise<Binding>((res, rej) => {
      bind = res;
      refuse = rej;
    });
    binding.catch(() => {});
    const handle = startTrial(channel, next, undefined, ++runs, binding);
    warmed = {
      trialId: next.trialId,
      env: JSON.stringify(next.env),
      memoryMb: next.memoryMb,
      resources: cpuGpu(next),
      handle,
      bind,
      discard() {
        refuse(new Error("never assigned"));
        handle.kill();
      },
    };
  }

  /** A job's CPUs and GPUs, to tell whether a warm step asked for what the trial holds now. */
  function cpuGpu(job: WarmJob): string {
    return JSON.stringify([job.resources?.cpu ?? 1, job.resources?.gpu ?? 0]);
  }

  /** Counts a started trial as launching until its step connects (or ends). */
  function track(ready: Promise<unknown>): void {
    if (mode !== "step") return;
    const p = ready.catch(() => {}).finally(() => {
      launching.delete(p);
      launchWarm();
    });
    launching.add(p);
  }

  return {
    name: "slurm",
    // Several workers per trial are the tasks of one step (srun -n N), or of one batch job
    // whose script runs them as one step.
    multiWorker: true,
    capacity(resources: Resources): number {
      // Refuses what Slurm cannot express (fractional GPUs or CPUs) before any trial starts.
      resourceArgs(
        { cpu: resources.cpu ?? 1, gpu: resources.gpu ?? 0, workers: resources.workers ?? 1 },
        options.slurm ?? {},
      );
      if (options.maxJobs !== undefined) return options.maxJobs;
      if (mode === "sbatch") return 32;
      const cpus = allocationCpus(cmdEnv.SLURM_JOB_CPUS_PER_NODE);
      return cpus ? Math.max(1, Math.floor(cpus / Math.max(1, resources.cpu ?? 1))) : 1;
    },
    async prepare({ experimentDir: dir, sandbox }) {
      experimentDir = dir;
      await requireSlurm(mode, cmdEnv);
      // A batch job of several workers runs them with the srun of the driver's installation.
      srunPath = await onPath("srun", cmdEnv.PATH) ?? "srun";
      // A step dies with its srun; srun dies with the driver (even one killed with SIGKILL).
      if (mode === "step") setpriv = await pdeathsig();
      const policy = merge(options.sandbox ?? {}, sandbox ?? {});
      await checkTrainableSource(moduleUrl);
      ({ configFile, nodeModules } = await trialConfig(moduleUrl, options.denoConfig, policy));
      await cancelLeftovers(dir);
      entry = await writeTrialEntry(dir);
      // The module graph is cached once, by the driver, into a DENO_DIR every node sees:
      // trials run --cached-only.
      denoDir = options.denoDir ?? join(dir, ".deno_dir");
      await Deno.mkdir(denoDir, { recursive: true });
      const cache = await new Deno.Command(Deno.execPath(), {
        args: [
          "cache",
          "--quiet",
          configFile ? `--config=${configFile}` : "--no-config",
          ...(policy.unstable ?? []).map((u) => `--unstable-${u}`),
          entry,
          moduleUrl,
        ],
        env: { ...registryEnv(), NO_COLOR: "1", DENO_DIR: denoDir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!cache.success) {
        const err = new TextDecoder().decode(cache.stderr).trim();
        throw new TuneError(
          `Cannot load the trainable module ${moduleUrl}: ${
            err.split("\n").slice(0, 6).join("\n")
          }`,
        );
      }
      const tunebox = tuneboxRoot();
      const packages = configFile && nodeModules ? join(dirname(configFile), "node_modules") : "";
      // A linked node_modules is read where it really is (Deno resolves packages through it).
      const realPackages = packages ? await Deno.realPath(packages).catch(() => packages) : "";
      readRoots = [
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
      channel = await openRemoteChannel({
        ...(options.driverHost ? { host: options.driverHost } : {}),
        ...(options.driverPort ? { port: options.driverPort } : {}),
        ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
        ...(options.channel ? { limits: options.channel } : {}),
        log,
      });
      prepared = true;
    },
    start(job, listener): TrialHandle {
      if (!prepared || !channel) {
        throw new TuneError("slurmExecutor: prepare() must run before start()");
      }
      const w = warmed;
      warmed = undefined;
      const i = ahead.findIndex((a) => a.trialId === job.trialId);
      if (i >= 0) ahead.splice(i, 1);
      if (w) {
        // Its environment was fixed when it started: only the same one may take the trial.
        if (
          w.trialId === job.trialId && w.env === JSON.stringify(job.env) &&
          w.memoryMb === job.memoryMb && w.resources === cpuGpu(job) &&
          (job.resources?.workers ?? 1) === 1
        ) {
          w.bind({ job, listener });
          track(w.handle.ready);
          return w.handle;
        }
        // Another trial starts: the warm step gives its CPUs up first.
        w.discard();
      }
      const h = startTrial(channel, job, listener, ++runs);
      track(h.ready);
      return h;
    },
    ...(mode === "step"
      ? {
        warm,
        unwarm,
      }
      : {}),
    async close() {
      ahead.length = 0;
      warmed?.discard();
      warmed = undefined;
      channel?.close();
      if (poller) clearInterval(poller);
      poller = undefined;
      await Deno.remove(join(experimentDir, JOBS_FILE)).catch(() => {});
    },
  } as Executor;

  /** The node a trial's step or batch job runs on, from `squeue`. */
  async function whereIs(trialId: string, jobId: string | undefined): Promise<string> {
    const args = jobId
      ? ["-h", "-j", jobId, "-o", "%N"]
      : ["-h", "-s", "-j", cmdEnv.SLURM_JOB_ID ?? "", "-o", "%j %N"];
    const r = await slurm("squeue", args, cmdEnv).catch(() => undefined);
    if (!r) return "";
    if (jobId) return r.out.trim().split("\n")[0] ?? "";
    for (const line of r.out.split("\n")) {
      const [name, nodes] = line.trim().split(/\s+/);
      if (name === `${JOB_PREFIX}${trialId}`) return nodes ?? "";
    }
    return "";
  }

  /** Cancels the steps of the allocation named after a trial, if Slurm still lists any. */
  async function cancelStep(trialId: string): Promise<void> {
    const job = cmdEnv.SLURM_JOB_ID;
    if (!job) return;
    const r = await slurm("squeue", ["-h", "-s", "-j", job, "-o", "%i %j"], cmdEnv)
      .catch(() => undefined);
    for (const line of r?.out.split("\n") ?? []) {
      const [step, name] = line.trim().split(/\s+/);
      if (step && name === `${JOB_PREFIX}${trialId}`) await scancel(step, cmdEnv);
    }
  }

  /** Cancels batch jobs a killed driver left behind (their ids are in `.slurm_jobs`). */
  async function cancelLeftovers(dir: string): Promise<void> {
    let ids: string[] = [];
    try {
      ids = (await Deno.readTextFile(join(dir, JOBS_FILE))).split("\n").filter((x) =>
        /^\d+$/.test(x)
      );
    } catch { /* none */ }
    if (!ids.length) return;
    const states = await squeue(ids, cmdEnv).catch(() => new Map());
    for (const id of ids) {
      if (!states.has(id)) continue;
      log(`cancelling Slurm job ${id}, left running by an earlier driver of this experiment`);
      await scancel(id, cmdEnv);
    }
    await Deno.remove(join(dir, JOBS_FILE)).catch(() => {});
  }

  function trialCommand(
    job: WarmJob,
    run: number,
    ch: RemoteChannel,
    ring?: { readonly net: readonly string[] },
  ): {
    argv: string[];
    env: Record<string, string>;
  } {
    const policy = merge(
      merge(options.sandbox ?? {}, job.sandbox),
      ring ? { net: [...ring.net] } : {},
    );
    const passEnv: Record<string, string> = {};
    for (const name of policy.env ?? []) {
      const v = Deno.env.get(name);
      if (v !== undefined) passEnv[name] = v;
    }
    // Slurm sets CUDA_VISIBLE_DEVICES for the GPUs it gives (--gres); the driver's pick is local.
    const jobEnv = Object.fromEntries(
      Object.entries(job.env).filter(([k]) => k !== "CUDA_VISIBLE_DEVICES"),
    );
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
    const v8 = [
      ...(options.v8Flags ? [options.v8Flags] : []),
      ...(memoryMb ? [`--max-old-space-size=${Math.max(16, Math.floor(memoryMb))}`] : []),
    ];
    const args = [
      ...sandboxFlags({
        trialDir: job.workDir,
        recordDir: job.dir,
        readRoots,
        ...(configFile ? { configFile } : {}),
        nodeModules,
        envNames,
        policy: { ...policy, net: [ch.netPermission, ...(policy.net ?? [])] },
        location: `http://${job.trialId.replace(/[^a-zA-Z0-9-]/g, "-")}-${run}.trial.invalid`,
      }),
      ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
      entry,
    ];
    return {
      argv: [Deno.execPath(), ...args],
      env: {
        ...passEnv,
        ...jobEnv,
        ...resolution,
        DENO_DIR: denoDir,
        NO_COLOR: "1",
        PATH: "/usr/local/bin:/usr/bin:/bin",
        TUNEBOX_MODULE: moduleUrl,
      },
    };
  }

  function slurmArgs(job: WarmJob): string[] {
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
        options.slurm ?? {},
      ),
    ];
  }

  /** Node name -> address (`NodeAddr`), from `scontrol show node`. */
  function nodeAddresses(): Promise<Record<string, string>> {
    addresses ??= slurm("scontrol", ["show", "node", "-o"], cmdEnv).then((r) => {
      const out: Record<string, string> = {};
      for (const line of r.out.split("\n")) {
        const name = /(?:^|\s)NodeName=(\S+)/.exec(line)?.[1];
        const addr = /(?:^|\s)NodeAddr=(\S+)/.exec(line)?.[1];
        if (name) out[name] = addr ?? name;
      }
      if (!Object.keys(out).length) {
        throw new TuneError(`scontrol show node listed no nodes: ${r.err.trim() || r.out.trim()}`);
      }
      return out;
    });
    return addresses;
  }

  /**
   * The workers of a trial, all connected: each learns its ring (its node's address and a port
   * for each rank) in its `start`. Rank 0 speaks for the trial; the others' reports are
   * acknowledged, not recorded; the first worker to fail fails the trial (and srun's
   * --kill-on-bad-exit ends the others).
   */
  async function driveGroup(
    conns: ReturnType<RemoteChannel["keepAlive"]>[],
    nodes: string[],
    job: TrialJob,
    listener: TrialListener,
    workers: number,
    ringNet: { base: number; grants: readonly string[] },
  ): Promise<Conversation> {
    const addrs = await nodeAddresses();
    const unknown = nodes.find((n) => !addrs[n]);
    if (unknown !== undefined) {
      return { broken: `a worker is on node "${unknown}", which scontrol does not list` };
    }
    const ring = conns.map((_, r) => ({ hostname: addrs[nodes[r]], port: ringNet.base + r }));
    listener.placed?.([...new Set(nodes)].join(","));
    const token = crypto.randomUUID();
    let stopping = false;
    const talks = conns.map((c, r) => {
      const group = {
        rank: r,
        localRank: nodes.slice(0, r).filter((n) => n === nodes[r]).length,
        worldSize: workers,
        listen: ring[r],
        next: ring[(r + 1) % workers],
        token,
        // Granted for every node (the placement was not known at launch): the worker keeps
        // its next neighbour's once the ring is formed, before the trainable loads.
        revokeAfterRing: ringNet.grants,
      };
      const workDir = r === 0 ? job.workDir : join(job.workDir, `rank_${r}`);
      if (r > 0) Deno.mkdirSync(workDir, { recursive: true });
      const l: TrialListener = r === 0
        ? {
          async report(rep) {
            const ack = await listener.report(rep);
            if (ack === "stop") stopping = true;
            return ack;
          },
        }
        : {
          async report(rep) {
            if (rep.checkpointDir?.startsWith(workDir + "/")) {
              await Deno.remove(rep.checkpointDir, { recursive: true }).catch(() => {});
            }
            return stopping ? "stop" : "continue";
          },
        };
      return driveTrial(c, { ...job, workDir }, l, undefined, group);
    });
    const [first, ...more] = await Promise.all(talks);
    if (first.outcome?.kind === "done" || stopping) return first;
    for (const [i, t] of more.entries()) {
      if (t.broken) return { broken: `worker rank ${i + 1} of ${workers}: ${t.broken}` };
      if (t.outcome?.kind === "error") {
        return {
          outcome: {
            ...t.outcome,
            message: `worker rank ${i + 1} of ${workers}: ${t.outcome.message}`,
          },
        };
      }
    }
    return first;
  }

  /**
   * Starts a trial's step or batch job. `job` is all of the trial when `listener` is given; a
   * warm start gives only what its process needs, and the trial through `binding` once the
   * runner starts it (its conversation waits for that).
   */
  function startTrial(
    ch: RemoteChannel,
    job: WarmJob | TrialJob,
    listener: TrialListener | undefined,
    run: number,
    binding?: Promise<Binding>,
  ): TrialHandle & { kill(): void; ready: Promise<unknown> } {
    const token = crypto.randomUUID();
    const workers = job.resources?.workers ?? 1;
    const bound: Promise<Binding> = binding ??
      Promise.resolve({ job: job as TrialJob, listener: listener! });
    // A worker says `<trial id>@<rank>` (its SLURM_PROCID) and its node in its hello.
    const ids = workers > 1
      ? Array.from({ length: workers }, (_, r) => `${job.trialId}@${r}`)
      : [job.trialId];
    const expected = ids.map((id) => ch.server.expect(id, token));
    const connected = Promise.all(expected);
    const probing = firstTrial;
    firstTrial = false;
    let stopRequested = false;
    let silent = false;
    let node = "";
    let jobId: string | undefined;
    let srun: Deno.ChildProcess | undefined;
    const stderrTail = { text: "" };
    let resolveEnded!: (v: { state: string; nodes: string; code?: number }) => void;
    const ended = new Promise<{ state: string; nodes: string; code?: number }>((r) =>
      resolveEnded = r
    );
    let launchError: TuneError | undefined;
    let connection: ReturnType<RemoteChannel["keepAlive"]> | undefined;
    let ringNet: { base: number; grants: string[] } | undefined;
    // A warm step discarded before its srun was spawned must never run.
    let killed = false;

    (async () => {
      if (workers > 1) {
        // Each rank's port on whichever node it lands: every node's address at the ring's
        // ports (never the driver's own channel). A port clash fails the ring, hence the
        // trial, which then retries with other ports.
        const addrs = [...new Set(Object.values(await nodeAddresses()))];
        const base = options.ringPorts ?? 20000 + Math.floor(Math.random() * 30000);
        const grants = addrs.flatMap((a) =>
          Array.from({ length: workers }, (_, r) => `${a.includes(":") ? `[${a}]` : a}:${base + r}`)
        ).filter((g) => g !== ch.netPermission);
        ringNet = { base, grants };
      }
      const { argv, env } = trialCommand(
        job,
        run,
        ch,
        ringNet ? { net: ringNet.grants } : undefined,
      );
      const exportFlag = exportArg({
        ...env,
        ...ch.trialEnv(job.trialId, token),
        TUNEBOX_NODE_VAR: "SLURMD_NODENAME",
        ...(workers > 1 ? { TUNEBOX_RANK_VAR: "SLURM_PROCID" } : {}),
      });
      const flags = slurmArgs(job);
      if (mode === "step") {
        const stepEnv = { ...cmdEnv };
        // An allocation's per-CPU memory default conflicts with --mem on the step.
        for (const k of ["SLURM_MEM_PER_CPU", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_GPU"]) {
          delete stepEnv[k];
        }
        try {
          const srunArgv = [
            ...setpriv,
            "srun",
            "--exact",
            "--quiet",
            "--kill-on-bad-exit=1",
            ...(workers > 1 ? ["--label"] : []),
            exportFlag,
            ...flags,
            ...argv,
          ];
          srun = new Deno.Command(srunArgv[0], {
            args: srunArgv.slice(1),
            env: stepEnv,
            clearEnv: true,
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          if (killed) srun.kill("SIGKILL");
        } catch (e) {
          throw e instanceof Deno.errors.NotFound ? notInstalled("srun") : e;
        }
        const logs = Promise.all([
          pipeToFile(srun.stdout, join(job.dir, "stdout.log"), DEFAULT_MAX_LOG_BYTES),
          pipeToFile(srun.stderr, join(job.dir, "stderr.log"), DEFAULT_MAX_LOG_BYTES, stderrTail),
        ]).catch(() => {}); // a warm step's folder may be gone (the trial never came)
        const st = await srun.status;
        await logs;
        resolveEnded({ state: st.success ? "COMPLETED" : "FAILED", nodes: node, code: st.code });
      } else {
        // Several workers: the batch job's tasks, started as one step by srun inside it
        // (srun takes -c and the GPUs per task from its own flags, not from the job's).
        const r = job.resources ?? {};
        const launch = workers > 1
          ? [
            srunPath,
            "--kill-on-bad-exit=1",
            "--label",
            `--ntasks=${workers}`,
            `--cpus-per-task=${r.cpu ?? 1}`,
            ...(r.gpu ? [`--gpus-per-task=${r.gpu}`] : []),
            ...argv,
          ]
          : argv;
        const script = `#!/bin/sh\n# tunebox trial ${job.trialId}\nexec ${
          launch.map(shq).join(" ")
        }\n`;
        jobId = await sbatch(
          [
            exportFlag,
            "--open-mode=append",
            `--output=${join(job.dir, "stdout.log")}`,
            `--error=${join(job.dir, "stderr.log")}`,
            ...flags,
          ],
          script,
          cmdEnv,
        );
        await Deno.writeTextFile(join(experimentDir, JOBS_FILE), `${jobId}\n`, { append: true });
        live.set(jobId, {
          resolve: (v) => resolveEnded({ ...v, nodes: v.nodes || node }),
          nodes: "",
        });
        poll();
      }
    })().catch((e) => {
      launchError = e instanceof TuneError ? e : new TuneError(String((e as Error)?.message ?? e));
      resolveEnded({ state: "REFUSED", nodes: "" });
    });

    const others: ReturnType<RemoteChannel["keepAlive"]>[] = [];
    const converse = (async (): Promise<Conversation> => {
      const all = await Promise.race([connected, ended.then(() => undefined)]);
      if (!all) return {};
      const [first, ...rest] = all;
      // A warm step waits here, connected and its trainable imported, for its trial. Nothing
      // reads its messages meanwhile, so the driver only pings it (else it would give its
      // driver up); watching its silence starts with its trial.
      const pinger = binding
        ? setInterval(
          () => first.send({ v: PROTOCOL_VERSION, type: "ping" }),
          Math.max(50, Math.floor(ch.heartbeatMs / 4)),
        )
        : undefined;
      const b = await Promise.race([bound, ended.then(() => undefined)]).catch(() => undefined);
      clearInterval(pinger);
      if (!b) {
        cancel("KILL");
        first.close();
        return {};
      }
      const { job, listener } = b;
      connection = ch.keepAlive(first, () => {
        silent = true;
        cancel("KILL");
      });
      if (workers > 1) {
        const nodes = all.map((c) => c.node ?? "");
        for (const c of rest) {
          others.push(ch.keepAlive(c, () => {
            silent = true;
            cancel("KILL");
          }));
        }
        return await driveGroup(
          [connection, ...others],
          nodes,
          job,
          listener,
          workers,
          ringNet!,
        );
      }
      // Where it runs, for the live table and error messages: the trial says (SLURMD_NODENAME),
      // else Slurm is asked once it is surely running.
      (first.node ? Promise.resolve(first.node) : whereIs(job.trialId, jobId)).then((n) => {
        if (!n) return;
        node = n;
        listener.placed?.(n);
      });
      return await driveTrial(connection, job, listener);
    })();
    converse.catch(() => {});

    function cancel(signal: "TERM" | "KILL"): void {
      if (srun) {
        try {
          srun.kill(signal === "TERM" ? "SIGTERM" : "SIGKILL");
        } catch { /* gone */ }
      } else if (jobId) {
        // TERM: scancel the job (Slurm sends SIGTERM, then SIGKILL after its KillWait);
        // KILL: SIGKILL to every process of the job now.
        scancel(jobId, cmdEnv, signal === "KILL" ? "KILL" : undefined);
      }
    }

    const { escalate, clear: clearTimers } = stopEscalation(
      () => cancel("TERM"),
      () => cancel("KILL"),
    );

    const exited = (async (): Promise<TrialExit> => {
      // A trial that said done (or error) has ended for the runner even before Slurm noticed.
      const talkOrEnd = await Promise.race([
        converse.then((c) => ({ talk: c })),
        ended.then(() => undefined),
      ]);
      let talk = talkOrEnd?.talk;
      if (talk?.broken) cancel("KILL");
      if (!talk?.outcome || talk.broken) {
        const end = await ended;
        connection?.close();
        talk ??= await settle(converse, 5000);
        clearTimers();
        for (const id of ids) ch.server.forget(id);
        for (const c of others) c.close();
        if (launchError) {
          return {
            kind: "error",
            message: launchError.message,
            // A refused request fails every trial alike; a controller that did not answer may
            // answer the retry.
            fatal: !/Unable to contact|timed out|try again/i.test(launchError.message),
          };
        }
        if (talk?.broken) {
          return {
            kind: "error",
            message: `the trial broke the protocol and was killed: ${talk.broken}`,
          };
        }
        if (talk?.outcome) return talk.outcome;
        if (stopRequested) return { kind: "stopped" };
        const tailText = await stderrOf(job.dir, stderrTail.text);
        if (silent) {
          return {
            kind: "error",
            message: `the trial went silent for ${ch.heartbeatMs} ms (no heartbeat: its node or ` +
              `network may be down) and was cancelled`,
          };
        }
        return failure(end, tailText);
      }
      clearTimers();
      for (const id of ids) ch.server.forget(id);
      // The job is ending by itself; make sure it does.
      settle(ended, 10_000).then((v) => {
        if (!v) cancel("KILL");
      });
      return talk.outcome;
    })();

    function failure(
      end: { state: string; nodes: string; code?: number },
      tail: string,
    ): Promise<TrialExit> | TrialExit {
      const refusal = mode === "step" && !connection ? srunRefusal(tail) : undefined;
      if (refusal) {
        return {
          kind: "error",
          message: `Slurm refused the trial's step: ${refusal}`,
          fatal: true,
        };
      }
      const lines = tail.trim().split("\n").slice(-8).join("\n");
      const unreachable = /tunebox: cannot reach the driver at (\S+): (.*)/.exec(tail);
      if (unreachable) {
        return {
          kind: "error",
          message: `the trial could not reach the driver at ${unreachable[1]} (${
            unreachable[2]
          }): driverHost must be an address every compute node reaches`,
          fatal: true,
        };
      }
      const unshared = (why: string): TrialExit => ({
        kind: "error",
        message: `the experiment folder ${experimentDir} is not visible on the node the ` +
          `first trial ran on: storage must be shared by every node (a cluster file ` +
          `system), and so must the trainable, Tunebox and Deno; ${why}`,
        fatal: true,
      });
      if (probing && !connection && /Module not found|couldn't chdir|No such file/.test(tail)) {
        return unshared(`last lines of stderr.log:\n${lines}`);
      }
      const denial = parseDenial(lines);
      return (async (): Promise<TrialExit> => {
        let text: string;
        if (mode === "sbatch" && jobId) {
          const v = await showJob(jobId, cmdEnv);
          // A batch job whose --chdir or --output folder its node lacks never starts: Slurm
          // says JobLaunchFailure, and stderr.log, being on that folder, stays empty.
          if (probing && !connection && v?.reason === "JobLaunchFailure" && !tail.trim()) {
            return unshared(
              `Slurm could not launch the job on ${v.nodes} (JobLaunchFailure), as happens when ` +
                `its working folder (${job.workDir}) is missing there`,
            );
          }
          text = verdictText(v, tail);
        } else {
          text = /error:|CANCELLED|Killed/.test(tail)
            ? verdictText({
              state: end.state,
              reason: "",
              nodes: end.nodes,
              exitCode: String(end.code ?? ""),
            }, tail)
            : `the job step exited with code ${end.code}`;
        }
        return {
          kind: "error",
          message: `${text}` + (lines ? `; last lines of stderr.log:\n${lines}` : ""),
          ...(denial ? { violation: denial } : {}),
        };
      })();
    }

    return {
      exited,
      async stop(grace = graceMs) {
        stopRequested = true;
        connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        escalate(grace);
        await exited;
      },
      // Its step is running (connected) or gone.
      ready: Promise.race([connected, ended]),
      kill() {
        // A SIGKILLed srun cannot tell the controller: a step it was still launching would keep
        // its CPUs. TERM lets srun cancel it; KILL follows, and Slurm is told by name at the end.
        killed = stopRequested = true;
        cancel("TERM");
        const late = setTimeout(() => cancel("KILL"), 2000);
        ended.then(async () => {
          clearTimeout(late);
          await cancelStep(job.trialId);
        });
        exited.catch(() => {});
      },
    };
  }
}

/** A warm step's trial, once the runner starts it. */
interface Binding {
  readonly job: TrialJob;
  readonly listener: TrialListener;
}
