// Stoppers from experiment files: `stop:` as one stopper or a list (Ray's CombinedStopper),
// errors at their file:line:col, and the stopper made again on resume.
import assert from "#assert";
import { join } from "node:path";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError, type Session, Tuner, uniform } from "../../mod.ts";
import type { JsonValue, TrialResult } from "../../core/trial.ts";
import type { Stopper } from "../../core/runner.ts";
import { combinedStopper, trialPlateauStopper } from "../../plugins/stoppers/mod.ts";
import { tempStorage } from "../_helpers.ts";

const BASE = `name: exp
trainable: ./train.ts
metric: acc
mode: max
space:
  q: { type: uniform, min: 0, max: 1 }
`;
const FILE = "/exp/experiment.yaml";

function r(metrics: Record<string, JsonValue>, iteration = 1): TrialResult {
  return {
    ...metrics,
    training_iteration: iteration,
    time_total_s: iteration,
    time_this_iter_s: 1,
    timestamp: 0,
    trial_id: "x",
  };
}

async function errorOf(text: string): Promise<ConfigError> {
  let caught: unknown;
  await parseExperiment(BASE + text, FILE).catch((e) => (caught = e));
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  return caught as ConfigError;
}

Deno.test("stop: { name: trial_plateau, ... } in YAML is Ray's TrialPlateauStopper", async () => {
  const o = await parseExperiment(
    BASE + "stop: { name: trial_plateau, metric: acc, num_results: 2, grace_period: 0 }\n",
    FILE,
  );
  const stop = o.stop as Stopper;
  assert.equal(typeof stop, "function");
  assert.deepStrictEqual([stop("a", r({ acc: 1 })), stop("a", r({ acc: 1 }))], [false, true]);
  assert.deepStrictEqual((stop as unknown as { spec: unknown }).spec, {
    name: "trial_plateau",
    options: { metric: "acc", numResults: 2, gracePeriod: 0 },
  });
});

Deno.test("stop: as a list combines criteria and stoppers (Ray's CombinedStopper)", async () => {
  const o = await parseExperiment(
    BASE + `stop:
  - { training_iteration: 5 }
  - { name: experiment_plateau, metric: acc, top: 2, std: 0.01, mode: max }
`,
    FILE,
  );
  const stop = o.stop as Stopper;
  // The criteria part alone stops the 5th result; the plateau part ends the experiment once the
  // two best values agree.
  assert.equal(stop("a", r({ acc: 0.1 }, 5)), true);
  assert.equal(stop.stopAll!(), false);
  assert.equal(stop("b", r({ acc: 0.5 }, 1)), false);
  assert.equal(stop("c", r({ acc: 0.505 }, 1)), true);
  assert.equal(stop.stopAll!(), true);
  assert.deepStrictEqual((stop as unknown as { spec: unknown }).spec, {
    name: "combined",
    options: {
      stoppers: [
        { training_iteration: 5 },
        {
          name: "experiment_plateau",
          options: { metric: "acc", top: 2, std: 0.01, mode: "max" },
        },
      ],
    },
  });
});

Deno.test("combinedStopper shows every result to every part, and checks its parts", () => {
  let seen = 0;
  const counting: Stopper = () => (seen++, false);
  const stop = combinedStopper({ training_iteration: 1 }, counting);
  assert.equal(stop("a", r({}, 1)), true);
  assert.equal(seen, 1, "the second part saw the result the first part stopped on");
  assert.equal((stop as unknown as { spec?: unknown }).spec, undefined, "a bare function");
  assert.throws(() => combinedStopper(), /give at least one stopper/);
  assert.throws(
    () => combinedStopper({ acc: "high" } as never),
    /"acc" must be a number \(stop when the result reaches it\), got "high"/,
  );
  assert.throws(() => combinedStopper(3 as never), /stopper 1 must be a function or a criteria/);
});

Deno.test("YAML stopper mistakes name the file, line and column", async () => {
  let e = await errorOf("stop: { name: trial_plateu, metric: acc }\n");
  assert.equal(
    e.message,
    `${FILE}:7:15: Unknown stopper "trial_plateu" (did you mean "trial_plateau"?); known: ` +
      "combined, experiment_plateau, trial_plateau (or load one with module: ./file.ts)",
  );
  e = await errorOf(
    "stop:\n  - { training_iteration: 5 }\n  - name: trial_plateau\n    metric: acc\n    std: -1\n",
  );
  assert.equal(
    e.message,
    `${FILE}:11:10: stopper "trial_plateau": trialPlateauStopper: "std" must be > 0, got -1`,
  );
  e = await errorOf("stop:\n  - { training_iteration: ten }\n");
  assert.equal(
    e.message,
    `${FILE}:8:27: "stop[0].training_iteration" must be a number (stop when the result reaches ` +
      `it), got "ten"`,
  );
  e = await errorOf("stop: []\n");
  assert.match(e.message, /:7:7: "stop" is an empty list/);
  e = await errorOf("stop: { name: trial_plateau, metric: acc, numresults: 2 }\n");
  assert.match(e.message, /:7:43: stopper "trial_plateau": .*unknown option "numresults"/);
  // A criteria mapping keeps its old check.
  e = await errorOf("stop: { training_iteration: ten }\n");
  assert.match(e.message, /"stop.training_iteration" must be a number/);
});

type Cfg = { q: number };

Deno.test("a YAML stopper runs in the runner, is saved, and is made again on resume", async () => {
  const o = await parseExperiment(
    BASE + "stop: [{ training_iteration: 30 }, { name: trial_plateau, metric: acc }]\n",
    FILE,
  );
  const storage = await tempStorage();
  let run = 1;
  // Flat from the first result. The first run fails after 2 results; the retry (a resumed
  // experiment) restarts from scratch, and only a stopper made again stops it at 4 results.
  const trainable = async (c: Cfg, s: Session<Cfg>) => {
    for (let t = s.iteration + 1; t <= 30; t++) {
      if (run === 1 && t === 3) throw new Error("first run fails");
      await s.report({ acc: c.q });
    }
  };
  const first = await new Tuner({
    ...o,
    trainable,
    space: { q: uniform(0, 1) },
    numSamples: 2,
    storage,
    reporter: false,
  } as never).fit();
  assert.deepStrictEqual(first.trials.map((t) => [t.status, t.iterations]), [
    ["error", 2],
    ["error", 2],
  ]);
  const saved = JSON.parse(await Deno.readTextFile(join(first.path, "experiment.json")));
  assert.deepStrictEqual(saved.options.stop.name, "combined");
  run = 2;
  const resumed = await (await Tuner.restore(first.path, {
    trainable: trainable as never,
    restartErrored: true,
    reporter: false,
  })).fit();
  assert.deepStrictEqual(resumed.trials.map((t) => [t.status, t.iterations]), [
    ["terminated", 4],
    ["terminated", 4],
  ]);
});

Deno.test("a stop function without a spec must be given again on resume", async () => {
  const first = await new Tuner({
    trainable: async (_c: Cfg, s: Session<Cfg>) => {
      await s.report({ acc: 1 });
    },
    space: { q: uniform(0, 1) },
    metric: "acc",
    mode: "max",
    stop: (_id: string, res: TrialResult) => res.training_iteration >= 1,
    storage: await tempStorage(),
    reporter: false,
  }).fit();
  await assert.rejects(
    () => Tuner.restore(first.path, { trainable: () => {} }),
    /stopped trials with a stop function: pass it again with Tuner\.restore\(path, \{ stop \}\)/,
  );
  // A code-built plateau stopper carries its spec.
  const spec = (trialPlateauStopper({ metric: "acc" }) as unknown as { spec: unknown }).spec;
  assert.deepStrictEqual(spec, { name: "trial_plateau", options: { metric: "acc" } });
  await Tuner.restore(first.path, { trainable: () => {}, stop: { training_iteration: 1 } });
});
