/**
 * The report page: one HTML document with its style, ECharts and the page script inlined, and
 * the report data embedded as JSON (static report) or fetched from the server (dashboard).
 *
 * @module
 */

import { ECHARTS_JS } from "./_echarts_bundle.ts";
import { tuneboxClient } from "./_html_client.ts";
import type { ReportData } from "./_html_data.ts";

const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #e3e6ec; --accent: #3b528b; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: #f6f7f9; }
#app { max-width: 1280px; margin: 0 auto; padding: 16px 24px 40px; }
header { display: flex; align-items: baseline; gap: 16px; }
h1 { font-size: 22px; margin: 4px 0 8px; }
h2 { font-size: 17px; margin: 0 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin: 14px 0; }
nav { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0; }
nav a, a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
#warnings { color: #8a5300; margin: 6px 0; padding-left: 20px; }
#warnings:empty { display: none; }
#live { font-size: 13px; color: var(--muted); }
#yscale { font-size: 13px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 14px; }
#yscale label { color: var(--fg); cursor: pointer; }
#yscale label:has(input:disabled) { color: var(--muted); cursor: not-allowed; }
#live.on::before { content: "● "; color: #1a9850; }
#live.off::before { content: "● "; color: #d73027; }
.note { color: var(--muted); margin: 0 0 8px; font-size: 13px; }
.chart { width: 100%; height: 340px; }
.chart.tall { height: 440px; }
.chart.small { height: 260px; }
#scatter-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 10px; }
.scroll { overflow-x: auto; max-height: 520px; overflow-y: auto; }
table#trials { border-collapse: collapse; width: 100%; font-size: 13px; }
#trials th, #trials td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
#trials th { position: sticky; top: 0; background: #fafbfc; cursor: pointer; user-select: none; }
#trials th.asc::after { content: " ▲"; font-size: 10px; }
#trials th.desc::after { content: " ▼"; font-size: 10px; }
#trials .num { text-align: right; font-variant-numeric: tabular-nums; }
#trials td:last-child { white-space: normal; min-width: 200px; max-width: 420px; }
#trials tr:hover td { background: #f3f6fb; }
.err { color: #b0241b; }
.st { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; background: #eef0f4; }
.st-terminated, .st-finished { background: #e3eef8; color: #1f5f93; }
.st-running { background: #e3f4e8; color: #17733b; }
.st-error, .st-failed { background: #fbe5e3; color: #a8231a; }
.st-paused, .st-interrupted { background: #faf1d6; color: #7a5d00; }
table.tip { border-collapse: collapse; margin-top: 4px; font-size: 12px; }
table.tip td { padding: 0 8px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; }
`;

/** Options of {@linkcode pageHtml}. */
export interface PageOptions {
  /** The page follows the server (dashboard) instead of drawing embedded data. */
  readonly live?: { readonly eventsUrl: string };
  /** The page title before the data arrives. */
  readonly title?: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("<", "\\u003c")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

/** The page's script source (the client function, called with the data and options). */
export const CLIENT_JS: string = tuneboxClient.toString().replaceAll("</script", "<\\/script");

/**
 * The HTML document: embedded data (a self-contained report) or a live page.
 *
 * @param data the report data, or null for a live page.
 * @param options live endpoints and title.
 * @returns the HTML text.
 */
export function pageHtml(data: ReportData | null, options: PageOptions = {}): string {
  const title = options.title ?? (data ? `Tunebox — ${data.experiment.name}` : "Tunebox");
  const opts = options.live ? { live: true, ...options.live } : { live: false };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tunebox">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main id="app"><p>Loading…</p><noscript>This report needs JavaScript to draw its table and charts.</noscript></main>
<script>${ECHARTS_JS}</script>
<script id="tunebox-data" type="application/json">${data ? scriptJson(data) : "null"}</script>
<script>
(${CLIENT_JS})(JSON.parse(document.getElementById("tunebox-data").textContent), ${
    scriptJson(opts)
  });
</script>
</body>
</html>
`;
}
