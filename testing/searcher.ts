/**
 * The Searcher contract suite: every searcher runs it (`searcherContract("random", () =>
 * randomSearcher())`), then its own cases.
 *
 * It checks that configs lie inside the space for every domain type, that conditional parameters
 * appear exactly when their branch is chosen, that a seed makes the searcher reproducible, that a
 * grid is expanded `numSamples` times and then `"done"`, and that snapshot/restore resumes the
 * same stream.
 *
 * @module
 */

import assert from "#assert";
import type { Searcher, SearcherContext } from "../core/plugin.ts";
import type { Config, JsonValue, Mode, TrialResult } from "../core/trial.ts";
import {
  choice,
  type Domain,
  grid,
  isDomain,
  isPlainObject,
  lograndint,
  loguniform,
  qlograndint,
  qloguniform,
  qrandint,
  quniform,
  randint,
  randn,
  sampleFrom,
  type Space,
  uniform,
} from "../core/space.ts";

/** Options of {@linkcode searcherContract}. */
export interface SearcherContractOptions {
  /** Whether the searcher expands grids (`grid(...)` domains) as Ray does. @default true */
  readonly grids?: boolean;
  /** How many trials to run in the validity test (past any start-up phase). @default 60 */
  readonly trials?: number;
  /** Top-level keys the searcher adds to configs (e.g. `__trial_index__`). @default [] */
  readonly extraKeys?: readonly string[];
}

/** A space holding every domain type, conditional sub-spaces, nesting, sampleFrom and constants. */
export const CONTRACT_SPACE: Space = {
  u: uniform(-2, 3),
  lu: loguniform(1e-4, 1),
  qu: quniform(0, 1, 0.05),
  qlu: qloguniform(1, 100, 0.5),
  ri: randint(0, 10),
  qri: qrandint(16, 256, 16),
  lri: lograndint(8, 1025),
  qlri: qlograndint(8, 1024, 8),
  n: randn(0, 1),
  qn: randn(5, 2, 0.5),
  c: choice(["a", "b", 3, null, true]),
  opt: choice([
    { name: "sgd", lr: loguniform(1e-3, 1), momentum: uniform(0, 0.99) },
    { name: "adam", lr: loguniform(1e-5, 1e-2), betas: { b1: uniform(0.8, 0.99) } },
    "none",
  ]),
  nested: {
    depth: randint(1, 4),
    width: sampleFrom((c) => 256 / ((c.nested as { depth: number }).depth)),
  },
  epochs: 10,
};

/**
 * What is wrong with a config for a space (empty when it fits): values outside their domain,
 * parameters missing, or parameters of a branch that was not chosen.
 */
export function configProblems(space: Space, config: Config): string[] {
  const out: string[] = [];
  const check = (node: unknown, value: unknown, path: string): void => {
    if (isDomain(node)) return checkDomain(node, value, path);
    if (isPlainObject(node)) {
      if (!isPlainObject(value)) {
        out.push(`${path || "<root>"}: expected an object, got ${JSON.stringify(value)}`);
        return;
      }
      const want = Object.keys(node).sort().join(","), got = Object.keys(value).sort().join(",");
      if (want !== got) out.push(`${path || "<root>"}: keys [${got}], expected [${want}]`);
      for (const k of Object.keys(node)) {
        if (k in value) check(node[k], value[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    if (JSON.stringify(node) !== JSON.stringify(value)) {
      out.push(`${path}: constant ${JSON.stringify(node)} became ${JSON.stringify(value)}`);
    }
  };
  const checkDomain = (d: Domain, v: unknown, path: string): void => {
    const bad = (why: string) => out.push(`${path} = ${JSON.stringify(v)}: ${why}`);
    switch (d.kind) {
      case "float":
        if (typeof v !== "number" || !Number.isFinite(v)) return void bad("not a finite number");
        if (v < d.min - 1e-12 || v > d.max + 1e-12) bad(`outside [${d.min}, ${d.max}]`);
        if (d.q && Math.abs(v / d.q - Math.round(v / d.q)) > 1e-6) bad(`not a multiple of ${d.q}`);
        return;
      case "int":
        if (typeof v !== "number" || !Number.isInteger(v)) return void bad("not an integer");
        if (v < d.min || v > d.max) bad(`outside [${d.min}, ${d.max}]`);
        if (v % d.q !== 0) bad(`not a multiple of ${d.q}`);
        return;
      case "normal":
        if (typeof v !== "number" || !Number.isFinite(v)) return void bad("not a finite number");
        if (d.q && Math.abs(v / d.q - Math.round(v / d.q)) > 1e-6) bad(`not a multiple of ${d.q}`);
        return;
      case "grid":
        if (!d.values.some((x) => JSON.stringify(x) === JSON.stringify(v))) bad("not a grid value");
        return;
      case "sample_from":
        return;
      case "choice": {
        const fits = d.options.some((o) => {
          const before = out.length;
          check(o, v, path);
          const ok = out.length === before;
          out.length = before;
          return ok;
        });
        if (!fits) bad("matches no option (or holds parameters of another branch)");
        return;
      }
    }
  };
  check(space, config, "");
  return out;
}

/** A deterministic objective of any config: a smooth function of its numeric leaves. */
export function contractObjective(config: Config): number {
  let sum = 0, i = 0;
  const walk = (v: JsonValue): void => {
    if (typeof v === "number") sum += Math.sin(1.7 * v + i++) + 0.01 * v * v;
    else if (typeof v === "string" || typeof v === "boolean") sum += (i++ % 3) * 0.1;
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === "object") {
      for (const k of Object.keys(v).sort()) walk((v as Record<string, JsonValue>)[k]);
    }
  };
  walk(config);
  return sum;
}

/** A result as the runner records it. */
export function resultOf(
  trialId: string,
  metric: string,
  value: number,
  iteration = 1,
): TrialResult {
  return {
    [metric]: value,
    training_iteration: iteration,
    time_total_s: iteration,
    time_this_iter_s: 1,
    timestamp: 0,
    trial_id: trialId,
  };
}

/** A context for `setup`. */
export function contextOf(
  space: Space,
  seed: number,
  numSamples: number,
  mode: Mode = "min",
): SearcherContext {
  return { space, metric: "loss", mode, seed, numSamples };
}

/** What {@linkcode drive} returns. */
export interface DriveResult {
  /** Configs in the order suggested. */
  readonly configs: Config[];
  /** Whether the searcher said `"done"`. */
  readonly done: boolean;
}

/**
 * Runs a searcher as the runner would, without a runner: keeps up to `concurrency` trials
 * pending, completes the oldest with `objective` when it may not start more (or the searcher says
 * `"wait"`), and stops after `n` configs or `"done"`. Trial ids continue from `firstId`.
 */
export function drive(
  s: Searcher,
  n: number,
  opts: {
    concurrency?: number;
    objective?: (c: Config) => number;
    firstId?: number;
    metric?: string;
    /** Every metric of a result (multi-objective); replaces `objective`. */
    results?: (c: Config) => Record<string, number>;
  } = {},
): DriveResult {
  const concurrency = opts.concurrency ?? 1;
  const objective = opts.objective ?? contractObjective;
  const metric = opts.metric ?? "loss";
  let id = opts.firstId ?? 0;
  const configs: Config[] = [];
  const pending: { id: string; config: Config }[] = [];
  let done = false;
  const completeOldest = () => {
    const t = pending.shift()!;
    const r = opts.results
      ? { ...resultOf(t.id, metric, 0), ...opts.results(t.config) }
      : resultOf(t.id, metric, objective(t.config));
    s.onReport?.(t.id, r);
    s.onComplete?.(t.id, r, {});
  };
  while (configs.length < n && !done) {
    while (pending.length < concurrency && configs.length < n) {
      const trialId = `t_${String(id).padStart(5, "0")}`;
      const r = s.suggest(trialId);
      if (r === "done") {
        done = true;
        break;
      }
      if (r === "wait") {
        if (pending.length === 0) throw new Error(`${s.name} said "wait" with no trial running`);
        break;
      }
      id++;
      configs.push(r);
      pending.push({ id: trialId, config: r });
    }
    if (pending.length) completeOldest();
  }
  while (pending.length) completeOldest();
  return { configs, done };
}

/**
 * Registers the contract tests for a searcher. `factory` must return a fresh searcher each call.
 *
 * @example
 * ```ts ignore
 * import { searcherContract } from "./searcher.ts";
 * import { randomSearcher } from "../plugins/searchers/random.ts";
 * searcherContract("randomSearcher", () => randomSearcher());
 * ```
 */
export function searcherContract(
  name: string,
  factory: () => Searcher,
  options: SearcherContractOptions = {},
): void {
  const trials = options.trials ?? 60;
  const extra = options.extraKeys ?? [];
  const clean = (c: Config): Config => {
    if (!extra.length) return c;
    const o: Record<string, JsonValue> = { ...c };
    for (const k of extra) delete o[k];
    return o;
  };

  Deno.test(`${name} (contract): has a name and a suggest method`, () => {
    const s = factory();
    assert.equal(typeof s.name, "string");
    assert.ok(s.name.length > 0);
    assert.equal(typeof s.suggest, "function");
  });

  for (const mode of ["min", "max"] as const) {
    Deno.test(`${name} (contract): configs lie inside the space for every domain type (${mode})`, () => {
      const s = factory();
      s.setup?.(contextOf(CONTRACT_SPACE, 3, trials, mode));
      const { configs } = drive(s, trials, { concurrency: 2 });
      assert.equal(configs.length, trials);
      for (const c of configs) {
        assert.deepEqual(configProblems(CONTRACT_SPACE, clean(c)), [], JSON.stringify(c));
      }
      // Each config is JSON (it is saved to params.json).
      for (const c of configs) assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
    });
  }

  Deno.test(`${name} (contract): conditional parameters appear only under their branch`, () => {
    const s = factory();
    s.setup?.(contextOf(CONTRACT_SPACE, 11, trials));
    const { configs } = drive(s, trials);
    const branches = new Set<string>();
    for (const c of configs) {
      const opt = c.opt;
      if (opt === "none") branches.add("none");
      else {
        const o = opt as Record<string, JsonValue>;
        branches.add(String(o.name));
        const keys = Object.keys(o).sort().join(",");
        assert.equal(keys, o.name === "sgd" ? "lr,momentum,name" : "betas,lr,name");
      }
    }
    assert.ok(branches.size >= 2, `only branch(es) ${[...branches]} were ever suggested`);
  });

  Deno.test(`${name} (contract): the same seed gives the same configs, another seed others`, () => {
    const run = (seed: number) => {
      const s = factory();
      s.setup?.(contextOf(CONTRACT_SPACE, seed, 40));
      return drive(s, 40, { concurrency: 2 }).configs;
    };
    const a = run(5), b = run(5), c = run(6);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  Deno.test(`${name} (contract): snapshot and restore resume the same stream`, () => {
    const ctx = contextOf(CONTRACT_SPACE, 21, 40);
    const a = factory();
    a.setup?.(ctx);
    drive(a, 20);
    if (!a.snapshot || !a.restore) return; // stateless searchers resume by replay
    const state = JSON.parse(JSON.stringify(a.snapshot())) as JsonValue;
    assert.deepEqual(state, a.snapshot(), "snapshot() must be plain JSON");
    const b = factory();
    b.setup?.(ctx);
    b.restore!(state);
    const nextA = drive(a, 20, { firstId: 20 }).configs;
    const nextB = drive(b, 20, { firstId: 20 }).configs;
    assert.deepEqual(nextB, nextA);
  });

  Deno.test(`${name} (contract): restore rejects a state that is not its snapshot`, () => {
    const s = factory();
    s.setup?.(contextOf(CONTRACT_SPACE, 1, 10));
    if (!s.restore) return;
    assert.throws(() => s.restore!("nonsense"), TypeError);
  });

  if (factory().multiObjective === true) {
    const moCtx = (seed: number, n: number): SearcherContext => ({
      ...contextOf(CONTRACT_SPACE, seed, n),
      metrics: ["loss", "score"],
      modes: ["min", "max"],
    });
    const results = (c: Config) => {
      const f = contractObjective(c);
      return { loss: f, score: Math.cos(f) };
    };
    Deno.test(`${name} (contract): multi-objective configs are valid, seeded and resumable`, () => {
      const run = (seed: number) => {
        const s = factory();
        s.setup?.(moCtx(seed, trials));
        return drive(s, trials, { concurrency: 2, results }).configs;
      };
      const a = run(4);
      for (const c of a) {
        assert.deepEqual(configProblems(CONTRACT_SPACE, clean(c)), [], JSON.stringify(c));
      }
      assert.deepEqual(run(4), a);
      assert.notDeepEqual(run(5), a);
      const x = factory();
      x.setup?.(moCtx(8, 80));
      drive(x, 40, { results });
      if (!x.snapshot || !x.restore) return;
      const state = JSON.parse(JSON.stringify(x.snapshot())) as JsonValue;
      assert.deepEqual(state, x.snapshot(), "snapshot() must be plain JSON");
      const y = factory();
      y.setup?.(moCtx(8, 80));
      y.restore!(state);
      assert.deepEqual(
        drive(y, 40, { firstId: 40, results }).configs,
        drive(x, 40, { firstId: 40, results }).configs,
      );
    });
  }

  if (options.grids ?? true) {
    Deno.test(`${name} (contract): each sample runs the whole grid, then "done"`, () => {
      const space = { a: grid([1, 2, 3]), b: { c: grid(["x", "y"]) }, x: uniform(0, 1) };
      const s = factory();
      s.setup?.(contextOf(space, 2, 2));
      const { configs, done } = drive(s, 100);
      assert.ok(done, `"done" never came (${configs.length} configs)`);
      assert.equal(configs.length, 12);
      const counts = new Map<string, number>();
      for (const c of configs) {
        assert.deepEqual(configProblems(space, clean(c)), []);
        const k = JSON.stringify([c.a, (c.b as { c: string }).c]);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      assert.equal(counts.size, 6);
      for (const [k, n] of counts) assert.equal(n, 2, `grid point ${k} ran ${n} times`);
    });

    Deno.test(`${name} (contract): numSamples -1 never says "done"`, () => {
      const s = factory();
      s.setup?.(contextOf({ a: grid([1, 2]), x: uniform(0, 1) }, 2, -1));
      const { configs, done } = drive(s, 30);
      assert.equal(done, false);
      assert.equal(configs.length, 30);
    });
  }
}
