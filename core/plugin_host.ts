/**
 * How the runner hosts plugins: a guard that turns a plugin's throw into the
 * experiment's `PluginError`, the check of a scheduler's decision, and the callback bus
 * (each callback's events in order on its own chain; a failing or slow callback never
 * stalls the loop). Methods of the runner, kept here.
 *
 * @module
 */

import type { Callback, Decision } from "./plugin.ts";
import { validateDecision } from "./plugin.ts";
import { PluginError } from "./errors.ts";
import type { Runner } from "./runner.ts";

/** A scheduler's decision if it is well formed; otherwise the experiment's `PluginError` and `continue`. */
export function checkDecision(d: Decision, name: string, r: Runner): Decision {
  // The usual answer needs no walk.
  if (d !== null && typeof d === "object" && d.kind === "continue") return d;
  const problem = validateDecision(d, r.trials);
  if (problem) {
    r.fatal ??= new PluginError(name, "onReport", new TypeError(problem));
    return { kind: "continue" };
  }
  return d;
}

/** Calls a plugin hook; a throw becomes the experiment's `PluginError` (the first one wins). */
export function plugin<T>(this: Runner, name: string, hook: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    this.fatal ??= new PluginError(name, hook, e);
    return undefined;
  }
}

/** Whether a callback has this hook (the event is then worth making). */
export function wants(this: Runner, hook: Exclude<keyof Callback, "name">): boolean {
  // Asked for every report: answered once per hook (the callbacks are fixed for the run).
  let known = this.hooks.get(hook);
  if (known === undefined) {
    known = this.c.callbacks.some((cb) => typeof cb[hook] === "function");
    this.hooks.set(hook, known);
  }
  return known;
}

/** Sends an event to every callback with the hook, in order per callback; a failure is warned once. */
export function emit<K extends Exclude<keyof Callback, "name">>(
  this: Runner,
  hook: K,
  event: Parameters<NonNullable<Callback[K]>>[0],
): void {
  for (const cb of this.c.callbacks) {
    const fn = cb[hook] as ((e: unknown) => void | Promise<void>) | undefined;
    if (typeof fn !== "function") continue;
    const prev = this.chains.get(cb) ?? Promise.resolve();
    this.chains.set(
      cb,
      prev.then(() => fn.call(cb, event)).catch((e) => {
        const key = `${cb.name}.${hook}`;
        if (this.failedHooks.has(key)) return;
        this.failedHooks.add(key);
        this.warn(`${new PluginError(cb.name, hook, e).message} (the experiment goes on)`);
      }),
    );
  }
}

/** Waits for the callbacks' pending events, at most `callbackDrainMs`. */
export async function flushCallbacks(this: Runner): Promise<void> {
  // Nothing sent (no callback has a hook that ran): no timer to arm.
  if (!this.chains.size) return;
  const limit = this.c.callbackDrainMs ?? 60_000;
  const busy = new Set(this.chains.keys());
  for (const [cb, chain] of this.chains) chain.then(() => busy.delete(cb));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const all = Promise.all(this.chains.values()).then(() => true);
  const ok = await Promise.race([
    all,
    new Promise<false>((r) => (timer = setTimeout(() => r(false), limit))),
  ]);
  clearTimeout(timer);
  if (!ok) {
    const names = [...busy].map((cb) => `"${cb.name}"`).join(", ");
    this.warn(
      `callback ${names} still busy ${limit} ms after the experiment ended: not waiting for it ` +
        `(callbackDrainMs); everything the experiment recorded is on disk`,
    );
  }
}
