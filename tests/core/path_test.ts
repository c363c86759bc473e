import * as node from "node:path";
import { fileURLToPath as nodeFileUrl } from "node:url";
import { equal as assertEquals, throws } from "#assert";
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
