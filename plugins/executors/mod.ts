/**
 * Executors by name, for the YAML experiment file (`executor: { name: slurm, ... }`), the CLI
 * (`--executor slurm`) and `tunebox resume` (an executor made this way is saved by its spec).
 *
 * @module
 */

import type { Executor } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import { subprocessExecutor, type SubprocessExecutorOptions } from "./subprocess.ts";
import { slurmExecutor, type SlurmExecutorOptions } from "./slurm.ts";

/** An executor by name with JSON options, as a YAML file or `experiment.json` holds it. */
export interface ExecutorSpec {
  /** `"slurm"` or `"subprocess"` (also `"local"`). */
  readonly name: string;
  /** The executor's options (camelCase keys). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** The executor names {@linkcode executorFromSpec} knows. */
export const EXECUTOR_NAMES: readonly string[] = ["subprocess", "local", "slurm"];

/**
 * Makes the executor a spec names, for `trainable`. The executor remembers its spec, so a
 * resumed experiment runs on the same kind of executor.
 *
 * @throws {TuneError} for an unknown name.
 * @example
 * ```ts ignore
 * import { executorFromSpec } from "./mod.ts";
 * const executor = executorFromSpec({ name: "slurm", options: { mode: "sbatch" } }, "./train.ts");
 * ```
 */
export function executorFromSpec(spec: ExecutorSpec, trainable: string | URL): Executor {
  const o = spec.options ?? {};
  let executor: Executor;
  switch (spec.name) {
    case "slurm":
      executor = slurmExecutor(trainable, o as SlurmExecutorOptions);
      break;
    case "subprocess":
    case "local":
      executor = subprocessExecutor(trainable, o as SubprocessExecutorOptions);
      break;
    default:
      throw new TuneError(
        `Unknown executor "${spec.name}"; expected one of ${EXECUTOR_NAMES.join(", ")}`,
      );
  }
  Object.defineProperty(executor, "spec", {
    value: { name: spec.name, options: JSON.parse(JSON.stringify(o)) },
    enumerable: false,
  });
  return executor;
}
