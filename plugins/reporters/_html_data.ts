/**
 * Reads an experiment folder into the plain JSON the report page draws: the experiment, one axis
 * per hyperparameter (linear, log or categorical), every trial's config, metric history, best and
 * last values, PBT exploits, and parameter importance. Tolerates a half-written folder (a driver
 * still running or killed): torn or unreadable lines are skipped and counted in `warnings`.
 *
 * @module
 */

import { nonDominatedSort } from "../../core/pareto.ts";
import { join, relative } from "node:path";
import {
  type DiskTrialHistory,
  type ExperimentRecord,
  flatten,
  foldTrialEvents,
  joinHistory,
  journalResults,
  type JsonLines,
  readExperiment,
  scanJsonLines,
  type StoredTrial,
  type TrialEvent,
} from "../../core/store.ts";
import { reviveMetrics } from "../../core/protocol.ts";
import {
  type Domain,
  hasDomains,
  isPlainObject,
  parameters,
  spaceFromJson,
} from "../../core/space.ts";
import type { Config, JsonValue, TrialResult, TrialStatus } from "../../core/trial.ts";
import { forestImportance } from "./_html_importance.ts";

/** How an axis is scaled. */
export type AxisScale = "linear" | "log" | "category";

/** One hyperparameter as drawn. */
export interface ReportAxis {
  /** The config key, nested keys joined by `/`. */
  readonly key: string;
  /** Linear, log or categorical. */
  readonly scale: AxisScale;
  /** The category labels, in the space's order, for categorical axes. */
  readonly categories?: readonly string[];
  /**
   * For a choice between sub-spaces: what each branch looks like (its constant values and its
   * keys), to tell which one a config took.
   */
  readonly branches?: readonly {
    readonly constants: { readonly [key: string]: JsonValue };
    readonly keys: readonly string[];
  }[];
}

/** A config as the page draws it: numbers for numeric axes, labels for categorical ones. */
export type AxisValues = Readonly<Record<string, number | string | null>>;

/** One trial of the report. */
export interface ReportTrial {
  /** Trial id. */
  readonly id: string;
  /** `pending`, `running`, `paused`, `terminated`, `error`, or `unknown` (folder without events). */
  readonly status: string;
  /** Why a scheduler or criterion stopped it. */
  readonly reason?: string;
  /** Error message of a failed trial. */
  readonly error?: string;
  /** Failures that were retried. */
  readonly failures: number;
  /** The config it has now (the last one, for PBT), as recorded. */
  readonly config: Config;
  /** The config on the report's axes. */
  readonly params: AxisValues;
  /** `training_iteration` of every report. */
  readonly iterations: readonly number[];
  /** The metric of every report (null when missing or not finite). */
  readonly values: readonly (number | null)[];
  /** `time_total_s` of every report. */
  readonly times: readonly number[];
  /** Best value of the metric over its reports. */
  readonly best: number | null;
  /** The iteration of the best value. */
  readonly bestIteration: number | null;
  /** The metric of its last report. */
  readonly last: number | null;
  /** Its last `training_iteration` (0 before any report). */
  readonly iteration: number;
  /** `time_total_s` of its last report. */
  readonly time: number | null;
  /** Link to its folder, relative to the page; empty when it has none (an in-process trial that needed none). */
  readonly link: string;
  /** Multi-objective: each objective of its last report (null when missing or not finite). */
  readonly objectives?: readonly (number | null)[];
  /** Multi-objective: whether it is on the Pareto front (no trial beats it in every objective). */
  readonly pareto?: boolean;
  /** Config segments: the config in effect from an iteration on, and the donor it came from. */
  readonly segments: readonly {
    readonly fromIteration: number;
    readonly params: AxisValues;
    readonly donor?: string;
  }[];
}

/** A PBT exploit: `trial` took `donor`'s checkpoint and a new config after `iteration`. */
export interface ReportExploit {
  /** The trial that changed. */
  readonly trial: string;
  /** The trial it copied. */
  readonly donor: string;
  /** The iteration it continued from. */
  readonly iteration: number;
  /** Unix time in seconds. */
  readonly t: number;
}

/** Parameter importance, or why there is none. */
export interface ReportImportance {
  /** How it was computed. */
  readonly method: string;
  /** How many trials went in. */
  readonly trials: number;
  /** Share of each parameter (sum 1), largest first. */
  readonly shares: readonly { readonly key: string; readonly share: number }[];
  /** Why there are no shares. */
  readonly unavailable?: string;
}

/** Everything the page draws. */
export interface ReportData {
  /** Format of this object. */
  readonly format: 1;
  /** ISO time it was read. */
  readonly generatedAt: string;
  /** The experiment. */
  readonly experiment: {
    readonly name: string;
    readonly dir: string;
    readonly status: string;
    readonly metric: string;
    readonly mode: "min" | "max";
    readonly createdAt: string;
    readonly updatedAt: string;
    readonly searcher: string;
    readonly scheduler: string;
    readonly seed: number;
    /** Every objective of a multi-objective experiment, in order; absent for one. */
    readonly objectives?: readonly { readonly metric: string; readonly mode: "min" | "max" }[];
  };
  /** One axis per tunable hyperparameter. */
  readonly axes: readonly ReportAxis[];
  /** Every trial, in creation order. */
  readonly trials: readonly ReportTrial[];
  /** PBT exploits, in time order. */
  readonly exploits: readonly ReportExploit[];
  /** Parameter importance. */
  readonly importance: ReportImportance;
  /** What was odd about the folder (torn lines, trials without events, ...). */
  readonly warnings: readonly string[];
}

/** How trial links are written. */
export interface LoadOptions {
  /** Link of a trial folder. @default the folder relative to the experiment folder */
  readonly trialLink?: (id: string, path: string) => string;
  /**
   * Reuse the last parameter importance while it is younger than this (the live dashboard reads
   * the folder at every report; the forest takes ~0.5 s for 1000 trials). @default 0
   */
  readonly importanceMaxAgeMs?: number;
}

/** The method named in the report. */
export const IMPORTANCE_METHOD =
  "random-forest permutation importance (64 trees, out-of-bag error increase when a parameter is shuffled)";

interface Cached<T> {
  size: number;
  mtime: number;
  value: T;
}

/** A trial whose folder is left but whose `created` event was lost: its status is unknown. */
type Orphan = Omit<StoredTrial, "status"> & { readonly status: "unknown" };

/**
 * A trial as the report reads it from disk: a {@linkcode DiskTrialHistory} (the report draws no
 * checkpoint), or an orphan folder's.
 */
type ReportSource = Omit<DiskTrialHistory, "status"> & { readonly status: TrialStatus | "unknown" };

/**
 * Reads experiment folders, keeping parsed files until their size or mtime changes (the live
 * dashboard reads the folder again on every change).
 */
export class ReportLoader {
  readonly dir: string;
  readonly #options: LoadOptions;
  readonly #files = new Map<string, Cached<JsonLines<unknown>>>();
  #importance: { key: string; value: ReportImportance; at: number; ms: number } | undefined;

  constructor(dir: string, options: LoadOptions = {}) {
    this.dir = dir;
    this.#options = options;
  }

  async #lines<T>(path: string): Promise<JsonLines<T> | undefined> {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    const mtime = stat.mtime?.getTime() ?? 0;
    const hit = this.#files.get(path);
    if (hit && hit.size === stat.size && hit.mtime === mtime) return hit.value as JsonLines<T>;
    const value = scanJsonLines<T>(await Deno.readTextFile(path));
    this.#files.set(path, { size: stat.size, mtime, value });
    return value;
  }

  /**
   * A string that changes when anything the report shows may have changed: the sizes and mtimes
   * of `experiment.json`, `trials.jsonl` and every `result.jsonl`.
   */
  async signature(): Promise<string> {
    const parts: string[] = [];
    const add = async (p: string) => {
      try {
        const s = await Deno.stat(p);
        parts.push(`${s.size}:${s.mtime?.getTime() ?? 0}`);
      } catch {
        parts.push("-");
      }
    };
    await add(join(this.dir, "experiment.json"));
    await add(join(this.dir, "trials.jsonl"));
    for (const id of await this.#trialFolders()) await add(join(this.dir, id, "result.jsonl"));
    return parts.join(",");
  }

  /** A trial's results through the cache, joined to its folded state; odd lines are warned of. */
  async #readTrial(
    trial: StoredTrial | Orphan,
    logged: readonly TrialResult[] | undefined,
    warnings: string[],
  ): Promise<ReportSource> {
    const { id } = trial;
    const dir = join(this.dir, id);
    const lines = await this.#lines<Record<string, JsonValue>>(join(dir, "result.jsonl"));
    if (lines?.bad) warnings.push(`${id}/result.jsonl: ${lines.bad} unreadable line(s) skipped`);
    if (lines?.torn) warnings.push(`${id}/result.jsonl: the last line is cut short`);
    const fromFile = (lines?.rows ?? []).map((r) => reviveMetrics(r) as unknown as TrialResult);
    return joinHistory(trial, dir, fromFile, logged);
  }

  async #trialFolders(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.isDirectory && /_\d{5,}$/.test(e.name)) out.push(e.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out.sort();
  }

  /**
   * Reads the folder.
   *
   * @throws {TuneError} when the folder is not an experiment (no readable `experiment.json`).
   */
  async load(): Promise<ReportData> {
    const record = await readExperiment(this.dir);
    const warnings: string[] = [];
    const events = await this.#lines<TrialEvent>(join(this.dir, "trials.jsonl"));
    if (!events) warnings.push("trials.jsonl is missing: no trial has been created yet");
    else {
      if (events.bad) warnings.push(`trials.jsonl: ${events.bad} unreadable line(s) skipped`);
      if (events.torn) {
        warnings.push("trials.jsonl: the last line is cut short (still being written, or killed)");
      }
    }
    const axes = axesOf(record, warnings);
    const folded: (StoredTrial | Orphan)[] = foldTrialEvents(events?.rows ?? []);
    // In-process trials' reports are in the journal before their own result.jsonl is written.
    const journal = journalResults(events?.rows ?? []);
    // Trial folders whose "created" event was lost (a torn trials.jsonl) are shown too.
    const withFolder = new Set(await this.#trialFolders());
    const known = new Set(folded.map((t) => t.id));
    for (const id of withFolder) {
      if (known.has(id)) continue;
      let config: Config = {};
      try {
        config = JSON.parse(await Deno.readTextFile(join(this.dir, id, "params.json")));
      } catch { /* no params.json either */ }
      folded.push({ id, status: "unknown", config, failures: 0, changes: [] });
      warnings.push(`trial ${id} has a folder but no events in trials.jsonl`);
    }
    const metric = record.metric;
    const better = (a: number, b: number) => record.mode === "min" ? a < b : a > b;
    const goals = (record.metrics ?? []).map((m, k) => ({
      metric: m,
      mode: record.modes?.[k] ?? record.mode,
    }));
    const trials: ReportTrial[] = [];
    const exploits: ReportExploit[] = [];
    for (const stored of folded) {
      const f = await this.#readTrial(stored, journal.get(stored.id), warnings);
      const { id, dir: path, history: results } = f;
      const iterations: number[] = [], values: (number | null)[] = [], times: number[] = [];
      let best: number | null = null, bestIteration: number | null = null;
      for (const [k, r] of results.entries()) {
        const it = typeof r.training_iteration === "number" ? r.training_iteration : k + 1;
        const raw = r[metric] !== undefined ? r[metric] : flatten(r)[metric];
        const v = typeof raw === "number" && Number.isFinite(raw) ? raw : null;
        iterations.push(it);
        values.push(v);
        times.push(typeof r.time_total_s === "number" ? r.time_total_s : NaN);
        if (v !== null && (best === null || better(v, best))) [best, bestIteration] = [v, it];
      }
      let cursor = 1;
      const segments = f.changes.map((c, k) => {
        let fromIteration = 0;
        if (k > 0) {
          // A config change restarts the trial: its next report is the first of a new run
          // (`iterations_since_restore` 1), at or after the change (`timestamp` is in whole
          // seconds). Until then, it continues from its last report.
          const since = Math.floor(c.t);
          let at = -1;
          for (let i = cursor; i < results.length; i++) {
            if (results[i].iterations_since_restore === 1 && results[i].timestamp >= since) {
              at = i;
              break;
            }
          }
          if (at >= 0) {
            fromIteration = results[at].training_iteration - 1;
            cursor = at + 1;
          } else {
            fromIteration = results.filter((r) => r.timestamp <= c.t).at(-1)?.training_iteration ??
              0;
            cursor = results.length;
          }
          if (c.donor) {
            exploits.push({ trial: id, donor: c.donor, iteration: fromIteration, t: c.t });
          }
        }
        return {
          fromIteration,
          params: axisValues(c.config, axes),
          ...(c.donor ? { donor: c.donor } : {}),
        };
      });
      const lastResult = results.at(-1);
      const lastFlat = lastResult ? flatten(lastResult) : {};
      trials.push({
        ...(goals.length > 1
          ? {
            objectives: goals.map((g) => {
              const v = lastFlat[g.metric];
              return typeof v === "number" && Number.isFinite(v) ? v : null;
            }),
          }
          : {}),
        id,
        status: f.status,
        ...(f.status === "terminated" && f.reason ? { reason: f.reason } : {}),
        ...(f.status === "error" && f.reason ? { error: f.reason } : {}),
        failures: f.failures,
        config: f.config,
        params: axisValues(f.config, axes),
        iterations,
        values,
        times,
        best,
        bestIteration,
        last: values.at(-1) ?? null,
        iteration: iterations.at(-1) ?? 0,
        time: lastResult && typeof lastResult.time_total_s === "number"
          ? lastResult.time_total_s
          : null,
        link: !withFolder.has(id) ? "" : this.#options.trialLink?.(id, path) ?? `${id}/`,
        segments,
      });
    }
    exploits.sort((a, b) => a.t - b.t);
    if (goals.length > 1) {
      // The Pareto front of the trials with every objective (maximised ones negated).
      const scoredIdx: number[] = [], losses: number[][] = [];
      trials.forEach((t, i) => {
        const o = t.objectives!;
        if (o.every((v) => v !== null)) {
          scoredIdx.push(i);
          losses.push(o.map((v, k) => (goals[k].mode === "max" ? -v! : v!)));
        }
      });
      const front = new Set((nonDominatedSort(losses, 1)[0] ?? []).map((j) => scoredIdx[j]));
      trials.forEach((t, i) => (trials[i] = { ...t, pareto: front.has(i) }));
    }
    const reported = trials.filter((t) => t.best !== null);
    if (trials.length && !reported.length) {
      const keys = new Set<string>();
      for (const t of trials) {
        const last = await this.#lines<Record<string, JsonValue>>(
          join(this.dir, t.id, "result.jsonl"),
        );
        for (const r of last?.rows ?? []) for (const k of Object.keys(flatten(r))) keys.add(k);
      }
      if (keys.size) {
        warnings.push(
          `no trial reported a finite "${metric}" (reported keys: ${[...keys].join(", ")})`,
        );
      }
    }
    return {
      format: 1,
      generatedAt: new Date().toISOString(),
      experiment: {
        name: record.name,
        dir: this.dir,
        status: record.status,
        metric,
        mode: record.mode,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        searcher: record.searcher?.name ?? "",
        scheduler: record.scheduler?.name ?? "",
        seed: record.seed,
        ...(goals.length > 1 ? { objectives: goals } : {}),
      },
      axes,
      trials,
      exploits,
      importance: this.#importanceOf(axes, reported),
      warnings,
    };
  }

  #importanceOf(
    axes: readonly ReportAxis[],
    trials: readonly ReportTrial[],
  ): ReportImportance {
    const key = JSON.stringify([axes.map((a) => a.key), trials.map((t) => [t.params, t.best])]);
    const hit = this.#importance;
    const maxAge = this.#options.importanceMaxAgeMs ?? 0;
    // Reuse a stale value only while it is young relative to what it cost: small experiments
    // always get a fresh one.
    const fresh = hit && performance.now() - hit.at < Math.min(maxAge, 10 * hit.ms);
    if (hit && (hit.key === key || fresh)) return hit.value;
    const start = performance.now();
    const value = importanceOf(axes, trials);
    this.#importance = { key, value, at: performance.now(), ms: performance.now() - start };
    return value;
  }
}

/** Parameter importance of the trials that reported the metric (needs 5 or more). */
export function importanceOf(
  axes: readonly ReportAxis[],
  trials: readonly ReportTrial[],
): ReportImportance {
  const base = { method: IMPORTANCE_METHOD, trials: trials.length };
  if (!axes.length) {
    return { ...base, shares: [], unavailable: "the space has no tunable parameter" };
  }
  if (trials.length < 5) {
    return {
      ...base,
      shares: [],
      unavailable: `needs 5 or more trials that reported the metric, has ${trials.length}`,
    };
  }
  const columns = axes.map((a) => {
    const raw = trials.map((t) => {
      const v = t.params[a.key];
      if (v === null || v === undefined) return NaN;
      if (a.scale === "category") return a.categories!.indexOf(String(v));
      if (typeof v !== "number") return NaN;
      return a.scale === "log" && v > 0 ? Math.log(v) : v;
    });
    const finite = raw.filter(Number.isFinite);
    const low = finite.length ? Math.min(...finite) - 1 : 0;
    return raw.map((v) => Number.isFinite(v) ? v : low);
  });
  const xs = trials.map((_, i) => columns.map((c) => c[i]));
  const shares = forestImportance(xs, trials.map((t) => t.best!), { seed: 0 });
  return {
    ...base,
    shares: axes.map((a, i) => ({ key: a.key, share: shares[i] }))
      .sort((a, b) => b.share - a.share),
  };
}

function label(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
}

/** The axes of the experiment's space; falls back to the trials' values when it cannot be read. */
function axesOf(
  record: ExperimentRecord,
  warnings: string[],
): ReportAxis[] {
  let infos: { key: string; domain: Domain }[] = [];
  try {
    infos = parameters(spaceFromJson(record.space)).map((p) => ({
      key: p.path.join("/"),
      domain: p.domain,
    }));
  } catch (e) {
    warnings.push(`the space could not be read (${(e as Error).message}); axes are guessed`);
    infos = guessAxes(record.space);
  }
  const byKey = new Map<string, ReportAxis>();
  for (const { key, domain } of infos) {
    let axis: ReportAxis;
    switch (domain.kind) {
      case "float":
      case "int":
        axis = { key, scale: domain.log ? "log" : "linear" };
        break;
      case "normal":
        axis = { key, scale: "linear" };
        break;
      case "choice":
      case "grid": {
        const values = domain.kind === "choice" ? domain.options : domain.values;
        if (values.some(isPlainObject)) {
          // A choice between sub-spaces: one category per branch, named by its first string
          // constant ({ name: "adam", lr: loguniform(...) } -> "adam"); its parameters get their
          // own axes.
          const branches = values.map((v) => {
            const constants: Record<string, JsonValue> = {};
            const keys = isPlainObject(v) ? Object.keys(v) : [];
            if (isPlainObject(v)) {
              for (const [k, c] of Object.entries(v)) {
                if (!hasDomains(c)) constants[k] = c as JsonValue;
              }
            }
            return { constants, keys };
          });
          axis = {
            key,
            scale: "category",
            categories: branches.map((b, i) =>
              (Object.values(b.constants).find((c) => typeof c === "string") as string) ?? `#${i}`
            ),
            branches,
          };
          break;
        }
        axis = { key, scale: "category", categories: values.map(label) };
        break;
      }
      default:
        continue; // sample_from: nothing known about it
    }
    const prev = byKey.get(key);
    // The same path in two branches: keep one axis, categorical wins over numeric.
    if (!prev || axis.scale === "category") byKey.set(key, axis);
  }
  return [...byKey.values()];
}

function guessAxes(space: JsonValue): { key: string; domain: Domain }[] {
  const out: { key: string; domain: Domain }[] = [];
  const walk = (node: JsonValue, path: string[]) => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return;
    const o = node as Record<string, JsonValue>;
    if (typeof o.type === "string") {
      const t = o.type;
      const options = (o.options ?? o.values ?? o.categories) as JsonValue[] | undefined;
      if (Array.isArray(options)) {
        out.push({ key: path.join("/"), domain: { kind: "choice", options } as unknown as Domain });
      } else if (t !== "sample_from") {
        out.push({
          key: path.join("/"),
          domain: { kind: "float", log: t.startsWith("log") || t.startsWith("qlog") } as Domain,
        });
      }
      return;
    }
    for (const [k, v] of Object.entries(o)) walk(v, [...path, k]);
  };
  walk(space, []);
  return out;
}

/** A config's values on the axes. */
export function axisValues(config: Config, axes: readonly ReportAxis[]): AxisValues {
  const flat = flatten(config);
  const out: Record<string, number | string | null> = {};
  for (const a of axes) {
    if (a.branches) {
      let node: JsonValue | undefined = config;
      for (const k of a.key.split("/")) {
        node = isPlainObject(node) ? (node as Record<string, JsonValue>)[k] : undefined;
      }
      const obj = isPlainObject(node) ? node as Record<string, JsonValue> : undefined;
      const i = obj
        ? a.branches.findIndex((b) =>
          b.keys.every((k) => k in obj) &&
          Object.entries(b.constants).every(([k, c]) =>
            JSON.stringify(obj[k]) === JSON.stringify(c)
          )
        )
        : -1;
      out[a.key] = i >= 0 ? a.categories![i] : null;
      continue;
    }
    const v = flat[a.key];
    if (v === undefined || v === null) out[a.key] = null;
    else if (a.scale === "category") out[a.key] = label(v);
    else out[a.key] = typeof v === "number" && Number.isFinite(v) ? v : null;
  }
  return out;
}

/** A link from the folder of `outFile` to a trial folder, with `/` separators. */
export function relativeLink(outFile: string, trialPath: string): string {
  const rel = relative(join(outFile, ".."), trialPath).split(/[\\/]/).map(encodeURIComponent);
  return rel.join("/") + "/";
}
