/**
 * The parameters a TPE models, in its internal units: numbers in log space where the domain is
 * log-scaled (discrete ones widened by half a step, as Optuna does), choices as option indices.
 *
 * @module
 */

import {
  type FloatDomain,
  type IntDomain,
  type NormalDomain,
  type ParamInfo,
  quantize,
} from "../../../core/space.ts";
import { LOG_SQRT_2PI, logMass, ndtr } from "../_math.ts";

/** The choice a conditional parameter depends on: dim `dim` must hold option `index`. */
export interface Cond {
  /** Index of the parent choice's dim. */
  readonly dim: number;
  /** The option of the parent under which this parameter exists. */
  readonly index: number;
}

/** A numeric parameter. */
export interface NumDim {
  /** Discriminant. */
  readonly kind: "num";
  /** The parameter's key in an assignment. */
  readonly key: string;
  /** Its condition, for a parameter inside a choice branch. */
  readonly cond?: Cond;
  /** The domain it comes from. */
  readonly domain: FloatDomain | IntDomain | NormalDomain;
  /** Whether internal units are logs of the values. */
  readonly log: boolean;
  /** Kernel bounds in internal (log where log) units, widened by half a step for discrete ones. */
  readonly lo: number;
  /** Upper kernel bound. */
  readonly hi: number;
  /** Whether the bounds are finite (all but normals). */
  readonly bounded: boolean;
  /** Discrete: the likelihood is the mass of the value's cell [v - half, v + half]. */
  readonly disc: boolean;
  /** Half a step (discrete ones). */
  readonly half: number;
  /** Centre of the prior kernel. */
  readonly priorMu: number;
  /** Width of the prior kernel. */
  readonly priorSigma: number;
}

/** A categorical parameter (a `choice`), valued by option index. */
export interface CatDim {
  /** Discriminant. */
  readonly kind: "cat";
  /** The parameter's key in an assignment. */
  readonly key: string;
  /** Its condition, for a parameter inside a choice branch. */
  readonly cond?: Cond;
  /** Number of options. */
  readonly k: number;
}

/** A modelled parameter. */
export type Dim = NumDim | CatDim;

/** The constant terms of a dim's prior kernel: −log Z and −log σ − log √(2π) − log Z. */
export interface PriorTerms {
  /** −log Z (truncation). */
  readonly lz: number;
  /** The log-density constant. */
  readonly cst: number;
}

/** Whether a dim is active in an internal vector (NaN marks inactive dims). */
export function active(d: Dim, x: Float64Array): boolean {
  return !d.cond || x[d.cond.dim] === d.cond.index;
}

/** A value of an assignment in internal units (clipped to the kernel bounds). */
export function toInternal(d: Dim, v: number): number {
  if (d.kind === "cat") return v;
  const x = d.log ? Math.log(v) : v;
  return d.bounded ? Math.min(d.hi, Math.max(d.lo, x)) : x;
}

/** The assignment value of an internal one: exp where log, rounded onto the domain's grid. */
export function toExternal(d: NumDim, x: number): number {
  const dom = d.domain;
  const v = d.log ? Math.exp(x) : x;
  if (dom.kind === "float") {
    return dom.q ? quantize(v, dom.q, dom.min, dom.max) : Math.min(dom.max, Math.max(dom.min, v));
  }
  if (dom.kind === "int") {
    const k = Math.round((v - dom.min) / dom.q);
    return Math.min(dom.max, Math.max(dom.min, dom.min + k * dom.q));
  }
  return dom.q ? quantize(v, dom.q, -Infinity, Infinity) : v;
}

/** log(Φ(b) − Φ(a)), skipping the work for a kernel well inside its bounds. */
export function logInside(a: number, b: number): number {
  if (a < -9 && b > 9) return 0;
  if (a < -9) return b > 0 ? Math.log1p(-ndtr(-b)) : logMass(a, b);
  if (b > 9) return a < 0 ? Math.log1p(-ndtr(a)) : logMass(a, b);
  return logMass(a, b);
}

/** The prior kernel's constant terms of a dim. */
export function priorTerms(d: Dim): PriorTerms {
  if (d.kind === "cat" || !d.bounded) {
    return { lz: 0, cst: d.kind === "cat" ? 0 : -Math.log(d.priorSigma) - LOG_SQRT_2PI };
  }
  const lz = -logInside((d.lo - d.priorMu) / d.priorSigma, (d.hi - d.priorMu) / d.priorSigma);
  return { lz, cst: lz - Math.log(d.priorSigma) - LOG_SQRT_2PI };
}

/**
 * The dim of a drawable parameter.
 *
 * @throws {TypeError} naming `who` for a domain the model does not handle.
 */
export function makeDim(p: ParamInfo, cond: Cond | undefined, who = "tpeSearcher"): Dim {
  const d = p.domain;
  const base = { key: p.key, ...(cond ? { cond } : {}) };
  if (d.kind === "choice") return { kind: "cat", ...base, k: d.options.length };
  if (d.kind === "normal") {
    return {
      kind: "num",
      ...base,
      domain: d,
      log: false,
      lo: -Infinity,
      hi: Infinity,
      bounded: false,
      disc: false,
      half: 0,
      priorMu: d.mean,
      priorSigma: d.sd,
    };
  }
  if (d.kind === "float") {
    let lo = d.min, hi = d.max, disc = false, half = 0;
    if (d.q && !d.log) {
      // Cells of the multiples of q that lie in [min, max].
      half = d.q / 2;
      lo = quantize(d.min, d.q, d.min, d.max) - half;
      hi = quantize(d.max, d.q, d.min, d.max) + half;
      disc = true;
    }
    if (d.log) [lo, hi] = [Math.log(lo), Math.log(hi)];
    return numDim(base, d, d.log, lo, hi, disc, half);
  }
  if (d.kind === "int") {
    const half = d.q / 2;
    let lo = d.min - half, hi = d.max + half;
    if (d.log) [lo, hi] = [Math.log(lo), Math.log(hi)];
    return numDim(base, d, d.log, lo, hi, true, half);
  }
  throw new TypeError(`${who}: parameter "${p.key}" has an unsupported domain`);
}

function numDim(
  base: { key: string; cond?: Cond },
  domain: FloatDomain | IntDomain,
  log: boolean,
  lo: number,
  hi: number,
  disc: boolean,
  half: number,
): NumDim {
  return {
    kind: "num",
    ...base,
    domain,
    log,
    lo,
    hi,
    bounded: true,
    disc,
    half,
    priorMu: 0.5 * (lo + hi),
    priorSigma: hi - lo,
  };
}
