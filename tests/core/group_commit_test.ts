import { deepEqual, equal, ok as assert } from "#assert";
import { ResultGrid, Tuner } from "../../mod.ts";
import { fixture, tempStorage } from "../_helpers.ts";
import { trainable } from "../fixtures/group_commit_driver.ts";

async function ackedLines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs the driver fixture, kills it with SIGKILL after `hangAfter` acknowledged reports. */
async function runAndKill(
  storage: string,
  hangAfter: number,
  folders: "lazy" | "end",
): Promise<string[][]> {
  const acks = `${storage}/acks.txt`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fixture("group_commit_driver.ts").pathname,
      storage,
      acks,
      String(hangAfter),
      folders,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Every trainable stops after the last acknowledgement: wait for it, then kill outright.
  for (;;) {
    if ((await ackedLines(acks)).length >= hangAfter) break;
    const done = await Promise.race([child.status, new Promise((r) => setTimeout(r, 20))]);
    if (done) {
      const err = new TextDecoder().decode((await child.output()).stderr);
      throw new Error(`the driver ended before the kill: ${err}`);
    }
  }
  child.kill("SIGKILL");
  await child.status;
  await child.stderr.cancel();
  const acked = (await ackedLines(acks)).map((l) => l.split(" "));
  assert(acked.length >= hangAfter);
  return acked;
}

function checkAcked(acked: string[][], grid: ResultGrid, when: string): void {
  for (const [trial, iteration] of acked) {
    const iters = grid.history(trial).map((r) => r.training_iteration);
    assert(iters.includes(Number(iteration)), `${when}: ${trial} iteration ${iteration} lost`);
  }
}

/** The trial's folder holds the records a sandboxed trial's would: params, 3 reports, the CSV. */
async function checkFolder(dir: string, id: string, config: unknown): Promise<void> {
  const lines = (await Deno.readTextFile(`${dir}/${id}/result.jsonl`)).trim().split("\n");
  const iters = [...new Set(lines.map((l) => JSON.parse(l).training_iteration))].sort();
  deepEqual(iters, [1, 2, 3], id);
  deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/${id}/params.json`)), config);
  const csv = (await Deno.readTextFile(`${dir}/${id}/progress.csv`)).trim().split("\n");
  equal(csv.length, lines.length + 1, `${id}/progress.csv has a header and a row per report`);
}

for (const folders of ["lazy", "end"] as const) {
  Deno.test(`kill -9 of a driver running in-process trials (trialFolders: "${folders}") loses no acknowledged report; load and resume see them all`, async () => {
    const storage = await tempStorage();
    const acked = await runAndKill(storage, 120, folders);
    const dir = `${storage}/gc`;
    // Straight after the kill: what the journal holds counts, written to trial folders or not.
    checkAcked(acked, await ResultGrid.load(dir), "ResultGrid.load after kill -9");
    const unwritten = new Set<string>(), written = new Set<string>();
    for (const [trial] of acked) {
      if (await exists(`${dir}/${trial}/result.jsonl`)) written.add(trial);
      else unwritten.add(trial);
    }
    assert(unwritten.size > 0, "some acknowledged reports were only in the journal");
    // The trials that checkpoint or use session.trialDir switched to their own files mid-run.
    assert(written.size > 0, "some trials had their own folder before the kill");
    for (const trial of written) {
      const n = Number(trial.slice(-5)) % 3;
      assert(n === 0 || n === 1, `${trial} has a folder but needed none`);
    }

    // Resume runs the experiment to its end.
    const grid = await (await Tuner.restore(dir, { trainable, reporter: false })).fit();
    checkAcked(acked, grid, "after resume");
    equal(grid.trials.length, 200);
    for (const t of grid.trials) equal(t.status, "terminated", `${t.id}: ${t.error}`);
    checkAcked(acked, await ResultGrid.load(dir), "ResultGrid.load after resume");
    for (const t of grid.trials) {
      // A trial killed while it ran restarts (from its checkpoint, or the start): a history may
      // repeat iterations, as a sandboxed trial's does.
      const iters = new Set(grid.history(t.id).map((r) => r.training_iteration));
      deepEqual([...iters].sort(), [1, 2, 3], t.id);
      const n = Number(t.id.slice(-5)) % 3;
      if (folders === "end" || n !== 2) await checkFolder(dir, t.id, t.config);
      else equal(await exists(`${dir}/${t.id}`), false, `${t.id} needed no folder`);
      if (n === 1) equal(await Deno.readTextFile(`${dir}/${t.id}/files/mine.txt`), "x");
    }
  });
}
