/**
 * The dashboard's server: serves the report's views of an experiment folder read-only and
 * pushes the data again whenever the folder changes. The entry is `./dashboard.ts`.
 *
 * @module
 */

import { join } from "node:path";
import { checkKeys, OptionError } from "../../core/options.ts";
import { TuneError } from "../../core/errors.ts";
import { ReportLoader } from "./_html_data.ts";
import { pageHtml } from "./_html_page.ts";
import { checkExperimentDir } from "./html.ts";

/** Options of {@linkcode serveDashboard}. */
export interface ServeDashboardOptions {
  /** The port; 0 picks a free one. @default 8265 */
  readonly port?: number;
  /**
   * The address to listen on. Anything but a loopback address makes the experiment readable
   * from other machines (there is no authentication).
   * @default "127.0.0.1"
   */
  readonly hostname?: string;
  /** Stops the server when aborted. */
  readonly signal?: AbortSignal;
  /** How often the folder is checked for new results, in milliseconds. @default 1000 */
  readonly pollMs?: number;
  /** Called with the URL once listening. @default prints "Dashboard: <url>" to stderr */
  readonly onListen?: (url: string) => void;
}

/** A running dashboard server. */
export interface Dashboard {
  /** The page's URL, e.g. `http://127.0.0.1:8265/`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Tells open pages that the experiment changed (the folder is also polled). */
  notify(): void;
  /** Sends open pages the final data and tells them the experiment ended. */
  end(): Promise<void>;
  /** Closes the event streams and the server. */
  close(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

/** At most one read of the folder per this many milliseconds while results arrive. */
const THROTTLE_MS = 200;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The options `serveDashboard` takes (the callback adds `keepOpen`). */
export const OPTION_KEYS: readonly string[] = ["port", "hostname", "signal", "pollMs", "onListen"];

/** Checks the options of `serveDashboard` or `dashboardCallback` (`fn`), naming a wrong key. */
export function checkServeOptions(
  o: ServeDashboardOptions,
  fn: string,
  keys: readonly string[] = OPTION_KEYS,
): void {
  if (o === null || typeof o !== "object") {
    throw new OptionError(fn, "", `${fn}: options must be an object, got ${JSON.stringify(o)}`);
  }
  checkKeys(fn, { ...o }, keys);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)) {
    throw new RangeError(
      `${fn}: "port" must be an integer from 0 to 65535 (0: any free port), got ${
        JSON.stringify(o.port)
      }`,
    );
  }
  if (o.hostname !== undefined && (typeof o.hostname !== "string" || !o.hostname)) {
    throw new TypeError(
      `${fn}: "hostname" must be a non-empty string such as "127.0.0.1", got ${
        JSON.stringify(o.hostname)
      }`,
    );
  }
  if (
    o.pollMs !== undefined &&
    (typeof o.pollMs !== "number" || !Number.isFinite(o.pollMs) || o.pollMs <= 0)
  ) {
    throw new RangeError(
      `${fn}: "pollMs" must be a positive number of milliseconds, got ${JSON.stringify(o.pollMs)}`,
    );
  }
}

const TYPES: Record<string, string> = {
  json: "application/json",
  jsonl: "text/plain",
  csv: "text/plain",
  log: "text/plain",
  txt: "text/plain",
  html: "text/plain",
};

function text(status: number, body: string, type = "text/plain"): Response {
  return new Response(body, {
    status,
    headers: { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" },
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Serves a file or a listing under `<dir>/<id>/...`, never following a symlink. */
async function trialFile(dir: string, parts: string[]): Promise<Response> {
  // Only inside trial folders (`<id>_00003/...`), never through "..", hidden names, or a
  // separator smuggled in as %2F.
  if (
    !parts.length || !/^[\w.-]+_\d{5,}$/.test(parts[0]) ||
    parts.some((p) => !p || p.startsWith(".") || /[\\/\0]/.test(p))
  ) {
    return text(404, "Not found");
  }
  let path = dir;
  let info: Deno.FileInfo | undefined;
  for (const p of parts) {
    path = join(path, p);
    try {
      info = await Deno.lstat(path);
    } catch {
      return text(404, "Not found");
    }
    if (info.isSymlink) return text(403, "Symbolic links are not served");
  }
  if (!info) return text(404, "Not found");
  if (info.isDirectory) {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) {
      if (!e.isSymlink && !e.name.startsWith(".")) names.push(e.name + (e.isDirectory ? "/" : ""));
    }
    names.sort();
    const title = parts.join("/");
    return text(
      200,
      `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
        `<h1>${escapeHtml(title)}/</h1><ul>${
          names.map((n) => `<li><a href="${encodeURI(n)}">${escapeHtml(n)}</a></li>`).join("")
        }</ul>`,
      "text/html",
    );
  }
  const ext = parts.at(-1)!.split(".").at(-1) ?? "";
  const file = await Deno.open(path, { read: true });
  return new Response(file.readable, {
    headers: {
      "content-type": `${TYPES[ext] ?? "application/octet-stream"}; charset=utf-8`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}

/**
 * Serves the live dashboard of an experiment folder until `signal` aborts or `close()` is called.
 *
 * @param dir the experiment folder.
 * @param options port, address, stop signal, poll interval.
 * @returns the running server.
 * @throws {TuneError} when `dir` is not an experiment folder.
 * @throws {RangeError} when `port` or `pollMs` is out of range.
 * @throws {TypeError} when `hostname` is not a non-empty string.
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { serveDashboard } from "./dashboard.ts";
 * const dashboard = await serveDashboard("tunebox_results/my-exp", { port: 0 });
 * assert.match(dashboard.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
 * await dashboard.close();
 * ```
 */
export async function serveDashboard(
  dir: string,
  options: ServeDashboardOptions = {},
): Promise<Dashboard> {
  checkServeOptions(options, "serveDashboard");
  await checkExperimentDir(dir);
  const hostname = options.hostname ?? "127.0.0.1";
  const pollMs = options.pollMs ?? 1000;
  const loader = new ReportLoader(dir, {
    trialLink: (id) => `trials/${encodeURIComponent(id)}/`,
    importanceMaxAgeMs: 5000,
  });
  const page = pageHtml(null, {
    live: { eventsUrl: "api/events" },
    title: "Tunebox dashboard",
  });
  const enc = new TextEncoder();
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let ended = false, closed = false;
  // Pages get the data itself in the event stream (not a "go fetch" signal), so that the last
  // update still arrives when the server closes right after the experiment ends.
  const snapshot = async (): Promise<string> => {
    try {
      return JSON.stringify(await loader.load());
    } catch (e) {
      return JSON.stringify({ error: (e as Error).message });
    }
  };
  const message = (event: "data" | "end", json: string) =>
    enc.encode(`event: ${event}\ndata: ${json}\n\n`);
  const send = (chunk: Uint8Array, to: Iterable<ReadableStreamDefaultController<Uint8Array>>) => {
    for (const c of to) {
      try {
        c.enqueue(chunk);
      } catch {
        streams.delete(c);
      }
    }
  };
  // Updates are coalesced: at most one read of the folder per THROTTLE_MS, whatever the rate of
  // reports; one read serves every open page.
  let chain: Promise<void> = Promise.resolve();
  let scheduled: ReturnType<typeof setTimeout> | undefined;
  let lastPush = -Infinity, lastCost = 0;
  const pushNow = (event: "data" | "end") => {
    chain = chain.then(async () => {
      lastPush = performance.now();
      if (!streams.size) return;
      send(message(event, await snapshot()), streams);
      lastCost = performance.now() - lastPush;
    });
    return chain;
  };
  const schedule = () => {
    if (closed || ended || scheduled !== undefined) return;
    // A big experiment takes a while to read: never spend more than a third of the time on it.
    const wait = Math.max(0, lastPush + Math.max(THROTTLE_MS, 3 * lastCost) - performance.now());
    scheduled = setTimeout(() => {
      scheduled = undefined;
      if (!closed && !ended) void pushNow("data");
    }, wait);
  };
  let port = 0;
  const loopback = LOOPBACK.has(hostname);
  const allowedHosts = () =>
    new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${hostname}:${port}`]);

  const handler = async (req: Request): Promise<Response> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("The dashboard is read-only", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    // A page elsewhere could point a hostname at 127.0.0.1 (DNS rebinding): only answer requests
    // addressed to the loopback names.
    if (loopback && !allowedHosts().has(req.headers.get("host") ?? "")) {
      return text(403, "Unexpected Host header");
    }
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/" || path === "/index.html") return text(200, page, "text/html");
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    if (path === "/api/data") {
      try {
        return text(200, JSON.stringify(await loader.load()), "application/json");
      } catch (e) {
        return text(e instanceof TuneError ? 503 : 500, (e as Error).message);
      }
    }
    if (path === "/api/events") {
      let ctrl: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          ctrl = c;
          c.enqueue(enc.encode("retry: 1000\n\n"));
          chain = chain.then(async () => {
            const json = await snapshot();
            send(message(ended ? "end" : "data", json), [c]);
            if (!ended) streams.add(c);
            else {
              try {
                c.close();
              } catch { /* the page left */ }
            }
          });
        },
        cancel() {
          streams.delete(ctrl);
        },
      });
      return new Response(body, {
        headers: {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
        },
      });
    }
    if (path.startsWith("/trials/")) {
      let parts: string[];
      try {
        parts = path.slice("/trials/".length).split("/").map(decodeURIComponent);
      } catch {
        return text(400, "Bad path");
      }
      if (parts.at(-1) === "") parts.pop();
      return await trialFile(dir, parts);
    }
    return text(404, "Not found");
  };

  let resolveListen: (p: number) => void;
  const listening = new Promise<number>((r) => (resolveListen = r));
  const server = Deno.serve(
    {
      port: options.port ?? 8265,
      hostname,
      onListen: ({ port }) => resolveListen(port),
    },
    handler,
  );
  port = await listening;
  const shown = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  const url = `http://${shown}:${port}/`;

  // Poll the folder: another process (the CLI case) or a resumed run writes it.
  let last = await loader.signature();
  let polling = false;
  const timer = setInterval(async () => {
    if (polling || closed) return;
    polling = true;
    try {
      const sig = await loader.signature();
      if (sig !== last) {
        last = sig;
        schedule();
      }
    } catch {
      /* the folder is being written; try again */
    } finally {
      polling = false;
    }
  }, pollMs);
  const keepAlive = setInterval(() => {
    for (const c of streams) {
      try {
        c.enqueue(enc.encode(": keep-alive\n\n"));
      } catch {
        streams.delete(c);
      }
    }
  }, 15_000);

  const close = async () => {
    if (closed) return await server.finished;
    closed = true;
    clearInterval(timer);
    clearInterval(keepAlive);
    clearTimeout(scheduled);
    await chain;
    for (const c of streams) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    streams.clear();
    await server.shutdown();
  };
  if (options.signal) {
    if (options.signal.aborted) await close();
    else options.signal.addEventListener("abort", () => void close(), { once: true });
  }
  (options.onListen ?? ((u: string) => console.error(`Dashboard: ${u}`)))(url);
  if (!loopback) {
    console.error(
      `Dashboard: listening on ${hostname}, so other machines can read this experiment; it has no authentication`,
    );
  }
  return {
    url,
    port,
    notify: schedule,
    async end() {
      if (closed || ended) return;
      ended = true;
      clearTimeout(scheduled);
      scheduled = undefined;
      await pushNow("end");
      for (const c of streams) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      streams.clear();
    },
    close,
    finished: server.finished,
  };
}
