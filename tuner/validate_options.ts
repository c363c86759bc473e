/**
 * The checks of `Tuner` options: every wrong option is refused with an `OptionError` naming
 * it (the experiment file loader maps its `key` to the file's line), before anything runs.
 *
 * @module
 */

import { checkPluginShape } from "../core/plugin.ts";
import type { Mode } from "../core/trial.ts";
import { type Space, suggest, validateSpace } from "../core/space.ts";
import { OptionError, OptionRangeError } from "../core/options.ts";
import type { TunerOptions } from "./tuner.ts";
import { TUNER_OPTION_NAMES } from "./option_table.ts";

const OPTION_KEYS = TUNER_OPTION_NAMES;

/**
 * The objectives of the options as two lists of the same length (one entry for one metric).
 * Throws on a bad metric or mode, or lists that do not match.
 */
export function objectivesOf(
  o: Pick<TunerOptions<Space>, "metric" | "mode">,
): { metrics: readonly string[]; modes: readonly Mode[] } {
  const m = o.metric, d = o.mode;
  const example = `e.g. metric: ["val_loss", "latency_ms"], mode: ["min", "min"]`;
  if (typeof m === "string") {
    if (!m) fail("metric", `"metric" is an empty string: name a reported metric, e.g. "val_loss"`);
    if (Array.isArray(d)) {
      fail(
        "mode",
        `"mode" is a list (${
          JSON.stringify(d)
        }) but "metric" is one name: give a list of metrics too, ${example}`,
      );
    }
    if (d !== "min" && d !== "max") {
      fail("mode", `"mode" must be "min" or "max", got ${JSON.stringify(d)}`);
    }
    return { metrics: [m], modes: [d] };
  }
  return objectiveLists(m, d, example);
}

/** {@linkcode objectivesOf} for several metrics (compiled only when an experiment has them). */
function objectiveLists(
  m: unknown,
  d: unknown,
  example: string,
): { metrics: readonly string[]; modes: readonly Mode[] } {
  if (!Array.isArray(m)) {
    fail(
      "metric",
      `"metric" must name a reported metric, e.g. "val_loss", or list several, got ${
        JSON.stringify(m)
      }`,
    );
  }
  if (!m.length) fail("metric", `"metric" is an empty list: name at least one reported metric`);
  for (const [i, x] of m.entries()) {
    if (typeof x !== "string" || !x) {
      fail("metric", `"metric" entry ${i + 1} must be a metric name, got ${JSON.stringify(x)}`);
    }
    if (m.indexOf(x) !== i) fail("metric", `"metric" lists "${x}" twice`);
  }
  if (!Array.isArray(d)) {
    fail(
      "mode",
      `"metric" lists ${m.length} metrics, so "mode" must list ${m.length} modes (one per metric, ` +
        `in order), got ${JSON.stringify(d)}; ${example}`,
    );
  }
  if (d.length !== m.length) {
    fail(
      "mode",
      `"metric" lists ${m.length} metrics but "mode" lists ${d.length} modes: give one mode per metric, in order`,
    );
  }
  for (const [i, x] of d.entries()) {
    if (x !== "min" && x !== "max") {
      fail(
        "mode",
        `"mode" entry ${i + 1} (for ${m[i]}) must be "min" or "max", got ${JSON.stringify(x)}`,
      );
    }
  }
  return { metrics: m as readonly string[], modes: d as readonly Mode[] };
}

// `key` (dotted for nested options) lets the YAML loader point at the line of that key.
export function fail(
  key: string,
  message: string,
  Kind: typeof OptionError | typeof OptionRangeError = OptionError,
): never {
  throw new Kind("Tuner", key, `Tuner: ${message}`);
}

/** Whether `v` is an integer > 0. */
export function isPositiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

/** Checks every option of a `Tuner`; throws an `OptionError` naming the first wrong one. */
export function validateOptions(o: TunerOptions<Space>): void {
  if (typeof o !== "object" || o === null) fail("", `expected an options object, got ${String(o)}`);
  for (const k of Object.keys(o)) {
    if (!OPTION_KEYS.includes(k)) fail(k, `unknown option "${k}"${suggest(k, OPTION_KEYS)}`);
  }
  const t = o.trainable;
  if (!(typeof t === "function" || typeof t === "string" || t instanceof URL)) {
    fail(
      "trainable",
      `"trainable" must be a module URL or path, or a function (config, session) => ..., got ${
        t === undefined ? "nothing" : typeof t
      }`,
    );
  }
  if (typeof t === "string" && !t) fail("trainable", `"trainable" is an empty string`);
  if (o.space === undefined) {
    fail("space", `"space" is missing: give the search space, e.g. { lr: loguniform(1e-4, 1e-1) }`);
  }
  validateSpace(o.space);
  const { metrics } = objectivesOf(o);
  if (metrics.length > 1) checkMultiObjectivePlugins(o, metrics);
  if (o.numSamples !== undefined && !(o.numSamples === -1 || isPositiveInt(o.numSamples))) {
    fail(
      "numSamples",
      `"numSamples" must be a positive integer or -1 (unlimited), got ${o.numSamples}`,
      OptionRangeError,
    );
  }
  if (o.numSamples === -1 && o.timeBudgetMs === undefined && !o.searcher) {
    fail(
      "numSamples",
      `"numSamples: -1" runs forever with the random searcher: set "timeBudgetMs" too`,
      OptionRangeError,
    );
  }
  if (
    o.cpus !== undefined &&
    (typeof o.cpus !== "number" || !Number.isFinite(o.cpus) || o.cpus <= 0)
  ) {
    fail("cpus", `"cpus" must be a number of CPUs > 0, got ${String(o.cpus)}`, OptionRangeError);
  }
  if (o.maxConcurrent !== undefined && !isPositiveInt(o.maxConcurrent)) {
    fail(
      "maxConcurrent",
      `"maxConcurrent" must be a positive integer, got ${o.maxConcurrent}`,
      OptionRangeError,
    );
  }
  if (o.resources !== undefined) checkResources(o.resources);
  for (const k of ["timeBudgetMs", "trialTimeoutMs", "callbackDrainMs"] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === "number" && v > 0)) {
      fail(k, `"${k}" must be a number of milliseconds > 0, got ${v}`, OptionRangeError);
    }
  }
  if (o.trialFolders !== undefined && o.trialFolders !== "lazy" && o.trialFolders !== "end") {
    fail(
      "trialFolders",
      `"trialFolders" must be "lazy" or "end", got ${JSON.stringify(o.trialFolders)}`,
    );
  }
  if (o.maxFailures !== undefined && !(Number.isInteger(o.maxFailures) && o.maxFailures >= -1)) {
    fail(
      "maxFailures",
      `"maxFailures" must be an integer >= 0, or -1 for unlimited retries, got ${o.maxFailures}`,
      OptionRangeError,
    );
  }
  if (o.stop !== undefined && typeof o.stop !== "function") checkStop(o.stop);
  if (o.checkpoint !== undefined) checkCheckpoint(o.checkpoint);
  if (o.sandbox !== undefined) checkSandbox(o.sandbox);
  if (o.backend !== undefined) checkBackend(o.backend);
  if (o.scheduler !== undefined) {
    const p = checkPluginShape("scheduler", o.scheduler);
    if (p) fail("scheduler", `"scheduler": ${p}`);
  }
  if (o.searcher !== undefined) {
    const p = checkPluginShape("searcher", o.searcher);
    if (p) fail("searcher", `"searcher": ${p}`);
  }
  for (const [i, cb] of (o.callbacks ?? []).entries()) {
    const p = checkPluginShape("callback", cb);
    if (p) fail("callbacks", `"callbacks[${i}]": ${p}`);
  }
  if (o.seed !== undefined && !(typeof o.seed === "number" && Number.isFinite(o.seed))) {
    fail("seed", `"seed" must be a number, got ${o.seed}`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || !/^[\w.-]+$/.test(o.name))) {
    fail(
      "name",
      `"name" must be a folder name of letters, digits, "_", "-" and ".", got ${
        JSON.stringify(o.name)
      }`,
    );
  }
}

// The checks of options most experiments do not give, each in a function of its own: V8 compiles
// a function at its first call, so an experiment without them compiles none of this.

/** Checks `resources`. */
function checkResources(r: NonNullable<TunerOptions<Space>["resources"]>): void {
  for (const [k, v] of Object.entries(r)) {
    if (k === "custom") {
      for (const [name, n] of Object.entries(v ?? {})) {
        if (typeof n !== "number" || !(n >= 0) || !Number.isFinite(n)) {
          fail(
            `resources.custom.${name}`,
            `"resources.custom.${name}" must be a number >= 0, got ${n}`,
            OptionRangeError,
          );
        }
      }
      continue;
    }
    if (k === "workers") {
      if (!isPositiveInt(v)) {
        fail(
          "resources.workers",
          `"resources.workers" must be a whole number of workers per trial >= 1, got ${
            JSON.stringify(v)
          }`,
          OptionRangeError,
        );
      }
      continue;
    }
    if (k !== "cpu" && k !== "gpu" && k !== "memoryMb") {
      fail(
        `resources.${k}`,
        `unknown resource "${k}"${
          suggest(k, ["workers", "cpu", "gpu", "memoryMb", "custom"])
        }; use { workers, cpu, gpu, memoryMb, custom }`,
      );
    }
    if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
      fail(
        `resources.${k}`,
        `"resources.${k}" must be a number >= 0, got ${v}`,
        OptionRangeError,
      );
    }
  }
  if ((r.cpu ?? 1) === 0 && (r.gpu ?? 0) === 0) {
    fail("resources", `"resources" asks for nothing: give cpu or gpu > 0`, OptionRangeError);
  }
}

/** Checks a `stop` object (a function needs no check). */
function checkStop(stop: unknown): void {
  if (typeof stop !== "object" || stop === null || Array.isArray(stop)) {
    fail("stop", `"stop" must be an object like { training_iteration: 10 } or a function`);
  }
  for (const [k, v] of Object.entries(stop)) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      fail(
        `stop.${k}`,
        `"stop.${k}" must be a number (stop when the result reaches it), got ${JSON.stringify(v)}`,
      );
    }
  }
}

/** Checks `checkpoint`. */
function checkCheckpoint(c: NonNullable<TunerOptions<Space>["checkpoint"]>): void {
  for (const k of Object.keys(c)) {
    const keys = ["numToKeep", "scoreAttribute", "scoreOrder"];
    if (!keys.includes(k)) {
      fail(`checkpoint.${k}`, `unknown checkpoint option "${k}"${suggest(k, keys)}`);
    }
  }
  if (c.numToKeep !== undefined && !isPositiveInt(c.numToKeep)) {
    fail(
      "checkpoint.numToKeep",
      `"checkpoint.numToKeep" must be a positive integer, got ${c.numToKeep}`,
      OptionRangeError,
    );
  }
  if (c.scoreOrder !== undefined && c.scoreOrder !== "min" && c.scoreOrder !== "max") {
    fail(
      "checkpoint.scoreOrder",
      `"checkpoint.scoreOrder" must be "min" or "max", got ${JSON.stringify(c.scoreOrder)}`,
    );
  }
}

/** Checks `sandbox`. */
function checkSandbox(sandbox: NonNullable<TunerOptions<Space>["sandbox"]>): void {
  const keys = ["read", "write", "net", "env", "sys", "ffi", "unstable"];
  for (const [k, v] of Object.entries(sandbox)) {
    if (!keys.includes(k)) fail(`sandbox.${k}`, `unknown sandbox key "${k}"${suggest(k, keys)}`);
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      fail(`sandbox.${k}`, `"sandbox.${k}" must be a list of strings`);
    }
  }
}

/** Checks `backend`. */
function checkBackend(backend: NonNullable<TunerOptions<Space>["backend"]>): void {
  const b = backend as unknown as Record<string, unknown> | null;
  if (
    typeof b !== "object" || b === null || typeof b.name !== "string" ||
    typeof b.permissions !== "function" || typeof b.env !== "function"
  ) {
    fail(
      "backend",
      `"backend" must be an object with a name, permissions() and env(devices), such as ` +
        `tfjsBackend({ native: true }) of "@tunebox/tunebox/backends/tfjs"`,
    );
  }
}

/** A multi-objective experiment's searcher and scheduler must both handle several metrics. */
function checkMultiObjectivePlugins(o: TunerOptions<Space>, metrics: readonly string[]): void {
  const list = metrics.map((m) => JSON.stringify(m)).join(", ");
  if (o.searcher !== undefined && o.searcher.multiObjective !== true) {
    fail(
      "searcher",
      `"searcher": ${o.searcher.name} optimises one metric, but "metric" lists ${metrics.length} (${list}): ` +
        `use tpeSearcher (MOTPE), nsga2Searcher or randomSearcher, or give one metric`,
    );
  }
  if (o.scheduler !== undefined && o.scheduler.multiObjective !== true) {
    fail(
      "scheduler",
      `"scheduler": ${o.scheduler.name} decides by one metric, but "metric" lists ${metrics.length} (${list}): ` +
        `use fifoScheduler (the default) for a multi-objective experiment, or give one metric`,
    );
  }
}
