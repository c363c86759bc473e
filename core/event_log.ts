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
  #lines: string[] = [];
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Events in the log so far (queued ones included). */
  count: number;

  private constructor(file: Deno.FsFile, count: number) {
    this.#file = file;
    this.count = count;
  }

  /** Opens (creating or appending) the log of an experiment folder. */
  static async open(dir: string): Promise<EventLog> {
    const path = join(dir, "trials.jsonl");
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const existing = parseJsonLines<TrialEvent>(text).length;
    const file = await Deno.open(path, { append: true, create: true });
    const log = new EventLog(file, existing);
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
    // At the latest at the end of this macrotask. An owner that flushes at the end of each turn
    // of its own (the runner's loop, whose in-process trials can run many turns within one
    // macrotask) leaves this timer armed: one timer per macrotask, not one per turn.
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, 0);
  }

  /** Resolves once everything queued so far is written (rejects when the write failed). */
  committed(): Promise<void> {
    if (!this.#lines.length) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Writes what is queued now, in one write. */
  flush(): void {
    if (!this.#lines.length) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    try {
      writeAllSync(this.#file, this.#enc.encode(text));
    } catch (e) {
      for (const w of waiters) w.reject(e);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /** Writes what is queued and closes the file. */
  close(): void {
    this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}
