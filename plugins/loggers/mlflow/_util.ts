/**
 * Small helpers of the MLflow logger.
 *
 * @module
 */

import type { JsonValue } from "../../../core/trial.ts";

/** Reads environment variables without prompting and without failing when not allowed. */
export class EnvReader {
  readonly denied: string[] = [];
  get(name: string): string | undefined {
    try {
      if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
        this.denied.push(name);
        return undefined;
      }
      const v = Deno.env.get(name);
      return v === "" ? undefined : v;
    } catch {
      this.denied.push(name);
      return undefined;
    }
  }
}

export function flatten(value: JsonValue, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, JsonValue>);
    if (!entries.length && prefix) out.set(prefix, "{}");
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}/${k}` : k, out);
  } else {
    out.set(prefix, typeof value === "string" ? value : String(JSON.stringify(value)));
  }
}

/** Truncates to `n` code points (MLflow counts Python characters); never splits a pair. */
export function truncate(s: string, n: number): string {
  if (s.length <= n) return s;
  const cps = [...s];
  return cps.length <= n ? s : cps.slice(0, n).join("");
}

const encoder = new TextEncoder();
export function utf8Length(s: string): number {
  // ASCII fast path; otherwise an upper bound is enough for batching
  return /^[\x20-\x7e]*$/.test(s) ? s.length : encoder.encode(s).length * 2;
}

export function base64(s: string): string {
  let bin = "";
  for (const b of encoder.encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function join(a: string, b: string): string {
  return a.endsWith("/") ? a + b : `${a}/${b}`;
}

export function basename(p: string): string {
  const parts = p.replace(/[\\/]+$/, "").split(/[\\/]/);
  return parts[parts.length - 1] || "checkpoint";
}

/** Relative paths of the regular files under `dir` (symlinks are not followed). */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) entries.push(e);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isFile) out.push(rel);
    else if (e.isDirectory) out.push(...await listFiles(dir, rel));
  }
  return out;
}
