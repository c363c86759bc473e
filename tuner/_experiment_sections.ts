// Private to the experiment file loader (experiment_file.ts): one parser per section of the file.
// Each reads its keys from the file's mapping (after `--set` and the Ray translation) and returns
// the Tuner options it makes; a mistake is thrown by `err` at the key it concerns. The loader
// calls them in the file's reading order, so that of several mistakes the same one is reported.

import { dirname, isAbsolute, resolve } from "../core/_path.ts";
import { resolveModule } from "../core/plugin.ts";
import type { Callback, Scheduler, Searcher } from "../core/plugin.ts";
import { type Space, spaceFromJson, SpaceSpecError, suggest } from "../core/space.ts";
import { FILE_NUMBERS } from "./option_table.ts";
import type { TableReporterOptions } from "../plugins/reporters/table.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tfjsBackend } from "../plugins/backends/tfjs/permissions.ts";
import { EXECUTOR_KEYS, SLURM_KEYS, SUB_KEYS, TOP_KEYS } from "./_experiment_keys.ts";
import { loadPlugin, loadStop } from "./_experiment_plugins.ts";
import { camelKeys, type Path } from "./_yaml.ts";

/** Throws a `ConfigError` at the key (`key: true`) or the value at `path` of the file. */
export type ErrAt = (message: string, path: Path, key?: boolean) => never;

/** What every section parser reads: the file's keys and where they are. */
export interface FileSection {
  /** The file's mapping, after `--set` overrides and the Ray translation. */
  readonly y: Record<string, unknown>;
  /** The file's absolute path: the base of relative paths and module specifiers. */
  readonly base: string;
  /** Throws at a key of the file. */
  readonly err: ErrAt;
}

/** Tuner options under construction, keyed as `TunerOptions`. */
export type Options = Record<string, unknown>;

/** A path of the file, absolute, relative to the file's folder. */
function rel(c: FileSection, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(c.base), p);
}

/** A top-level string key (`undefined` when absent, unless `required`). */
function str(c: FileSection, k: string, required = false): string | undefined {
  const v = c.y[k];
  if (v === undefined || v === null) {
    if (required) c.err(`Missing key "${k}": ${TOP_KEYS[k]}`, []);
    return undefined;
  }
  if (typeof v !== "string" || !v) {
    c.err(`"${k}" must be ${TOP_KEYS[k]}, got ${JSON.stringify(v)}`, [k]);
  }
  return v as string;
}

/** A top-level finite number key, or undefined. */
function num(c: FileSection, k: string): number | undefined {
  const v = c.y[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    c.err(`"${k}" must be ${TOP_KEYS[k]}, got ${JSON.stringify(v)}`, [k]);
  }
  return v as number;
}

/** A required top-level key that is one name or a non-empty list of names. */
function names(c: FileSection, k: string): string | string[] {
  const v = c.y[k];
  if (!Array.isArray(v)) return str(c, k, true)!;
  if (!v.length) c.err(`"${k}" is an empty list: give ${TOP_KEYS[k]}`, [k]);
  for (const [i, x] of v.entries()) {
    if (typeof x !== "string" || !x) {
      c.err(`"${k}" entry ${i + 1} must be a name, got ${JSON.stringify(x)}`, [k, i]);
    }
  }
  return v as string[];
}

/** Every key is known: the top level, and the mappings of `SUB_KEYS` (`resources`, ...). */
export function checkExperimentKeys({ y, err }: FileSection): void {
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
}

/** `trainable`, `metric`, `mode` (all required) and `space`. */
export function parseObjectiveAndSpace(c: FileSection): Options {
  const trainable = str(c, "trainable", true)!;
  const metric = names(c, "metric");
  const mode = names(c, "mode");
  for (const [i, m] of (Array.isArray(mode) ? mode : [mode]).entries()) {
    if (m !== "min" && m !== "max") {
      c.err(
        `"mode"${Array.isArray(mode) ? ` entry ${i + 1}` : ""} must be min or max, got ${
          JSON.stringify(m)
        }`,
        Array.isArray(mode) ? ["mode", i] : ["mode"],
      );
    }
  }
  const space = parseSpace(c);
  return { trainable: resolveModule(trainable, c.base), space, metric, mode };
}

/** `space`: the search space in its JSON form, with errors at the parameter. */
export function parseSpace({ y, err }: FileSection): Space {
  if (y.space === undefined) err(`Missing key "space": the search space`, []);
  try {
    return spaceFromJson(y.space);
  } catch (e) {
    if (e instanceof SpaceSpecError) {
      err(e.message, ["space", ...e.path], e.message.includes("unknown key"));
    }
    throw e;
  }
}

/** The numbers (`num_samples`, `time_budget_s`, ...), `name`, `storage` and `deno_config`. */
export function parseExperimentKeys(c: FileSection, storageOverride?: string): Options {
  const out: Options = {};
  for (const [k, opt, factor] of FILE_NUMBERS) {
    const v = num(c, k);
    if (v !== undefined) out[opt] = v * factor;
  }
  const name = str(c, "name");
  if (name) out.name = name;
  const storage = storageOverride ? resolve(storageOverride) : str(c, "storage");
  out.storage = storage ? (storageOverride ? storage : rel(c, storage)) : rel(c, "tunebox_results");
  if (c.y.deno_config !== undefined) {
    out.denoConfig = c.y.deno_config === false ? false : rel(c, String(c.y.deno_config));
  }
  return out;
}

/** `resources`: what one trial asks for (its keys were checked with the others). */
export function parseResources({ y }: FileSection): Options {
  return y.resources ? { resources: camelKeys(y.resources as Record<string, unknown>) } : {};
}

/** `executor`: a name, or a mapping of its options by executor (`slurm:` nested). */
export function parseExecutor(
  c: FileSection,
  trainable: string,
  denoConfig: unknown,
): Options {
  const { y, err } = c;
  if (y.executor === undefined) return {};
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
  const { name, slurm, ...rest } = spec;
  const options = camelKeys(rest);
  if (slurm !== undefined) options.slurm = parseSlurm(c, slurm);
  if (options.denoDir) options.denoDir = rel(c, String(options.denoDir));
  if (denoConfig !== undefined) options.denoConfig = denoConfig;
  return { executor: executorFromSpec({ name: String(name), options }, trainable) };
}

/** `executor.slurm`: the `sbatch`/`srun` options. */
function parseSlurm({ err }: FileSection, slurm: unknown): Record<string, unknown> {
  if (slurm === null || typeof slurm !== "object" || Array.isArray(slurm)) {
    err(`"executor.slurm" must be a mapping of ${SLURM_KEYS.join(", ")}`, ["executor", "slurm"]);
  }
  for (const k of Object.keys(slurm as object)) {
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
  return camelKeys(slurm as Record<string, unknown>);
}

/** `allow_remote_trainable`: true or false. */
export function parseAllowRemote({ y, err }: FileSection): Options {
  const v = y.allow_remote_trainable;
  if (v === undefined) return {};
  if (typeof v !== "boolean") {
    err(`"allow_remote_trainable" must be true or false, got ${JSON.stringify(v)}`, [
      "allow_remote_trainable",
    ]);
  }
  return { allowRemoteTrainable: v };
}

/** `backend: tfjs` or `backend: { name: tfjs, native: true }`: tfjsBackend's options. */
export function parseBackend(c: FileSection): Options {
  const { y, err } = c;
  if (y.backend === undefined) return {};
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
  return {
    backend: tfjsBackend({
      ...(rest.native !== undefined ? { native: rest.native as boolean } : {}),
      ...(rest.node_modules !== undefined
        ? { nodeModules: rel(c, rest.node_modules as string) }
        : {}),
    }),
  };
}

/** `stop`: criteria, one stopper, or a list of both. */
export async function parseStop({ y, base, err }: FileSection): Promise<Options> {
  return y.stop !== undefined ? { stop: await loadStop(y.stop, base, err) } : {};
}

/** `checkpoint`: how many to keep and by which score. */
export function parseCheckpoint({ y }: FileSection): Options {
  if (!y.checkpoint) return {};
  const c = y.checkpoint as Record<string, unknown>;
  return {
    checkpoint: {
      ...(c.num_to_keep !== undefined ? { numToKeep: c.num_to_keep } : {}),
      ...(c.score_attribute !== undefined ? { scoreAttribute: c.score_attribute } : {}),
      ...(c.score_order !== undefined ? { scoreOrder: c.score_order } : {}),
    },
  };
}

/** `sandbox`: the trials' extra permissions; paths relative to the file. */
export function parseSandbox(c: FileSection): Options {
  if (!c.y.sandbox) return {};
  const sandbox: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c.y.sandbox as Record<string, unknown>)) {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      c.err(`"sandbox.${k}" must be a list of strings`, ["sandbox", k]);
    }
    const paths = k === "read" || k === "write" || k === "ffi";
    sandbox[k] = paths ? (v as string[]).map((p) => rel(c, p)) : v;
  }
  return { sandbox };
}

/** `reporter`: the table's columns and pace, or `false` for none. */
export function parseReporter({ y }: FileSection): Options {
  if (y.reporter === undefined) return {};
  if (y.reporter === false) return { reporter: false };
  const r = y.reporter as Record<string, unknown>;
  return {
    reporter: tableReporter({
      ...(r.parameter_columns
        ? { parameterColumns: r.parameter_columns as TableReporterOptions["parameterColumns"] }
        : {}),
      ...(r.metric_columns
        ? { metricColumns: r.metric_columns as TableReporterOptions["metricColumns"] }
        : {}),
      ...(r.max_rows ? { maxRows: Number(r.max_rows) } : {}),
      ...(r.interval_ms ? { intervalMs: Number(r.interval_ms) } : {}),
    }),
  };
}

/** `scheduler`, `searcher` and `loggers` (the callbacks), each by name or module. */
export async function parsePlugins({ y, base, err }: FileSection): Promise<Options> {
  const out: Options = {};
  if (y.scheduler !== undefined) {
    out.scheduler = await loadPlugin<Scheduler>("scheduler", y.scheduler, ["scheduler"], base, err);
  }
  if (y.searcher !== undefined) {
    out.searcher = await loadPlugin<Searcher>("searcher", y.searcher, ["searcher"], base, err);
  }
  if (y.loggers !== undefined) {
    if (!Array.isArray(y.loggers)) err(`"loggers" must be ${TOP_KEYS.loggers}`, ["loggers"]);
    const callbacks: Callback[] = [];
    for (const [i, spec] of (y.loggers as unknown[]).entries()) {
      callbacks.push(await loadPlugin<Callback>("callback", spec, ["loggers", i], base, err));
    }
    out.callbacks = callbacks;
  }
  return out;
}
