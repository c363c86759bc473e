/**
 * The live dashboard: the views of the HTML report, served read-only on 127.0.0.1 and redrawn
 * as results arrive (the page listens to server-sent events and refetches the data). Run it on
 * any experiment folder with `tunebox dashboard DIR`, or pass {@linkcode dashboardCallback} to a
 * `Tuner` to watch an experiment while it runs.
 *
 * Endpoints (GET only): `/` the page, `/api/data` the report data as JSON, `/api/events` a
 * stream of server-sent `data` events carrying the same JSON at every change (at most one per
 * 200 ms) and a last `end` event, `/trials/<id>/` a trial folder's files (read-only; symlinks are
 * not followed).
 *
 * @example
 * ```ts ignore
 * import { Tuner, uniform } from "../../mod.ts";
 * import { dashboardCallback } from "./dashboard.ts";
 * await new Tuner({
 *   trainable: async (config, session) => {
 *     for (let i = 0; i < 100; i++) await session.report({ loss: (config.x - 1) ** 2 / (i + 1) });
 *   },
 *   space: { x: uniform(-2, 3) },
 *   metric: "loss",
 *   mode: "min",
 *   numSamples: 20,
 *   callbacks: [dashboardCallback({ port: 8265 })], // prints "Dashboard: http://127.0.0.1:8265/"
 * }).fit();
 * ```
 *
 * @module
 */

import { parseArgs } from "#flags";
import { join, resolve } from "node:path";
import { type Callback, type ExperimentStart, registerPlugin } from "../../core/plugin.ts";
import { checkKeys, OptionError } from "../../core/options.ts";
import { TuneError } from "../../core/errors.ts";
import { ReportLoader } from "./_html_data.ts";
import { pageHtml } from "./_html_page.ts";
import { checkExperimentDir, type CommandOutput } from "./html.ts";

export type { CommandOutput };

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

const OPTION_KEYS = ["port", "hostname", "signal", "pollMs", "onListen"];

function checkServeOptions(
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
 * import { serveDashboard } from "./dashboard.ts";
 * const dashboard = await serveDashboard("tunebox_results/my-exp", { port: 0 });
 * console.log(dashboard.url);
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

/** Options of {@linkcode dashboardCallback}. */
export interface DashboardCallbackOptions extends ServeDashboardOptions {
  /**
   * Keep serving after the experiment ends (until `signal` aborts); otherwise the server closes
   * when the experiment ends, after telling open pages so.
   * @default false
   */
  readonly keepOpen?: boolean;
}

/** The callback of {@linkcode dashboardCallback}, with the server once it runs. */
export interface DashboardCallback extends Callback {
  /** The dashboard's URL once the experiment has started. */
  readonly url: string | undefined;
  /** The server once the experiment has started. */
  readonly dashboard: Dashboard | undefined;
}

/**
 * A callback that serves the live dashboard of the experiment while it runs (the views of
 * `tunebox report`, redrawn at every report), on 127.0.0.1 unless told otherwise.
 *
 * @param options port (default 8265, 0 for any free port), address, `keepOpen`.
 * @returns the callback; its `url` is set once the experiment starts.
 * @throws {RangeError} when `port` or `pollMs` is out of range.
 * @throws {TypeError} when `hostname` is not a non-empty string.
 * @example
 * ```ts
 * import { dashboardCallback } from "./dashboard.ts";
 * const dashboard = dashboardCallback({ port: 0 });
 * console.log(dashboard.name); // "dashboard"
 * ```
 */
export function dashboardCallback(options: DashboardCallbackOptions = {}): DashboardCallback {
  checkServeOptions(options, "dashboardCallback", [...OPTION_KEYS, "keepOpen"]);
  let server: Dashboard | undefined;
  const notify = () => server?.notify();
  return {
    name: "dashboard",
    get url() {
      return server?.url;
    },
    get dashboard() {
      return server;
    },
    async onExperimentStart(e: ExperimentStart): Promise<void> {
      if (server) {
        notify();
        return;
      }
      try {
        server = await serveDashboard(e.dir, options);
      } catch (err) {
        // The default port is taken (another dashboard): any free port will do.
        if (!(err instanceof Deno.errors.AddrInUse) || options.port !== undefined) throw err;
        server = await serveDashboard(e.dir, { ...options, port: 0 });
      }
    },
    onTrialStart: notify,
    onReport: notify,
    onTrialEnd: notify,
    async onExperimentEnd(): Promise<void> {
      if (!server) return;
      await server.end();
      if (!options.keepOpen) {
        const s = server;
        server = undefined;
        await s.close();
      }
    },
  };
}

const DASHBOARD_USAGE = `Usage: tunebox dashboard DIR [--port P] [--hostname H]

Serves the live report of the experiment folder DIR on http://127.0.0.1:P/ (default port 8265)
until interrupted (Ctrl-C). Read-only; bound to the loopback address unless --hostname says
otherwise.`;

/**
 * `tunebox dashboard DIR [--port P] [--hostname H]`: serves the dashboard until Ctrl-C (or
 * `signal`).
 *
 * @param args the arguments after `dashboard`.
 * @param options where to print, and a signal that stops the server (tests).
 * @returns the exit code: 0 stopped, 1 failed (not an experiment, port in use), 2 bad usage.
 * @example
 * ```ts ignore
 * import { dashboardCommand } from "./dashboard.ts";
 * Deno.exit(await dashboardCommand(["tunebox_results/my-exp", "--port", "8265"]));
 * ```
 */
export async function dashboardCommand(
  args: readonly string[],
  options: CommandOutput & { readonly signal?: AbortSignal } = {},
): Promise<number> {
  const out = options.stdout ?? ((s: string) => console.log(s));
  const err = options.stderr ?? ((s: string) => console.error(s));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        port: { type: "string", short: "p" },
        hostname: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    err(`tunebox dashboard: ${(e as Error).message}\n\n${DASHBOARD_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    out(DASHBOARD_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    err(
      `tunebox dashboard: expected one experiment folder, got ${parsed.positionals.length}\n\n${DASHBOARD_USAGE}`,
    );
    return 2;
  }
  const portText = parsed.values.port;
  const port = portText === undefined ? 8265 : Number(portText);
  if (!/^\d+$/.test(portText ?? "0") || port > 65535) {
    err(`tunebox dashboard: --port must be an integer from 0 to 65535, got "${portText}"`);
    return 2;
  }
  const dir = parsed.positionals[0];
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = [];
  if (!options.signal) {
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(s, onSignal);
        signals.push(s);
      } catch { /* not supported here */ }
    }
  }
  options.signal?.addEventListener("abort", onSignal, { once: true });
  try {
    const dashboard = await serveDashboard(dir, {
      port,
      ...(parsed.values.hostname ? { hostname: parsed.values.hostname } : {}),
      signal: stop.signal,
      onListen: (url) => out(`Dashboard of ${resolve(dir)}: ${url} (Ctrl-C to stop)`),
    });
    await dashboard.finished;
    return 0;
  } catch (e) {
    if (e instanceof TuneError) {
      err(`tunebox dashboard: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.AddrInUse) {
      err(`tunebox dashboard: port ${port} is in use; pass another with --port (0: any free port)`);
      return 1;
    }
    throw e;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

// YAML: `loggers: [{ name: dashboard, port: 8265 }]`.
registerPlugin("callback", "dashboard", (opts) => {
  const { name, ...rest } = opts;
  return dashboardCallback((name === "dashboard" ? rest : opts) as DashboardCallbackOptions);
});
