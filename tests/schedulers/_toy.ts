// The noisy PBT toy problem shared by the PB2 test and bench/schedulers_bench.ts.
import type { SimTrainable } from "../contract/scheduler.ts";

/**
 * The PBT paper's toy (Jaderberg et al. 2017, Fig. 2): maximise Q = 1.2 - |theta|^2 by gradient
 * steps on the surrogate weighted by h. The paper's start, h = (1, 0) and (0, 1), gives every
 * worker the same Q at every step, and PB2's first exploit copies the donor (the bandit needs
 * two results of a segment), so a deterministic population collapses into ties; here each
 * worker starts from a seeded random h in [0, 0.3]^2, and Q is observed with N(0, 0.01^2)
 * noise.
 */
export const NOISY_TOY: SimTrainable<number[]> = {
  iterations: 40,
  init: () => [0.9, 0.9],
  step: (theta, config, _iteration, rng) => {
    const h = [config.h0 as number, config.h1 as number], alpha = 0.02;
    const next = theta.map((x, i) => x - alpha * 2 * h[i] * x);
    return {
      state: next,
      metrics: { Q: 1.2 - next[0] ** 2 - next[1] ** 2 + 0.01 * rng.normal(0, 1) },
    };
  },
};
