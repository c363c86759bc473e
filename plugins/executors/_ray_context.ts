// Private to the Ray executor (ray.ts): what all of one executor's trials share, and how
// `prepare()` makes it.

import { fileURLToPath as fromFileUrl } from "../../core/_path.ts";
import { dirname, join } from "../../core/_path.ts";
import type { SandboxPolicy } from "../../core/plugin.ts";
import { checkModuleGraph, checkTrainableSource, tuneboxRoot } from "../../core/sandbox.ts";
import { openRemoteChannel, type RemoteChannel } from "../../core/remote/channel.ts";
import { TuneError } from "../../core/errors.ts";
import { cacheTrialGraph, merge, shq, trialConfig, writeTrialEntry } from "./_shared.ts";
import {
  isFinal,
  rayErrorLine,
  type RayJobInfo,
  type RayJobsClient,
  rayJobsClient,
  type RayNode,
} from "./_ray_client.ts";
import { shipPackage } from "./_ray_package.ts";
import { JOB_PREFIX, RayJobTable } from "./_ray_jobs.ts";
import type { RaySettings } from "./_ray_options.ts";

/**
 * One Ray executor's shared state: its settings, the cluster's client and jobs table, and what
 * {@linkcode RayContext.prepare} made for the experiment (the trial entry and module cache,
 * the `runtime_env` with the shipped package, the driver's TLS channel). The trials, the job
 * pool and the groups all read it; only `prepare()` and the run counter change it.
 */
export class RayContext {
  /** The options, checked, with their defaults. */
  readonly settings: RaySettings;
  /** The trainable module's URL. */
  readonly moduleUrl: string;
  /** The cluster's Jobs API. */
  readonly ray: RayJobsClient;
  /** The Ray jobs submitted and not deleted yet. */
  readonly jobs: RayJobTable;
  /** This executor's id in its jobs' names (`tunebox-<expId>-...`), and in node temp folders. */
  readonly expId: string = crypto.randomUUID().slice(0, 8);
  /** The launcher module a pooled job (`trialsPerJob > 1`) runs. */
  readonly launcherUrl: string = new URL("./_ray_launcher.ts", import.meta.url).href;

  /** The experiment folder ("" before `prepare()`). */
  experimentDir = "";
  /** The trials' entry module (written into the experiment folder). */
  entry = "";
  /** The `DENO_DIR` trials run with, filled by the driver's `deno cache`. */
  denoDir = "";
  /** The `deno.json` trials resolve imports with, if any. */
  configFile: string | undefined;
  /** Whether that config uses a `node_modules` folder. */
  nodeModules = false;
  /** What every trial may read: the trainable's folder, Tunebox, `node_modules`, the npm cache. */
  readRoots: string[] = [];
  /** The jobs' `runtime_env`: Deno from pip, the shipped package (without shared storage). */
  runtimeEnv: Record<string, unknown> = {};
  /** The driver's end of the trials' TLS channel. */
  channel: RemoteChannel | undefined;
  /** `prepare()` ended well. */
  prepared = false;
  /** Jobs of trials (and of workers) started so far: the last one's run number. */
  runs = 0;

  #nodesCache: { at: number; nodes: RayNode[] } | undefined;

  constructor(moduleUrl: string, settings: RaySettings) {
    this.moduleUrl = moduleUrl;
    this.settings = settings;
    this.ray = rayJobsClient(settings.address, settings.token);
    this.jobs = new RayJobTable(this.ray, settings.pollMs, settings.log);
  }

  /**
   * Checks the cluster and the trainable, stops what an earlier driver left, caches the module
   * graph, ships the package (without shared storage), opens the channel and probes Deno.
   */
  async prepare(experimentDir: string, sandbox: SandboxPolicy | undefined): Promise<void> {
    const { options, shared, trialsPerJob, deno, denoVersion, log } = this.settings;
    const moduleUrl = this.moduleUrl;
    this.experimentDir = experimentDir;
    // One clear error before any trial: unreachable, wrong or missing token, not a dashboard.
    const version = await this.ray.version();
    const policy = merge(options.sandbox ?? {}, sandbox ?? {});
    await checkTrainableSource(moduleUrl);
    ({ configFile: this.configFile, nodeModules: this.nodeModules } = await trialConfig(
      moduleUrl,
      options.denoConfig,
      policy,
    ));
    const configFile = this.configFile;
    await this.jobs.stopLeftovers(experimentDir);
    this.entry = await writeTrialEntry(experimentDir);
    const denoDir = this.denoDir = options.denoDir ?? join(experimentDir, ".deno_dir");
    const pooled = trialsPerJob > 1 ? [this.launcherUrl] : [];
    // Ray jobs run without the driver's registry variables, so the graph is cached without them.
    await cacheTrialGraph(
      denoDir,
      configFile,
      policy,
      [this.entry, moduleUrl, ...pooled],
      moduleUrl,
      {},
    );
    const tunebox = tuneboxRoot();
    this.readRoots = [
      ...(moduleUrl.startsWith("file:") ? [dirname(fromFileUrl(moduleUrl))] : []),
      ...(tunebox ? [tunebox] : []),
      ...(configFile && this.nodeModules ? [join(dirname(configFile), "node_modules")] : []),
      join(denoDir, "npm"),
    ];
    await checkModuleGraph(moduleUrl, {
      roots: [...this.readRoots, ...(policy.read ?? [])],
      ...(configFile ? { configFile } : {}),
      unstable: policy.unstable ?? [],
    });
    this.runtimeEnv = deno === "pip"
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
      const pkg = await shipPackage(this.ray, {
        // A pooled job's launcher is shipped too.
        modules: [this.entry, moduleUrl, ...pooled],
        // Only the module cache's downloads: its sqlite caches differ from run to run.
        folders: [dirname(fromFileUrl(moduleUrl)), join(denoDir, "npm"), join(denoDir, "remote")],
        ...(configFile ? { files: [configFile], configFile } : {}),
        denoDir,
        packagePath: (p) => this.packagePath(p),
      });
      this.runtimeEnv = { ...this.runtimeEnv, working_dir: pkg.uri };
      log(
        `shipping the trainable as Ray package ${pkg.uri} (${pkg.files} files, ${
          (pkg.bytes / 1e6).toFixed(1)
        } MB${pkg.uploaded ? ", uploaded" : ", already on the cluster"})`,
      );
    }
    this.channel = await openRemoteChannel({
      ...(options.driverHost ? { host: options.driverHost } : {}),
      ...(options.driverPort ? { port: options.driverPort } : {}),
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.channel ? { limits: options.channel } : {}),
      log,
    });
    if (options.probe ?? true) await this.#probeDeno(version);
    this.prepared = true;
  }

  /** The cluster's nodes, as Ray said within the last 10 s. */
  async clusterNodes(): Promise<RayNode[]> {
    if (this.#nodesCache && Date.now() - this.#nodesCache.at < 10_000) {
      return this.#nodesCache.nodes;
    }
    const nodes = await this.ray.nodes();
    this.#nodesCache = { at: Date.now(), nodes };
    return nodes;
  }

  /**
   * Where a driver path sits in the working_dir package: the experiment's entry and module
   * cache at fixed places (so the same trainable makes the same package in every experiment),
   * everything else under `root/<its absolute path>`.
   */
  packagePath(p: string): string {
    const { entry, denoDir } = this;
    if (p === entry) return "tunebox_entry.ts";
    if (p === denoDir) return "deno_dir";
    if (p.startsWith(`${denoDir}/`)) return `deno_dir/${p.slice(denoDir.length + 1)}`;
    return `root${p}`;
  }

  /** Shell that sets `$D` to the Deno binary, or exits 127 saying why. */
  denoLookup(): string {
    const { deno } = this.settings;
    if (deno.startsWith("/")) {
      return `D=${shq(deno)}; test -x "$D" || { echo "tunebox: ${deno} is not an executable ` +
        `on Ray node $(hostname)" >&2; exit 127; }`;
    }
    return `D=$(command -v deno) || { echo "tunebox: deno is not on the PATH of Ray node ` +
      `$(hostname)" >&2; exit 127; }`;
  }

  /** Checks Deno runs on the cluster with a probe job, and says what to do when it does not. */
  async #probeDeno(rayVersion: string): Promise<void> {
    const { ray, runtimeEnv } = this;
    const { address, deno, denoVersion, options, pendingTimeoutMs, pollMs, log } = this.settings;
    const id = `${JOB_PREFIX}probe-${this.expId}-${crypto.randomUUID().slice(0, 6)}`;
    await ray.submit({
      submission_id: id,
      entrypoint: `${this.denoLookup()} && exec "$D" --version </dev/null`,
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
}
