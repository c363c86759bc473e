// Private to the experiment file loader (experiment_file.ts): YAML helpers — key case, paths,
// positions (file:line:col of a key), hostile input, `--set` overrides.

import { isMap, isPair, isScalar, type LineCounter, parse as parseYamlValue, visit } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { fileKey } from "./option_table.ts";

export type Path = (string | number)[];

export function camelKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = v;
  }
  return out;
}

export function snake(k: string): string {
  return fileKey(k);
}

export function getIn(o: unknown, path: Path): unknown {
  let cur = o;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Keys that would reach an object's prototype when assigned: never a valid option or parameter. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Refuses, at their line and column, what a hostile or broken file could use against the
 * driver: prototype keys (`__proto__`, `constructor`, `prototype`) and numbers too large for a
 * double (`1e999` would read as Infinity, then print as null).
 */
export function checkHostileYaml(doc: Document, lc: LineCounter, file: string): void {
  const fail = (message: string, offset: number | undefined): never => {
    const p = lc.linePos(offset ?? 0);
    throw new ConfigError(message, file, p.line, p.col);
  };
  visit(doc, {
    Pair(_, pair) {
      const k = pair.key;
      if (isScalar(k) && typeof k.value === "string" && FORBIDDEN_KEYS.has(k.value)) {
        fail(`The key "${k.value}" is not allowed (it names an object's prototype)`, k.range?.[0]);
      }
    },
    Scalar(_, node) {
      if (typeof node.value === "number" && !Number.isFinite(node.value)) {
        const src = (node as { source?: string }).source ?? String(node.value);
        if (/^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$/.test(src)) return;
        fail(`The number ${src} is too large (over 1.8e308)`, node.range?.[0]);
      }
    },
  });
}

export function applySet(y: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError(`--set expects key=value, got ${JSON.stringify(assignment)}`, "--set");
  }
  const path = assignment.slice(0, eq).split(".");
  const bad = path.find((p) => FORBIDDEN_KEYS.has(p));
  if (bad) {
    throw new ConfigError(`--set ${path.join(".")}: the key "${bad}" is not allowed`, "--set");
  }
  let value: unknown;
  try {
    value = parseYamlValue(assignment.slice(eq + 1));
  } catch (e) {
    throw new ConfigError(
      `--set ${path.join(".")}: the value is not valid YAML: ${(e as Error).message}`,
      "--set",
    );
  }
  let cur = y;
  for (const p of path.slice(0, -1)) {
    if (cur[p] === undefined || cur[p] === null) cur[p] = {};
    if (typeof cur[p] !== "object") {
      throw new ConfigError(`--set ${path.join(".")}: "${p}" is not a mapping`, "--set");
    }
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

export function position(
  doc: Document,
  lc: LineCounter,
  path: Path,
  key: boolean,
): [number, number] {
  // Walk down as far as the path exists; point at the key or the value.
  let node: unknown = doc.contents;
  let offset: number | undefined = (doc.contents as YamlNode | null)?.range?.[0];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      const last = i === path.length - 1;
      if (last && key) {
        offset = (pair.key as YamlNode).range?.[0] ?? offset;
        break;
      }
      node = pair.value;
      offset = (pair.value as YamlNode | null)?.range?.[0] ?? (pair.key as YamlNode).range?.[0] ??
        offset;
    } else if (node && typeof node === "object" && "items" in node && typeof seg === "number") {
      const item = (node as { items: unknown[] }).items[seg];
      if (!item) break;
      node = item;
      offset = (item as YamlNode).range?.[0] ?? offset;
    } else break;
  }
  if (offset === undefined) return [1, 1];
  const p = lc.linePos(offset);
  return [p.line, p.col];
}
