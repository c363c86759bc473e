/**
 * The driver's side of the TensorFlow.js backend: what a trial's sandbox must allow for
 * `loadTfjs` to load its backend, and the environment that pins it to its GPUs. This module
 * loads no TensorFlow.js, so a driver that only builds sandboxes stays light.
 *
 * @module
 */

import type { SandboxPolicy } from "../../../core/plugin.ts";
import type { Device } from "../../../core/resources.ts";
import {
  type NativePackage,
  nodeModulesRoot,
  readNativeManifestSync,
  wasmDistDir,
} from "./packages.ts";

/** Re-exported: the types this module's API uses. */
export type { Device, SandboxPolicy };

/** Options of {@linkcode tfjsBackend}. */
export interface TfjsBackendOptions {
  /**
   * Also allow the native backends (tfjs-node, tfjs-node-gpu): FFI on the built binding's folder,
   * read on `node_modules` and the `sys` calls their loader makes. Native code runs with the full rights of the user once loaded, so a trial using it is
   * sandboxed by Deno only up to its first native call. @default false
   */
  readonly native?: boolean;
  /** The `node_modules` folder. @default the folder `@tensorflow/tfjs-core` resolves into */
  readonly nodeModules?: string;
}

/** What the driver needs to know about the TensorFlow.js backend of its trials. */
export interface TfjsBackend {
  /** `"tfjs"`. */
  readonly name: "tfjs";
  /** What a trial's sandbox must allow for `loadTfjs` to load its backend. */
  permissions(): SandboxPolicy;
  /** Environment for a trial given its devices. */
  env(devices: readonly Device[]): Record<string, string>;
}

/**
 * The driver-side description of the TensorFlow.js backend: the sandbox permissions a trial
 * needs (read on the `.wasm` folder; with `native`, FFI scoped to the built binding's folder —
 * never a blanket `-A`) and the environment that pins it to its GPUs.
 *
 * @param options whether to allow the native backends, and where `node_modules` is.
 * @returns the backend description.
 * @throws {TypeError} when an option has the wrong type.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tfjsBackend } from "./permissions.ts";
 * const backend = tfjsBackend();
 * assert.ok(backend.permissions().read?.some((p) => p.endsWith("tfjs-backend-wasm/dist")));
 * assert.equal(backend.env([{ index: 1, name: "GPU 1" }]).CUDA_VISIBLE_DEVICES, "1");
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
  const root = () => options.nodeModules ?? nodeModulesRoot();
  const backend: TfjsBackend = {
    name: "tfjs",
    permissions(): SandboxPolicy {
      const read: string[] = [];
      const wasm = wasmDistDir();
      if (wasm) read.push(wasm);
      const nm = root();
      if (nm) {
        // WebGPU is plain JavaScript: only its package folder (link and target) is read.
        const webgpu = `${nm}/@tensorflow/tfjs-backend-webgpu`;
        try {
          read.push(Deno.realPathSync(webgpu), webgpu);
        } catch {
          // not installed
        }
      }
      const env = ["CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "TF_*"];
      const policy = { read, env };
      if (!native || !nm) return policy;
      // FFI on the folder of the built binding only: Deno checks the path given to dlopen, and
      // libtensorflow (linked by the binding, loaded by the system's loader) needs no grant.
      const ffi: string[] = [];
      for (const pkg of ["tfjs-node", "tfjs-node-gpu"] as const) {
        const lib = nativeLibDir(nm, pkg);
        if (lib) ffi.push(lib);
      }
      return {
        read: [...read, nm],
        env, // loadTfjs shows node-pre-gyp a view of these: no unscoped --allow-env
        ffi,
        sys: ["cpus", "networkInterfaces", "hostname"],
      };
    },
    env(devices: readonly Device[]): Record<string, string> {
      const env: Record<string, string> = {
        CUDA_VISIBLE_DEVICES: devices.map((d) => d.uuid ?? String(d.index)).join(","),
      };
      if (devices.length > 0) env.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
      if (!native) return env;
      env.TF_CPP_MIN_LOG_LEVEL = "2"; // keep libtensorflow's info lines out of stderr.log
      env.TF_ENABLE_ONEDNN_OPTS = "0"; // and its oneDNN notice
      const nm = root();
      const gpu = nm ? readNativeManifestSync(`${nm}/@tensorflow/tfjs-node-gpu`) : undefined;
      if (devices.length > 0 && gpu?.variant === "gpu" && gpu.cudaLibDirs.length > 0) {
        // The GPU build finds CUDA through deps/nvidia already (RUNPATH $ORIGIN/../nvidia/*/lib);
        // the explicit path also covers a binding loaded from elsewhere.
        env.LD_LIBRARY_PATH = gpu.cudaLibDirs.join(":");
      }
      return env;
    },
  };
  // Saved in experiment.json, so that a resumed experiment makes the same backend again.
  Object.defineProperty(backend, "spec", {
    value: {
      name: "tfjs",
      options: { native, ...(options.nodeModules ? { nodeModules: options.nodeModules } : {}) },
    },
    enumerable: false,
  });
  return backend;
}

/** The real path of a native package's built binding folder (`lib/`), when it was built. */
function nativeLibDir(nodeModules: string, pkg: NativePackage): string | undefined {
  try {
    const dir = Deno.realPathSync(`${nodeModules}/@tensorflow/${pkg}/lib`);
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory && e.name.startsWith("napi-v")) return dir;
    }
  } catch {
    // not installed, or never built
  }
  return undefined;
}
