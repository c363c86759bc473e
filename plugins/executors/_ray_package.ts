/**
 * The Ray executor's `working_dir` package for clusters without shared storage: the local files
 * of the trial's module graph (Tunebox's own included), the trainable's whole folder and the
 * driver's `DENO_DIR` cache, zipped with `fflate`, named by a hash of their paths and contents
 * (`_ray_pkg_<hash>.zip`) and uploaded once (`PUT /api/packages/gcs/...`). Inside the package
 * every file sits at `root/<its absolute path on the driver>`, so the trial's paths map by a
 * prefix: `/a/b.ts` → `$W/root/a/b.ts`, `$W` being the job's working dir on its node (the
 * experiment's entry and module cache go to fixed places, so the package of a trainable is the
 * same in every experiment).
 *
 * @module
 */

import type { Zippable } from "fflate";
import { join } from "../../core/_path.ts";
import { TuneError } from "../../core/errors.ts";
import type { RayJobsClient } from "./_ray_client.ts";

/** A package as uploaded. */
export interface ShippedPackage {
  /** `gcs://_ray_pkg_<hash>.zip`, for `runtime_env.working_dir`. */
  readonly uri: string;
  /** Files in it. */
  readonly files: number;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Whether this call uploaded it (false: the cluster had it already). */
  readonly uploaded: boolean;
}

/** What goes into the package. */
export interface PackageContents {
  /** The generated entry module and the trainable module (their graphs are shipped). */
  readonly modules: readonly string[];
  /** Folders shipped whole (the trainable's folder, the DENO_DIR cache). */
  readonly folders: readonly string[];
  /** Single files shipped too (the deno.json). */
  readonly files?: readonly string[];
  /** The DENO_DIR `deno info` resolves with. */
  readonly denoDir: string;
  /** The deno.json, if any. */
  readonly configFile?: string;
  /** Where a driver path goes in the package (relative, `/`-separated). */
  readonly packagePath: (path: string) => string;
}

/** The import map's path inside the package. */
export const IMPORT_MAP = "tunebox_import_map.json";

/** Ray refuses working_dir packages over 500 MiB; stay well under. */
const MAX_BYTES = 256 << 20;
const SKIP = new Set(["node_modules", ".git", "tunebox_results", ".venv"]);

/**
 * Zips the files, uploads the package unless the cluster has it, and returns its URI.
 *
 * @throws {TuneError} when the package would be over 256 MiB, or Ray refuses it.
 * @example
 * ```ts ignore
 * const pkg = await shipPackage(ray, { modules: [entry, train], folders: [dir], denoDir });
 * // runtime_env: { working_dir: pkg.uri }
 * ```
 */
export async function shipPackage(
  ray: RayJobsClient,
  contents: PackageContents,
): Promise<ShippedPackage> {
  const paths = new Set<string>();
  for (const m of contents.modules) {
    for (const f of await localGraph(m, contents.denoDir, contents.configFile)) paths.add(f);
  }
  for (const d of contents.folders) for await (const f of walk(d)) paths.add(f);
  for (const f of contents.files ?? []) paths.add(f);
  const sorted = [...paths].sort();
  const tree: Zippable = {};
  let bytes = 0;
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const p of sorted) {
    let data: Uint8Array;
    try {
      data = await Deno.readFile(p);
    } catch {
      continue;
    }
    bytes += data.length;
    if (bytes > MAX_BYTES) {
      throw new TuneError(
        `The working_dir package for the Ray cluster would be over ${MAX_BYTES >> 20} MiB ` +
          `(at ${p}): without shared storage the trainable's folder and its module cache are ` +
          `shipped with every experiment; keep data out of the trainable's folder or use shared ` +
          `storage (sharedStorage: true)`,
      );
    }
    const at = contents.packagePath(p);
    tree[at] = [data, { mtime: new Date(Date.UTC(2000, 0, 1)) }];
    parts.push(enc.encode(`${at}\u0000${data.length}\u0000`), data);
  }
  // Absolute imports (`file:///driver/path/x.ts`) must land on the shipped copies: an import
  // map in the package maps every shipped file exactly (relative targets resolve against it).
  const map: Record<string, string> = {};
  // Only files that keep their driver path (under root/): the entry's path differs per
  // experiment and is never imported.
  for (const p of sorted) {
    const at = contents.packagePath(p);
    if (at.startsWith("root/")) map[`file://${p}`] = `./${at}`;
  }
  const mapText = enc.encode(JSON.stringify({ imports: map }));
  tree[IMPORT_MAP] = [mapText, { mtime: new Date(Date.UTC(2000, 0, 1)) }];
  parts.push(mapText);
  const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let off = 0;
  for (const x of parts) {
    all.set(x, off);
    off += x.length;
  }
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", all)))
    .slice(0, 16).map((b) => b.toString(16).padStart(2, "0")).join("");
  const name = `_ray_pkg_${digest}.zip`;
  let uploaded = false;
  if (!await ray.hasPackage(name)) {
    // Loaded here only: experiments that never ship a package never load the zip library.
    const { zipSync } = await import("fflate");
    const zip = zipSync(tree, { level: 6 });
    await ray.putPackage(name, zip);
    uploaded = true;
  }
  return { uri: `gcs://${name}`, files: sorted.length, bytes, uploaded };
}

/** The local files (`file:`) of a module's graph, by `deno info --json`. */
async function localGraph(
  module: string,
  denoDir: string,
  configFile?: string,
): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      configFile ? `--config=${configFile}` : "--no-config",
      module,
    ],
    env: { NO_COLOR: "1", DENO_DIR: denoDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new TuneError(
      `Cannot list the module graph of ${module}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules?: { specifier?: string; local?: string }[];
  };
  const files: string[] = [];
  for (const m of info.modules ?? []) {
    if (m.specifier?.startsWith("file:") && m.local) files.push(m.local);
  }
  return files;
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  for (const e of entries) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p; // never a symlink
  }
}
