// Plots that survive outliers: one diverged trial (val_loss 14.5 among 0.1-0.5) must not squash
// the learning curves, the scatter and the best-so-far charts, in the static report and the live
// dashboard (the notebook view embeds the same report). Headless Chromium, real experiment.
import { deepEqual, equal, ok } from "#assert";
import { join } from "node:path";
import type { Frame, Page } from "playwright-core";
import { ResultGrid } from "../../core/results.ts";
import { renderReport } from "../../plugins/reporters/html.ts";
import { serveDashboard } from "../../plugins/reporters/dashboard.ts";
import { DIVERGED_LOSS, outlierExperiment } from "../fixtures/report/experiments.ts";
import { launchChromium, watchConsole } from "./_browser.ts";

/** What a chart draws on its metric axis, read from ECharts itself after layout. */
interface AxisView {
  /** "value" or "log". */
  type: string;
  /** The axis extent ECharts drew. */
  extent: [number, number];
  /** Every point's value on the metric axis and whether it is marked as clipped. */
  points: { y: number; clipped: boolean; raw: number | undefined }[];
  /** The pixel height of the normal trials' values (all but the diverged one). */
  normalSpreadPx: number;
  /** The plot area's height in pixels. */
  plotHeightPx: number;
}

function axisView(page: Page | Frame, chart: string, normalIds: string[]): Promise<AxisView> {
  return page.evaluate(({ chart, normalIds }) => {
    // deno-lint-ignore no-explicit-any
    const t = (globalThis as any).__tunebox;
    const c = chart.startsWith("scatter:") ? t.charts.scatter[chart.slice(8)] : t.charts[chart];
    const axis = c.getModel().getComponent("yAxis").axis;
    const option = c.getOption();
    const points: { y: number; clipped: boolean; raw: number | undefined }[] = [];
    const normal: number[] = [];
    option.series.forEach((s: { type: string; name: string; data: unknown[] }) => {
      if (chart === "best" && s.type === "line") return;
      for (const d of s.data) {
        // deno-lint-ignore no-explicit-any
        const item = d as any;
        const value = Array.isArray(item) ? item : item.value;
        const y = value[1];
        if (typeof y !== "number") continue;
        points.push({ y, clipped: item.symbol === "arrow", raw: item.raw });
        const id = chart === "curves" ? s.name : item.name;
        if (normalIds.includes(id)) normal.push(y);
      }
    });
    const px = normal.map((y) => c.convertToPixel({ yAxisIndex: 0 }, y));
    const grid = c.getModel().getComponent("grid").coordinateSystem.getRect();
    return {
      type: axis.type,
      extent: axis.scale.getExtent(),
      points,
      normalSpreadPx: Math.max(...px) - Math.min(...px),
      plotHeightPx: grid.height,
    };
  }, { chart, normalIds });
}

/** Waits for the first drawing; a page error fails at once with its message. */
async function drawn(page: Page | Frame, problems: string[]): Promise<void> {
  await page.waitForFunction(() =>
    // deno-lint-ignore no-explicit-any
    (globalThis as any).__tunebox?.renders > 0 || (globalThis as any).__tunebox?.errors.length
  );
  deepEqual(problems, []);
}

async function checkPage(page: Page | Frame, normalIds: string[], params: string[]): Promise<void> {
  const charts = ["curves", "best", ...params.map((p) => `scatter:${p}`)];
  // Default: the robust range. The normal trials fill the plot; the diverged values are drawn
  // at the top edge as marked points, none outside the axis.
  for (const name of charts) {
    const v = await axisView(page, name, normalIds);
    equal(v.type, "value", name);
    ok(v.extent[1] < 2, `${name}: the robust range ends at ${v.extent[1]}, below the outlier`);
    const clipped = v.points.filter((p) => p.clipped);
    equal(clipped.length, name === "curves" ? 6 : 1, `${name}: clipped points`);
    for (const p of clipped) equal(p.y, v.extent[1], `${name}: a clipped point sits at the edge`);
    for (const p of v.points) ok(p.y <= v.extent[1] && p.y >= v.extent[0], `${name}: ${p.y}`);
    if (name === "curves") {
      deepEqual(clipped.map((p) => p.raw), [0, 1, 2, 3, 4, 5].map((k) => DIVERGED_LOSS + 0.01 * k));
    }
    ok(
      v.normalSpreadPx > 0.5 * v.plotHeightPx,
      `${name}: the normal trials span ${v.normalSpreadPx} of ${v.plotHeightPx} px`,
    );
  }
  const note = await page.innerText("#curves-note");
  ok(
    note.includes("6 report(s) outside the robust range are drawn at its edge as orange arrows"),
    note,
  );

  // Hovering a clipped point tells its real value.
  await page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const c = (globalThis as any).__tunebox.charts.curves;
    // deno-lint-ignore no-explicit-any
    const s = c.getOption().series.findIndex((x: any) => x.data.some((d: any) => d.raw));
    c.dispatchAction({ type: "showTip", seriesIndex: s, dataIndex: 1 });
  });
  const tip = await page.locator("table.tip").first().locator("xpath=..").innerText();
  ok(tip.includes("iteration 2: val_loss = 14.51 (outside the range: drawn at its edge)"), tip);

  // Full range: the outlier is on the axis and nothing is marked; the normal trials are squashed.
  await page.check('#yscale input[value="full"]');
  for (const name of charts) {
    const v = await axisView(page, name, normalIds);
    ok(v.extent[1] >= DIVERGED_LOSS, `${name}: full range ends at ${v.extent[1]}`);
    equal(v.points.filter((p) => p.clipped).length, 0);
    ok(v.normalSpreadPx < 0.1 * v.plotHeightPx, `${name}: squashed to ${v.normalSpreadPx} px`);
  }
  // Log: a log axis that holds every value, the normal trials readable again.
  await page.check('#yscale input[value="log"]');
  for (const name of charts) {
    const v = await axisView(page, name, normalIds);
    equal(v.type, "log", name);
    ok(v.extent[0] <= 0.1 && v.extent[1] >= DIVERGED_LOSS, `${name}: log extent ${v.extent}`);
    equal(v.points.filter((p) => p.clipped).length, 0);
    ok(v.normalSpreadPx > 0.15 * v.plotHeightPx, `${name}: ${v.normalSpreadPx} px on log`);
  }
  ok((await page.innerText("#best-note")).includes("Log scale."));
  // The choice survives a redraw (the dashboard redraws at every change).
  await page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const t = (globalThis as any).__tunebox;
    t.render(t.data);
  });
  equal(await page.isChecked('#yscale input[value="log"]'), true);
  await page.check('#yscale input[value="robust"]');
  equal((await axisView(page, "best", normalIds)).points.filter((p) => p.clipped).length, 1);
}

Deno.test({
  name:
    "one diverged trial does not squash the charts: robust range with marked clipped points, full range and log toggles, in the report, the notebook view and the dashboard",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const storage = await Deno.makeTempDir({ prefix: "tunebox_outlier_test_" });
    const browser = await launchChromium();
    try {
      const dir = await outlierExperiment(storage);
      const html = await renderReport(dir);
      const data = JSON.parse(
        /<script id="tunebox-data" type="application\/json">(.*?)<\/script>/s.exec(html)![1],
      );
      const diverged = data.trials.find((x: { config: { lr: number } }) => x.config.lr === 0.5);
      const normalIds: string[] = data.trials.map((x: { id: string }) => x.id).filter((
        id: string,
      ) => id !== diverged.id);
      equal(normalIds.length, 7);

      await t.step("the HTML report", async () => {
        const file = join(dir, "report.html");
        await Deno.writeTextFile(file, html);
        const page = await browser.context.newPage();
        const problems = watchConsole(page);
        await page.goto(`file://${file}`);
        await drawn(page, problems);
        await checkPage(page, normalIds, ["lr"]);
        deepEqual(problems, []);
        await page.close();
      });

      await t.step("the notebook view (results.plot())", async () => {
        const view = await (await ResultGrid.load(dir)).plot();
        const file = join(dir, "notebook.html");
        await Deno.writeTextFile(file, `<!doctype html><body>${view.html}</body>`);
        const page = await browser.context.newPage();
        const problems = watchConsole(page);
        await page.goto(`file://${file}`);
        const frame = await (await page.waitForSelector("iframe.tunebox-plot")).contentFrame();
        if (!frame) throw new Error("the plot's iframe has no frame");
        await drawn(frame, problems);
        await checkPage(frame, normalIds, ["lr"]);
        deepEqual(problems, []);
        await page.close();
      });

      await t.step("the dashboard", async () => {
        const ac = new AbortController();
        const d = await serveDashboard(dir, { port: 0, signal: ac.signal, onListen: () => {} });
        try {
          const page = await browser.context.newPage();
          const problems = watchConsole(page);
          await page.goto(d.url);
          await drawn(page, problems);
          await checkPage(page, normalIds, ["lr"]);
          deepEqual(problems, []);
          await page.close();
        } finally {
          ac.abort();
          await d.finished;
        }
      });
    } finally {
      await browser.close();
      await Deno.remove(storage, { recursive: true }).catch(() => {});
    }
  },
});
