// Warm starts: a trial's process started ahead, with that trial's folder and permissions, serves
// that trial only; one never assigned is killed, and its folder made ahead is removed.
import { deepEqual, equal, notEqual, ok as assert } from "#assert";
import { grid, Tuner } from "../../mod.ts";
import type { Ack, RawReport, Searcher, WarmJob } from "../../mod.ts";
import { subprocessExecutor } from "../../plugins/executors/subprocess.ts";
import { tempStorage } from "../_helpers.ts";
import { hostileTrainable, processesMatching } from "./_hostile.ts";

// The module's top level runs when the process loads it: it notes its pid and time in its
// working folder (the trial's own files/ folder).
const header = `Deno.writeTextFileSync("loaded.txt", Deno.pid + " " + Date.now());`;
const body = `await session.report({ loss: 0, pid: Deno.pid, x: config.x });`;

async function loaded(workDir: string): Promise<{ pid: number; at: number }> {
  for (;;) {
    try {
      const [pid, at] = (await Deno.readTextFile(`${workDir}/loaded.txt`)).split(" ").map(Number);
      if (pid && at) return { pid, at };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

Deno.test("a warmed process loads the trainable before it is assigned, serves that trial, and an unassigned one is killed", async () => {
  const train = await hostileTrainable(body, { header });
  const experimentDir = await tempStorage();
  const executor = subprocessExecutor(train);
  await executor.prepare!({ experimentDir });
  const place = async (trialId: string): Promise<WarmJob> => {
    const dir = `${experimentDir}/${trialId}`;
    await Deno.mkdir(`${dir}/files`, { recursive: true });
    return { trialId, dir, workDir: `${dir}/files`, sandbox: {}, env: {} };
  };
  const run = async (w: WarmJob, x: number) => {
    const reports: RawReport[] = [];
    const handle = executor.start({ ...w, config: { x }, iteration: 0, timeOffsetS: 0 }, {
      report: (r) => {
        reports.push(r);
        return Promise.resolve<Ack>("continue");
      },
    });
    return { exit: await handle.exited, reports };
  };
  try {
    // Warmed: the module is loaded before the trial is handed over, by the process that runs it.
    const a = await place("w_00000");
    executor.warm!(a);
    const warm = await loaded(a.workDir);
    // It leads a process group (and session) of its own: a stop signals the whole group.
    const stat = Deno.readTextFileSync(`/proc/${warm.pid}/stat`);
    const [pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ").slice(2, 4).map(
      Number,
    );
    deepEqual([pgrp, session], [warm.pid, warm.pid], "the trial's own process group and session");
    const handedAt = Date.now();
    const ra = await run(a, 1);
    equal(ra.exit.kind, "done", JSON.stringify(ra.exit));
    equal(ra.reports.length, 1);
    equal(ra.reports[0].metrics.pid, warm.pid, "the warmed process ran the trial");
    equal(ra.reports[0].metrics.x, 1, "with the config it was handed");
    assert(warm.at <= handedAt, "the trainable was loaded before the hand-over");

    // Not assigned: killed; the trial then gets a process of its own.
    const b = await place("w_00001");
    executor.warm!(b);
    const stale = await loaded(b.workDir);
    executor.unwarm!("w_00001");
    while (alive(stale.pid)) await new Promise((r) => setTimeout(r, 20));
    await Deno.remove(`${b.workDir}/loaded.txt`);
    const rb = await run(b, 2);
    equal(rb.exit.kind, "done", JSON.stringify(rb.exit));
    notEqual(rb.reports[0].metrics.pid, stale.pid, "a killed warm process is never reused");

    // Warmed for one trial, asked to start another: the other gets a process of its own.
    const c = await place("w_00002");
    const d = await place("w_00003");
    executor.warm!(c);
    const forC = await loaded(c.workDir);
    const rd = await run(d, 3);
    notEqual(
      rd.reports[0].metrics.pid,
      forC.pid,
      "a process warmed for one trial never runs another",
    );
  } finally {
    await executor.close!();
  }
  equal(await processesMatching(experimentDir), "", "no trial process outlived the executor");
});

Deno.test("an experiment whose searcher stops early leaves no warmed process and no folder made ahead", async () => {
  const train = await hostileTrainable(body, { header });
  const storage = await tempStorage();
  let n = 0;
  const searcher: Searcher = {
    name: "two",
    suggest: () => (n++ < 2 ? { x: n } : "done"),
  };
  const r = await new Tuner({
    trainable: train,
    space: { x: grid([1, 2, 3, 4, 5]) },
    searcher,
    metric: "loss",
    mode: "min",
    numSamples: 1,
    maxConcurrent: 1,
    storage,
    name: "early",
    reporter: false,
  }).fit();
  equal(r.trials.length, 2);
  for (const t of r.trials) equal(t.status, "terminated", t.error);
  const folders = [];
  for await (const e of Deno.readDir(`${storage}/early`)) if (e.isDirectory) folders.push(e.name);
  equal(folders.sort().join(","), r.trials.map((t) => t.id).sort().join(","));
  equal(await processesMatching(`${storage}/early`), "");
});

Deno.test("while the one slot is busy, the processes of the next two trials start ahead, each with its own trial", async () => {
  // The first trial waits for go.txt in its own folder; the test writes it once the next two
  // trials' processes have loaded the trainable (each notes its pid in its own folder).
  const train = await hostileTrainable(
    `while (config.x === 1) {
       try { Deno.readTextFileSync("go.txt"); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
     }
     await session.report({ loss: 0, pid: Deno.pid, x: config.x });`,
    { header },
  );
  const storage = await tempStorage();
  const dir = `${storage}/ahead`;
  const fit = new Tuner({
    trainable: train,
    space: { x: grid([1, 2, 3, 4]) },
    metric: "loss",
    mode: "min",
    maxConcurrent: 1,
    storage,
    name: "ahead",
    reporter: false,
  }).fit();
  const trialDir = async (n: number) => {
    for (;;) {
      try {
        for await (const e of Deno.readDir(dir)) if (e.name.endsWith(`_0000${n}`)) return e.name;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let first = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const warm = await Promise.race([
    (async () => {
      const [a, b, c] = await Promise.all([0, 1, 2].map(trialDir));
      first = a;
      return await Promise.all([b, c].map((t) => loaded(`${dir}/${t}/files`)));
    })(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(async () => {
        // Then let the experiment end, so that no process outlives the test.
        reject(new Error("the next two trials' processes did not both start ahead"));
        await Deno.writeTextFile(`${dir}/${first || await trialDir(0)}/files/go.txt`, "go");
      }, 20_000);
    }),
  ]).finally(() => clearTimeout(timer));
  await Deno.writeTextFile(`${dir}/${first}/files/go.txt`, "go");
  const r = await fit;
  equal(r.trials.length, 4);
  for (const t of r.trials) equal(t.status, "terminated", t.error);
  // Each warmed process ran the trial it was started for, with that trial's config.
  equal(r.trials[1].metrics?.pid, warm[0].pid);
  equal(r.trials[2].metrics?.pid, warm[1].pid);
  deepEqual(r.trials.map((t) => t.metrics?.x), [1, 2, 3, 4]);
  equal(await processesMatching(dir), "");
});
