// The one check of a scheduler's decision: the runner applies it (a bad decision ends the
// experiment naming the scheduler) and the shipped contract suite asserts it.

import assert from "#assert";
import { type Scheduler, Tuner } from "../../mod.ts";
import { checkDecision, validateDecision } from "../../testing/mod.ts";
import { tempStorage } from "../_helpers.ts";

Deno.test("validateDecision accepts the five kinds and names what is wrong otherwise", () => {
  const trials = new Set(["t_00000"]);
  for (
    const d of [
      { kind: "continue" },
      { kind: "pause" },
      { kind: "stop", reason: "pruned" },
      { kind: "stop", reason: "done", completed: true },
      { kind: "exploit", from: "t_00000", config: { lr: 0.1, layers: [1, 2] } },
      { kind: "reallocate", resources: { cpu: 2, gpu: 0 } },
      { kind: "reallocate", resources: { cpu: 0.5, gpu: 0.25 } },
      { kind: "reallocate", resources: { cpu: 1, gpu: 2 } },
    ]
  ) assert.equal(validateDecision(d, trials), undefined, JSON.stringify(d));
  const cases: [unknown, RegExp][] = [
    [undefined, /it returned undefined, not a Decision/],
    [{ kind: "halt" }, /it returned \{"kind":"halt"\}, not a Decision/],
    [{ kind: "stop" }, /a stop decision needs a reason/],
    [{ kind: "stop", reason: "x", completed: "yes" }, /"completed" must be true or false/],
    [{ kind: "exploit", config: {} }, /needs a donor id in `from`/],
    [{ kind: "exploit", from: "t_00009", config: {} }, /exploit from unknown trial "t_00009"/],
    [{ kind: "exploit", from: "t_00000" }, /needs a config object/],
    [{ kind: "exploit", from: "t_00000", config: { lr: NaN } }, /must be plain JSON/],
    [{ kind: "exploit", from: "t_00000", config: { at: new Date(0) } }, /must be plain JSON/],
    [{ kind: "reallocate" }, /a reallocate decision needs resources: \{ cpu, gpu \}/],
    [
      { kind: "reallocate", resources: { cpu: 2 } },
      /gpu must be a finite number >= 0, got undefined/,
    ],
    [
      { kind: "reallocate", resources: { cpu: -1, gpu: 0 } },
      /cpu must be a finite number >= 0, got -1/,
    ],
    [
      { kind: "reallocate", resources: { cpu: "2", gpu: 0 } },
      /cpu must be a finite number >= 0, got "2"/,
    ],
    [
      { kind: "reallocate", resources: { cpu: 1, gpu: 1.5 } },
      /gpu is 1.5, but GPUs above 1 must be a whole number/,
    ],
    [{ kind: "reallocate", resources: { cpu: 0, gpu: 0 } }, /no cpu and no gpu/],
    [
      { kind: "reallocate", resources: { cpu: 1, gpu: 0, memoryMb: 5 } },
      /only cpu and gpu can be changed, not "memoryMb"/,
    ],
  ];
  for (const [d, message] of cases) assert.match(validateDecision(d, trials) ?? "", message);
});

Deno.test("the contract suite's checkDecision fails on what the runner refuses", () => {
  assert.throws(() => checkDecision({ kind: "stop" }), /onReport: a stop decision needs a reason/);
  assert.throws(() => checkDecision({ kind: "continue", extra: 1 }), /has only "kind"/);
  assert.deepEqual(checkDecision({ kind: "pause" }), { kind: "pause" });
});

Deno.test("the runner ends the experiment on a decision validateDecision refuses, naming the scheduler", async () => {
  const noReason: Scheduler = {
    name: "reasonless",
    onReport: () => ({ kind: "stop" }) as never,
  };
  const storage = await tempStorage();
  const err = await new Tuner({
    trainable: async (_config, session) => {
      for (let i = 0; i < 3; i++) await session.report({ score: i });
    },
    space: { x: 1 },
    metric: "score",
    mode: "max",
    scheduler: noReason,
    storage,
    name: "r",
    reporter: false,
  }).fit().then(() => undefined, (e: Error) => e);
  assert.match(
    String(err?.message),
    /Plugin "reasonless" failed in onReport: a stop decision needs a reason/,
  );
});
