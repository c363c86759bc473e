import * as node from "node:path";
import { fileURLToPath as nodeFileUrl } from "node:url";
import { deepEqual, equal as assertEquals, throws } from "#assert";
import * as ours from "../../core/_path.ts";

const samples = [
  "",
  ".",
  "..",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "a//b",
  "a/./b",
  "a/../b",
  "../a",
  "../../a/b/..",
  "/../a",
  "/a/b/../../..",
  "a/b/c/",
  "/x/y.tar.gz",
  "./.hidden",
  "/tmp/tunebox-x/1/c.sock",
];

Deno.test("core/_path matches node:path on normalize, join, dirname, basename, isAbsolute", () => {
  for (const p of samples) {
    assertEquals(ours.normalize(p), node.normalize(p), `normalize(${JSON.stringify(p)})`);
    assertEquals(ours.dirname(p), node.dirname(p), `dirname(${JSON.stringify(p)})`);
    assertEquals(ours.basename(p), node.basename(p), `basename(${JSON.stringify(p)})`);
    assertEquals(ours.basename(p, ".gz"), node.basename(p, ".gz"), `basename(${p}, .gz)`);
    assertEquals(ours.isAbsolute(p), node.isAbsolute(p), `isAbsolute(${JSON.stringify(p)})`);
    for (const q of samples) {
      assertEquals(ours.join(p, q), node.join(p, q), `join(${JSON.stringify([p, q])})`);
    }
  }
});

Deno.test("core/_path matches node:path on resolve and relative", () => {
  for (const p of samples) {
    assertEquals(ours.resolve(p), node.resolve(p), `resolve(${JSON.stringify(p)})`);
    assertEquals(
      ours.resolve("/base/dir", p),
      node.resolve("/base/dir", p),
      `resolve(/base, ${p})`,
    );
    for (const q of samples) {
      assertEquals(ours.relative(p, q), node.relative(p, q), `relative(${JSON.stringify([p, q])})`);
    }
  }
});

Deno.test("core/_path's fileURLToPath decodes as node:url's and refuses what it refuses", () => {
  for (const u of ["file:///a/b%20c.ts", "file:///t%C3%A4st/x", "file://localhost/etc/x"]) {
    assertEquals(ours.fileURLToPath(u), nodeFileUrl(u));
    assertEquals(ours.fileURLToPath(new URL(u)), nodeFileUrl(new URL(u)));
  }
  throws(() => ours.fileURLToPath("https://example.com/a.ts"), /scheme file/);
  throws(() => ours.fileURLToPath("file:///a%2fb"), /encoded \//);
});

Deno.test("what a trial loads with mod.ts, ./trainable or a plugin family imports no node: module", async () => {
  // Any node: import starts Deno's Node layer: 40-70 ms more start-up for every sandboxed trial.
  const root = new URL("../../", import.meta.url);
  for (const entry of ["mod.ts", "trainable.ts", "plugins/schedulers/mod.ts"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL(entry, root).pathname],
      stdout: "piped",
      stderr: "null",
    }).output();
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      roots: string[];
      modules: {
        specifier: string;
        dependencies?: { specifier: string; isDynamic?: boolean; code?: { specifier: string } }[];
      }[];
    };
    const byUrl = new Map(graph.modules.map((m) => [m.specifier, m]));
    // Static imports only: a module imported dynamically is loaded when it is needed.
    const seen = new Set<string>(graph.roots);
    const stack = [...graph.roots];
    const offenders: string[] = [];
    while (stack.length) {
      const m = byUrl.get(stack.pop()!);
      for (const d of m?.dependencies ?? []) {
        if (d.isDynamic) continue;
        if (d.specifier.startsWith("node:")) offenders.push(`${m!.specifier} -> ${d.specifier}`);
        const next = d.code?.specifier;
        if (next && !seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    deepEqual(offenders, [], entry);
  }
});
