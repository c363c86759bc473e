/**
 * Loading TensorFlow.js with the fastest backend that works in this trial, proven by a real
 * operation before it is reported.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import util from "node:util";
import { BackendUnavailableError } from "../../../core/errors.ts";
import { tagNextReport } from "./_tag.ts";
import {
  findBinding,
  findPackage,
  type NativePackage,
  readNativeManifest,
  TFJS_VERSION,
  wasmDistDir,
} from "./packages.ts";
import { ALL_BACKENDS, type TfjsBackendName, type TuneSession } from "./types.ts";

/** The TensorFlow.js namespace (`npm:@tensorflow/tfjs`) that {@linkcode loadTfjs} returns. */
export type Tf = typeof tf;

/** Options of {@linkcode loadTfjs}. */
export interface LoadTfjsOptions {
  /**
   * Backends to try, in order; the first that loads and computes wins.
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
/** The native package imported into this process (two libtensorflows must never both load). */
let nativeLoaded: NativePackage | undefined;
/** Backends that failed their first operation here: never tried again in this process. */
const broken = new Map<TfjsBackendName, string>();

/**
 * Loads TensorFlow.js with the first backend of `prefer` that works here. A backend counts only
 * once `tf.setBackend` succeeded (a backend that fails to initialise would otherwise quietly
 * leave computation on cpu) and a first real operation (a matrix product, a reduction with
 * attributes, a cast) gave the right numbers; a backend whose first operation fails is removed
 * and the next one is tried, with a warning — training never meets the broken one.
 *
 * `tensorflow-gpu` is tried only when the trial has a GPU (`CUDA_VISIBLE_DEVICES` names one, or
 * is unset outside Tunebox), `webgpu` only with a hardware adapter. A fallback is warned about,
 * once, when a backend the caller asked for explicitly failed, when an installed backend is
 * broken, or when a trial holding a GPU ends up without a GPU backend; native backends that are
 * simply not built are skipped silently under the default preference list.
 *
 * @param options the preference list, the session to tag, where to warn.
 * @returns the namespace, the backend name and why others were skipped.
 * @throws {TypeError} when `prefer` is empty or names an unknown backend.
 * @throws {BackendUnavailableError} when none of the preferred backends loads.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTfjs } from "./mod.ts";
 * const { tf, backend } = await loadTfjs({ prefer: ["wasm", "cpu"] });
 * assert.equal(backend, "wasm");
 * assert.equal(tf.getBackend(), "wasm"); // with read access to its .wasm files
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
  for (const name of prefer) {
    const attempt = await tryBackend(name, gpu);
    if (attempt.ok) {
      chosen = name;
      break;
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
  const earlier = broken.get(name);
  if (earlier !== undefined) return { ok: false, quiet: false, reason: earlier };
  let attempt: Attempt;
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
      attempt = await tryNative("tfjs-node-gpu");
      break;
    case "tensorflow":
      attempt = await tryNative("tfjs-node");
      break;
    case "webgpu":
      attempt = await tryWebGpu();
      break;
    case "wasm":
      attempt = await tryWasm();
      break;
    case "cpu":
      if (!(await tf.setBackend("cpu"))) {
        return { ok: false, quiet: false, reason: "the cpu backend failed to initialise" };
      }
      // The cpu backend's first write prints "install our node backend" under Deno; the
      // fallback warning already says what to install, so keep stderr.log clean.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      attempt = { ok: true };
  }
  if (!attempt.ok) return attempt;
  const proof = firstOperation();
  if (proof === undefined) return attempt;
  const reason = `${name}: its first operation failed (${proof}), so it was not used`;
  broken.set(name, reason);
  try {
    tf.removeBackend(tf.getBackend());
  } catch {
    // already gone
  }
  return { ok: false, quiet: false, reason };
}

/** Runs small operations with attributes on the active backend; undefined when they are right. */
function firstOperation(): string | undefined {
  try {
    const got = tf.tidy(() => {
      const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
      const p = tf.matMul(a, a, false, true); // [[14, 32], [32, 77]]
      return Array.from(tf.cast(tf.sum(p, 1, true), "int32").dataSync());
    });
    return got.length === 2 && got[0] === 46 && got[1] === 109
      ? undefined
      : `expected [46, 109], got ${JSON.stringify(got)}`;
  } catch (e) {
    return e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
}

/**
 * tfjs-node's compiled code calls `util.isNullOrUndefined` and `util.isArray`, which Node.js
 * deprecated and Deno's `node:util` lacks: the first operation with attributes would throw
 * "util_1.isNullOrUndefined is not a function". Adding them back is harmless.
 */
function shimNodeUtil(): void {
  const u = util as unknown as Record<string, unknown>;
  try {
    if (typeof u.isNullOrUndefined !== "function") {
      u.isNullOrUndefined = (x: unknown): boolean => x === null || x === undefined;
    }
    if (typeof u.isArray !== "function") u.isArray = Array.isArray;
  } catch {
    // A frozen node:util: the first operation will tell, and loadTfjs falls back.
  }
}

/**
 * Runs `load` with `process.env` replaced by a plain object holding only the variables this
 * process may read. node-pre-gyp, which finds tfjs-node's binding, enumerates `process.env`
 * (`Object.keys`), and enumerating needs an unscoped `--allow-env` in Deno; with the view the
 * sandbox's scoped list suffices.
 */
async function withEnvView<T>(load: () => Promise<T>): Promise<T> {
  const real = Object.getOwnPropertyDescriptor(process, "env");
  if (!real?.configurable) return await load();
  try {
    Deno.env.toObject();
  } catch {
    return await withView(real, load); // scoped env
  }
  return await load(); // unscoped: nothing to work around
}

async function withView<T>(real: PropertyDescriptor, load: () => Promise<T>): Promise<T> {
  const view: Record<string, string> = {};
  for (const name of VIEW_NAMES) {
    try {
      const v = Deno.env.get(name);
      if (v !== undefined) view[name] = v;
    } catch {
      // not granted
    }
  }
  Object.defineProperty(process, "env", {
    value: view,
    writable: true,
    configurable: true,
    enumerable: real.enumerable ?? true,
  });
  try {
    return await load();
  } finally {
    Object.defineProperty(process, "env", real);
  }
}

/** Variables worth passing through the view when granted. */
const VIEW_NAMES = [
  "CUDA_VISIBLE_DEVICES",
  "CUDA_DEVICE_ORDER",
  "TF_CPP_MIN_LOG_LEVEL",
  "TF_ENABLE_ONEDNN_OPTS",
  "TF_FORCE_GPU_ALLOW_GROWTH",
];

/** libtensorflow prints info lines (CPU features, oneDNN) unless told otherwise, before it loads. */
function quietTensorFlowLogs(): void {
  for (const [name, value] of [["TF_CPP_MIN_LOG_LEVEL", "2"], ["TF_ENABLE_ONEDNN_OPTS", "0"]]) {
    try {
      if (Deno.env.get(name) === undefined) Deno.env.set(name, value);
    } catch {
      // not allowed (a sandboxed trial): the driver passes them (tfjsBackend().env)
    }
  }
}

function setupHint(pkg: NativePackage): string {
  const gpu = pkg === "tfjs-node-gpu";
  return `build it with \`deno task setup:tensorflow${gpu ? " --gpu" : ""}\` (or \`tunebox ` +
    `backend install tensorflow${gpu ? "-gpu" : ""}\`)`;
}

async function tryNative(pkg: NativePackage): Promise<Attempt> {
  if (nativeLoaded !== undefined) {
    if (
      pkg === "tfjs-node" && nativeLoaded === "tfjs-node-gpu" && !broken.has("tensorflow-gpu") &&
      tf.findBackendFactory("tensorflow") != null && (await tf.setBackend("tensorflow"))
    ) {
      return { ok: true }; // the GPU build is loaded, without a device: it computes on the CPU
    }
    if (nativeLoaded !== pkg) {
      return {
        ok: false,
        quiet: true,
        reason: `${pkg} skipped: ${nativeLoaded} is already loaded in this process`,
      };
    }
  }
  const found = await findPackage(pkg, {
    allowHint: "tfjsBackend({ native: true }).permissions() allows it",
  });
  if ("missing" in found) {
    return {
      ok: false,
      quiet: true, // not installed, or a sandbox without native backends: the driver's choice
      reason: found.denied
        ? `${pkg} skipped: ${found.missing}`
        : `${pkg} is not installed${found.missing ? ` (${found.missing})` : ""}: ${setupHint(pkg)}`,
    };
  }
  if ((await findBinding(found.dir)) === undefined) {
    return {
      ok: false,
      quiet: true, // the package is a dependency of the project; building it is a choice
      reason: `${pkg} is not built (no lib/napi-v*/tfjs_binding.node): ${setupHint(pkg)}`,
    };
  }
  if (found.version !== TFJS_VERSION || found.version !== tf.version_core) {
    return {
      ok: false,
      quiet: false,
      reason: `${pkg}@${found.version} does not match tfjs-core@${tf.version_core}: install ` +
        `npm:@tensorflow/${pkg}@${tf.version_core}`,
    };
  }
  shimNodeUtil();
  quietTensorFlowLogs();
  try {
    nativeLoaded = pkg;
    // A file URL computed at run time: `deno check` and the module graph never see it.
    await withEnvView(() => import(new URL(`file://${found.dir}/${found.main}`).href));
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    const sandbox = e instanceof Deno.errors.NotCapable || /Requires \w+ access/.test(msg)
      ? "; a sandboxed trial needs tfjsBackend({ native: true }).permissions()"
      : "";
    return { ok: false, quiet: false, reason: `${pkg} failed to load (${msg})${sandbox}` };
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
      const manifest = await readNativeManifest(found.dir);
      const cpuBuild = manifest?.variant === "cpu";
      return {
        ok: false,
        quiet: false,
        reason: cpuBuild
          ? "tfjs-node-gpu is built against the CPU-only TensorFlow: rebuild it with " +
            "`deno task setup:tensorflow --gpu`"
          : "tfjs-node-gpu loaded but TensorFlow found no usable CUDA device (it needs the " +
            "host's NVIDIA driver, libcuda.so.1, and the CUDA 12 / cuDNN 9 libraries that " +
            "`deno task setup:tensorflow --gpu` installs)",
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
  const found = await findPackage("tfjs-backend-webgpu", {
    allowHint: "tfjsBackend().permissions() allows it once the package is installed",
  });
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
