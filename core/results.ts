/**
 * The results of an experiment: every trial's status, config, last metrics and history, and the
 * best trial by a metric. Built by `Tuner.fit()`, or loaded from a folder with
 * {@linkcode ResultGrid.load}.
 *
 * @module
 */

import type { Config, JsonValue, Mode, TrialResult, TrialStatus } from "./trial.ts";
import { flatten, toCsv } from "./result_writer.ts";
import { TuneError } from "./errors.ts";
import { lossVector, nonDominatedSort } from "./pareto.ts";
import type { NotebookHtml } from "../plugins/reporters/notebook.ts";

/** One trial of a {@linkcode ResultGrid}. */
export interface TrialInfo {
  /** Trial id. */
  readonly id: string;
  /** Final (or current) status. */
  readonly status: TrialStatus;
  /** The config it ran with (the last one, for PBT). */
  readonly config: Config;
  /** Its last result, if it reported. */
  readonly metrics: TrialResult | undefined;
  /** How many reports it made. */
  readonly iterations: number;
  /** The error message of a failed trial. */
  readonly error?: string;
  /** Why it was stopped, when a scheduler or a criterion stopped it. */
  readonly reason?: string;
  /**
   * The trial folder (absent for an in-process trial that needed none: its records are in
   * `trials.jsonl`).
   */
  readonly path: string;
  /** Its latest committed checkpoint folder. */
  readonly checkpoint?: string;
}

/** Which result of each trial `best()` compares. */
export type BestScope = "last" | "all";

/**
 * The trials of an experiment and queries over them.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { ResultGrid } from "./results.ts";
 * const grid = await ResultGrid.load("tunebox_results/my-exp");
 * assert.ok(grid.trials.includes(grid.best()));
 * ```
 */
export class ResultGrid {
  /** The experiment folder. */
  readonly path: string;
  /** The experiment's metric. */
  readonly metric: string;
  /** The experiment's mode. */
  readonly mode: Mode;
  /** Every objective (`metric` first; one entry unless the experiment is multi-objective). */
  readonly metrics: readonly string[];
  /** The mode of each of `metrics`. */
  readonly modes: readonly Mode[];
  /** Every trial, in creation order. */
  readonly trials: readonly TrialInfo[];
  /** True when the experiment was stopped by a signal or the time budget before it finished. */
  readonly interrupted: boolean;
  readonly #histories: ReadonlyMap<string, readonly TrialResult[]>;

  /** Creates a grid; use `Tuner.fit()` or {@linkcode ResultGrid.load} instead. */
  constructor(
    init: {
      path: string;
      metric: string;
      mode: Mode;
      metrics?: readonly string[];
      modes?: readonly Mode[];
      trials: readonly TrialInfo[];
      histories: ReadonlyMap<string, readonly TrialResult[]>;
      interrupted?: boolean;
    },
  ) {
    this.path = init.path;
    this.metric = init.metric;
    this.mode = init.mode;
    this.metrics = init.metrics?.length ? init.metrics : [init.metric];
    this.modes = init.modes?.length === this.metrics.length ? init.modes : [init.mode];
    this.trials = init.trials;
    this.#histories = init.histories;
    this.interrupted = init.interrupted ?? false;
  }

  /** The failed trials and their errors. */
  get errors(): { trialId: string; message: string }[] {
    return this.trials.filter((t) => t.status === "error").map((t) => ({
      trialId: t.id,
      message: t.error ?? "",
    }));
  }

  /** Every result of a trial, in order. */
  history(trialId: string): readonly TrialResult[] {
    const h = this.#histories.get(trialId);
    if (!h) throw new TuneError(`No trial "${trialId}" in this experiment`);
    return h;
  }

  /**
   * The best trial by `metric` (default: the experiment's). `scope: "last"` compares each trial's
   * last result, `"all"` its best result ever (Ray's `get_best_result` scopes). NaN and infinite
   * values are never picked. A multi-objective experiment has no single best: name the metric
   * (its mode is the experiment's for it), or ask for {@linkcode ResultGrid.paretoFront}.
   *
   * @throws {TuneError} when no trial reported a finite value of the metric, or when the
   * experiment has several objectives and no metric is named.
   */
  best(
    metric?: string,
    mode?: Mode,
    scope: BestScope = "last",
  ): TrialInfo & { readonly score: number } {
    if (metric === undefined) {
      if (this.metrics.length > 1) {
        throw new TuneError(
          `This experiment has ${this.metrics.length} objectives (${
            this.metrics.map((m, k) => `${m}: ${this.modes[k]}`).join(", ")
          }), so there is no single best trial: name one with best("${this.metrics[0]}"), ` +
            `or take the trials no other beats in every objective with paretoFront()`,
        );
      }
      metric = this.metric;
    }
    if (mode === undefined) {
      const k = this.metrics.indexOf(metric);
      mode = k >= 0 ? this.modes[k] : this.mode;
    }
    let best: TrialInfo | undefined, bestScore = NaN;
    const better = (a: number, b: number) => Number.isNaN(b) || (mode === "min" ? a < b : a > b);
    for (const t of this.trials) {
      const results = scope === "last"
        ? (t.metrics ? [t.metrics] : [])
        : this.#histories.get(t.id) ?? [];
      for (const r of results) {
        const v = flatten(r)[metric];
        if (typeof v === "number" && Number.isFinite(v) && better(v, bestScore)) {
          [best, bestScore] = [t, v];
        }
      }
    }
    if (!best) {
      const seen = new Set(
        this.trials.flatMap((t) => (t.metrics ? Object.keys(flatten(t.metrics)) : [])),
      );
      throw new TuneError(
        `No trial reported a finite "${metric}"` +
          (seen.size
            ? ` (reported keys: ${[...seen].join(", ")})`
            : this.trials.length
            ? " (no trial reported anything)"
            : " (there are no trials)"),
      );
    }
    return { ...best, score: bestScore };
  }

  /**
   * The Pareto front: the trials whose objectives no other trial beats in every objective at
   * once (no worse in all, better in one), by each trial's last result. Trials without a finite
   * value of every objective are left out. With one objective, it is the best trial and its ties.
   *
   * @param options `metrics`/`modes` to use instead of the experiment's objectives.
   * @returns the non-dominated trials in creation order, each with its `objectives` (the values
   * of the metrics, in order).
   * @example
   * ```ts ignore
   * import assert from "node:assert/strict";
   * import { ResultGrid } from "./results.ts";
   * const grid = await ResultGrid.load("tunebox_results/my-exp");
   * for (const t of grid.paretoFront()) assert.equal(t.objectives.length, grid.metrics.length);
   * ```
   */
  paretoFront(
    options: { readonly metrics?: readonly string[]; readonly modes?: readonly Mode[] } = {},
  ): (TrialInfo & { readonly objectives: readonly number[] })[] {
    const metrics = options.metrics ?? this.metrics;
    const modes = options.modes ??
      (options.metrics
        ? metrics.map((m) => {
          const k = this.metrics.indexOf(m);
          if (k < 0) {
            throw new TuneError(
              `paretoFront: "${m}" is not an objective of this experiment (${
                this.metrics.join(", ")
              }): give its mode in "modes"`,
            );
          }
          return this.modes[k];
        })
        : this.modes);
    if (modes.length !== metrics.length) {
      throw new TuneError(
        `paretoFront: ${metrics.length} metrics but ${modes.length} modes: give one mode per metric`,
      );
    }
    const scored: { t: TrialInfo; loss: number[]; values: number[] }[] = [];
    for (const t of this.trials) {
      if (!t.metrics) continue;
      const flat = flatten(t.metrics);
      const loss = lossVector(flat, metrics, modes);
      if (loss) scored.push({ t, loss, values: metrics.map((m) => flat[m] as number) });
    }
    const front = nonDominatedSort(scored.map((s) => s.loss), 1)[0] ?? [];
    return front.map((i) => ({ ...scored[i].t, objectives: scored[i].values }));
  }

  /** One CSV row per trial: id, status, iterations, `config/...` and the last metrics. */
  toCsv(): string {
    const rows = this.trials.map((t) => {
      const row: Record<string, JsonValue> = {
        trial_id: t.id,
        status: t.status,
        iterations: t.iterations,
      };
      for (const [k, v] of Object.entries(flatten(t.config))) row[`config/${k}`] = v;
      for (const [k, v] of Object.entries(t.metrics ? flatten(t.metrics) : {})) {
        if (k !== "trial_id") row[k] = v;
      }
      if (t.error) row.error = t.error;
      return row;
    });
    return toCsv(rows);
  }

  /**
   * A self-contained HTML report of these results (table, learning curves, parallel
   * coordinates, importance, best-so-far, PBT lineage); written to `outFile` when given.
   */
  async toHtml(options: { outFile?: string } = {}): Promise<string> {
    // Loaded on demand: the report inlines its charting library (about 640 KiB).
    const { resultGridToHtml } = await lazy<typeof import("../plugins/reporters/html.ts")>(
      "../plugins/reporters/html.ts",
    );
    return await resultGridToHtml(this, options);
  }

  /**
   * The report's charts inline in a notebook (Deno's Jupyter kernel), offline: `await
   * results.plot()` as a cell's last line shows them, with the metric-axis switch.
   *
   * @param options the frame's height in pixels (default 900).
   * @returns an object the kernel displays as HTML (its `html` is the markup).
   */
  async plot(options: { height?: number } = {}): Promise<NotebookHtml> {
    const { notebookPlot } = await lazy<typeof import("../plugins/reporters/notebook.ts")>(
      "../plugins/reporters/notebook.ts",
    );
    return await notebookPlot(this, options);
  }

  /**
   * The rich display of Deno's Jupyter kernel: `results` as a cell's last line shows the best
   * trial and the table of trials, best first.
   *
   * @returns the MIME bundle (`text/html`, `text/plain`).
   */
  async [Symbol.for("Jupyter.display")](): Promise<Record<string, unknown>> {
    const { resultGridBundle } = await lazy<typeof import("../plugins/reporters/notebook.ts")>(
      "../plugins/reporters/notebook.ts",
    );
    return resultGridBundle(this);
  }

  /**
   * Loads the results of an experiment folder (finished, interrupted or still running).
   *
   * @throws {TuneError} when the folder is not an experiment.
   */
  static async load(path: string): Promise<ResultGrid> {
    const { readExperiment, readStoredTrials } = await lazy<typeof import("./store.ts")>(
      "./store.ts",
    );
    const record = await readExperiment(path);
    const histories = new Map<string, TrialResult[]>();
    const trials: TrialInfo[] = [];
    for (const s of await readStoredTrials(path)) {
      const history = [...s.history];
      histories.set(s.id, history);
      const cks = s.checkpoints;
      trials.push({
        id: s.id,
        status: s.status,
        config: s.config,
        metrics: history.at(-1),
        iterations: history.length ? history.at(-1)!.training_iteration : 0,
        ...(s.status === "error" && s.reason ? { error: s.reason } : {}),
        ...(s.status === "terminated" && s.reason ? { reason: s.reason } : {}),
        path: s.dir,
        ...(cks.length ? { checkpoint: cks.at(-1)!.path } : {}),
      });
    }
    return new ResultGrid({
      path,
      metric: record.metric,
      mode: record.mode,
      ...(record.metrics ? { metrics: record.metrics } : {}),
      ...(record.modes ? { modes: record.modes } : {}),
      trials,
      histories,
      interrupted: record.status === "interrupted",
    });
  }
}

/**
 * Imports a module of this package by a computed specifier (relative to this file), on first
 * use: Deno's module graph does not follow it, so a trial process whose trainable imports
 * `mod.ts` (which exports ResultGrid) neither loads the store nor reads the report and its
 * inlined charting library (~640 KiB) at start, as a literal `import("...")` would make it do.
 */
function lazy<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}
