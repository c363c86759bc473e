// TrialSession: the folder hook an in-process trial's folder is made by, and report's answers.

import assert from "#assert";
import { TrialSession, TrialStopped } from "../../core/session.ts";

Deno.test("TrialSession calls onTrialDir once, at the first read of trialDir", () => {
  let calls = 0;
  const s = new TrialSession(
    { trialId: "t", config: {}, iteration: 0, trialDir: "/x/t/files", onTrialDir: () => calls++ },
    { send: () => Promise.resolve("continue") },
  );
  assert.equal(calls, 0);
  assert.equal(s.trialDir, "/x/t/files");
  assert.equal(s.trialDir, "/x/t/files");
  assert.equal(calls, 1);
  // Sessions share their class's shape: no accessor of their own.
  assert.equal(Object.getOwnPropertyDescriptor(s, "trialDir"), undefined);
});

Deno.test("TrialSession.report counts acknowledged reports, rejects bad metrics and a stop", async () => {
  const answers: ("continue" | "stop")[] = ["continue", "stop"];
  const s = new TrialSession(
    { trialId: "t", config: {}, iteration: 3, trialDir: "." },
    { send: () => Promise.resolve(answers.shift()!) },
  );
  await s.report({ loss: 1 });
  assert.equal(s.iteration, 4);
  // A wrong metric is a rejection, not a throw from report().
  const bad = s.report({ loss: new Date() as unknown as number });
  await assert.rejects(bad, TypeError);
  await assert.rejects(s.report({ loss: 2 }), TrialStopped);
  assert.equal(s.iteration, 5);
  assert.equal(s.signal.aborted, true);
  await assert.rejects(s.report({ loss: 3 }), TrialStopped);
  // A sink that throws at once is a rejection too.
  const broken = new TrialSession(
    { trialId: "u", config: {}, iteration: 0, trialDir: "." },
    {
      send: () => {
        throw new Error("channel closed");
      },
    },
  );
  await assert.rejects(broken.report({ loss: 1 }), /channel closed/);
});

Deno.test("a TrialSession whose onTrialDir throws calls it again at the next read", () => {
  let calls = 0;
  const s = new TrialSession(
    {
      trialId: "t",
      config: {},
      iteration: 0,
      trialDir: "/x",
      onTrialDir: () => {
        if (++calls === 1) throw new Error("disk full");
      },
    },
    { send: () => Promise.resolve("continue") },
  );
  assert.throws(() => s.trialDir, /disk full/);
  assert.equal(s.trialDir, "/x");
  assert.equal(s.trialDir, "/x");
  assert.equal(calls, 2);
});
