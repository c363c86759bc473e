// itwinai's Ray-shaped experiment files (train_loop_config, tune_config, run_config,
// scaling_config) read by the CLI beside Tunebox's own shape.
import { deepEqual, equal, ok as assert } from "#assert";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError } from "../../mod.ts";

// itwinai's tutorials/hpo-workflows config, with the search algorithm on and `trainable:`.
const ITWINAI = `trainable: ./train.ts
scaling_config:
    num_workers: 4
    use_gpu: true
    resources_per_worker:
      CPU: 5
      GPU: 1
train_loop_config:
  batch_size:
    type: choice
    options: [32, 64, 128]
  learning_rate:
    type: uniform
    min: 1e-5
    max: 1e-3
  epochs: 20
tune_config:
  num_samples: 2
  scheduler:
    name: asha
    max_t: 20
    grace_period: 10
    reduction_factor: 4
    brackets: 1
  search_alg:
    name: bayes
    metric: loss
    mode: min
    n_random_steps: 5
run_config:
  storage_path: ray_checkpoints
  name: Virgo-HPO-Experiment
`;

async function errorOf(text: string): Promise<ConfigError> {
  let caught: unknown;
  await parseExperiment(text, "/exp/hpo.yaml").catch((e) => (caught = e));
  assert(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  return caught as ConfigError;
}

Deno.test("itwinai's Ray-shaped file maps onto Tuner options: workers, GP searcher, ASHA, storage", async () => {
  const o = await parseExperiment(ITWINAI, "/exp/hpo.yaml");
  equal(o.trainable, "file:///exp/train.ts");
  equal(o.metric, "loss");
  equal(o.mode, "min");
  equal(o.numSamples, 2);
  deepEqual(o.resources, { workers: 4, cpu: 5, gpu: 1 });
  equal(o.searcher?.name, "gp");
  equal(o.scheduler?.name, "asha");
  equal(o.storage, "/exp/ray_checkpoints");
  equal(o.name, "Virgo-HPO-Experiment");
  deepEqual(Object.keys(o.space).sort(), ["batch_size", "epochs", "learning_rate"]);
  equal(o.space.epochs, 20);
});

Deno.test("Ray shape: use_gpu alone gives a GPU per worker; metric may come from the scheduler or tune_config", async () => {
  const o = await parseExperiment(
    `trainable: ./t.ts
train_loop_config: { x: { type: uniform, min: 0, max: 1 } }
scaling_config: { num_workers: 2, use_gpu: true }
tune_config:
  metric: acc
  mode: max
  max_concurrent_trials: 3
  scheduler: { name: asha, max_t: 4, metric: acc }
run_config: { failure_config: { max_failures: 2 }, stop: { training_iteration: 4 } }
`,
    "/exp/hpo.yaml",
  );
  deepEqual(o.resources, { workers: 2, gpu: 1 });
  equal(o.metric, "acc");
  equal(o.mode, "max");
  equal(o.maxConcurrent, 3);
  equal(o.maxFailures, 2);
  deepEqual(o.stop, { training_iteration: 4 });
});

Deno.test("Ray shape: mistakes name the file, line and column of the Ray key", async () => {
  let e = await errorOf(ITWINAI.replace("num_workers: 4", "num_workers: 0"));
  equal(
    e.message,
    '/exp/hpo.yaml:3:18: "resources.workers" must be a whole number of workers per trial >= 1, got 0',
  );
  e = await errorOf(ITWINAI.replace("num_samples: 2", "num_sample: 2"));
  equal(
    e.message,
    '/exp/hpo.yaml:18:3: Unknown key "tune_config.num_sample" (did you mean "num_samples"?); ' +
      "expected num_samples, scheduler, search_alg, metric, mode, max_concurrent_trials, time_budget_s",
  );
  e = await errorOf(ITWINAI.replace("name: bayes", "name: bayesian"));
  assert(e.message.startsWith("/exp/hpo.yaml:26:"), e.message);
  assert(/Unknown searcher "bayesian"/.test(e.message), e.message);
  e = await errorOf(ITWINAI.replace("num_samples: 2", "num_samples: 2\n  metric: acc"));
  assert(e.message.startsWith("/exp/hpo.yaml:28:"), e.message);
  assert(
    e.message.includes(
      '"tune_config.search_alg.metric" is "loss" but "tune_config.metric" is "acc"',
    ),
    e.message,
  );
  e = await errorOf(ITWINAI.replace("use_gpu: true", "use_gpu: false"));
  equal(
    e.message,
    '/exp/hpo.yaml:4:14: "scaling_config.use_gpu" is false but resources_per_worker asks for GPU: 1; set use_gpu: true or drop GPU',
  );
  e = await errorOf(ITWINAI + "space: { x: 1 }\n");
  assert(/"train_loop_config" and "space" both give space/.test(e.message), e.message);
  e = await errorOf(ITWINAI.replace("      CPU: 5", "      CPU: -5"));
  equal(e.message, '/exp/hpo.yaml:6:12: "resources.cpu" must be a number >= 0, got -5');
  e = await errorOf(
    ITWINAI.replace(
      "tune_config:\n  num_samples: 2",
      "tune_config:\n  num_samples: 2\n  metric: loss\n  mode: minimize",
    ).replace("    metric: loss\n    mode: min\n", ""),
  );
  assert(/"mode" must be min or max, got "minimize"/.test(e.message), e.message);
  assert(e.message.startsWith("/exp/hpo.yaml:20:"), e.message);
});
