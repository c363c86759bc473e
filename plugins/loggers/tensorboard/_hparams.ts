/**
 * The HParams plugin's summaries: the experiment (hyperparameters with their domains, metrics),
 * and per session (trial) its start info (the config) and end info (status).
 *
 * Messages follow `tensorboard/plugins/hparams/{plugin_data,api}.proto`; values are
 * `google.protobuf.Value`s.
 *
 * @module
 */

import { isDomain, isPlainObject, parameters, type Space } from "../../../core/space.ts";
import type { Config, JsonValue } from "../../../core/trial.ts";
import { decodeFields, fieldsOf, ProtoWriter, readDouble } from "./_proto.ts";

/** The plugin name in `SummaryMetadata.plugin_data`. */
export const HPARAMS_PLUGIN = "hparams";
/** Tag of the experiment summary (once, in the root run). */
export const EXPERIMENT_TAG = "_hparams_/experiment";
/** Tag of a session's start info (once per trial run). */
export const SESSION_START_TAG = "_hparams_/session_start_info";
/** Tag of a session's end info (once per trial run). */
export const SESSION_END_TAG = "_hparams_/session_end_info";

/** A hyperparameter value as the HParams plugin stores it. */
export type HParamValue = number | string | boolean;

/** `tensorboard.hparams.DataType`. */
export type HParamType = "unset" | "string" | "bool" | "float64";
const TYPE_CODE: Record<HParamType, number> = { unset: 0, string: 1, bool: 2, float64: 3 };

/** One hyperparameter column of the experiment. */
export interface HParamSpec {
  /** The config key flattened with `/`, e.g. `optimizer/lr`. */
  readonly name: string;
  /** The value type. */
  readonly type: HParamType;
  /** The values a discrete parameter takes (choice, grid). */
  readonly discrete?: readonly HParamValue[];
  /** `[min, max]` of a numeric range. */
  readonly interval?: readonly [number, number];
}

/** `tensorboard.hparams.Status` of a finished session. */
export type SessionStatus = "unknown" | "success" | "failure" | "running";
const STATUS_CODE: Record<SessionStatus, number> = {
  unknown: 0,
  success: 1,
  failure: 2,
  running: 3,
};

type Kind = "number" | "string" | "boolean";

function kindOf(v: HParamValue): Kind {
  return typeof v as Kind;
}

/**
 * Flattens a config into hyperparameter values: nested objects join their keys with `/`,
 * arrays become their JSON text, `null` is left out (the HParams plugin has no null).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flattenConfig } from "./_hparams.ts";
 * assert.deepEqual(
 *   flattenConfig({ opt: { lr: 0.1, name: "sgd" }, layers: [64, 64], x: null }),
 *   new Map<string, string | number>([["opt/lr", 0.1], ["opt/name", "sgd"], ["layers", "[64,64]"]]),
 * );
 * ```
 */
export function flattenConfig(config: Config): Map<string, HParamValue> {
  const out = new Map<string, HParamValue>();
  const walk = (v: JsonValue, key: string): void => {
    if (v === null) return;
    if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") {
      out.set(key, v);
    } else if (Array.isArray(v)) out.set(key, JSON.stringify(v));
    else {
      for (const [k, c] of Object.entries(v as Record<string, JsonValue>)) {
        walk(c, key ? `${key}/${k}` : k);
      }
    }
  };
  walk(config, "");
  return out;
}

interface Acc {
  kinds: Set<Kind>;
  values: HParamValue[];
  lo: number;
  hi: number;
  open: boolean;
}

/**
 * The hyperparameter columns of a search space, from {@linkcode parameters}: numeric ranges get
 * an interval domain, `choice` and `grid` the list of their values. Keys of `choice` options that
 * are objects (conditional sub-spaces) are listed with the values their branches give them; two
 * branches with the same key merge their domains. `randn` and `sampleFrom` get no domain, and a
 * type only from `observed` values.
 *
 * @param observed value kinds seen in trial configs, used where the space gives no type.
 * @example
 * ```ts
 * import { choice, loguniform } from "../../../core/space.ts";
 * import assert from "node:assert/strict";
 * import { hparamSpecs } from "./_hparams.ts";
 * assert.deepEqual(hparamSpecs({ lr: loguniform(1e-4, 1e-1), act: choice(["relu", "tanh"]) }), [
 *   { name: "lr", type: "float64", interval: [0.0001, 0.1] },
 *   { name: "act", type: "string", discrete: ["relu", "tanh"] },
 * ]);
 * ```
 */
export function hparamSpecs(
  space: Space,
  observed?: ReadonlyMap<string, ReadonlySet<string>>,
): HParamSpec[] {
  const accs = new Map<string, Acc>();
  const acc = (name: string): Acc => {
    let a = accs.get(name);
    if (!a) {
      a = { kinds: new Set(), values: [], lo: Infinity, hi: -Infinity, open: false };
      accs.set(name, a);
    }
    return a;
  };
  const addValue = (name: string, v: HParamValue): void => {
    const a = acc(name);
    a.kinds.add(kindOf(v));
    if (!a.values.includes(v)) a.values.push(v);
  };
  const addOption = (name: string, o: unknown, inChoice: boolean): void => {
    if (typeof o === "number" || typeof o === "string" || typeof o === "boolean") addValue(name, o);
    else if (Array.isArray(o)) addValue(name, JSON.stringify(o));
    else if (isPlainObject(o)) {
      for (const [k, v] of Object.entries(o)) {
        const child = `${name}/${k}`;
        // parameters() lists the domains inside choice options itself; grid values it does not.
        if (isDomain(v)) {
          if (!inChoice) acc(child).open = true;
        } else addOption(child, v, inChoice);
      }
    }
  };
  for (const p of parameters(space)) {
    const name = p.path.join("/");
    const d = p.domain;
    if (d.kind === "float" || d.kind === "int") {
      const a = acc(name);
      a.kinds.add("number");
      a.lo = Math.min(a.lo, d.min);
      a.hi = Math.max(a.hi, d.max);
    } else if (d.kind === "normal") {
      const a = acc(name);
      a.kinds.add("number");
      a.open = true;
    } else if (d.kind === "sample_from") acc(name).open = true;
    else if (d.kind === "choice") { for (const o of d.options) addOption(name, o, true); }
    else for (const o of d.values) addOption(name, o, false);
  }
  const specs: HParamSpec[] = [];
  for (const [name, a] of accs) {
    const kinds = a.kinds.size > 0 ? a.kinds : new Set(observed?.get(name) ?? []) as Set<Kind>;
    if (kinds.size !== 1) {
      // Mixed or unknown kinds: a string column with no domain to filter on.
      if (kinds.size > 1 || a.values.length > 0) specs.push({ name, type: "string" });
      else specs.push({ name, type: "unset" });
      continue;
    }
    const kind = [...kinds][0];
    const type: HParamType = kind === "number" ? "float64" : kind === "string" ? "string" : "bool";
    if (a.open) specs.push({ name, type });
    else if (a.lo <= a.hi) {
      const nums = a.values as number[];
      specs.push({
        name,
        type,
        interval: [Math.min(a.lo, ...nums), Math.max(a.hi, ...nums)],
      });
    } else specs.push({ name, type, discrete: a.values });
  }
  return specs;
}

function writeValue(w: ProtoWriter, v: HParamValue): void {
  // Members of Value's oneof are written even when 0 or false.
  if (typeof v === "number") w.double(2, v);
  else if (typeof v === "string") w.string(3, v);
  else w.uint(4, v ? 1 : 0);
}

/** What {@linkcode experimentContent} writes. */
export interface ExperimentInfo {
  /** The experiment name. */
  readonly name: string;
  /** Markdown shown by TensorBoard. */
  readonly description: string;
  /** Unix seconds. */
  readonly timeCreatedSecs: number;
  /** The hyperparameter columns. */
  readonly hparams: readonly HParamSpec[];
  /** The metric tags (of each trial's own run). */
  readonly metrics: readonly string[];
}

/**
 * `HParamsPluginData{experiment}` as bytes (the summary metadata's `content`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentContent } from "./_hparams.ts";
 * const c = experimentContent({ name: "", description: "", timeCreatedSecs: 0,
 *   hparams: [{ name: "lr", type: "float64" }], metrics: ["accuracy"] });
 * assert.equal(c.length, 24);
 * ```
 */
export function experimentContent(info: ExperimentInfo): Uint8Array {
  return new ProtoWriter().message(2, (e) => {
    if (info.description) e.string(1, info.description);
    if (info.timeCreatedSecs) e.double(3, info.timeCreatedSecs);
    for (const h of info.hparams) {
      e.message(4, (hi) => {
        hi.string(1, h.name);
        if (TYPE_CODE[h.type] !== 0) hi.uint(4, TYPE_CODE[h.type]);
        if (h.discrete) {
          hi.message(5, (list) => {
            for (const v of h.discrete!) list.message(1, (val) => writeValue(val, v));
          });
        } else if (h.interval) {
          hi.message(6, (iv) => iv.double(1, h.interval![0]).double(2, h.interval![1]));
        }
      });
    }
    for (const m of info.metrics) e.message(5, (mi) => mi.message(1, (mn) => mn.string(2, m)));
    if (info.name) e.string(6, info.name);
  }).finish().slice();
}

/**
 * `HParamsPluginData{session_start_info}` as bytes: the trial's hyperparameters.
 *
 * @param groupName sessions with the same group name are aggregated; empty: one group each.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sessionStartContent } from "./_hparams.ts";
 * const c = sessionStartContent(new Map([["lr", 0.1]]), 0);
 * assert.equal(
 *   Array.from(c, (b) => b.toString(16).padStart(2, "0")).join(" "),
 *   "1a 11 0a 0f 0a 02 6c 72 12 09 11 9a 99 99 99 99 99 b9 3f",
 * );
 * ```
 */
export function sessionStartContent(
  hparams: ReadonlyMap<string, HParamValue>,
  startTimeSecs: number,
  groupName = "",
): Uint8Array {
  return new ProtoWriter().message(3, (s) => {
    for (const [k, v] of hparams) {
      s.message(1, (entry) => entry.string(1, k).message(2, (val) => writeValue(val, v)));
    }
    if (groupName) s.string(4, groupName);
    if (startTimeSecs) s.double(5, startTimeSecs);
  }).finish().slice();
}

/**
 * `HParamsPluginData{session_end_info}` as bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sessionEndContent } from "./_hparams.ts";
 * assert.deepEqual(sessionEndContent("success", 0), new Uint8Array([34, 2, 8, 1]));
 * ```
 */
export function sessionEndContent(status: SessionStatus, endTimeSecs: number): Uint8Array {
  return new ProtoWriter().message(4, (s) => {
    if (STATUS_CODE[status] !== 0) s.uint(1, STATUS_CODE[status]);
    if (endTimeSecs) s.double(2, endTimeSecs);
  }).finish().slice();
}

const utf8 = new TextDecoder();

/** What {@linkcode readExperiment} finds in an experiment content. */
export interface ExperimentSummary {
  /** The metric tags of the sessions' own runs (empty group). */
  readonly metrics: string[];
  /** `time_created_secs` (0 when absent). */
  readonly timeCreatedSecs: number;
}

/**
 * Reads back the parts of an experiment content that a resumed experiment keeps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentContent, readExperiment } from "./_hparams.ts";
 * const c = experimentContent({ name: "", description: "", timeCreatedSecs: 5, hparams: [],
 *   metrics: ["loss"] });
 * assert.deepEqual(readExperiment(c), { metrics: ["loss"], timeCreatedSecs: 5 });
 * ```
 */
export function readExperiment(content: Uint8Array): ExperimentSummary {
  const metrics: string[] = [];
  let timeCreatedSecs = 0;
  for (const exp of fieldsOf(content, 2)) {
    for (const f of decodeFields(exp.bytes)) {
      if (f.field === 3 && f.bytes.length === 8) timeCreatedSecs = readDouble(f.bytes);
      if (f.field !== 5) continue;
      for (const name of fieldsOf(f.bytes, 1)) {
        const nf = decodeFields(name.bytes);
        if (nf.some((x) => x.field === 1 && x.bytes.length > 0)) continue;
        const tag = nf.find((x) => x.field === 2);
        if (tag) metrics.push(utf8.decode(tag.bytes));
      }
    }
  }
  return { metrics, timeCreatedSecs };
}

/**
 * The plugin content of the first summary value tagged `tag` among encoded events, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NULL_TENSOR, pluginEvent } from "./_event_file.ts";
 * import { pluginContent } from "./_hparams.ts";
 * const e = pluginEvent(0, 1, "t", "hparams", new Uint8Array([1, 2]), NULL_TENSOR, 2);
 * assert.deepEqual(pluginContent([e], "t"), new Uint8Array([1, 2]));
 * ```
 */
export function pluginContent(events: readonly Uint8Array[], tag: string): Uint8Array | undefined {
  for (const event of events) {
    for (const summary of fieldsOf(event, 5)) {
      for (const value of fieldsOf(summary.bytes, 1)) {
        const fields = decodeFields(value.bytes);
        const t = fields.find((f) => f.field === 1);
        if (!t || utf8.decode(t.bytes) !== tag) continue;
        for (const meta of fields.filter((f) => f.field === 9)) {
          for (const pd of fieldsOf(meta.bytes, 1)) {
            const content = fieldsOf(pd.bytes, 2)[0];
            return content ? content.bytes : new Uint8Array(0);
          }
        }
      }
    }
  }
  return undefined;
}
