/**
 * Builds the native TensorFlow.js backend from registry packages only: PyPI's TensorFlow wheel
 * gives libtensorflow and its C headers, npm's `@tensorflow/tfjs-node` (or `-gpu`) gives the
 * binding's sources, and the binding is compiled by the package's own `scripts/install.js`
 * against them. Nothing is fetched from `storage.googleapis.com` (the host tfjs-node's install
 * script downloads from, unreachable from many networks).
 *
 * Cache layout (`$TUNEBOX_CACHE_DIR`, else `$XDG_CACHE_HOME/tunebox`, else `~/.cache/tunebox`):
 *
 * ```text
 * tensorflow/
 *   wheels/                      pip download target (the wheel is removed once extracted)
 *   cpu-2.21.0/tensorflow/       libtensorflow_cc.so.2, libtensorflow_framework.so.2, include/
 *   gpu-2.21.0/tensorflow/       the same from the `tensorflow` wheel
 *   gpu-2.21.0/nvidia/*\/lib      the CUDA 12 / cuDNN 9 wheels of its `and-cuda` extra
 *   bindings/<key>/tfjs_binding.node   built bindings, reused when node_modules is recreated
 * ```
 *
 * The package is staged in its real folder under `node_modules/.deno/`: `deps/lib` links to the
 * cached libraries, `deps/include` to the headers, `deps/nvidia` (GPU) to the CUDA wheels, so that
 * libtensorflow's own `RUNPATH` (`$ORIGIN/../nvidia/<lib>/lib`) finds CUDA without
 * `LD_LIBRARY_PATH`. Each step checks its output first: a second run does nothing.
 *
 * @module
 */

import { exists } from "../../../core/_fs.ts";
import {
  findBinding,
  findPackage,
  type NativeManifest,
  type NativePackage,
  nodeModulesRoot,
  readNativeManifest,
  TENSORFLOW_VERSION,
  TFJS_VERSION,
} from "./packages.ts";

/** Options of {@linkcode installNativeBackend}. */
export interface InstallNativeOptions {
  /** Build `tfjs-node-gpu` against the `tensorflow` wheel and CUDA 12. @default false */
  readonly gpu?: boolean;
  /**
   * The cache folder. @default `$TUNEBOX_CACHE_DIR`, else `$XDG_CACHE_HOME/tunebox`, else
   * `~/.cache/tunebox`
   */
  readonly cacheDir?: string;
  /** The project's `node_modules`. @default the folder `@tensorflow/tfjs-core` resolves into */
  readonly nodeModules?: string;
  /** The Python that runs pip. @default `python3` */
  readonly python?: string;
  /** Strip the libraries' symbols (853 MB → 606 MB for the CPU pair). @default true */
  readonly strip?: boolean;
  /** Keep the downloaded wheels after extraction. @default false */
  readonly keepWheels?: boolean;
  /** Rebuild the binding even when one is there. @default false */
  readonly force?: boolean;
  /** Check that the built backend loads and computes in a sandboxed `deno run`. @default true */
  readonly verify?: boolean;
  /** Where the one progress line per step goes. @default console.log */
  readonly progress?: (line: string) => void;
}

/** What {@linkcode installNativeBackend} did. */
export interface InstallNativeResult {
  /** The npm package built. */
  readonly package: NativePackage;
  /** Its real folder. */
  readonly packageDir: string;
  /** The built binding. */
  readonly binding: string;
  /** What was recorded in `deps/tunebox.json`. */
  readonly manifest: NativeManifest;
  /** The backend the verification run got (`"tensorflow"` or `"tensorflow-gpu"`), if run. */
  readonly verified?: string;
  /** Each step, its seconds, and whether it had nothing to do. */
  readonly steps: readonly { name: string; seconds: number; skipped: boolean }[];
  /** Bytes the extracted libraries, headers and CUDA wheels take in the cache. */
  readonly diskBytes: number;
}

/**
 * A prerequisite of the native build is missing, or a step failed; the message says which and
 * how to fix it, one line per problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NativeSetupError } from "./setup.ts";
 * const e = new NativeSetupError(["no C++ compiler: apt-get install g++"]);
 * assert.equal(e.problems.length, 1);
 * ```
 */
export class NativeSetupError extends Error {
  /** One line per problem. */
  readonly problems: readonly string[];
  /** Creates the error. */
  constructor(problems: readonly string[], options?: ErrorOptions) {
    super(
      problems.length === 1
        ? `Cannot build the native TensorFlow backend: ${problems[0]}`
        : `Cannot build the native TensorFlow backend:\n${
          problems.map((p) => `  - ${p}`).join("\n")
        }`,
      options,
    );
    this.name = "NativeSetupError";
    this.problems = problems;
  }
}

const HEADER_PREFIXES = [
  "tensorflow/include/tensorflow/c/",
  "tensorflow/include/tensorflow/core/platform/ctstring",
  "tensorflow/include/tsl/platform/ctstring",
  "tensorflow/include/xla/tsl/c/",
];
const LIBS = ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"];
/** glibc the manylinux_2_27 wheels need. */
const MIN_GLIBC: readonly [number, number] = [2, 27];
/** Free space a cold install needs: the wheel plus its unstripped libraries, with a margin. */
const DISK_BYTES = { cpu: 1.6e9, gpu: 8e9 };

/**
 * The cache folder: `$TUNEBOX_CACHE_DIR`, else `$XDG_CACHE_HOME/tunebox`, else `~/.cache/tunebox`.
 *
 * @returns the folder (not created).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultCacheDir } from "./setup.ts";
 * const own = Deno.env.get("TUNEBOX_CACHE_DIR");
 * assert.equal(defaultCacheDir().endsWith("tunebox"), own === undefined || own.endsWith("tunebox"));
 * ```
 */
export function defaultCacheDir(): string {
  const env = (k: string) => {
    try {
      return Deno.env.get(k) || undefined;
    } catch {
      return undefined;
    }
  };
  return env("TUNEBOX_CACHE_DIR") ??
    (env("XDG_CACHE_HOME")
      ? `${env("XDG_CACHE_HOME")}/tunebox`
      : `${env("HOME") ?? "/tmp"}/.cache/tunebox`);
}

/**
 * Installs the native TensorFlow backend into the project: `tfjs-node` against PyPI's
 * `tensorflow-cpu` wheel, or with `gpu` `tfjs-node-gpu` against the `tensorflow` wheel and the
 * `nvidia-*-cu12` wheels of its `and-cuda` extra. Prints one line per step; a second run finds
 * everything in place and only verifies it.
 *
 * Needs: Linux x86_64 with glibc >= 2.27, Python 3 with pip, Node.js with its headers
 * (`/usr/include/node`) and node-gyp (npm's copy), a C++ compiler and make, and about 1.6 GB
 * (CPU) or 8 GB (GPU) free in the cache folder; every missing one is named, with its fix.
 *
 * @param options CPU or GPU, where the cache is, and how much to do.
 * @returns what was built and how long each step took.
 * @throws {NativeSetupError} naming each missing prerequisite or the step that failed.
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { installNativeBackend } from "./setup.ts";
 * const r = await installNativeBackend({ gpu: false });
 * assert.match(r.binding, /\/lib\/napi-v8\/tfjs_binding\.node$/);
 * assert.equal(r.verified, "tensorflow");
 * ```
 */
export async function installNativeBackend(
  options: InstallNativeOptions = {},
): Promise<InstallNativeResult> {
  const gpu = options.gpu ?? false;
  const variant = gpu ? "gpu" : "cpu";
  const pkgName: NativePackage = gpu ? "tfjs-node-gpu" : "tfjs-node";
  const progress = options.progress ?? ((l: string) => console.log(l));
  const cache = `${options.cacheDir ?? defaultCacheDir()}/tensorflow`;
  const root = `${cache}/${variant}-${TENSORFLOW_VERSION}`;
  const python = options.python ?? "python3";
  const steps: { name: string; seconds: number; skipped: boolean }[] = [];
  const total = 7;
  const step = async (
    name: string,
    fn: () => Promise<string | { skipped: string }>,
  ): Promise<void> => {
    const t0 = performance.now();
    const out = await fn();
    const seconds = (performance.now() - t0) / 1000;
    const skipped = typeof out !== "string";
    steps.push({ name, seconds, skipped });
    progress(
      `[${steps.length}/${total}] ${name}: ${skipped ? out.skipped : out} (${
        seconds.toFixed(1)
      } s)`,
    );
  };

  const nodeModules = options.nodeModules ?? nodeModulesRoot();
  let pkgDir = "";
  let tools: Tools | undefined;
  await step("prerequisites", async () => {
    const ready = await exists(`${root}/.complete`);
    tools = await checkPrerequisites({ python, cache, needDisk: ready ? 0 : DISK_BYTES[variant] });
    return tools.summary;
  });
  await step("npm package", async () => {
    if (!nodeModules) {
      throw new NativeSetupError([
        `no node_modules folder: set "nodeModulesDir": "auto" in deno.json and run \`deno install\``,
      ]);
    }
    const found = await findPackage(pkgName, { nodeModules });
    if ("missing" in found) {
      throw new NativeSetupError([
        `npm:@tensorflow/${pkgName}@${TFJS_VERSION} is not in ${nodeModules}${
          found.missing ? ` (${found.missing})` : ""
        }: add it with \`deno add npm:@tensorflow/${pkgName}@${TFJS_VERSION}\` and run ` +
        "`deno install`",
      ]);
    }
    if (found.version !== TFJS_VERSION) {
      throw new NativeSetupError([
        `${pkgName}@${found.version} is installed, ${TFJS_VERSION} is needed (the version of ` +
        `tfjs-core): \`deno add npm:@tensorflow/${pkgName}@${TFJS_VERSION}\``,
      ]);
    }
    pkgDir = found.realDir;
    return `${pkgName}@${found.version} in ${pkgDir}`;
  });

  const t = tools!;
  await step("download", async () => {
    if (await exists(`${root}/.complete`)) return { skipped: `cached in ${root}` };
    await Deno.mkdir(`${cache}/wheels`, { recursive: true });
    const wheelName = gpu ? "tensorflow" : "tensorflow-cpu";
    await run(t.python, [
      "-m",
      "pip",
      "download",
      "--no-deps",
      "--only-binary=:all:",
      "--disable-pip-version-check",
      "--progress-bar",
      "off",
      "--dest",
      `${cache}/wheels`,
      `${wheelName}==${TENSORFLOW_VERSION}`,
    ], `pip download ${wheelName}==${TENSORFLOW_VERSION}`);
    return `${wheelName}==${TENSORFLOW_VERSION} into ${cache}/wheels`;
  });

  await step("extract", async () => {
    if (await exists(`${root}/.complete`)) return { skipped: "libraries and headers in place" };
    const wheel = await findWheel(`${cache}/wheels`, gpu ? "tensorflow-" : "tensorflow_cpu-");
    const partial = `${root}.partial`;
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    await Deno.mkdir(partial, { recursive: true });
    await run(t.python, ["-c", EXTRACT_PY, wheel, partial, ...HEADER_PREFIXES], "extract");
    let stripped = "";
    if ((options.strip ?? true) && t.strip) {
      for (const lib of LIBS) {
        await run(t.strip, ["--strip-unneeded", `${partial}/tensorflow/${lib}`], `strip ${lib}`);
      }
      stripped = ", stripped";
    }
    let cuda = "";
    if (gpu) {
      const reqs = await run(t.python, ["-c", CUDA_REQS_PY, wheel], "read the and-cuda extra");
      const list = reqs.split("\n").map((l) => l.trim()).filter(Boolean);
      if (list.length === 0) {
        throw new NativeSetupError([`${wheel} names no "and-cuda" extra`]);
      }
      await run(t.python, [
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--target",
        partial,
        ...list,
      ], "pip install the CUDA 12 wheels");
      cuda = `, ${list.length} CUDA wheels`;
    }
    await Deno.writeTextFile(
      `${partial}/.complete`,
      JSON.stringify({ wheel: basename(wheel), at: new Date().toISOString() }) + "\n",
    );
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.rename(partial, root);
    if (!options.keepWheels) await Deno.remove(wheel).catch(() => {});
    return `${LIBS.join(", ")} and the C API headers into ${root}${stripped}${cuda}`;
  });

  const libDir = `${root}/tensorflow`;
  const cudaLibDirs = gpu ? await listCudaLibDirs(`${root}/nvidia`) : [];
  const manifest: NativeManifest = {
    variant,
    tensorflow: TENSORFLOW_VERSION,
    libDir,
    cudaLibDirs,
  };

  await step("stage", async () => {
    const deps = `${pkgDir}/deps`;
    const want: [string, string][] = [
      [`${deps}/include`, `${libDir}/include`],
      [`${deps}/lib/libtensorflow_cc.so.2`, `${libDir}/libtensorflow_cc.so.2`],
      [`${deps}/lib/libtensorflow_framework.so.2`, `${libDir}/libtensorflow_framework.so.2`],
      [`${deps}/lib/libtensorflow.so`, "libtensorflow_cc.so.2"],
      [`${deps}/lib/libtensorflow_framework.so`, "libtensorflow_framework.so.2"],
      // install.js builds instead of downloading when this file exists.
      [`${deps}/lib/libtensorflow.so.2.9.1`, "libtensorflow_cc.so.2"],
    ];
    if (gpu) want.push([`${deps}/nvidia`, `${root}/nvidia`]);
    let changed = 0;
    for (const [link, target] of want) {
      if ((await readLink(link)) === target) continue;
      await Deno.mkdir(dirname(link), { recursive: true });
      await Deno.remove(link, { recursive: true }).catch(() => {});
      await Deno.symlink(target, link);
      changed++;
    }
    const custom = `${pkgDir}/scripts/custom-binary.json`;
    const customText = JSON.stringify({ "tf-lib": `file://${libDir}` }) + "\n";
    if ((await Deno.readTextFile(custom).catch(() => "")) !== customText) {
      await Deno.writeTextFile(custom, customText);
      changed++;
    }
    return changed === 0
      ? { skipped: `${deps} already links ${libDir}` }
      : `${changed} links in ${deps} to ${libDir}`;
  });

  const key = `${pkgName}-${TFJS_VERSION}-${variant}-${TENSORFLOW_VERSION}`;
  const cachedBinding = `${cache}/bindings/${key}/tfjs_binding.node`;
  let binding = "";
  await step("build", async () => {
    const existing = await findBinding(pkgDir);
    const recorded = await readNativeManifest(pkgDir);
    if (
      !options.force && existing && recorded?.variant === variant &&
      recorded.libDir === libDir && recorded.tensorflow === TENSORFLOW_VERSION
    ) {
      binding = existing;
      return { skipped: `${existing} is built` };
    }
    const target = `${pkgDir}/lib/napi-v8/tfjs_binding.node`;
    if (!options.force && (await exists(cachedBinding))) {
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.copyFile(cachedBinding, target);
      binding = target;
      return `reused ${cachedBinding}`;
    }
    await Deno.remove(`${pkgDir}/lib`, { recursive: true }).catch(() => {});
    await Deno.remove(`${pkgDir}/build`, { recursive: true }).catch(() => {});
    // install.js rewrites package.json in place; the file is a hard link into DENO_DIR's npm
    // cache, so give this folder its own copy first and leave the cache untouched.
    await unlinkHardLink(`${pkgDir}/package.json`);
    const bin = await Deno.makeTempDir({ prefix: "tunebox-gyp-" });
    try {
      const preGyp = await findNodePreGyp(pkgDir);
      await Deno.symlink(preGyp, `${bin}/node-pre-gyp`);
      await run(
        t.node,
        ["scripts/install.js", ...(gpu ? ["gpu"] : [])],
        "node scripts/install.js",
        {
          cwd: pkgDir,
          env: {
            PATH: `${bin}:${dirname(t.node)}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
            npm_config_nodedir: t.nodedir,
            npm_config_node_gyp: t.nodeGyp,
            PYTHON: t.python,
            npm_config_python: t.python,
          },
        },
      );
    } finally {
      await Deno.remove(bin, { recursive: true }).catch(() => {});
    }
    const built = await findBinding(pkgDir);
    if (!built) {
      throw new NativeSetupError([
        `node scripts/install.js finished but wrote no lib/napi-v*/tfjs_binding.node in ${pkgDir}`,
      ]);
    }
    binding = built;
    await Deno.mkdir(dirname(cachedBinding), { recursive: true });
    await Deno.copyFile(built, cachedBinding);
    return `${built} (node-gyp, g++)`;
  });
  await Deno.writeTextFile(`${pkgDir}/deps/tunebox.json`, JSON.stringify(manifest, null, 2) + "\n");

  let verified: string | undefined;
  await step("verify", async () => {
    if (options.verify === false) return { skipped: "not asked to" };
    verified = await verifyBackend(nodeModules!, gpu);
    return verified === "tensorflow-gpu"
      ? "tensorflow-gpu computes on the GPU in a sandboxed trial"
      : gpu
      ? "the GPU build loads and computes in a sandboxed trial; no CUDA device here, so on the CPU"
      : "tensorflow computes in a sandboxed trial";
  });
  return {
    package: pkgName,
    packageDir: pkgDir,
    binding,
    manifest,
    verified,
    steps,
    diskBytes: await du(root),
  };
}

interface Tools {
  python: string;
  node: string;
  nodeGyp: string;
  nodedir: string;
  strip?: string;
  summary: string;
}

async function checkPrerequisites(
  o: { python: string; cache: string; needDisk: number },
): Promise<Tools> {
  const problems: string[] = [];
  const apt = "(on Debian/Ubuntu: apt-get install";
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    problems.push(
      `PyPI's TensorFlow wheels used here are for Linux x86_64; this is ${Deno.build.os} ` +
        `${Deno.build.arch} — use the wasm backend`,
    );
  }
  const glibc = (await output("getconf", ["GNU_LIBC_VERSION"]))?.trim().split(" ")[1];
  if (glibc === undefined) {
    problems.push(
      "no glibc found (getconf GNU_LIBC_VERSION failed): the wheels need glibc >= 2.27",
    );
  } else {
    const [maj, min] = glibc.split(".").map(Number);
    if (maj < MIN_GLIBC[0] || (maj === MIN_GLIBC[0] && min < MIN_GLIBC[1])) {
      problems.push(
        `glibc ${glibc} is too old: TensorFlow ${TENSORFLOW_VERSION}'s manylinux_2_27 wheels ` +
          "need glibc >= 2.27 (Debian 10+, Ubuntu 18.04+, RHEL 8+)",
      );
    }
  }
  const py = await output(o.python, [
    "-c",
    "import sys, pip; print('%d.%d.%d' % sys.version_info[:3], pip.__version__)",
  ]);
  let python = o.python;
  if (py === undefined) {
    problems.push(
      `no Python with pip ("${o.python} -c 'import pip'" failed) ${apt} python3 python3-pip)`,
    );
  } else {
    const [v] = py.trim().split(" ");
    const [maj, min] = v.split(".").map(Number);
    if (maj !== 3 || min < 10 || min > 13) {
      problems.push(
        `Python ${v} has no TensorFlow ${TENSORFLOW_VERSION} wheel (3.10 to 3.13 do): pass ` +
          "another with --python",
      );
    }
    python = (await output(o.python, ["-c", "import sys; print(sys.executable)"]))?.trim() ??
      o.python;
  }
  const node = (await output("sh", ["-c", "command -v node"]))?.trim();
  const nodeVersion = node ? (await output(node, ["--version"]))?.trim() : undefined;
  if (!node || !nodeVersion) {
    problems.push(`no Node.js (node runs tfjs-node's install script) ${apt} nodejs npm)`);
  }
  const nodedir = Deno.env.get("npm_config_nodedir") ??
    (node ? dirname(dirname(await Deno.realPath(node))) : "/usr");
  if (node && !(await exists(`${nodedir}/include/node/node_api.h`))) {
    problems.push(
      `no Node.js headers in ${nodedir}/include/node (node-gyp would download them) ${apt} ` +
        "nodejs, or set npm_config_nodedir)",
    );
  }
  let nodeGyp = "";
  if (node) {
    const prefix = dirname(dirname(await Deno.realPath(node)));
    for (
      const c of [
        Deno.env.get("npm_config_node_gyp") ?? "",
        `${prefix}/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js`,
        "/usr/share/nodejs/node-gyp/bin/node-gyp.js",
        "/usr/lib/node_modules/node-gyp/bin/node-gyp.js",
      ]
    ) {
      if (c && (await exists(c))) {
        nodeGyp = c;
        break;
      }
    }
    if (!nodeGyp) problems.push(`no node-gyp (npm ships one) ${apt} npm)`);
  }
  const cxx = (await output("sh", ["-c", "command -v c++ || command -v g++"]))?.trim();
  const cxxVersion = cxx ? (await output(cxx, ["--version"]))?.split("\n")[0] : undefined;
  if (!cxx || !cxxVersion) problems.push(`no C++ compiler (c++ or g++) ${apt} g++ make)`);
  if ((await output("make", ["--version"])) === undefined) problems.push(`no make ${apt} make)`);
  const strip = (await output("sh", ["-c", "command -v strip"]))?.trim() || undefined;
  let free = Infinity;
  if (o.needDisk > 0) {
    let dir = o.cache;
    while (!(await exists(dir)) && dir !== "/") dir = dirname(dir);
    const df = await output("df", ["-Pk", dir]);
    const kb = Number(df?.trim().split("\n").at(-1)?.split(/\s+/)[3]);
    if (Number.isFinite(kb)) {
      free = kb * 1024;
      if (free < o.needDisk) {
        problems.push(
          `not enough disk space in ${dir}: ${gb(free)} free, ${gb(o.needDisk)} needed ` +
            "(set TUNEBOX_CACHE_DIR to a larger disk)",
        );
      }
    }
  }
  if (problems.length > 0) throw new NativeSetupError(problems);
  return {
    python,
    node: node!,
    nodeGyp,
    nodedir,
    strip,
    summary: `glibc ${glibc}, Python ${py!.trim().split(" ")[0]}, Node.js ${nodeVersion}, ` +
      `${cxxVersion}${Number.isFinite(free) ? `, ${gb(free)} free` : ""}`,
  };
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

const EXTRACT_PY = `
import sys, zipfile, os
wheel, dest, prefixes = sys.argv[1], sys.argv[2], sys.argv[3:]
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.filename in libs or any(info.filename.startswith(p) for p in prefixes):
            z.extract(info, dest)
            n += 1
missing = [l for l in libs if not os.path.exists(os.path.join(dest, l))]
if missing:
    sys.exit("the wheel lacks " + ", ".join(missing))
print(n)
`;

const CUDA_REQS_PY = `
import sys, zipfile, re
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if line.startswith("Requires-Dist:") and "and-cuda" in line:
            req = line.split(":", 1)[1].split(";")[0].strip()
            req = re.sub(r"\\s*\\(([^)]*)\\)", r"\\1", req).replace(" ", "")
            print(req)
`;

async function verifyBackend(nodeModules: string, gpu: boolean): Promise<string> {
  const { tfjsBackend } = await import("./permissions.ts");
  const backend = tfjsBackend({ native: true, nodeModules });
  const p = backend.permissions();
  const config = `${dirname(nodeModules)}/deno.json`;
  const probe = new URL("./_probe.ts", import.meta.url);
  const flags = [
    `--allow-read=${(p.read ?? []).join(",")}`,
    `--allow-env=${(p.env ?? []).join(",")}`,
    `--allow-ffi=${(p.ffi ?? []).join(",")}`,
    `--allow-sys=${(p.sys ?? []).join(",")}`,
  ];
  const env: Record<string, string> = {
    PATH: "/usr/bin:/bin",
    ...backend.env([]),
  };
  delete env.CUDA_VISIBLE_DEVICES; // let the GPU build look for a device
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--cached-only",
      ...(await exists(config)) ? [`--config=${config}`] : [],
      ...flags,
      probe.href,
      JSON.stringify(gpu ? ["tensorflow-gpu", "tensorflow"] : ["tensorflow"]),
    ],
    clearEnv: true,
    env: { ...env, ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  let got: { backend?: string; sum?: number } = {};
  try {
    got = JSON.parse(stdout.split("\n").at(-1) ?? "{}");
  } catch {
    // reported below
  }
  if (!out.success || got.sum !== 512 || !got.backend?.startsWith("tensorflow")) {
    throw new NativeSetupError([
      `the built backend did not compute in a sandboxed trial (exit ${out.code}): ${
        (stderr || stdout).split("\n").slice(-6).join("\n")
      }`,
    ]);
  }
  return got.backend;
}

async function run(
  cmd: string,
  args: string[],
  what: string,
  o: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd: o.cwd,
      env: o.env,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new NativeSetupError([`${what}: cannot run ${cmd} (${(e as Error).message})`], {
      cause: e,
    });
  }
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const text = (new TextDecoder().decode(out.stderr) + "\n" + stdout).trim();
    throw new NativeSetupError([
      `${what} failed (exit ${out.code}):\n${text.split("\n").slice(-15).join("\n")}`,
    ]);
  }
  return stdout;
}

async function output(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

async function readLink(path: string): Promise<string | undefined> {
  try {
    return await Deno.readLink(path);
  } catch {
    return undefined;
  }
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

async function findWheel(dir: string, prefix: string): Promise<string> {
  for await (const e of Deno.readDir(dir)) {
    if (
      e.isFile && e.name.startsWith(prefix) && e.name.includes(`-${TENSORFLOW_VERSION}-`) &&
      e.name.endsWith(".whl")
    ) {
      return `${dir}/${e.name}`;
    }
  }
  throw new NativeSetupError([
    `pip download left no ${prefix}${TENSORFLOW_VERSION}-*.whl in ${dir}`,
  ]);
}

async function listCudaLibDirs(nvidia: string): Promise<string[]> {
  const dirs: string[] = [];
  try {
    for await (const e of Deno.readDir(nvidia)) {
      if (e.isDirectory && (await exists(`${nvidia}/${e.name}/lib`))) {
        dirs.push(`${nvidia}/${e.name}/lib`);
      }
    }
  } catch {
    // not installed
  }
  return dirs.sort();
}

/** Replaces a file by its own copy, so writing to it no longer writes to its other links. */
async function unlinkHardLink(path: string): Promise<void> {
  const st = await Deno.stat(path);
  if (st.nlink === null || st.nlink <= 1) return;
  const tmp = `${path}.tunebox-copy`;
  await Deno.copyFile(path, tmp);
  await Deno.rename(tmp, path);
}

async function findNodePreGyp(pkgDir: string): Promise<string> {
  // Deno puts a package's dependencies next to it: node_modules/.deno/<pkg>/node_modules/.
  const candidates = [
    `${dirname(dirname(pkgDir))}/@mapbox/node-pre-gyp/bin/node-pre-gyp`,
    `${pkgDir}/node_modules/@mapbox/node-pre-gyp/bin/node-pre-gyp`,
  ];
  for (const c of candidates) if (await exists(c)) return c;
  throw new NativeSetupError([
    `@mapbox/node-pre-gyp (a dependency of tfjs-node) is not next to ${pkgDir}: run \`deno install\``,
  ]);
}

async function du(path: string): Promise<number> {
  const out = await output("du", ["-sbL", path]);
  const n = Number(out?.split(/\s/)[0]);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The CLI's `tunebox backend install tensorflow|tensorflow-gpu [--force] [--no-strip]
 * [--python PY]`: {@linkcode installNativeBackend} with one progress line per step.
 *
 * @param args the arguments after `backend`.
 * @returns the exit code: 0 built (or already there), 1 a prerequisite or step failed, 2 usage.
 * @example
 * ```ts ignore
 * import { backendCommand } from "./setup.ts";
 * Deno.exit(await backendCommand(["install", "tensorflow"]));
 * ```
 */
export async function backendCommand(args: readonly string[]): Promise<number> {
  const usage = "usage: tunebox backend install tensorflow|tensorflow-gpu [--force] " +
    "[--no-strip] [--keep-wheels] [--python PY]";
  const rest = [...args];
  const [verb, name] = [rest.shift(), rest.shift()];
  const flags = {
    force: false,
    strip: true,
    keepWheels: false,
    python: undefined as string | undefined,
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--force") flags.force = true;
    else if (a === "--no-strip") flags.strip = false;
    else if (a === "--keep-wheels") flags.keepWheels = true;
    else if (a === "--python" && rest[i + 1]) flags.python = rest[++i];
    else {
      console.error(`tunebox backend: unknown option "${a}"\n${usage}`);
      return 2;
    }
  }
  if (verb !== "install" || (name !== "tensorflow" && name !== "tensorflow-gpu")) {
    console.error(
      `tunebox backend: expected "install tensorflow" or "install tensorflow-gpu", got ${
        JSON.stringify([verb, name].filter((x) => x !== undefined).join(" "))
      }\n${usage}`,
    );
    return 2;
  }
  try {
    const r = await installNativeBackend({
      gpu: name === "tensorflow-gpu",
      force: flags.force,
      strip: flags.strip,
      keepWheels: flags.keepWheels,
      ...(flags.python ? { python: flags.python } : {}),
    });
    console.log(
      `${r.package} ready: loadTfjs() now picks "${r.verified ?? name}" ` +
        `(${(r.diskBytes / 1e6).toFixed(0)} MB in ${dirname(r.manifest.libDir)})`,
    );
    return 0;
  } catch (e) {
    if (e instanceof NativeSetupError) {
      console.error(`tunebox backend: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
