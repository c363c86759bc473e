#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-ffi
/**
 * `deno task setup` (run first by `deno task test`): provisions what the tests need on a fresh
 * machine, idempotently, one line per step.
 *
 * 1. npm packages (`deno install`).
 * 2. Python test peers: `.venv` (or the environment of `$TUNEBOX_PYTHON`) with the pinned
 *    requirements of `tests/peers/requirements.txt`; skipped when every pin is installed.
 * 3. Chromium for the HTML report tests: `apt-get install chromium` when missing and the machine
 *    allows it (root with apt); otherwise a loud line saying the browser tests will fail.
 * 4. The native TensorFlow backend (`installNativeBackend`, CPU): built once, shared by every
 *    test of the run; reused from the cache afterwards.
 *
 * A step that cannot be done is reported with its reason and the tests that need it fail with
 * their own message — never a silent skip. The exit code is 0 so the suite runs and shows each
 * failure where it belongs; `--strict` exits 1 instead.
 *
 * Flags: `--strict`, `--no-native`, `--no-chromium`, `--no-python`; `--bench` also installs the
 * benchmarks' Python peers (`bench/peers/requirements.txt`: Optuna, hyperopt, cmaes, Ray Tune),
 * which `deno task bench --peers` asks for.
 */
import { parseArgs } from "node:util";
import { installNativeBackend, NativeSetupError } from "../plugins/backends/tfjs/setup.ts";
import { exists } from "../core/_fs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    strict: { type: "boolean" },
    "no-native": { type: "boolean" },
    "no-chromium": { type: "boolean" },
    "no-python": { type: "boolean" },
    bench: { type: "boolean" },
  },
});
// Prints each pinned requirement that is not installed at its version (nothing when all are).
const CHECK_PINS_PY = `
import sys, re
from importlib.metadata import version, PackageNotFoundError
for req in sys.argv[1:]:
    m = re.match(r"^([A-Za-z0-9_.-]+)(\\[[^\\]]*\\])?\\s*==\\s*([^\\s;]+)", req)
    if not m:
        print(req); continue
    try:
        if version(m.group(1)) != m.group(3): print(req)
    except PackageNotFoundError:
        print(req)
`;

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const failures: string[] = [];
const t0 = performance.now();

function line(step: string, text: string, since: number): void {
  console.log(`setup ${step}: ${text} (${((performance.now() - since) / 1000).toFixed(1)} s)`);
}

function fail(step: string, text: string, since: number): void {
  failures.push(`${step}: ${text}`);
  console.error(
    `setup ${step}: FAILED — ${text} (${((performance.now() - since) / 1000).toFixed(1)} s)`,
  );
}

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  try {
    const out = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { ok: out.success, text: text.trim() };
  } catch (e) {
    return { ok: false, text: `cannot run ${cmd}: ${(e as Error).message}` };
  }
}

// 1. npm packages
{
  const t = performance.now();
  const r = await run(Deno.execPath(), ["install", "--quiet"], { cwd: repo });
  if (r.ok) line("npm", "node_modules up to date", t);
  else fail("npm", `deno install failed: ${r.text.split("\n").slice(-5).join(" | ")}`, t);
}

// 2. Python peers
if (!values["no-python"]) {
  const t = performance.now();
  const reqFiles = [`${repo}/tests/peers/requirements.txt`];
  if (values.bench) reqFiles.push(`${repo}/bench/peers/requirements.txt`);
  const reqs: string[] = [];
  for (const file of reqFiles) {
    reqs.push(
      ...(await Deno.readTextFile(file)).split("\n").map((l) => l.replace(/#.*/, "").trim())
        .filter(Boolean),
    );
  }
  const reqArgs = reqFiles.flatMap((file) => ["-r", file]);
  const given = Deno.env.get("TUNEBOX_PYTHON");
  const python = given ?? `${repo}/.venv/bin/python`;
  let ready = await exists(python);
  if (!ready && !given) {
    const r = await run("python3", ["-m", "venv", `${repo}/.venv`]);
    ready = r.ok;
    if (!r.ok) {
      fail(
        "python",
        `cannot create .venv (${r.text.split("\n").at(-1)}): install python3 and python3-venv ` +
          "(apt-get install python3-venv) or set TUNEBOX_PYTHON",
        t,
      );
    }
  } else if (!ready) {
    fail("python", `TUNEBOX_PYTHON=${given} does not exist`, t);
  }
  if (ready) {
    const missing = await run(python, ["-c", CHECK_PINS_PY, ...reqs]);
    if (missing.ok && missing.text === "") {
      line("python", `${reqs.length} pinned peers already in ${python}`, t);
    } else {
      const r = await run("flock", [
        "/tmp/pip.lock",
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        ...reqArgs,
      ]).then((r) =>
        r.text.startsWith("cannot run flock")
          ? run(python, [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            ...reqArgs,
          ])
          : r
      );
      if (r.ok) {
        line("python", `installed ${missing.text.split("\n").join(", ")} into ${python}`, t);
      } else {fail(
          "python",
          `pip install ${reqArgs.join(" ")} failed: ${r.text.split("\n").slice(-3).join(" | ")}`,
          t,
        );}
    }
  }
}

// 3. Chromium
if (!values["no-chromium"]) {
  const t = performance.now();
  const chromium = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
  if (await exists(chromium)) {
    line("chromium", `${chromium} is there`, t);
  } else if (Deno.uid() !== 0 || !(await exists("/usr/bin/apt-get"))) {
    fail(
      "chromium",
      `${chromium} is missing and this user cannot install it (needs root with apt-get): ` +
        `the browser tests of the HTML report will fail; run "apt-get install -y chromium" as ` +
        "root, or set CHROMIUM_PATH",
      t,
    );
  } else {
    const r = await run("sh", [
      "-c",
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
    ]);
    if (r.ok && (await exists(chromium))) line("chromium", "installed with apt-get", t);
    else {fail(
        "chromium",
        `apt-get install chromium failed: ${r.text.split("\n").slice(-3).join(" | ")}`,
        t,
      );}
  }
}

// 4. Native TensorFlow backend (its build tools first, from apt where this user may)
if (!values["no-native"]) {
  const t = performance.now();
  const have = async (cmd: string) => (await run("sh", ["-c", `command -v ${cmd}`])).ok;
  const lacking: string[] = [];
  if (!(await have("c++")) && !(await have("g++"))) lacking.push("g++");
  if (!(await have("make"))) lacking.push("make");
  if (!(await have("node")) || !(await exists("/usr/include/node/node_api.h"))) {
    lacking.push("nodejs");
  }
  if (!(await have("npm"))) lacking.push("npm");
  if (lacking.length > 0 && Deno.uid() === 0 && (await exists("/usr/bin/apt-get"))) {
    const r = await run("sh", [
      "-c",
      `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${
        lacking.join(" ")
      }`,
    ]);
    line(
      "build tools",
      r.ok
        ? `installed ${lacking.join(", ")} with apt-get`
        : `apt-get failed: ${r.text.split("\n").at(-1)}`,
      t,
    );
  }
  try {
    const r = await installNativeBackend({
      progress: (l) => console.log(`setup tensorflow ${l}`),
    });
    const built = r.steps.filter((s) =>
      !s.skipped && s.name !== "verify" && s.name !== "prerequisites" && s.name !== "npm package"
    );
    line(
      "tensorflow",
      built.length === 0
        ? `${r.package} already built (${r.verified})`
        : `${r.package} built (${r.verified})`,
      t,
    );
  } catch (e) {
    fail(
      "tensorflow",
      `${
        e instanceof NativeSetupError ? e.message : String(e)
      } — the native backend tests will fail`,
      t,
    );
  }
}

if (failures.length > 0) {
  console.error(`setup: ${failures.length} step(s) failed; the tests that need them will fail:`);
  for (const f of failures) console.error(`  - ${f.split("\n")[0]}`);
  if (values.strict) Deno.exit(1);
} else {
  line("done", "everything the tests need is in place", t0);
}
