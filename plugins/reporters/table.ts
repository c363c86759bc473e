/**
 * The live trial table: redrawn in place in a terminal, printed as periodic plain summaries
 * otherwise (CI logs), and a final "best trial" summary.
 *
 * @module
 */

import { lossVector, nonDominatedSort } from "../../core/pareto.ts";
import type { Callback, ExperimentStart, TrialReport } from "../../core/plugin.ts";
import { parameters } from "../../core/space.ts";
import type { JsonValue, Mode, TrialSnapshot } from "../../core/trial.ts";
import { flatten } from "../../core/result_writer.ts";
import { printable } from "../../core/protocol.ts";
import { inJupyter } from "./_jupyter.ts";

// In Deno's Jupyter kernel the table is the notebook view: its module loads here, and only there
// (a computed specifier, which Deno's module graph does not follow: every other process that
// imports mod.ts, a trial's too, never reads it).
const notebook: typeof import("./notebook.ts") | undefined = inJupyter()
  ? await import(new URL("./notebook.ts", import.meta.url).href)
  : undefined;

/** Options of {@linkcode tableReporter}. */
export interface TableReporterOptions {
  /** Parameter columns (config keys joined by `/`), or a map key -> header. @default the first 5 tunable parameters */
  readonly parameterColumns?: readonly string[] | Readonly<Record<string, string>>;
  /** Metric columns, or a map key -> header. @default the experiment's metric */
  readonly metricColumns?: readonly string[] | Readonly<Record<string, string>>;
  /** At most this many rows (the best by the metric first, then the running ones). @default 20 */
  readonly maxRows?: number;
  /** Milliseconds between redraws in a terminal; between summaries otherwise: 5x this. @default 1000 */
  readonly intervalMs?: number;
  /** Where to write. @default Deno.stdout */
  readonly write?: (text: string) => void;
  /** Redraw in place (ANSI). @default whether stdout is a terminal */
  readonly live?: boolean;
  /** How many trials the experiment will run: the notebook view's progress bar. */
  readonly totalTrials?: number;
}

interface Row {
  trial: TrialSnapshot;
  metrics: Record<string, JsonValue>;
}

/**
 * A callback that prints the live table of trials: id, status, chosen parameters, chosen
 * metrics, iterations, time.
 *
 * @returns the reporter callback.
 * @example
 * ```ts
 * import { tableReporter } from "./table.ts";
 * const reporter = tableReporter({ parameterColumns: { "optimizer/lr": "lr" }, metricColumns: ["val_loss"] });
 * ```
 */
export function tableReporter(options: TableReporterOptions = {}): Callback {
  // In Deno's Jupyter kernel the table is an HTML table updated in place, with a progress bar.
  if (options.write === undefined && options.live === undefined && notebook && inJupyter()) {
    return notebook.notebookReporter({
      ...(options.parameterColumns ? { parameterColumns: options.parameterColumns } : {}),
      ...(options.metricColumns ? { metricColumns: options.metricColumns } : {}),
      ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}),
      ...(options.totalTrials !== undefined ? { totalTrials: options.totalTrials } : {}),
    });
  }
  const enc = new TextEncoder();
  const write = options.write ?? ((s: string) => Deno.stdout.writeSync(enc.encode(s)));
  const live = options.live ?? Deno.stdout.isTerminal();
  const interval = options.intervalMs ?? 1000;
  const maxRows = options.maxRows ?? 20;
  const rows = new Map<string, Row>();
  let metric = "",
    mode: Mode = "min",
    params: [string, string][] = [],
    metrics: [string, string][] = [];
  let lastDraw = 0, drawnLines = 0, start = performance.now(), name = "";
  // Multi-objective: every objective and its mode (empty for one).
  let goals: readonly string[] = [], goalModes: readonly Mode[] = [];

  const cols = (
    c: TableReporterOptions["parameterColumns"] | undefined,
    fallback: string[],
  ): [string, string][] =>
    !c
      ? fallback.map((k) => [k, shortName(k, fallback)])
      : Array.isArray(c)
      ? c.map((k) => [k, shortName(k, c)])
      : Object.entries(c);

  const render = (final: boolean): string => {
    const all = [...rows.values()];
    const counts = new Map<string, number>();
    for (const r of all) counts.set(r.trial.status, (counts.get(r.trial.status) ?? 0) + 1);
    const score = (r: Row) => {
      const v = r.metrics[metric];
      return typeof v === "number" && Number.isFinite(v) ? (mode === "min" ? v : -v) : Infinity;
    };
    const running = all.filter((r) => r.trial.status === "running");
    const rest = all.filter((r) => r.trial.status !== "running").sort((a, b) =>
      score(a) - score(b)
    );
    const shown = [...running, ...rest].slice(0, maxRows);
    // Trials placed by a cluster executor show their node.
    const nodes = all.some((r) => r.trial.node);
    const header = [
      "Trial",
      "status",
      ...(nodes ? ["node"] : []),
      ...params.map((p) => p[1]),
      ...metrics.map((m) => m[1]),
      "iter",
      "time (s)",
    ];
    const body = shown.map((r) => {
      const cfg = flatten(r.trial.config);
      return [
        r.trial.id,
        r.trial.status,
        ...(nodes ? [r.trial.node ?? ""] : []),
        ...params.map(([k]) => cell(cfg[k])),
        ...metrics.map(([k]) => cell(r.metrics[k])),
        String(r.trial.iteration),
        cell(r.metrics.time_total_s),
      ];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i < (nodes ? 3 : 2) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(
        "  ",
      );
    const secs = ((performance.now() - start) / 1000).toFixed(1);
    const status = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
    const out = [
      `== ${name}: ${all.length} trials (${status || "none yet"}), ${secs} s${
        final ? ", finished" : ""
      } ==`,
      line(header),
      ...body.map(line),
      ...(all.length > shown.length ? [`... ${all.length - shown.length} more trials`] : []),
    ];
    return out.join("\n") + "\n";
  };

  const draw = (force: boolean, final = false) => {
    const now = performance.now();
    if (!force && now - lastDraw < (live ? interval : interval * 5)) return;
    lastDraw = now;
    // Everything in the table may come from a trial: no control codes reach the terminal.
    const text = printable(render(final));
    if (live && drawnLines) write(`\x1b[${drawnLines}F\x1b[J`);
    write(text);
    drawnLines = live ? text.split("\n").length - 1 : 0;
  };

  const update = (trial: TrialSnapshot, result?: Readonly<Record<string, JsonValue>>) => {
    const prev = rows.get(trial.id);
    rows.set(trial.id, { trial, metrics: result ? flatten(result) : prev?.metrics ?? {} });
  };

  return {
    name: "table",
    onExperimentStart(e: ExperimentStart) {
      metric = e.metric;
      mode = e.mode;
      goals = e.metrics && e.metrics.length > 1 ? e.metrics : [];
      goalModes = e.modes ?? goals.map(() => e.mode);
      name = e.name;
      start = performance.now();
      const tunable = parameters(e.space).filter((p) =>
        !p.condition && p.domain.kind !== "sample_from"
      ).map((p) => p.path.join("/"));
      params = cols(options.parameterColumns, tunable.slice(0, 5));
      metrics = cols(options.metricColumns, goals.length ? [...goals] : [e.metric]);
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
    onExperimentEnd(e) {
      // An experiment that never started a trial has nothing to show; its error says why.
      if (!e.trials.length) return;
      for (const t of e.trials) update(t);
      draw(true, true);
      const best = [...rows.values()]
        .filter((r) =>
          typeof r.metrics[metric] === "number" && Number.isFinite(r.metrics[metric] as number)
        )
        .sort((a, b) =>
          (mode === "min" ? 1 : -1) *
          ((a.metrics[metric] as number) - (b.metrics[metric] as number))
        )[0];
      const errors = [...rows.values()].filter((r) => r.trial.status === "error");
      for (const r of errors.slice(0, 20)) {
        write(`  error ${r.trial.id}: ${printable((r.trial.error ?? "").split("\n")[0])}\n`);
      }
      if (goals.length) {
        // Several objectives: no single best; the Pareto front instead.
        const scored = [...rows.values()].map((r) => ({
          r,
          loss: lossVector(r.metrics, goals, goalModes),
        })).filter((x): x is { r: Row; loss: number[] } => x.loss !== undefined);
        const front = (nonDominatedSort(scored.map((x) => x.loss), 1)[0] ?? []).map((i) =>
          scored[i].r
        );
        write(
          front.length
            ? printable(
              `Pareto front (${goals.join(", ")}): ${front.length} trial(s): ${
                front.slice(0, 10).map((r) => r.trial.id).join(", ")
              }${front.length > 10 ? ", ..." : ""}`,
            ) + "\n"
            : `No trial reported finite values of ${goals.join(", ")}.\n`,
        );
      } else if (best) {
        write(
          printable(
            `Best trial ${best.trial.id}: ${metric}=${cell(best.metrics[metric])} config=${
              JSON.stringify(best.trial.config)
            }`,
          ) + "\n",
        );
      } else {
        write(`No trial reported a finite "${metric}".\n`);
      }
    },
  };
}

function cell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6)
      ? v.toExponential(3)
      : v.toPrecision(5).replace(/\.?0+$/, "");
  }
  const s = printable(typeof v === "string" ? v : JSON.stringify(v));
  return s.length > 20 ? s.slice(0, 19) + "…" : s;
}

/** The last path component, or more of the path when the last one is ambiguous; at most 20 chars. */
function shortName(key: string, all: readonly string[]): string {
  const parts = key.split("/");
  let n = 1;
  while (
    n < parts.length &&
    all.filter((k) => k.split("/").slice(-n).join("/") === parts.slice(-n).join("/")).length > 1
  ) n++;
  const s = parts.slice(-n).join("/");
  return s.length > 20 ? `${s.slice(0, 9)}…${s.slice(-10)}` : s;
}
