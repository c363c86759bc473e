/**
 * What the entry point a trainable imports costs every sandboxed trial process: the CPU time of
 * `deno run` with the trial's flags (`--cached-only`, this repository's deno.json, no lockfile)
 * of a script that imports `trainable.ts` or `mod.ts` by a computed specifier, as the trial
 * entry imports the trainable; an empty script for Deno's own start. Runs alternate; prints the
 * mean CPU per process (summed over the runs: the kernel counts children's CPU in 10 ms ticks).
 * Nothing here asserts a speed.
 *
 *     deno run -A bench/trial_import_bench.ts [--runs 30]
 */

const root = new URL("..", import.meta.url).pathname;
const argRuns = Deno.args.indexOf("--runs");
const runs = argRuns >= 0 ? Number(Deno.args[argRuns + 1]) : 30;

/** CPU seconds of this process's ended children (Linux, `/proc/self/stat`). */
function childrenCpuS(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return (f[13] + f[14]) / 100;
}

const dir = await Deno.makeTempDir({ prefix: "tunebox-import-bench-" });
const scripts: Record<string, string> = {
  "empty script": "",
  "./trainable": `const s = ${JSON.stringify(`${root}trainable.ts`)}; await import(s);\n`,
  "mod.ts": `const s = ${JSON.stringify(`${root}mod.ts`)}; await import(s);\n`,
};
const flags = [
  "run",
  "--cached-only",
  `--config=${root}deno.json`,
  "--no-lock",
  "--node-modules-dir=manual",
  "--vendor=false",
  "-A",
];
const paths: Record<string, string> = {};
for (const [name, text] of Object.entries(scripts)) {
  paths[name] = `${dir}/${name.replace(/\W/g, "_")}.ts`;
  await Deno.writeTextFile(paths[name], text);
  // Fill the caches once (modules, emitted JavaScript, V8's code cache), as the driver does.
  await new Deno.Command(Deno.execPath(), { args: [...flags, paths[name]] }).output();
}
const cpuMs: Record<string, number> = {};
for (let i = 0; i < runs; i++) {
  for (const name of Object.keys(scripts)) {
    const before = childrenCpuS();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...flags, paths[name]],
      stdout: "null",
    }).output();
    if (!out.success) throw new Error(`${name} failed: ${new TextDecoder().decode(out.stderr)}`);
    cpuMs[name] = (cpuMs[name] ?? 0) + (childrenCpuS() - before) * 1000;
  }
}
await Deno.remove(dir, { recursive: true });
for (const [name, total] of Object.entries(cpuMs)) {
  console.log(
    `${name.padEnd(14)} CPU per process: ${(total / runs).toFixed(1)} ms (mean of ${runs})`,
  );
}
