/**
 * Benchmark problems for the searchers (minimise), as Tunebox spaces. The same definitions are in
 * `bench/peers/searchers_peer.py`; keep them in step.
 *
 * Each problem also has a shifted variant: the same function on a box moved so that no optimum
 * sits where the prior kernels of a TPE (the domain centre) would flatter it.
 *
 * @module
 */

import type { Config } from "../core/trial.ts";
import { choice, type Space, uniform } from "../core/space.ts";

/** A benchmark problem. */
export interface Problem {
  /** Name shown in tables. */
  readonly name: string;
  /** Best value reachable in the box. */
  readonly optimum: number;
  /** The search space. */
  readonly space: Space;
  /** The objective. */
  readonly f: (c: Config) => number;
}

function box(names: string[], lo: number[], hi: number[]): Space {
  const s: Record<string, unknown> = {};
  names.forEach((n, i) => (s[n] = uniform(lo[i], hi[i])));
  return s;
}

function vec(c: Config, d: number): number[] {
  return Array.from({ length: d }, (_, i) => c[`x${i}`] as number);
}

/** Branin (3 global minima, 0.397887). */
export function branin(x: number[]): number {
  const [x1, x2] = x;
  const b = 5.1 / (4 * Math.PI ** 2), c = 5 / Math.PI, t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}

const H3_A = [[3, 10, 30], [0.1, 10, 35], [3, 10, 30], [0.1, 10, 35]];
const H3_P = [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]];
const H6_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const H6_P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
];
const ALPHA = [1, 1.2, 3, 3.2];

function hartmann(x: number[], A: number[][], P: number[][]): number {
  let s = 0;
  for (let i = 0; i < 4; i++) {
    let e = 0;
    for (let j = 0; j < x.length; j++) e += A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2;
    s -= ALPHA[i] * Math.exp(-e);
  }
  return s;
}

/** Hartmann 3-D (−3.86278). */
export function hartmann3(x: number[]): number {
  return hartmann(x, H3_A, H3_P);
}

/** Hartmann 6-D (−3.32237). */
export function hartmann6(x: number[]): number {
  return hartmann(x, H6_A, H6_P);
}

/** Rosenbrock (0 at 1…1). */
export function rosenbrock(x: number[]): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) s += 100 * (x[i + 1] - x[i] ** 2) ** 2 + (x[i] - 1) ** 2;
  return s;
}

/** Levy (0 at 1…1). */
export function levy(x: number[]): number {
  const w = x.map((v) => 1 + (v - 1) / 4);
  const d = w.length;
  let s = Math.sin(Math.PI * w[0]) ** 2;
  for (let i = 0; i < d - 1; i++) {
    s += (w[i] - 1) ** 2 * (1 + 10 * Math.sin(Math.PI * w[i] + 1) ** 2);
  }
  return s + (w[d - 1] - 1) ** 2 * (1 + Math.sin(2 * Math.PI * w[d - 1]) ** 2);
}

/** Ackley (0 at 0…0). */
export function ackley(x: number[]): number {
  const d = x.length;
  let sq = 0, cs = 0;
  for (const v of x) {
    sq += v * v;
    cs += Math.cos(2 * Math.PI * v);
  }
  return -20 * Math.exp(-0.2 * Math.sqrt(sq / d)) - Math.exp(cs / d) + 20 + Math.E;
}

/** Styblinski–Tang (−39.16617·d at −2.903534…). */
export function styblinskiTang(x: number[]): number {
  let s = 0;
  for (const v of x) s += v ** 4 - 16 * v * v + 5 * v;
  return s / 2;
}

/** Jenatton et al. (2017)'s tree-structured function (0.1 at the corner x4 = r8 = 0). */
function jenattonSpace(lo: number, hi: number): Space {
  return {
    x1: choice([
      {
        b: 0,
        x2: choice([{ b: 0, x4: uniform(lo, hi) }, { b: 1, x5: uniform(lo, hi) }]),
        r8: uniform(0, 1),
      },
      {
        b: 1,
        x3: choice([{ b: 0, x6: uniform(lo, hi) }, { b: 1, x7: uniform(lo, hi) }]),
        r9: uniform(0, 1),
      },
    ]),
  };
}

function jenatton(c: Config): number {
  const x1 = c.x1 as Record<string, Record<string, number> | number>;
  if (x1.b === 0) {
    const x2 = x1.x2 as Record<string, number>;
    return (x1.r8 as number) + (x2.b === 0 ? x2.x4 ** 2 + 0.1 : x2.x5 ** 2 + 0.2);
  }
  const x3 = x1.x3 as Record<string, number>;
  return (x1.r9 as number) + (x3.b === 0 ? x3.x6 ** 2 + 0.3 : x3.x7 ** 2 + 0.4);
}

const n = (d: number) => Array.from({ length: d }, (_, i) => `x${i}`);
const fill = (d: number, v: number) => Array<number>(d).fill(v);

/** The benchmark problems, each plain and shifted. */
export const PROBLEMS: readonly Problem[] = [
  {
    name: "Branin",
    optimum: 0.397887,
    space: box(n(2), [-5, 0], [10, 15]),
    f: (c) => branin(vec(c, 2)),
  },
  {
    name: "Branin-shift",
    optimum: 0.397887,
    space: box(n(2), [-2, -3], [13, 12]),
    f: (c) => branin(vec(c, 2)),
  },
  {
    name: "Hartmann3",
    optimum: -3.86278,
    space: box(n(3), fill(3, 0), fill(3, 1)),
    f: (c) => hartmann3(vec(c, 3)),
  },
  {
    name: "Hartmann3-shift",
    optimum: -3.86278,
    space: box(n(3), fill(3, -0.1), fill(3, 0.9)),
    f: (c) => hartmann3(vec(c, 3)),
  },
  {
    name: "Hartmann6",
    optimum: -3.32237,
    space: box(n(6), fill(6, 0), fill(6, 1)),
    f: (c) => hartmann6(vec(c, 6)),
  },
  {
    name: "Hartmann6-shift",
    optimum: -3.32237,
    space: box(n(6), fill(6, -0.1), fill(6, 0.9)),
    f: (c) => hartmann6(vec(c, 6)),
  },
  {
    name: "Rosenbrock4",
    optimum: 0,
    space: box(n(4), fill(4, -5), fill(4, 10)),
    f: (c) => rosenbrock(vec(c, 4)),
  },
  {
    name: "Rosenbrock4-shift",
    optimum: 0,
    space: box(n(4), fill(4, -2), fill(4, 13)),
    f: (c) => rosenbrock(vec(c, 4)),
  },
  // Higher-dimensional, all on boxes shifted off the textbook ones (issue 15).
  {
    name: "Levy8",
    optimum: 0,
    space: box(n(8), fill(8, -10), fill(8, 10)),
    f: (c) => levy(vec(c, 8)),
  },
  {
    name: "Levy8-shift",
    optimum: 0,
    space: box(n(8), fill(8, -5), fill(8, 15)),
    f: (c) => levy(vec(c, 8)),
  },
  {
    name: "Rosenbrock6-shift",
    optimum: 0,
    space: box(n(6), fill(6, -2), fill(6, 13)),
    f: (c) => rosenbrock(vec(c, 6)),
  },
  {
    name: "Ackley10-shift",
    optimum: 0,
    space: box(n(10), fill(10, -15), fill(10, 30)),
    f: (c) => ackley(vec(c, 10)),
  },
  {
    name: "StyblinskiTang8-shift",
    optimum: -313.329,
    space: box(n(8), fill(8, -4), fill(8, 6)),
    f: (c) => styblinskiTang(vec(c, 8)),
  },
  {
    name: "Hartmann6in10-shift",
    optimum: -3.32237,
    space: box(n(10), fill(10, -0.1), fill(10, 0.9)),
    f: (c) => hartmann6(vec(c, 6)),
  },
  { name: "Jenatton", optimum: 0.1, space: jenattonSpace(0, 1), f: jenatton },
  { name: "Jenatton-shift", optimum: 0.1, space: jenattonSpace(-0.3, 0.7), f: jenatton },
];
