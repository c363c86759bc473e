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

export type { CommandOutput } from "./html.ts";
export { type Dashboard, serveDashboard, type ServeDashboardOptions } from "./_dashboard_server.ts";
export {
  type DashboardCallback,
  dashboardCallback,
  type DashboardCallbackOptions,
} from "./_dashboard_callback.ts";
export { dashboardCommand } from "./_dashboard_command.ts";
