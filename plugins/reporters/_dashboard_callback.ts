/**
 * The dashboard as a callback: serves the live dashboard of the experiment a `Tuner` runs. The
 * entry is `./dashboard.ts`.
 *
 * @module
 */

import type { Callback, ExperimentStart } from "../../core/plugin.ts";
import {
  checkServeOptions,
  type Dashboard,
  OPTION_KEYS,
  serveDashboard,
  type ServeDashboardOptions,
} from "./_dashboard_server.ts";

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
 * import assert from "node:assert/strict";
 * import { dashboardCallback } from "./dashboard.ts";
 * const dashboard = dashboardCallback({ port: 0 });
 * assert.equal(dashboard.name, "dashboard");
 * assert.equal(dashboard.url, undefined); // set once the experiment starts
 * assert.throws(() => dashboardCallback({ port: 70000 }), RangeError);
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
