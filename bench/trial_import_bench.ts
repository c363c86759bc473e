/**
 * What the entry point a trainable imports costs every sandboxed trial process: the CPU time of
 * `deno run` with the trial's flags (`--cached-only`, this repository's deno.json, no lockfile)
 * of a script that imports `trainable.ts` or `mod.ts` by a computed specifier, as the trial
 * entry imports the trainable; an empty script for Deno's own start. Runs alternate; prints the
 * mean CPU per process (summed over the runs: the kernel counts children's CPU in 10 ms ticks),
 * and, where `strace` is installed, how many of the package's `.ts` files one process reads.
 * `--root DIR` (repeatable) measures other checkouts of the package instead of this one, their
 * runs alternated (e.g. a checkout of the commit before a change, and this one). Nothing here
 * asserts a speed.
 *
 *     deno run -A bench/trial_import_bench.ts [--runs 30] [--root ../before --root .]
 */

const here = new URL("..", import.meta.url).pathname;
const argRuns = Deno.args.indexOf("--runs");
const runs = argRuns >= 0 ? Number(Deno.args[argRuns + 1]) : 30;
const roots = Deno.args.flatMap((a, i) =>
  Deno.args[i - 1] === "--root" ? [Deno.realPathSync(a).replace(/\/?$/, "/")] : []
);
if (!roots.length) roots.push(here);

/** CPU seconds of this process's ended children (Linux, `/proc/self/stat`). */
function childrenCpuS(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return (f[13] + f[14]) / 100;
}

const dir = await Deno.makeTempDir({ prefix: "tunebox-import-bench-" });
/** One measured script: its label, its checkout, its path. */
interface Script {
  readonly label: string;
  readonly root: string;
  readonly path: string;
}
const scripts: Script[] = [];
for (const [r, root] of roots.entries()) {
  const entries: Record<string, string> = {
    "empty script": "",
    "./trainable": `const s = ${JSON.stringify(`${root}trainable.ts`)}; await import(s);\n`,
    "mod.ts": `const s = ${JSON.stringify(`${root}mod.ts`)}; await import(s);\n`,
  };
  for (const [name, text] of Object.entries(entries)) {
    const path = `${dir}/${r}_${name.replace(/\W/g, "_")}.ts`;
    await Deno.writeTextFile(path, text);
    const label = roots.length > 1 ? `${root} ${name}` : name;
    scripts.push({ label, root, path });
  }
}
function flags(root: string): string[] {
  return [
    "run",
    "--cached-only",
    `--config=${root}deno.json`,
    "--no-lock",
    "--node-modules-dir=manual",
    "--vendor=false",
    "-A",
  ];
}
for (const s of scripts) {
  // Fill the caches once (modules, emitted JavaScript, V8's code cache), as the driver does.
  await new Deno.Command(Deno.execPath(), { args: [...flags(s.root), s.path] }).output();
}

/** The package's .ts files one run of `s` opens (strace), or undefined without strace. */
async function filesRead(s: Script): Promise<number | undefined> {
  const trace = `${dir}/trace`;
  const out = await new Deno.Command("strace", {
    args: ["-f", "-e", "trace=openat", "-o", trace, Deno.execPath(), ...flags(s.root), s.path],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  if (!out?.success) return undefined;
  const files = new Set<string>();
  for (const m of (await Deno.readTextFile(trace)).matchAll(/"([^"]+\.ts)"/g)) {
    if (m[1].startsWith(s.root) && !m[1].includes("/node_modules/")) files.add(m[1]);
  }
  return files.size;
}

const cpuMs: Record<string, number> = {};
for (let i = 0; i < runs; i++) {
  for (const s of scripts) {
    const before = childrenCpuS();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...flags(s.root), s.path],
      stdout: "null",
    }).output();
    if (!out.success) {
      throw new Error(`${s.label} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    cpuMs[s.label] = (cpuMs[s.label] ?? 0) + (childrenCpuS() - before) * 1000;
  }
}
const width = Math.max(...scripts.map((s) => s.label.length));
for (const s of scripts) {
  const files = await filesRead(s);
  console.log(
    `${s.label.padEnd(width)} CPU per process: ${
      (cpuMs[s.label] / runs).toFixed(1)
    } ms (mean of ${runs})` +
      (files === undefined ? "" : `; package files read: ${files}`),
  );
}
await Deno.remove(dir, { recursive: true });
