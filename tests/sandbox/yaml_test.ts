// The experiment file is code the driver runs (plugins by module URL), but a malformed or
// hostile one must still fail with `tunebox: file:line:col: ...`, never a stack trace.
import { equal, match, ok as assert } from "#assert";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError } from "../../mod.ts";

const HEAD = "trainable: ./train.ts\nmetric: loss\nmode: min\nspace: { x: 1 }\n";

async function errorOf(text: string, set?: string[]): Promise<ConfigError> {
  let caught: unknown;
  await parseExperiment(text, "/exp/experiment.yaml", set ? { set } : {}).catch((e) => caught = e);
  assert(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  return caught as ConfigError;
}

const BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
].join("\n") + "\n";

Deno.test("a YAML alias bomb is refused at its first alias, through the CLI, without a stack trace", async () => {
  const e = await errorOf(BOMB + HEAD);
  match(e.message, /^\/exp\/experiment\.yaml:2:8: The file expands its YAML aliases/);
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bomb.yaml`, BOMB + HEAD);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../cli.ts", import.meta.url).pathname, "run", "bomb.yaml"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  equal(out.success, false);
  match(text, /^tunebox: bomb\.yaml:2:8: The file expands its YAML aliases/m);
  assert(!/\n\s+at /.test(text), text);
});

Deno.test("numbers too large for a double are refused where they are written", async () => {
  const e = await errorOf(HEAD + "num_samples: 1e999\n");
  match(e.message, /experiment\.yaml:5:14: The number 1e999 is too large/);
  const s = await errorOf(
    HEAD.replace("{ x: 1 }", "{ x: { type: uniform, min: 0, max: -1e400 } }"),
  );
  match(s.message, /experiment\.yaml:4:\d+: The number -1e400 is too large/);
});

Deno.test("__proto__, constructor and prototype keys are refused anywhere, and in --set", async () => {
  for (
    const [text, re] of [
      [HEAD + "__proto__: { polluted: 1 }\n", /:5:1: The key "__proto__" is not allowed/],
      [HEAD + "constructor: 1\n", /:5:1: The key "constructor" is not allowed/],
      [HEAD + "resources: { prototype: 2 }\n", /:5:14: The key "prototype" is not allowed/],
      [HEAD.replace("{ x: 1 }", "{ __proto__: 1 }"), /:4:10: The key "__proto__" is not allowed/],
    ] as const
  ) {
    match((await errorOf(text)).message, re);
  }
  match(
    (await errorOf(HEAD, ["__proto__.polluted=1"])).message,
    /--set __proto__\.polluted: the key "__proto__" is not allowed/,
  );
  equal(({} as Record<string, unknown>).polluted, undefined);
});
