// The remote trial channel: real TLS on loopback, real trial processes (core/trial_main.ts) for
// the heartbeat, and every refusal read from the log.
import { equal, match, ok as assert } from "#assert";
import { openRemoteChannel } from "../../core/remote/channel.ts";
import { encodeLine, PROTOCOL_VERSION } from "../../core/protocol.ts";
import { readBoundedLines } from "../../core/channel.ts";

const enc = new TextEncoder();

async function hello(
  host: string,
  port: number,
  caPem: string | undefined,
  trialId: string,
  token: string,
): Promise<{ conn: Deno.Conn; closed: () => Promise<boolean> }> {
  const conn = await Deno.connectTls({
    hostname: host,
    port,
    ...(caPem ? { caCerts: [caPem] } : {}),
  });
  await conn.write(enc.encode(encodeLine({ v: PROTOCOL_VERSION, type: "hello", trialId, token })));
  // Resolves true when the driver closes the connection without a word.
  const closed = async () => {
    try {
      const b = new Uint8Array(64);
      return (await conn.read(b)) === null;
    } catch {
      return true;
    }
  };
  return { conn, closed };
}

async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("the TLS channel refuses, and logs, a wrong token, a second connection, a finished trial, an unknown trial and a client without the CA", async () => {
  const log: string[] = [];
  const ch = await openRemoteChannel({
    host: "127.0.0.1",
    heartbeatMs: 60_000,
    log: (m) => log.push(m),
  });
  try {
    const got = ch.server.expect("t1", "right");
    const wrong = await hello(ch.host, ch.port, ch.caPem, "t1", "wrong");
    equal(await wrong.closed(), true);
    const ok = await hello(ch.host, ch.port, ch.caPem, "t1", "right");
    const conn = await got;
    equal(conn.trialId, "t1");
    const dup = await hello(ch.host, ch.port, ch.caPem, "t1", "right");
    equal(await dup.closed(), true);
    ch.server.forget("t1");
    const late = await hello(ch.host, ch.port, ch.caPem, "t1", "right");
    equal(await late.closed(), true);
    const unknown = await hello(ch.host, ch.port, ch.caPem, "t9", "x");
    equal(await unknown.closed(), true);
    // No CA: the client refuses the server; the server logs the failed handshake.
    const noCa = await Deno.connectTls({ hostname: ch.host, port: ch.port });
    const failed = await noCa.handshake().then(() => false, () => true);
    assert(failed);
    noCa.close();
    // Plain TCP (no TLS at all).
    const plain = await Deno.connect({ hostname: ch.host, port: ch.port });
    await plain.write(
      enc.encode(encodeLine({ v: 1, type: "hello", trialId: "t1", token: "right" })),
    );
    plain.close();
    await until(() => log.length >= 6);
    const text = log.join("\n");
    match(text, /refused a trial connection from 127\.0\.0\.1:\d+: wrong token for trial "t1"/);
    match(text, /trial "t1" is already connected \(a second connection with its token\)/);
    match(text, /trial "t1" has finished \(its token is spent\)/);
    match(text, /no trial "t9" is expected/);
    match(text, /the connection failed before hello/);
    // The authenticated trial still talks.
    await conn.send({ v: PROTOCOL_VERSION, type: "stop" });
    const lines = readBoundedLines(ok.conn.readable, 1 << 20);
    equal(((await lines.next()).value as { type: string }).type, "stop");
    conn.close();
  } finally {
    ch.close();
  }
});

Deno.test("keepAlive pings a trial and gives up one that stays silent", async () => {
  const ch = await openRemoteChannel({ host: "127.0.0.1", heartbeatMs: 400, log: () => {} });
  try {
    const got = ch.server.expect("t1", "tok");
    const peer = await hello(ch.host, ch.port, ch.caPem, "t1", "tok");
    const conn = await got;
    let silent = false;
    const kept = ch.keepAlive(conn, () => (silent = true));
    // The peer hears pings while it says nothing.
    const lines = readBoundedLines(peer.conn.readable, 1 << 20);
    equal(((await lines.next()).value as { type: string }).type, "ping");
    const t0 = Date.now();
    const end = await kept.messages.next().then((r) => r.done, () => true);
    equal(end, true);
    equal(silent, true);
    assert(Date.now() - t0 < 3000);
  } finally {
    ch.close();
  }
});

Deno.test("a remote trial whose driver goes silent (no FIN) exits within its heartbeat, without stdin", async () => {
  const ch = await openRemoteChannel({ host: "127.0.0.1", heartbeatMs: 500, log: () => {} });
  const dir = await Deno.makeTempDir();
  try {
    const got = ch.server.expect("t1", "tok");
    const entry = `${dir}/entry.ts`;
    await Deno.writeTextFile(
      entry,
      `import { boot } from ${
        JSON.stringify(new URL("../../core/trial_main.ts", import.meta.url).href)
      };\n` +
        `await boot();\nawait new Promise(() => {});\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-read",
        `--allow-net=${ch.netPermission}`,
        "--allow-env",
        entry,
      ],
      clearEnv: true,
      env: { ...ch.trialEnv("t1", "tok"), TUNEBOX_MODULE: "file:///nonexistent.ts", NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const conn = await got;
    await conn.send({
      v: PROTOCOL_VERSION,
      type: "start",
      trialId: "t1",
      config: {},
      iteration: 0,
      trialDir: dir,
    });
    // The driver never answers again and never closes: like a host that vanished.
    const t0 = Date.now();
    const out = await child.output();
    const took = Date.now() - t0;
    equal(out.code, 4);
    match(new TextDecoder().decode(out.stderr), /no word from the driver for 500 ms/);
    assert(took < 5000, `took ${took} ms`);
    conn.close();
  } finally {
    ch.close();
    await Deno.remove(dir, { recursive: true });
  }
});
