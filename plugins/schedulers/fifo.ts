/**
 * The default scheduler: every trial runs to its end, in the order it was created.
 *
 * @module
 */

import type { Decision, Scheduler } from "../../core/plugin.ts";

/**
 * First-in first-out: never stops, pauses or reorders trials (Ray's `FIFOScheduler`).
 *
 * @returns a scheduler that always continues.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fifoScheduler } from "./fifo.ts";
 * const s = fifoScheduler();
 * assert.equal(s.name, "fifo");
 * ```
 */
export function fifoScheduler(): Scheduler {
  const cont: Decision = { kind: "continue" };
  return { name: "fifo", multiObjective: true, onReport: () => cont };
}
