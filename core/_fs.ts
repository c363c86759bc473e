/**
 * Whether something is at a path: the one check the driver, the executors, the native installer
 * and `tools/setup.ts` share.
 *
 * @module
 */

/**
 * Whether something is at `path`. Links are followed (a link to nothing is not there) unless
 * `followLinks` is false, which asks whether the name itself is taken.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exists } from "./_fs.ts";
 * assert.equal(await exists(Deno.cwd()), true);
 * assert.equal(await exists(`${Deno.cwd()}/no such file`), false);
 * ```
 */
export async function exists(
  path: string,
  options: { readonly followLinks?: boolean } = {},
): Promise<boolean> {
  try {
    await (options.followLinks === false ? Deno.lstat(path) : Deno.stat(path));
    return true;
  } catch {
    return false;
  }
}

/**
 * {@linkcode exists} for code that must not wait: whether the name at `path` is taken (links not
 * followed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameTakenSync } from "./_fs.ts";
 * assert.equal(nameTakenSync(Deno.cwd()), true);
 * ```
 */
export function nameTakenSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
