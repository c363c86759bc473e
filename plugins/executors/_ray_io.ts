// Private to the Ray executor (ray.ts): a worker's connection held open while its group forms,
// and the trial's log files.

import { join } from "../../core/_path.ts";
import { fileTail } from "./_shared.ts";

/**
 * Reads a connection's heartbeats while nothing else reads it (a worker waiting for the rest of
 * its group), so that keep-alive sees them; returns the connection to hand on, which yields first
 * whatever else came meanwhile (or a read still in flight).
 */
export function holdOpen<C extends { readonly messages: AsyncIterator<unknown> }>(
  conn: C,
): () => C {
  let pending: Promise<IteratorResult<unknown>> | undefined;
  let released = false;
  const early: IteratorResult<unknown>[] = [];
  (async () => {
    for (;;) {
      pending = conn.messages.next();
      const r = await pending.catch((): IteratorResult<unknown> => ({
        done: true,
        value: undefined,
      }));
      if (released) return; // the read was handed on
      pending = undefined;
      if (r.done || (r.value as { type?: unknown } | null)?.type !== "ping") {
        early.push(r);
        return;
      }
    }
  })();
  return () => {
    released = true;
    let handover = pending;
    const messages: AsyncIterator<unknown> = {
      next() {
        if (early.length) return Promise.resolve(early.shift()!);
        if (handover) {
          const h = handover;
          handover = undefined;
          return h;
        }
        return conn.messages.next();
      },
      return(v?: unknown) {
        return conn.messages.return?.(v) ?? Promise.resolve({ done: true, value: v });
      },
    };
    return { ...conn, messages };
  };
}

/** The suffix of a worker's log files: none for rank 0, `_rank<r>` for the others (as locally). */
export function logSuffix(worker: { readonly rank: number } | undefined): string {
  return worker && worker.rank > 0 ? `_rank${worker.rank}` : "";
}

export function stderrOf(dir: string, suffix = ""): Promise<string> {
  return fileTail(join(dir, `stderr${suffix}.log`));
}
