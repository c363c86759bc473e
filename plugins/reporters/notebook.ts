/**
 * Tunebox in a notebook (Deno's Jupyter kernel, `deno jupyter`): the live trial table as an HTML
 * table updated in place (one output, `display_id` updates: no ANSI codes, no scroll flood), a
 * progress bar (trials done of the total, elapsed time, best so far), and the rich display of
 * results — `results` alone shows the summary table, `await notebookPlot(results)` (or
 * `results.plot()`) the report's charts inline, offline.
 *
 * In the kernel, `new Tuner({...}).fit()` picks {@linkcode notebookReporter} by itself.
 *
 * @example
 * ```ts ignore
 * import { loguniform, Tuner } from "jsr:@tunebox/tunebox";
 * const results = await new Tuner({
 *   trainable: async (config, session) => {
 *     for (let step = 0; step < 10; step++) await session.report({ loss: config.lr / (step + 1) });
 *   },
 *   space: { lr: loguniform(1e-4, 1e-1) },
 *   metric: "loss",
 *   mode: "min",
 *   numSamples: 20,
 * }).fit();   // the cell shows the live table and progress bar
 * results;     // the summary table
 * ```
 *
 * @module
 */

import type { Callback, ExperimentStart, TrialReport } from "../../core/plugin.ts";
import { inJupyter } from "./_jupyter.ts";
import { parameters } from "../../core/space.ts";
import type { JsonValue, Mode, TrialSnapshot } from "../../core/trial.ts";
import type { ResultGrid, TrialInfo } from "../../core/results.ts";
import { flatten } from "../../core/result_writer.ts";
import { printable } from "../../core/protocol.ts";

export { inJupyter };

/** A Jupyter MIME bundle: MIME type -> data. */
export type MediaBundle = Record<string, unknown>;

/** Sends one message on the kernel's IOPub channel (`Deno.jupyter.broadcast`'s shape). */
export type Broadcast = (msgType: string, content: Record<string, unknown>) => Promise<void>;

function kernelBroadcast(): Broadcast {
  const j = (Deno as unknown as { jupyter: { broadcast: Broadcast } }).jupyter;
  return (t, c) => j.broadcast(t, c);
}

/** Options of {@linkcode notebookReporter}. */
export interface NotebookReporterOptions {
  /** Parameter columns (config keys joined by `/`), or a map key -> header. @default the first 5 tunable parameters */
  readonly parameterColumns?: readonly string[] | Readonly<Record<string, string>>;
  /** Metric columns, or a map key -> header. @default the experiment's metric */
  readonly metricColumns?: readonly string[] | Readonly<Record<string, string>>;
  /** At most this many rows (the running ones, then the best by the metric). @default 20 */
  readonly maxRows?: number;
  /** Milliseconds between updates of the output. @default 500 */
  readonly intervalMs?: number;
  /** How many trials the experiment will run (for the progress bar); unknown: no total. */
  readonly totalTrials?: number;
  /** Where the display messages go. @default Deno.jupyter.broadcast */
  readonly broadcast?: Broadcast;
}

interface Row {
  trial: TrialSnapshot;
  metrics: Record<string, JsonValue>;
}

// Everything shown comes from trials (ids, configs, errors): escaped for HTML, and control
// characters made visible as in the terminal table.
const esc = (s: string): string => printable(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6)
      ? v.toExponential(3)
      : v.toPrecision(5).replace(/\.?0+$/, "");
  }
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 40 ? s.slice(0, 39) + "…" : s;
}

function seconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const STYLE = `<style>
.tunebox-nb { font: 13px/1.4 system-ui, sans-serif; }
.tunebox-nb table { border-collapse: collapse; margin-top: 6px; }
.tunebox-nb th, .tunebox-nb td { padding: 2px 8px; border-bottom: 1px solid #e3e6ec; text-align: right; white-space: nowrap; }
.tunebox-nb th { background: #fafbfc; }
.tunebox-nb td.l, .tunebox-nb th.l { text-align: left; }
.tunebox-nb .bar { width: 320px; height: 10px; background: #eef0f4; border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
.tunebox-nb .bar > div { height: 100%; background: #3b528b; }
.tunebox-nb .st-error { color: #a8231a; }
.tunebox-nb .st-running { color: #17733b; }
</style>`;

/**
 * A callback that shows the experiment in a notebook cell: a progress bar (trials done of the
 * total, elapsed, best so far) above the table of trials (id, status, parameters, metrics,
 * iterations, time), in one HTML output updated in place.
 *
 * @param options columns, rows, update interval, the total for the progress bar.
 * @returns the reporter callback.
 * @example
 * ```ts
 * import { notebookReporter } from "./notebook.ts";
 * const reporter = notebookReporter({ metricColumns: ["val_loss", "val_acc"], totalTrials: 20 });
 * ```
 */
export function notebookReporter(options: NotebookReporterOptions = {}): Callback {
  const maxRows = options.maxRows ?? 20;
  const interval = options.intervalMs ?? 500;
  const rows = new Map<string, Row>();
  let broadcast: Broadcast | undefined = options.broadcast;
  let metric = "", mode: Mode = "min", name = "";
  let params: [string, string][] = [], metrics: [string, string][] = [];
  let start = performance.now(), lastDraw = 0, displayId = "", shown = false;
  let pending: Promise<void> = Promise.resolve();

  const cols = (
    c: NotebookReporterOptions["parameterColumns"] | undefined,
    fallback: string[],
  ): [string, string][] =>
    !c ? fallback.map((k) => [k, k]) : Array.isArray(c) ? c.map((k) => [k, k]) : Object.entries(c);

  const score = (r: Row) => {
    const v = r.metrics[metric];
    return typeof v === "number" && Number.isFinite(v) ? (mode === "min" ? v : -v) : Infinity;
  };

  const html = (final: boolean): string => {
    const all = [...rows.values()];
    const done = all.filter((r) => r.trial.status === "terminated" || r.trial.status === "error")
      .length;
    const total = options.totalTrials !== undefined && Number.isFinite(options.totalTrials)
      ? Math.max(options.totalTrials, all.length)
      : undefined;
    const best = all.filter((r) => score(r) !== Infinity).sort((a, b) => score(a) - score(b))[0];
    const counts = new Map<string, number>();
    for (const r of all) counts.set(r.trial.status, (counts.get(r.trial.status) ?? 0) + 1);
    const running = all.filter((r) => r.trial.status === "running");
    const rest = all.filter((r) => r.trial.status !== "running").sort((a, b) =>
      score(a) - score(b)
    );
    const list = [...running, ...rest].slice(0, maxRows);
    const frac = total ? done / total : final ? 1 : 0;
    const head = [
      `<th class="l">Trial</th>`,
      `<th class="l">status</th>`,
      ...params.map(([, h]) => `<th>${esc(h)}</th>`),
      ...metrics.map(([, h]) => `<th>${esc(h)}</th>`),
      `<th>iter</th>`,
      `<th>time (s)</th>`,
    ].join("");
    const body = list.map((r) => {
      const cfg = flatten(r.trial.config);
      return `<tr data-trial="${esc(r.trial.id)}"><td class="l">${esc(r.trial.id)}</td>` +
        `<td class="l st-${esc(r.trial.status)}">${esc(r.trial.status)}</td>` +
        params.map(([k]) => `<td>${esc(cell(cfg[k]))}</td>`).join("") +
        metrics.map(([k]) => `<td>${esc(cell(r.metrics[k]))}</td>`).join("") +
        `<td>${r.trial.iteration}</td><td>${esc(cell(r.metrics.time_total_s))}</td></tr>`;
    }).join("");
    const elapsed = (performance.now() - start) / 1000;
    return `${STYLE}<div class="tunebox-nb" data-done="${done}" data-total="${
      total ?? ""
    }" data-final="${final}">
<div><b>${esc(name)}</b> — <span class="bar" title="${done} of ${
      total ?? "?"
    } trials"><div style="width:${
      (100 * Math.min(1, frac)).toFixed(1)
    }%"></div></span> <span class="progress">${done}/${total ?? "?"} trials${
      final ? ", finished" : ""
    }</span> · <span class="elapsed">${seconds(elapsed)}</span> · <span class="best">${
      best
        ? `best ${esc(metric)} = ${esc(cell(best.metrics[metric]))} (${esc(best.trial.id)})`
        : `no ${esc(metric)} yet`
    }</span> · ${esc([...counts].map(([s, n]) => `${n} ${s}`).join(", ") || "starting")}</div>
<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${
      all.length > list.length ? `<div>… ${all.length - list.length} more trials</div>` : ""
    }</div>`;
  };

  const send = (final: boolean) => {
    if (!broadcast) return;
    const b = broadcast;
    const text = `${name}: ${rows.size} trials`;
    const content = {
      data: { "text/html": html(final), "text/plain": text },
      metadata: {},
      transient: { display_id: displayId },
    };
    const type = shown ? "update_display_data" : "display_data";
    shown = true;
    // Messages go out in order; a failed one (kernel gone) never breaks the experiment.
    pending = pending.then(() => b(type, content)).catch(() => {});
  };
  const draw = (force: boolean, final = false) => {
    const now = performance.now();
    if (!force && now - lastDraw < interval) return;
    lastDraw = now;
    send(final);
  };
  const update = (trial: TrialSnapshot, result?: Readonly<Record<string, JsonValue>>) => {
    const prev = rows.get(trial.id);
    rows.set(trial.id, { trial, metrics: result ? flatten(result) : prev?.metrics ?? {} });
  };

  return {
    name: "notebook",
    onExperimentStart(e: ExperimentStart) {
      broadcast ??= inJupyter() ? kernelBroadcast() : undefined;
      metric = e.metric;
      mode = e.mode;
      name = e.name;
      start = performance.now();
      displayId = `tunebox-${crypto.randomUUID()}`;
      shown = false;
      const tunable = parameters(e.space).filter((p) =>
        !p.condition && p.domain.kind !== "sample_from"
      ).map((p) => p.path.join("/"));
      params = cols(options.parameterColumns, tunable.slice(0, 5));
      metrics = cols(options.metricColumns, [e.metric]);
      draw(true);
    },
    onTrialStart(e) {
      update(e.trial);
      draw(false);
    },
    onReport(e: TrialReport) {
      update(e.trial, e.result);
      draw(false);
    },
    onTrialEnd(e) {
      update(e.trial);
      draw(false);
    },
    async onExperimentEnd(e) {
      for (const t of e.trials) update(t);
      draw(true, true);
      await pending;
    },
  };
}

/** A piece of HTML that Deno's Jupyter kernel displays as such (`text/html`). */
export class NotebookHtml {
  /** The HTML. */
  readonly html: string;
  /** A plain-text stand-in for frontends without HTML. */
  readonly text: string;

  /** Wraps `html`; `text` is what frontends without HTML show. */
  constructor(html: string, text: string) {
    this.html = html;
    this.text = text;
  }

  /** The MIME bundle the kernel sends (`Deno.jupyter.$display`). */
  [Symbol.for("Jupyter.display")](): MediaBundle {
    return { "text/html": this.html, "text/plain": this.text };
  }
}

/**
 * The summary of results as notebook HTML: the experiment's metric, trials by status, the best
 * trial and its config, then the table of trials, best first.
 *
 * @param grid the results (`Tuner.fit()` or `ResultGrid.load()`).
 * @param options at most `maxRows` rows (default 50).
 * @returns the MIME bundle: `text/html` and `text/plain`.
 * @example
 * ```ts ignore
 * import { ResultGrid } from "../../core/results.ts";
 * import { resultGridBundle } from "./notebook.ts";
 * const bundle = resultGridBundle(await ResultGrid.load("tunebox_results/my-exp"));
 * ```
 */
export function resultGridBundle(
  grid: ResultGrid,
  options: { maxRows?: number } = {},
): MediaBundle {
  const maxRows = options.maxRows ?? 50;
  const name = grid.path.split("/").filter(Boolean).at(-1) ?? grid.path;
  const value = (t: TrialInfo): number | undefined => {
    const v = t.metrics ? flatten(t.metrics)[grid.metric] : undefined;
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
  };
  const sign = grid.mode === "min" ? 1 : -1;
  const sorted = [...grid.trials].sort((a, b) =>
    (value(a) === undefined ? Infinity : sign * value(a)!) -
    (value(b) === undefined ? Infinity : sign * value(b)!)
  );
  // The parameters that vary between trials (constants such as epochs or a data folder are the
  // same in every row); all of them when none varies.
  const all = [...new Set(grid.trials.flatMap((t) => Object.keys(flatten(t.config))))];
  const varying = all.filter((k) =>
    new Set(grid.trials.map((t) => JSON.stringify(flatten(t.config)[k] ?? null))).size > 1
  );
  const keys = (varying.length ? varying : all).slice(0, 8);
  const counts = new Map<string, number>();
  for (const t of grid.trials) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  let best: (TrialInfo & { score: number }) | undefined;
  try {
    best = grid.best(grid.metric);
  } catch { /* none yet */ }
  const countText = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
  const rows = sorted.slice(0, maxRows).map((t) => {
    const cfg = flatten(t.config);
    return `<tr data-trial="${esc(t.id)}"><td class="l">${esc(t.id)}</td>` +
      `<td class="l st-${esc(t.status)}">${esc(t.status)}</td>` +
      keys.map((k) => `<td>${esc(cell(cfg[k]))}</td>`).join("") +
      `<td>${esc(cell(value(t)))}</td><td>${t.iterations}</td>` +
      `<td class="l">${esc((t.error ?? t.reason ?? "").split("\n")[0].slice(0, 80))}</td></tr>`;
  }).join("");
  const html = `${STYLE}<div class="tunebox-nb tunebox-results">
<div><b>${esc(name)}</b> — ${grid.trials.length} trials (${esc(countText || "none")})${
    grid.interrupted ? ", interrupted" : ""
  }; metric <code>${esc(grid.metric)}</code> (${
    grid.mode === "min" ? "minimised" : "maximised"
  })</div>
<div class="best">${
    best
      ? `Best trial <b>${esc(best.id)}</b>: ${esc(grid.metric)} = <b>${
        esc(cell(best.score))
      }</b> — ${esc(JSON.stringify(best.config))}`
      : `No trial reported a finite ${esc(grid.metric)}.`
  }</div>
<table><thead><tr><th class="l">Trial</th><th class="l">status</th>${
    keys.map((k) => `<th>${esc(k)}</th>`).join("")
  }<th>${
    esc(grid.metric)
  }</th><th>iter</th><th class="l">error / stop reason</th></tr></thead><tbody>${rows}</tbody></table>${
    sorted.length > maxRows ? `<div>… ${sorted.length - maxRows} more trials</div>` : ""
  }</div>`;
  const text = `${name}: ${grid.trials.length} trials (${countText || "none"})` +
    (best ? `, best ${best.id} ${grid.metric}=${cell(best.score)}` : "");
  return { "text/html": html, "text/plain": text };
}

/** Options of {@linkcode notebookPlot}. */
export interface NotebookPlotOptions {
  /** The frame's height in pixels (the report scrolls inside it). @default 900 */
  readonly height?: number;
}

/**
 * The report's charts inline in a notebook, offline: the HTML report of the results (learning
 * curves, parallel coordinates, metric vs parameters, importance, best so far, lineage, with the
 * metric-axis switch) in a sandboxed frame. What `results.plot()` returns.
 *
 * @param grid the results.
 * @param options the frame's height.
 * @returns an object the kernel displays as HTML.
 * @example
 * ```ts ignore
 * import { ResultGrid } from "../../core/results.ts";
 * import { notebookPlot } from "./notebook.ts";
 * await notebookPlot(await ResultGrid.load("tunebox_results/my-exp"));
 * ```
 */
export async function notebookPlot(
  grid: ResultGrid,
  options: NotebookPlotOptions = {},
): Promise<NotebookHtml> {
  // Loaded on demand: the report inlines its charting library (about 640 KiB).
  // A computed specifier: a literal would make every trial that imports mod.ts read the report
  // and its charting library (~640 KiB) at start (Deno's module graph follows literal imports).
  const { resultGridToHtml } = await (import(new URL("./html.ts", import.meta.url).href) as Promise<
    typeof import("./html.ts")
  >);
  const report = await resultGridToHtml(grid);
  const height = options.height ?? 900;
  const srcdoc = report.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  return new NotebookHtml(
    `<iframe class="tunebox-plot" sandbox="allow-scripts" style="width:100%;height:${height}px;border:1px solid #e3e6ec;border-radius:6px" srcdoc="${srcdoc}"></iframe>`,
    `Tunebox report of ${grid.path} (${grid.trials.length} trials): open it in a notebook frontend that shows HTML, or write it with results.toHtml({ outFile })`,
  );
}
