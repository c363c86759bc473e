/**
 * `tunebox status DIR`: an experiment's state, its trials by status, the best trial (or the
 * Pareto front) and every trial's error.
 *
 * @module
 */

import { ResultGrid } from "../core/results.ts";
import { readExperiment } from "../core/store.ts";

/**
 * Prints the status of the experiment in `dir`.
 *
 * @param dir The experiment folder.
 * @returns The exit code (0).
 * @throws {TuneError} when `dir` is not an experiment folder.
 */
export async function statusCommand(dir: string): Promise<number> {
  const record = await readExperiment(dir);
  const grid = await ResultGrid.load(dir);
  const counts = new Map<string, number>();
  for (const t of grid.trials) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  console.log(
    `${record.name}: ${record.status}, ${grid.trials.length} trials (${
      [...counts].map(([s, n]) => `${n} ${s}`).join(", ") || "none"
    })`,
  );
  if (grid.metrics.length > 1) {
    console.log(
      `objectives: ${
        grid.metrics.map((m, k) => `${m} (${grid.modes[k]})`).join(", ")
      }, searcher: ${record.searcher.name}, scheduler: ${record.scheduler.name}`,
    );
    const front = grid.paretoFront();
    console.log(`Pareto front: ${front.length} trial(s)`);
    for (const t of front) {
      console.log(
        `  ${t.id} ${grid.metrics.map((m, k) => `${m}=${t.objectives[k]}`).join(" ")} config=${
          JSON.stringify(t.config)
        }`,
      );
    }
    for (const e of grid.errors) console.log(`error ${e.trialId}: ${e.message.split("\n")[0]}`);
    return 0;
  }
  console.log(
    `metric: ${record.metric} (${record.mode}), searcher: ${record.searcher.name}, scheduler: ${record.scheduler.name}`,
  );
  try {
    const best = grid.best();
    console.log(
      `best: ${best.id} ${record.metric}=${best.score} config=${JSON.stringify(best.config)}`,
    );
  } catch (e) {
    console.log(`best: none (${(e as Error).message})`);
  }
  for (const e of grid.errors) console.log(`error ${e.trialId}: ${e.message.split("\n")[0]}`);
  return 0;
}
