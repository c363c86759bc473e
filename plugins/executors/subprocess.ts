/**
 * Runs each trial as its own `deno run` subprocess whose permissions are its sandbox.
 *
 * @module
 */

import { exists, merge, registryEnv, settle, trialConfig, writeTrialEntry } from "./_shared.ts";
import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { dirname, join } from "../../core/_path.ts";
import type {
  Executor,
  SandboxPolicy,
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
} from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import { PROTOCOL_VERSION } from "../../core/protocol.ts";
import {
  type ChannelLimits,
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

/** Data-segment MiB a Deno process maps before running anything (V8's code range and heaps). */
const V8_DATA_MIB = 640;

/** Options of {@linkcode subprocessExecutor}. */
export interface SubprocessExecutorOptions {
  /** Extra permissions for every trial (merged with each job's). */
  readonly sandbox?: SandboxPolicy;
  /**
   * The `deno.json` trials resolve imports with, or `false` for `--no-config`. Trials never
   * write its lockfile, `node_modules` or vendor folder, and it may turn on only the unstable
   * features `sandbox.unstable` lists. @default the nearest deno.json/deno.jsonc above the
   * trainable module
   */
  readonly denoConfig?: string | false;
  /** How long a stopped trial may take to exit before it is sent SIGTERM. @default 5000 */
  readonly graceMs?: number;
  /** How long after SIGTERM a trial is sent SIGKILL. @default 2000 */
  readonly killAfterMs?: number;
  /** `--v8-flags` for trials, e.g. `--max-old-space-size=4096`. */
  readonly v8Flags?: string;
  /** Allow a trainable loaded over `http:`/`https:` (it runs sandboxed, but is fetched). @default false */
  readonly allowRemoteTrainable?: boolean;
  /** Cap of each of `stdout.log` and `stderr.log`, in bytes; later output is dropped. @default 67108864 */
  readonly maxLogBytes?: number;
  /** Bounds on the trial channel (report size, authentication). */
  readonly channel?: ChannelLimits;
}

/**
 * An executor that starts each trial as a sandboxed `deno run` subprocess. Each trial talks to
 * the driver over its own unix socket, in a private folder that only that trial is granted; the
 * socket is removed once the trial has connected, so no trial can reach, replace or pose as
 * another's channel. The user's stdout/stderr go to `stdout.log`/`stderr.log` in the trial
 * folder. Stopping escalates from a `stop` message to SIGTERM and SIGKILL on the whole process
 * group, and trials die with the driver (parent-death signal via `setpriv`, where present, plus
 * a stdin watchdog).
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options sandbox, deno.json and timing options.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { subprocessExecutor } from "./subprocess.ts";
 * const executor = subprocessExecutor(new URL("./train.ts", import.meta.url));
 * ```
 */
export function subprocessExecutor(
  trainable: string | URL,
  options: SubprocessExecutorOptions = {},
): Executor {
  const moduleUrl = resolveModule(trainable);
  const graceMs = options.graceMs ?? 5000;
  const killAfterMs = options.killAfterMs ?? 2000;
  const maxLogBytes = options.maxLogBytes ?? 64 * 1024 * 1024;
  let privateRoot = "",
    entry = "",
    configFile: string | undefined,
    nodeModules = false,
    readRoots: string[] = [],
    denoDir = "",
    tools: { setpriv: string[]; prlimit?: string } = { setpriv: [] };
  let prepared = false;
  let runs = 0;

  return {
    name: "subprocess",
    async prepare({ experimentDir, sandbox }) {
      const experimentPolicy = merge(options.sandbox ?? {}, sandbox ?? {});
      await checkTrainableSource(moduleUrl, { allowRemote: options.allowRemoteTrainable });
      privateRoot = await Deno.makeTempDir({ prefix: "tunebox-" });
      await Deno.chmod(privateRoot, 0o700);
      ({ configFile, nodeModules } = await trialConfig(
        moduleUrl,
        options.denoConfig,
        experimentPolicy,
      ));
      entry = await writeTrialEntry(experimentDir);
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
          entry,
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
      return startTrial(job, trialListener, ++runs);
    },
    async close() {
      if (privateRoot) await Deno.remove(privateRoot, { recursive: true }).catch(() => {});
    },
  };

  function startTrial(job: TrialJob, trialListener: TrialListener, run: number): TrialHandle {
    const token = crypto.randomUUID();
    // An origin of its own for localStorage and the Cache API, removed when the run ends: no
    // trial sees another's storage, and nothing piles up under DENO_DIR.
    const origin = `http://t${token.slice(0, 8)}-${run}.trial.invalid`;
    // A folder of its own per trial run: the trial is granted its socket and nothing else here.
    const channelDir = join(privateRoot, String(run));
    Deno.mkdirSync(channelDir, { mode: 0o700 });
    const socketPath = join(channelDir, "c.sock");
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
    const passEnv: Record<string, string> = {};
    for (const name of policy.env ?? []) {
      const v = Deno.env.get(name);
      if (v !== undefined) passEnv[name] = v;
    }
    const v8 = [
      ...(options.v8Flags ? [options.v8Flags] : []),
      ...(job.memoryMb ? [`--max-old-space-size=${Math.max(16, Math.floor(job.memoryMb))}`] : []),
    ];
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
      entry,
    ];
    // The OS memory limit: RLIMIT_DATA counts writable memory a process maps (ArrayBuffers,
    // wasm memories, the heap), not address space merely reserved; V8 itself maps about
    // 576 MiB of it at start (measured on Deno 2.9.6), hence the allowance on top of memoryMb.
    const limits = job.memoryMb && tools.prlimit
      ? [tools.prlimit, `--data=${(Math.ceil(job.memoryMb) + V8_DATA_MIB) * 1024 * 1024}`, "--"]
      : [];
    const argv = [...tools.setpriv, ...limits, Deno.execPath(), ...args];
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
      detached: true,
    }).spawn();
    const stderrTail = { text: "" };
    const logs = Promise.all([
      pipeToFile(child.stdout, join(job.dir, "stdout.log"), maxLogBytes),
      pipeToFile(child.stderr, join(job.dir, "stderr.log"), maxLogBytes, stderrTail),
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
      const talk = await driveTrial(first, job, trialListener);
      if (talk.broken) killGroup(child.pid, "SIGKILL");
      return talk;
    })();
    converse.catch(() => {});

    // Stop escalation: stop message, then SIGTERM at the deadline, then SIGKILL.
    let deadline = Infinity;
    let termTimer: ReturnType<typeof setTimeout> | undefined;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const escalate = (grace: number): void => {
      const at = Date.now() + Math.max(0, grace);
      if (at >= deadline) return;
      deadline = at;
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      termTimer = setTimeout(() => {
        killGroup(child.pid, "SIGTERM");
        killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), killAfterMs);
      }, Math.max(0, grace));
    };

    const exited = (async (): Promise<TrialExit> => {
      const st = await status;
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      killGroup(child.pid, "SIGKILL"); // leftovers of the trial's tree, if any
      server.forget(job.trialId);
      server.close();
      connection?.close();
      // The conversation ends when the connection does; a report still with the runner is
      // answered by it (the loop outlives every trial), so this wait is bounded.
      const talk = await settle(converse, 5000);
      await settle(logs, 5000);
      await Deno.remove(channelDir, { recursive: true }).catch(() => {});
      await removeOriginData(denoDir, origin);
      if (talk?.broken) {
        return {
          kind: "error",
          message: `the trial broke the protocol and was killed: ${talk.broken}`,
        };
      }
      if (talk?.outcome) return talk.outcome;
      if (stopRequested) return { kind: "stopped" };
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
    };
  }
}

function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch { /* the group is gone */ }
}

async function pipeToFile(
  stream: ReadableStream<Uint8Array>,
  path: string,
  maxBytes: number,
  tail?: { text: string },
): Promise<void> {
  const file = await Deno.open(path, { append: true, create: true });
  const dec = new TextDecoder();
  let written = (await file.stat()).size;
  let full = written >= maxBytes;
  try {
    for await (const chunk of stream) {
      if (tail) tail.text = (tail.text + dec.decode(chunk, { stream: true })).slice(-4096);
      if (full) continue; // keep draining, so the trial never blocks on a full pipe
      const room = maxBytes - written;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      await writeAll(file, part);
      written += part.length;
      if (written >= maxBytes) {
        full = true;
        await writeAll(
          file,
          new TextEncoder().encode(
            `\n[tunebox: this log reached its cap of ${maxBytes} bytes (maxLogBytes); ` +
              `later output was dropped]\n`,
          ),
        );
      }
    }
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/** Removes what Deno stored for an origin (`localStorage`, Cache API) under DENO_DIR. */
async function removeOriginData(denoDir: string, origin: string): Promise<void> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(origin));
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  for (
    const dir of [
      join(denoDir, "location_data", hash),
      join(denoDir, "location_data", "web_cache", hash),
    ]
  ) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

let toolsCache: Promise<{ setpriv: string[]; prlimit?: string }> | undefined;

/**
 * The util-linux tools that work here: `setpriv --pdeathsig SIGKILL` (the kernel kills the
 * trial when the driver dies, even a driver killed with SIGKILL and a trial that ignores its
 * stdin watchdog) and `prlimit` (the OS memory cap). Both exec, so the trial stays the direct
 * child of the driver.
 */
function processTools(): Promise<{ setpriv: string[]; prlimit?: string }> {
  return toolsCache ??= (async () => {
    const works = async (cmd: string, args: string[]) => {
      try {
        return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
          .success;
      } catch {
        return false; // missing, or the driver may not run it
      }
    };
    let setpriv: string[] = [];
    for (const p of ["/usr/bin/setpriv", "/bin/setpriv"]) {
      if (await works(p, ["--pdeathsig", "SIGKILL", "--", "true"])) {
        setpriv = [p, "--pdeathsig", "SIGKILL", "--"];
        break;
      }
    }
    for (const p of ["/usr/bin/prlimit", "/bin/prlimit"]) {
      if (await works(p, ["--data=1073741824", "--", "true"])) return { setpriv, prlimit: p };
    }
    return { setpriv };
  })();
}

let infoCache: Promise<{ denoDir: string; npmCache?: string }> | undefined;

function denoInfo(): Promise<{ denoDir: string; npmCache?: string }> {
  return infoCache ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      denoDir: string;
      npmCache?: string;
    };
    return { denoDir: info.denoDir, ...(info.npmCache ? { npmCache: info.npmCache } : {}) };
  })();
}
