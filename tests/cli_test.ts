// The command line as a user meets it: `--help` for the program and every command (each option
// the help lists is one the command accepts), clear usage errors, shell completions, and the
// installed `tunebox` command (`deno install -g` from this checkout).
import { deepEqual, equal, match, ok } from "#assert";
import { join } from "node:path";
import { stoppingExperiment } from "./fixtures/report/experiments.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const COMMANDS = ["run", "resume", "status", "report", "dashboard", "completions"];

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(cmd: string, args: string[], cwd = ROOT): Promise<Output> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const tunebox = (...args: string[]): Promise<Output> =>
  exec(Deno.execPath(), ["run", "-A", CLI, ...args]);

Deno.test("tunebox --help lists every command; -V prints deno.json's version; no arguments is a usage error", async () => {
  const help = await tunebox("--help");
  equal(help.code, 0, help.stderr);
  match(help.stdout, /^Usage: tunebox <command> \[options\]$/m);
  for (const c of COMMANDS) match(help.stdout, new RegExp(`^  ${c} [A-Za-z.]+ +[A-Z]`, "m"));
  match(help.stdout, /Run "tunebox <command> --help"/);
  deepEqual((await tunebox("help")).stdout, help.stdout);
  deepEqual((await tunebox("-h")).stdout, help.stdout);

  const { version } = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  equal((await tunebox("--version")).stdout, `tunebox ${version}\n`);

  const none = await tunebox();
  equal(none.code, 2);
  match(none.stderr, /^Usage: tunebox <command>/m);
});

Deno.test("tunebox <command> --help shows usage, options and examples, and every listed option is accepted", async () => {
  for (const c of COMMANDS) {
    const help = await tunebox(c, "--help");
    equal(help.code, 0, `${c}: ${help.stderr}`);
    match(help.stdout, new RegExp(`^Usage: tunebox ${c} `));
    match(help.stdout, /\nOptions:\n/);
    match(help.stdout, new RegExp(`\\nExamples:\\n  tunebox ${c} `));
    deepEqual((await tunebox("help", c)).stdout, help.stdout, `tunebox help ${c}`);
    // Each option line: "  [-x, ]--name [VALUE]  text". Passing it (with a value when it takes
    // one) before --help must parse: the help lists only what the parser accepts.
    const section = help.stdout.split("\nOptions:\n")[1].split("\n\n")[0];
    const options = [...section.matchAll(/^ {2}(?:-\w, )?--([\w-]+)(?: ([A-Z][\w.=]*))?/gm)];
    ok(options.some((m) => m[1] === "help"), `${c}: ${section}`);
    for (const [, name, value] of options) {
      const r = await tunebox(c, `--${name}`, ...(value ? ["x"] : []), "--help");
      equal(r.code, 0, `tunebox ${c} --${name}: ${r.stderr}`);
    }
  }
});

Deno.test("tunebox usage errors name the problem and exit 2", async () => {
  const unknown = await tunebox("stats", "x");
  equal(unknown.code, 2);
  match(
    unknown.stderr,
    /unknown command "stats" \(did you mean "status"\?\); commands: run, resume/,
  );
  const missing = await tunebox("resume");
  equal(missing.code, 2);
  match(missing.stderr, /^tunebox resume: expected DIR, got nothing/);
  const extra = await tunebox("status", "a", "b");
  equal(extra.code, 2);
  match(extra.stderr, /^tunebox status: expected DIR, got "a" "b"/);
  const option = await tunebox("run", "x.yaml", "--sett", "a=1");
  equal(option.code, 2);
  match(option.stderr, /^tunebox run: Unknown option '--sett'/);
  match(option.stderr, /Run "tunebox run --help" for its options\./);
  const shell = await tunebox("completions", "tcsh");
  equal(shell.code, 2);
  match(shell.stderr, /unknown shell "tcsh"; expected bash or zsh/);
});

Deno.test("the bash completion script completes commands, options and YAML files", async () => {
  const script = (await tunebox("completions", "bash")).stdout;
  const dir = await Deno.makeTempDir({ prefix: "tunebox_cli_test_" });
  try {
    await Deno.writeTextFile(join(dir, "exp.yaml"), "");
    await Deno.writeTextFile(join(dir, "notes.txt"), "");
    await Deno.writeTextFile(join(dir, "completion.bash"), script);
    const complete = async (...words: string[]) => {
      const r = await exec("bash", [
        "-c",
        `source completion.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${
          words.length - 1
        }; _tunebox; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ], dir);
      equal(r.code, 0, r.stderr);
      return r.stdout.split("\n").filter(Boolean).sort();
    };
    deepEqual(await complete("tunebox", "re"), ["report", "resume"]);
    deepEqual(await complete("tunebox", "dashboard", "--"), ["--help", "--hostname", "--port"]);
    deepEqual(await complete("tunebox", "run", ""), ["exp.yaml"]);
    deepEqual(await complete("tunebox", "help", "st"), ["status"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno install -g from the checkout gives a tunebox command that works from any folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "tunebox_install_test_" });
  try {
    const install = await exec(Deno.execPath(), [
      "install",
      "-g",
      "-A",
      "-n",
      "tunebox",
      "--root",
      root,
      "--config",
      join(ROOT, "deno.json"),
      CLI,
    ]);
    equal(install.code, 0, install.stderr);
    const bin = join(root, "bin", "tunebox");
    const elsewhere = await Deno.makeTempDir({ dir: root });
    const help = await exec(bin, ["status", "--help"], elsewhere);
    equal(help.code, 0, help.stderr);
    match(help.stdout, /^Usage: tunebox status DIR/);
    const dir = await stoppingExperiment(root, "installed", 4);
    const status = await exec(bin, ["status", dir], elsewhere);
    equal(status.code, 0, status.stderr);
    match(status.stdout, /^installed: finished, 4 trials/);
    const report = await exec(bin, ["report", dir, "--out", "r.html"], elsewhere);
    equal(report.code, 0, report.stderr);
    ok((await Deno.stat(join(elsewhere, "r.html"))).size > 100_000);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
