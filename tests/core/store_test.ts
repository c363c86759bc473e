// The experiment folder's one reader: trials.jsonl written by EventLog, read back by
// readTrialEvents / scanJsonLines and folded by foldTrialEvents (the fold Tuner.restore,
// ResultGrid.load and the HTML report all use), including torn and unreadable lines.

import assert from "#assert";
import { join } from "node:path";
import {
  EventLog,
  foldTrialEvents,
  parseJsonLines,
  readTrialEvents,
  scanJsonLines,
  type TrialEvent,
} from "../../core/store.ts";

type Appended = Omit<TrialEvent, "t">;

/** One event of every kind, for two trials: a's life with an exploit, b's retried failure. */
const EVENTS: readonly Appended[] = [
  { trial: "e_00000", event: "created", config: { lr: 0.1 } },
  { trial: "e_00001", event: "created", config: { lr: 0.01 } },
  { trial: "e_00000", event: "started" },
  { trial: "e_00001", event: "started" },
  { trial: "e_00000", event: "paused" },
  {
    trial: "e_00000",
    event: "config",
    config: { lr: 0.02 },
    reason: "exploit e_00001",
    donor: "e_00001",
  },
  { trial: "e_00001", event: "retry", reason: "Error: boom" },
  { trial: "e_00001", event: "started" },
  { trial: "e_00001", event: "error", outcome: "error", reason: "Error: boom again" },
  { trial: "e_00000", event: "started" },
  { trial: "e_00000", event: "terminated", outcome: "stopped", reason: "asha: below the cut" },
];

async function writeLog(dir: string, events: readonly Appended[]): Promise<void> {
  const log = await EventLog.open(dir);
  try {
    for (const e of events) log.append(e);
  } finally {
    log.close();
  }
}

Deno.test("EventLog and readTrialEvents round-trip every event kind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeLog(dir, EVENTS);
    const read = await readTrialEvents(dir);
    assert.equal(read.length, EVENTS.length);
    for (const [i, e] of read.entries()) {
      assert.equal(typeof e.t, "number");
      const { t: _, ...rest } = e;
      assert.deepEqual(rest, EVENTS[i]);
    }
    const log = await EventLog.open(dir);
    assert.equal(log.count, EVENTS.length);
    log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("foldTrialEvents gives status, config, reason, failures and config changes with their donor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeLog(dir, EVENTS);
    const [a, b] = foldTrialEvents(await readTrialEvents(dir));
    assert.equal(a.id, "e_00000");
    assert.equal(a.status, "terminated");
    assert.equal(a.reason, "asha: below the cut");
    assert.deepEqual(a.config, { lr: 0.02 });
    assert.equal(a.failures, 0);
    assert.deepEqual(a.changes.map((c) => [c.config, c.donor]), [
      [{ lr: 0.1 }, undefined],
      [{ lr: 0.02 }, "e_00001"],
    ]);
    assert.equal(b.id, "e_00001");
    assert.equal(b.status, "error");
    assert.equal(b.reason, "Error: boom again");
    assert.equal(b.failures, 1);
    assert.equal(b.changes.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("foldTrialEvents reads the donor of logs written before it was a field", () => {
  const [a] = foldTrialEvents([
    { t: 1, trial: "x_00000", event: "created", config: { a: 1 } },
    { t: 2, trial: "x_00000", event: "config", config: { a: 2 }, reason: "exploit x_00003" },
    { t: 3, trial: "x_00000", event: "config", config: { a: 3 } },
  ]);
  assert.deepEqual(a.changes.map((c) => c.donor), [undefined, "x_00003", undefined]);
  assert.deepEqual(a.config, { a: 3 });
});

Deno.test("foldTrialEvents skips lines that are not events and events of unknown trials", () => {
  const trials = foldTrialEvents([
    null,
    42,
    { event: "started" },
    { t: 1, trial: "y_00009", event: "started" },
    { t: 1, trial: "y_00000", event: "created" },
  ] as unknown as TrialEvent[]);
  assert.deepEqual(trials.map((t) => [t.id, t.status, t.config]), [["y_00000", "pending", {}]]);
});

Deno.test("a torn last line of trials.jsonl is skipped, and the next append starts a new line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeLog(dir, EVENTS.slice(0, 3));
    // A driver killed in the middle of a write.
    await Deno.writeTextFile(join(dir, "trials.jsonl"), '{"t":1,"trial":"e_0', { append: true });
    const scanned = scanJsonLines<TrialEvent>(await Deno.readTextFile(join(dir, "trials.jsonl")));
    assert.equal(scanned.rows.length, 3);
    assert.equal(scanned.torn, true);
    assert.equal(scanned.bad, 0);
    assert.equal((await readTrialEvents(dir)).length, 3);
    // Resuming appends after it: the torn fragment must not swallow the next event.
    await writeLog(dir, [EVENTS[3]]);
    const read = await readTrialEvents(dir);
    assert.equal(read.length, 4);
    assert.equal(read[3].trial, "e_00001");
    assert.equal(read[3].event, "started");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unreadable line in the middle: the strict reader names it, the scan counts it", () => {
  const text = '{"a":1}\n{"a":\n{"a":3}\n';
  assert.throws(() => parseJsonLines(text), /Line 2 is not JSON: \{"a":/);
  const scanned = scanJsonLines(text);
  assert.deepEqual(scanned.rows, [{ a: 1 }, { a: 3 }]);
  assert.equal(scanned.bad, 1);
  assert.equal(scanned.torn, false);
});

Deno.test("scanJsonLines: empty text and blank lines give nothing, a final newline is not torn", () => {
  assert.deepEqual(scanJsonLines(""), { rows: [], bad: 0, torn: false });
  assert.deepEqual(scanJsonLines('\n\n{"a":1}\n\n'), { rows: [{ a: 1 }], bad: 0, torn: false });
});

Deno.test("EventLog without its timer: onCommitted waits for the owner's flush, a failed write reaches failed()", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await EventLog.open(dir, { flushTimer: false });
    const seen: string[] = [];
    const waiter = (name: string) => ({
      committed: () => seen.push(`${name} committed`),
      failed: (e: unknown) => seen.push(`${name} failed: ${(e as Error).name}`),
    });
    log.onCommitted(waiter("nothing queued")); // answered at once
    log.append({ trial: "e_00000", event: "created", config: {} });
    log.onCommitted(waiter("a"));
    log.append({ trial: "e_00000", event: "started" });
    log.onCommitted(waiter("b"));
    // No timer: a macrotask later nothing is written and nobody is answered.
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, ["nothing queued committed"]);
    assert.equal(await Deno.readTextFile(join(dir, "trials.jsonl")), "");
    log.flush(); // one write for both events, then both answers
    assert.deepEqual(seen, ["nothing queued committed", "a committed", "b committed"]);
    assert.equal((await readTrialEvents(dir)).length, 2);
    log.close();
    // A write to a closed file fails: the waiters hear it.
    log.append({ trial: "e_00000", event: "paused" });
    log.onCommitted(waiter("c"));
    log.flush();
    assert.match(seen.at(-1)!, /^c failed: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
