// The remote trial channel: real TLS on loopback, real trial processes (core/trial_main.ts) for
// the heartbeat, and every refusal read from the log.
import { deepEqual, equal, match, ok as assert } from "#assert";
import { openRemoteChannel } from "../../core/remote/channel.ts";
import { encodeLine, PROTOCOL_VERSION } from "../../core/protocol.ts";
import { driveTrial, readBoundedLines } from "../../core/channel.ts";

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

/** Starts a real trial process (core/trial_main.ts) on a TLS channel with `trainable`'s body. */
async function remoteTrial(
  ch: Awaited<ReturnType<typeof openRemoteChannel>>,
  dir: string,
  body: string,
): Promise<Deno.ChildProcess> {
  const entry = `${dir}/entry.ts`;
  const mod = `${dir}/train.ts`;
  await Deno.writeTextFile(
    entry,
    `import { boot } from ${
      JSON.stringify(new URL("../../core/trial_main.ts", import.meta.url).href)
    };\nconst trial = await boot();\nawait trial.run();\n`,
  );
  await Deno.writeTextFile(
    mod,
    `export default async (config, session) => {\n${body}\n};\n`,
  );
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      `--allow-write=${dir}/remote`,
      `--allow-net=${ch.netPermission}`,
      "--allow-env",
      entry,
    ],
    clearEnv: true,
    env: { ...ch.trialEnv("t1", "tok"), TUNEBOX_MODULE: `file://${mod}`, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

const sha = async (b: Uint8Array<ArrayBuffer>) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b))).map((x) =>
    x.toString(16).padStart(2, "0")
  ).join("");

Deno.test("checkpoints stream over the channel both ways when the trial's folder is not the driver's", async () => {
  const ch = await openRemoteChannel({ host: "127.0.0.1", heartbeatMs: 10_000, log: () => {} });
  const dir = await Deno.makeTempDir();
  try {
    // The driver's trial folder (local) and the trial's own (on "its node"): distinct folders.
    const local = `${dir}/local`;
    const remote = `${dir}/remote`;
    await Deno.mkdir(local);
    await Deno.mkdir(remote);
    // A checkpoint to restore: a binary file of several pieces, a nested file, an empty file.
    const restore = `${dir}/checkpoint_000001`;
    const big = crypto.getRandomValues(new Uint8Array(60_000));
    await Deno.mkdir(`${restore}/sub/deeper`, { recursive: true });
    await Deno.writeFile(`${restore}/weights.bin`, big);
    await Deno.writeTextFile(`${restore}/sub/deeper/state.json`, '{"i":1}');
    await Deno.writeFile(`${restore}/empty`, new Uint8Array());
    const child = await remoteTrial(
      ch,
      dir,
      `
      const ck = session.checkpoint;
      const w = await Deno.readFile(ck + "/weights.bin");
      const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", w)))
        .map((x) => x.toString(16).padStart(2, "0")).join("");
      const state = JSON.parse(await Deno.readTextFile(ck + "/sub/deeper/state.json"));
      const empty = (await Deno.stat(ck + "/empty")).size;
      const out = new Uint8Array(150_000).map((_, i) => (i * 7) % 251);
      await session.report({ digest, state: state.i, empty, at: ck }, {
        checkpoint: async (d) => {
          await Deno.mkdir(d + "/nested");
          await Deno.writeFile(d + "/nested/out.bin", out);
          await Deno.writeTextFile(d + "/meta.txt", "two");
        },
      });
      await session.report({ none: 1 });
      await session.report({ empty_ck: 1 }, { checkpoint: async () => {} });
    `,
    );
    const conn = await ch.server.expect("t1", "tok");
    const reports: { metrics: Record<string, unknown>; checkpointDir?: string }[] = [];
    const copies: Record<string, string[]> = {};
    const talk = await driveTrial(
      conn,
      {
        trialId: "t1",
        config: {},
        dir: local,
        workDir: remote,
        iteration: 1,
        checkpoint: restore,
        timeOffsetS: 0,
        sandbox: {},
        env: {},
      },
      {
        report: async (r) => {
          reports.push(r as (typeof reports)[number]);
          if (r.checkpointDir) {
            const files: string[] = [];
            for await (const e of walk(r.checkpointDir)) files.push(e);
            copies[String(reports.length)] = files.sort();
          }
          return "continue";
        },
      },
      // Small lines: the files travel in many pieces.
      { localDir: local, maxLineBytes: 16 * 1024 },
    );
    const err = new TextDecoder().decode((await child.output()).stderr);
    equal(talk.outcome?.kind, "done", `${JSON.stringify(talk)} ${err}`);
    equal(reports.length, 3);
    // The trial got the checkpoint, bit for bit, in a folder of its own.
    equal(reports[0].metrics.digest, await sha(big));
    equal(reports[0].metrics.state, 1);
    equal(reports[0].metrics.empty, 0);
    equal(reports[0].metrics.at, `${remote}/.restore`);
    // Its checkpoint came back into the driver's trial folder's staging, bit for bit.
    const ck = reports[0].checkpointDir!;
    assert(ck.startsWith(`${local}/.staging/`), ck);
    deepEqual(copies["1"], ["meta.txt", "nested/out.bin"]);
    equal(
      await sha(await Deno.readFile(`${ck}/nested/out.bin`)),
      await sha(new Uint8Array(150_000).map((_, i) => (i * 7) % 251)),
    );
    equal(await Deno.readTextFile(`${ck}/meta.txt`), "two");
    equal(reports[1].checkpointDir, undefined);
    // An empty checkpoint is still a checkpoint: an empty folder.
    assert(reports[2].checkpointDir!.startsWith(`${local}/.staging/`));
    deepEqual(copies["3"], []);
    // The trial's staging copies were freed on its node once sent.
    const left = await Array.fromAsync(Deno.readDir(`${remote}/.staging`)).catch(() => []);
    equal(left.length, 0);
  } finally {
    ch.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a streamed checkpoint over the limit, a path out of the folder, and an unasked file break the protocol", async () => {
  const ch = await openRemoteChannel({ host: "127.0.0.1", heartbeatMs: 10_000, log: () => {} });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/local`);
    await Deno.mkdir(`${dir}/remote`);
    const job = {
      trialId: "t1",
      config: {},
      dir: `${dir}/local`,
      workDir: `${dir}/remote`,
      iteration: 0,
      timeOffsetS: 0,
      sandbox: {},
      env: {},
    };
    const child = await remoteTrial(
      ch,
      dir,
      `await session.report({ x: 1 }, {
        checkpoint: (d) => Deno.writeFile(d + "/big.bin", new Uint8Array(100_000)),
      });`,
    );
    const conn = await ch.server.expect("t1", "tok");
    const talk = await driveTrial(conn, job, { report: () => Promise.resolve("continue") }, {
      localDir: `${dir}/local`,
      maxBytes: 50_000,
    });
    match(talk.broken ?? "", /a checkpoint is larger than 50000 bytes/);
    conn.close();
    await child.output();
    // Hostile pieces, sent by hand on an authenticated connection.
    for (
      const [piece, stream, expected] of [
        [{ path: "../../escape", offset: 0, data: "" }, true, /"\.\." segment/],
        [{ path: "/etc/x", offset: 0, data: "" }, true, /not a plain relative path/],
        [{ path: "a", offset: 5, data: "AAAA" }, true, /at offset 5, not 0/],
        [{ path: "a", offset: 0, data: "!!" }, true, /not base64/],
        [{ path: "a", offset: 0, data: "" }, false, /none was asked for/],
      ] as const
    ) {
      const got = ch.server.expect("t2", "tok2");
      const { conn: raw } = await hello("127.0.0.1", ch.port, ch.caPem, "t2", "tok2");
      const c = await got;
      const drive = driveTrial(
        c,
        { ...job, trialId: "t2" },
        { report: () => Promise.resolve("continue") },
        stream ? { localDir: `${dir}/local` } : undefined,
      );
      await raw.write(enc.encode(encodeLine({ v: PROTOCOL_VERSION, type: "file", ...piece })));
      match((await drive).broken ?? "", expected);
      raw.close();
      c.close();
    }
    // Nothing was written outside the driver's trial folder.
    equal(await Deno.stat(`${dir}/escape`).then(() => true, () => false), false);
  } finally {
    ch.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function* walk(root: string, rel = ""): AsyncGenerator<string> {
  for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* walk(root, p);
    else yield p;
  }
}
