/**
 * The one table of `Tuner` options: each option's key in an experiment file, what that key
 * holds, and whether `experiment.json` keeps it for `Tuner.restore`. The lists that used to be
 * written out by hand — the Tuner's known options, the file's top-level keys, the numbers the
 * loader reads, the options saved and restored as they are — are made from it, so a new option
 * is one entry here (and the type check fails until it has one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FILE_KEYS, SAVED_AS_IS, TUNER_OPTION_NAMES } from "./option_table.ts";
 *
 * assert.ok(TUNER_OPTION_NAMES.includes("maxConcurrent"));
 * assert.equal(FILE_KEYS.max_concurrent, "a positive integer");
 * assert.equal(FILE_KEYS.loggers, "a list of { name: ... } or { module: ... }");
 * assert.ok(SAVED_AS_IS.includes("checkpoint") && !SAVED_AS_IS.includes("scheduler"));
 * ```
 *
 * @module
 */

import type { Space } from "../core/space.ts";
import type { TunerOptions } from "./tuner.ts";

/** What the table knows of one `Tuner` option. */
export interface TunerOptionEntry {
  /** Its key in an experiment file (snake_case); absent when a file cannot set it. */
  readonly file?: string;
  /** What that key holds, as the file's error messages say it. */
  readonly holds?: string;
  /** The file holds a plain number there, which the loader reads (times `factor`). */
  readonly number?: boolean;
  /** Other keys of the file for the same option, each with what it holds and its factor. */
  readonly aliases?: Readonly<Record<string, { readonly holds: string; readonly factor: number }>>;
  /** `experiment.json` keeps the value as it is, and `Tuner.restore` gives it back. */
  readonly savedAsIs?: boolean;
}

/** Every `Tuner` option, in the order of {@linkcode TunerOptions}. */
export const TUNER_OPTIONS: {
  readonly [K in keyof Required<TunerOptions<Space>>]: TunerOptionEntry;
} = {
  trainable: { file: "trainable", holds: "the path of the trainable module" },
  space: { file: "space", holds: "the search space" },
  metric: {
    file: "metric",
    holds: "the metric to optimise, or a list of metrics (multi-objective)",
  },
  mode: { file: "mode", holds: "min or max, or a list of them (one per metric)" },
  numSamples: { file: "num_samples", holds: "a positive integer or -1", number: true },
  maxConcurrent: {
    file: "max_concurrent",
    holds: "a positive integer",
    number: true,
    savedAsIs: true,
  },
  resources: {
    file: "resources",
    holds: "{ workers, cpu, gpu, memory_mb, custom }",
    savedAsIs: true,
  },
  gpus: { file: "gpus", holds: "a count of GPUs to use", number: true, savedAsIs: true },
  cpus: { file: "cpus", holds: "a number of CPUs all trials share", number: true, savedAsIs: true },
  stop: {
    file: "stop",
    holds: "{ key: value } criteria, a stopper { name: ..., <options> }, or a list of them",
  },
  timeBudgetMs: {
    file: "time_budget_ms",
    holds: "milliseconds",
    number: true,
    aliases: { time_budget_s: { holds: "seconds", factor: 1000 } },
    savedAsIs: true,
  },
  maxFailures: { file: "max_failures", holds: "an integer", number: true, savedAsIs: true },
  trialTimeoutMs: {
    file: "trial_timeout_ms",
    holds: "milliseconds",
    number: true,
    aliases: { trial_timeout_s: { holds: "seconds", factor: 1000 } },
    savedAsIs: true,
  },
  checkpoint: {
    file: "checkpoint",
    holds: "{ num_to_keep, score_attribute, score_order }",
    savedAsIs: true,
  },
  sandbox: {
    file: "sandbox",
    holds: "{ read, write, net, env, sys, ffi, unstable }",
    savedAsIs: true,
  },
  scheduler: {
    file: "scheduler",
    holds: "{ name: ..., options } or { module: ./file.ts, options }",
  },
  searcher: { file: "searcher", holds: "{ name: ..., options } or { module: ./file.ts, options }" },
  callbacks: { file: "loggers", holds: "a list of { name: ... } or { module: ... }" },
  reporter: { file: "reporter", holds: "{ parameter_columns, metric_columns, max_rows } or false" },
  storage: { file: "storage", holds: "a folder" },
  name: { file: "name", holds: "a folder name" },
  seed: { file: "seed", holds: "a number", number: true },
  executor: {
    file: "executor",
    holds: "{ name: subprocess | slurm | ray, ... } (where trials run)",
  },
  backend: { file: "backend", holds: "tfjs, or { name: tfjs, native, node_modules }" },
  denoConfig: {
    file: "deno_config",
    holds: "the deno.json trials run with, or false",
    savedAsIs: true,
  },
  callbackDrainMs: {},
  allowRemoteTrainable: {
    file: "allow_remote_trainable",
    holds: "true to run an http(s) trainable",
    savedAsIs: true,
  },
  trialFolders: { savedAsIs: true },
};

const entries = Object.entries(TUNER_OPTIONS) as [string, TunerOptionEntry][];

/** The names of the `Tuner` options, for its unknown-option check. */
export const TUNER_OPTION_NAMES: readonly string[] = entries.map(([k]) => k);

/** The top-level keys of an experiment file, with what each holds. */
export const FILE_KEYS: Readonly<Record<string, string>> = Object.fromEntries(
  entries.flatMap(([, e]) =>
    e.file === undefined ? [] : [
      ...Object.entries(e.aliases ?? {}).map(([k, a]) => [k, a.holds]),
      [e.file, e.holds ?? ""],
    ]
  ),
);

/**
 * The plain numbers of an experiment file: `[file key, option, factor]`, an alias after its
 * option's key (so `time_budget_s` wins over `time_budget_ms` when a file gives both).
 */
export const FILE_NUMBERS: readonly (readonly [string, string, number])[] = entries.flatMap((
  [k, e],
) =>
  e.number && e.file !== undefined
    ? [
      [e.file, k, 1] as const,
      ...Object.entries(e.aliases ?? {}).map(([a, { factor }]) => [a, k, factor] as const),
    ]
    : []
);

/** The options `experiment.json` keeps as they are and `Tuner.restore` gives back. */
export const SAVED_AS_IS: readonly string[] = entries.filter(([, e]) => e.savedAsIs).map((
  [k],
) => k);

/**
 * The file key of an option name (`callbacks` → `loggers`, `maxConcurrent` →
 * `max_concurrent`); a name the table does not know is put in snake_case.
 *
 * @param name An option name in camelCase (a Tuner option or a plugin's).
 * @returns The key an experiment file spells it with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileKey } from "./option_table.ts";
 * assert.equal(fileKey("callbacks"), "loggers");
 * assert.equal(fileKey("gracePeriod"), "grace_period");
 * ```
 */
export function fileKey(name: string): string {
  const e = Object.hasOwn(TUNER_OPTIONS, name)
    ? TUNER_OPTIONS[name as keyof typeof TUNER_OPTIONS]
    : undefined;
  return e?.file ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
