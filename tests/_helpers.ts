// Small shared helpers for tests.
import type { ResultGrid, TrialInfo } from "../mod.ts";

export async function tempStorage(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "tunebox_test_" });
}

export function byConfig(grid: ResultGrid, key: string): Map<unknown, TrialInfo> {
  return new Map(grid.trials.map((t) => [t.config[key], t]));
}

export function fixture(name: string): URL {
  return new URL(`./fixtures/${name}`, import.meta.url);
}

/** Collects warnings printed by the runner instead of letting them reach the console. */
export async function captureWarnings<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(" "));
  try {
    return { value: await fn(), warnings };
  } finally {
    console.warn = orig;
  }
}
