/**
 * The entry point of a sandboxed trial process. A generated wrapper imports this module, calls
 * {@linkcode boot}, then runs the user's trainable module through it:
 *
 * ```ts ignore
 * import { boot } from "file:///.../core/trial_main.ts";
 * const trial = await boot();
 * await trial.run(() => import("file:///.../train.ts"));
 * ```
 *
 * Boot connects to the driver's unix socket (its path, the trial id and a token come in
 * `TUNEBOX_*` variables), waits for the `start` message, and watches stdin: when the driver
 * dies the pipe closes and the trial exits instead of living on as an orphan.
 *
 * @module
 */

import { encodeLine, PROTOCOL_VERSION, readLines } from "./protocol.ts";
import type { DriverMessage, TrialMessage } from "./protocol.ts";
import { trainableFn, TrialSession, TrialStopped } from "./session.ts";

/** A booted trial, ready to run its trainable module. */
export interface BootedTrial {
  /** Imports the trainable module, runs its default export, reports the outcome and exits. */
  run(load: () => Promise<Record<string, unknown>>): Promise<never>;
}

/**
 * Connects to the driver and waits for the start message.
 *
 * @returns the booted trial.
 * @example
 * ```ts ignore
 * import { boot } from "./trial_main.ts";
 * const trial = await boot();
 * await trial.run(() => import("./train.ts"));
 * ```
 */
export async function boot(): Promise<BootedTrial> {
  const path = Deno.env.get("TUNEBOX_SOCKET");
  const trialId = Deno.env.get("TUNEBOX_TRIAL_ID");
  const token = Deno.env.get("TUNEBOX_TOKEN");
  if (!path || !trialId || !token) {
    console.error("tunebox: this module is started by the tunebox driver, not by hand");
    Deno.exit(2);
  }
  watchStdin();
  const conn = await Deno.connect({ transport: "unix", path });
  const writer = conn.writable.getWriter();
  const encoder = new TextEncoder();
  let writing = Promise.resolve();
  const send = (m: TrialMessage): Promise<void> => {
    writing = writing.then(() => writer.write(encoder.encode(encodeLine(m))));
    return writing;
  };
  const acks = new Map<number, (d: "continue" | "stop") => void>();
  let session = undefined as TrialSession | undefined;
  let resolveStart!: (m: Extract<DriverMessage, { type: "start" }>) => void;
  const started = new Promise<Extract<DriverMessage, { type: "start" }>>((r) => (resolveStart = r));

  (async () => {
    try {
      for await (const raw of readLines(conn.readable)) {
        const m = raw as DriverMessage;
        if (m.type === "start") resolveStart(m);
        else if (m.type === "ack") {
          acks.get(m.seq)?.(m.decision);
          acks.delete(m.seq);
        } else if (m.type === "stop") session?.abort();
      }
    } catch { /* the driver went away */ }
    // The driver closed the channel: nothing more can be reported.
    Deno.exit(1);
  })();

  await send({ v: PROTOCOL_VERSION, type: "hello", trialId, token });
  const start = await started;
  if (start.v !== PROTOCOL_VERSION) {
    await send({
      v: PROTOCOL_VERSION,
      type: "error",
      name: "TuneError",
      message: `protocol version ${start.v} is not ${PROTOCOL_VERSION}`,
      fatal: true,
    });
    Deno.exit(1);
  }
  const t0 = performance.now();
  let seq = 0;
  session = new TrialSession(
    {
      trialId,
      config: start.config,
      iteration: start.iteration,
      checkpoint: start.checkpoint,
      trialDir: start.trialDir,
    },
    {
      send(metrics, checkpointDir) {
        const s = ++seq;
        const answer = new Promise<"continue" | "stop">((r) => acks.set(s, r));
        send({
          v: PROTOCOL_VERSION,
          type: "report",
          seq: s,
          metrics,
          elapsed: (performance.now() - t0) / 1000,
          ...(checkpointDir ? { checkpointDir } : {}),
        });
        return answer;
      },
    },
  );

  const fail = async (e: unknown, fatal = false): Promise<never> => {
    const err = e instanceof Error ? e : new Error(String(e));
    await send({
      v: PROTOCOL_VERSION,
      type: "error",
      name: err.name,
      message: err.message,
      stack: err.stack,
      fatal,
    })
      .catch(() => {});
    Deno.exit(1);
  };
  globalThis.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    if (ev.reason instanceof TrialStopped) return;
    fail(ev.reason);
  });
  globalThis.addEventListener("error", (ev) => {
    ev.preventDefault();
    fail(ev.error);
  });

  return {
    async run(load) {
      let mod: Record<string, unknown>;
      try {
        mod = await load();
      } catch (e) {
        return await fail(e, true);
      }
      const fn = trainableFn(mod.default);
      if (!fn) {
        return await fail(
          new TypeError(
            "the trainable module has no default export to run: end it with " +
              "`export default defineTrainable(async (config, session) => { ... })`",
          ),
          true,
        );
      }
      try {
        await fn(session!.config, session!);
      } catch (e) {
        if (!(e instanceof TrialStopped)) return await fail(e);
      }
      await send({ v: PROTOCOL_VERSION, type: "done" });
      await writer.close().catch(() => {});
      Deno.exit(0);
    },
  };
}

function watchStdin(): void {
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the driver never writes */ }
    } catch { /* closed */ }
    Deno.exit(1);
  })();
}
