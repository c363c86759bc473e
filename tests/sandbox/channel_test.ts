// The channel server against hostile peers: junk before hello, silence, huge lines, floods.
// The real listener and real sockets; the trial that was expected still gets in and talks.
import { equal, match, ok as assert, rejects } from "#assert";
import { readBoundedLines, TrialChannelServer } from "../../core/channel.ts";
import { encodeLine } from "../../core/protocol.ts";

async function withServer(
  fn: (server: TrialChannelServer, path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/c.sock`;
  const server = new TrialChannelServer(Deno.listen({ transport: "unix", path }), {
    authTimeoutMs: 300,
    maxUnauthenticated: 8,
    maxLineBytes: 1 << 20,
  });
  try {
    await fn(server, path);
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const enc = new TextEncoder();

Deno.test("the channel survives silent, malformed, oversized and flooding peers, then lets the expected trial in", async () => {
  await withServer(async (server, path) => {
    const expected = server.expect("t1", "secret");
    // Connects and closes without a word.
    (await Deno.connect({ transport: "unix", path })).close();
    // One malformed line, then close.
    const junk = await Deno.connect({ transport: "unix", path });
    await junk.write(enc.encode("{not json\n"));
    junk.close();
    // A wrong token.
    const wrong = await Deno.connect({ transport: "unix", path });
    await wrong.write(
      enc.encode(encodeLine({ v: 1, type: "hello", trialId: "t1", token: "nope" })),
    );
    // A 32 MiB line with no newline: refused after the first 4 KiB of an unauthenticated line.
    const huge = await Deno.connect({ transport: "unix", path });
    const big = new Uint8Array(32 << 20).fill(120);
    const sent = huge.write(big).catch(() => 0);
    // A flood of idle connections: beyond the cap they are closed at once, the rest time out.
    const flood: Deno.Conn[] = [];
    for (let i = 0; i < 200; i++) flood.push(await Deno.connect({ transport: "unix", path }));
    await sent;
    // The wrong-token peer was closed by the server.
    const buf = new Uint8Array(16);
    equal(await wrong.read(buf).catch(() => null), null);
    wrong.close();
    huge.close();
    // Wait for the idle ones to time out, then the real trial connects.
    await new Promise((r) => setTimeout(r, 600));
    for (const c of flood) c.close();
    const trial = await Deno.connect({ transport: "unix", path });
    await trial.write(
      enc.encode(encodeLine({ v: 1, type: "hello", trialId: "t1", token: "secret" })),
    );
    const conn = await expected;
    equal(conn.trialId, "t1");
    await trial.write(enc.encode(encodeLine({ v: 1, type: "done" })));
    const next = await conn.messages.next();
    equal((next.value as { type: string }).type, "done");
    assert(server.refused >= 200, `refused ${server.refused}`);
    conn.close();
    trial.close();
  });
});

Deno.test("readBoundedLines refuses a line over the cap and scans each byte once", async () => {
  const chunks = Array.from({ length: 64 }, () => new Uint8Array(1 << 16).fill(97));
  await rejects(
    async () => {
      for await (const _ of readBoundedLines(ReadableStream.from(chunks), 1 << 20)) { /* none */ }
    },
    (e: Error) => /longer than 1048576 bytes/.test(e.message),
  );
  const lines = [];
  for await (
    const m of readBoundedLines(
      ReadableStream.from([enc.encode('{"a":1}\n{"a"'), enc.encode(":2}\n")]),
    )
  ) lines.push(m);
  equal(JSON.stringify(lines), '[{"a":1},{"a":2}]');
  await rejects(
    async () => {
      for await (const _ of readBoundedLines(ReadableStream.from([enc.encode("nope\n")]))) { /* */ }
    },
    (e: Error) => {
      match(e.message, /not JSON: "nope"/);
      return true;
    },
  );
});

Deno.test("a driver out of file descriptors (EMFILE) keeps accepting once some are free", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("prlimit", {
      args: [
        "--nofile=256",
        "--",
        Deno.execPath(),
        "run",
        "-A",
        // No deno.json: nothing npm to resolve at start-up, when file descriptors are few.
        "--no-config",
        new URL("./_emfile_driver.ts", import.meta.url).pathname,
        `${dir}/c.sock`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    equal(out.success, true, `exit code ${out.code}:\n${text}`);
    const m = /AUTHENTICATED (\d+) t1 \((.*)\)/.exec(text);
    if (!m) throw new Error(`no authentication after the flood:\n${text}`);
    // It really ran out: the flood stopped on "Too many open files" before 500 connections.
    assert(Number(m[1]) < 500, text);
    match(m[2], /Too many open files/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
