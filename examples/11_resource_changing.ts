#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-run
/**
 * `deno task example:resources`: resource-changing trials (Ray's `ResourceChangingScheduler`).
 * Four trials of different lengths (an epoch's work grows with the model's width) share 4 CPUs,
 * one each at first; ASHA stops the weak ones,
 * and as trials end, `resourceChangingScheduler` hands their CPUs to the ones still running. A
 * trial given more restarts from the checkpoint of its last report and reads its new share in
 * `session.resources.cpu`: here an epoch's work is split over that many parallel chunks (a
 * stand-in for a data-parallel step, or a thread pool sized from it).
 *
 *     EPOCHS=6 deno task example:resources
 */
import { grid, type Session, Tuner, uniform } from "../mod.ts";
import { ashaScheduler, resourceChangingScheduler } from "../plugins/schedulers/mod.ts";

const epochs = Number(Deno.env.get("EPOCHS") ?? 12);
type Config = { lr: number; width: number };

/** Milliseconds of work in one epoch of a model of this width: 400 ms at width 64. */
const epochMs = (width: number) => 400 * width / 64;

/** One epoch: its work split over the CPUs the trial holds. */
async function epoch(ms: number, cpus: number): Promise<void> {
  const chunks = Array.from({ length: cpus }, () => new Promise((r) => setTimeout(r, ms / cpus)));
  await Promise.all(chunks);
}

const t0 = performance.now();
const results = await new Tuner({
  trainable: async (config: Config, session: Session<Config>) => {
    let loss = 3;
    if (session.checkpoint) loss = Number(await Deno.readTextFile(`${session.checkpoint}/loss`));
    for (let e = session.iteration; e < epochs; e++) {
      await epoch(epochMs(config.width), session.resources.cpu);
      loss = loss * (1 - config.lr) + 0.1 * 64 / config.width;
      await session.report({ loss, cpus: session.resources.cpu }, {
        checkpoint: (dir) => Deno.writeTextFile(`${dir}/loss`, String(loss)),
      });
    }
  },
  space: { lr: uniform(0.05, 0.4), width: grid([128, 64, 32, 16]) },
  metric: "loss",
  mode: "min",
  cpus: 4,
  gpus: 0,
  seed: 3,
  scheduler: resourceChangingScheduler({
    base: ashaScheduler({ maxT: epochs, gracePeriod: 2, reductionFactor: 2 }),
  }),
  storage: Deno.env.get("STORAGE") ?? "./tunebox_results",
  reporter: false,
}).fit();

for (const t of results.trials) {
  const cpus = results.history(t.id).map((r) => r.cpus);
  const runs = cpus.filter((c, i) => i === 0 || c !== cpus[i - 1]).join(" -> ");
  console.log(`${t.id} width ${t.config.width}: ${t.iterations} epochs, CPUs per run: ${runs}`);
}
const best = results.best();
console.log(
  `best loss ${best.score.toFixed(4)} (width ${best.config.width}) in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s; with every trial on 1 CPU the longest alone takes ${
    (epochs * epochMs(128) / 1000).toFixed(1)
  } s`,
);
