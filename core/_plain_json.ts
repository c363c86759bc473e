// Private to the plugin contracts: the JSON check of recorded specs and exploit configs.

/** Whether `v` survives a JSON round trip unchanged (finite numbers, plain objects, no cycles). */
export function isPlainJson(v: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isPlainJson(x, depth + 1));
  if (typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v as object).every((x) => isPlainJson(x, depth + 1));
}
