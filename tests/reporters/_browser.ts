/**
 * Headless Chromium for the report tests: Debian's `chromium` package driven by playwright-core.
 * A missing browser fails the test with the install command (never a skip).
 */

import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Where Chromium is; `CHROMIUM_PATH` overrides. */
export const CHROMIUM: string = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** A browser context with a fresh profile; close it with `close()`. */
export async function launchChromium(): Promise<
  { context: BrowserContext; close(): Promise<void> }
> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM} (the browser tests need it): ` +
        `install it with "apt-get install -y chromium", or set CHROMIUM_PATH`,
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "tunebox_chromium_" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Collects console errors and warnings, uncaught page errors and failed requests of a page. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => {
    // The event stream is cut when a live page closes; that is not a problem.
    if (!r.url().endsWith("/api/events")) problems.push(`requestfailed: ${r.url()}`);
  });
  return problems;
}

/** Data points of every chart on the page: chart name -> points per series. */
export function chartCounts(page: Page): Promise<Record<string, number[]>> {
  return page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const t = (globalThis as any).__tunebox;
    const out: Record<string, number[]> = {};
    // deno-lint-ignore no-explicit-any
    const count = (c: any) => c.getOption().series.map((s: { data: unknown[] }) => s.data.length);
    for (const [k, c] of Object.entries(t.charts)) {
      if (k === "scatter") {
        for (const [key, sc] of Object.entries(c as Record<string, unknown>)) {
          out[`scatter:${key}`] = count(sc);
        }
      } else out[k] = count(c);
    }
    return out;
  });
}
