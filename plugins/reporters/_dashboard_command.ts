/**
 * `tunebox dashboard DIR`: the dashboard's command line. The entry is `./dashboard.ts`.
 *
 * @module
 */

import { parseArgs } from "#flags";
import { resolve } from "node:path";
import { TuneError } from "../../core/errors.ts";
import type { CommandOutput } from "./html.ts";
import { serveDashboard } from "./_dashboard_server.ts";

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
