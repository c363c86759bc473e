// Private to the Ray executor (ray.ts): a worker's connection held open while its group forms,
// and the trial's log files: read back for an error message, or, without shared storage, written
// on the driver from what Ray or the launcher sends.

import { join } from "../../core/_path.ts";
import { DEFAULT_MAX_LOG_BYTES, fileTail, settle } from "./_shared.ts";
import type { RayJobsClient, RayLogTail } from "./_ray_client.ts";

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

/** The last 4 KiB of a trial's `stderr<suffix>.log` (shared storage), for an error message. */
export function stderrOf(dir: string, suffix = ""): Promise<string> {
  return fileTail(join(dir, `stderr${suffix}.log`));
}

/**
 * A trial job's log without shared storage, followed live (Ray's `/logs/tail` WebSocket) into
 * the trial's `stdout<suffix>.log` on the driver, so the dashboard and `tail -f` show it as it
 * comes. Once the job ended, {@linkcode FollowedJobLog.finish} adds what the stream missed and
 * says the log's last 4 KiB.
 */
export class FollowedJobLog {
  readonly #ray: RayJobsClient;
  readonly #jobId: string;
  /** The driver's copy of the log. */
  readonly #file: string;
  /** The stream, once following. */
  #follower: RayLogTail | undefined;
  /** Characters streamed so far: a log fetched after a broken stream skips them. */
  #streamedChars = 0;
  /** The last 4 KiB streamed. */
  #recent = "";
  /** The appends to the file, one after another. */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(ray: RayJobsClient, jobId: string, file: string) {
    this.#ray = ray;
    this.#jobId = jobId;
    this.#file = file;
  }

  /** Starts following the job's log (once; the job must be submitted). */
  follow(): void {
    if (this.#follower) return;
    this.#follower = this.#ray.tail(this.#jobId, (text) => {
      this.#streamedChars += text.length;
      this.#recent = (this.#recent + text).slice(-4096);
      this.#writing = this.#writing.then(() =>
        Deno.writeTextFile(this.#file, text, { append: true })
      ).catch(() => {});
    });
  }

  /**
   * The log's last 4 KiB once the job is over: all that was streamed, or (not followed, or the
   * stream broke) the log fetched from Ray, whose unstreamed rest is appended when `ended`.
   */
  async finish(ended: boolean): Promise<string> {
    const follower = this.#follower;
    if (follower) {
      // Ray closes the stream once the job has ended and all of its log was sent.
      const whole = await settle(follower.ended, 5000);
      follower.close();
      await this.#writing;
      if (whole) return this.#recent;
    }
    // Not followed, or the stream broke: fetch the log, and keep what was not streamed yet.
    const logs = await this.#ray.logs(this.#jobId).catch(() => "");
    const rest = logs.slice(this.#streamedChars);
    if (rest && ended) {
      await Deno.writeTextFile(this.#file, rest, { append: true }).catch(() => {});
    }
    return logs.slice(-4096);
  }
}

/**
 * A pooled trial's output as its launcher forwards it (without shared storage), appended to the
 * trial's `stdout.log` on the driver up to {@linkcode DEFAULT_MAX_LOG_BYTES} (then a note says
 * the rest was dropped); its last 4 KiB kept for an error message.
 */
export class ForwardedLog {
  /** The driver's copy of the output. */
  readonly #file: string;
  /** The last 4 KiB received. */
  #recent = "";
  /** Characters written so far. */
  #written = 0;
  /** The appends to the file, one after another. */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  /** Appends a piece of the output. */
  write(text: string): void {
    this.#recent = (this.#recent + text).slice(-4096);
    if (this.#written >= DEFAULT_MAX_LOG_BYTES) return;
    const part = text.slice(0, DEFAULT_MAX_LOG_BYTES - this.#written);
    this.#written += part.length;
    const capped = this.#written >= DEFAULT_MAX_LOG_BYTES
      ? `\n[tunebox: this log reached its cap of ${DEFAULT_MAX_LOG_BYTES} bytes; later output ` +
        `was dropped]\n`
      : "";
    this.#writing = this.#writing.then(() =>
      Deno.writeTextFile(this.#file, part + capped, { append: true })
    ).catch(() => {});
  }

  /** Waits for what was written so far to be in the file; then the last 4 KiB. */
  async flushed(): Promise<string> {
    await this.#writing;
    return this.#recent;
  }
}
