/**
 * The trusted launcher of a pooled Ray job (`rayExecutor({ trialsPerJob })`): the job's
 * entrypoint runs this module, which connects to the driver over the experiment's TLS channel
 * (the driver's CA pinned, a token of its own), and then runs the trials the driver assigns to
 * it one after another. Each trial is its own process: the driver sends the very shell command a
 * trial's own job would have run (`env -i <that trial's variables> deno run <that trial's
 * sandbox flags> ...`), and the launcher runs it with `/bin/sh -c` in a process group of its own,
 * waits for it, and says how it ended. A trial process is never reused, and a trial never gets
 * more than its own flags: the launcher adds nothing to the command.
 *
 * Messages, one JSON object a line. Driver to launcher: `run {id, script}`, `kill {id, signal}`,
 * `exit`, `ping`. Launcher to driver: `hello {trialId, token}` first, then `ended {id, code,
 * signal}` and `ping`. The launcher exits when told to, when the connection closes, or when the
 * driver is silent for the heartbeat time; it kills its running trial's process group first.
 *
 * Run by the job as `deno run --allow-net=<driver> --allow-run=/bin/sh --allow-env <this file>`
 * with `TUNEBOX_CHANNEL`, `TUNEBOX_CA`, `TUNEBOX_TRIAL_ID` (the launcher's id), `TUNEBOX_TOKEN`
 * and `TUNEBOX_HEARTBEAT_MS` set.
 *
 * @module
 */

import { lineSender, PROTOCOL_VERSION, readBoundedLines } from "../../core/protocol.ts";

/** What the driver sends a launcher. */
export type LauncherCommand =
  | {
    readonly type: "run";
    readonly id: string;
    readonly script: string;
    /** Send the trial's output to the driver (`out` messages) instead of the job's log. */
    readonly output?: boolean;
  }
  | {
    readonly type: "kill";
    readonly id: string;
    readonly signal: "SIGTERM" | "SIGKILL";
  }
  | { readonly type: "exit" }
  | { readonly type: "ping" };

/** What a launcher tells the driver about a trial process it ran. */
export interface LauncherEnded {
  /** Always `"ended"`. */
  readonly type: "ended";
  /** The assignment's id. */
  readonly id: string;
  /** The process's exit code (128 + n when a signal n ended it). */
  readonly code: number;
  /** The signal that ended it, if one did. */
  readonly signal: string | null;
}

/** A piece of a trial's output (stdout and stderr together), forwarded by the launcher. */
export interface LauncherOutput {
  /** Always `"out"`. */
  readonly type: "out";
  /** The assignment's id. */
  readonly id: string;
  /** The text. */
  readonly text: string;
}

/**
 * Checks one message from a launcher: an `out` with a string id and text, or undefined.
 *
 * @param m a parsed message line.
 * @returns the message when it is a well-formed `out`.
 * @example
 * ```ts
 * import { equal } from "#assert";
 * import { launcherOutput } from "./_ray_launcher.ts";
 * equal(launcherOutput({ type: "out", id: "a", text: "hi" })?.text, "hi");
 * equal(launcherOutput({ type: "out", id: "a", text: 1 }), undefined);
 * ```
 */
export function launcherOutput(m: unknown): LauncherOutput | undefined {
  const x = m as Partial<LauncherOutput> | null;
  if (
    !x || typeof x !== "object" || x.type !== "out" ||
    typeof x.id !== "string" ||
    typeof x.text !== "string"
  ) return undefined;
  return { type: "out", id: x.id, text: x.text };
}

/**
 * Checks one message from a launcher: an `ended` with sane fields, or undefined for anything
 * else (pings and garbage alike are ignored by the driver).
 *
 * @param m a parsed message line.
 * @returns the message when it is a well-formed `ended`.
 * @example
 * ```ts
 * import { equal } from "#assert";
 * import { launcherEnded } from "./_ray_launcher.ts";
 * equal(launcherEnded({ type: "ended", id: "a", code: 1, signal: null })?.code, 1);
 * equal(launcherEnded({ type: "ended", id: 5, code: 1 }), undefined);
 * ```
 */
export function launcherEnded(m: unknown): LauncherEnded | undefined {
  const x = m as Partial<LauncherEnded> | null;
  if (
    !x || typeof x !== "object" || x.type !== "ended" ||
    typeof x.id !== "string" ||
    !Number.isInteger(x.code) ||
    !(x.signal === null || typeof x.signal === "string")
  ) return undefined;
  return { type: "ended", id: x.id, code: x.code!, signal: x.signal };
}

async function main(): Promise<void> {
  const spec = Deno.env.get("TUNEBOX_CHANNEL") ?? "";
  const ca = Deno.env.get("TUNEBOX_CA");
  const id = Deno.env.get("TUNEBOX_TRIAL_ID");
  const token = Deno.env.get("TUNEBOX_TOKEN");
  const heartbeatMs = Number(Deno.env.get("TUNEBOX_HEARTBEAT_MS") ?? "60000") ||
    60000;
  const m = /^tls:(.+):(\d+)$/.exec(spec);
  if (!m || !ca || !id || !token) {
    console.error(
      "tunebox: the launcher is started by the tunebox driver, not by hand",
    );
    Deno.exit(2);
  }
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.connectTls({
      hostname: m[1].replace(/^\[|\]$/g, ""),
      port: Number(m[2]),
      caCerts: [atob(ca)],
    });
    await conn.handshake();
  } catch (e) {
    console.error(
      `tunebox: cannot reach the driver at ${m[1]}:${m[2]}: ${(e as Error).message}`,
    );
    Deno.exit(3);
  }
  const send = lineSender(conn);
  await send({ v: PROTOCOL_VERSION, type: "hello", trialId: id, token });

  let child: { id: string; proc: Deno.ChildProcess } | undefined;
  const signalGroup = (sig: "TERM" | "KILL", pid = child?.proc.pid) => {
    if (pid) killGroup(pid, sig);
  };
  const quit = async (code: number): Promise<never> => {
    signalGroup("KILL");
    // Give the kill a moment to be sent before this process (and its pipes) go.
    await new Promise((r) => setTimeout(r, 100));
    Deno.exit(code);
  };
  let last = Date.now();
  const beat = setInterval(() => {
    if (Date.now() - last > heartbeatMs) {
      console.error(
        `tunebox: the driver was silent for ${heartbeatMs} ms; the launcher exits`,
      );
      quit(4);
      return;
    }
    send({ v: PROTOCOL_VERSION, type: "ping" }).catch(() => quit(4));
  }, Math.max(50, Math.floor(heartbeatMs / 4)));

  try {
    for await (const raw of readBoundedLines(conn)) {
      last = Date.now();
      const c = raw as LauncherCommand;
      if (c?.type === "exit") break;
      if (c?.type === "kill" && child?.id === c.id) {
        signalGroup(c.signal === "SIGKILL" ? "KILL" : "TERM");
      } else if (
        c?.type === "run" && typeof c.id === "string" &&
        typeof c.script === "string"
      ) {
        if (child) {
          // One trial at a time: the driver never asks for two; refuse the second.
          await send({ type: "ended", id: c.id, code: 125, signal: null });
          continue;
        }
        const forward = c.output === true;
        const proc = new Deno.Command("/bin/sh", {
          args: ["-c", c.script],
          stdin: "null",
          stdout: forward ? "piped" : "inherit",
          stderr: forward ? "piped" : "inherit",
          // A process group of its own: a kill reaches the trial and anything it started.
          detached: true,
        }).spawn();
        const mine = { id: c.id, proc };
        child = mine;
        // Without shared storage the trial's output goes to the driver, as it comes.
        const pumps = forward
          ? Promise.all(
            [proc.stdout, proc.stderr].map((s) => pump(s, c.id, send)),
          )
          : Promise.resolve([]);
        proc.status.then(async (st) => {
          // Leftovers of the trial's process group, if any.
          signalGroup("KILL", proc.pid);
          // Its output first (a leftover holding a pipe does not hold the trial's end up).
          await Promise.race([pumps, new Promise((r) => setTimeout(r, 2000))]);
          if (child === mine) child = undefined;
          await send({
            type: "ended",
            id: mine.id,
            code: st.code,
            signal: st.signal ?? null,
          })
            .catch(() => {});
        });
      }
    }
  } catch { /* the connection broke */ }
  clearInterval(beat);
  // Told to exit while idle, or the driver is gone: a running trial dies with the launcher.
  await quit(child ? 1 : 0);
}

/** Sends a stream's text to the driver in pieces of at most 64 KiB. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  id: string,
  send: (m: unknown) => Promise<void>,
): Promise<void> {
  const dec = new TextDecoder();
  try {
    for await (const chunk of stream) {
      const text = dec.decode(chunk, { stream: true });
      for (let i = 0; i < text.length; i += 65536) {
        await send({ type: "out", id, text: text.slice(i, i + 65536) });
      }
    }
  } catch { /* the trial is gone */ }
}

/**
 * Signals a process group through the shell's `kill` builtin: `Deno.kill` needs `--allow-run`
 * for every program, and the launcher is granted `/bin/sh` only.
 */
function killGroup(pid: number, sig: "TERM" | "KILL"): void {
  try {
    new Deno.Command("/bin/sh", {
      args: ["-c", `kill -${sig} -${pid} 2>/dev/null`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().status.catch(() => {});
  } catch { /* cannot spawn: nothing to do */ }
}

if (import.meta.main) await main();
