// Private to the subprocess executor: its heavy half, which subprocess.ts loads by a computed
// specifier on `prepare()` (a trial whose trainable imports mod.ts then never reads it, nor the
// host and sandbox modules it imports). subprocess.ts keeps the options, the name and the
// trainable's URL; everything that starts, warms and watches trial processes is here.

import {
  channelExit,
  DEFAULT_MAX_LOG_BYTES,
  merge,
  passedEnv,
  pipeToFile,
  registryEnv,
  settle,
  stopEscalation,
  trialConfig,
  v8Args,
} from "./_shared.ts";
import { exists } from "../../core/_fs.ts";
import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { dirname, join } from "../../core/_path.ts";
import type {
  Executor,
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
  WarmJob,
} from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import {
  type Conversation,
  driveTrial,
  TrialChannelServer,
  type TrialConnection,
} from "../../core/channel.ts";
import {
  checkModuleGraph,
  checkTrainableSource,
  parseDenial,
  sandboxFlags,
  tuneboxRoot,
} from "../../core/sandbox.ts";
import { TuneError } from "../../core/errors.ts";
import {
  denoInfo,
  hostPort,
  killGroup,
  type ProcessTools,
  processTools,
  removeOriginData,
  ringAddresses,
  splitDevices,
} from "./_subprocess_host.ts";
import type { GroupInfo } from "../../core/collectives.ts";

import type { SubprocessExecutorOptions } from "./subprocess.ts";

/** What one worker of a multi-worker trial gets besides the trial's job. */
interface WorkerPlace {
  /** Its rank and ring (sent in its `start` message). */
  readonly group: GroupInfo;
  /** Suffix of its log files (`stdout_rank1.log`); empty for rank 0. */
  readonly logSuffix: string;
}

/**
 * The main module of every trial process: `core/trial_main.ts` itself, not a wrapper generated
 * per experiment. Deno keeps what it caches of a main module (its V8 code cache, its emitted
 * JavaScript) by path, so a wrapper in each experiment's folder left an entry in `DENO_DIR` per
 * experiment that nothing removed; this one is shared by all of them.
 */
const TRIAL_MAIN = new URL("../../core/trial_main.ts", import.meta.url).href;

/** The most processes one executor keeps started ahead (warm) at once. */
const MAX_WARM = 4;

/** Data-segment MiB a Deno process maps before running anything (V8's code range and heaps). */
const V8_DATA_MIB = 640;

/** What subprocess.ts delegates to once loaded. */
export type SubprocessRunner = Required<
  Pick<Executor, "prepare" | "start" | "warm" | "unwarm" | "close">
>;

/**
 * The executor's trial side for the trainable at `moduleUrl` (resolved): see
 * `subprocessExecutor` in subprocess.ts.
 */
export function subprocessRunner(
  moduleUrl: string,
  options: SubprocessExecutorOptions,
): SubprocessRunner {
  const graceMs = options.graceMs ?? 5000;
  const killAfterMs = options.killAfterMs ?? 2000;
  const maxLogBytes = options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  let privateRoot = "",
    configFile: string | undefined,
    nodeModules = false,
    readRoots: string[] = [],
    denoDir = "",
    tools: ProcessTools = { setsid: [], setpriv: [] };
  let prepared = false;
  let runs = 0;
  type Binding = { job: TrialJob; listener: TrialListener };
  type Warmed = {
    env: string;
    memoryMb: number | undefined;
    handle: TrialHandle & { kill(): void };
    assign(b: Binding): void;
    discard(): void;
  };
  /** Processes started ahead for the next trials, by trial id, until each is assigned. */
  const warmed = new Map<string, Warmed>();
  /** Warmed processes killed unassigned: close() waits for them, so none outlives the run. */
  const discarded = new Set<Promise<unknown>>();

  return {
    async prepare({ sandbox }) {
      const experimentPolicy = merge(options.sandbox ?? {}, sandbox ?? {});
      await checkTrainableSource(moduleUrl, { allowRemote: options.allowRemoteTrainable });
      privateRoot = await Deno.makeTempDir({ prefix: "tunebox-" });
      await Deno.chmod(privateRoot, 0o700);
      ({ configFile, nodeModules } = await trialConfig(
        moduleUrl,
        options.denoConfig,
        experimentPolicy,
      ));
      const info = await denoInfo();
      denoDir = info.denoDir;
      const packageDirs = [];
      if (configFile) packageDirs.push(join(dirname(configFile), "node_modules"));
      if (info.npmCache) packageDirs.push(info.npmCache);
      const tunebox = tuneboxRoot();
      readRoots = [
        ...(moduleUrl.startsWith("file:") ? [dirname(fromFileUrl(moduleUrl))] : []),
        ...(tunebox ? [tunebox] : []),
        ...(await Promise.all(packageDirs.map(async (d) => (await exists(d)) ? d : "")))
          .filter(Boolean),
      ];
      // Trials run with --cached-only: fetch what the module graph needs once, here.
      const cache = await new Deno.Command(Deno.execPath(), {
        args: [
          "cache",
          "--quiet",
          configFile ? `--config=${configFile}` : "--no-config",
          ...(experimentPolicy.unstable ?? []).map((u) => `--unstable-${u}`),
          TRIAL_MAIN,
          moduleUrl,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      if (!cache.success) {
        const err = new TextDecoder().decode(cache.stderr).trim();
        throw new TuneError(
          `Cannot load the trainable module ${moduleUrl}: ${
            err.split("\n").slice(0, 6).join("\n")
          }`,
        );
      }
      await checkModuleGraph(moduleUrl, {
        roots: [...readRoots, ...(experimentPolicy.read ?? [])],
        ...(configFile ? { configFile } : {}),
        unstable: experimentPolicy.unstable ?? [],
      });
      tools = await processTools();
      prepared = true;
    },
    start(job, trialListener): TrialHandle {
      if (!prepared) throw new TuneError("subprocessExecutor: prepare() must run before start()");
      const workers = job.resources?.workers ?? 1;
      if (workers > 1) return startGroup(job, trialListener, workers);
      const w = warmed.get(job.trialId);
      if (w) {
        warmed.delete(job.trialId);
        // Its environment was fixed when it started: only the same one may take the trial.
        if (w.env === JSON.stringify(job.env) && w.memoryMb === job.memoryMb) {
          w.assign({ job, listener: trialListener });
          return w.handle;
        }
        w.discard();
      }
      return startTrial(job, trialListener, ++runs);
    },
    warm(next) {
      if (!prepared || (next.resources?.workers ?? 1) > 1 || warmed.has(next.trialId)) return;
      // The runner keeps a few at most; never more than MAX_WARM idle processes here.
      if (warmed.size >= MAX_WARM) {
        const [oldest, w] = warmed.entries().next().value!;
        warmed.delete(oldest);
        w.discard();
      }
      let assign!: (b: Binding) => void, refuse!: (e: Error) => void;
      const binding = new Promise<Binding>((res, rej) => {
        assign = res;
        refuse = rej;
      });
      binding.catch(() => {});
      const handle = startTrial(next, undefined, ++runs, undefined, binding);
      warmed.set(next.trialId, {
        env: JSON.stringify(next.env),
        memoryMb: next.memoryMb,
        handle,
        assign,
        discard() {
          refuse(new Error("never assigned"));
          handle.kill();
          const exited = handle.exited.catch(() => {}).finally(() => discarded.delete(exited));
          discarded.add(exited);
        },
      });
    },
    unwarm(trialId) {
      const w = warmed.get(trialId);
      if (!w) return;
      warmed.delete(trialId);
      w.discard();
    },
    async close() {
      for (const w of warmed.values()) w.discard();
      warmed.clear();
      await Promise.all(discarded);
      if (privateRoot) await Deno.remove(privateRoot, { recursive: true }).catch(() => {});
    },
  };

  /**
   * A trial of `workers` processes: each worker is a sandboxed trial process of its own (own
   * channel, token and logs; ranks above 0 write only `rank_<r>/` in the trial's folder), placed
   * on a ring of loopback addresses whose neighbours alone it may reach. Rank 0 speaks for the
   * trial; the first worker to fail fails the trial and the others are stopped at once.
   */
  function startGroup(job: TrialJob, trialListener: TrialListener, workers: number): TrialHandle {
    const ring = ringAddresses(workers);
    const token = crypto.randomUUID();
    const devices = splitDevices(job.env.CUDA_VISIBLE_DEVICES, job.resources?.gpu ?? 0, workers);
    let failure: TrialExit | undefined;
    // Set once rank 0 is done or the trial is being stopped: the other workers then lose their
    // ring as rank 0 leaves, and what they say about it no longer matters.
    let finishing = false;
    const handles: TrialHandle[] = [];
    const stopOthers = (except: number, grace: number): void => {
      handles.forEach((h, r) => r !== except && h.stop(grace).catch(() => {}));
    };
    for (let rank = 0; rank < workers; rank++) {
      const workDir = rank === 0 ? job.workDir : join(job.workDir, `rank_${rank}`);
      if (rank > 0) Deno.mkdirSync(workDir, { recursive: true });
      const env = devices ? { ...job.env, CUDA_VISIBLE_DEVICES: devices[rank] } : job.env;
      const workerJob: TrialJob = {
        ...job,
        workDir,
        env,
        sandbox: merge(job.sandbox, {
          // Its own address (to listen on) and its next neighbour's (to connect to), only.
          net: [
            ring[rank].hostname === "127.0.0.1" ? hostPort(ring[rank]) : ring[rank].hostname,
            hostPort(ring[(rank + 1) % workers]),
          ],
        }),
      };
      const listener: TrialListener = rank === 0
        ? {
          async report(r) {
            const ack = await trialListener.report(r);
            if (ack === "stop") {
              finishing = true;
              stopOthers(0, graceMs);
            }
            return ack;
          },
          ...(trialListener.placed ? { placed: (n: string) => trialListener.placed!(n) } : {}),
        }
        : {
          // Accepted so that every rank can run the same loop, not recorded: rank 0's are the
          // trial's. A checkpoint a rank above 0 writes is thrown away.
          async report(r) {
            if (r.checkpointDir && r.checkpointDir.startsWith(workDir + "/")) {
              await Deno.remove(r.checkpointDir, { recursive: true }).catch(() => {});
            }
            return finishing ? "stop" : "continue";
          },
        };
      const group: GroupInfo = {
        rank,
        localRank: rank,
        worldSize: workers,
        listen: ring[rank],
        next: ring[(rank + 1) % workers],
        token,
        ...(options.collectiveTimeoutMs ? { timeoutMs: options.collectiveTimeoutMs } : {}),
      };
      const h = startTrial(workerJob, listener, ++runs, {
        group,
        logSuffix: rank === 0 ? "" : `_rank${rank}`,
      });
      handles.push(h);
      h.exited.then((exit) => {
        if (exit.kind === "error" && !failure && !finishing) {
          failure = {
            ...exit,
            message: `worker rank ${rank} of ${workers}: ${exit.message}`,
          };
          finishing = true;
          stopOthers(rank, 0);
        } else if (rank === 0) {
          // Rank 0 ended the trial: the others get the grace to finish too, then are stopped.
          finishing = true;
          stopOthers(0, exit.kind === "done" ? graceMs : 0);
        }
      });
    }
    const exited = Promise.all(handles.map((h) => h.exited)).then(([first]) => failure ?? first);
    return {
      exited,
      async stop(grace = graceMs) {
        finishing = true;
        await Promise.all(handles.map((h) => h.stop(grace)));
        await exited;
      },
    };
  }

  /**
   * Starts a trial process for `job`. A warm start passes `binding` and no listener: the process
   * starts, connects and loads the trainable, and gets its start message once the binding (the
   * trial's full job) comes.
   */
  function startTrial(
    job: WarmJob,
    trialListener: TrialListener | undefined,
    run: number,
    worker?: WorkerPlace,
    binding?: Promise<Binding>,
  ): TrialHandle & { kill(): void } {
    const token = crypto.randomUUID();
    // An origin of its own for localStorage and the Cache API, removed when the run ends: no
    // trial sees another's storage, and nothing piles up under DENO_DIR.
    const origin = `http://t${token.slice(0, 8)}-${run}.trial.invalid`;
    // A socket of its own per trial run, in the executor's private folder (0700): the trial is
    // granted that path and nothing else there. No folder per run: on a busy file system making
    // and removing one cost the driver ~0.3 ms per trial (inode allocation), for nothing the
    // trial's permissions did not already give.
    const socketPath = join(privateRoot, `${run}.sock`);
    const server = new TrialChannelServer(
      Deno.listen({ transport: "unix", path: socketPath }),
      options.channel,
    );
    const connected = server.expect(job.trialId, token);
    const resolution = registryEnv();
    const envNames = [
      "TUNEBOX_CHANNEL",
      "TUNEBOX_TRIAL_ID",
      "TUNEBOX_TOKEN",
      "TUNEBOX_MODULE",
      "DENO_DIR",
      ...Object.keys(resolution),
      ...Object.keys(job.env),
    ];
    const policy = merge(options.sandbox ?? {}, job.sandbox);
    const passEnv = passedEnv(policy);
    const v8 = v8Args(options.v8Flags, job.memoryMb);
    const args = [
      ...sandboxFlags({
        trialDir: job.workDir,
        recordDir: job.dir,
        socketPath,
        readRoots,
        ...(configFile ? { configFile } : {}),
        nodeModules,
        envNames,
        policy,
        location: origin,
      }),
      ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
      TRIAL_MAIN,
    ];
    // The OS memory limit: RLIMIT_DATA counts writable memory a process maps (ArrayBuffers,
    // wasm memories, the heap), not address space merely reserved; V8 itself maps about
    // 576 MiB of it at start (measured on Deno 2.9.6), hence the allowance on top of memoryMb.
    const limits = job.memoryMb && tools.prlimit
      ? [tools.prlimit, `--data=${(Math.ceil(job.memoryMb) + V8_DATA_MIB) * 1024 * 1024}`, "--"]
      : [];
    const argv = [...tools.setsid, ...tools.setpriv, ...limits, Deno.execPath(), ...args];
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: job.workDir,
      clearEnv: true,
      env: {
        ...passEnv,
        ...job.env,
        ...resolution,
        DENO_DIR: denoDir,
        NO_COLOR: "1",
        // Lets Deno resolve a program name, so a spawn attempt meets the run permission check.
        PATH: "/usr/local/bin:/usr/bin:/bin",
        TUNEBOX_CHANNEL: `unix:${socketPath}`,
        TUNEBOX_TRIAL_ID: job.trialId,
        TUNEBOX_TOKEN: token,
        TUNEBOX_MODULE: moduleUrl,
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // Its own process group, for killGroup: made by `setsid` in the child where it works
      // (Deno's `detached` makes the driver fork its whole address space: ~5 ms per trial on
      // the driver's thread, against ~1.5 ms without).
      detached: tools.setsid.length === 0,
    }).spawn();
    const stderrTail = { text: "" };
    const logs = Promise.all([
      pipeToFile(child.stdout, join(job.dir, `stdout${worker?.logSuffix ?? ""}.log`), maxLogBytes),
      pipeToFile(
        child.stderr,
        join(job.dir, `stderr${worker?.logSuffix ?? ""}.log`),
        maxLogBytes,
        stderrTail,
      ),
    ]);
    let stopRequested = false;
    let connection: TrialConnection | undefined;
    const status = child.status;

    const converse = (async (): Promise<Conversation> => {
      const first = await Promise.race([connected, status.then(() => undefined)]);
      // The channel is one connection: once the trial is in, nobody else may come.
      server.close();
      await Deno.remove(socketPath).catch(() => {});
      if (!first) return {};
      connection = first;
      const bound = binding ? await binding : { job: job as TrialJob, listener: trialListener! };
      const talk = await driveTrial(first, bound.job, bound.listener, undefined, worker?.group);
      if (talk.broken) killGroup(child.pid, "SIGKILL");
      return talk;
    })();
    converse.catch(() => {});

    // Stop escalation: stop message, then SIGTERM at the deadline, then SIGKILL.
    const { escalate, clear: clearTimers } = stopEscalation(
      () => killGroup(child.pid, "SIGTERM"),
      () => killGroup(child.pid, "SIGKILL"),
      killAfterMs,
    );

    const exited = (async (): Promise<TrialExit> => {
      const st = await status;
      clearTimers();
      // Leftovers of the trial's tree, if any: the group only, as the trial itself is reaped
      // (its pid may belong to another process by now).
      killGroup(child.pid, "SIGKILL", { groupOnly: true });
      server.forget(job.trialId);
      server.close();
      connection?.close();
      // The conversation ends when the connection does; a report still with the runner is
      // answered by it (the loop outlives every trial), so this wait is bounded.
      const talk = await settle(converse, 5000);
      await settle(logs, 5000);
      // (The socket went once the trial connected or exited: see converse.)
      await removeOriginData(denoDir, origin);
      const spoken = channelExit(talk, stopRequested);
      if (spoken) return spoken;
      const tail = stderrTail.text.trim().split("\n").slice(-8).join("\n");
      const denial = parseDenial(tail);
      const how = st.signal ? `was killed by ${st.signal}` : `exited with code ${st.code}`;
      const oom = /out of memory|Reached heap limit|memory allocation failed/i.test(tail) &&
          job.memoryMb
        ? ` (over its memory cap of ${job.memoryMb} MiB, resources.memoryMb)`
        : "";
      return {
        kind: "error",
        message: `the trial process ${how} before finishing${oom}` +
          (tail ? `; last lines of stderr.log:\n${tail}` : ""),
        ...(denial ? { violation: denial } : {}),
      };
    })();

    return {
      exited,
      async stop(grace = graceMs) {
        stopRequested = true;
        connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        escalate(grace);
        await exited;
      },
      kill() {
        stopRequested = true;
        killGroup(child.pid, "SIGKILL");
      },
    };
  }
}
