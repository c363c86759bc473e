// The channel server against hostile peers: junk before hello, silence, huge lines, floods.
// The real listener and real sockets; the trial that was expected still gets in and talks.
import { equal, match, ok as assert, rejects } from "#assert";
import { readBoundedLines, TrialChannelServer } from "../../core/channel.ts";
import { encodeLine, lineSender } from "../../core/protocol.ts";

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

Deno.test("readBoundedLines reading a connection directly keeps lines split across reads whole", async () => {
  // A source that writes into the buffer it is given, as Deno.Conn.read does: the reader reuses
  // one buffer, so a partial line must be copied out before the next read overwrites it.
  const pieces = ['{"a":1}\n{"b":"xy', 'z"}\n{"c":', "3}\n", '{"d":4}\n{"e":5}\n'].map((x) =>
    enc.encode(x)
  );
  const buffers = new Set<Uint8Array>();
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      buffers.add(p);
      const next = pieces.shift();
      if (!next) return Promise.resolve(null);
      p.fill(120); // leftovers of the last read are garbage now
      p.set(next);
      return Promise.resolve(next.length);
    },
  };
  const lines = [];
  for await (const m of readBoundedLines(source, 1 << 20)) lines.push(m);
  equal(JSON.stringify(lines), '[{"a":1},{"b":"xyz"},{"c":3},{"d":4},{"e":5}]');
  equal(buffers.size, 1, "one buffer, reused");
  // The cap holds across reads too.
  let left = 20;
  const endless = {
    read(p: Uint8Array): Promise<number | null> {
      if (!left--) return Promise.resolve(null);
      p.fill(97);
      return Promise.resolve(p.length);
    },
  };
  await rejects(
    async () => {
      for await (const _ of readBoundedLines(endless, 1 << 20)) { /* none */ }
    },
    (e: Error) => /longer than 1048576 bytes/.test(e.message),
  );
});

Deno.test("lineSender coalesces messages sent during a write, keeps order, finishes partial writes", async () => {
  const writes: string[] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const dec = new TextDecoder();
  const sink = {
    async write(p: Uint8Array): Promise<number> {
      await gate;
      // At most 5 bytes at a time, as a socket may take a part of a write.
      const n = Math.min(5, p.length);
      writes.push(dec.decode(p.subarray(0, n)));
      return n;
    },
  };
  const send = lineSender(sink);
  const first = send({ n: 1 });
  const second = send({ n: 2 });
  const third = send({ n: 3 });
  release();
  await Promise.all([first, second, third]);
  equal(writes.join(""), '{"n":1}\n{"n":2}\n{"n":3}\n');
  // The first message went alone (8 bytes in 2 parts); the two sent while it was being written
  // went out as one buffer of 16 bytes: a part spans both.
  equal(
    JSON.stringify(writes),
    JSON.stringify(['{"n":', "1}\n", '{"n":', '2}\n{"', 'n":3}', "\n"]),
  );
  // A connection that fails rejects that send and every later one.
  gate = Promise.reject(new Error("reset"));
  gate.catch(() => {});
  await rejects(() => send({ n: 4 }), /reset/);
  await rejects(() => send({ n: 5 }), /reset/);
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
