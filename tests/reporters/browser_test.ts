// The report in a real browser: headless Chromium (Debian's package) driven by playwright-core.
// Set TUNEBOX_SCREENSHOT=docs/report.png to refresh the README's screenshot.
import { deepEqual, equal, ok } from "#assert";
import { join } from "node:path";
import { renderReport } from "../../plugins/reporters/html.ts";
import { choice, Tuner, uniform } from "../../mod.ts";
import type { ReportData } from "../../plugins/reporters/_html_data.ts";
import {
  branchExperiment,
  pbtExperiment,
  sandboxedExperiment,
  stoppingExperiment,
} from "../fixtures/report/experiments.ts";
import { chartCounts, launchChromium, watchConsole } from "./_browser.ts";

async function reportsOf(dir: string, id: string): Promise<number> {
  try {
    return (await Deno.readTextFile(join(dir, id, "result.jsonl"))).split("\n").filter((l) =>
      l.trim()
    )
      .length;
  } catch {
    return 0;
  }
}

function embedded(html: string): ReportData {
  const m = /<script id="tunebox-data" type="application\/json">(.*?)<\/script>/s.exec(html);
  if (!m) throw new Error("the report does not embed its data");
  return JSON.parse(m[1]);
}

Deno.test({
  name:
    "the report loads in Chromium without errors, every chart has one point per trial or report, the table sorts",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const storage = await Deno.makeTempDir({ prefix: "tunebox_browser_test_" });
    const browser = await launchChromium();
    try {
      const experiments = [
        await stoppingExperiment(storage),
        await pbtExperiment(storage),
        await sandboxedExperiment(storage),
        await branchExperiment(storage),
      ];
      for (const dir of experiments) {
        await t.step(dir.split("/").at(-1)!, async () => {
          const file = join(dir, "report.html");
          const html = await renderReport(dir);
          await Deno.writeTextFile(file, html);
          const data = embedded(html);
          const page = await browser.context.newPage();
          const problems = watchConsole(page);
          await page.goto(`file://${file}`);
          await page.waitForFunction(() =>
            // deno-lint-ignore no-explicit-any
            (globalThis as any).__tunebox?.renders > 0
          );
          const counts = await chartCounts(page);

          // Learning curves: one series per trial that reported, one point per report.
          const reporting = data.trials.filter((t) => t.iterations.length);
          const reports = await Promise.all(reporting.map((t) => reportsOf(dir, t.id)));
          deepEqual(counts.curves, reports);
          ok(reports.reduce((a, b) => a + b, 0) > 0);
          // Parallel coordinates, scatter, best so far: one point per trial with a metric.
          const scored = data.trials.filter((t) => t.best !== null);
          deepEqual(counts.parallel, [scored.length]);
          for (const a of data.axes) {
            deepEqual(counts[`scatter:${a.key}`], [
              scored.filter((t) => t.params[a.key] !== null).length,
            ]);
          }
          deepEqual(counts.best, [scored.length, scored.length]);
          if (scored.length >= 5) deepEqual(counts.importance, [data.axes.length]);
          else equal(counts.importance, undefined);
          if (data.exploits.length) {
            // Lineage: every report of every trial, and one arrow per exploit.
            deepEqual(counts.lineage, [...reports, ...data.exploits.map(() => 2)]);
          } else {
            equal(counts.lineage, undefined);
            equal(await page.isVisible("#lineage-section"), false);
          }

          // Hovering a point of a learning curve shows that trial's config.
          await page.evaluate(() => {
            // deno-lint-ignore no-explicit-any
            const c = (globalThis as any).__tunebox.charts.curves;
            c.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: 0 });
          });
          const first = reporting[0];
          const key = Object.keys(first.config)[0];
          const tip = await page.locator("table.tip").first().locator("xpath=..").innerText();
          ok(tip.includes(first.id) && tip.includes(key), `tooltip: ${tip}`);

          // The table: one row per trial; sorting by the best metric, then the other way.
          const ids = () =>
            page.$$eval("#trials tbody tr", (rows) => rows.map((r) => r.getAttribute("data-id")));
          equal((await ids()).length, data.trials.length);
          const mode = data.experiment.mode;
          const byBest = (dir: number) =>
            [...data.trials].sort((a, b) => {
              if (a.best === null || b.best === null) {
                return a.best === b.best ? 0 : a.best === null ? 1 : -1;
              }
              return (a.best - b.best) * dir;
            }).map((t) => t.id);
          await page.click('#trials th[data-key="best"]');
          deepEqual(await ids(), byBest(1));
          await page.click('#trials th[data-key="best"]');
          deepEqual(await ids(), byBest(-1));
          ok(mode === "min" || mode === "max");
          await page.click('#trials th[data-key="id"]');
          deepEqual(await ids(), data.trials.map((t) => t.id).sort());
          // The trial link points at its folder.
          equal(
            await page.getAttribute(`#trials tr[data-id="${first.id}"] a`, "href"),
            `${first.id}/`,
          );

          deepEqual(problems, []);
          const shot = Deno.env.get("TUNEBOX_SCREENSHOT");
          if (dir === experiments[0]) {
            await page.click('#trials th[data-key="best"]');
            await page.screenshot({
              path: shot ?? join(storage, "report.png"),
              fullPage: true,
            });
          }
          await page.close();
        });
      }

      await t.step("config values and errors with markup are shown as text", async () => {
        const evil =
          '</script><script>globalThis.__pwned = 1</script><img src=x onerror="globalThis.__pwned = 2">';
        await new Tuner({
          trainable: async (config, session) => {
            await session.report({ loss: config.x });
            if (config.x > 0.5) throw new Error(evil);
          },
          space: { x: uniform(0, 1), tag: choice([evil, "plain"]) },
          metric: "loss",
          mode: "min",
          numSamples: 6,
          seed: 4,
          reporter: false,
          storage,
          name: "markup",
        }).fit();
        const file = join(storage, "markup", "report.html");
        await Deno.writeTextFile(file, await renderReport(join(storage, "markup")));
        const page = await browser.context.newPage();
        const problems = watchConsole(page);
        await page.goto(`file://${file}`);
        await page.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).__tunebox?.renders > 0
        );
        // deno-lint-ignore no-explicit-any
        equal(await page.evaluate(() => (globalThis as any).__pwned), undefined);
        const cells = await page.$$eval(
          "#trials tbody td",
          (tds) => tds.map((td) => td.textContent),
        );
        ok(cells.some((c) => c === evil), "the config value is shown as text");
        ok(cells.some((c) => c?.startsWith("Error: </script>")), "the error is shown as text");
        deepEqual(problems, []);
        await page.close();
      });
    } finally {
      await browser.close();
      await Deno.remove(storage, { recursive: true }).catch(() => {});
    }
  },
});
