#!/usr/bin/env -S deno run -A
/**
 * Multi-objective searcher benchmark: Tunebox's MOTPE (`tpeSearcher` with several objectives),
 * `nsga2Searcher` and random search against Optuna 5's `NSGAIISampler` and `TPESampler` (MOTPE),
 * all with their defaults, run from `bench/peers/multi_objective_peer.py` in the same session.
 *
 * Problems: ZDT1, ZDT2, ZDT3 (2 objectives, 30 variables) and DTLZ2 (3 objectives, 12
 * variables), minimised. Score: the hypervolume of everything evaluated after 200 evaluations
 * (reference points (1.1, 11) for ZDT, (3.5, 3.5, 3.5) for DTLZ2: bounds of the objectives), over
 * 10 seeds, computed here for every solver by `core/pareto.ts`. Also the time per suggestion at
 * 100 and 1,000 finished trials on ZDT1.
 *
 *   deno run -A bench/multi_objective_bench.ts                 # 10 seeds × 200 evaluations + peers
 *   deno run -A bench/multi_objective_bench.ts --quick         # 3 seeds × 100, no peers
 *   deno run -A bench/multi_objective_bench.ts --problems zdt1 --seeds 5
 *   deno run -A bench/multi_objective_bench.ts --seeds 40 --seed-offset 40   # seeds 40–79
 *   deno run -A bench/multi_objective_bench.ts --no-peers --points-out ours.json   # save ours
 *   deno run -A bench/multi_objective_bench.ts --solvers none --peer-json ours.json,peer.json
 *   deno run -A bench/multi_objective_bench.ts --no-peers --variant 'c48={"candidates":48}'
 *
 * `--peer-json` merges saved runs (comma-separated; ours from `--points-out`, Optuna's from
 * `bench/peers/multi_objective_peer.py --out`), by solver and problem; a cell with fewer seeds
 * than the others says how many.
 *
 * Prints figures and asserts nothing about speed.
 *
 * @module
 */

import { parseArgs } from "#flags";
import type { Searcher } from "../core/plugin.ts";
import type { Config } from "../core/trial.ts";
import { type Space, uniform } from "../core/space.ts";
import { hypervolume } from "../core/pareto.ts";
import { randomSearcher } from "../plugins/searchers/random.ts";
import { tpeSearcher, type TpeSearcherOptions } from "../plugins/searchers/tpe/mod.ts";
import { nsga2Searcher } from "../plugins/searchers/nsga2.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    seeds: { type: "string" },
    "seed-offset": { type: "string" },
    evals: { type: "string" },
    "no-peers": { type: "boolean", default: false },
    "no-latency": { type: "boolean", default: false },
    problems: { type: "string" },
    solvers: { type: "string" },
    python: { type: "string" },
    "peer-json": { type: "string" },
    "points-out": { type: "string" },
    variant: { type: "string", multiple: true },
  },
});
const quick = flags.quick;
const SEEDS = Number(flags.seeds ?? (quick ? 3 : 10));
const EVALS = Number(flags.evals ?? (quick ? 100 : 200));
const SEED0 = Number(flags["seed-offset"] ?? 0);
const withPeers = !quick && !flags["no-peers"];
const withLatency = !flags["no-latency"];
const repo = new URL("..", import.meta.url).pathname;
const python = flags.python ?? Deno.env.get("TUNEBOX_PYTHON") ?? `${repo}.venv/bin/python`;

// ---- problems (mirrored in bench/peers/multi_objective_peer.py) -------------------------------

interface MoProblem {
  readonly name: string;
  readonly dim: number;
  readonly reference: readonly number[];
  readonly f: (x: number[]) => number[];
}

const zdtG = (x: number[]) => 1 + 9 * x.slice(1).reduce((a, b) => a + b, 0) / (x.length - 1);
const PROBLEMS: MoProblem[] = [
  {
    name: "zdt1",
    dim: 30,
    reference: [1.1, 11],
    f: (x) => {
      const g = zdtG(x);
      return [x[0], g * (1 - Math.sqrt(x[0] / g))];
    },
  },
  {
    name: "zdt2",
    dim: 30,
    reference: [1.1, 11],
    f: (x) => {
      const g = zdtG(x);
      return [x[0], g * (1 - (x[0] / g) ** 2)];
    },
  },
  {
    name: "zdt3",
    dim: 30,
    reference: [1.1, 11],
    f: (x) => {
      const g = zdtG(x), f1 = x[0];
      return [f1, g * (1 - Math.sqrt(f1 / g) - f1 / g * Math.sin(10 * Math.PI * f1))];
    },
  },
  {
    name: "dtlz2",
    dim: 12,
    reference: [3.5, 3.5, 3.5],
    f: (x) => {
      const m = 3;
      const g = x.slice(m - 1).reduce((a, v) => a + (v - 0.5) ** 2, 0);
      const out: number[] = [];
      for (let i = 0; i < m; i++) {
        let f = 1 + g;
        for (const v of x.slice(0, m - 1 - i)) f *= Math.cos(v * Math.PI / 2);
        if (i > 0) f *= Math.sin(x[m - 1 - i] * Math.PI / 2);
        out.push(f);
      }
      return out;
    },
  },
];
const problems = PROBLEMS.filter((p) => !flags.problems || new RegExp(flags.problems).test(p.name));

const spaceOf = (p: MoProblem): Space =>
  Object.fromEntries(Array.from({ length: p.dim }, (_, i) => [`x${i}`, uniform(0, 1)]));
const xOf = (p: MoProblem, c: Config) =>
  Array.from({ length: p.dim }, (_, i) => c[`x${i}`] as number);

type Factory = () => Searcher;
const solvers = new Map<string, Factory>([
  ["tunebox-motpe", () => tpeSearcher()],
  ["tunebox-nsga2", () => nsga2Searcher()],
  ["tunebox-random", () => randomSearcher()],
]);
if (flags.solvers) {
  const keep = new Set(flags.solvers.split(","));
  for (const k of [...solvers.keys()]) if (!keep.has(k)) solvers.delete(k);
}
// `--variant 'name={"candidates":48}'`: MOTPE with other options, as `tunebox-motpe-name`.
for (const v of flags.variant ?? []) {
  const eq = v.indexOf("=");
  const opts = JSON.parse(v.slice(eq + 1)) as TpeSearcherOptions;
  solvers.set(`tunebox-motpe-${v.slice(0, eq)}`, () => tpeSearcher(opts));
}

const metricsOf = (m: number) => Array.from({ length: m }, (_, i) => `f${i + 1}`);

function setup(s: Searcher, p: MoProblem, seed: number, n: number): string[] {
  const m = p.reference.length, metrics = metricsOf(m);
  s.setup?.({
    space: spaceOf(p),
    metric: metrics[0],
    mode: "min",
    metrics,
    modes: metrics.map(() => "min" as const),
    seed,
    numSamples: n,
  });
  return metrics;
}

function complete(s: Searcher, id: string, metrics: string[], y: number[]): void {
  s.onComplete?.(id, {
    ...Object.fromEntries(metrics.map((k, i) => [k, y[i]])),
    training_iteration: 1,
    time_total_s: 0,
    time_this_iter_s: 0,
    timestamp: 0,
    trial_id: id,
  });
}

function runOne(factory: Factory, p: MoProblem, seed: number, evals: number): number[][] {
  const s = factory();
  const metrics = setup(s, p, seed, evals);
  const points: number[][] = [];
  for (let i = 0; i < evals; i++) {
    const c = s.suggest(`t${i}`);
    if (c === "done" || c === "wait") throw new Error(`${s.name} said ${c} at ${i}`);
    const y = p.f(xOf(p, c));
    points.push(y);
    complete(s, `t${i}`, metrics, y);
  }
  return points;
}

/** points[solver][problem][seed] = every objective vector evaluated. */
type Points = Record<string, Record<string, number[][][]>>;
const points: Points = {};
const elapsed: Record<string, number> = {};
for (const [name, factory] of solvers) {
  points[name] = {};
  const t0 = performance.now();
  for (const p of problems) {
    points[name][p.name] = [];
    for (let s = 0; s < SEEDS; s++) points[name][p.name].push(runOne(factory, p, SEED0 + s, EVALS));
  }
  elapsed[name] = (performance.now() - t0) / 1000;
  console.error(`${name}: ${elapsed[name].toFixed(1)} s`);
}

const peerLatency: Record<string, Record<string, number>> = {};
let versions = "";
if (flags["points-out"]) {
  await Deno.writeTextFile(flags["points-out"], JSON.stringify({ points, elapsed }));
}
const mergePeer = (peer: {
  points: Points;
  elapsed: Record<string, number>;
  latency?: Record<string, Record<string, number>>;
  versions?: string;
}) => {
  for (const [solver, byProblem] of Object.entries(peer.points)) {
    points[solver] = { ...points[solver], ...byProblem };
  }
  Object.assign(elapsed, peer.elapsed);
  Object.assign(peerLatency, peer.latency ?? {});
  versions = peer.versions ?? versions;
};
if (flags["peer-json"]) {
  for (const file of flags["peer-json"].split(",")) {
    mergePeer(JSON.parse(await Deno.readTextFile(file)));
  }
} else if (withPeers) {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  const args = [
    `${repo}bench/peers/multi_objective_peer.py`,
    "--seeds",
    String(SEEDS),
    "--seed-offset",
    String(SEED0),
    "--evals",
    String(EVALS),
    "--out",
    out,
  ];
  if (flags.problems) args.push("--problems", flags.problems);
  if (withLatency) args.push("--latency");
  const r = await new Deno.Command(python, { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!r.success) throw new Error(`the peer script failed (exit ${r.code}); python: ${python}`);
  mergePeer(JSON.parse(await Deno.readTextFile(out)));
  await Deno.remove(out);
}

// ---- figures ------------------------------------------------------------------------------------

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3));
const names = Object.keys(points);
console.log(
  `\nHypervolume after ${EVALS} evaluations, median [quartiles] over ${SEEDS} seeds (larger is better)${
    versions ? `; ${versions}` : ""
  }\n`,
);
console.log(`| problem | ${names.join(" | ")} |`);
console.log(`|---|${names.map(() => "---").join("|")}|`);
for (const p of problems) {
  const cells = names.map((n) => {
    const runs = points[n][p.name];
    if (!runs?.length) return "—";
    const hv = runs.map((pts) => hypervolume(pts.slice(0, EVALS), p.reference));
    return `${fmt(quantile(hv, 0.5))} [${fmt(quantile(hv, 0.25))}, ${fmt(quantile(hv, 0.75))}]` +
      (runs.length !== SEEDS ? ` (${runs.length} seeds)` : "");
  });
  console.log(`| ${p.name} (ref ${JSON.stringify(p.reference)}) | ${cells.join(" | ")} |`);
}

if (withLatency) {
  // Our time per suggestion with n finished random trials on ZDT1 (the mean of 20 suggestions).
  const p = PROBLEMS[0];
  const lat: Record<string, Record<string, number>> = {};
  for (const [name, factory] of solvers) {
    if (name === "tunebox-random") continue;
    lat[name] = {};
    for (const n of [100, 1000]) {
      const s = factory();
      const metrics = setup(s, p, 0, -1);
      for (let i = 0; i < n; i++) {
        const c = s.suggest(`w${i}`) as Config;
        complete(s, `w${i}`, metrics, p.f(xOf(p, c)));
      }
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) s.suggest(`q${i}`);
      lat[name][n] = (performance.now() - t0) / 20;
    }
  }
  console.log(`\nms per suggestion with n finished trials (ZDT1, 30 variables)\n`);
  const all = {
    ...lat,
    ...Object.fromEntries(
      Object.entries(peerLatency).map((
        [k, v],
      ) => [k, Object.fromEntries(Object.entries(v).map(([n, s]) => [n, s * 1000]))]),
    ),
  };
  console.log(`| solver | 100 | 1,000 |`);
  console.log(`|---|---|---|`);
  for (const [name, v] of Object.entries(all)) {
    console.log(`| ${name} | ${fmt(v[100] ?? NaN)} | ${fmt(v[1000] ?? NaN)} |`);
  }
}
console.log(
  `\nWall time per solver (s): ${
    JSON.stringify(
      Object.fromEntries(Object.entries(elapsed).map(([k, v]) => [k, Number(v.toFixed(1))])),
    )
  }`,
);
