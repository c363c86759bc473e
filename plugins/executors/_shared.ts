/**
 * Helpers the executors share: sandbox policy merging, bounded waits, and finding the
 * trainable's own deno.json.
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { dirname, join } from "node:path";
import type { SandboxPolicy } from "../../core/plugin.ts";

/** The union of two sandbox policies, key by key (the executor's defaults plus the experiment's). */
export function merge(a: SandboxPolicy, b: SandboxPolicy): SandboxPolicy {
  const out: Record<string, string[]> = {};
  for (const k of ["read", "write", "net", "env", "sys", "ffi", "unstable"] as const) {
    const v = [...(a[k] ?? []), ...(b[k] ?? [])];
    if (v.length) out[k] = v;
  }
  return out;
}

/** `p`'s value, or undefined when it rejects or takes longer than `ms`: a wait that never hangs. */
export async function settle<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.catch(() => undefined),
    new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

/** Whether something is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The nearest deno.json(c) above a file: URL's folder, as Deno itself finds it; undefined for other URLs. */
export async function findConfig(moduleUrl: string): Promise<string | undefined> {
  if (!moduleUrl.startsWith("file:")) return undefined;
  let dir = dirname(fromFileUrl(moduleUrl));
  for (;;) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      if (await exists(join(dir, name))) return join(dir, name);
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}
