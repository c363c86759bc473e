/**
 * The experiment's journal, `trials.jsonl`, written with group commit. Part of the experiment
 * store: {@linkcode ./store.ts} re-exports everything here.
 *
 * @module
 */

import { join } from "./_path.ts";
import { toJson } from "./protocol.ts";
import { parseJsonLines, scanJsonLines } from "./json_lines.ts";
import type { TrialEvent } from "./store.ts";
import { writeAllSync } from "./_write_all.ts";

/** What waits for a write of the journal (see {@linkcode EventLog.onCommitted}). */
export interface CommitWaiter {
  /** Everything queued before it is on disk. */
  committed(): void;
  /** The write failed. */
  failed(error: unknown): void;
}

/**
 * The experiment's journal, `trials.jsonl`: lifecycle events and every report, appended with
 * group commit. {@linkcode EventLog.append} only queues a line; everything queued in one turn of
 * the event loop goes to disk in one write, and {@linkcode EventLog.committed} resolves once it
 * is there. The runner acknowledges a report only after that, so a driver killed with `kill -9`
 * loses nothing it acknowledged, while per-trial files (`result.jsonl`, `progress.csv`) can be
 * written later ({@linkcode materializeTrial}) and rebuilt from the journal.
 */
export class EventLog {
  #file: Deno.FsFile;
  #enc = new TextEncoder();
  #buf = new Uint8Array(4096);
  #lines: string[] = [];
  #waiters: CommitWaiter[] = [];
  /** An empty array for #waiters after a write (two arrays take turns: none made per write). */
  #spare: CommitWaiter[] | undefined = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushTimer: boolean;
  /** Events in the log so far (queued ones included). */
  count: number;

  private constructor(file: Deno.FsFile, count: number, flushTimer: boolean) {
    this.#file = file;
    this.count = count;
    this.#flushTimer = flushTimer;
  }

  /**
   * Opens (creating or appending) the log of an experiment folder.
   *
   * @param dir the experiment folder.
   * @param options `flushTimer: false` for an owner that calls {@linkcode EventLog.flush} itself
   *   at the end of each of its turns and before anything that may wait (the runner): no timer
   *   is armed then. @default a timer writes what is queued at the end of the macrotask
   */
  static async open(
    dir: string,
    options: { readonly flushTimer?: boolean } = {},
  ): Promise<EventLog> {
    const path = join(dir, "trials.jsonl");
    // Synchronous calls: the file is opened once (created if missing) and read only when it has
    // lines already (a resume); a fresh experiment makes no failed read.
    const file = Deno.openSync(path, { read: true, append: true, create: true });
    let text = "";
    let existing = 0;
    try {
      if (file.statSync().size > 0) text = Deno.readTextFileSync(path);
      if (text) existing = parseJsonLines<TrialEvent>(text).length;
    } catch (e) {
      file.close();
      throw e;
    }
    const log = new EventLog(file, existing, options.flushTimer ?? true);
    if (text && !text.endsWith("\n")) {
      // The last write of a killed driver: end a whole last line, cut off a torn one, so that
      // the next event starts a line of its own.
      const start = text.lastIndexOf("\n") + 1;
      if (scanJsonLines(text.slice(start)).torn) {
        await file.truncate(log.#enc.encode(text.slice(0, start)).length);
      } else writeAllSync(file, log.#enc.encode("\n"));
    }
    return log;
  }

  /** Queues an event; it is written with the others of this event-loop turn. */
  append(event: Omit<TrialEvent, "t">): void {
    this.count++;
    this.#lines.push(toJson({ t: Date.now() / 1000, ...event }));
    // At the latest at the end of this macrotask (one timer per macrotask, not one per event),
    // unless the owner flushes itself.
    if (!this.#flushTimer) return;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, 0);
  }

  /**
   * Calls `waiter.committed()` once everything queued so far is written (at once when nothing
   * is queued), or `waiter.failed(error)` when that write failed: {@linkcode EventLog.committed}
   * without a promise or a closure.
   */
  onCommitted(waiter: CommitWaiter): void {
    if (!this.#lines.length) waiter.committed();
    else this.#waiters.push(waiter);
  }

  /** Resolves once everything queued so far is written (rejects when the write failed). */
  committed(): Promise<void> {
    if (!this.#lines.length) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.#waiters.push({ committed: resolve, failed: reject })
    );
  }

  /** Writes what is queued now, in one write. */
  flush(): void {
    const lines = this.#lines;
    if (!lines.length) return;
    // The lines' text without the last newline, which goes into the buffer after it (appending
    // it to the string would copy the whole text once more).
    const text = lines.join("\n");
    lines.length = 0;
    const waiters = this.#waiters;
    this.#waiters = this.#spare ?? [];
    this.#spare = undefined; // until the calls below are done (one of them may flush again)
    let error: unknown;
    let failed = false;
    try {
      writeAllSync(this.#file, this.#encode(text));
    } catch (e) {
      error = e;
      failed = true;
    }
    // An indexed loop: a for-of makes an iterator per write until V8 optimizes the loop.
    for (let i = 0; i < waiters.length; i++) {
      if (failed) waiters[i].failed(error);
      else waiters[i].committed();
    }
    waiters.length = 0;
    this.#spare = waiters;
  }

  /**
   * The UTF-8 bytes of `text` in a buffer kept between writes (a write per turn would otherwise
   * allocate an ArrayBuffer per turn); a view of it, valid until the next call.
   */
  #encode(text: string): Uint8Array {
    // UTF-8 takes at most 3 bytes per UTF-16 unit, and one more for the newline.
    if (this.#buf.length < text.length * 3 + 1) {
      this.#buf = new Uint8Array(Math.max(text.length * 3 + 1, this.#buf.length * 2));
    }
    const { written } = this.#enc.encodeInto(text, this.#buf);
    this.#buf[written] = 10; // "\n"
    return this.#buf.subarray(0, written + 1);
  }

  /** Writes what is queued and closes the file. */
  close(): void {
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}
