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

Deno.test("kill -9 of a driver running in-process trials loses no acknowledged report; load and resume see them all", async () => {
  const storage = await tempStorage();
  const acks = `${storage}/acks.txt`;
  const hangAfter = 120;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fixture("group_commit_driver.ts").pathname,
      storage,
      acks,
      String(hangAfter),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Every trainable stops after the 120th acknowledgement: wait for it, then kill outright.
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
  const dir = `${storage}/gc`;

  const check = (grid: ResultGrid, when: string) => {
    for (const [trial, iteration] of acked) {
      const iters = grid.history(trial).map((r) => r.training_iteration);
      assert(iters.includes(Number(iteration)), `${when}: ${trial} iteration ${iteration} lost`);
    }
  };
  // Straight after the kill: what the journal holds counts, written to trial folders or not.
  check(await ResultGrid.load(dir), "ResultGrid.load after kill -9");
  const unwritten = new Set<string>();
  for (const [trial] of acked) {
    try {
      await Deno.lstat(`${dir}/${trial}/result.jsonl`);
    } catch {
      unwritten.add(trial);
    }
  }
  assert(
    unwritten.size > 0,
    "some acknowledged reports were only in the journal (the case tested)",
  );

  // Resume writes the missing records first, then runs the experiment to its end.
  const grid = await (await Tuner.restore(dir, { trainable, reporter: false })).fit();
  check(grid, "after resume");
  equal(grid.trials.length, 200);
  for (const t of grid.trials) equal(t.status, "terminated", `${t.id}: ${t.error}`);
  check(await ResultGrid.load(dir), "ResultGrid.load after resume");
  // Every trial folder now holds the same records a sandboxed trial's would.
  for (const t of grid.trials) {
    const lines = (await Deno.readTextFile(`${dir}/${t.id}/result.jsonl`)).trim().split("\n");
    const iters = [...new Set(lines.map((l) => JSON.parse(l).training_iteration))].sort();
    deepEqual(iters, [1, 2, 3], t.id);
    const params = JSON.parse(await Deno.readTextFile(`${dir}/${t.id}/params.json`));
    deepEqual(params, t.config);
    const csv = (await Deno.readTextFile(`${dir}/${t.id}/progress.csv`)).trim().split("\n");
    equal(csv.length, lines.length + 1, `${t.id}/progress.csv has a header and a row per report`);
  }
});
