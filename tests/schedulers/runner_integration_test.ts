// The schedulers through the real runner (in-process trials with real checkpoints on disk).
import { equal, ok as assert } from "#assert";
import { grid, loguniform, type Session, Tuner, uniform } from "../../mod.ts";
import { ashaScheduler, hyperbandScheduler, pbtScheduler } from "../../plugins/schedulers/mod.ts";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { tempStorage } from "../_helpers.ts";

type Cfg = { q: number; lr?: number };

// A learning curve whose final value is q: better q, better everywhere; checkpoints its state.
async function curve(config: Cfg, session: Session<Cfg>, maxT = 9): Promise<void> {
  let acc = 0;
  if (session.checkpoint) {
    acc = JSON.parse(await Deno.readTextFile(`${session.checkpoint}/s.json`)).acc;
  }
  for (let t = session.iteration; t < maxT; t++) {
    acc += (config.lr ?? config.q) * (1 - acc);
    await session.report({ acc }, {
      checkpoint: (dir) => Deno.writeTextFile(`${dir}/s.json`, JSON.stringify({ acc })),
    });
  }
}

async function events(dir: string): Promise<string[]> {
  return (await Deno.readTextFile(`${dir}/trials.jsonl`)).trim().split("\n");
}

Deno.test("ASHA through the runner stops the weak trials early and lets the best reach maxT", async () => {
  const r = await new Tuner({
    trainable: curve,
    // Strong trials first: ASHA only cuts a trial against those already recorded at its rung.
    space: { q: grid([0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05]) },
    metric: "acc",
    mode: "max",
    maxConcurrent: 2,
    scheduler: ashaScheduler({ maxT: 9, gracePeriod: 1, reductionFactor: 3 }),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  const best = r.trials.find((t) => t.config.q === 0.4)!;
  equal(best.iterations, 9);
  assert(r.trials.filter((t) => t.iterations < 9).length >= 3, "weak trials were stopped early");
  equal(r.best().config.q, 0.4);
});

for (const mode of ["promote"] as const) {
  Deno.test(`ASHA ${mode} through the runner pauses at rungs and resumes the best from checkpoints`, async () => {
    const r = await new Tuner({
      trainable: curve,
      space: { q: grid([0.05, 0.1, 0.2, 0.3, 0.4, 0.5]) },
      metric: "acc",
      mode: "max",
      maxConcurrent: 2,
      scheduler: ashaScheduler({ maxT: 9, gracePeriod: 1, reductionFactor: 3, mode }),
      storage: await tempStorage(),
      reporter: false,
    }).fit();
    equal(r.trials.find((t) => t.config.q === 0.5)!.iterations, 9);
    assert((await events(r.path)).some((l) => l.includes('"paused"')));
    for (const t of r.trials) equal(t.status, "terminated");
  });
}

Deno.test("HyperBand through the runner finishes every bracket without hanging", async () => {
  const r = await new Tuner({
    trainable: (c: Cfg, s: Session<Cfg>) => curve(c, s, 9),
    space: { q: uniform(0.05, 0.5) },
    metric: "acc",
    mode: "max",
    numSamples: 12,
    seed: 3,
    maxConcurrent: 2,
    scheduler: hyperbandScheduler({ maxT: 9, reductionFactor: 3 }),
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  equal(r.trials.length, 12);
  for (const t of r.trials) equal(t.status, "terminated", `${t.id}: ${t.error}`);
  assert((await events(r.path)).some((l) => l.includes('"paused"')), "trials paused at milestones");
  assert(r.trials.some((t) => t.iterations === 9));
});

for (const synch of [false, true]) {
  Deno.test(`PBT (${synch ? "synch" : "async"}) through the runner exploits with real checkpoints`, async () => {
    const r = await new Tuner({
      trainable: (c: Cfg, s: Session<Cfg>) => curve(c, s, 12),
      space: { q: 0, lr: loguniform(0.01, 0.5) },
      metric: "acc",
      mode: "max",
      numSamples: 6,
      seed: 5,
      maxConcurrent: 2,
      scheduler: pbtScheduler({
        timeAttr: "training_iteration",
        perturbationInterval: 3,
        hyperparamMutations: { lr: loguniform(0.01, 0.5) },
        synch,
      }),
      storage: await tempStorage(),
      reporter: false,
    }).fit();
    for (const t of r.trials) equal(t.status, "terminated", `${t.id}: ${t.error}`);
    for (const t of r.trials) equal(t.iterations, 12);
    const exploits = (await events(r.path)).filter((l) => l.includes('"reason":"exploit'));
    assert(exploits.length > 0, "some trial cloned another");
    const policy = [];
    for await (const e of Deno.readDir(r.path)) {
      if (e.name.startsWith("pbt_policy_")) policy.push(e.name);
    }
    assert(policy.length > 0, "PBT wrote its policy logs");
  });
}

Deno.test("PBT from YAML: hyperparam_mutations use the space syntax", async () => {
  const o = await parseExperiment(
    `trainable: ./t.ts
metric: acc
mode: max
space: { lr: { type: loguniform, min: 0.01, max: 0.5 } }
scheduler:
  name: pbt
  perturbation_interval: 2
  hyperparam_mutations:
    lr: { type: loguniform, min: 0.01, max: 0.5 }
`,
    "/exp/e.yaml",
  );
  equal(o.scheduler?.name, "pbt");
  let msg = "";
  await parseExperiment(
    `trainable: ./t.ts
metric: acc
mode: max
space: { lr: 0.1 }
scheduler:
  name: pbt
  hyperparam_mutations:
    lr: { type: loguniform, min: 0, max: 0.5 }
`,
    "/exp/e.yaml",
  ).catch((e) => (msg = e.message));
  assert(/^\/exp\/e\.yaml:8:\d+: scheduler "pbt": .*loguniform/.test(msg), msg);
});
