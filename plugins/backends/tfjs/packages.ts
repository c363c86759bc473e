/**
 * Where the TensorFlow.js packages live on disk, found without importing them (this module loads
 * no TensorFlow.js): the project's `node_modules`, the native packages (`@tensorflow/tfjs-node`,
 * `@tensorflow/tfjs-node-gpu`) and what `installNativeBackend` recorded about their build.
 *
 * With `"nodeModulesDir": "auto"` Deno keeps each npm package once, under
 * `node_modules/.deno/<name>@<version>/node_modules/<name>`, and links the project's direct
 * dependencies into `node_modules/<name>`. The native backend is built inside that real folder
 * (never in `DENO_DIR`, whose files Deno hard-links into it): `deps/` (the staged libtensorflow)
 * and `lib/napi-v8/tfjs_binding.node` (the built binding).
 *
 * @module
 */

/** The TensorFlow.js version the native packages must match. */
export const TFJS_VERSION = "4.22.0";

/** The PyPI TensorFlow release the native backend is built from. */
export const TENSORFLOW_VERSION = "2.21.0";

/** The two native npm packages. */
export type NativePackage = "tfjs-node" | "tfjs-node-gpu";

/** What `installNativeBackend` writes to `deps/tunebox.json` in the package it built. */
export interface NativeManifest {
  /** `"cpu"` (the `tensorflow-cpu` wheel) or `"gpu"` (the `tensorflow` wheel and CUDA 12). */
  readonly variant: "cpu" | "gpu";
  /** The TensorFlow release, e.g. `"2.21.0"`. */
  readonly tensorflow: string;
  /** The folder holding `libtensorflow_cc.so.2` and `libtensorflow_framework.so.2`. */
  readonly libDir: string;
  /** GPU only: every `nvidia/<name>/lib` folder, for the trial's `LD_LIBRARY_PATH`. */
  readonly cudaLibDirs: readonly string[];
}

/** A package found on disk. */
export interface InstalledPackage {
  /** Its folder, as linked from `node_modules/@tensorflow`. */
  readonly dir: string;
  /** Its real folder (inside `node_modules/.deno`). */
  readonly realDir: string;
  /** `version` from its package.json. */
  readonly version: string;
  /** `main` from its package.json. */
  readonly main: string;
}

/** Why a package was not found. */
export interface MissingPackage {
  /** Empty when it is simply not installed; otherwise what went wrong. */
  readonly missing: string;
  /** True when the sandbox denied reading it. */
  readonly denied?: boolean;
}

/**
 * The project's `node_modules` folder, found from where `@tensorflow/tfjs-core` resolves.
 *
 * @returns the folder, or undefined without a local `node_modules`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nodeModulesRoot } from "./packages.ts";
 * assert.equal(nodeModulesRoot()?.endsWith("/node_modules"), true);
 * ```
 */
export function nodeModulesRoot(): string | undefined {
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

/** The path of a `file:` URL. */
export function fromFileUrl(url: string): string {
  return decodeURIComponent(new URL(url).pathname);
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * Finds an `@tensorflow/*` package in `node_modules` without importing it.
 *
 * @param pkg the name without scope, e.g. `"tfjs-node"`.
 * @param options `allowHint`: what the "sandbox denied" message suggests; `nodeModules`: the
 * folder (default {@linkcode nodeModulesRoot}).
 * @returns the package, or why it is missing.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findPackage } from "./packages.ts";
 * const found = await findPackage("tfjs-core");
 * assert.equal("version" in found ? found.version : found.missing, "4.22.0");
 * ```
 */
export async function findPackage(
  pkg: string,
  options: { allowHint?: string; nodeModules?: string } = {},
): Promise<InstalledPackage | MissingPackage> {
  const root = options.nodeModules ?? nodeModulesRoot();
  if (!root) {
    return { missing: `no local node_modules folder (set "nodeModulesDir": "auto" in deno.json)` };
  }
  const dir = `${root}/@tensorflow/${pkg}`;
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/package.json`));
    let realDir = dir;
    try {
      realDir = await Deno.realPath(dir);
    } catch {
      // realPath needs read on every hop; the linked path works for imports too
    }
    return { dir, realDir, version: String(meta.version), main: String(meta.main ?? "index.js") };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { missing: "" };
    if (e instanceof Deno.errors.NotCapable) {
      return {
        missing: `the sandbox does not allow reading ${dir}${
          options.allowHint ? ` (${options.allowHint})` : ""
        }`,
        denied: true,
      };
    }
    return { missing: `unreadable: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * The built binding of a native package (`lib/napi-v*\/tfjs_binding.node`), if there is one.
 *
 * @param dir the package folder.
 * @returns the binding's path, or undefined when the package was never built.
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { findBinding } from "./packages.ts";
 * const binding = await findBinding("node_modules/@tensorflow/tfjs-node");
 * assert.ok(binding === undefined || binding.endsWith("tfjs_binding.node"));
 * ```
 */
export async function findBinding(dir: string): Promise<string | undefined> {
  try {
    for await (const e of Deno.readDir(`${dir}/lib`)) {
      if (!e.isDirectory || !e.name.startsWith("napi-v")) continue;
      const path = `${dir}/lib/${e.name}/tfjs_binding.node`;
      try {
        await Deno.stat(path);
        return path;
      } catch {
        // try the next napi version folder
      }
    }
  } catch {
    // no lib folder: never built
  }
  return undefined;
}

/**
 * Reads `deps/tunebox.json`, what `installNativeBackend` recorded about a native package's build.
 *
 * @param dir the package folder.
 * @returns the manifest, or undefined when the package was not built by Tunebox.
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { readNativeManifest } from "./packages.ts";
 * const variant = (await readNativeManifest("node_modules/@tensorflow/tfjs-node"))?.variant;
 * assert.ok(variant === undefined || variant === "cpu" || variant === "gpu");
 * ```
 */
export async function readNativeManifest(dir: string): Promise<NativeManifest | undefined> {
  try {
    return parseManifest(await Deno.readTextFile(`${dir}/deps/tunebox.json`));
  } catch {
    return undefined;
  }
}

/** The synchronous {@linkcode readNativeManifest}, for the driver's `env()`. */
export function readNativeManifestSync(dir: string): NativeManifest | undefined {
  try {
    return parseManifest(Deno.readTextFileSync(`${dir}/deps/tunebox.json`));
  } catch {
    return undefined;
  }
}

function parseManifest(text: string): NativeManifest | undefined {
  const m = JSON.parse(text) as Partial<NativeManifest>;
  if ((m.variant !== "cpu" && m.variant !== "gpu") || typeof m.libDir !== "string") {
    return undefined;
  }
  return {
    variant: m.variant,
    tensorflow: String(m.tensorflow),
    libDir: m.libDir,
    cudaLibDirs: Array.isArray(m.cudaLibDirs) ? m.cudaLibDirs.map(String) : [],
  };
}

/**
 * The folder of tfjs-backend-wasm's `.wasm` files, or undefined when it is not on disk.
 *
 * @returns the folder.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmDistDir } from "./packages.ts";
 * assert.equal(wasmDistDir()?.endsWith("tfjs-backend-wasm/dist"), true);
 * ```
 */
export function wasmDistDir(): string | undefined {
  try {
    const url = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
    return url.startsWith("file:") ? dirname(fromFileUrl(url)) : undefined;
  } catch {
    return undefined;
  }
}
