/**
 * The YAML experiment file -> Tuner options. Keys are snake_case; every error names
 * the file, line and column, the key, what came in and what is expected, with a "did you mean".
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../core/_path.ts";
import { LineCounter, parseDocument, visit } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { fromRayShape, isRayShape } from "./_ray_shape.ts";
import { resolveModule } from "../core/plugin.ts";
import type { Callback, Scheduler, Searcher } from "../core/plugin.ts";
import { type Space, spaceFromJson, SpaceSpecError, suggest } from "../core/space.ts";
import { isOptionError } from "../core/options.ts";
import { FILE_NUMBERS } from "./option_table.ts";
import type { TunerOptions } from "./tuner.ts";
import { Tuner } from "./tuner.ts";
import type { TableReporterOptions } from "../plugins/reporters/table.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tfjsBackend } from "../plugins/backends/tfjs/permissions.ts";
import { EXECUTOR_KEYS, SLURM_KEYS, SUB_KEYS, TOP_KEYS } from "./_experiment_keys.ts";
import { loadPlugin, loadStop } from "./_experiment_plugins.ts";
import {
  applySet,
  camelKeys,
  checkHostileYaml,
  getIn,
  type Path,
  position,
  snake,
} from "./_yaml.ts";

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
