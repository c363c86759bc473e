/**
 * Checks of what plugins give the runner: a plugin's shape, a scheduler's decision, the
 * resources of a reallocation, a single-objective plugin in a multi-objective experiment.
 * Part of the plugin contracts: {@linkcode ./plugin.ts} re-exports everything here.
 *
 * @module
 */

import type { PluginRole } from "./plugin_registry.ts";
import { isPlainJson } from "./_plain_json.ts";

/**
 * Checks that a value has the shape of a plugin of `role`; returns a problem description or
 * undefined when it fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPluginShape } from "./plugin.ts";
 * assert.match(checkPluginShape("searcher", { name: "x" })!, /suggest/);
 * assert.equal(checkPluginShape("searcher", { name: "x", suggest: () => "done" }), undefined);
 * ```
 */
export function checkPluginShape(role: PluginRole, value: unknown): string | undefined {
  if (role === "stopper") {
    if (typeof value !== "function") {
      return `a stopper must be a function (trialId, result) => boolean, got ${
        value === null ? "null" : typeof value
      }`;
    }
    const stopAll = (value as { stopAll?: unknown }).stopAll;
    if (stopAll !== undefined && typeof stopAll !== "function") {
      return `a stopper's stopAll must be a function`;
    }
    return undefined;
  }
  if (typeof value !== "object" || value === null) {
    return `a ${role} must be an object, got ${String(value)}`;
  }
  const v = value as Record<string, unknown>;
  if (typeof v.name !== "string" || !v.name) return `a ${role} needs a string "name"`;
  const required = role === "searcher" ? ["suggest"] : role === "scheduler" ? ["onReport"] : [];
  for (const m of required) {
    if (typeof v[m] !== "function") return `${role} "${v.name}" has no ${m}() method`;
  }
  const hooks = role === "callback"
    ? [
      "onExperimentStart",
      "onTrialStart",
      "onReport",
      "onCheckpoint",
      "onTrialEnd",
      "onExperimentEnd",
    ]
    : role === "searcher"
    ? ["setup", "onReport", "onComplete", "snapshot", "restore"]
    : [
      "setup",
      "onTrialAdd",
      "onComplete",
      "chooseNext",
      "takeStops",
      "takeExploits",
      "snapshot",
      "restore",
    ];
  for (const h of hooks) {
    if (h in v && v[h] !== undefined && typeof v[h] !== "function") {
      return `${role} "${v.name}": ${h} must be a function`;
    }
  }
  if (v.multiObjective !== undefined && typeof v.multiObjective !== "boolean") {
    return `${role} "${v.name}": multiObjective must be true or false`;
  }
  return undefined;
}

/**
 * Checks a scheduler's {@linkcode Decision}: the one check the runner applies to every decision
 * and the scheduler contract suite (`@tunebox/tunebox/testing`) asserts. Returns a problem
 * description, or undefined when the decision is valid.
 *
 * @param d What `onReport` returned.
 * @param trials The ids of the experiment's trials, to check an exploit's donor; omit to skip.
 * @returns The problem, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDecision } from "./plugin.ts";
 *
 * assert.equal(validateDecision({ kind: "stop", reason: "below the median" }), undefined);
 * assert.match(validateDecision({ kind: "stop" })!, /needs a reason/);
 * assert.match(
 *   validateDecision({ kind: "exploit", from: "a_00009", config: {} }, new Set(["a_00000"]))!,
 *   /exploit from unknown trial "a_00009"/,
 * );
 * ```
 */
export function validateDecision(
  d: unknown,
  trials?: { has(id: string): boolean },
): string | undefined {
  const kinds = ["continue", "stop", "pause", "exploit", "reallocate"];
  const x = d as Record<string, unknown>;
  if (typeof d !== "object" || d === null || !kinds.includes(x.kind as string)) {
    let shown: string;
    try {
      shown = JSON.stringify(d) ?? String(d);
    } catch {
      shown = String(d);
    }
    return `it returned ${shown}, not a Decision ({ kind: "continue" | "stop" | "pause" | "exploit" | "reallocate" })`;
  }
  if (x.kind === "stop") {
    if (typeof x.reason !== "string" || !x.reason) {
      return `a stop decision needs a reason (a non-empty string), got ${JSON.stringify(x.reason)}`;
    }
    if (x.completed !== undefined && typeof x.completed !== "boolean") {
      return `a stop decision's "completed" must be true or false, got ${
        JSON.stringify(x.completed)
      }`;
    }
  }
  if (x.kind === "exploit") {
    if (typeof x.from !== "string") return "an exploit decision needs a donor id in `from`";
    if (trials && !trials.has(x.from)) return `exploit from unknown trial "${x.from}"`;
    const c = x.config;
    if (!c || typeof c !== "object" || Array.isArray(c)) {
      return "an exploit decision needs a config object";
    }
    if (!isPlainJson(c, 0)) return "an exploit config must be plain JSON";
  }
  if (x.kind === "reallocate") return resourcesProblem(x.resources, "a reallocate decision");
  return undefined;
}

/**
 * What is wrong with the CPUs and GPUs a trial is given (a `reallocate` decision, an allocation
 * function's answer), or undefined. The amounts must be finite and >= 0, not both 0, and GPUs
 * above 1 whole (a trial shares one device or takes whole devices); whether they fit the
 * experiment is the runner's check.
 *
 * @param r The resources, `{ cpu, gpu }`.
 * @param what What gave them, for the message.
 * @returns The problem, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resourcesProblem } from "./plugin.ts";
 *
 * assert.equal(resourcesProblem({ cpu: 2, gpu: 0.5 }, "x"), undefined);
 * assert.match(resourcesProblem({ cpu: -1, gpu: 0 }, "x")!, /cpu must be a finite number >= 0/);
 * assert.match(resourcesProblem({ cpu: 1, gpu: 1.5 }, "x")!, /whole number/);
 * ```
 */
export function resourcesProblem(r: unknown, what: string): string | undefined {
  if (!r || typeof r !== "object" || Array.isArray(r)) {
    return `${what} needs resources: { cpu, gpu }, got ${JSON.stringify(r) ?? String(r)}`;
  }
  const o = r as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== "cpu" && k !== "gpu");
  if (extra.length) {
    return `${what}: only cpu and gpu can be changed, not ${extra.map((k) => `"${k}"`).join(", ")}`;
  }
  for (const k of ["cpu", "gpu"] as const) {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      return `${what}: ${k} must be a finite number >= 0, got ${
        typeof v === "string" ? JSON.stringify(v) : String(v)
      }`;
    }
  }
  const cpu = o.cpu as number, gpu = o.gpu as number;
  if (gpu > 1 && !Number.isInteger(gpu)) {
    return `${what}: gpu is ${gpu}, but GPUs above 1 must be a whole number (a trial shares one ` +
      `device or takes whole devices)`;
  }
  if (cpu === 0 && gpu === 0) return `${what} gives the trial no cpu and no gpu`;
  return undefined;
}

/**
 * Throws a clear error when a single-objective plugin is set up for a multi-objective
 * experiment (its context lists several `metrics`). Plugins call it first thing in `setup`.
 *
 * @param who the plugin's factory name, for the message.
 * @param ctx the setup context.
 * @throws {TypeError} naming the objectives and what to use instead.
 * @example
 * ```ts
 * import { requireSingleObjective } from "./plugin.ts";
 * requireSingleObjective("mySearcher", { metric: "loss" }); // fine: one objective
 * ```
 */
export function requireSingleObjective(
  who: string,
  ctx: { readonly metric: string; readonly metrics?: readonly string[] },
): void {
  if (!ctx.metrics || ctx.metrics.length <= 1) return;
  throw new TypeError(
    `${who} optimises one metric, but the experiment has ${ctx.metrics.length} objectives (${
      ctx.metrics.map((m) => JSON.stringify(m)).join(", ")
    }): use a multi-objective plugin (searchers: tpeSearcher, nsga2Searcher, randomSearcher; ` +
      `scheduler: fifoScheduler), or give the experiment one metric`,
  );
}
