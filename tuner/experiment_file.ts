/**
 * The YAML experiment file -> Tuner options. Keys are snake_case; every error names
 * the file, line and column, the key, what came in and what is expected, with a "did you mean".
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../core/_path.ts";
import {
  isMap,
  isPair,
  isScalar,
  LineCounter,
  parse as parseYamlValue,
  parseDocument,
  visit,
} from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { fromRayShape, isRayShape } from "./_ray_shape.ts";
import { checkPluginShape, type PluginRole, resolveModule } from "../core/plugin.ts";
import type { Callback, Scheduler, Searcher } from "../core/plugin.ts";
import type { Stopper } from "../core/runner.ts";
import { type Space, spaceFromJson, SpaceSpecError, suggest } from "../core/space.ts";
import { isOptionError } from "../core/options.ts";
import { findPluginFactory, knownPluginNames } from "./plugin_table.ts";
import { FILE_KEYS, FILE_NUMBERS, fileKey } from "./option_table.ts";
import type { TunerOptions } from "./tuner.ts";
import { Tuner } from "./tuner.ts";
import type { TableReporterOptions } from "../plugins/reporters/table.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tfjsBackend } from "../plugins/backends/tfjs/permissions.ts";
import { combinedStopper, type StopperPart } from "../plugins/stoppers/mod.ts";

type Path = (string | number)[];

/** The top-level keys of an experiment file, and what each holds. */
const TOP_KEYS = FILE_KEYS;

/** The keys an `executor:` mapping may hold, by executor name. */
const EXECUTOR_KEYS: Record<string, string[]> = {
  subprocess: ["name", "grace_ms", "v8_flags", "collective_timeout_ms"],
  local: ["name", "grace_ms", "v8_flags", "collective_timeout_ms"],
  slurm: [
    "name",
    "mode",
    "slurm",
    "driver_host",
    "driver_port",
    "heartbeat_ms",
    "poll_ms",
    "max_jobs",
    "deno_dir",
    "grace_ms",
    "v8_flags",
  ],
  ray: [
    "name",
    "address",
    "deno",
    "deno_version",
    "deno_pip_options",
    "shared_storage",
    "checkpoint_max_bytes",
    "probe",
    "pending_timeout_ms",
    "check_placement",
    "collective_timeout_ms",
    "trials_per_job",
    "driver_host",
    "driver_port",
    "heartbeat_ms",
    "poll_ms",
    "max_jobs",
    "deno_dir",
    "grace_ms",
    "v8_flags",
  ],
};
const SLURM_KEYS = ["partition", "account", "qos", "time", "constraint", "nodelist", "extra_args"];

const SUB_KEYS: Record<string, string[]> = {
  resources: ["workers", "cpu", "gpu", "memory_mb", "custom"],
  checkpoint: ["num_to_keep", "score_attribute", "score_order"],
  sandbox: ["read", "write", "net", "env", "sys", "ffi", "unstable"],
  reporter: ["parameter_columns", "metric_columns", "max_rows", "interval_ms"],
};

/** An experiment file read into Tuner options. */
export interface LoadedExperiment {
  /** Options for `new Tuner(...)`. */
  readonly options: TunerOptions<Space>;
  /** The file it came from. */
  readonly file: string;
}

/** Options of {@linkcode loadExperimentFile}. */
export interface LoadOptions {
  /** `key.path=value` overrides (values parsed as YAML), as the CLI's `--set`. */
  readonly set?: readonly string[];
  /** Overrides the executor's name (the CLI's `--executor slurm`). */
  readonly executor?: string;
  /** Overrides `name`. */
  readonly name?: string;
  /** Overrides `storage` (relative to the cwd). */
  readonly storage?: string;
}

/**
 * Reads an experiment YAML file into Tuner options.
 *
 * @throws {ConfigError} with file, line and column for every mistake.
 * @example
 * ```ts ignore
 * import { loadExperimentFile } from "./experiment_file.ts";
 * const { options } = await loadExperimentFile("experiment.yaml", { set: ["num_samples=4"] });
 * ```
 */
export async function loadExperimentFile(
  file: string,
  options: LoadOptions = {},
): Promise<LoadedExperiment> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`Cannot read the experiment file: ${(e as Error).message}`, file, 0, 0, {
      cause: e,
    });
  }
  return { options: await parseExperiment(text, file, options), file };
}

/**
 * Parses experiment YAML text (`file` is used for positions and relative paths).
 *
 * @throws {ConfigError} with file, line and column for every mistake.
 * @example
 * ```ts ignore
 * import { parseExperiment } from "./experiment_file.ts";
 * const options = await parseExperiment("metric: loss\nmode: min\n...", "exp.yaml");
 * ```
 */
export async function parseExperiment(
  text: string,
  file: string,
  overrides: LoadOptions = {},
): Promise<TunerOptions<Space>> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const p = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
    throw new ConfigError(
      `YAML syntax error: ${e.message.split("\n")[0]}`,
      file,
      p.line,
      p.col,
    );
  }
  // A Ray-shaped file's keys are translated into ours; an error about one of ours then points
  // at the key it came from.
  let remap: [Path, Path][] = [];
  const at = (path: Path, key = false): [number, number] => {
    for (const [ours, theirs] of remap) {
      if (ours.every((seg, i) => path[i] === seg)) {
        return position(doc, lc, [...theirs, ...path.slice(ours.length)], key);
      }
    }
    return position(doc, lc, path, key);
  };
  const err = (message: string, path: Path, key = false): never => {
    const [line, col] = at(path, key);
    throw new ConfigError(message, file, line, col);
  };
  checkHostileYaml(doc, lc, file);
  let raw: unknown;
  try {
    // Aliases are expanded here: a "billion laughs" file stops at the first hundred.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    let at = 0;
    visit(doc, {
      Alias(_, node) {
        at ||= node.range?.[0] ?? 0;
        return at ? visit.BREAK : undefined;
      },
    });
    const p = lc.linePos(at);
    throw new ConfigError(
      `The file expands its YAML aliases (*name) too many times (${
        (e as Error).message
      }); write the values out`,
      file,
      p.line,
      p.col,
      { cause: e },
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    err("The experiment file must be a mapping of keys (name, trainable, metric, ...)", []);
  }
  let y = raw as Record<string, unknown>;
  for (const s of overrides.set ?? []) applySet(y, s);
  if (isRayShape(y)) ({ y, remap } = fromRayShape(y, err));
  if (overrides.name) y.name = overrides.name;
  if (overrides.executor) {
    y.executor = y.executor && typeof y.executor === "object" && !Array.isArray(y.executor)
      ? { ...y.executor, name: overrides.executor }
      : overrides.executor;
  }

  for (const k of Object.keys(y)) {
    if (!Object.hasOwn(TOP_KEYS, k)) {
      err(`Unknown key "${k}"${suggest(k, Object.keys(TOP_KEYS))}`, [k], true);
    }
  }
  for (const [k, allowed] of Object.entries(SUB_KEYS)) {
    const v = y[k];
    if (v === undefined || v === false && k === "reporter") continue;
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      err(`"${k}" must be a mapping: ${TOP_KEYS[k]}`, [k]);
    }
    for (const sub of Object.keys(v as object)) {
      if (!allowed.includes(sub)) {
        err(`Unknown key "${k}.${sub}"${suggest(sub, allowed)}; expected ${allowed.join(", ")}`, [
          k,
          sub,
        ], true);
      }
    }
  }
  const base = resolve(file);
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(dirname(base), p));
  const str = (k: string, required = false): string | undefined => {
    const v = y[k];
    if (v === undefined || v === null) {
      if (required) err(`Missing key "${k}": ${TOP_KEYS[k]}`, []);
      return undefined;
    }
    if (typeof v !== "string" || !v) {
      err(`"${k}" must be ${TOP_KEYS[k]}, got ${JSON.stringify(v)}`, [k]);
    }
    return v as string;
  };
  const num = (k: string): number | undefined => {
    const v = y[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      err(`"${k}" must be ${TOP_KEYS[k]}, got ${JSON.stringify(v)}`, [k]);
    }
    return v as number;
  };

  const trainable = str("trainable", true)!;
  const list = (k: string): string | string[] => {
    const v = y[k];
    if (!Array.isArray(v)) return str(k, true)!;
    if (!v.length) err(`"${k}" is an empty list: give ${TOP_KEYS[k]}`, [k]);
    for (const [i, x] of v.entries()) {
      if (typeof x !== "string" || !x) {
        err(`"${k}" entry ${i + 1} must be a name, got ${JSON.stringify(x)}`, [k, i]);
      }
    }
    return v as string[];
  };
  const metric = list("metric");
  const mode = list("mode");
  for (const [i, m] of (Array.isArray(mode) ? mode : [mode]).entries()) {
    if (m !== "min" && m !== "max") {
      err(
        `"mode"${Array.isArray(mode) ? ` entry ${i + 1}` : ""} must be min or max, got ${
          JSON.stringify(m)
        }`,
        Array.isArray(mode) ? ["mode", i] : ["mode"],
      );
    }
  }
  if (y.space === undefined) err(`Missing key "space": the search space`, []);
  let space: Space;
  try {
    space = spaceFromJson(y.space);
  } catch (e) {
    if (e instanceof SpaceSpecError) {
      err(e.message, ["space", ...e.path], e.message.includes("unknown key"));
    }
    throw e;
  }

  const out: Record<string, unknown> = {
    trainable: resolveModule(trainable, base),
    space: space!,
    metric,
    mode,
  };
  for (const [k, opt, factor] of FILE_NUMBERS) {
    const v = num(k);
    if (v !== undefined) out[opt] = v * factor;
  }
  const name = str("name");
  if (name) out.name = name;
  const storage = overrides.storage ? resolve(overrides.storage) : str("storage");
  out.storage = storage ? (overrides.storage ? storage : rel(storage)) : rel("tunebox_results");
  if (y.deno_config !== undefined) {
    out.denoConfig = y.deno_config === false ? false : rel(String(y.deno_config));
  }
  if (y.resources) out.resources = camelKeys(y.resources as Record<string, unknown>);
  if (y.executor !== undefined) {
    const e = typeof y.executor === "string" ? { name: y.executor } : y.executor;
    if (e === null || typeof e !== "object" || Array.isArray(e)) {
      err(`"executor" must be ${TOP_KEYS.executor}`, ["executor"]);
    }
    const spec = e as Record<string, unknown>;
    const allowed = EXECUTOR_KEYS[String(spec.name)];
    if (!allowed) {
      err(
        `Unknown executor ${JSON.stringify(spec.name)}${
          suggest(String(spec.name), Object.keys(EXECUTOR_KEYS))
        }; expected ${Object.keys(EXECUTOR_KEYS).join(", ")}`,
        typeof y.executor === "string" ? ["executor"] : ["executor", "name"],
      );
    }
    for (const k of Object.keys(spec)) {
      if (!allowed.includes(k)) {
        err(
          `Unknown key "executor.${k}"${suggest(k, allowed)}; expected ${allowed.join(", ")}`,
          ["executor", k],
          true,
        );
      }
    }
    if (spec.mode !== undefined && spec.mode !== "step" && spec.mode !== "sbatch") {
      err(
        `"executor.mode" must be step (job steps of the driver's allocation) or sbatch (a batch ` +
          `job per trial), got ${JSON.stringify(spec.mode)}`,
        ["executor", "mode"],
      );
    }
    const { name: exName, slurm: sl, ...rest } = spec;
    const exOptions = camelKeys(rest);
    if (sl !== undefined) {
      if (sl === null || typeof sl !== "object" || Array.isArray(sl)) {
        err(`"executor.slurm" must be a mapping of ${SLURM_KEYS.join(", ")}`, [
          "executor",
          "slurm",
        ]);
      }
      for (const k of Object.keys(sl as object)) {
        if (!SLURM_KEYS.includes(k)) {
          err(
            `Unknown key "executor.slurm.${k}"${suggest(k, SLURM_KEYS)}; expected ${
              SLURM_KEYS.join(", ")
            }`,
            ["executor", "slurm", k],
            true,
          );
        }
      }
      exOptions.slurm = camelKeys(sl as Record<string, unknown>);
    }
    if (exOptions.denoDir) exOptions.denoDir = rel(String(exOptions.denoDir));
    if (out.denoConfig !== undefined) exOptions.denoConfig = out.denoConfig;
    out.executor = executorFromSpec(
      { name: String(exName), options: exOptions },
      out.trainable as string,
    );
  }
  if (y.allow_remote_trainable !== undefined) {
    if (typeof y.allow_remote_trainable !== "boolean") {
      err(
        `"allow_remote_trainable" must be true or false, got ${
          JSON.stringify(y.allow_remote_trainable)
        }`,
        ["allow_remote_trainable"],
      );
    }
    out.allowRemoteTrainable = y.allow_remote_trainable;
  }
  if (y.backend !== undefined) {
    // `backend: tfjs` or `backend: { name: tfjs, native: true }`: tfjsBackend's options.
    const b = typeof y.backend === "string" ? { name: y.backend } : y.backend;
    if (b === null || typeof b !== "object" || Array.isArray(b)) {
      err(`"backend" must be ${TOP_KEYS.backend}, got ${JSON.stringify(y.backend)}`, ["backend"]);
    }
    const { name, ...rest } = b as Record<string, unknown>;
    const namePath = typeof y.backend === "string" ? ["backend"] : ["backend", "name"];
    if (name !== "tfjs") {
      err(
        `Unknown backend ${JSON.stringify(name ?? null)}; the backends are: tfjs ` +
          `(TensorFlow.js; { name: tfjs, native: true } allows its native build)`,
        name === undefined ? ["backend"] : namePath,
      );
    }
    const keys = ["name", "native", "node_modules"];
    for (const k of Object.keys(rest)) {
      if (!keys.includes(k)) {
        err(`Unknown key "backend.${k}"${suggest(k, keys)}; expected ${keys.join(", ")}`, [
          "backend",
          k,
        ], true);
      }
    }
    if (rest.native !== undefined && typeof rest.native !== "boolean") {
      err(`"backend.native" must be true or false, got ${JSON.stringify(rest.native)}`, [
        "backend",
        "native",
      ]);
    }
    if (rest.node_modules !== undefined && typeof rest.node_modules !== "string") {
      err(`"backend.node_modules" must be a folder, got ${JSON.stringify(rest.node_modules)}`, [
        "backend",
        "node_modules",
      ]);
    }
    out.backend = tfjsBackend({
      ...(rest.native !== undefined ? { native: rest.native as boolean } : {}),
      ...(rest.node_modules !== undefined ? { nodeModules: rel(rest.node_modules as string) } : {}),
    });
  }
  if (y.stop !== undefined) out.stop = await loadStop(y.stop, base, err);
  if (y.checkpoint) {
    const c = y.checkpoint as Record<string, unknown>;
    out.checkpoint = {
      ...(c.num_to_keep !== undefined ? { numToKeep: c.num_to_keep } : {}),
      ...(c.score_attribute !== undefined ? { scoreAttribute: c.score_attribute } : {}),
      ...(c.score_order !== undefined ? { scoreOrder: c.score_order } : {}),
    };
  }
  if (y.sandbox) {
    const s = y.sandbox as Record<string, unknown>;
    const sb: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) {
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        err(`"sandbox.${k}" must be a list of strings`, ["sandbox", k]);
      }
      sb[k] = k === "read" || k === "write" || k === "ffi" ? (v as string[]).map(rel) : v;
    }
    out.sandbox = sb;
  }
  if (y.reporter !== undefined) {
    if (y.reporter === false) out.reporter = false;
    else {
      const r = y.reporter as Record<string, unknown>;
      out.reporter = tableReporter({
        ...(r.parameter_columns
          ? { parameterColumns: r.parameter_columns as TableReporterOptions["parameterColumns"] }
          : {}),
        ...(r.metric_columns
          ? { metricColumns: r.metric_columns as TableReporterOptions["metricColumns"] }
          : {}),
        ...(r.max_rows ? { maxRows: Number(r.max_rows) } : {}),
        ...(r.interval_ms ? { intervalMs: Number(r.interval_ms) } : {}),
      });
    }
  }
  if (y.scheduler !== undefined) {
    out.scheduler = await loadPlugin<Scheduler>("scheduler", y.scheduler, ["scheduler"], base, err);
  }
  if (y.searcher !== undefined) {
    out.searcher = await loadPlugin<Searcher>("searcher", y.searcher, ["searcher"], base, err);
  }
  if (y.loggers !== undefined) {
    if (!Array.isArray(y.loggers)) err(`"loggers" must be ${TOP_KEYS.loggers}`, ["loggers"]);
    const cbs: Callback[] = [];
    for (const [i, spec] of (y.loggers as unknown[]).entries()) {
      cbs.push(await loadPlugin<Callback>("callback", spec, ["loggers", i], base, err));
    }
    out.callbacks = cbs;
  }
  // The Tuner validates the rest; its errors carry the option key, which we map back to YAML.
  try {
    new Tuner(out as unknown as TunerOptions<Space>);
  } catch (e) {
    if (!isOptionError(e)) throw e;
    const path = e.key ? e.key.replace(/\[.*$/, "").split(".").map(snake) : [];
    const where = path.length && path.every((_, i) => getIn(y, path.slice(0, i + 1)) !== undefined)
      ? path
      : [];
    // Option names in the message are shown as the YAML spells them.
    const yamlName = (q: string, p: string) =>
      Object.hasOwn(TOP_KEYS, snake(p.split(".")[0]))
        ? `"${p.split(".").map(snake).join(".")}"`
        : q;
    err(e.message.replace(/^Tuner: /, "").replace(/"([\w.]+)"/g, yamlName), where);
  }
  return out as unknown as TunerOptions<Space>;
}

/** A stopper mapping names one (`name:` or `module:`); anything else is a criteria mapping. */
function isStopperSpec(v: unknown): boolean {
  return !!v && typeof v === "object" && !Array.isArray(v) &&
    (typeof (v as Record<string, unknown>).name === "string" ||
      typeof (v as Record<string, unknown>).module === "string");
}

/** `stop:` as criteria, one stopper, or a list of both (Ray's `CombinedStopper`). */
async function loadStop(
  stop: unknown,
  base: string,
  err: (m: string, p: Path, key?: boolean) => never,
): Promise<unknown> {
  if (isStopperSpec(stop)) return await loadPlugin<Stopper>("stopper", stop, ["stop"], base, err);
  if (!Array.isArray(stop)) return stop; // criteria: the Tuner checks them, naming the key
  if (!stop.length) {
    err(`"stop" is an empty list: give criteria or stoppers, or leave it out`, [
      "stop",
    ]);
  }
  const parts: StopperPart[] = [];
  for (const [i, item] of stop.entries()) {
    if (isStopperSpec(item)) {
      parts.push(await loadPlugin<Stopper>("stopper", item, ["stop", i], base, err));
      continue;
    }
    if (!item || typeof item !== "object" || Array.isArray(item)) {
      err(
        `"stop[${i}]" must be criteria like { training_iteration: 10 } or a stopper ` +
          `{ name: trial_plateau, metric: ... }, got ${JSON.stringify(item)}`,
        ["stop", i],
      );
    }
    for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
      if (typeof v !== "number" || Number.isNaN(v)) {
        err(
          `"stop[${i}].${k}" must be a number (stop when the result reaches it), got ${
            JSON.stringify(v)
          }`,
          ["stop", i, k],
        );
      }
    }
    parts.push(item as Record<string, number>);
  }
  return combinedStopper(...parts);
}

async function loadPlugin<T>(
  role: PluginRole,
  spec: unknown,
  path: Path,
  base: string,
  err: (m: string, p: Path, key?: boolean) => never,
): Promise<T> {
  const what = role === "callback" ? "logger" : role;
  if (typeof spec === "string") spec = { name: spec };
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    err(
      `A ${what} must be { name: ..., <options> } or { module: ./file.ts, options: {...} }, got ${
        JSON.stringify(spec)
      }`,
      path,
    );
  }
  const s = spec as Record<string, unknown>;
  let factory: ((o: Record<string, unknown>) => unknown) | undefined;
  let options: Record<string, unknown>;
  let label: string;
  if (typeof s.module === "string") {
    for (const k of Object.keys(s)) {
      if (k !== "module" && k !== "options") {
        err(
          `Unknown key "${k}" beside "module"; put plugin options under "options"`,
          [...path, k],
          true,
        );
      }
    }
    const url = resolveModule(s.module, base);
    label = s.module;
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (e) {
      return err(
        `Cannot load the ${what} module "${s.module}": ${(e as Error).message.split("\n")[0]}`,
        [...path, "module"],
      );
    }
    if (typeof mod.default !== "function") {
      err(
        `The ${what} module "${s.module}" must default-export a factory function (options) => ${what}`,
        [...path, "module"],
      );
    }
    factory = mod.default as (o: Record<string, unknown>) => unknown;
    options = (s.options ?? {}) as Record<string, unknown>;
  } else if (typeof s.name === "string") {
    label = s.name;
    factory = await findPluginFactory(role, s.name);
    if (!factory) {
      const names = knownPluginNames(role);
      err(
        `Unknown ${what} "${s.name}"${suggest(s.name, names)}; known: ${
          names.join(", ") || "none"
        } (or load one with module: ./file.ts)`,
        [...path, "name"],
      );
    }
    options = {};
    const nested = s.options && typeof s.options === "object"
      ? (s.options as Record<string, unknown>)
      : {};
    for (const [k, v] of Object.entries({ ...s, ...nested })) {
      if (k !== "name" && k !== "options") options[k] = v;
    }
  } else {
    return err(`A ${what} needs "name" (a registered ${what}) or "module" (a file)`, path);
  }
  const camelOptions = camelKeys(options);
  let plugin: unknown;
  try {
    plugin = factory!(camelOptions);
  } catch (e) {
    if (e instanceof SpaceSpecError && e.path.length) {
      // e.g. a bad domain inside PBT's hyperparam_mutations: point at it.
      const [head, ...rest] = e.path;
      const key = snake(String(head));
      const base = s.options ? [...path, "options"] : path;
      const where = key in options ? [...base, key, ...rest] : path;
      return err(`${what} "${label}": ${e.message}`, where, e.message.includes("nknown key"));
    }
    // Errors of the options module carry the key; a third-party plugin's plain TypeError may
    // only name it in its message.
    const named = isOptionError(e)
      ? e.key.split(".")[0]
      : /"(\w+)"/.exec((e as Error).message)?.[1];
    const key = named ? snake(named) : undefined;
    const where = key && key in options
      ? (s.options ? [...path, "options", key] : [...path, key])
      : path;
    const msg = (e as Error).message.replace(/"(\w+)"/g, (_, k: string) => `"${snake(k)}"`);
    return err(`${what} "${label}": ${msg}`, where, msg.includes("nknown"));
  }
  const problem = checkPluginShape(role, plugin);
  if (problem) err(`${what} "${label}": ${problem}`, path);
  // Saved in experiment.json so that `tunebox resume` can rebuild the plugin by name.
  if (typeof s.name === "string") {
    Object.defineProperty(plugin, "spec", {
      value: { name: s.name, options: camelOptions as never },
      enumerable: false,
      configurable: true,
    });
  }
  return plugin as T;
}

function camelKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = v;
  }
  return out;
}

function snake(k: string): string {
  return fileKey(k);
}

function getIn(o: unknown, path: Path): unknown {
  let cur = o;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Keys that would reach an object's prototype when assigned: never a valid option or parameter. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Refuses, at their line and column, what a hostile or broken file could use against the
 * driver: prototype keys (`__proto__`, `constructor`, `prototype`) and numbers too large for a
 * double (`1e999` would read as Infinity, then print as null).
 */
function checkHostileYaml(doc: Document, lc: LineCounter, file: string): void {
  const fail = (message: string, offset: number | undefined): never => {
    const p = lc.linePos(offset ?? 0);
    throw new ConfigError(message, file, p.line, p.col);
  };
  visit(doc, {
    Pair(_, pair) {
      const k = pair.key;
      if (isScalar(k) && typeof k.value === "string" && FORBIDDEN_KEYS.has(k.value)) {
        fail(`The key "${k.value}" is not allowed (it names an object's prototype)`, k.range?.[0]);
      }
    },
    Scalar(_, node) {
      if (typeof node.value === "number" && !Number.isFinite(node.value)) {
        const src = (node as { source?: string }).source ?? String(node.value);
        if (/^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$/.test(src)) return;
        fail(`The number ${src} is too large (over 1.8e308)`, node.range?.[0]);
      }
    },
  });
}

function applySet(y: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError(`--set expects key=value, got ${JSON.stringify(assignment)}`, "--set");
  }
  const path = assignment.slice(0, eq).split(".");
  const bad = path.find((p) => FORBIDDEN_KEYS.has(p));
  if (bad) {
    throw new ConfigError(`--set ${path.join(".")}: the key "${bad}" is not allowed`, "--set");
  }
  let value: unknown;
  try {
    value = parseYamlValue(assignment.slice(eq + 1));
  } catch (e) {
    throw new ConfigError(
      `--set ${path.join(".")}: the value is not valid YAML: ${(e as Error).message}`,
      "--set",
    );
  }
  let cur = y;
  for (const p of path.slice(0, -1)) {
    if (cur[p] === undefined || cur[p] === null) cur[p] = {};
    if (typeof cur[p] !== "object") {
      throw new ConfigError(`--set ${path.join(".")}: "${p}" is not a mapping`, "--set");
    }
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

function position(doc: Document, lc: LineCounter, path: Path, key: boolean): [number, number] {
  // Walk down as far as the path exists; point at the key or the value.
  let node: unknown = doc.contents;
  let offset: number | undefined = (doc.contents as YamlNode | null)?.range?.[0];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      const last = i === path.length - 1;
      if (last && key) {
        offset = (pair.key as YamlNode).range?.[0] ?? offset;
        break;
      }
      node = pair.value;
      offset = (pair.value as YamlNode | null)?.range?.[0] ?? (pair.key as YamlNode).range?.[0] ??
        offset;
    } else if (node && typeof node === "object" && "items" in node && typeof seg === "number") {
      const item = (node as { items: unknown[] }).items[seg];
      if (!item) break;
      node = item;
      offset = (item as YamlNode).range?.[0] ?? offset;
    } else break;
  }
  if (offset === undefined) return [1, 1];
  const p = lc.linePos(offset);
  return [p.line, p.col];
}
