// Checks the layers (modelled on denoland/std's tools/check_circular_package_dependencies.ts):
//
// - `core/**` is the engine: it imports only `core/**`.
// - A plugin, `plugins/<family>/**`, imports `core/**` and its own family only.
// - `tuner/**`, the user-facing layer (`Tuner`, its defaults, the experiment file loader), imports
//   `core/**`, `plugins/**` and itself.
// - `cli/**`, the command line, imports all of the above and itself; nothing imports it but `cli.ts`.
// - `testing/**`, the contract suites shipped as `./testing`, imports `core/**` and itself only:
//   the suites hold no built-in plugin, so they judge the built-ins like anyone else's.
//
// Third-party specifiers (npm:, jsr:, node:, the import map's bare names) are always allowed.
// The few crossings that exist today are listed in ALLOWED with the reason; the list may only
// shrink. Prints every other crossing as `file:line: imports target` and exits 1.
//
//   deno run --allow-read tools/check_layers.ts

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** `from -> to` crossings that exist for now, each with why. Remove entries, never add. */
const ALLOWED: Record<string, string> = {
  // ResultGrid is core's data on the store, and its public API has these two views; the import
  // is dynamic, so nothing of the report loads unless they are called.
  "core/results.ts -> plugins/reporters/html.ts": "ResultGrid.toHtml (dynamic import)",
  "core/results.ts -> plugins/reporters/notebook.ts": "ResultGrid's Jupyter view (dynamic import)",
};

const root = fileURLToPath(new URL("../", import.meta.url));
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* sources(path);
    else if (/\.(ts|tsx|js|mjs)$/.test(e.name)) yield path;
  }
}

/** The layer of a repository-relative path: "core", "plugins/<family>", "tuner", "cli", or
 * undefined (the entry points above them: mod.ts, cli.ts, ...). */
function layer(rel: string): string | undefined {
  if (rel.startsWith("core/")) return "core";
  if (rel.startsWith("tuner/")) return "tuner";
  if (rel.startsWith("cli/")) return "cli";
  if (rel.startsWith("testing/")) return "testing";
  const m = /^plugins\/([^/]+)\//.exec(rel);
  return m ? `plugins/${m[1]}` : undefined;
}

const MAY_IMPORT: Record<string, string> = {
  core: "core/ only",
  tuner: "core/, plugins/ and tuner/ only",
  testing: "core/ and testing/ only",
};

function allowed(from: string, to: string): boolean {
  const a = layer(from)!, b = layer(to);
  if (b === undefined) return false; // core and plugins never import the layer above them
  if (a === "core") return b === "core";
  if (a === "tuner") return b !== "cli";
  if (a === "cli") return true;
  if (a === "testing") return b === "core" || b === "testing";
  return b === "core" || b === a;
}

const problems: string[] = [];
const used = new Set<string>();
for (const top of ["core", "plugins", "tuner", "cli", "testing"]) {
  for await (const file of sources(join(root, top))) {
    const from = relative(root, file);
    const text = await Deno.readTextFile(file);
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith(".")) continue; // npm:, jsr:, node:, import-map names
      const lineStart = text.lastIndexOf("\n", m.index! + (m[0].match(/^\s/) ? 1 : 0)) + 1;
      if (/^\s*(\*|\/\/)/.test(text.slice(lineStart))) continue; // a JSDoc example or a comment
      const to = relative(root, resolve(dirname(file), spec));
      if (allowed(from, to)) continue;
      const key = `${from} -> ${to}`;
      if (key in ALLOWED) {
        used.add(key);
        continue;
      }
      const line = text.slice(0, m.index).split("\n").length;
      problems.push(
        `${from}:${line}: imports ${to} (${layer(from)} may import ${
          MAY_IMPORT[layer(from)!] ?? `core/ and ${layer(from)}/ only`
        })`,
      );
    }
  }
}
for (const key of Object.keys(ALLOWED)) {
  if (!used.has(key)) {
    problems.push(`tools/check_layers.ts: "${key}" no longer happens: remove it from ALLOWED`);
  }
}
if (problems.length) {
  console.error(`Layer check failed:\n${problems.join("\n")}`);
  Deno.exit(1);
}
console.log(
  "Layers: core imports only core; each plugin family and testing import core and themselves; " +
    "tuner imports core, plugins and itself; cli sits on top.",
);
