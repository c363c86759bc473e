// dataParallel across real multi-worker trials: with a fixed seed, 2 and 4 workers sharing a
// global batch end with the weights of 1 worker training on the whole batch.
import { equal, ok as assert, throws } from "#assert";
import { Tuner } from "../../mod.ts";
import { dataParallel, loadTfjs } from "../../plugins/backends/tfjs.ts";
import { soloCollectives } from "../../core/collectives.ts";
import { captureWarnings, fixture, tempStorage } from "../_helpers.ts";

async function train(
  workers: number,
): Promise<{ loss: number; first: number; weights: number[] }> {
  const storage = await tempStorage();
  const { value: results } = await captureWarnings(() =>
    new Tuner({
      trainable: fixture("dp_tfjs.ts"),
      // 13 examples per global batch: not divisible by 2 or 4 (parts of 3 and 4 examples).
      space: { batch: 13, steps: 8, lr: 0.02 },
      metric: "loss",
      mode: "min",
      storage,
      resources: { workers, cpu: 0.5 },
      reporter: false,
    }).fit()
  );
  const t = results.trials[0];
  equal(t.status, "terminated", t.error);
  equal(t.metrics!.world, workers);
  const m = t.metrics!;
  return { loss: m.loss as number, first: m.first as number, weights: m.weights as number[] };
}

Deno.test("dataParallel: 2 and 4 workers with a global batch give the weights of 1 worker with that batch", async () => {
  const [one, two, four] = await Promise.all([train(1), train(2), train(4)]);
  equal(one.weights.length, 6 * 5 + 5 + 5 * 3 + 3);
  for (const [name, run] of [["2 workers", two], ["4 workers", four]] as const) {
    let worst = 0;
    for (let i = 0; i < one.weights.length; i++) {
      worst = Math.max(worst, Math.abs(run.weights[i] - one.weights[i]));
    }
    assert(worst < 1e-5, `${name}: weights differ by up to ${worst}`);
    assert(Math.abs(run.loss - one.loss) < 1e-5, `${name}: loss ${run.loss} vs ${one.loss}`);
  }
  // Training did something: the comparison is not of untrained models.
  assert(one.loss < one.first, `loss ${one.first} -> ${one.loss}`);
});

Deno.test("dataParallel refuses a session without collectives and an unknown loss", async () => {
  const { tf } = await loadTfjs({ prefer: ["cpu"] });
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  throws(
    // deno-lint-ignore no-explicit-any
    () => dataParallel(model, { optimizer: tf.train.sgd(0.1), session: {} as any }),
    /options\.session must be the trial's session/,
  );
  throws(
    () =>
      dataParallel(model, {
        optimizer: tf.train.sgd(0.1),
        session: soloCollectives(),
        loss: "hinge" as unknown as "meanSquaredError",
      }),
    /unknown loss "hinge"/,
  );
});
