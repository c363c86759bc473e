// Entry for native_test.ts: freezes node:util without `isNullOrUndefined` (as Deno's node:util is,
// before loadTfjs's shim), then runs the probe. tfjs-node then loads but its first op throws.
import util from "node:util";

const u = util as unknown as Record<string, unknown>;
delete u.isNullOrUndefined;
Object.freeze(util);
await import("../../plugins/backends/tfjs/_probe.ts");
