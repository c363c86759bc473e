// In-process trials keep their records in the journal (trials.jsonl) and get a folder only when
// they need one; ResultGrid.load, the HTML report and resume read the journal for the rest.
import { deepEqual, equal, match, ok as assert, rejects } from "#assert";
import { grid, ResultGrid, Tuner } from "../../mod.ts";
import type { TrainableFn } from "../../mod.ts";
import { tempStorage } from "../_helpers.ts";
import { ReportLoader } from "../../plugins/reporters/_html_data.ts";

async function folders(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) if (e.isDirectory) out.push(e.name);
  return out.sort();
}

// x=1 reports only; x=2 checkpoints; x=3 writes a file in session.trialDir; x=4 fails.
const trainable: TrainableFn = async (c, session) => {
  const config = c as { x: number };
  for (let i = session.iteration; i < 2; i++) {
    if (config.x === 4 && i === 1) throw new Error("boom");
    await session.report(
      { loss: config.x + 1 / (i + 1), nested: { v: i } },
      config.x === 2 ? { checkpoint: (d) => Deno.writeTextFile(`${d}/w`, String(i)) } : {},
    );
    if (config.x === 3) await Deno.writeTextFile(`${session.trialDir}/own.txt`, String(i));
  }
};

Deno.test("in-process trials: a folder only for a trial that checkpoints, uses trialDir or fails; load, report and resume read the journal", async () => {
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable,
    space: { x: grid([1, 2, 3, 4]) },
    metric: "loss",
    mode: "min",
    storage,
    name: "lazy",
    reporter: false,
  }).fit();
  const dir = `${storage}/lazy`;
  const [t1, t2, t3, t4] = r.trials;
  deepEqual(await folders(dir), [t2.id, t3.id, t4.id].sort(), "no folder for the plain trial");
  // The checkpointing trial, the one that used its folder, and the failed one: whole records.
  for (const t of [t2, t3]) {
    const lines = (await Deno.readTextFile(`${dir}/${t.id}/result.jsonl`)).trim().split("\n");
    deepEqual(lines.map((l) => JSON.parse(l).training_iteration), [1, 2], t.id);
    const csv = (await Deno.readTextFile(`${dir}/${t.id}/progress.csv`)).trim().split("\n");
    equal(csv.length, 3, `${t.id}: header and 2 rows`);
    match(csv[0], /^loss,nested\/v,training_iteration/);
    deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/${t.id}/params.json`)), t.config);
  }
  equal(await Deno.readTextFile(`${dir}/${t3.id}/files/own.txt`), "1");
  assert(t2.checkpoint?.endsWith("checkpoint_000002"), t2.checkpoint);
  match(await Deno.readTextFile(`${dir}/${t4.id}/error.txt`), /Error: boom[\s\S]*at /);
  equal(t4.status, "error");

  // Loaded from disk: the same trials, histories and best, the plain trial's from the journal.
  const loaded = await ResultGrid.load(dir);
  deepEqual(
    loaded.trials.map((t) => [t.id, t.status, t.iterations, t.metrics?.loss]),
    r.trials.map((t) => [t.id, t.status, t.iterations, t.metrics?.loss]),
  );
  deepEqual(loaded.history(t1.id), r.history(t1.id));
  equal(loaded.best().id, t1.id);
  equal(loaded.trials[1].checkpoint, t2.checkpoint);
  match(await loaded.toHtml(), new RegExp(`${t1.id}[\\s\\S]*${t4.id}`));
  // The report links the trials that have a folder, and only those.
  const report = await new ReportLoader(dir).load();
  deepEqual(report.trials.map((t) => t.link), ["", `${t2.id}/`, `${t3.id}/`, `${t4.id}/`]);
  deepEqual(report.trials[0].iterations.length, 2);

  // Resume (restartErrored) writes no folder for the plain trial, and keeps its history.
  const again = await (await Tuner.restore(dir, {
    trainable,
    reporter: false,
    restartErrored: true,
  })).fit();
  deepEqual(again.history(t1.id), r.history(t1.id));
  deepEqual(await folders(dir), [t2.id, t3.id, t4.id].sort());
});

Deno.test('trialFolders: "end" writes every in-process trial\'s folder before fit() returns', async () => {
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable,
    space: { x: grid([1, 2, 3]) },
    metric: "loss",
    mode: "min",
    storage,
    name: "end",
    reporter: false,
    trialFolders: "end",
  }).fit();
  const dir = `${storage}/end`;
  deepEqual(await folders(dir), r.trials.map((t) => t.id).sort());
  for (const t of r.trials) {
    const lines = (await Deno.readTextFile(`${dir}/${t.id}/result.jsonl`)).trim().split("\n");
    deepEqual(lines.map((l) => JSON.parse(l)), r.history(t.id).map((h) => ({ ...h })), t.id);
    deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/${t.id}/params.json`)), t.config);
  }
});

Deno.test("trialFolders: a value other than lazy or end is refused, naming the option", async () => {
  await rejects(
    async () =>
      await new Tuner({
        trainable,
        space: { x: grid([1]) },
        metric: "loss",
        mode: "min",
        storage: await tempStorage(),
        reporter: false,
        trialFolders: "always" as never,
      }).fit(),
    /"trialFolders" must be "lazy" or "end", got "always"/,
  );
});
