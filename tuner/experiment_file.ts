/**
 * The YAML experiment file -> Tuner options. Keys are snake_case; every error names
 * the file, line and column, the key, what came in and what is expected, with a "did you mean".
 *
 * @module
 */

import { resolve } from "../core/_path.ts";
import { type Document, LineCounter, parseDocument, visit } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { fromRayShape, isRayShape } from "./_ray_shape.ts";
import type { Space } from "../core/space.ts";
import { isOptionError } from "../core/options.ts";
import type { TunerOptions } from "./tuner.ts";
import { Tuner } from "./tuner.ts";
import { TOP_KEYS } from "./_experiment_keys.ts";
import {
  checkExperimentKeys,
  type ErrAt,
  type FileSection,
  type Options,
  parseAllowRemote,
  parseBackend,
  parseCheckpoint,
  parseExecutor,
  parseExperimentKeys,
  parseObjectiveAndSpace,
  parsePlugins,
  parseReporter,
  parseResources,
  parseSandbox,
  parseStop,
} from "./_experiment_sections.ts";
import { applySet, checkHostileYaml, getIn, type Path, position, snake } from "./_yaml.ts";

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
  const c = readExperiment(text, file, overrides);
  checkExperimentKeys(c);
  // Always in this order, so that of several mistakes in a file the same one is reported.
  const out: Options = {
    ...parseObjectiveAndSpace(c),
    ...parseExperimentKeys(c, overrides.storage),
  };
  Object.assign(
    out,
    parseResources(c),
    parseExecutor(c, out.trainable as string, out.denoConfig),
    parseAllowRemote(c),
    parseBackend(c),
    await parseStop(c),
    parseCheckpoint(c),
    parseSandbox(c),
    parseReporter(c),
    await parsePlugins(c),
  );
  checkWithTuner(c, out);
  return out as unknown as TunerOptions<Space>;
}

/**
 * The file's text as a mapping of keys with a way to point at them: the YAML parsed (syntax,
 * hostile input and alias bombs refused at their position), the `--set` overrides applied, a
 * Ray-shaped file translated (an error then points at the Ray key it came from), and the CLI's
 * `name` and `executor` overrides.
 */
function readExperiment(text: string, file: string, overrides: LoadOptions): FileSection {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const p = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
    throw new ConfigError(`YAML syntax error: ${e.message.split("\n")[0]}`, file, p.line, p.col);
  }
  let remap: [Path, Path][] = [];
  const err: ErrAt = (message, path, key = false) => {
    const [ours, theirs] = remap.find(([ours]) => ours.every((seg, i) => path[i] === seg)) ??
      [[], []];
    const [line, col] = position(doc, lc, [...theirs, ...path.slice(ours.length)], key);
    throw new ConfigError(message, file, line, col);
  };
  checkHostileYaml(doc, lc, file);
  const raw = expandAliases(doc, lc, file);
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
  return { y, base: resolve(file), err };
}

/** The document as plain values; a "billion laughs" file stops at the hundredth alias. */
function expandAliases(doc: Document, lc: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
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
}

/**
 * The Tuner validates the rest; its errors carry the option key, which is mapped back to the
 * file's key, and option names in the message are shown as the file spells them.
 */
function checkWithTuner({ y, err }: FileSection, out: Options): void {
  try {
    new Tuner(out as unknown as TunerOptions<Space>);
  } catch (e) {
    if (!isOptionError(e)) throw e;
    const path = e.key ? e.key.replace(/\[.*$/, "").split(".").map(snake) : [];
    const where = path.length && path.every((_, i) => getIn(y, path.slice(0, i + 1)) !== undefined)
      ? path
      : [];
    const yamlName = (q: string, p: string) =>
      Object.hasOwn(TOP_KEYS, snake(p.split(".")[0]))
        ? `"${p.split(".").map(snake).join(".")}"`
        : q;
    err(e.message.replace(/^Tuner: /, "").replace(/"([\w.]+)"/g, yamlName), where);
  }
}
