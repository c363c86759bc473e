// The HTML report of a multi-objective experiment: the data marks the Pareto front, and
// Chromium draws it (headless, Debian's package, as the other browser tests).
import { deepEqual, equal, ok } from "#assert";
import { join } from "node:path";
import { renderReport } from "../../plugins/reporters/html.ts";
import { ResultGrid, Tuner, uniform } from "../../mod.ts";
import type { ReportData } from "../../plugins/reporters/_html_data.ts";
import { chartCounts, launchChromium, watchConsole } from "./_browser.ts";

function embedded(html: string): ReportData {
  const m = /<script id="tunebox-data" type="application\/json">(.*?)<\/script>/s.exec(html);
  if (!m) throw new Error("the report does not embed its data");
  return JSON.parse(m[1]);
}

async function moExperiment(storage: string): Promise<string> {
  await new Tuner({
    trainable: async (c, session) => {
      // Accuracy rises with size: a trade-off, as in example 08.
      await session.report({ acc: 1 - (1 - c.x) ** 2 - 0.2 * c.y, size: 100 * c.x + 10 * c.y });
    },
    space: { x: uniform(0, 1), y: uniform(0, 1) },
    metric: ["acc", "size"],
    mode: ["max", "min"],
    numSamples: 20,
    seed: 7,
    storage,
    name: "mo",
    reporter: false,
  }).fit();
  return join(storage, "mo");
}

Deno.test({
  name: "the report of a multi-objective experiment draws its Pareto front in Chromium",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const storage = await Deno.makeTempDir({ prefix: "tunebox_pareto_test_" });
    const dir = await moExperiment(storage);
    const html = await renderReport(dir);
    const data = embedded(html);
    deepEqual(data.experiment.objectives, [
      { metric: "acc", mode: "max" },
      { metric: "size", mode: "min" },
    ]);
    // The data's front is the ResultGrid's.
    const front = (await ResultGrid.load(dir)).paretoFront().map((t) => t.id);
    deepEqual(data.trials.filter((t) => t.pareto).map((t) => t.id), front);
    ok(front.length >= 2 && front.length < 20);
    const file = join(dir, "report.html");
    await Deno.writeTextFile(file, html);
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const problems = watchConsole(page);
      await page.goto(`file://${file}`);
      await page.waitForFunction(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).__tunebox?.renders > 0
      );
      const counts = await chartCounts(page);
      // The others, the front, and the line joining the front.
      deepEqual(counts.pareto, [20 - front.length, front.length, front.length]);
      equal(await page.isVisible("#pareto-section"), true);
      deepEqual(problems, []);
    } finally {
      await browser.close();
      await Deno.remove(storage, { recursive: true });
    }
  },
});

Deno.test("a single-objective report has no Pareto data", async () => {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_pareto_test_" });
  await new Tuner({
    trainable: async (c, session) => {
      await session.report({ acc: c.x });
    },
    space: { x: uniform(0, 1) },
    metric: "acc",
    mode: "max",
    numSamples: 3,
    seed: 1,
    storage,
    name: "so",
    reporter: false,
  }).fit();
  const data = embedded(await renderReport(join(storage, "so")));
  equal(data.experiment.objectives, undefined);
  ok(data.trials.every((t) => t.pareto === undefined && t.objectives === undefined));
  await Deno.remove(storage, { recursive: true });
});
