// The launcher of pooled Ray jobs (plugins/executors/_ray_launcher.ts), run as a real process
// against a real TLS channel, without Ray: it runs the commands it is given one at a time, says
// how each ended, kills a trial's whole process group on `kill`, and exits when told to or when
// the driver goes away (taking its running trial with it).
import { equal, match, ok as assert } from "#assert";
import { openRemoteChannel } from "../../core/remote/channel.ts";
import { launcherEnded, launcherOutput } from "../../plugins/executors/_ray_launcher.ts";
import type { DriverMessage } from "../../core/protocol.ts";

const LAUNCHER = new URL("../../plugins/executors/_ray_launcher.ts", import.meta.url).href;

/** Whether a process runs (a zombie waiting for its reaper does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

async function startLauncher(heartbeatMs = 60_000) {
  const ch = await openRemoteChannel({ host: "127.0.0.1", heartbeatMs, log: () => {} });
  const token = crypto.randomUUID();
  const connected = ch.server.expect("launcher@test", token);
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--no-prompt",
      `--allow-net=${ch.netPermission}`,
      "--allow-run=/bin/sh",
      "--allow-env",
      LAUNCHER,
    ],
    env: { ...ch.trialEnv("launcher@test", token), NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const conn = await connected;
  const send = (m: unknown) => conn.send(m as DriverMessage);
  const next = async () => {
    for (;;) {
      const r = await conn.messages.next();
      if (r.done) return undefined;
      const e = launcherEnded(r.value);
      if (e) return e;
    }
  };
  return { ch, conn, proc, send, next };
}

Deno.test("the launcher runs trials one after another and says how each ended; exit ends it", async () => {
  const { ch, proc, send, next } = await startLauncher();
  try {
    await send({ type: "run", id: "a", script: "exit 3" });
    equal((await next())?.code, 3);
    // A second run while one runs is refused: one trial at a time.
    await send({ type: "run", id: "b", script: "sleep 0.5; exit 0" });
    await send({ type: "run", id: "c", script: "exit 0" });
    const first = await next();
    equal(first?.id, "c");
    equal(first?.code, 125);
    const second = await next();
    equal(second?.id, "b");
    equal(second?.code, 0);
    await send({ type: "exit" });
    equal((await proc.status).code, 0);
  } finally {
    ch.close();
    await proc.stdout.cancel();
    await proc.stderr.cancel();
  }
});

Deno.test("kill reaches the trial's whole process group; the launcher then takes the next trial", async () => {
  const { ch, conn, proc, send, next } = await startLauncher();
  const pidFile = await Deno.makeTempFile();
  try {
    // The trial starts a grandchild that ignores nothing: SIGTERM to the group ends both.
    await send({ type: "run", id: "t", script: `sleep 60 & echo $! > ${pidFile}; wait` });
    let grandchild = 0;
    for (let i = 0; i < 100 && !grandchild; i++) {
      await new Promise((r) => setTimeout(r, 50));
      grandchild = Number(await Deno.readTextFile(pidFile)) || 0;
    }
    assert(grandchild > 0, "the trial started");
    await send({ type: "kill", id: "t", signal: "SIGTERM" });
    const e = await next();
    equal(e?.id, "t");
    equal(e?.signal, "SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    equal(alive(grandchild), false, "the trial's child died with it");
    // Kills for another id are ignored; the next trial runs.
    await send({ type: "kill", id: "other", signal: "SIGKILL" });
    await send({ type: "run", id: "u", script: "exit 0" });
    equal((await next())?.code, 0);
  } finally {
    conn.close();
    ch.close();
    await proc.status;
    await proc.stdout.cancel();
    await proc.stderr.cancel();
    await Deno.remove(pidFile);
  }
});

Deno.test("when the driver goes away the launcher kills its running trial and exits", async () => {
  const { ch, conn, proc, send } = await startLauncher();
  const pidFile = await Deno.makeTempFile();
  try {
    await send({ type: "run", id: "t", script: `echo $$ > ${pidFile}; exec sleep 60` });
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pid = Number(await Deno.readTextFile(pidFile)) || 0;
    }
    assert(pid > 0);
    conn.close();
    const st = await proc.status;
    equal(st.code, 1);
    await new Promise((r) => setTimeout(r, 200));
    equal(alive(pid), false, "the running trial died with its launcher");
  } finally {
    ch.close();
    await proc.stdout.cancel();
    await proc.stderr.cancel();
    await Deno.remove(pidFile);
  }
});

Deno.test("the launcher refuses to start without the driver's variables", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-env", LAUNCHER],
    env: { NO_COLOR: "1" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 2);
  match(new TextDecoder().decode(out.stderr), /started by the tunebox driver/);
});

Deno.test("with output: true a trial's stdout and stderr reach the driver before its end", async () => {
  const { ch, conn, proc, send } = await startLauncher();
  try {
    await send({ type: "run", id: "o", script: "echo out; echo err >&2; exit 4", output: true });
    let text = "";
    let code: number | undefined;
    for (;;) {
      const r = await conn.messages.next();
      if (r.done) break;
      const o = launcherOutput(r.value);
      if (o?.id === "o") text += o.text;
      const e = launcherEnded(r.value);
      if (e) {
        code = e.code;
        break;
      }
    }
    equal(code, 4);
    match(text, /out/);
    match(text, /err/);
    await send({ type: "exit" });
    equal((await proc.status).code, 0);
  } finally {
    conn.close();
    ch.close();
    await proc.stdout.cancel();
    await proc.stderr.cancel();
  }
});
