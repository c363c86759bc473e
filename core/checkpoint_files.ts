/**
 * Checkpoint folders of a trial (`checkpoint_<iteration>/`) and copying folders without their
 * symlinks. Part of the experiment store: {@linkcode ./store.ts} re-exports everything here.
 *
 * @module
 */

import { join } from "./_path.ts";

function pad(n: number): string {
  return String(n).padStart(6, "0");
}

/**
 * The name of the checkpoint folder of an iteration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpointName } from "./store.ts";
 *
 * assert.equal(checkpointName(4), "checkpoint_000004");
 * ```
 */
export function checkpointName(iteration: number): string {
  return `checkpoint_${pad(iteration)}`;
}

/**
 * Lists committed checkpoints of a trial folder, oldest first.
 *
 * @example
 * ```ts ignore
 * import { listCheckpoints } from "./store.ts";
 * const cks = await listCheckpoints("tunebox_results/exp/a2b9e_00000");
 * ```
 */
export async function listCheckpoints(
  trialDir: string,
): Promise<{ path: string; iteration: number }[]> {
  const out: { path: string; iteration: number }[] = [];
  try {
    for await (const e of Deno.readDir(trialDir)) {
      const m = /^checkpoint_(\d+)$/.exec(e.name);
      if (m && e.isDirectory) out.push({ path: join(trialDir, e.name), iteration: Number(m[1]) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.iteration - b.iteration);
}

/**
 * Copies a folder without following or copying symlinks (a symlink placed by a trial could
 * otherwise open a way out of the next trial's sandbox).
 *
 * @returns the number of symlinks skipped.
 * @example
 * ```ts ignore
 * import { copyTree } from "./store.ts";
 * await copyTree("a/checkpoint_000003", "b/checkpoint_000003");
 * ```
 */
export async function copyTree(from: string, to: string): Promise<number> {
  let skipped = 0;
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = join(from, e.name), dst = join(to, e.name);
    if (e.isSymlink) skipped++;
    else if (e.isDirectory) skipped += await copyTree(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
  }
  return skipped;
}

/**
 * Removes every symlink under a folder.
 *
 * @returns the number removed.
 * @example
 * ```ts ignore
 * import { removeSymlinks } from "./store.ts";
 * await removeSymlinks("trial/.staging/ckpt_1");
 * ```
 */
export async function removeSymlinks(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isSymlink) {
      await Deno.remove(p);
      n++;
    } else if (e.isDirectory) n += await removeSymlinks(p);
  }
  return n;
}
