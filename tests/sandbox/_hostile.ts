// Helpers for the hostile-trial tests: each writes a trainable into a fresh folder of its own
// (its folder is what the trial may read) and runs it through the real subprocess executor.
import type { ResultGrid, TrialInfo } from "../../mod.ts";

const TRAINABLE = new URL("../../trainable.ts", import.meta.url).href;

/** Writes `body` (the inside of `async (config, session) => { ... }`) as a trainable module. */
export async function hostileTrainable(
  body: string,
  options: { header?: string; files?: Record<string, string> } = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_hostile_" });
  for (const [name, text] of Object.entries(options.files ?? {})) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const path = `${dir}/train.ts`;
  await Deno.writeTextFile(
    path,
    `import { defineTrainable } from ${JSON.stringify(TRAINABLE)};\n` +
      `${options.header ?? ""}\n` +
      `export default defineTrainable(async (config: Record<string, any>, session) => {\n` +
      `${body}\n});\n`,
  );
  return path;
}

/** A file outside every trial's sandbox, with known content. */
export async function secretFile(ext = "txt", content = "TOP-SECRET-42"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_secret_" });
  const path = `${dir}/secret.${ext}`;
  await Deno.writeTextFile(path, ext === "json" ? JSON.stringify({ s: content }) : content);
  return path;
}

/** The status field of experiment.json. */
export async function experimentStatus(dir: string): Promise<string> {
  return JSON.parse(await Deno.readTextFile(`${dir}/experiment.json`)).status;
}

/** The trials of a grid by a config key. */
export function byKey(grid: ResultGrid, key: string): Map<unknown, TrialInfo> {
  return new Map(grid.trials.map((t) => [t.config[key], t]));
}

/** Whether any process still runs with `pattern` in its command line. */
export async function processesMatching(pattern: string): Promise<string> {
  const ps = await new Deno.Command("pgrep", { args: ["-f", pattern], stdout: "piped" }).output();
  return new TextDecoder().decode(ps.stdout).trim();
}
