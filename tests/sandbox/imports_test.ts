// No read escape through the module graph: a trainable's imports of files outside the folders
// trials may read are refused before any trial runs (literal imports, which Deno loads without
// a permission check), and at run time (computed imports, which Deno checks).
import { equal, match, rejects } from "#assert";
import { grid, TuneError, Tuner } from "../../mod.ts";
import { captureWarnings, tempStorage } from "../_helpers.ts";
import { hostileTrainable, secretFile } from "./_hostile.ts";

const CASES: [
  string,
  string,
  (secret: string) => { header?: string; body?: string; files?: Record<string, string> },
][] = [
  [
    "text, static",
    "txt",
    (s) => ({ header: `import s from ${JSON.stringify(s)} with { type: "text" };` }),
  ],
  [
    "json, static",
    "json",
    (s) => ({ header: `import s from ${JSON.stringify(s)} with { type: "json" };` }),
  ],
  [
    "bytes, static",
    "txt",
    (s) => ({ header: `import s from ${JSON.stringify(s)} with { type: "bytes" };` }),
  ],
  ["text, literal dynamic", "txt", (s) => ({
    body: `const m = await import(${JSON.stringify("file://" + s)}, { with: { type: "text" } });`,
  })],
  ["json, literal dynamic", "json", (s) => ({
    body: `const m = await import(${JSON.stringify("file://" + s)}, { with: { type: "json" } });`,
  })],
  ["text, re-exported", "txt", (s) => ({
    header: `export { default as s } from "./helper.ts";`,
    files: { "helper.ts": `export { default } from ${JSON.stringify(s)} with { type: "text" };\n` },
  })],
  ["a module, static", "ts", (s) => ({ header: `import * as m from ${JSON.stringify(s)};` })],
];

for (const [name, ext, make] of CASES) {
  Deno.test(`a trainable importing a file outside its sandbox is refused before any trial: ${name}`, async () => {
    const secret = await secretFile(ext, ext === "ts" ? "export const s = 1;" : "TOP-SECRET-42");
    if (ext === "ts") await Deno.writeTextFile(secret, "export const s = 'TOP-SECRET-42';\n");
    const c = make(secret);
    const train = await hostileTrainable(
      `${c.body ?? ""}\nawait session.report({ loss: 1 });`,
      { header: c.header ?? "", files: c.files ?? {} },
    );
    const storage = await tempStorage();
    await rejects(
      () =>
        new Tuner({
          trainable: train,
          space: { x: 1 },
          metric: "loss",
          mode: "min",
          storage,
          name: "graph",
          reporter: false,
          // Bytes imports are unstable: the experiment turns them on, the graph check still holds.
          sandbox: { unstable: ["raw-imports"] },
        }).fit(),
      (e: Error) => {
        equal(e instanceof TuneError, true, e.message);
        match(
          e.message,
          new RegExp(`imports "[^"]*secret\\.${ext}" \\(${secret}\\) at .*\\.ts:\\d+:\\d+`),
        );
        match(e.message, /outside the folders trials may read/);
        return true;
      },
    );
    // No trial ran.
    equal((await Deno.readTextFile(`${storage}/graph/trials.jsonl`).catch(() => "")).trim(), "");
  });
}

Deno.test("a computed import of a file outside the sandbox is denied at run time (text, json)", async () => {
  const txt = await secretFile("txt");
  const json = await secretFile("json");
  const train = await hostileTrainable(`
    const path: string = config.path;
    const spec = ["file://", path].join("");
    const m = await import(spec, { with: { type: path.endsWith(".json") ? "json" : "text" } });
    await session.report({ loss: 1, leaked: JSON.stringify(m.default) });
  `);
  const storage = await tempStorage();
  const { value: r } = await captureWarnings(() =>
    new Tuner({
      trainable: train,
      space: { path: grid([txt, json]) },
      metric: "loss",
      mode: "min",
      storage,
      name: "runtime",
      reporter: false,
    }).fit()
  );
  equal(r.trials.length, 2);
  for (const t of r.trials) {
    equal(t.status, "error");
    match(t.error!, /needs read access to ".*secret\.(txt|json)"/);
  }
});
