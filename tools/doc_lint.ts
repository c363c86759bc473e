// `deno doc --lint` on every public module: the entry points of deno.json's `exports`, the one
// list of them (`deno task check` and .ci/run both run this script).
//
//   deno run --allow-read --allow-run tools/doc_lint.ts

import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`)) as {
  exports: Record<string, string>;
};
const files = [...new Set(Object.values(config.exports))].map((f) => f.replace(/^\.\//, ""));
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...files],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
