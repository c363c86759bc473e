/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) so that an experiment with a
 * `seed` replays exactly, and whose state is a JSON array for snapshots.
 *
 * @module
 */

/**
 * A seeded random number generator with a JSON-serialisable state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "./random.ts";
 * const a = new Rng(42), b = new Rng(42);
 * assert.equal(a.next() === b.next(), true);
 * ```
 */
export class Rng {
  #s: Uint32Array;
  #spareNormal: number | undefined;

  /** Creates a generator from a seed (any finite number; the same seed gives the same stream). */
  constructor(seed: number = Date.now()) {
    this.#s = new Uint32Array(4);
    let x = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
    const hi = Math.trunc(seed / 2 ** 32) >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9 + (i === 1 ? hi : 0)) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextUint32() >>> 5, b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A uniform float in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** A uniform integer in [low, high] (both inclusive). */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  /** A standard normal sample (Box–Muller, caching the second value). */
  normal(mean = 0, sd = 1): number {
    if (this.#spareNormal !== undefined) {
      const z = this.#spareNormal;
      this.#spareNormal = undefined;
      return mean + sd * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + sd * r * Math.cos(2 * Math.PI * v);
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** A new independent generator derived from this one (for per-plugin streams). */
  fork(): Rng {
    return new Rng(this.nextUint32() * 4096 + (this.nextUint32() & 4095));
  }

  /**
   * The state as JSON, for snapshots: the four state words, and the cached second normal of
   * Box–Muller when one is waiting (so a restored stream's next `normal()` is the same).
   */
  snapshot(): number[] {
    return this.#spareNormal === undefined ? [...this.#s] : [...this.#s, this.#spareNormal];
  }

  /** Restores a state from {@linkcode Rng.snapshot} (4 numbers, or 5 with a cached normal). */
  restore(state: readonly number[]): void {
    if (state.length !== 4 && state.length !== 5) {
      throw new TypeError(
        `Rng state must have 4 numbers (5 with a cached normal), got ${state.length}`,
      );
    }
    if (state.some((v) => typeof v !== "number" || !Number.isFinite(v))) {
      throw new TypeError(`Rng state must hold finite numbers, got ${JSON.stringify(state)}`);
    }
    this.#s = Uint32Array.from(state.slice(0, 4));
    this.#spareNormal = state.length === 5 ? state[4] : undefined;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
