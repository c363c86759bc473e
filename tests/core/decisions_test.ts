import { deepEqual, equal, match, ok as assert } from "#assert";
import {
  type Decision,
  grid,
  type Scheduler,
  type Session,
  tableReporter,
  Tuner,
} from "../../mod.ts";
import { tempStorage } from "../_helpers.ts";

// A trainable that counts in its checkpoint, so a resumed or exploited trial shows where it came from.
async function counter(
  config: { x: number; lr?: number },
  session: Session<{ x: number; lr?: number }>,
) {
  let state = { total: 0, from: "scratch" };
  if (session.checkpoint) {
    state = JSON.parse(await Deno.readTextFile(`${session.checkpoint}/state.json`));
  }
  for (let i = session.iteration; i < 4; i++) {
    state.total += config.lr ?? config.x;
    await session.report({ score: state.total, from: state.from }, {
      checkpoint: (dir) =>
        Deno.writeTextFile(
          `${dir}/state.json`,
          JSON.stringify({ ...state, from: session.trialId }),
        ),
    });
  }
}

Deno.test("a scheduler's stop ends the trial at once and aborts its signal", async () => {
  let aborted = false;
  const stopAt2: Scheduler = {
    name: "stop_at_2",
    onReport: (_t, r): Decision =>
      r.training_iteration >= 2 ? { kind: "stop", reason: "enough" } : { kind: "continue" },
  };
  const r = await new Tuner({
    trainable: async (_c, session) => {
      session.signal.addEventListener("abort", () => (aborted = true));
      for (let i = 0; i < 10; i++) await session.report({ score: i });
    },
    space: {},
    metric: "score",
    mode: "max",
    scheduler: stopAt2,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  equal(r.trials[0].iterations, 2);
  equal(r.trials[0].status, "terminated");
  assert(aborted);
});

Deno.test("pause frees the slot; the paused trial resumes from its checkpoint with its iteration", async () => {
  const paused = new Set<string>();
  // Pause every trial once at iteration 2; run paused trials only after every trial has paused.
  const scheduler: Scheduler = {
    name: "pause_once",
    onReport(t, r) {
      if (r.training_iteration === 2 && !paused.has(t.id)) {
        paused.add(t.id);
        return { kind: "pause" };
      }
      return { kind: "continue" };
    },
    chooseNext(runnable) {
      const pending = runnable.find((t) => t.status === "pending");
      return pending?.id ?? (paused.size === 3 ? runnable[0]?.id : undefined);
    },
  };
  const r = await new Tuner({
    trainable: counter,
    space: { x: grid([1, 2, 3]) },
    metric: "score",
    mode: "max",
    scheduler,
    maxConcurrent: 1,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  for (const t of r.trials) {
    equal(t.status, "terminated");
    const h = r.history(t.id);
    deepEqual(h.map((x) => x.training_iteration), [1, 2, 3, 4]);
    equal(
      h[3].score,
      4 * (t.config.x as number),
      "the resumed run continued from the checkpoint's state",
    );
    equal(h[2].from, t.id);
  }
  const events = await Deno.readTextFile(`${r.path}/trials.jsonl`);
  equal(events.split("\n").filter((l) => l.includes('"paused"')).length, 3);
});

Deno.test("exploit copies the donor's checkpoint and config into the recipient and restarts it", async () => {
  let done = false;
  const scheduler: Scheduler = {
    name: "exploit_once",
    onReport(t, r) {
      // At iteration 2 the x=1 trial takes over the x=3 trial's state and config.
      if (!done && t.config.x === 1 && r.training_iteration === 2) {
        done = true;
        return { kind: "exploit", from: donor!, config: { x: 1, lr: 10 } };
      }
      return { kind: "continue" };
    },
    onTrialAdd(t) {
      if (t.config.x === 3) donor = t.id;
    },
  };
  let donor: string | undefined;
  const r = await new Tuner({
    trainable: counter,
    // The donor runs first and finishes, so its last checkpoint holds total 12.
    space: { x: grid([3, 1]) },
    metric: "score",
    mode: "max",
    scheduler,
    maxConcurrent: 1,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const recipient = r.trials.find((t) => t.config.x === 1)!;
  deepEqual(recipient.config, { x: 1, lr: 10 });
  const h = r.history(recipient.id);
  deepEqual(h.map((x) => x.training_iteration), [1, 2, 3, 4]);
  equal(h[2].from, donor, "restored from the donor's checkpoint");
  equal(h[2].score, 12 + 10);
  const params = JSON.parse(await Deno.readTextFile(`${recipient.path}/params.json`));
  deepEqual(params, { lr: 10, x: 1 });
  const events = await Deno.readTextFile(`${r.path}/trials.jsonl`);
  match(events, new RegExp(`"event":"config".*"reason":"exploit ${donor}"`));
});

Deno.test("a scheduler that throws ends the experiment with its name and hook; the data stays", async () => {
  const bad: Scheduler = {
    name: "broken",
    onReport: () => {
      throw new Error("kaboom");
    },
  };
  const storage = await tempStorage();
  let err: Error | undefined;
  await new Tuner({
    trainable: counter,
    space: { x: 1 },
    metric: "score",
    mode: "max",
    scheduler: bad,
    storage,
    name: "b",
    reporter: false,
  })
    .fit().catch((e) => (err = e));
  match(String(err?.message), /Plugin "broken" failed in onReport: kaboom/);
  const lines = (await Deno.readTextFile(`${storage}/b/trials.jsonl`)).trim().split("\n");
  assert(lines.length >= 2);
  const status = JSON.parse(await Deno.readTextFile(`${storage}/b/experiment.json`)).status;
  equal(status, "failed");
});

Deno.test("a callback that throws is reported by name and the experiment goes on", async () => {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (m: string) => warnings.push(m);
  try {
    const r = await new Tuner({
      trainable: counter,
      space: { x: grid([1, 2]) },
      metric: "score",
      mode: "max",
      callbacks: [{ name: "flaky_logger", onReport: () => Promise.reject(new Error("disk full")) }],
      storage: await tempStorage(),
      reporter: false,
    }).fit();
    equal(r.trials.filter((t) => t.status === "terminated").length, 2);
  } finally {
    console.warn = orig;
  }
  equal(
    warnings.filter((w) => w.includes('Plugin "flaky_logger" failed in onReport: disk full'))
      .length,
    1,
  );
});

Deno.test("the table reporter prints parameters, metrics and the best trial", async () => {
  let out = "";
  await new Tuner({
    trainable: counter,
    space: { x: grid([1, 2]), nested: { long_parameter_name: 5 } },
    metric: "score",
    mode: "max",
    storage: await tempStorage(),
    reporter: tableReporter({
      write: (s) => (out += s),
      live: false,
      parameterColumns: ["x", "nested/long_parameter_name"],
    }),
  }).fit();
  match(out, /Trial\s+status\s+x\s+long_parameter_name\s+score\s+iter\s+time \(s\)/);
  match(out, /_00001\s+terminated\s+2\s+5\s+8\s+4/);
  match(out, /Best trial \w+_00001: score=8 config=\{"x":2/);
});

Deno.test("a callback that hangs never stalls the experiment; its end waits only callbackDrainMs", async () => {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (m: string) => warnings.push(m);
  const t0 = performance.now();
  try {
    const r = await new Tuner({
      trainable: counter,
      space: { x: grid([1, 2, 3]) },
      metric: "score",
      mode: "max",
      callbacks: [{ name: "stuck_logger", onReport: () => new Promise<void>(() => {}) }],
      callbackDrainMs: 300,
      storage: await tempStorage(),
      reporter: false,
    }).fit();
    equal(r.trials.filter((t) => t.status === "terminated").length, 3);
    for (const t of r.trials) equal(t.iterations, 4);
  } finally {
    console.warn = orig;
  }
  assert(performance.now() - t0 < 5000);
  assert(
    warnings.some((w) =>
      /callback "stuck_logger" still busy 300 ms after the experiment ended/.test(w)
    ),
    warnings.join("\n"),
  );
});
