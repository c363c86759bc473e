// The one table of Tuner options (tuner/option_table.ts) makes the Tuner's option list, the
// experiment file's keys and numbers, and what experiment.json keeps for Tuner.restore.

import assert from "#assert";
import { Tuner } from "../../tuner/tuner.ts";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import {
  FILE_KEYS,
  fileKey,
  SAVED_AS_IS,
  TUNER_OPTION_NAMES,
  TUNER_OPTIONS,
} from "../../tuner/option_table.ts";
import { uniform } from "../../core/space.ts";
import { tempStorage } from "../_helpers.ts";

const base = {
  trainable: async (c: { x: number }, s: { report(m: object): Promise<void> }) => {
    await s.report({ loss: c.x });
  },
  space: { x: uniform(0, 1) },
  metric: "loss",
  mode: "min" as const,
};

Deno.test("the Tuner knows every option of the table and names the nearest for a typo", () => {
  for (const k of TUNER_OPTION_NAMES) {
    // A wrong value is refused for its value, never as an unknown option.
    try {
      new Tuner({ ...base, [k]: Symbol("wrong") } as never);
    } catch (e) {
      assert.doesNotMatch((e as Error).message, /unknown option/, k);
    }
  }
  assert.throws(
    () => new Tuner({ ...base, maxConcurent: 2 } as never),
    /did you mean "maxConcurrent"/,
  );
});

Deno.test("every file key of the table is read by the loader; numbers get their factor", async () => {
  assert.deepEqual(Object.keys(FILE_KEYS).filter((k) => k.endsWith("_s")), [
    "time_budget_s",
    "trial_timeout_s",
  ]);
  const o = await parseExperiment(
    [
      "trainable: ./t.ts",
      "metric: loss",
      "mode: min",
      "space: { x: { type: uniform, lower: 0, upper: 1 } }",
      "num_samples: 3",
      "max_concurrent: 2",
      "max_failures: 1",
      "seed: 7",
      "time_budget_s: 2",
      "trial_timeout_ms: 500",
    ].join("\n"),
    "/exp/e.yaml",
  );
  assert.equal(o.numSamples, 3);
  assert.equal(o.maxConcurrent, 2);
  assert.equal(o.maxFailures, 1);
  assert.equal(o.seed, 7);
  assert.equal(o.timeBudgetMs, 2000);
  assert.equal(o.trialTimeoutMs, 500);
  await assert.rejects(
    () => parseExperiment("trainable: ./t.ts\nmax_concurent: 2\n", "/exp/e.yaml"),
    /Unknown key "max_concurent" \(did you mean "max_concurrent"\?\)/,
  );
  assert.equal(fileKey("callbacks"), TUNER_OPTIONS.callbacks.file);
});

Deno.test("the options saved as they are come back from Tuner.restore", async () => {
  const storage = await tempStorage();
  const given = {
    maxConcurrent: 2,
    resources: { cpu: 1 },
    timeBudgetMs: 60_000,
    maxFailures: 1,
    trialTimeoutMs: 30_000,
    checkpoint: { numToKeep: 2 },
    sandbox: { env: ["HOME"] },
    denoConfig: false as const,
  };
  await new Tuner({ ...base, ...given, numSamples: 2, storage, name: "saved", reporter: false })
    .fit();
  const again = await Tuner.restore(`${storage}/saved`, { trainable: base.trainable as never });
  for (const k of SAVED_AS_IS) {
    const v = (given as Record<string, unknown>)[k];
    if (v !== undefined) {
      assert.deepEqual((again.options as unknown as Record<string, unknown>)[k], v, k);
    }
  }
  await Deno.remove(storage, { recursive: true });
});
