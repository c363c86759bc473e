/**
 * TensorFlow.js in Tunebox trials: pick the fastest backend that loads ({@linkcode loadTfjs}),
 * declare what the sandbox must allow for it ({@linkcode tfjsBackend}), and report metrics and
 * checkpoints from `model.fit` ({@linkcode tuneCallback}, {@linkcode restoreModel}) — the
 * counterpart of Ray Tune's `TuneReportCheckpointCallback`.
 *
 * Backends, fastest first: `tensorflow-gpu` (`npm:@tensorflow/tfjs-node-gpu`, native, needs
 * libtensorflow and CUDA), `webgpu` (Deno's `navigator.gpu` with
 * `npm:@tensorflow/tfjs-backend-webgpu`, hardware adapters only), `tensorflow`
 * (`npm:@tensorflow/tfjs-node`, native), `wasm` (`npm:@tensorflow/tfjs-backend-wasm`, its `.wasm`
 * files read from the local module folder, never the network), `cpu` (pure JavaScript). The
 * optional packages are found on disk and imported by file URL, so neither `deno check` nor a
 * trial ever downloads them.
 *
 * ```ts ignore
 * // inside a trainable
 * import { loadTfjs, restoreModel, tuneCallback } from "jsr:@tunebox/tunebox/backends/tfjs";
 * const { tf } = await loadTfjs({ prefer: ["wasm", "cpu"], session });
 * const model = (await restoreModel(session)) ?? build(tf, config);
 * await model.fit(xs, ys, {
 *   epochs: config.epochs, initialEpoch: session.iteration, validationSplit: 0.1,
 *   callbacks: [tuneCallback(session, { metrics: { val_loss: "val_loss", val_acc: "val_acc" } })],
 * });
 * ```
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { BackendUnavailableError } from "../../core/errors.ts";
import type { JsonValue, SandboxPolicy } from "../../core/plugin.ts";
import type { Device } from "../../core/resources.ts";

/** Re-exported: the types this module's API uses. */
export type { Device, JsonValue, SandboxPolicy };

/** The TensorFlow.js namespace (`npm:@tensorflow/tfjs`) that {@linkcode loadTfjs} returns. */
export type Tf = typeof tf;

/** A model as `model.fit` trains it. */
export type LayersModel = tf.LayersModel;

/** The backends {@linkcode loadTfjs} can pick, fastest first. */
export type TfjsBackendName = "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";

const ALL_BACKENDS: readonly TfjsBackendName[] = [
  "tensorflow-gpu",
  "webgpu",
  "tensorflow",
  "wasm",
  "cpu",
];

/** What a checkpointing report hands the session: a function that writes into a folder. */
export interface ReportOptions {
  /** Writes the checkpoint's files into `dir` (a staging folder the driver commits). */
  readonly checkpoint?: (dir: string) => Promise<void> | void;
}

/**
 * The part of a trial's session this module uses. Tunebox's own session has this shape; any
 * object that does works (a test's recorder, another runner's adapter).
 */
export interface TuneSession {
  /** Reports metrics, optionally with a checkpoint; resolves once the driver recorded it. */
  report(metrics: Record<string, JsonValue>, options?: ReportOptions): Promise<void>;
  /** The committed checkpoint folder to restore from, when the trial resumes. */
  readonly checkpoint?: string;
  /** Reports already made by this trial (the epoch to continue from). */
  readonly iteration: number;
  /** Aborted when the driver wants the trial to end. */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode loadTfjs}. */
export interface LoadTfjsOptions {
  /**
   * Backends to try, in order; the first that loads wins.
   * @default ["tensorflow-gpu", "webgpu", "tensorflow", "wasm", "cpu"]
   */
  readonly prefer?: readonly TfjsBackendName[];
  /** The trial's session: its next report gets a `backend` key naming the backend picked. */
  readonly session?: TuneSession;
  /**
   * Where the fallback warning goes. With the default, each distinct warning is printed once
   * per process. @default console.warn
   */
  readonly warn?: (message: string) => void;
}

/** What {@linkcode loadTfjs} picked. */
export interface LoadedTfjs {
  /** The TensorFlow.js namespace, with the backend set and ready. */
  readonly tf: Tf;
  /** The backend in use. */
  readonly backend: TfjsBackendName;
  /** Why earlier backends in the preference list were skipped, one line each. */
  readonly skipped: readonly string[];
}

type Attempt = { ok: true } | { ok: false; reason: string; quiet: boolean };

const printed = new Set<string>();
const pendingBackend = new WeakMap<object, TfjsBackendName>();
const patched = new WeakSet<object>();

/**
 * Loads TensorFlow.js with the first backend of `prefer` that works here, checking what
 * `tf.setBackend` returns (a backend that fails to initialise would otherwise quietly leave
 * computation on cpu).
 *
 * `tensorflow-gpu` is tried only when the trial has a GPU (`CUDA_VISIBLE_DEVICES` names one, or
 * is unset outside Tunebox), `webgpu` only with a hardware adapter. A fallback is warned about,
 * once, when a backend the caller asked for explicitly failed, when an installed backend is
 * broken, or when a trial holding a GPU ends up without a GPU backend; optional packages that
 * are simply not installed are skipped silently under the default preference list.
 *
 * @param options the preference list, the session to tag, where to warn.
 * @returns the namespace, the backend name and why others were skipped.
 * @throws {TypeError} when `prefer` is empty or names an unknown backend.
 * @throws {BackendUnavailableError} when none of the preferred backends loads.
 * @example
 * ```ts
 * import { loadTfjs } from "./tfjs.ts";
 * const { tf, backend } = await loadTfjs({ prefer: ["wasm", "cpu"] });
 * console.log(backend, tf.getBackend()); // "wasm" "wasm" (with read access to its .wasm files)
 * ```
 */
export async function loadTfjs(options: LoadTfjsOptions = {}): Promise<LoadedTfjs> {
  const explicit = options.prefer !== undefined;
  const prefer = validatePrefer(options.prefer ?? ALL_BACKENDS);
  const warn = options.warn ?? warnOnce;
  const gpu = assignedGpu();
  const skipped: string[] = [];
  let loud = false;
  let chosen: TfjsBackendName | undefined;
  let nativeGpuWithoutDevice = false;
  for (const name of prefer) {
    if (name === "tensorflow" && nativeGpuWithoutDevice) {
      chosen = "tensorflow"; // tfjs-node-gpu already registered "tensorflow", on the CPU
      break;
    }
    const attempt = await tryBackend(name, gpu);
    if (attempt.ok) {
      chosen = name;
      break;
    }
    if (name === "tensorflow-gpu" && tf.getBackend() === "tensorflow") {
      nativeGpuWithoutDevice = true;
    }
    skipped.push(attempt.reason);
    if (!attempt.quiet || explicit) loud = true;
  }
  if (chosen === undefined) {
    throw new BackendUnavailableError(
      prefer.join(", "),
      `no TensorFlow.js backend loaded: ${skipped.join("; ")}`,
    );
  }
  const gpuBackend = chosen === "tensorflow-gpu" || chosen === "webgpu";
  const gpuWasted = gpu.assigned && !gpuBackend &&
    prefer.some((p) => p === "tensorflow-gpu" || p === "webgpu");
  if ((loud || gpuWasted) && skipped.length > 0) {
    const lead = gpuWasted
      ? `This trial holds GPU ${gpu.value} (CUDA_VISIBLE_DEVICES) but no GPU backend loaded: `
      : "";
    warn(`${lead}${skipped.join("; ")} — using ${chosen}`);
  }
  if (options.session) tagNextReport(options.session, chosen);
  return { tf, backend: chosen, skipped };
}

function warnOnce(message: string): void {
  if (printed.has(message)) return;
  printed.add(message);
  console.warn(message);
}

function validatePrefer(prefer: readonly TfjsBackendName[]): readonly TfjsBackendName[] {
  if (!Array.isArray(prefer) || prefer.length === 0) {
    throw new TypeError(
      `loadTfjs option "prefer" must be a non-empty list of backends (${
        ALL_BACKENDS.join(", ")
      }), got ${JSON.stringify(prefer)}`,
    );
  }
  for (const p of prefer) {
    if (!ALL_BACKENDS.includes(p)) {
      throw new TypeError(
        `loadTfjs option "prefer" has an unknown backend ${JSON.stringify(p)}: expected one of ${
          ALL_BACKENDS.join(", ")
        }`,
      );
    }
  }
  return prefer;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission: as if unset
  }
}

/** Whether this process may use a GPU: what the driver put in `CUDA_VISIBLE_DEVICES`. */
function assignedGpu(): { possible: boolean; assigned: boolean; value?: string } {
  const v = readEnv("CUDA_VISIBLE_DEVICES");
  if (v === undefined) return { possible: true, assigned: false };
  const t = v.trim();
  const none = t === "" || t.startsWith("-1");
  return { possible: !none, assigned: !none, value: v };
}

async function tryBackend(
  name: TfjsBackendName,
  gpu: { possible: boolean; value?: string },
): Promise<Attempt> {
  switch (name) {
    case "tensorflow-gpu":
      if (!gpu.possible) {
        return {
          ok: false,
          quiet: true,
          reason: `tfjs-node-gpu skipped: this trial has no GPU (CUDA_VISIBLE_DEVICES=${
            JSON.stringify(gpu.value)
          }; ask for one with resources: { gpu: ... })`,
        };
      }
      return await tryNative("tfjs-node-gpu");
    case "tensorflow":
      return await tryNative("tfjs-node");
    case "webgpu":
      return await tryWebGpu();
    case "wasm":
      return await tryWasm();
    case "cpu":
      if (!(await tf.setBackend("cpu"))) {
        return { ok: false, quiet: false, reason: "the cpu backend failed to initialise" };
      }
      // The cpu backend's first write prints "install our node backend" under Deno; the
      // fallback warning above already says what to install, so keep stderr.log clean.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return { ok: true };
  }
}

/** The project's `node_modules` folder, found from where tfjs-core resolved. */
function nodeModulesRoot(): string | undefined {
  let path: string;
  try {
    const url = import.meta.resolve("@tensorflow/tfjs-core");
    if (!url.startsWith("file:")) return undefined;
    path = fromFileUrl(url);
  } catch {
    return undefined;
  }
  const marker = "/node_modules/.deno/";
  const at = path.lastIndexOf(marker);
  if (at >= 0) return path.slice(0, at) + "/node_modules";
  const plain = path.lastIndexOf("/node_modules/");
  return plain >= 0 ? path.slice(0, plain) + "/node_modules" : undefined;
}

function fromFileUrl(url: string): string {
  return decodeURIComponent(new URL(url).pathname);
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

interface InstalledPackage {
  dir: string;
  version: string;
  main: string;
}

/** Finds an optional package in node_modules without importing it. */
async function findPackage(
  pkg: string,
  allowHint: string,
): Promise<InstalledPackage | { missing: string; denied?: boolean }> {
  const root = nodeModulesRoot();
  if (!root) {
    return { missing: `no local node_modules folder (set "nodeModulesDir": "auto" in deno.json)` };
  }
  const dir = `${root}/@tensorflow/${pkg}`;
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/package.json`));
    return { dir, version: String(meta.version), main: String(meta.main ?? "index.js") };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { missing: "" };
    if (e instanceof Deno.errors.NotCapable) {
      return {
        missing: `the sandbox does not allow reading ${dir} (${allowHint})`,
        denied: true,
      };
    }
    return { missing: `unreadable: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function hasBinding(dir: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(`${dir}/lib`)) {
      if (!e.isDirectory || !e.name.startsWith("napi-v")) continue;
      try {
        await Deno.stat(`${dir}/lib/${e.name}/tfjs_binding.node`);
        return true;
      } catch {
        // try the next napi version folder
      }
    }
  } catch {
    // no lib folder: the install script never ran
  }
  return false;
}

async function tryNative(pkg: "tfjs-node" | "tfjs-node-gpu"): Promise<Attempt> {
  const install = `install it with \`deno add npm:@tensorflow/${pkg}@${tf.version_core} && ` +
    `deno install --allow-scripts=npm:@tensorflow/${pkg}\``;
  const found = await findPackage(pkg, "tfjsBackend({ native: true }).permissions() allows it");
  if ("missing" in found) {
    return {
      ok: false,
      quiet: true, // not installed, or a sandbox without native backends: the driver's choice
      reason: found.denied
        ? `${pkg} skipped: ${found.missing}`
        : `${pkg} is not installed with libtensorflow${
          found.missing ? ` (${found.missing})` : ""
        }: ${install}`,
    };
  }
  if (!(await hasBinding(found.dir))) {
    return {
      ok: false,
      quiet: false,
      reason: `${pkg} is not installed with libtensorflow (its install script did not run, so ` +
        `lib/napi-v*/tfjs_binding.node is missing): ${install}`,
    };
  }
  try {
    // A file URL computed at run time: `deno check` and the module graph never see it.
    const url = new URL(`file://${found.dir}/${found.main}`).href;
    await import(url);
  } catch (e) {
    return {
      ok: false,
      quiet: false,
      reason: `${pkg} failed to load (${
        e instanceof Error ? e.message.split("\n")[0] : String(e)
      }); a sandboxed trial needs tfjsBackend({ native: true }) for FFI on its lib folder`,
    };
  }
  if (tf.findBackendFactory("tensorflow") == null) {
    return {
      ok: false,
      quiet: false,
      reason: `${pkg}@${found.version} loaded but registered no "tensorflow" backend with this ` +
        `tfjs-core@${tf.version_core}: install matching versions`,
    };
  }
  if (!(await tf.setBackend("tensorflow"))) {
    return { ok: false, quiet: false, reason: `${pkg}: the tensorflow backend failed to start` };
  }
  if (pkg === "tfjs-node-gpu") {
    const b = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
    if (b.isUsingGpuDevice === false) {
      return {
        ok: false,
        quiet: false,
        reason: "tfjs-node-gpu loaded but TensorFlow found no usable CUDA device (it needs the " +
          "CUDA 11.2 and cuDNN 8.1 libraries on LD_LIBRARY_PATH)",
      };
    }
  }
  return { ok: true };
}

interface AdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: { readonly isFallbackAdapter?: boolean; readonly description?: string };
}

async function tryWebGpu(): Promise<Attempt> {
  const found = await findPackage(
    "tfjs-backend-webgpu",
    "tfjsBackend().permissions() allows it once the package is installed",
  );
  if ("missing" in found) {
    return {
      ok: false,
      quiet: true,
      reason: found.denied
        ? `tfjs-backend-webgpu skipped: ${found.missing}`
        : `tfjs-backend-webgpu is not installed${
          found.missing ? ` (${found.missing})` : ""
        }: add it with \`deno add npm:@tensorflow/tfjs-backend-webgpu@${tf.version_core}\``,
    };
  }
  const gpu = (navigator as unknown as {
    gpu?: { requestAdapter(): Promise<AdapterLike | null> };
  }).gpu;
  if (!gpu) return { ok: false, quiet: true, reason: "webgpu skipped: navigator.gpu is missing" };
  let adapter: AdapterLike | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return {
      ok: false,
      quiet: true,
      reason: `webgpu skipped: requestAdapter failed (${e instanceof Error ? e.message : e})`,
    };
  }
  if (!adapter) return { ok: false, quiet: true, reason: "webgpu skipped: no WebGPU adapter" };
  if (adapter.isFallbackAdapter === true || adapter.info?.isFallbackAdapter === true) {
    return {
      ok: false,
      quiet: true,
      reason: `webgpu skipped: only a software adapter (${
        adapter.info?.description || "fallback"
      }) is present`,
    };
  }
  try {
    await import(new URL(`file://${found.dir}/${found.main}`).href);
    if (await tf.setBackend("webgpu")) return { ok: true };
    return { ok: false, quiet: false, reason: "the webgpu backend failed to initialise" };
  } catch (e) {
    return {
      ok: false,
      quiet: false,
      reason: `tfjs-backend-webgpu failed to load (${e instanceof Error ? e.message : e})`,
    };
  }
}

/** The folder of tfjs-backend-wasm's `.wasm` files, or undefined when it is not on disk. */
function wasmDistDir(): string | undefined {
  try {
    const url = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
    return url.startsWith("file:") ? dirname(fromFileUrl(url)) : undefined;
  } catch {
    return undefined;
  }
}

let wasmPathsSet = false;

async function tryWasm(): Promise<Attempt> {
  if (tf.getBackend() === "wasm") return { ok: true };
  const dir = wasmDistDir();
  if (!dir) {
    return {
      ok: false,
      quiet: false,
      reason: "wasm skipped: @tensorflow/tfjs-backend-wasm does not resolve to local files " +
        `(set "nodeModulesDir": "auto" in deno.json and run \`deno install\`)`,
    };
  }
  try {
    await Deno.stat(`${dir}/tfjs-backend-wasm-simd.wasm`);
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable
      ? `the sandbox does not allow reading ${dir} (grant --allow-read=${dir}, as ` +
        `tfjsBackend().permissions() does)`
      : `its files are missing from ${dir} (run \`deno install\`)`;
    return { ok: false, quiet: false, reason: `wasm skipped: ${why}` };
  }
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  if (!wasmPathsSet) {
    // A file URL with a trailing slash: the backend fetches `<prefix><file>.wasm` from it.
    wasm.setWasmPaths(new URL(`file://${dir}/`).href);
    wasmPathsSet = true;
  }
  if (await tf.setBackend("wasm")) return { ok: true };
  return { ok: false, quiet: false, reason: "the wasm backend failed to initialise" };
}

function tagNextReport(session: TuneSession, backend: TfjsBackendName): void {
  pendingBackend.set(session, backend);
  if (patched.has(session)) return;
  const original = session.report;
  try {
    const s = session as { report: TuneSession["report"] };
    s.report = function (this: TuneSession, metrics, options) {
      return original.call(this, withBackend(session, metrics), options);
    };
    patched.add(session);
  } catch {
    // A frozen session: tuneCallback adds the key itself.
  }
}

function withBackend(
  session: TuneSession,
  metrics: Record<string, JsonValue>,
): Record<string, JsonValue> {
  const backend = pendingBackend.get(session);
  if (backend === undefined) return metrics;
  pendingBackend.delete(session);
  return { ...metrics, backend };
}

/** Options of {@linkcode tfjsBackend}. */
export interface TfjsBackendOptions {
  /**
   * Also allow the native backends (tfjs-node, tfjs-node-gpu): FFI on their `lib` folders, read
   * on `node_modules`, and the `sys` calls their loader makes. Native code runs with the full
   * rights of the user, so trials using it are not sandboxed in earnest. @default false
   */
  readonly native?: boolean;
  /** The `node_modules` folder. @default the folder `@tensorflow/tfjs-core` resolves into */
  readonly nodeModules?: string;
}

/** What the driver needs to know about the TensorFlow.js backend of its trials. */
export interface TfjsBackend {
  /** `"tfjs"`. */
  readonly name: "tfjs";
  /** What a trial's sandbox must allow for {@linkcode loadTfjs} to load its backend. */
  permissions(): SandboxPolicy;
  /** Environment for a trial given its devices. */
  env(devices: readonly Device[]): Record<string, string>;
}

/**
 * The driver-side description of the TensorFlow.js backend: the sandbox permissions a trial
 * needs (read on the `.wasm` folder; with `native`, FFI scoped to tfjs-node's `lib` folder — never
 * a blanket `-A`) and the environment that pins it to its GPUs.
 *
 * @param options whether to allow the native backends, and where `node_modules` is.
 * @returns the backend description.
 * @example
 * ```ts
 * import { tfjsBackend } from "./tfjs.ts";
 * const backend = tfjsBackend();
 * console.log(backend.permissions().read); // [".../tfjs-backend-wasm/dist"]
 * console.log(backend.env([{ index: 1, name: "GPU 1" }]).CUDA_VISIBLE_DEVICES); // "1"
 * ```
 */
export function tfjsBackend(options: TfjsBackendOptions = {}): TfjsBackend {
  if (options.native !== undefined && typeof options.native !== "boolean") {
    throw new TypeError(
      `tfjsBackend option "native" must be a boolean, got ${JSON.stringify(options.native)}`,
    );
  }
  if (options.nodeModules !== undefined && typeof options.nodeModules !== "string") {
    throw new TypeError(
      `tfjsBackend option "nodeModules" must be a path, got ${JSON.stringify(options.nodeModules)}`,
    );
  }
  const native = options.native ?? false;
  return {
    name: "tfjs",
    permissions(): SandboxPolicy {
      const read: string[] = [];
      const wasm = wasmDistDir();
      if (wasm) read.push(wasm);
      const root = options.nodeModules ?? nodeModulesRoot();
      if (root) {
        // WebGPU is plain JavaScript: only its package folder (link and target) is read.
        const webgpu = `${root}/@tensorflow/tfjs-backend-webgpu`;
        try {
          read.push(Deno.realPathSync(webgpu), webgpu);
        } catch {
          // not installed
        }
      }
      const policy = {
        read,
        env: ["CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "TF_*"],
      };
      if (!native || !root) return policy;
      const ffi: string[] = [];
      for (const pkg of ["tfjs-node", "tfjs-node-gpu"]) {
        try {
          ffi.push(Deno.realPathSync(`${root}/@tensorflow/${pkg}/lib`));
        } catch {
          // not installed
        }
      }
      return {
        ...policy,
        read: [...read, root],
        ffi,
        sys: ["cpus", "networkInterfaces", "hostname"],
      };
    },
    env(devices: readonly Device[]): Record<string, string> {
      const env: Record<string, string> = {
        CUDA_VISIBLE_DEVICES: devices.map((d) => d.uuid ?? String(d.index)).join(","),
      };
      if (devices.length > 0) env.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
      if (native) env.TF_CPP_MIN_LOG_LEVEL = "2"; // keep libtensorflow's info lines out of stderr
      return env;
    },
  };
}

/** Options of {@linkcode tuneCallback}. */
export interface TuneCallbackOptions {
  /**
   * Which `model.fit` logs to report, as `{ reportedName: logKey }` or a list of log keys
   * reported under their own names. @default every key `model.fit` logs
   */
  readonly metrics?: Readonly<Record<string, string>> | readonly string[];
  /** When to report: after each epoch or each batch. @default "epochEnd" */
  readonly on?: "epochEnd" | "batchEnd";
  /** Save the model (`model.json` + `weights.bin`) as the report's checkpoint. @default true */
  readonly checkpoint?: boolean;
  /** Checkpoint every n-th report only. @default 1 */
  readonly checkpointEvery?: number;
  /** Save the optimizer's state too, so training resumes exactly. @default true */
  readonly includeOptimizer?: boolean;
}

/** The `model.fit` callback {@linkcode tuneCallback} returns. */
export type TuneCallback = tf.CustomCallback;

/**
 * A `model.fit` callback that reports the mapped metrics to the trial's session after every
 * epoch (or batch) and saves the model as the report's checkpoint, through a file handler that
 * needs no tfjs-node (so it works on every backend). When the driver aborts the session's
 * signal, training stops after the current epoch.
 *
 * @param session the trial's session.
 * @param options which metrics, when, and whether to checkpoint.
 * @returns the callback, for `model.fit(x, y, { callbacks: [...] })`.
 * @throws {TypeError} when an option is malformed; during `fit`, when a mapped log key is not
 * logged (the message lists the keys that are).
 * @example
 * ```ts
 * import { loadTfjs, tuneCallback, type TuneSession } from "./tfjs.ts";
 * const { tf } = await loadTfjs({ prefer: ["cpu"] });
 * const reports: Record<string, unknown>[] = [];
 * const session: TuneSession = { iteration: 0, report: async (m) => void reports.push(m) };
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * model.compile({ optimizer: "sgd", loss: "meanSquaredError" });
 * await model.fit(tf.ones([4, 1]), tf.ones([4, 1]), {
 *   epochs: 2, verbose: 0,
 *   callbacks: [tuneCallback(session, { metrics: { loss: "loss" }, checkpoint: false })],
 * });
 * console.log(reports.length); // 2
 * ```
 */
export function tuneCallback(
  session: TuneSession,
  options: TuneCallbackOptions = {},
): TuneCallback {
  if (typeof session?.report !== "function") {
    throw new TypeError(
      `tuneCallback needs the trial's session (an object with report()), got ${String(session)}`,
    );
  }
  const mapping = normaliseMetrics(options.metrics);
  const on = options.on ?? "epochEnd";
  if (on !== "epochEnd" && on !== "batchEnd") {
    throw new TypeError(
      `tuneCallback option "on" must be "epochEnd" or "batchEnd", got ${JSON.stringify(on)}`,
    );
  }
  const checkpoint = options.checkpoint ?? true;
  if (typeof checkpoint !== "boolean") {
    throw new TypeError(
      `tuneCallback option "checkpoint" must be a boolean, got ${JSON.stringify(checkpoint)}`,
    );
  }
  const every = options.checkpointEvery ?? 1;
  if (!Number.isInteger(every) || every < 1) {
    throw new RangeError(
      `tuneCallback option "checkpointEvery" must be a whole number >= 1, got ${every}`,
    );
  }
  const includeOptimizer = options.includeOptimizer ?? true;
  let reports = 0;
  let model: LayersModel | undefined;
  const handle = async (logs: tf.Logs | undefined): Promise<void> => {
    const metrics = await pickMetrics(mapping, logs ?? {}, on);
    reports++;
    const due = checkpoint && reports % every === 0 && model !== undefined;
    const m = model;
    await session.report(
      patched.has(session) ? metrics : withBackend(session, metrics),
      due && m ? { checkpoint: (dir: string) => saveModel(m, dir, { includeOptimizer }) } : {},
    );
    if (session.signal?.aborted && model) model.stopTraining = true;
  };
  const callback = new tf.CustomCallback(
    on === "epochEnd"
      ? { onEpochEnd: (_epoch, logs) => handle(logs) }
      : { onBatchEnd: (_batch, logs) => handle(logs) },
  );
  const setModel = callback.setModel.bind(callback);
  callback.setModel = (container) => {
    setModel(container);
    model = container as LayersModel;
  };
  return callback;
}

function normaliseMetrics(
  metrics: TuneCallbackOptions["metrics"],
): ReadonlyArray<readonly [string, string]> | undefined {
  if (metrics === undefined) return undefined;
  const pairs: [string, string][] = Array.isArray(metrics)
    ? metrics.map((k) => [k, k])
    : typeof metrics === "object" && metrics !== null
    ? Object.entries(metrics as Record<string, string>)
    : [];
  if (pairs.length === 0 || pairs.some(([k, v]) => typeof v !== "string" || k === "" || v === "")) {
    throw new TypeError(
      `tuneCallback option "metrics" must map reported names to model.fit log keys, e.g. ` +
        `{ val_loss: "val_loss" }, or list log keys; got ${JSON.stringify(metrics)}`,
    );
  }
  return pairs;
}

async function pickMetrics(
  mapping: ReadonlyArray<readonly [string, string]> | undefined,
  logs: tf.Logs,
  on: string,
): Promise<Record<string, JsonValue>> {
  const raw = logs as Record<string, number | tf.Scalar | undefined>;
  const pairs = mapping ?? Object.keys(raw).map((k) => [k, k] as const);
  const out: Record<string, JsonValue> = {};
  for (const [name, key] of pairs) {
    const v = raw[key];
    if (v === undefined) {
      throw new TypeError(
        `tuneCallback: metric "${name}" reads log key "${key}", which model.fit did not log at ` +
          `${on} (it logged: ${Object.keys(raw).join(", ") || "nothing"}). val_* keys need ` +
          `validationData or validationSplit.`,
      );
    }
    out[name] = typeof v === "number" ? v : (await v.data())[0];
  }
  return out;
}

/** Options of {@linkcode saveModel}. */
export interface SaveModelOptions {
  /** Save the optimizer's state too. @default true */
  readonly includeOptimizer?: boolean;
}

/**
 * Saves a model into a folder as `model.json` + `weights.bin` (the layout tfjs-node's `file://`
 * handler reads), with plain `Deno.writeFile`: no tfjs-node needed.
 *
 * @param model the model.
 * @param dir the folder; created if missing.
 * @param options whether to include the optimizer's state.
 * @returns once both files are written.
 * @example
 * ```ts
 * import { loadTfjs, restoreModel, saveModel } from "./tfjs.ts";
 * const { tf } = await loadTfjs({ prefer: ["cpu"] });
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * console.log((await restoreModel(dir))?.outputs[0].shape); // [null, 2]
 * ```
 */
export async function saveModel(
  model: LayersModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const handler = tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined
      ? new ArrayBuffer(0)
      : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const json = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      ...(artifacts.userDefinedMetadata
        ? { userDefinedMetadata: artifacts.userDefinedMetadata }
        : {}),
      weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
    };
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(weights));
    await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: "JSON",
        weightDataBytes: weights.byteLength,
      },
    };
  });
  await model.save(handler, { includeOptimizer: options.includeOptimizer ?? true });
}

/**
 * Loads a model saved by {@linkcode tuneCallback} or {@linkcode saveModel}: from the session's
 * checkpoint (resolves to undefined when the trial has none, i.e. a fresh start) or from a
 * folder. With a saved optimizer state the model comes back compiled, ready to go on training.
 *
 * @param source the trial's session, or a checkpoint folder.
 * @returns the model, or undefined for a session without a checkpoint.
 * @throws {Deno.errors.NotFound} when a folder holds no `model.json`.
 * @example
 * ```ts ignore
 * const model = (await restoreModel(session)) ?? buildModel(config);
 * ```
 */
export async function restoreModel(
  source: string | { readonly checkpoint?: string },
): Promise<LayersModel | undefined> {
  const dir = typeof source === "string" ? source : source.checkpoint;
  if (dir === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/model.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `No model checkpoint in "${dir}": model.json is missing (was it saved with ` +
          `tuneCallback or saveModel?)`,
        { cause: e },
      );
    }
    throw e;
  }
  const json = JSON.parse(text) as tf.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs = manifest.flatMap((g) => g.weights);
    const parts = await Promise.all(
      manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(`${dir}/${p}`)),
    );
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    return [specs, data.buffer];
  });
  return await tf.loadLayersModel({ load: () => Promise.resolve(artifacts) });
}
