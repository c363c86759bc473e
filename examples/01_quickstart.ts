#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-run
/**
 * Hello, tune: an in-process objective, random search, the result table.
 *
 *     deno task example:quickstart
 */
import { loguniform, randint, Tuner, uniform } from "../mod.ts";

const results = await new Tuner({
  // A function trainable runs in-process (no sandbox): made for cheap objectives.
  trainable: async (config, session) => {
    for (let step = session.iteration; step < 10; step++) {
      const loss = (Math.log10(config.lr) + 2) ** 2 + (config.momentum - 0.9) ** 2 +
        config.layers / 100 + 1 / (step + 1);
      await session.report({ loss });
    }
  },
  space: { lr: loguniform(1e-4, 1e-1), momentum: uniform(0.5, 0.99), layers: randint(1, 5) },
  metric: "loss",
  mode: "min",
  numSamples: Number(Deno.env.get("NUM_SAMPLES") ?? 30),
  storage: Deno.env.get("STORAGE") ?? "./tunebox_results",
  seed: 7,
}).fit();

const best = results.best();
console.log(`best loss ${best.score.toFixed(4)} with`, best.config);
