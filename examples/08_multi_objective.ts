#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * `deno task example:multi`: accuracy against model size. The MNIST classifier of example 02,
 * searched for two objectives at once: the highest validation accuracy and the fewest
 * parameters. There is no single best trial: the answer is the Pareto front, the trials that no
 * other trial beats in both, from a small model that is nearly as good to the most accurate one.
 *
 * MOTPE (`tpeSearcher` with two metrics) proposes the configs; `nsga2Searcher()` is the other
 * multi-objective searcher (for budgets of a few generations of 50). The HTML report draws the
 * front (`report.html` in the experiment folder).
 *
 * Smaller: NUM_SAMPLES=4 EPOCHS=1 TRAIN_SIZE=300 deno task example:multi
 */
import { Tuner } from "../mod.ts";
import { tpeSearcher } from "../plugins/searchers/mod.ts";
import { renderReport } from "../plugins/reporters/html.ts";
import { mnistSetup, mnistSpace } from "./mnist_setup.ts";
import { tableReporter } from "../plugins/reporters/table.ts";

const setup = await mnistSetup({ epochs: 3, trainSize: 2000, numSamples: 12 });

const results = await new Tuner({
  trainable: new URL("./mnist_trainable.ts", import.meta.url),
  space: mnistSpace(setup),
  // The trainable reports `params` (model.countParams()) beside val_acc in every report.
  metric: ["val_acc", "params"],
  mode: ["max", "min"],
  numSamples: setup.numSamples,
  maxConcurrent: 2,
  seed: setup.seed,
  searcher: tpeSearcher({ initialPoints: 4 }),
  sandbox: setup.sandbox,
  storage: setup.storage,
  name: setup.name,
  reporter: tableReporter({
    parameterColumns: { layer_1: "l1", layer_2: "l2", lr: "lr", batch_size: "batch" },
    metricColumns: { val_acc: "val_acc", params: "params" },
  }),
}).fit();

const front = results.paretoFront().sort((a, b) => a.objectives[1] - b.objectives[1]);
console.log(`\nPareto front: ${front.length} of ${results.trials.length} trials`);
for (const t of front) {
  console.log(
    `  ${t.id}: val_acc ${t.objectives[0].toFixed(3)} with ${t.objectives[1]} parameters ` +
      `(layers ${t.config.layer_1}-${t.config.layer_2}, lr ${Number(t.config.lr).toPrecision(2)})`,
  );
}
const report = `${results.path}/report.html`;
await Deno.writeTextFile(report, await renderReport(results.path));
console.log(`The front, drawn: ${report}`);
