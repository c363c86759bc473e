/**
 * The Ray-shaped experiment file that itwinai's HPO pipelines write (Ray Train's
 * `TorchTrainer(train_loop_config, scaling_config)` inside `Tuner(tune_config, run_config)`),
 * read beside Tunebox's own shape: a user of those files adds `trainable:` and changes nothing
 * else.
 *
 * ```yaml
 * trainable: ./train.ts
 * scaling_config: { num_workers: 4, use_gpu: true, resources_per_worker: { CPU: 5, GPU: 1 } }
 * train_loop_config:
 *   batch_size: { type: choice, options: [32, 64, 128] }
 *   learning_rate: { type: uniform, min: 1.0e-5, max: 1.0e-3 }
 *   epochs: 20
 * tune_config:
 *   num_samples: 2
 *   scheduler: { name: asha, max_t: 20, grace_period: 10, reduction_factor: 4, brackets: 1 }
 *   search_alg: { name: bayes, metric: loss, mode: min, n_random_steps: 5 }
 * run_config: { storage_path: ray_checkpoints, name: Virgo-HPO-Experiment }
 * ```
 *
 * @module
 */

import { suggest } from "../core/space.ts";

type Path = (string | number)[];

/** The keys of the Ray shape, and what each holds. */
export const RAY_KEYS: Record<string, string[]> = {
  scaling_config: ["num_workers", "use_gpu", "resources_per_worker", "trainer_resources"],
  tune_config: [
    "num_samples",
    "scheduler",
    "search_alg",
    "metric",
    "mode",
    "max_concurrent_trials",
    "time_budget_s",
  ],
  run_config: ["storage_path", "name", "stop", "failure_config"],
};

/** Ray's scheduler and searcher names that Tunebox names differently. */
const SEARCHER_NAMES: Record<string, string> = { bayes: "bayes", bayesopt: "bayes", gp: "bayes" };

/** What {@linkcode fromRayShape} gives back. */
export interface RayShapeTranslation {
  /** The experiment in Tunebox's own keys. */
  readonly y: Record<string, unknown>;
  /** Where each Tunebox key came from in the file (longest prefix first), for error positions. */
  readonly remap: [Path, Path][];
}

/** Whether the file uses the Ray shape. */
export function isRayShape(y: Record<string, unknown>): boolean {
  return ["train_loop_config", "tune_config", "run_config", "scaling_config"].some((k) =>
    Object.hasOwn(y, k)
  );
}

/**
 * Translates the Ray shape into Tunebox's keys. Errors go through `err`, with the path in the
 * file.
 */
export function fromRayShape(
  raw: Record<string, unknown>,
  err: (message: string, path: Path, key?: boolean) => never,
): RayShapeTranslation {
  const y: Record<string, unknown> = { ...raw };
  const remap: [Path, Path][] = [];
  const take = (k: string): Record<string, unknown> | undefined => {
    const v = y[k];
    delete y[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) {
      err(`"${k}" must be a mapping of ${(RAY_KEYS[k] ?? []).join(", ")}`, [k]);
    }
    const o = v as Record<string, unknown>;
    for (const sub of Object.keys(o)) {
      if (RAY_KEYS[k] && !RAY_KEYS[k].includes(sub)) {
        err(
          `Unknown key "${k}.${sub}"${suggest(sub, RAY_KEYS[k])}; expected ${
            RAY_KEYS[k].join(", ")
          }`,
          [k, sub],
          true,
        );
      }
    }
    return o;
  };
  // One key in two places is ambiguous: say which two.
  const put = (ours: string, value: unknown, from: Path) => {
    if (value === undefined) return;
    if (Object.hasOwn(y, ours)) {
      err(
        `"${from.join(".")}" and "${ours}" both give ${ours}: keep one of them`,
        from,
        true,
      );
    }
    y[ours] = value;
    remap.push([[ours], from]);
  };
  let metric: { value: unknown; from: Path } | undefined;
  let mode: { value: unknown; from: Path } | undefined;
  const lift = (o: Record<string, unknown>, at: Path) => {
    for (const [k, slot] of [["metric", "m"], ["mode", "o"]] as const) {
      if (o[k] === undefined) continue;
      const seen = slot === "m" ? metric : mode;
      if (seen && seen.value !== o[k]) {
        err(
          `"${[...at, k].join(".")}" is ${JSON.stringify(o[k])} but "${seen.from.join(".")}" is ${
            JSON.stringify(seen.value)
          }: an experiment has one ${k}`,
          [...at, k],
        );
      }
      if (!seen) {
        if (slot === "m") metric = { value: o[k], from: [...at, k] };
        else mode = { value: o[k], from: [...at, k] };
      }
    }
    const { metric: _m, mode: _o, ...rest } = o;
    return rest;
  };

  if (Object.hasOwn(y, "train_loop_config")) {
    const space = y.train_loop_config;
    delete y.train_loop_config;
    put("space", space, ["train_loop_config"]);
  }
  for (const k of ["metric", "mode"] as const) {
    if (y[k] !== undefined) {
      if (k === "metric") metric = { value: y[k], from: [k] };
      else mode = { value: y[k], from: [k] };
    }
  }

  const tune = take("tune_config");
  if (tune) {
    lift(tune, ["tune_config"]);
    put("num_samples", tune.num_samples, ["tune_config", "num_samples"]);
    put("max_concurrent", tune.max_concurrent_trials, ["tune_config", "max_concurrent_trials"]);
    put("time_budget_s", tune.time_budget_s, ["tune_config", "time_budget_s"]);
    for (const [key, ours] of [["scheduler", "scheduler"], ["search_alg", "searcher"]] as const) {
      const spec = tune[key];
      if (spec === undefined || spec === null) continue;
      const at: Path = ["tune_config", key];
      if (typeof spec !== "object" || Array.isArray(spec)) {
        err(`"tune_config.${key}" must be a mapping like { name: ..., <options> }`, at);
      }
      const rest = lift(spec as Record<string, unknown>, at);
      if (typeof rest.name !== "string") {
        err(`"tune_config.${key}" needs a "name"`, at);
      }
      if (ours === "searcher") {
        rest.name = SEARCHER_NAMES[String(rest.name).toLowerCase()] ?? rest.name;
      }
      put(ours, rest, at);
    }
  }

  const run = take("run_config");
  if (run) {
    put("storage", run.storage_path, ["run_config", "storage_path"]);
    put("name", run.name, ["run_config", "name"]);
    put("stop", run.stop, ["run_config", "stop"]);
    const failure = run.failure_config;
    if (failure !== undefined) {
      if (failure === null || typeof failure !== "object" || Array.isArray(failure)) {
        err(`"run_config.failure_config" must be a mapping like { max_failures: 2 }`, [
          "run_config",
          "failure_config",
        ]);
      }
      const f = failure as Record<string, unknown>;
      for (const sub of Object.keys(f)) {
        if (sub !== "max_failures") {
          err(
            `Unknown key "run_config.failure_config.${sub}"; expected max_failures`,
            ["run_config", "failure_config", sub],
            true,
          );
        }
      }
      put("max_failures", f.max_failures, ["run_config", "failure_config", "max_failures"]);
    }
  }

  const scaling = take("scaling_config");
  if (scaling) {
    if (Object.hasOwn(y, "resources")) {
      err(`"scaling_config" and "resources" both give the resources: keep one of them`, [
        "scaling_config",
      ], true);
    }
    const res: Record<string, unknown> = {};
    const at: Path = ["scaling_config"];
    if (scaling.num_workers !== undefined) {
      res.workers = scaling.num_workers;
      remap.push([["resources", "workers"], [...at, "num_workers"]]);
    }
    const per = scaling.resources_per_worker;
    let gpu: unknown;
    if (per !== undefined && per !== null) {
      if (typeof per !== "object" || Array.isArray(per)) {
        err(`"scaling_config.resources_per_worker" must be a mapping like { CPU: 1, GPU: 1 }`, [
          ...at,
          "resources_per_worker",
        ]);
      }
      for (const [k, v] of Object.entries(per as Record<string, unknown>)) {
        const from = [...at, "resources_per_worker", k];
        if (k === "CPU") {
          res.cpu = v;
          remap.push([["resources", "cpu"], from]);
        } else if (k === "GPU") {
          gpu = v;
          remap.push([["resources", "gpu"], from]);
        } else if (k === "memory") {
          // Ray counts bytes; Tunebox caps in MiB.
          res.memory_mb = typeof v === "number" ? v / 2 ** 20 : v;
          remap.push([["resources", "memory_mb"], from]);
        } else {
          res.custom = { ...(res.custom as object ?? {}), [k]: v };
          remap.push([["resources", "custom", k], from]);
        }
      }
    }
    const useGpu = scaling.use_gpu;
    if (useGpu !== undefined && typeof useGpu !== "boolean") {
      err(`"scaling_config.use_gpu" must be true or false, got ${JSON.stringify(useGpu)}`, [
        ...at,
        "use_gpu",
      ]);
    }
    if (useGpu === false && typeof gpu === "number" && gpu > 0) {
      // Ray refuses this combination too.
      err(
        `"scaling_config.use_gpu" is false but resources_per_worker asks for GPU: ${gpu}; ` +
          `set use_gpu: true or drop GPU`,
        [...at, "use_gpu"],
      );
    }
    // Ray: use_gpu gives each worker one GPU unless resources_per_worker says how many.
    if (useGpu === true) {
      res.gpu = gpu ?? 1;
      if (gpu === undefined) remap.push([["resources", "gpu"], [...at, "use_gpu"]]);
    } else if (gpu !== undefined) res.gpu = gpu;
    y.resources = res;
  }
  if (metric) {
    y.metric = metric.value;
    remap.push([["metric"], metric.from]);
  }
  if (mode) {
    y.mode = mode.value;
    remap.push([["mode"], mode.from]);
  }
  return { y, remap: remap.sort((a, b) => b[0].length - a[0].length) };
}
