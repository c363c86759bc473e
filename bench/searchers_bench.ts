#!/usr/bin/env -S deno run -A
/**
 * Searcher benchmark: Tunebox's TPE, GP, CMA-ES and random search against hyperopt's
 * `tpe.suggest`, Optuna 5's `TPESampler`, `GPSampler` and `CmaEsSampler` and random search (run
 * from `bench/peers/searchers_peer.py`), on Branin, Hartmann3/6, Rosenbrock-4 and Jenatton's
 * conditional space (plain and shifted) and 6–10-D Levy, Rosenbrock, Ackley, Styblinski–Tang and
 * Hartmann6-in-10 (shifted).
 *
 * Reports the median best-so-far with quartiles, pairwise Mann–Whitney wins scored as kurobako
 * does (Šidák-corrected α, Borda and Firsts), and the time per suggestion at 100 / 1,000 / 5,000
 * observed trials.
 *
 *   deno run -A bench/searchers_bench.ts            # full: 20 seeds × 100 evaluations + peers
 *   deno run -A bench/searchers_bench.ts --quick    # 5 seeds × 60 evaluations, no peers
 *   deno run -A bench/searchers_bench.ts --no-peers --variant 'uni={"multivariate":false}'
 *   deno run -A bench/searchers_bench.ts --gp-peer-seeds 5   # Optuna's GPSampler on 5 seeds only
 *
 * Prints figures and asserts nothing about speed.
 *
 * @module
 */

import { parseArgs } from "#flags";
import type { Searcher } from "../core/plugin.ts";
import type { Config } from "../core/trial.ts";
import { type Space, uniform } from "../core/space.ts";
import { randomSearcher } from "../plugins/searchers/random.ts";
import { tpeSearcher, type TpeSearcherOptions } from "../plugins/searchers/tpe/mod.ts";
import { gpSearcher } from "../plugins/searchers/gp/mod.ts";
import { cmaesSearcher } from "../plugins/searchers/cmaes.ts";
import { type Problem, PROBLEMS } from "./searchers_problems.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    seeds: { type: "string" },
    evals: { type: "string" },
    peers: { type: "boolean", default: true },
    "no-peers": { type: "boolean", default: false },
    latency: { type: "boolean", default: true },
    "no-latency": { type: "boolean", default: false },
    variant: { type: "string", multiple: true },
    problems: { type: "string" },
    out: { type: "string" },
    python: { type: "string" },
    "peer-json": { type: "string" },
    "curves-out": { type: "string" },
    "seed-offset": { type: "string" },
    "no-ablation": { type: "boolean", default: false },
    solvers: { type: "string" },
    "peer-solvers": { type: "string" },
    "gp-peer-seeds": { type: "string" },
    "gp-peer-problems": { type: "string" },
  },
});

const quick = flags.quick;
const SEEDS = Number(flags.seeds ?? (quick ? 5 : 20));
const EVALS = Number(flags.evals ?? (quick ? 60 : 100));
const SEED0 = Number(flags["seed-offset"] ?? 0);
const withPeers = !quick && flags.peers && !flags["no-peers"];
const withLatency = flags.latency && !flags["no-latency"];
const problemFilter = flags.problems ? new RegExp(flags.problems) : undefined;
const problems = PROBLEMS.filter((p) => !problemFilter || problemFilter.test(p.name));
const repo = new URL("..", import.meta.url).pathname;
const python = flags.python ?? Deno.env.get("TUNEBOX_PYTHON") ?? `${repo}.venv/bin/python`;

type Factory = () => Searcher;
const solvers = new Map<string, Factory>([
  ["tunebox-tpe", () => tpeSearcher()],
  ["tunebox-gp", () => gpSearcher()],
  ["tunebox-cmaes", () => cmaesSearcher()],
]);
if (!quick && !flags["no-ablation"]) {
  // Ablations behind the defaults: hyperopt's univariate model, and Optuna 5's split and weights.
  solvers.set("tunebox-tpe-univariate", () => tpeSearcher({ multivariate: false }));
  solvers.set(
    "tunebox-tpe-optuna5",
    () => tpeSearcher({ gamma: 0.1, weights: "forgetting", bandwidth: "gap" }),
  );
}
solvers.set("tunebox-random", () => randomSearcher());
if (flags.solvers) {
  const keep = new Set(flags.solvers.split(","));
  for (const k of [...solvers.keys()]) if (!keep.has(k)) solvers.delete(k);
}
for (const v of flags.variant ?? []) {
  const eq = v.indexOf("=");
  const opts = JSON.parse(v.slice(eq + 1)) as TpeSearcherOptions;
  if (opts.gamma === "sqrt" as unknown) {
    (opts as { gamma: unknown }).gamma = (n: number) =>
      Math.min(Math.ceil(0.25 * Math.sqrt(n)), 25);
  }
  solvers.set(`tunebox-${v.slice(0, eq)}`, () => tpeSearcher(opts));
}

/** Best-so-far curves: curves[solver][problem][seed][evaluation]. */
type Curves = Record<string, Record<string, number[][]>>;

function runOne(factory: Factory, problem: Problem, seed: number, evals: number): number[] {
  const s = factory();
  s.setup?.({ space: problem.space, metric: "loss", mode: "min", seed, numSamples: evals });
  const curve: number[] = [];
  let best = Infinity;
  for (let i = 0; i < evals; i++) {
    const id = `t${i}`;
    const c = s.suggest(id);
    if (c === "done" || c === "wait") throw new Error(`${s.name} said ${c} at ${i}`);
    const y = problem.f(c);
    best = Math.min(best, y);
    curve.push(best);
    s.onComplete?.(id, {
      loss: y,
      training_iteration: 1,
      time_total_s: 0,
      time_this_iter_s: 0,
      timestamp: 0,
      trial_id: id,
    });
  }
  return curve;
}

const curves: Curves = {};
const elapsed: Record<string, number> = {};
for (const [name, factory] of solvers) {
  curves[name] = {};
  const t0 = performance.now();
  for (const p of problems) {
    curves[name][p.name] = [];
    for (let s = 0; s < SEEDS; s++) {
      curves[name][p.name].push(runOne(factory, p, SEED0 + s, EVALS));
    }
  }
  elapsed[name] = (performance.now() - t0) / 1000;
  console.error(`${name}: ${elapsed[name].toFixed(1)} s`);
}

let peerLatency: Record<string, Record<string, Record<string, number>>> = {};
let peerVersions = "";
if (flags["curves-out"]) {
  // Save these curves to merge into another run with --peer-json (e.g. the slow GP alone).
  await Deno.writeTextFile(flags["curves-out"], JSON.stringify({ curves, elapsed }));
}
if (flags["peer-json"]) {
  // Reuse earlier runs (same seeds and budget): peers, or our own searchers run separately.
  for (const file of flags["peer-json"].split(",")) {
    const peer = JSON.parse(await Deno.readTextFile(file));
    for (const [solver, byProblem] of Object.entries(peer.curves as Curves)) {
      curves[solver] = {
        ...curves[solver],
        ...Object.fromEntries(
          Object.entries(byProblem).filter(([name]) => problems.some((p) => p.name === name)),
        ),
      };
    }
    Object.assign(elapsed, peer.elapsed);
    Object.assign(peerLatency, peer.latency ?? {});
    if (peer.versions) peerVersions = peer.versions;
  }
} else if (withPeers) {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  const args = [
    `${repo}bench/peers/searchers_peer.py`,
    "--seed-offset",
    String(SEED0),
    "--seeds",
    String(SEEDS),
    "--evals",
    String(EVALS),
    "--out",
    out,
  ];
  if (problemFilter) args.push("--problems", flags.problems!);
  if (flags["peer-solvers"]) args.push("--solvers", flags["peer-solvers"]);
  if (flags["gp-peer-seeds"]) args.push("--gp-seeds", flags["gp-peer-seeds"]);
  if (flags["gp-peer-problems"]) args.push("--gp-problems", flags["gp-peer-problems"]);
  if (withLatency) args.push("--latency");
  const r = await new Deno.Command(python, { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!r.success) throw new Error(`the peer script failed (exit ${r.code}); python: ${python}`);
  const peer = JSON.parse(await Deno.readTextFile(out)) as {
    curves: Curves;
    elapsed: Record<string, number>;
    latency: Record<string, Record<string, Record<string, number>>>;
    versions: string;
  };
  Object.assign(curves, peer.curves);
  Object.assign(elapsed, peer.elapsed);
  peerLatency = peer.latency ?? {};
  peerVersions = peer.versions;
  await Deno.remove(out);
}

// ---- statistics --------------------------------------------------------------------------------

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

function erfc(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
                      t *
                        (0.27886807 +
                          t *
                            (-1.13520398 +
                              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? r : 2 - r;
}

/** Two-sided Mann–Whitney U test (normal approximation with tie correction): p and U of a. */
export function mannWhitney(a: number[], b: number[]): { p: number; u: number } {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) =>
    x.v - y.v
  );
  const ranks = new Array<number>(all.length);
  let tie = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[k] = r;
    const t = j - i + 1;
    tie += t ** 3 - t;
    i = j + 1;
  }
  const n1 = a.length, n2 = b.length, n = n1 + n2;
  let r1 = 0;
  all.forEach((x, i) => x.g === 0 && (r1 += ranks[i]));
  const u = r1 - n1 * (n1 + 1) / 2;
  const mu = n1 * n2 / 2;
  const sd = Math.sqrt(n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))));
  if (sd === 0) return { p: 1, u };
  const z = (Math.abs(u - mu) - 0.5) / sd;
  return { p: Math.min(1, erfc(Math.max(0, z) / Math.SQRT2)), u };
}

function auc(curve: number[], optimum: number): number {
  return curve.reduce((s, v) => s + (v - optimum), 0);
}

const names = Object.keys(curves);
const pairs = names.length * (names.length - 1) / 2;
// kurobako: the largest α in its list with 1 − (1 − α)^pairs < 0.05.
const alpha =
  [0.05, 0.025, 0.01, 0.005, 0.0025, 0.001, 0.0005, 0.0001].find((a) =>
    1 - (1 - a) ** pairs < 0.05
  ) ?? 0.0001;

const borda: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
const firsts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
const winsTable: Record<string, Record<string, number>> = {};
for (const n of names) winsTable[n] = Object.fromEntries(names.map((m) => [m, 0]));

const fmt = (v: number): string => {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(3) : v.toFixed(4);
};

const lines: string[] = [];
const at = [Math.round(EVALS / 4), Math.round(EVALS / 2), EVALS];
lines.push(
  `## Searchers: median best-so-far (${SEEDS} seeds × ${EVALS} evaluations, minimise)`,
  "",
  `Cells: median at ${at[0]} / ${at[1]} / **${at[2]}** evaluations, and the quartiles at ${
    at[2]
  }. ` +
    `★ = no other solver is significantly better on this problem (two-sided Mann–Whitney U on ` +
    `the final bests, Šidák-adjusted α = ${alpha} for ${pairs} pairs; ties broken by the area ` +
    `under the best-so-far curve, as kurobako does).`,
  "",
  `| problem (f*) | ${names.join(" | ")} |`,
  `|---|${names.map(() => "---").join("|")}|`,
);
for (const p of problems) {
  const finals: Record<string, number[]> = {};
  const aucs: Record<string, number[]> = {};
  for (const n of names) {
    const cs = curves[n][p.name];
    if (!cs) continue;
    finals[n] = cs.map((c) => c[c.length - 1]);
    aucs[n] = cs.map((c) => auc(c, p.optimum));
  }
  const present = names.filter((n) => finals[n]);
  const lost = new Set<string>();
  for (let i = 0; i < present.length; i++) {
    for (let j = i + 1; j < present.length; j++) {
      const a = present[i], b = present[j];
      let { p: pv, u } = mannWhitney(finals[a], finals[b]);
      if (pv >= alpha) ({ p: pv, u } = mannWhitney(aucs[a], aucs[b]));
      const mid = finals[a].length * finals[b].length / 2;
      if (pv < alpha) {
        // U counts how often a's value exceeds b's: below the middle means a is better (minimise).
        const [w, l] = u < mid ? [a, b] : [b, a];
        borda[w]++;
        winsTable[w][l]++;
        lost.add(l);
      }
    }
  }
  for (const n of present) if (!lost.has(n)) firsts[n]++;
  const cells = names.map((n) => {
    const cs = curves[n][p.name];
    if (!cs) return "–";
    const med = at.map((k) => fmt(quantile(cs.map((c) => c[k - 1]), 0.5)));
    const f = cs.map((c) => c[c.length - 1]);
    return `${med[0]} / ${med[1]} / **${med[2]}** [${fmt(quantile(f, 0.25))}, ${
      fmt(quantile(f, 0.75))
    }]${lost.has(n) ? "" : " ★"}${cs.length !== SEEDS ? ` (n=${cs.length})` : ""}`;
  });
  lines.push(`| ${p.name} (${p.optimum}) | ${cells.join(" | ")} |`);
}
lines.push(
  `| **Borda** (pairs won) | ${names.map((n) => `**${borda[n]}**`).join(" | ")} |`,
  `| **Firsts** (problems lost to nobody) | ${names.map((n) => `**${firsts[n]}**`).join(" | ")} |`,
  `| wall time, all runs (s) | ${names.map((n) => (elapsed[n] ?? 0).toFixed(1)).join(" | ")} |`,
  "",
  "Pairwise wins (row beat column on how many problems):",
  "",
  `| | ${names.join(" | ")} |`,
  `|---|${names.map(() => "---").join("|")}|`,
  ...names.map((n) =>
    `| ${n} | ${names.map((m) => (n === m ? "–" : winsTable[n][m])).join(" | ")} |`
  ),
);
lines.push(
  "",
  "Problems: Branin on [−5, 10]×[0, 15]; Hartmann3/6 on [0, 1]^d; Rosenbrock-4 on [−5, 10]^4; " +
    "Jenatton's tree (a choice of two branches, each a choice of two leaves, 7 continuous and 3 " +
    "categorical parameters, at most 4 active). Shifted boxes (no optimum at the centre): Branin " +
    "[−2, 13]×[−3, 12], Hartmann [−0.1, 0.9]^d, Rosenbrock [−2, 13]^4, Jenatton's leaves " +
    "[−0.3, 0.7]. Higher-dimensional: Levy-8 on [−10, 10]^8 and shifted to [−5, 15]^8, " +
    "Rosenbrock-6 on [−2, 13]^6, Ackley-10 on [−15, 30]^10, Styblinski–Tang-8 on [−4, 6]^8, " +
    "Hartmann6 embedded in 10 dimensions (4 ignored) on [−0.1, 0.9]^10. " +
    `Sequential trials; seeds ${SEED0}…${SEED0 + SEEDS - 1}` +
    ". tunebox-tpe-univariate = `{ multivariate: false }`, tunebox-tpe-optuna5 = " +
    '`{ gamma: 0.1, weights: "forgetting", bandwidth: "gap" }` (Optuna 5\'s split, weights ' +
    "and kernel widths).",
);
if (peerVersions) {
  lines.push(
    "",
    `Peers (\`bench/peers/searchers_peer.py\`): ${peerVersions}; optuna-tpe = \`TPESampler(seed)\`` +
      " (v5 defaults: multivariate, constant liar), optuna-gp = `GPSampler(seed)`, optuna-cmaes = " +
      "`CmaEsSampler(seed)` (categorical and conditional parameters by its independent sampler), " +
      "hyperopt-tpe = `fmin(algo=tpe.suggest)`. A cell marked (n=k) ran on k seeds only.",
  );
}

// ---- suggestion latency ------------------------------------------------------------------------

function latencySpace(d: number): Space {
  const s: Record<string, unknown> = {};
  for (let i = 0; i < d; i++) s[`x${i}`] = uniform(-5, 5);
  return s;
}

type LatencyFactory = (n: number) => Searcher;
const LATENCY: [string, LatencyFactory, number][] = [
  ["tunebox-tpe", (n) => tpeSearcher({ initialPoints: n }), Infinity],
  ["tunebox-cmaes", () => cmaesSearcher(), Infinity],
  ["tunebox-gp", (n) => gpSearcher({ initialPoints: n }), 200],
];

/** Median ms per suggest() once `n` trials have finished (d-D sphere). */
function ourLatency(make: LatencyFactory, d: number, n: number, reps: number): number {
  const space = latencySpace(d);
  // Fill the history fast (random suggestions for TPE and GP) until n trials finished.
  const s = make(n);
  s.setup?.({ space, metric: "loss", mode: "min", seed: 1, numSamples: -1 });
  const f = (c: Config) => Object.values(c).reduce((a: number, v) => a + (v as number) ** 2, 0);
  const done = (id: string, c: Config) =>
    s.onComplete?.(id, {
      loss: f(c),
      training_iteration: 1,
      time_total_s: 0,
      time_this_iter_s: 0,
      timestamp: 0,
      trial_id: id,
    });
  for (let i = 0; i < n; i++) done(`t${i}`, s.suggest(`t${i}`) as Config);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const id = `r${r}`;
    const t0 = performance.now();
    const c = s.suggest(id) as Config;
    times.push(performance.now() - t0);
    done(id, c);
  }
  return quantile(times, 0.5);
}

const peerNames = Object.keys(peerLatency);
if (withLatency) {
  const ns = quick ? [100, 1000] : [100, 200, 1000];
  const cols = [...LATENCY.map(([n]) => n), ...peerNames];
  lines.push(
    "",
    "## Searchers: time per suggestion (ms, median of 20 calls after n finished trials)",
    "",
    "A d-dimensional sphere on [−5, 5]^d; the GP only up to 200 trials.",
    "",
    `| d | n | ${cols.join(" | ")} |`,
    `|---|---|${cols.map(() => "---").join("|")}|`,
  );
  for (const [, make] of LATENCY) ourLatency(make, 2, 100, 10); // warm up the JIT
  for (const d of [2, 10]) {
    for (const n of ns) {
      const cells = LATENCY.map(([, make, max]) =>
        n <= max ? ourLatency(make, d, n, 20).toFixed(2) : "–"
      );
      for (const p of peerNames) {
        const v = peerLatency[p]?.[`${d}`]?.[`${n}`];
        cells.push(v === undefined ? "–" : v.toFixed(2));
      }
      lines.push(`| ${d} | ${n} | ${cells.join(" | ")} |`);
    }
  }
}

const text = lines.join("\n") + "\n";
console.log(text);
const outPath = flags.out ??
  (quick || !withPeers ? undefined : `${repo}bench/results/searchers.md`);
if (outPath) {
  await Deno.mkdir(new URL(".", `file://${outPath}`).pathname, { recursive: true });
  await Deno.writeTextFile(outPath, text);
  console.error(`wrote ${outPath}`);
}
