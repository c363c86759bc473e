/**
 * POSIX path helpers with `node:path`'s and `node:url`'s semantics, for the modules a trial's
 * import of `mod.ts` loads. Importing any `node:` module starts Deno's Node compatibility layer,
 * which costs 40–70 ms per process (measured on Deno 2.9.6): every sandboxed trial whose
 * trainable imports the package would pay it before its first report.
 *
 * @module
 */

/** The path separator. */
export const sep = "/";

/** Collapses `.`, `..` and repeated slashes (`node:path`'s `normalize`, POSIX). */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const trailing = path.endsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(part);
  }
  let s = out.join("/");
  if (s === "" && !absolute) s = ".";
  if (trailing && s !== "") s += "/";
  return absolute ? "/" + s : s;
}

/** Joins segments and normalizes the result. */
export function join(...parts: string[]): string {
  const s = parts.filter((p) => p !== "").join("/");
  return s === "" ? "." : normalize(s);
}

/** True for an absolute path. */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** Resolves segments right to left into an absolute path (the working folder last). */
export function resolve(...parts: string[]): string {
  let s = "";
  for (let i = parts.length - 1; i >= -1 && !s.startsWith("/"); i--) {
    const p = i >= 0 ? parts[i] : Deno.cwd();
    if (p === "") continue;
    s = s ? `${p}/${s}` : p;
  }
  const n = normalize(s);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** The folder part of a path (`node:path`'s algorithm: repeated slashes before the last part stay). */
export function dirname(path: string): string {
  if (path === "") return ".";
  const hasRoot = path[0] === "/";
  let end = -1;
  let matchedSlash = true;
  for (let i = path.length - 1; i >= 1; --i) {
    if (path[i] === "/") {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else matchedSlash = false;
  }
  if (end === -1) return hasRoot ? "/" : ".";
  if (hasRoot && end === 1) return "//";
  return path.slice(0, end);
}

/** The last part of a path, without `ext` when it ends with it. */
export function basename(path: string, ext?: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  const base = path.slice(path.lastIndexOf("/", end - 1) + 1, end);
  return ext && base.endsWith(ext) && base !== ext ? base.slice(0, -ext.length) : base;
}

/** The path from `from` to `to`. */
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array(a.length - i).fill(".."), ...b.slice(i)].join("/");
}

/** The path of a `file:` URL (percent-decoded), as `node:url`'s `fileURLToPath`. */
export function fileURLToPath(url: string | URL): string {
  const u = typeof url === "string" ? new URL(url) : url;
  if (u.protocol !== "file:") throw new TypeError(`The URL must be of scheme file: "${u.href}"`);
  if (u.hostname !== "" && u.hostname !== "localhost") {
    throw new TypeError(`File URL host must be "localhost" or empty on linux: "${u.href}"`);
  }
  if (/%2f/i.test(u.pathname)) {
    throw new TypeError(`File URL path must not include encoded / characters: "${u.href}"`);
  }
  return decodeURIComponent(u.pathname);
}
