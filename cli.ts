#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * The tunebox command line.
 *
 * ```sh
 * deno run -A jsr:@tunebox/tunebox/cli run experiment.yaml [--set key=value ...] [--name N] [--storage DIR]
 * deno run -A jsr:@tunebox/tunebox/cli resume DIR
 * deno run -A jsr:@tunebox/tunebox/cli status DIR
 * deno run -A jsr:@tunebox/tunebox/cli report DIR --out report.html
 * deno run -A jsr:@tunebox/tunebox/cli dashboard DIR --port 8265
 * deno run -A jsr:@tunebox/tunebox/cli backend install tensorflow   # or tensorflow-gpu
 * ```
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["status", "tunebox_results/my-exp"]));
 * ```
 *
 * @module
 */

import { parseArgs } from "#flags";
import { loadExperimentFile } from "./core/config.ts";
import { Tuner } from "./core/tuner.ts";
import { ResultGrid } from "./core/results.ts";
import { ConfigError, TuneError } from "./core/errors.ts";
import { readExperiment } from "./core/store.ts";
import { reportCommand } from "./plugins/reporters/html.ts";
import { dashboardCommand } from "./plugins/reporters/dashboard.ts";
import { backendCommand } from "./plugins/backends/tfjs/setup.ts";
// Importing the plugin families registers their names for YAML files.
import "./plugins/searchers/mod.ts";
import "./plugins/schedulers/mod.ts";
import "./plugins/loggers/tensorboard/mod.ts";
import "./plugins/loggers/mlflow.ts";

const USAGE = `tunebox — sandboxed hyperparameter tuning for Deno

Usage:
  tunebox run FILE.yaml [--set key=value ...] [--name NAME] [--storage DIR]
  tunebox resume DIR [--restart-errored]
  tunebox status DIR
  tunebox report DIR [--out FILE.html]
  tunebox dashboard DIR [--port P] [--hostname H]
  tunebox backend install tensorflow|tensorflow-gpu [--force]
  tunebox help

Examples:
  tunebox run experiment.yaml --set num_samples=4 --set scheduler.max_t=5
  tunebox resume tunebox_results/mnist-asha
`;

/**
 * Runs the CLI with arguments; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted).
 *
 * @param args the command-line arguments (without the program).
 * @returns the exit code.
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const code = await main(["help"]);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  if (args[0] === "report") return await reportCommand(args.slice(1));
  if (args[0] === "dashboard") return await dashboardCommand(args.slice(1));
  if (args[0] === "backend") return await backendCommand(args.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        set: { type: "string", multiple: true },
        name: { type: "string" },
        storage: { type: "string" },
        "restart-errored": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`tunebox: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command, target, ...extra] = parsed.positionals;
  if (parsed.values.help || command === "help" || !command) {
    console.log(USAGE);
    return command || parsed.values.help ? 0 : 2;
  }
  if (!target || extra.length) {
    console.error(
      `tunebox ${command}: expected one ${command === "run" ? "FILE.yaml" : "DIR"}\n\n${USAGE}`,
    );
    return 2;
  }
  try {
    switch (command) {
      case "run": {
        const { options } = await loadExperimentFile(target, {
          ...(parsed.values.set ? { set: parsed.values.set } : {}),
          ...(parsed.values.name ? { name: parsed.values.name } : {}),
          ...(parsed.values.storage ? { storage: parsed.values.storage } : {}),
        });
        const grid = await new Tuner(options).fit();
        return finish(grid);
      }
      case "resume": {
        const tuner = await Tuner.restore(target, {
          restartErrored: parsed.values["restart-errored"] ?? false,
        });
        return finish(await tuner.fit());
      }
      case "status": {
        const record = await readExperiment(target);
        const grid = await ResultGrid.load(target);
        const counts = new Map<string, number>();
        for (const t of grid.trials) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
        console.log(
          `${record.name}: ${record.status}, ${grid.trials.length} trials (${
            [...counts].map(([s, n]) => `${n} ${s}`).join(", ") || "none"
          })`,
        );
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
      default:
        console.error(`tunebox: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (
      e instanceof ConfigError || e instanceof TuneError || e instanceof TypeError ||
      e instanceof RangeError
    ) {
      console.error(`tunebox: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

function finish(grid: ResultGrid): number {
  if (grid.interrupted) {
    console.error(`Interrupted: resume with \`tunebox resume ${grid.path}\``);
    return 130;
  }
  console.log(`Results: ${grid.path}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
