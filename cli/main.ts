#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * The tunebox command line. Install it once, then call it by name:
 *
 * ```sh
 * deno install -g -A -n tunebox jsr:@tunebox/tunebox/cli   # from JSR
 * deno install -g -A -n tunebox --config deno.json cli.ts  # from a checkout of the repository
 * tunebox --help
 * tunebox run experiment.yaml --set num_samples=4
 * tunebox resume tunebox_results/my-exp
 * tunebox status tunebox_results/my-exp
 * tunebox report tunebox_results/my-exp --out report.html
 * tunebox dashboard tunebox_results/my-exp --port 8265
 * ```
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["status", "tunebox_results/my-exp"]));
 * ```
 *
 * @module
 */

import { parseArgs } from "#flags";
import { loadExperimentFile } from "../tuner/experiment_file.ts";
import { Tuner } from "../tuner/tuner.ts";
import type { ResultGrid } from "../core/results.ts";
import { ConfigError, TuneError } from "../core/errors.ts";
import { statusCommand } from "./status.ts";
import { reportCommand } from "../plugins/reporters/html.ts";
import { dashboardCommand } from "../plugins/reporters/dashboard.ts";
import { backendCommand } from "../plugins/backends/tfjs/setup.ts";

/** The version of the package this CLI belongs to (deno.json's `version`). */
export const VERSION: string = "0.1.0";

/** An option of a command, for its parser and its help. */
interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  readonly short?: string;
  /** The value's placeholder in the help; absent for a boolean flag. */
  readonly value?: string;
  readonly multiple?: boolean;
  readonly help: string;
}

type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * A subcommand: its parser, its help and what it does. `positionals` names the arguments it
 * needs (exactly that many). Adding a command or an option is one entry here.
 */
interface CommandSpec {
  readonly name: string;
  readonly positionals: readonly string[];
  readonly summary: string;
  readonly description: string;
  readonly options: readonly OptionSpec[];
  readonly examples: readonly string[];
  run(positionals: readonly string[], values: Values, raw: readonly string[]): Promise<number>;
}

const HELP_OPTION: OptionSpec = { name: "help", short: "h", help: "Show this help and exit." };

const COMMANDS: readonly CommandSpec[] = [
  {
    name: "run",
    positionals: ["FILE.yaml"],
    summary: "Run the experiment a YAML file describes",
    description: "Runs the experiment described by FILE.yaml (paths in it are relative to the " +
      "file) and prints where the results are. Ctrl-C stops the trials, saves the state and " +
      "prints the command that resumes it.",
    options: [
      {
        name: "set",
        value: "KEY=VALUE",
        multiple: true,
        help: "Override a key of the file (dotted for nested keys, the value is YAML); repeatable.",
      },
      { name: "name", value: "NAME", help: "The experiment's name (its folder in the storage)." },
      { name: "storage", value: "DIR", help: "Where experiment folders go." },
      {
        name: "executor",
        value: "NAME",
        help: "Where trials run: subprocess (this machine, the default) or slurm (job steps " +
          "inside an allocation, batch jobs from a login node).",
      },
    ],
    examples: [
      "tunebox run experiment.yaml",
      "tunebox run experiment.yaml --set num_samples=4 --set scheduler.max_t=5",
      "salloc -N2 -n8 tunebox run experiment.yaml --executor slurm",
    ],
    async run([file], values) {
      const set = values.set as string[] | undefined;
      const { options } = await loadExperimentFile(file, {
        ...(set ? { set } : {}),
        ...(values.name ? { name: values.name as string } : {}),
        ...(values.storage ? { storage: values.storage as string } : {}),
        ...(values.executor ? { executor: values.executor as string } : {}),
      });
      return finish(await new Tuner(options).fit());
    },
  },
  {
    name: "resume",
    positionals: ["DIR"],
    summary: "Resume an interrupted or crashed experiment",
    description: "Resumes the experiment in the folder DIR where it stopped: finished trials are " +
      "kept, the others continue from their latest checkpoint.",
    options: [{ name: "restart-errored", help: "Run the trials that failed again, from scratch." }],
    examples: ["tunebox resume tunebox_results/mnist-asha"],
    async run([dir], values) {
      const tuner = await Tuner.restore(dir, {
        restartErrored: (values["restart-errored"] as boolean | undefined) ?? false,
      });
      return finish(await tuner.fit());
    },
  },
  {
    name: "status",
    positionals: ["DIR"],
    summary: "Print an experiment's state, best trial and errors",
    description: "Prints the state of the experiment in DIR (running, finished, interrupted), " +
      "its trials by status, the best trial with its config, and every trial's error.",
    options: [],
    examples: ["tunebox status tunebox_results/mnist-asha"],
    run: ([dir]) => statusCommand(dir),
  },
  {
    name: "report",
    positionals: ["DIR"],
    summary: "Write the experiment's self-contained HTML report",
    description: "Writes one HTML file that works offline: the trial table, learning curves, " +
      "parallel coordinates, metric against each parameter, importance, best so far, PBT lineage.",
    options: [{
      name: "out",
      short: "o",
      value: "FILE.html",
      help: "Where to write it (default: DIR/report.html).",
    }],
    examples: ["tunebox report tunebox_results/mnist-asha --out report.html"],
    run: (_p, _v, raw) => reportCommand(raw),
  },
  {
    name: "dashboard",
    positionals: ["DIR"],
    summary: "Serve the live report of an experiment until Ctrl-C",
    description: "Serves the report of DIR on http://127.0.0.1:PORT/ and redraws it whenever the " +
      "experiment changes. Read-only; bound to the loopback address unless --hostname says " +
      "otherwise.",
    options: [
      {
        name: "port",
        short: "p",
        value: "PORT",
        help: "The port (default 8265; 0: any free one).",
      },
      { name: "hostname", value: "HOST", help: "The address to listen on (default 127.0.0.1)." },
    ],
    examples: ["tunebox dashboard tunebox_results/mnist-asha --port 8265"],
    run: (_p, _v, raw) => dashboardCommand(raw),
  },
  {
    name: "backend",
    positionals: ["install", "NAME"],
    summary: "Build the native TensorFlow backend (tensorflow, tensorflow-gpu)",
    description: "Builds tfjs-node (NAME tensorflow) or tfjs-node-gpu (tensorflow-gpu) in the " +
      "project's node_modules from PyPI's TensorFlow wheel, then checks that it computes in a " +
      "sandboxed trial; loadTfjs() picks it from then on. Idempotent; one line per step.",
    options: [
      { name: "force", help: "Rebuild the binding even when one is there." },
      { name: "no-strip", help: "Keep the libraries' symbols (250 MB more)." },
      { name: "keep-wheels", help: "Keep the downloaded wheels in the cache." },
      { name: "python", value: "PY", help: "The Python that runs pip (default python3)." },
    ],
    examples: ["tunebox backend install tensorflow", "tunebox backend install tensorflow-gpu"],
    run: (_p, _v, raw) => backendCommand(raw),
  },
  {
    name: "completions",
    positionals: ["SHELL"],
    summary: "Print a shell completion script (bash, zsh)",
    description: "Prints a completion script for SHELL (bash or zsh; zsh loads it through " +
      "bashcompinit) that completes commands, options, YAML files and experiment folders.",
    options: [],
    examples: [
      "tunebox completions bash > ~/.local/share/bash-completion/completions/tunebox",
      "echo 'eval \"$(tunebox completions zsh)\"' >> ~/.zshrc",
    ],
    run([shell]) {
      if (shell !== "bash" && shell !== "zsh") {
        console.error(`tunebox completions: unknown shell "${shell}"; expected bash or zsh`);
        return Promise.resolve(2);
      }
      console.log(completionScript(shell));
      return Promise.resolve(0);
    },
  },
];

function optionSyntax(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ""}--${o.name}${o.value ? ` ${o.value}` : ""}`;
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`).join("\n");
}

/** `tunebox --help`: every command with its one-line summary. */
function mainHelp(): string {
  return `tunebox ${VERSION} — sandboxed hyperparameter tuning for Deno

Usage: tunebox <command> [options]

Commands:
${
    table([
      ...COMMANDS.map((c) => [`${c.name} ${c.positionals.join(" ")}`, c.summary] as const),
      ["help [COMMAND]", "Show this help, or a command's"],
    ])
  }

Options:
${table([["-h, --help", "Show this help and exit."], ["-V, --version", "Print the version."]])}

Run "tunebox <command> --help" for a command's options and examples.`;
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join("\n");
}

/** `tunebox <command> --help`: usage, what it does, options, examples. */
function commandHelp(c: CommandSpec): string {
  const usage = `tunebox ${c.name} ${c.positionals.join(" ")}${
    c.options.map((o) => ` [--${o.name}${o.value ? ` ${o.value}` : ""}]${o.multiple ? "..." : ""}`)
      .join("")
  }`;
  return `Usage: ${usage}

${wrap(`${c.summary}. ${c.description}`, 80)}

Options:
${table([...c.options, HELP_OPTION].map((o) => [optionSyntax(o), o.help] as const))}

Examples:
${c.examples.map((e) => `  ${e}`).join("\n")}`;
}

/** A bash completion script (zsh: through bashcompinit). */
function completionScript(shell: "bash" | "zsh"): string {
  const cases = COMMANDS.map((c) => {
    const opts = [...c.options, HELP_OPTION].map((o) => `--${o.name}`).join(" ");
    const files = c.positionals[0] === "FILE.yaml"
      ? `compgen -f -X '!*.@(yaml|yml)' -- "$cur"; compgen -d -- "$cur"`
      : c.positionals[0] === "SHELL"
      ? `compgen -W "bash zsh" -- "$cur"`
      : `compgen -d -- "$cur"`;
    return `    ${c.name}) if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "${opts}" -- "$cur"));` +
      ` else COMPREPLY=($(${files})); fi ;;`;
  }).join("\n");
  return `${shell === "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" : ""}# tunebox ${
    shell === "zsh" ? "zsh (bashcompinit)" : "bash"
  } completion: generated by "tunebox completions ${shell}"
_tunebox() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${
    COMMANDS.map((c) => c.name).join(" ")
  } help --help --version" -- "$cur"))
    return
  fi
  shopt -s extglob
  case \${COMP_WORDS[1]} in
${cases}
    help) COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(" ")}" -- "$cur")) ;;
  esac
}
complete -o filenames -F _tunebox tunebox`;
}

/**
 * Runs the CLI with arguments; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted).
 *
 * @param args the command-line arguments (without the program).
 * @returns the exit code.
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * const code = await main(["--help"]);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined) {
    console.error(mainHelp());
    return 2;
  }
  if (first === "-h" || first === "--help") {
    console.log(mainHelp());
    return 0;
  }
  if (first === "-V" || first === "--version") {
    console.log(`tunebox ${VERSION}`);
    return 0;
  }
  if (first === "help") {
    if (!rest.length) {
      console.log(mainHelp());
      return 0;
    }
    const c = COMMANDS.find((c) => c.name === rest[0]);
    if (!c) return unknown(rest[0]);
    console.log(commandHelp(c));
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) return unknown(first);
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: Object.fromEntries(
        [...command.options, HELP_OPTION].map((o) => [o.name, {
          type: o.value ? "string" as const : "boolean" as const,
          ...(o.short ? { short: o.short } : {}),
          ...(o.multiple ? { multiple: true } : {}),
        }]),
      ),
    });
  } catch (e) {
    console.error(
      `tunebox ${command.name}: ${(e as Error).message}\n` +
        `Run "tunebox ${command.name} --help" for its options.`,
    );
    return 2;
  }
  if (parsed.values.help) {
    console.log(commandHelp(command));
    return 0;
  }
  if (parsed.positionals.length !== command.positionals.length) {
    console.error(
      `tunebox ${command.name}: expected ${command.positionals.join(" ")}, got ${
        parsed.positionals.length ? parsed.positionals.map((p) => `"${p}"`).join(" ") : "nothing"
      }\nUsage: tunebox ${command.name} ${command.positionals.join(" ")} [options]; ` +
        `run "tunebox ${command.name} --help" for more.`,
    );
    return 2;
  }
  try {
    return await command.run(parsed.positionals, parsed.values, rest);
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

function unknown(name: string): number {
  const names = COMMANDS.map((c) => c.name);
  const near = names.find((n) => n.startsWith(name.slice(0, 2)));
  console.error(
    `tunebox: unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ""}; ` +
      `commands: ${names.join(", ")}. Run "tunebox --help" for more.`,
  );
  return 2;
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
