// Tags a session's next report with the backend loadTfjs picked. Shared by load.ts (which patches
// session.report) and callback.ts (which adds the key itself when the session is frozen).
import type { JsonValue } from "../../../core/plugin.ts";
import type { TfjsBackendName, TuneSession } from "./types.ts";

const pendingBackend = new WeakMap<object, TfjsBackendName>();
const patched = new WeakSet<object>();

/** Makes the session's next report carry `backend`. */
export function tagNextReport(session: TuneSession, backend: TfjsBackendName): void {
  pendingBackend.set(session, backend);
  if (patched.has(session)) return;
  const original = session.report;
  try {
    const s = session as { report: TuneSession["report"] };
    s.report = function (this: TuneSession, metrics, options) {
      return original.call(this, withBackend(session, metrics), options);
    };
    patched.add(session);
  } catch {
    // A frozen session: tuneCallback adds the key itself.
  }
}

/** Whether `session.report` itself adds the tag. */
export function isPatched(session: TuneSession): boolean {
  return patched.has(session);
}

/** The metrics, plus the pending `backend` key once. */
export function withBackend(
  session: TuneSession,
  metrics: Record<string, JsonValue>,
): Record<string, JsonValue> {
  const backend = pendingBackend.get(session);
  if (backend === undefined) return metrics;
  pendingBackend.delete(session);
  return { ...metrics, backend };
}
