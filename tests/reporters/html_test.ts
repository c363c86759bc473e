import { deepEqual, equal, match, ok, rejects } from "#assert";
import { join } from "node:path";
import { renderReport, reportCommand, resultGridToHtml } from "../../plugins/reporters/html.ts";
import { type ReportData, ReportLoader } from "../../plugins/reporters/_html_data.ts";
import { ResultGrid } from "../../core/results.ts";
import { copyTree, readStoredTrials } from "../../core/store.ts";
import { sampleFrom, Tuner, uniform } from "../../mod.ts";
import {
  branchExperiment,
  pbtExperiment,
  sandboxedExperiment,
  stoppingExperiment,
} from "../fixtures/report/experiments.ts";

/** The data embedded in a report. */
function embedded(html: string): ReportData {
  const m = /<script id="tunebox-data" type="application\/json">(.*?)<\/script>/s.exec(html);
  if (!m) throw new Error("the report does not embed its data");
  return JSON.parse(m[1]);
}

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim());
}

function capture(): {
  out: string[];
  err: string[];
  stdout: (s: string) => void;
  stderr: (s: string) => void;
} {
  const out: string[] = [], err: string[] = [];
  return { out, err, stdout: (s) => out.push(s), stderr: (s) => err.push(s) };
}

const storage = await Deno.makeTempDir({ prefix: "tunebox_report_test_" });
const stopping = await stoppingExperiment(storage);

Deno.test("renderReport writes one offline file: ECharts inlined, no external resource", async () => {
  const html = await renderReport(stopping);
  match(html, /^<!doctype html>/);
  match(html, /Apache ECharts 6\.1\.0/);
  equal(/<script[^>]+src=|<link[^>]+href=|@import|url\(http/i.test(html), false);
  // Only the closing tags of the page's own three scripts.
  equal(html.split("</script>").length - 1, 3);
  const size = new TextEncoder().encode(html).length;
  ok(size < 1_000_000, `report of 12 trials is ${size} bytes`);
});

Deno.test("report data: one axis per parameter, log for loguniform, categorical for choice", async () => {
  const data = embedded(await renderReport(stopping));
  deepEqual(
    data.axes.map((a) => [a.key, a.scale]),
    [["lr", "log"], ["batch", "category"], ["layers", "linear"], ["activation", "category"], [
      "dropout",
      "linear",
    ]],
  );
  deepEqual(data.axes[1].categories, ["32", "64", "128"]);
  equal(data.experiment.metric, "val_loss");
  equal(data.experiment.mode, "min");
  equal(data.trials.length, 12);
  for (const t of data.trials) {
    const reports = await lines(join(stopping, t.id, "result.jsonl"));
    equal(t.iterations.length, reports.length, `${t.id} reports`);
    equal(t.link, `${t.id}/`);
  }
  const failed = data.trials.filter((t) => t.status === "error");
  equal(failed.length, 2);
  for (const t of failed) match(t.error!, /loss diverged to NaN at epoch 1/);
  const stopped = data.trials.filter((t) => t.reason);
  ok(stopped.length >= 3, `${stopped.length} stopped`);
  for (const t of stopped) match(t.reason!, /worse than the median/);
  // The importance of lr, which drives the loss, comes first.
  equal(data.importance.shares[0].key, "lr");
  equal(data.warnings.length, 0);
});

Deno.test("report links trial folders relative to where the file is saved", async () => {
  const data = embedded(await renderReport(stopping, { outFile: join(storage, "out", "r.html") }));
  equal(data.trials[0].link, `../stopping/${data.trials[0].id}/`);
});

Deno.test("resultGridToHtml renders the grid's experiment", async () => {
  const grid = await ResultGrid.load(stopping);
  const data = embedded(await resultGridToHtml(grid));
  deepEqual(data.trials.map((t) => t.id), grid.trials.map((t) => t.id));
  deepEqual(data.trials.map((t) => t.status), grid.trials.map((t) => t.status));
});

Deno.test("report of a PBT experiment lists its exploits with the iteration they continued from", async () => {
  const dir = await pbtExperiment(storage);
  const data = embedded(await renderReport(dir));
  const events = (await lines(join(dir, "trials.jsonl"))).map((l) => JSON.parse(l))
    .filter((e) => e.event === "config");
  ok(events.length > 0, "the fixture exploited");
  equal(data.exploits.length, events.length);
  for (const x of data.exploits) {
    equal(x.iteration % 3, 0, `exploit after iteration ${x.iteration}`);
    const t = data.trials.find((t) => t.id === x.trial)!;
    const seg = t.segments.find((s) => s.donor === x.donor && s.fromIteration === x.iteration);
    ok(seg, `segment of ${x.trial} from ${x.donor}`);
  }
});

Deno.test("the report reads the same trials from disk as restore and ResultGrid.load do", async () => {
  // In-process PBT trials: their results are in the journal (trials.jsonl) first.
  const dir = await pbtExperiment(storage, "pbt_store");
  const data = await new ReportLoader(dir).load();
  const stored = await readStoredTrials(dir);
  ok(stored.length > 0);
  deepEqual(
    data.trials.map((t) => [t.id, t.status, t.failures, t.config, t.iterations]),
    stored.map((t) => [
      t.id,
      t.status,
      t.failures,
      t.config,
      t.history.map((r) => r.training_iteration),
    ]),
  );
});

Deno.test("report of a sandboxed experiment (module trainable in subprocesses)", async () => {
  const dir = await sandboxedExperiment(storage);
  const data = embedded(await renderReport(dir));
  equal(data.trials.length, 3);
  for (const t of data.trials) {
    equal(t.status, "terminated", `${t.id}: ${t.error ?? ""}`);
    deepEqual(t.iterations, [1, 2, 3]);
  }
  deepEqual(data.axes.map((a) => [a.key, a.scale]), [["x", "linear"], ["width", "category"]]);
});

Deno.test("report guesses the axes of a space it cannot rebuild (sampleFrom) and says so", async () => {
  await new Tuner({
    trainable: async (config, session) => {
      await session.report({ loss: (config.x as number) ** 2 + (config.y as number) });
    },
    space: { x: uniform(-1, 1), y: sampleFrom((c) => (c.x as number) * 2) },
    metric: "loss",
    mode: "min",
    numSamples: 3,
    seed: 1,
    reporter: false,
    storage,
    name: "sample_from",
  }).fit();
  const data = embedded(await renderReport(join(storage, "sample_from")));
  deepEqual(data.axes.map((a) => a.key), ["x"]);
  match(data.warnings[0], /^the space could not be read \(.+\); axes are guessed$/);
  equal(data.trials.length, 3);
});

Deno.test("a choice between sub-spaces is a categorical axis of branches, their parameters axes of their own", async () => {
  const dir = await branchExperiment(storage);
  const data = embedded(await renderReport(dir));
  deepEqual(data.axes.map((a) => [a.key, a.scale, a.categories ?? null]), [
    ["opt", "category", ["sgd", "adam"]],
    ["opt/lr", "log", null],
    ["opt/beta", "linear", null],
  ]);
  for (const t of data.trials) {
    const opt = t.config.opt as { name: string; beta?: number };
    equal(t.params.opt, opt.name);
    equal(t.params["opt/beta"], opt.beta ?? null);
  }
});

Deno.test("a folder that is not an experiment gets a clear message", async () => {
  const empty = await Deno.makeTempDir();
  await rejects(renderReport(join(empty, "nope")), {
    name: "TuneError",
    message: `"${
      join(empty, "nope")
    }" does not exist; pass an experiment folder (<storage>/<name>, the folder that holds experiment.json)`,
  });
  await rejects(renderReport(empty), {
    message: `"${empty}" is not a tunebox experiment folder: it has no experiment.json`,
  });
  await Deno.writeTextFile(join(empty, "a.txt"), "x");
  await rejects(renderReport(join(empty, "a.txt")), {
    message: `"${
      join(empty, "a.txt")
    }" is a file, not an experiment folder; pass the folder that holds experiment.json`,
  });
  const store = join(empty, "store");
  await copyTree(stopping, join(store, "b"));
  await copyTree(stopping, join(store, "a"));
  await Deno.mkdir(join(store, "not_one"));
  await rejects(renderReport(store), {
    message:
      `"${store}" is a storage folder, not an experiment folder; it holds 2 experiment(s): "${store}/a", "${store}/b"`,
  });
  const bad = join(empty, "bad");
  await Deno.mkdir(bad);
  await Deno.writeTextFile(join(bad, "experiment.json"), "{ not json");
  await rejects(renderReport(bad), { message: /^".*bad\/experiment\.json" is not valid JSON: / });
});

Deno.test("a half-written experiment (killed mid-write) gives a report of what is there", async () => {
  const dir = join(await Deno.makeTempDir(), "killed");
  await copyTree(stopping, dir);
  const events = await lines(join(dir, "trials.jsonl"));
  // A torn last line, a garbled line in the middle, and a trial whose "created" was lost.
  const lost = JSON.parse(events.find((l) => l.includes('"created"') && l.includes("_00011"))!);
  const some = JSON.parse(events[0]).trial;
  // `some` keeps its results in its own result.jsonl only (as a sandboxed trial does), so the
  // torn file is all there is of them.
  const kept = events.filter((l) =>
    !l.includes(`"${lost.trial}"`) && !(l.includes(`"${some}"`) && l.includes('"event":"result"'))
  );
  kept.splice(3, 0, "{garbled");
  await Deno.writeTextFile(join(dir, "trials.jsonl"), kept.join("\n") + '\n{"t":1,"trial":"x","ev');
  const results = await lines(join(dir, some, "result.jsonl"));
  await Deno.writeTextFile(
    join(dir, some, "result.jsonl"),
    results.slice(0, 3).join("\n") + "\n" + results[3].slice(0, 20),
  );
  const data = embedded(await renderReport(dir));
  equal(data.trials.length, 12);
  equal(data.trials.find((t) => t.id === some)!.iterations.length, 3);
  const orphan = data.trials.find((t) => t.id === lost.trial)!;
  equal(orphan.status, "unknown");
  deepEqual(orphan.config, lost.config);
  deepEqual(data.warnings, [
    "trials.jsonl: 1 unreadable line(s) skipped",
    "trials.jsonl: the last line is cut short (still being written, or killed)",
    `trial ${lost.trial} has a folder but no events in trials.jsonl`,
    `${some}/result.jsonl: the last line is cut short`,
  ]);
});

Deno.test("an experiment without trials yet gives a report that says so", async () => {
  const dir = join(await Deno.makeTempDir(), "fresh");
  await Deno.mkdir(dir);
  await Deno.copyFile(join(stopping, "experiment.json"), join(dir, "experiment.json"));
  const data = await new ReportLoader(dir).load();
  equal(data.trials.length, 0);
  deepEqual(data.warnings, ["trials.jsonl is missing: no trial has been created yet"]);
  match(data.importance.unavailable!, /has 0/);
});

Deno.test("reportCommand writes DIR/report.html or --out and prints size and time", async () => {
  const io = capture();
  equal(await reportCommand([stopping], io), 0);
  match(
    io.out[0],
    new RegExp(`^Wrote ${join(stopping, "report.html")} \\(\\d+ KiB\\) in \\d+ ms$`),
  );
  ok((await Deno.stat(join(stopping, "report.html"))).size > 600_000);
  const out = join(await Deno.makeTempDir(), "r.html");
  equal(await reportCommand([stopping, "--out", out], io), 0);
  match(await Deno.readTextFile(out), /<title>Tunebox — stopping<\/title>/);
});

Deno.test("reportCommand: bad usage exits 2, not an experiment exits 1, with messages", async () => {
  let io = capture();
  equal(await reportCommand([], io), 2);
  match(
    io.err[0],
    /^tunebox report: expected one experiment folder, got 0\n\nUsage: tunebox report DIR/,
  );
  io = capture();
  equal(await reportCommand([stopping, "--bogus"], io), 2);
  match(io.err[0], /^tunebox report: Unknown option '--bogus'/);
  io = capture();
  equal(await reportCommand(["/nonexistent/exp"], io), 1);
  equal(
    io.err[0],
    'tunebox report: "/nonexistent/exp" does not exist; pass an experiment folder (<storage>/<name>, the folder that holds experiment.json)',
  );
  io = capture();
  equal(await reportCommand(["--help"], io), 0);
  match(io.out[0], /^Usage: tunebox report DIR \[--out FILE\.html\]/);
});
