/**
 * Runs trials on a Ray cluster: every trial is a Ray job submitted through the Jobs
 * REST API of the cluster's dashboard, placed by Ray on a node with the CPUs, GPUs and custom
 * resources the trial asks for, and talking to the driver over TLS (`core/remote/channel.ts`)
 * with the same Deno permissions as a local trial.
 *
 * @module
 */

import {
  DEFAULT_MAX_LOG_BYTES,
  merge,
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
} from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import { type DriverMessage, PROTOCOL_VERSION } from "../../core/protocol.ts";
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
import type { GroupInfo } from "../../core/collectives.ts";
import {
  fitsAtOnce,
  isFinal,
  RayApiError,
  rayErrorLine,
  type RayJobInfo,
  type RayJobRequest,
  type RayJobsClient,
  rayJobsClient,
  type RayLogTail,
  type RayNode,
  unplaceable,
} from "./_ray_client.ts";
import { IMPORT_MAP, shipPackage } from "./_ray_package.ts";
import { type LauncherEnded, launcherEnded, launcherOutput } from "./_ray_launcher.ts";

export { rayErrorLine } from "./_ray_client.ts";
import type { RayExecutorOptions } from "./_ray_options.ts";
import { holdOpen, logSuffix, stderrOf } from "./_ray_io.ts";

export type { RayExecutorOptions } from "./_ray_options.ts";

/** A pooled Ray job (`trialsPerJob > 1`) running Tunebox's launcher. */
interface Launcher {
  readonly jobId: string;
  /** The id its launcher says in its hello. */
  readonly chId: string;
  /** The resources (and runtime_env) it holds: only trials asking for the same run in it. */
  readonly key: string;
  node: string;
  /** Trials given to it so far (the one it runs and one waiting included). */
  served: number;
  /** A trial holds it. */
  busy: boolean;
  /** Its trial said it is done; its process is exiting. */
  finishing: boolean;
  /** A trial waits to run after the current one. */
  reserved: boolean;
  wake?: () => void;
  /** It takes no more trials. */
  retired: boolean;
  /** Its launcher left or its job ended. */
  dead: boolean;
  readonly submittedAt: number;
  submitted?: Promise<void>;
  launchError?: unknown;
  info?: RayJobInfo;
  /** Its log, fetched when it ended without connecting. */
  logs: string;
  conn?: ReturnType<RemoteChannel["keepAlive"]>;
  connected: Promise<boolean>;
  readonly ended: Promise<RayJobInfo | undefined>;
  /** Per run id, what to call when the launcher says that trial's process ended. */
  readonly exits: Map<string, (e: LauncherEnded | undefined) => void>;
  /** Per run id, where that trial's forwarded output goes (without shared storage). */
  readonly outputs: Map<string, (text: string) => void>;
  idleTimer?: ReturnType<typeof setTimeout>;
}

/** A worker of a multi-worker trial, as {@linkcode rayExecutor}'s group gives it to its job. */
interface RayWorker {
  readonly rank: number;
  readonly workers: number;
  /**
   * Its ring permissions (its own port and its next neighbour's, on every node's address), once
   * the cluster was checked for room for the whole group; rejects when there is none.
   */
  readonly net: Promise<readonly string[]>;
  /** Waits for every worker to run; its place in the ring, or undefined when the group ends first. */
  gate(node: string): Promise<GroupInfo | undefined>;
  /** How many of the trial's workers Ray has placed (their jobs run) so far. */
  placed(): number;
  /** Says that this worker's job runs (called once). */
  running(): void;
}

const JOBS_FILE = ".ray_jobs";
const JOB_PREFIX = "tunebox-";

/**
 * An executor that runs each trial as a Ray job on an existing Ray cluster, sandboxed by the
 * same Deno permissions as a local trial. Resources map to Ray: `cpu` → `entrypoint_num_cpus`,
 * `gpu` → `entrypoint_num_gpus` (fractional allowed; Ray sets `CUDA_VISIBLE_DEVICES` and the
 * trial sees it), `custom` → `entrypoint_resources`, `memoryMb` → `entrypoint_memory`. The
 * trial is started through `env -i` with only the sandbox's variables (Ray's jobs inherit the
 * `ray start` environment, tokens included) and stdin `/dev/null`.
 *
 * A trial of several workers (`resources: { workers: N, cpu, gpu, custom }`, all per worker) is
 * N jobs that Ray places wherever each fits; the workers wait, connected to the driver, until all
 * of them run, then form their collectives' ring over their nodes' addresses. The first worker
 * to fail (or to stay PENDING past `pendingTimeoutMs`) fails the trial and the others' jobs are
 * stopped.
 *
 * Short trials can share jobs (`trialsPerJob`, as Ray Tune's `reuse_actors`): a job then runs
 * Tunebox's launcher, which starts the trials it is given one after another, each as its own
 * sandboxed process, so Ray's per-job supervisor is paid once per job instead of once per trial.
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options the cluster's address and token, where Deno comes from, storage, timing.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { rayExecutor } from "./ray.ts";
 * const executor = rayExecutor(new URL("./train.ts", import.meta.url), {
 *   address: "http://head:8265",
 *   trialsPerJob: 8, // short trials: one Ray job runs up to 8 of them, one after another
 * });
 * ```
 */
export function rayExecutor(
  trainable: string | URL,
  options: RayExecutorOptions = {},
): Executor {
  const moduleUrl = resolveModule(trainable);
  const envAddress = Deno.env.get("RAY_ADDRESS");
  const address = options.address ??
    (envAddress && /^https?:\/\//.test(envAddress) ? envAddress : "http://127.0.0.1:8265");
  if (!/^https?:\/\/[^/]+/.test(address)) {
    throw new TypeError(
      `rayExecutor: address must be the dashboard's http(s) URL (e.g. http://head:8265), got ` +
        JSON.stringify(address),
    );
  }
  const token = options.token ?? Deno.env.get("RAY_AUTH_TOKEN") ?? undefined;
  const deno = options.deno ?? "path";
  if (deno !== "path" && deno !== "pip" && !deno.startsWith("/")) {
    throw new TypeError(
      `rayExecutor: deno must be "path", "pip" or an absolute path, got ${JSON.stringify(deno)}`,
    );
  }
  const denoVersion = options.denoVersion ?? Deno.version.deno;
  if (
    options.denoPipOptions !== undefined &&
    (!Array.isArray(options.denoPipOptions) ||
      options.denoPipOptions.some((x) => typeof x !== "string"))
  ) {
    throw new TypeError(
      `rayExecutor: denoPipOptions must be a list of pip options (strings), got ${
        JSON.stringify(options.denoPipOptions)
      }`,
    );
  }
  const shared = options.sharedStorage ?? true;
  const graceMs = options.graceMs ?? 5000;
  const pollMs = options.pollMs ?? 1000;
  const pendingTimeoutMs = options.pendingTimeoutMs ?? 600_000;
  const checkpointMaxBytes = options.checkpointMaxBytes ?? 1 << 30;
  if (
    options.collectiveTimeoutMs !== undefined &&
    !(Number.isFinite(options.collectiveTimeoutMs) && options.collectiveTimeoutMs > 0)
  ) {
    throw new RangeError(
      `rayExecutor: collectiveTimeoutMs must be a number of ms > 0, got ${
        JSON.stringify(options.collectiveTimeoutMs)
      }`,
    );
  }
  if (!(Number.isSafeInteger(checkpointMaxBytes) && checkpointMaxBytes > 0)) {
    throw new RangeError(
      `rayExecutor: checkpointMaxBytes must be a whole number of bytes > 0, got ${
        JSON.stringify(options.checkpointMaxBytes)
      }`,
    );
  }
  const trialsPerJob = options.trialsPerJob ?? 1;
  if (!(Number.isSafeInteger(trialsPerJob) && trialsPerJob >= 1)) {
    throw new RangeError(
      `rayExecutor: trialsPerJob must be a whole number of trials >= 1, got ${
        JSON.stringify(options.trialsPerJob)
      }`,
    );
  }
  const log = options.log ?? ((m: string) => console.warn(`tunebox: ${m}`));
  const ray: RayJobsClient = rayJobsClient(address, token);

  let channel: RemoteChannel | undefined;
  let experimentDir = "", entry = "", denoDir = "", configFile: string | undefined;
  let nodeModules = false;
  let readRoots: string[] = [];
  let prepared = false;
  let runs = 0;
  let runtimeEnv: Record<string, unknown> = {};
  let nodesCache: { at: number; nodes: RayNode[] } | undefined;
  /** Live jobs by submission id. */
  const live = new Map<string, (info: RayJobInfo | undefined) => void>();
  /** Jobs stopped while PENDING (or left by a killed driver): deleted once they end. */
  const zombies = new Set<string>();
  const lateStopped = new Set<string>();
  /** Jobs whose trial ended, until their logs are fetched and their record deleted. */
  const finishing = new Set<Promise<unknown>>();
  let poller: ReturnType<typeof setInterval> | undefined;
  let polling = false;
  const expId = crypto.randomUUID().slice(0, 8);
  /** Pooled jobs (trialsPerJob > 1) that may take another trial. */
  const launchers = new Set<Launcher>();
  let pools = 0;
  let closing = false;
  const launcherUrl = new URL("./_ray_launcher.ts", import.meta.url).href;
  /** Ring ports of this driver's live multi-worker trials (no two groups share one). */
  const ringPortsInUse = new Set<number>();

  function poll(): void {
    poller ??= setInterval(async () => {
      if (polling) return;
      if (!live.size && !zombies.size) {
        clearInterval(poller);
        poller = undefined;
        return;
      }
      polling = true;
      try {
        const jobs = new Map((await ray.list()).map((j) => [j.submission_id, j]));
        for (const [id, tell] of live) {
          // A job just submitted may be missing from the list for a moment: ask for it.
          tell(
            jobs.get(id) ?? await ray.get(id).catch(() => ({ status: "PENDING" }) as RayJobInfo),
          );
        }
        for (const id of [...zombies]) {
          const j = jobs.get(id);
          if (!j) zombies.delete(id);
          else if (isFinal(j.status)) {
            zombies.delete(id);
            await ray.delete(id).catch(() => {});
          } else if (j.status === "RUNNING" && !lateStopped.has(id)) {
            // Ray ran a job it had been told to stop while PENDING: stop it again (its trial's
            // token is refused in any case).
            lateStopped.add(id);
            log(`Ray started job ${id} after it was stopped while PENDING; stopping it again`);
            await ray.stop(id).catch(() => {});
          }
        }
      } catch {
        /* the dashboard is busy: next round */
      } finally {
        polling = false;
      }
    }, pollMs);
  }

  async function clusterNodes(): Promise<RayNode[]> {
    if (nodesCache && Date.now() - nodesCache.at < 10_000) return nodesCache.nodes;
    const nodes = await ray.nodes();
    nodesCache = { at: Date.now(), nodes };
    return nodes;
  }

  const executor = {
    name: "ray",
    // A trial of N workers is N jobs, placed by Ray wherever each fits.
    multiWorker: true,
    capacity(resources: Resources): number {
      return Math.max(1, Math.floor((options.maxJobs ?? 64) / (resources.workers ?? 1)));
    },
    async prepare({ experimentDir: dir, sandbox }) {
      experimentDir = dir;
      // One clear error before any trial: unreachable, wrong or missing token, not a dashboard.
      const version = await ray.version();
      const policy = merge(options.sandbox ?? {}, sandbox ?? {});
      await checkTrainableSource(moduleUrl);
      ({ configFile, nodeModules } = await trialConfig(moduleUrl, options.denoConfig, policy));
      await stopLeftovers(dir);
      entry = await writeTrialEntry(dir);
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
          ...(trialsPerJob > 1 ? [launcherUrl] : []),
        ],
        env: { NO_COLOR: "1", DENO_DIR: denoDir },
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
      readRoots = [
        ...(moduleUrl.startsWith("file:") ? [dirname(fromFileUrl(moduleUrl))] : []),
        ...(tunebox ? [tunebox] : []),
        ...(configFile && nodeModules ? [join(dirname(configFile), "node_modules")] : []),
        join(denoDir, "npm"),
      ];
      await checkModuleGraph(moduleUrl, {
        roots: [...readRoots, ...(policy.read ?? [])],
        ...(configFile ? { configFile } : {}),
        unstable: policy.unstable ?? [],
      });
      runtimeEnv = deno === "pip"
        ? {
          pip: {
            packages: [`deno==${denoVersion}`],
            pip_check: false,
            pip_install_options: [
              "--disable-pip-version-check",
              "--no-cache-dir",
              ...(options.denoPipOptions ?? []),
            ],
          },
        }
        : {};
      if (!shared) {
        if (!moduleUrl.startsWith("file:")) {
          throw new TuneError(
            `rayExecutor: sharedStorage: false ships the trainable's folder, so the trainable ` +
              `must be a local file (got ${moduleUrl})`,
          );
        }
        const pkg = await shipPackage(ray, {
          // A pooled job's launcher is shipped too.
          modules: [entry, moduleUrl, ...(trialsPerJob > 1 ? [launcherUrl] : [])],
          // Only the module cache's downloads: its sqlite caches differ from run to run.
          folders: [dirname(fromFileUrl(moduleUrl)), join(denoDir, "npm"), join(denoDir, "remote")],
          ...(configFile ? { files: [configFile], configFile } : {}),
          denoDir,
          packagePath,
        });
        runtimeEnv = { ...runtimeEnv, working_dir: pkg.uri };
        log(
          `shipping the trainable as Ray package ${pkg.uri} (${pkg.files} files, ${
            (pkg.bytes / 1e6).toFixed(1)
          } MB${pkg.uploaded ? ", uploaded" : ", already on the cluster"})`,
        );
      }
      channel = await openRemoteChannel({
        ...(options.driverHost ? { host: options.driverHost } : {}),
        ...(options.driverPort ? { port: options.driverPort } : {}),
        ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
        ...(options.channel ? { limits: options.channel } : {}),
        log,
      });
      if (options.probe ?? true) await probeDeno(version);
      prepared = true;
    },
    start(job, listener): TrialHandle {
      if (!prepared || !channel) {
        throw new TuneError("rayExecutor: prepare() must run before start()");
      }
      const workers = job.resources?.workers ?? 1;
      if (workers > 1) return startGroup(channel, job, listener, workers);
      if (trialsPerJob > 1) return startPooledTrial(channel, job, listener, ++runs);
      return startTrial(channel, job, listener, ++runs);
    },
    async close() {
      closing = true;
      for (const l of [...launchers]) if (!l.busy) retire(l);
      // Trials that said done still have jobs ending (Ray's supervisor exits after them), and
      // jobs stopped while PENDING usually get placed as soon as the last trials free their
      // resources: keep polling (and refusing their tokens) and delete each once it ends.
      const until = Date.now() + 30_000;
      while ((live.size || zombies.size || finishing.size) && Date.now() < until) {
        poll();
        await new Promise((r) => setTimeout(r, pollMs));
      }
      await Promise.all([...finishing]);
      // Ray under load can take minutes to mark a finished job as ended: stop what is left and
      // keep its id in .ray_jobs, so the next driver of this experiment deletes it.
      const left = [...new Set([...zombies, ...live.keys()])];
      for (const id of left) await ray.stop(id).catch(() => {});
      zombies.clear();
      live.clear();
      channel?.close();
      if (poller) clearInterval(poller);
      poller = undefined;
      if (!experimentDir) return;
      if (left.length) {
        log(
          `${left.length} Ray job(s) of this experiment have not ended yet (${left[0]}, ...); ` +
            `they were stopped, and their trials cannot reach the closed driver`,
        );
        await Deno.writeTextFile(join(experimentDir, JOBS_FILE), left.map((x) => `${x}\n`).join(""))
          .catch(() => {});
      } else await Deno.remove(join(experimentDir, JOBS_FILE)).catch(() => {});
    },
  } as Executor;
  // Saved in experiment.json so `tunebox resume` makes it again; never the token (the resumed
  // driver reads RAY_AUTH_TOKEN) nor the log function.
  const { token: _t, log: _l, ...saved } = options;
  Object.defineProperty(executor, "spec", {
    value: { name: "ray", options: JSON.parse(JSON.stringify({ ...saved, address })) },
    enumerable: false,
    configurable: true,
  });
  return executor;

  /**
   * Where a driver path sits in the working_dir package: the experiment's entry and module
   * cache at fixed places (so the same trainable makes the same package in every experiment),
   * everything else under `root/<its absolute path>`.
   */
  function packagePath(p: string): string {
    if (p === entry) return "tunebox_entry.ts";
    if (p === denoDir) return "deno_dir";
    if (p.startsWith(`${denoDir}/`)) return `deno_dir/${p.slice(denoDir.length + 1)}`;
    return `root${p}`;
  }

  /** Checks Deno runs on the cluster with a probe job, and says what to do when it does not. */
  async function probeDeno(rayVersion: string): Promise<void> {
    const id = `${JOB_PREFIX}probe-${expId}-${crypto.randomUUID().slice(0, 6)}`;
    await ray.submit({
      submission_id: id,
      entrypoint: `${denoLookup()} && exec "$D" --version </dev/null`,
      entrypoint_num_cpus: 0,
      ...(Object.keys(runtimeEnv).length ? { runtime_env: runtimeEnv } : {}),
      metadata: { tunebox: "probe" },
    });
    let info: RayJobInfo | undefined;
    const until = Date.now() + Math.max(120_000, pendingTimeoutMs);
    while (Date.now() < until) {
      info = await ray.get(id).catch(() => undefined);
      if (info && isFinal(info.status)) break;
      await new Promise((r) => setTimeout(r, Math.min(pollMs, 500)));
    }
    const logs = await ray.logs(id).catch(() => "");
    if (!info || !isFinal(info.status)) await ray.stop(id).catch(() => {});
    else await ray.delete(id).catch(() => {});
    if (info?.status === "SUCCEEDED") {
      const m = /deno (\d+\.\d+\.\d+)/.exec(logs);
      if (m && m[1] !== Deno.version.deno) {
        log(
          `the Ray nodes run Deno ${m[1]}, the driver ${Deno.version.deno}: trials are checked ` +
            `and cached by the driver's Deno, so keep them the same`,
        );
      }
      return;
    }
    const said = (logs.split("\n").filter((l) => /tunebox:|error|ERROR|No such/.test(l)).pop() ??
      rayErrorLine(info?.message ?? "")).trim();
    throw new TuneError(
      `Deno does not run on the Ray cluster at ${address} (Ray ${rayVersion}): a probe job ` +
        `${info ? `ended ${info.status}` : "did not end in time"}${said ? `: ${said}` : ""}. ` +
        (deno === "pip"
          ? `With deno: "pip" the nodes install deno==${denoVersion} from PyPI${
            options.denoPipOptions?.length
              ? ` (pip install ${options.denoPipOptions.join(" ")})`
              : ""
          }, which needs pip, virtualenv and that version on the index (or network access) ` +
            `on the nodes.`
          : `Install Deno ${Deno.version.deno} on every node (on the PATH of the user that ran ` +
            `\`ray start\`), give its absolute path with rayExecutor({ deno: "/path/to/deno" }), ` +
            `or let Ray install it per job with rayExecutor({ deno: "pip" }).`),
    );
  }

  /** Shell that sets `$D` to the Deno binary, or exits 127 saying why. */
  function denoLookup(): string {
    if (deno.startsWith("/")) {
      return `D=${shq(deno)}; test -x "$D" || { echo "tunebox: ${deno} is not an executable ` +
        `on Ray node $(hostname)" >&2; exit 127; }`;
    }
    return `D=$(command -v deno) || { echo "tunebox: deno is not on the PATH of Ray node ` +
      `$(hostname)" >&2; exit 127; }`;
  }

  /** Stops the jobs a killed driver left behind (their ids are in `.ray_jobs`). */
  async function stopLeftovers(dir: string): Promise<void> {
    let ids: string[] = [];
    try {
      ids = (await Deno.readTextFile(join(dir, JOBS_FILE))).split("\n").filter((x) =>
        x.startsWith(JOB_PREFIX)
      );
    } catch { /* none */ }
    for (const id of ids) {
      const info = await ray.get(id).catch(() => undefined);
      if (!info) continue;
      if (!isFinal(info.status)) {
        log(`stopping Ray job ${id}, left ${info.status} by an earlier driver of this experiment`);
        await ray.stop(id).catch(() => {});
        zombies.add(id);
      } else {
        await ray.delete(id).catch(() => {});
      }
    }
    if (zombies.size) poll();
    await Deno.remove(join(dir, JOBS_FILE)).catch(() => {});
  }

  function rayResources(job: TrialJob): Pick<
    RayJobRequest,
    "entrypoint_num_cpus" | "entrypoint_num_gpus" | "entrypoint_memory" | "entrypoint_resources"
  > {
    const r: Resources & { custom?: Readonly<Record<string, number>> } = job.resources ?? {};
    const memoryMb = r.memoryMb ?? job.memoryMb;
    return {
      entrypoint_num_cpus: r.cpu ?? 1,
      ...(r.gpu ? { entrypoint_num_gpus: r.gpu } : {}),
      ...(memoryMb ? { entrypoint_memory: Math.ceil(memoryMb * 1024 * 1024) } : {}),
      ...(r.custom && Object.keys(r.custom).length
        ? { entrypoint_resources: { ...r.custom } }
        : {}),
    };
  }

  /** The resources as Ray's node totals name them, for the placement check. */
  function need(job: TrialJob): Record<string, number> {
    const r = rayResources(job);
    return {
      ...(r.entrypoint_num_cpus ? { CPU: r.entrypoint_num_cpus } : {}),
      ...(r.entrypoint_num_gpus ? { GPU: r.entrypoint_num_gpus } : {}),
      ...(r.entrypoint_memory ? { memory: r.entrypoint_memory } : {}),
      ...r.entrypoint_resources,
    };
  }

  /** The job's entrypoint: find Deno, then `exec env -i <sandbox env> deno run <flags> entry`. */
  function entrypoint(
    job: TrialJob,
    run: number,
    ch: RemoteChannel,
    token: string,
    trialDir: string,
    worker?: RayWorker,
    ringNet: readonly string[] = [],
  ): string {
    const policy = merge(options.sandbox ?? {}, job.sandbox);
    const passEnv: Record<string, string> = {};
    for (const name of policy.env ?? []) {
      const v = Deno.env.get(name);
      if (v !== undefined) passEnv[name] = v;
    }
    // Ray sets CUDA_VISIBLE_DEVICES for the GPUs it gives; the driver's pick is local.
    const jobEnv = Object.fromEntries(
      Object.entries(job.env).filter(([k]) => k !== "CUDA_VISIBLE_DEVICES"),
    );
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
    const v8 = [
      ...(options.v8Flags ? [options.v8Flags] : []),
      ...(memoryMb ? [`--max-old-space-size=${Math.max(16, Math.floor(memoryMb))}`] : []),
    ];
    // Without shared storage the shipped files are under the job's working dir ($W on the node).
    const W = "\u0000W\u0000";
    const here = (p: string) => shared ? p : `${W}/${packagePath(p)}`;
    const args = [
      ...sandboxFlags({
        trialDir,
        ...(shared ? { recordDir: job.dir } : {}),
        readRoots: readRoots.map(here),
        ...(configFile ? { configFile: here(configFile) } : {}),
        nodeModules,
        envNames,
        policy: { ...policy, net: [ch.netPermission, ...ringNet, ...(policy.net ?? [])] },
        location: `http://${job.trialId.replace(/[^a-zA-Z0-9-]/g, "-")}-${run}.trial.invalid`,
      }),
      ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
      here(entry),
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
      denoLookup(),
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

  /**
   * How a trial whose process ended without an outcome failed, in words: from Ray's record of its
   * job (or, pooled, the exit of its process in a launcher's job) and its output's last lines.
   */
  function failure(
    end: RayJobInfo | undefined,
    tail: string,
    at: { jobId: string; node: string; connected: boolean; verdict?: string },
  ): TrialExit {
    const { jobId, node } = at;
    const lines = tail.trim().split("\n").filter((l) => !/^\d{4}-\d\d-\d\d .*(INFO|DEBUG)/.test(l))
      .slice(-8).join("\n");
    const unreachable = /tunebox: cannot reach the driver at (\S+): (.*)/.exec(tail);
    if (unreachable) {
      return {
        kind: "error",
        message: `the trial could not reach the driver at ${unreachable[1]} (${
          unreachable[2]
        }): driverHost must be an address every Ray node reaches`,
        fatal: true,
      };
    }
    if (/tunebox: deno is not on the PATH|is not an executable on Ray node/.test(tail)) {
      return { kind: "error", message: tail.trim().split("\n").pop()!, fatal: true };
    }
    if (
      end?.error_type === "RUNTIME_ENV_SETUP_FAILED" || /runtime.env/i.test(end?.error_type ?? "")
    ) {
      return {
        kind: "error",
        message: `Ray could not set up the job's runtime_env: ${rayErrorLine(end?.message ?? "")}`,
        fatal: true,
      };
    }
    if (shared && !at.connected && /Module not found|No such file|can't cd/.test(tail)) {
      return {
        kind: "error",
        message:
          `the experiment folder ${experimentDir} is not visible on Ray node ${
            node || "?"
          }: storage must be shared by every node (or set sharedStorage: false); last lines:\n` +
          lines,
        fatal: true,
      };
    }
    const denial = parseDenial(lines);
    const verdict = at.verdict ??
      (!end
        ? `Ray lost job ${jobId}`
        : `Ray job ${jobId} ended ${end.status}${
          end.driver_exit_code != null ? ` (exit code ${end.driver_exit_code})` : ""
        }${node ? ` on node ${node}` : ""}`);
    return {
      kind: "error",
      message: verdict + (lines ? `; last lines of the trial's output:\n${lines}` : ""),
      ...(denial ? { violation: denial } : {}),
    };
  }

  /** The node a running job is on, from Ray's record of it. */
  function nodeOf(info: RayJobInfo): string {
    const m = /^https?:\/\/\[?([^\]/]+?)\]?:\d+/.exec(info.driver_agent_http_address ?? "");
    return m?.[1] ?? info.driver_node_id?.slice(0, 12) ?? "";
  }

  /** The job's entrypoint for a pooled job: Tunebox's launcher, connected to the driver. */
  function launcherEntrypoint(ch: RemoteChannel, id: string, token: string): string {
    // Not `env -i`: the launcher is Tunebox's own code, and the trials' commands it runs need
    // what Ray gives the job (PATH to Deno, CUDA_VISIBLE_DEVICES); each of them starts its trial
    // through `env -i` with only that trial's variables.
    // Without shared storage the launcher and the module cache are in the job's working dir.
    const env = { ...ch.trialEnv(id, token), NO_COLOR: "1" };
    const local = !shared && launcherUrl.startsWith("file:");
    return [
      denoLookup(),
      `W=$(pwd)`,
      [
        "exec env",
        ...Object.entries(env).map(([k, v]) => shq(`${k}=${v}`)),
        shared ? shq(`DENO_DIR=${denoDir}`) : `DENO_DIR="$W/deno_dir"`,
        `"$D" run --no-config --no-lock --no-prompt --cached-only`,
        shq(`--allow-net=${ch.netPermission}`),
        "--allow-run=/bin/sh --allow-env",
        local ? `"$W/"${shq(packagePath(fromFileUrl(launcherUrl)))}` : shq(launcherUrl),
        "</dev/null",
      ].join(" "),
    ].join("; ");
  }

  /** A new pooled job for trials asking for `job`'s resources (submitted in the background). */
  function newLauncher(ch: RemoteChannel, job: TrialJob, key: string): Launcher {
    const jobId = `${JOB_PREFIX}${expId}-pool-${++pools}`;
    const token = crypto.randomUUID();
    const chId = `launcher@${jobId}`;
    const expected = ch.server.expect(chId, token);
    let resolveEnded!: (v: RayJobInfo | undefined) => void;
    const ended = new Promise<RayJobInfo | undefined>((r) => resolveEnded = r);
    const l: Launcher = {
      jobId,
      chId,
      key,
      node: "",
      served: 0,
      busy: false,
      finishing: false,
      reserved: false,
      retired: false,
      dead: false,
      submittedAt: Date.now(),
      exits: new Map(),
      outputs: new Map(),
      ended,
      logs: "",
      connected: Promise.resolve(false),
    };
    launchers.add(l);
    const submitted = (async () => {
      if (options.checkPlacement ?? true) {
        const why = unplaceable(need(job), await clusterNodes());
        if (why) {
          throw Object.assign(
            new TuneError(
              `Ray cannot place trial ${job.trialId} on any node of ${address}: ${why}. ` +
                `Ask for resources a node has (resources: { cpu, gpu, custom }), add such a ` +
                `node, or set checkPlacement: false for an autoscaling cluster`,
            ),
            { fatal: true },
          );
        }
      }
      await Deno.writeTextFile(join(experimentDir, JOBS_FILE), `${jobId}\n`, { append: true });
      await ray.submit({
        submission_id: jobId,
        entrypoint: launcherEntrypoint(ch, chId, token),
        ...rayResources(job),
        ...(Object.keys(runtimeEnv).length ? { runtime_env: runtimeEnv } : {}),
        metadata: { tunebox_pool: jobId, tunebox_experiment: experimentDir },
      });
      live.set(jobId, (info) => {
        if (info) l.info = info;
        if (info?.status === "RUNNING" && !l.node) l.node = nodeOf(info);
        if (!info || isFinal(info.status)) {
          live.delete(jobId);
          resolveEnded(info);
        }
      });
      poll();
    })();
    l.submitted = submitted;
    submitted.catch((e) => {
      l.launchError = e;
      resolveEnded(undefined);
    });
    // Once it ended: its log (for a launcher that never connected, to say why), then its record.
    const reaped = ended.then(async (info) => {
      l.dead = true;
      launchers.delete(l);
      ch.server.forget(chId);
      for (const f of l.exits.values()) f(undefined);
      if (!info) return;
      if (!l.conn) l.logs = await ray.logs(jobId).catch(() => "");
      await ray.delete(jobId).catch(() => {});
    });
    finishing.add(reaped);
    reaped.finally(() => finishing.delete(reaped));
    l.connected = (async () => {
      const c = await Promise.race([expected, ended.then(() => undefined)]);
      if (!c || l.dead) return false;
      const conn = ch.keepAlive(c, () => {
        log(`the launcher of Ray job ${jobId} went silent; stopping the job`);
        ray.stop(jobId).catch(() => {});
      });
      l.conn = conn;
      // Its node, for the live table (the poller may not have seen it running yet).
      if (!l.node) {
        const info = await settle(ray.get(jobId), 2000);
        if (info) l.node = nodeOf(info);
      }
      (async () => {
        try {
          for (;;) {
            const r = await conn.messages.next();
            if (r.done) break;
            const o = launcherOutput(r.value);
            if (o) l.outputs.get(o.id)?.(o.text);
            const e = o ? undefined : launcherEnded(r.value);
            if (e) l.exits.get(e.id)?.(e);
          }
        } catch { /* the connection broke */ }
        // The launcher left: its trials' processes died with it; its job ends.
        l.dead = true;
        launchers.delete(l);
        for (const f of l.exits.values()) f(undefined);
        if (!isFinal(l.info?.status ?? "PENDING")) ray.stop(jobId).catch(() => {});
      })();
      return true;
    })();
    return l;
  }

  /** A pooled job for `job`: an idle one asking for the same, one whose trial is ending, or a new one. */
  function acquire(ch: RemoteChannel, job: TrialJob): { l: Launcher; turn?: Promise<void> } {
    const key = JSON.stringify([rayResources(job), runtimeEnv]);
    for (const l of launchers) {
      if (l.key !== key || l.retired || l.dead || l.served >= trialsPerJob) continue;
      if (!l.busy) {
        clearTimeout(l.idleTimer);
        l.busy = true;
        l.served++;
        return { l };
      }
      if (l.finishing && !l.reserved) {
        // Its trial said it is done and its process is exiting: take the job after it.
        l.reserved = true;
        l.served++;
        return { l, turn: new Promise<void>((r) => l.wake = r) };
      }
    }
    const l = newLauncher(ch, job, key);
    l.busy = true;
    l.served = 1;
    return { l };
  }

  /** The trial holding `l` is over (its process ended, or it never ran): the next one, or idle. */
  function vacate(l: Launcher): void {
    l.busy = false;
    l.finishing = false;
    if (l.retired || l.dead) return;
    if (l.reserved) {
      l.reserved = false;
      l.busy = true;
      const wake = l.wake;
      l.wake = undefined;
      wake?.();
      return;
    }
    if (l.served >= trialsPerJob || closing) return retire(l);
    clearTimeout(l.idleTimer);
    l.idleTimer = setTimeout(() => retire(l), Math.max(2000, 2 * pollMs));
  }

  /** No more trials for `l`: its launcher is told to exit (or, not connected, its job given up). */
  function retire(l: Launcher): void {
    if (l.retired) return;
    l.retired = true;
    clearTimeout(l.idleTimer);
    launchers.delete(l);
    l.wake?.();
    if (l.conn) {
      l.conn.send({ type: "exit" } as unknown as DriverMessage);
      return;
    }
    // Never connected (PENDING, or starting): refuse its token, stop it, delete it once it ends.
    channel?.server.forget(l.chId);
    if (live.delete(l.jobId)) {
      zombies.add(l.jobId);
      ray.stop(l.jobId).catch(() => {});
      poll();
    }
  }

  /**
   * A trial run by a pooled job (`trialsPerJob > 1`): the job's launcher starts the trial's
   * command, the very one a job of its own would run, and says when its process ended. Stopping
   * escalates from the trial's `stop` message to SIGTERM and SIGKILL on the trial's process
   * group, sent by the launcher; the job lives on for the next trial.
   */
  function startPooledTrial(
    ch: RemoteChannel,
    job: TrialJob,
    listener: TrialListener,
    run: number,
  ): TrialHandle {
    const token = crypto.randomUUID();
    const connected = ch.server.expect(job.trialId, token);
    const assign = `${job.trialId}-${run}`;
    // Without shared storage the trial's folder is a fresh temp folder on its node, and its
    // output comes over the launcher's connection into its stdout.log on the driver.
    const trialDir = shared ? job.workDir : `/tmp/tunebox-${expId}/${assign}`;
    let recent = "";
    let written = 0;
    let writing: Promise<unknown> = Promise.resolve();
    const output = (text: string) => {
      recent = (recent + text).slice(-4096);
      if (written >= DEFAULT_MAX_LOG_BYTES) return;
      const part = text.slice(0, DEFAULT_MAX_LOG_BYTES - written);
      written += part.length;
      const capped = written >= DEFAULT_MAX_LOG_BYTES
        ? `\n[tunebox: this log reached its cap of ${DEFAULT_MAX_LOG_BYTES} bytes; later output ` +
          `was dropped]\n`
        : "";
      writing = writing.then(() =>
        Deno.writeTextFile(join(job.dir, "stdout.log"), part + capped, { append: true })
      ).catch(() => {});
    };
    let l: Launcher | undefined;
    let ran = false;
    let stopRequested = false;
    let silent = false;
    let fatal = false;
    let launchError: string | undefined;
    let connection: ReturnType<RemoteChannel["keepAlive"]> | undefined;
    let resolveEnded!: (v: LauncherEnded | undefined) => void;
    const ended = new Promise<LauncherEnded | undefined>((r) => resolveEnded = r);
    let onStop!: () => void;
    const stopping = new Promise<"stop">((r) => onStop = () => r("stop"));

    const launch = (async () => {
      for (let attempt = 0;; attempt++) {
        const a = acquire(ch, job);
        l = a.l;
        if (a.turn && await Promise.race([a.turn, stopping]) === "stop") {
          if (l.reserved) {
            l.reserved = false;
            l.served--;
          } else vacate(l);
          return;
        }
        if (stopRequested) return vacate(l);
        const left = pendingTimeoutMs - (Date.now() - l.submittedAt);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ok = await Promise.race([
          l.connected,
          stopping,
          new Promise<"late">((r) => timer = setTimeout(() => r("late"), Math.max(0, left))),
        ]);
        clearTimeout(timer);
        if (ok === "stop") {
          // A job made for this trial and not running yet is given up; a running one kept.
          if (!l.conn) retire(l);
          else vacate(l);
          return;
        }
        if (ok === "late") {
          launchError = `Ray did not place trial ${job.trialId}'s job ${l.jobId} within ` +
            `${pendingTimeoutMs} ms (it asks for ${JSON.stringify(need(job))}; Ray says: ${
              rayErrorLine(l.info?.message ?? "")
            }): the cluster is busy or lacks those resources; raise pendingTimeoutMs or ask ` +
            `for less`;
          retire(l);
          return;
        }
        if (ok && !l.dead) break;
        // The job ended before its launcher ran a trial: say why (once), or try a fresh job
        // when the one reused has just gone.
        if (l.served > 1 && attempt < 2) continue;
        await l.submitted?.catch(() => {});
        if (l.launchError) {
          const e = l.launchError as Error & { fatal?: boolean; status?: number };
          launchError = e.message;
          fatal = !!e.fatal || e instanceof RayApiError && [400, 401, 403].includes(e.status!);
          return;
        }
        await l.ended;
        const f = failure(l.info, l.logs, { jobId: l.jobId, node: l.node, connected: false });
        launchError = (f as { message?: string }).message ?? `Ray job ${l.jobId} ended`;
        fatal = !!(f as { fatal?: boolean }).fatal;
        return;
      }
      l.exits.set(assign, (e) => resolveEnded(e));
      if (!shared) l.outputs.set(assign, output);
      await l.conn!.send(
        {
          type: "run",
          id: assign,
          script: entrypoint(job, run, ch, token, trialDir),
          ...(shared ? {} : { output: true }),
        } as unknown as DriverMessage,
      );
      ran = true;
      if (l.node) listener.placed?.(l.node);
    })().catch((e) => {
      launchError = String((e as Error)?.message ?? e);
      if (l) vacate(l);
    }).finally(() => {
      if (!ran) resolveEnded(undefined);
    });
    ended.then((e) => {
      if (l && ran) {
        l.exits.delete(assign);
        l.outputs.delete(assign);
        if (e) vacate(l);
      }
    });

    const converse = (async (): Promise<Conversation> => {
      const first = await Promise.race([connected, ended.then(() => undefined)]);
      if (!first) return {};
      connection = ch.keepAlive(first, () => {
        silent = true;
        kill("SIGKILL");
      });
      const talk = shared
        ? await driveTrial(connection, job, listener)
        : await driveTrial(connection, { ...job, workDir: trialDir }, listener, {
          localDir: job.workDir,
          maxBytes: checkpointMaxBytes,
          ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
        });
      // Its process is ending: the next trial asking for the same may queue for this job.
      if (talk.outcome && l) l.finishing = true;
      return talk;
    })();
    converse.catch(() => {});

    const kill = (signal: "SIGTERM" | "SIGKILL") => {
      if (ran) l?.conn?.send({ type: "kill", id: assign, signal } as unknown as DriverMessage);
    };
    const { escalate, clear: clearTimers } = stopEscalation(
      () => kill("SIGTERM"),
      () => kill("SIGKILL"),
    );

    const exited = (async (): Promise<TrialExit> => {
      await launch;
      const talkOrEnd = await Promise.race([
        converse.then((c) => ({ talk: c })),
        ended.then(() => undefined),
      ]);
      let talk = talkOrEnd?.talk;
      if (talk?.broken) kill("SIGKILL");
      if (!talk?.outcome || talk.broken) {
        const end = await ended;
        connection?.close();
        talk ??= await settle(converse, 5000);
        clearTimers();
        ch.server.forget(job.trialId);
        if (launchError) return { kind: "error", message: launchError, fatal };
        if (talk?.broken) {
          return {
            kind: "error",
            message: `the trial broke the protocol and was killed: ${talk.broken}`,
          };
        }
        if (talk?.outcome) return talk.outcome;
        if (stopRequested) return { kind: "stopped" };
        if (silent) {
          return {
            kind: "error",
            message: `the trial went silent for ${ch.heartbeatMs} ms (no heartbeat: its node or ` +
              `network may be down) and its process was killed`,
          };
        }
        const where = l?.node ? ` on node ${l.node}` : "";
        return failure(
          end
            ? { submission_id: l!.jobId, status: end.code === 0 ? "SUCCEEDED" : "FAILED" }
            : l?.info,
          shared ? await stderrOf(job.dir) : (await writing, recent),
          {
            jobId: l?.jobId ?? "",
            node: l?.node ?? "",
            connected: !!connection,
            verdict: end
              ? `the trial's process in Ray job ${
                l!.jobId
              }${where} ended with exit code ${end.code}${end.signal ? ` (${end.signal})` : ""}`
              : `Ray job ${l?.jobId} running the trial ended ${
                l?.info?.status ?? "(lost)"
              }${where}`,
          },
        );
      }
      clearTimers();
      ch.server.forget(job.trialId);
      // The process ends by itself; make sure it does (the job then takes the next trial).
      const done = settle(ended, 15_000).then((v) => {
        if (!v) kill("SIGKILL");
      });
      // Without shared storage the trial's last output comes with its end: wait for it.
      if (!shared) {
        await done;
        await writing;
      }
      return talk.outcome;
    })();

    return {
      exited,
      async stop(grace = graceMs) {
        stopRequested = true;
        onStop();
        connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        escalate(grace);
        await exited;
      },
    };
  }

  /**
   * A trial of `workers` Ray jobs, one per worker, each asking for the per-worker resources and
   * placed by Ray wherever it fits (on one node or several). Each worker connects to the driver
   * and waits there, not in a collective, until every worker's job runs; then each learns its
   * ring: its node's address with a port of its own to listen on, and the next rank's to connect
   * to. Its sandbox may reach the driver and those ring ports only (on the cluster's nodes'
   * addresses, as where Ray puts a job is known only once it runs); once its ring is formed it
   * revokes all of them but its next neighbour's. Rank 0 speaks for the trial; ranks above 0 write only
   * `rank_<r>/` in the trial's folder. The first worker to fail, or to stay PENDING past
   * `pendingTimeoutMs`, fails the trial, and the other workers' jobs are stopped.
   */
  function startGroup(
    ch: RemoteChannel,
    job: TrialJob,
    trialListener: TrialListener,
    workers: number,
  ): TrialHandle {
    const ports = ringPorts(workers);
    const ringToken = crypto.randomUUID();
    const nodes: string[] = [];
    let arrived = 0;
    let runningJobs = 0;
    let failure: TrialExit | undefined;
    let ringLoss = false;
    // Set once rank 0 is done or the trial is being stopped: the other workers then lose their
    // ring as rank 0 leaves, and what they say about it no longer matters.
    let finishing = false;
    let release!: (go: boolean) => void;
    const everyone = new Promise<boolean>((r) => release = r);
    const perWorker = need(job);
    const net = (async () => {
      const cluster = await clusterNodes();
      if (options.checkPlacement ?? true) {
        const why = unplaceable(perWorker, cluster);
        const most = fitsAtOnce(perWorker, cluster);
        if (why || most < workers) {
          throw new TuneError(
            `Ray cannot place the ${workers} workers of trial ${job.trialId} on ${address}: ${
              why ?? `each asks for ${JSON.stringify(perWorker)}, and the alive nodes hold at ` +
                  `most ${most} such jobs at once`
            }. Ask for fewer workers or less per worker (resources: { workers, cpu, gpu, ` +
              `custom }), add nodes, or set checkPlacement: false for an autoscaling cluster`,
          );
        }
      }
      // Each node's address as Ray names it in its `node:<ip>` resource: the address its jobs
      // report (the summary's `ip` may be another of the machine's addresses).
      const addrs = [
        ...new Set(
          cluster.filter((n) => n.alive).flatMap((n) => {
            const named = Object.keys(n.resources).filter((k) =>
              k.startsWith("node:") && !k.startsWith("node:__")
            ).map((k) => k.slice(5));
            return named.length ? named : [n.ip];
          }),
        ),
      ].map((ip) => ip.includes(":") ? `[${ip}]` : ip);
      return (rank: number) =>
        addrs.flatMap((a) => [`${a}:${ports[rank]}`, `${a}:${ports[(rank + 1) % workers]}`]);
    })();
    net.catch(() => {});
    const handles: TrialHandle[] = [];
    const stopOthers = (except: number, grace: number): void => {
      handles.forEach((h, r) => r !== except && h.stop(grace).catch(() => {}));
    };
    const finish = () => {
      finishing = true;
      release(false);
    };
    for (let rank = 0; rank < workers; rank++) {
      const workDir = rank === 0 ? job.workDir : join(job.workDir, `rank_${rank}`);
      if (rank > 0) Deno.mkdirSync(workDir, { recursive: true });
      const ringNet = net.then((f) => f(rank));
      const worker: RayWorker = {
        rank,
        workers,
        net: ringNet,
        placed: () => runningJobs,
        running: () => void runningJobs++,
        async gate(node) {
          const granted = await ringNet;
          nodes[rank] = node;
          if (++arrived === workers) {
            release(true);
            trialListener.placed?.(nodes.join(","));
          }
          if (!await everyone || finishing) return undefined;
          const next = (rank + 1) % workers;
          return {
            rank,
            localRank: nodes.slice(0, rank).filter((n) => n === node).length,
            worldSize: workers,
            listen: { hostname: node, port: ports[rank] },
            next: { hostname: nodes[next], port: ports[next] },
            token: ringToken,
            // Granted on every node (its place was not known): once its ring is formed, the
            // worker keeps its next neighbour's alone, before the trainable loads.
            revokeAfterRing: granted,
            ...(options.collectiveTimeoutMs ? { timeoutMs: options.collectiveTimeoutMs } : {}),
          };
        },
      };
      const listener: TrialListener = rank === 0
        ? {
          async report(r) {
            const ack = await trialListener.report(r);
            if (ack === "stop") {
              finish();
              stopOthers(0, graceMs);
            }
            return ack;
          },
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
      const h = startTrial(ch, { ...job, workDir }, listener, ++runs, worker);
      handles.push(h);
      h.exited.then((exit) => {
        // A worker that saw another leave the ring says so first at times: the other's own
        // error, if it comes too, is the trial's.
        const lost = exit.kind === "error" && /left the ring/.test(exit.message);
        if (exit.kind === "error" && failure && ringLoss && !lost) {
          failure = { ...exit, message: `worker rank ${rank} of ${workers}: ${exit.message}` };
          ringLoss = false;
        } else if (exit.kind === "error" && !failure && !finishing) {
          failure = { ...exit, message: `worker rank ${rank} of ${workers}: ${exit.message}` };
          ringLoss = lost;
          finish();
          stopOthers(rank, 0);
        } else if (rank === 0) {
          // Rank 0 ended the trial: the others get the grace to finish too, then are stopped.
          finish();
          stopOthers(0, exit.kind === "done" ? graceMs : 0);
        }
      });
    }
    const exited = Promise.all(handles.map((h) => h.exited)).then(([first]) => failure ?? first);
    exited.finally(() => ports.forEach((p) => ringPortsInUse.delete(p))).catch(() => {});
    return {
      exited,
      async stop(grace = graceMs) {
        finish();
        await Promise.all(handles.map((h) => h.stop(grace)));
        await exited;
      },
    };
  }

  /**
   * `workers` consecutive ports for a trial's ring, from a random base below Linux's ephemeral
   * range, none used by another live group of this driver. A port some other program holds on
   * a node fails that trial (its worker cannot listen), which then retries under maxFailures.
   */
  function ringPorts(workers: number): number[] {
    for (;;) {
      const base = 20000 + Math.floor(Math.random() * (12000 - workers));
      const ports = Array.from({ length: workers }, (_, r) => base + r);
      if (ports.some((p) => ringPortsInUse.has(p))) continue;
      ports.forEach((p) => ringPortsInUse.add(p));
      return ports;
    }
  }

  function startTrial(
    ch: RemoteChannel,
    job: TrialJob,
    listener: TrialListener,
    run: number,
    worker?: RayWorker,
  ): TrialHandle {
    const token = crypto.randomUUID();
    // A worker of a multi-worker trial says `<trial id>@<rank>` in its hello.
    const chId = worker ? `${job.trialId}@${worker.rank}` : job.trialId;
    const connected = ch.server.expect(chId, token);
    const jobId = `${JOB_PREFIX}${expId}-${job.trialId.replace(/[^\w-]/g, "_")}${
      worker ? `-w${worker.rank}` : ""
    }-${run}`;
    const sfx = logSuffix(worker);
    let stopRequested = false;
    let silent = false;
    let submitted = false;
    let running = false;
    let node = "";
    let lastInfo: RayJobInfo | undefined;
    let resolveEnded!: (v: RayJobInfo | undefined) => void;
    let over = false;
    const ended = new Promise<RayJobInfo | undefined>((r) => resolveEnded = r);
    ended.then(() => over = true);
    let launchError: TuneError | undefined;
    let fatal = false;
    let connection: ReturnType<RemoteChannel["keepAlive"]> | undefined;
    const submittedAt = Date.now();
    // Without shared storage the trial's folder is a fresh temp folder on its node.
    const trialDir = shared ? job.workDir : `/tmp/tunebox-${expId}/${jobId}`;

    const launch = (async () => {
      let ringNet: readonly string[] = [];
      if (worker) {
        ringNet = await worker.net.catch((e) => {
          fatal = true;
          throw e;
        });
      } else if (options.checkPlacement ?? true) {
        const why = unplaceable(need(job), await clusterNodes());
        if (why) {
          fatal = true;
          throw new TuneError(
            `Ray cannot place trial ${job.trialId} on any node of ${address}: ${why}. ` +
              `Ask for resources a node has (resources: { cpu, gpu, custom }), add such a node, ` +
              `or set checkPlacement: false for an autoscaling cluster`,
          );
        }
      }
      await Deno.writeTextFile(join(experimentDir, JOBS_FILE), `${jobId}\n`, { append: true });
      await ray.submit({
        submission_id: jobId,
        entrypoint: entrypoint(job, run, ch, token, trialDir, worker, ringNet),
        ...rayResources(job),
        ...(Object.keys(runtimeEnv).length ? { runtime_env: runtimeEnv } : {}),
        metadata: { tunebox_trial: job.trialId, tunebox_experiment: experimentDir },
      });
      submitted = true;
      live.set(jobId, (info) => {
        if (info) lastInfo = info;
        if (info?.status === "RUNNING" && !running) {
          running = true;
          worker?.running();
          learnNode(info);
        }
        if (!info || isFinal(info.status)) {
          live.delete(jobId);
          resolveEnded(info);
        } else if (
          info.status === "PENDING" && Date.now() - submittedAt > pendingTimeoutMs && !launchError
        ) {
          launchError = new TuneError(
            `Ray did not place trial ${job.trialId}'s job ${jobId} within ${pendingTimeoutMs} ms ` +
              `(it asks for ${JSON.stringify(need(job))}; Ray says: ${
                rayErrorLine(info.message ?? "")
              })${
                worker
                  ? `; ${worker.placed()} of the trial's ${worker.workers} workers were placed ` +
                    `and waited for it`
                  : ""
              }: the cluster is busy or lacks those resources; raise pendingTimeoutMs or ` +
              `ask for less`,
          );
          abandon();
        }
      });
      poll();
    })().catch((e) => {
      const msg = e instanceof RayApiError && /already exists/.test(e.message)
        ? `${e.message} (a job of this name exists: another driver runs this experiment?)`
        : String((e as Error)?.message ?? e);
      launchError = e instanceof TuneError && !(e instanceof RayApiError) ? e : new TuneError(msg);
      if (e instanceof RayApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
        fatal = true;
      }
      resolveEnded(undefined);
    });

    // Without shared storage the trial's output is followed live (Ray's /logs/tail WebSocket)
    // into its stdout.log on the driver, so the dashboard and `tail -f` show it as it comes.
    let follower: RayLogTail | undefined;
    let streamedChars = 0;
    let recent = "";
    let writing: Promise<unknown> = Promise.resolve();
    function follow(): void {
      if (shared || follower || !submitted) return;
      follower = ray.tail(jobId, (text) => {
        streamedChars += text.length;
        recent = (recent + text).slice(-4096);
        writing = writing.then(() =>
          Deno.writeTextFile(join(job.dir, `stdout${sfx}.log`), text, { append: true })
        ).catch(() => {});
      });
    }

    function learnNode(info: RayJobInfo): void {
      follow();
      if (node) return;
      const m = /^https?:\/\/\[?([^\]/]+?)\]?:\d+/.exec(info.driver_agent_http_address ?? "");
      node = m?.[1] ?? info.driver_node_id?.slice(0, 12) ?? "";
      if (node && !worker) listener.placed?.(node);
    }

    /** Gives the job up before it ran: stop it, refuse its token, delete it once it ends. */
    function abandon(): void {
      ch.server.forget(chId);
      live.delete(jobId);
      zombies.add(jobId);
      ray.stop(jobId).catch(() => {});
      poll();
      resolveEnded(lastInfo);
    }

    const converse = (async (): Promise<Conversation> => {
      const first = await Promise.race([connected, ended.then(() => undefined)]);
      if (!first) return {};
      if (!running) worker?.running();
      running = true;
      follow();
      // A short trial may end between two polls: learn its node now, for the live table.
      if (!node) {
        const info = await settle(ray.get(jobId), 2000);
        if (info) learnNode(info);
      }
      connection = ch.keepAlive(first, () => {
        silent = true;
        cancel();
      });
      let group: GroupInfo | undefined;
      if (worker) {
        // Its node's address is where it listens: asked of Ray until known (it runs by now).
        while (!node && !over) {
          const info = await settle(ray.get(jobId), 5000);
          if (info) learnNode(info);
          if (!node) await new Promise((r) => setTimeout(r, pollMs));
        }
        // Waits here, connected but not started (never in a collective), for the others; its
        // heartbeats are read meanwhile, so its silence is still noticed (and not mistaken).
        const release = holdOpen(connection);
        group = node ? await worker.gate(node) : undefined;
        connection = release();
        if (!group) return {};
      }
      if (shared) return await driveTrial(connection, job, listener, undefined, group);
      // The trial's folder is on its node: checkpoints come back over the channel into the
      // driver's trial folder, and one to restore goes out the same way.
      return await driveTrial(connection, { ...job, workDir: trialDir }, listener, {
        localDir: job.workDir,
        maxBytes: checkpointMaxBytes,
        ...(options.channel?.maxLineBytes ? { maxLineBytes: options.channel.maxLineBytes } : {}),
      }, group);
    })();
    converse.catch(() => {});

    const cancel = () => {
      if (submitted) ray.stop(jobId).catch(() => {});
    };

    const { escalate, clear: clearStopTimer } = stopEscalation(cancel);

    const exited = (async (): Promise<TrialExit> => {
      await launch;
      const talkOrEnd = await Promise.race([
        converse.then((c) => ({ talk: c })),
        ended.then(() => undefined),
      ]);
      let talk = talkOrEnd?.talk;
      if (talk?.broken) cancel();
      if (!talk?.outcome || talk.broken) {
        const end = await ended;
        connection?.close();
        talk ??= await settle(converse, 5000);
        clearStopTimer();
        ch.server.forget(chId);
        const tail = await tailOf(end);
        await reap();
        if (launchError) return { kind: "error", message: launchError.message, fatal };
        if (talk?.broken) {
          return {
            kind: "error",
            message: `the trial broke the protocol and was killed: ${talk.broken}`,
          };
        }
        if (talk?.outcome) return talk.outcome;
        if (stopRequested) return { kind: "stopped" };
        if (silent) {
          return {
            kind: "error",
            message: `the trial went silent for ${ch.heartbeatMs} ms (no heartbeat: its node or ` +
              `network may be down) and its Ray job was stopped`,
          };
        }
        return failure(end, tail, { jobId, node, connected: !!connection });
      }
      clearStopTimer();
      ch.server.forget(chId);
      // The job ends by itself; make sure it does, then (its log fetched without shared
      // storage) delete its record.
      const done = settle(ended, 15_000).then(async (v) => {
        if (!v || !isFinal(v.status)) cancel();
        await tailOf(v);
        await reap();
      });
      finishing.add(done);
      done.finally(() => finishing.delete(done));
      // Without shared storage the trial's output comes back with the job's log: wait for it.
      if (!shared) await done;
      return talk.outcome;
    })();

    /** The job's log into the trial's stdout.log (without shared storage), and its tail. */
    async function tailOf(end: RayJobInfo | undefined): Promise<string> {
      if (!submitted) return "";
      if (shared) return await stderrOf(job.dir, sfx);
      if (follower) {
        // Ray closes the stream once the job has ended and all of its log was sent.
        const whole = await settle(follower.ended, 5000);
        follower.close();
        await writing;
        if (whole) return recent;
      }
      // Not followed, or the stream broke: fetch the log, and keep what was not streamed yet.
      const logs = await ray.logs(jobId).catch(() => "");
      const rest = logs.slice(streamedChars);
      if (rest && end) {
        await Deno.writeTextFile(join(job.dir, `stdout${sfx}.log`), rest, { append: true })
          .catch(() => {});
      }
      return logs.slice(-4096);
    }

    async function reap(): Promise<void> {
      if (!submitted) return;
      if (lastInfo && isFinal(lastInfo.status)) {
        await ray.delete(jobId).catch((e) =>
          log(`could not delete Ray job ${jobId}: ${(e as Error).message}`)
        );
      } else {
        zombies.add(jobId);
        poll();
      }
    }

    return {
      exited,
      async stop(grace = graceMs) {
        stopRequested = true;
        if (!running && !connection) {
          // A PENDING job does not end when stopped; give it up (its token is refused from now
          // on) and delete it once Ray ends it.
          await launch;
          if (submitted && !connection) abandon();
        }
        connection?.send({ v: PROTOCOL_VERSION, type: "stop" });
        escalate(grace);
        await exited;
      },
    };
  }
}
