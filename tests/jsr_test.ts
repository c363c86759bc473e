// The JSR package, tried as a consumer would. jsr.io is out of reach here, and Deno reads its
// registry from JSR_URL: this file serves exactly the files `deno publish --dry-run` lists, in
// JSR's layout (meta.json, <version>_meta.json with the manifest and the exports, the files with
// their import-map specifiers unfurled as `deno publish` does), on 127.0.0.1, and then uses
// `jsr:@tunebox/tunebox` from a folder outside the checkout with a fresh DENO_DIR: the README's
// quickstart, a sandboxed trainable importing `jsr:@tunebox/tunebox/trainable`, every subpath
// export, and `deno install -g` of the CLI. A file that publish.exclude drops, or a path that
// only works from the checkout, fails here.
import { equal, match, ok } from "#assert";
import { join, relative } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const DENO_JSON = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
const NAME: string = DENO_JSON.name;
const VERSION: string = DENO_JSON.version;
const EXPORTS: Record<string, string> = DENO_JSON.exports;
const IMPORTS: Record<string, string> = DENO_JSON.imports;

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The files `deno publish --dry-run` would upload, relative to the repository root. */
async function publishedFiles(): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno publish --dry-run failed:\n${text}`);
  const files = [...text.matchAll(/^\s+file:\/\/(\S+) \([\d.]+K?M?B\)$/gm)]
    .map((m) => relative(ROOT, decodeURIComponent(m[1])));
  if (!files.includes("mod.ts")) throw new Error(`no file list in:\n${text}`);
  return files;
}

/**
 * What `deno publish` does to a module: specifiers mapped by deno.json's "imports" become the
 * full specifiers ("yaml" -> "npm:yaml@^2.8.0", "#flags" -> "node:util").
 */
function unfurl(source: string): string {
  return source.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"'\n]+)\2/g,
    (whole, lead: string, q: string, spec: string) => {
      if (IMPORTS[spec]) return `${lead}${q}${IMPORTS[spec]}${q}`;
      const prefix = Object.keys(IMPORTS).find((k) => k.endsWith("/") && spec.startsWith(k));
      return prefix ? `${lead}${q}${IMPORTS[prefix]}${spec.slice(prefix.length)}${q}` : whole;
    },
  );
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Serves the package in JSR's layout; returns the registry URL and a stop function. */
async function serveRegistry(files: string[]): Promise<
  { url: string; requests: string[]; close(): Promise<void> }
> {
  const contents = new Map<string, Uint8Array<ArrayBuffer>>();
  const manifest: Record<string, { size: number; checksum: string }> = {};
  for (const f of files) {
    let bytes: Uint8Array<ArrayBuffer> = await Deno.readFile(join(ROOT, f));
    if (/\.(ts|tsx|js|mjs|mts)$/.test(f)) {
      bytes = new TextEncoder().encode(unfurl(new TextDecoder().decode(bytes)));
    }
    contents.set(`/${f}`, bytes);
    manifest[`/${f}`] = { size: bytes.length, checksum: `sha256-${await sha256(bytes)}` };
  }
  const [scope, name] = NAME.slice(1).split("/");
  const base = `/@${scope}/${name}`;
  const json = (v: unknown) =>
    new Response(JSON.stringify(v), { headers: { "content-type": "application/json" } });
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.push(path);
    if (path === `${base}/meta.json`) {
      return json({ scope, name, latest: VERSION, versions: { [VERSION]: {} } });
    }
    if (path === `${base}/${VERSION}_meta.json`) return json({ manifest, exports: EXPORTS });
    const prefix = `${base}/${VERSION}`;
    if (path.startsWith(`${prefix}/`)) {
      const body = contents.get(path.slice(prefix.length));
      if (body) {
        const type = path.endsWith(".json") ? "application/json" : "application/typescript";
        return new Response(body, { headers: { "content-type": type } });
      }
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    requests,
    close: () => server.shutdown(),
  };
}

/** The README's quickstart: the first TypeScript block under "## Quickstart". */
async function readmeQuickstart(): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.split(/^## Quickstart$/m)[1];
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error("README.md has no TypeScript block under ## Quickstart");
  return code;
}

Deno.test({
  name:
    "the published package works from JSR: quickstart, a sandboxed trainable importing ./trainable, every subpath export, deno install -g of the CLI",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const files = await publishedFiles();
    // The publish list is the package: nothing of the checkout's tests or tools is in it.
    ok(!files.some((f) => /^(tests|examples|bench|tools)\//.test(f)), files.join("\n"));
    const registry = await serveRegistry(files);
    const home = await Deno.makeTempDir({ prefix: "tunebox_jsr_test_" });
    // A fresh DENO_DIR: nothing of this checkout is cached. Its npm cache is the machine's (npm
    // packages are not what this test is about, and fetching tfjs again costs a minute).
    const denoDir = join(home, "deno_dir");
    await Deno.mkdir(denoDir);
    const info = JSON.parse(
      new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
          .output()).stdout,
      ),
    );
    if (info.npmCache) await Deno.symlink(info.npmCache, join(denoDir, "npm"));
    const work = join(home, "project");
    await Deno.mkdir(work);
    const env = {
      JSR_URL: registry.url,
      DENO_DIR: denoDir,
      NO_COLOR: "1",
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
    };
    const run = (args: string[]) => exec(args, { cwd: work, env });
    try {
      await t.step("the README's quickstart", async () => {
        await Deno.writeTextFile(join(work, "quickstart.ts"), await readmeQuickstart());
        const r = await run(["run", "-A", "--no-config", "quickstart.ts"]);
        equal(r.code, 0, r.stderr);
        match(r.stdout, /lr: [\d.e-]+/);
        ok(
          registry.requests.includes(`/${NAME}/${VERSION}/mod.ts`),
          "mod.ts came from the registry",
        );
      });

      await t.step(
        "a sandboxed trainable that imports jsr:@tunebox/tunebox/trainable",
        async () => {
          await Deno.writeTextFile(
            join(work, "train.ts"),
            `import { defineTrainable } from "jsr:${NAME}/trainable";
export default defineTrainable<{ lr: number }>(async (config, session) => {
  for (let epoch = session.iteration; epoch < 3; epoch++) {
    await session.report({ loss: (Math.log10(config.lr) + 2) ** 2 + 1 / (epoch + 1) });
  }
});
`,
          );
          await Deno.writeTextFile(
            join(work, "tune.ts"),
            `import { loguniform, Tuner } from "jsr:${NAME}";
const results = await new Tuner({
  trainable: new URL("./train.ts", import.meta.url),
  space: { lr: loguniform(1e-4, 1e-1) },
  metric: "loss",
  mode: "min",
  numSamples: 2,
  maxConcurrent: 2,
  name: "jsr",
  reporter: false,
}).fit();
console.log(JSON.stringify(results.trials.map((t) => [t.status, results.history(t.id).length])));
`,
          );
          const r = await run([
            "run",
            "--no-config",
            "--allow-read",
            "--allow-write",
            "--allow-run",
            "--allow-env",
            "--allow-sys",
            "--allow-net",
            "tune.ts",
          ]);
          equal(r.code, 0, r.stderr);
          equal(
            r.stdout.trim().split("\n").at(-1),
            JSON.stringify([["terminated", 3], [
              "terminated",
              3,
            ]]),
            r.stderr,
          );
        },
      );

      await t.step("every subpath export imports", async () => {
        const subpaths = Object.keys(EXPORTS);
        await Deno.writeTextFile(
          join(work, "all.ts"),
          subpaths.map((s, i) =>
            `import * as m${i} from "jsr:${NAME}${s === "." ? "" : s.slice(1)}";`
          ).join("\n") +
            `\nconsole.log(JSON.stringify([${
              subpaths.map((_, i) => `Object.keys(m${i}).length`).join(", ")
            }]));\n`,
        );
        const r = await run(["run", "-A", "--no-config", "all.ts"]);
        equal(r.code, 0, r.stderr);
        const counts: number[] = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
        equal(counts.length, subpaths.length);
        counts.forEach((n, i) => ok(n > 0, `${subpaths[i]} exports nothing`));
      });

      await t.step("deno install -g -A -n tunebox jsr:@tunebox/tunebox/cli", async () => {
        const root = join(home, "install");
        const install = await run([
          "install",
          "-g",
          "-A",
          "-n",
          "tunebox",
          "--root",
          root,
          `jsr:${NAME}/cli`,
        ]);
        equal(install.code, 0, install.stderr);
        const bin = join(root, "bin", "tunebox");
        const shim = async (args: string[]) => {
          const out = await new Deno.Command(bin, {
            args,
            cwd: work,
            env,
            stdout: "piped",
            stderr: "piped",
          }).output();
          const dec = new TextDecoder();
          return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
        };
        const help = await shim(["--help"]);
        equal(help.code, 0, help.stderr);
        match(help.stdout, /^Usage: tunebox <command>/m);
        const status = await shim(["status", "tunebox_results/jsr"]);
        equal(status.code, 0, status.stderr);
        match(status.stdout, /^jsr: finished, 2 trials \(2 terminated\)/);
        await Deno.writeTextFile(
          join(work, "exp.yaml"),
          `name: yaml\ntrainable: ./train.ts\nmetric: loss\nmode: min\nnum_samples: 2\n` +
            `space:\n  lr: { type: loguniform, min: 1.0e-4, max: 1.0e-1 }\n`,
        );
        const yaml = await shim(["run", "exp.yaml"]);
        equal(yaml.code, 0, yaml.stderr);
        match(yaml.stdout, /Results: .*tunebox_results\/yaml/);
        const report = await shim(["report", "tunebox_results/yaml"]);
        equal(report.code, 0, report.stderr);
      });
    } finally {
      await registry.close();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
