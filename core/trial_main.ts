/**
 * The entry point of a sandboxed trial process. The subprocess executor runs this module itself
 * (`deno run <flags> .../core/trial_main.ts`: one main module for every trial of every
 * experiment, so Deno's caches under `DENO_DIR` hold one entry for it, not one per experiment);
 * the cluster executors run a generated wrapper in the experiment's folder that imports it,
 * calls {@linkcode boot}, then runs the user's trainable module through it:
 *
 * ```ts ignore
 * import { boot } from "file:///.../core/trial_main.ts";
 * const trial = await boot();
 * await trial.run();
 * ```
 *
 * Boot connects to the trial's own channel (`TUNEBOX_CHANNEL`: `unix:/private/1.sock`, or
 * `tls:<host>:<port>` with the experiment's CA in `TUNEBOX_CA` for a remote trial;
 * the trial id and a token come in `TUNEBOX_TRIAL_ID` and `TUNEBOX_TOKEN`), waits for the
 * `start` message, and watches stdin: when the driver dies the pipe closes and the trial exits
 * instead of living on as an orphan. `run()` imports the trainable (`TUNEBOX_MODULE`) by a
 * computed specifier, never a literal: Deno then checks read permission for it and for every
 * module, JSON, text or bytes file it imports.
 *
 * A remote executor adds its transport in {@linkcode connectChannel}.
 *
 * @module
 */

// Only protocol.ts and session.ts: whatever a trial imports adds to every trial's start-up.
import { STAGING_DIR } from "./layout.ts";
import {
  lineSender,
  PROTOCOL_VERSION,
  readBoundedLines,
  sendFolder,
  writeChunk,
} from "./protocol.ts";
import type { DriverMessage, TrialMessage } from "./protocol.ts";
import { trainableFn, TrialSession, TrialStopped } from "./session.ts";
import { type Collectives, connectRing } from "./collectives.ts";

/** A booted trial, ready to run its trainable module. */
export interface BootedTrial {
  /**
   * Imports the trainable module (by default the one `TUNEBOX_MODULE` names), runs its default
   * export, reports the outcome and exits.
   */
  run(load?: () => Promise<Record<string, unknown>>): Promise<never>;
}

/**
 * Connects to the driver and waits for the start message.
 *
 * @returns the booted trial.
 * @example
 * ```ts ignore
 * import { boot } from "./trial_main.ts";
 * const trial = await boot();
 * await trial.run();
 * ```
 */
export async function boot(): Promise<BootedTrial> {
  // Kept before user code runs: a trainable that replaces Deno.exit still ends when told to.
  const exit: (code?: number) => never = Deno.exit.bind(Deno);
  const channel = Deno.env.get("TUNEBOX_CHANNEL");
  const trialId = Deno.env.get("TUNEBOX_TRIAL_ID");
  const token = Deno.env.get("TUNEBOX_TOKEN");
  const moduleUrl = Deno.env.get("TUNEBOX_MODULE");
  if (!channel || !trialId || !token) {
    console.error("tunebox: this module is started by the tunebox driver, not by hand");
    exit(2);
  }
  // A local trial's stdin is a pipe from the driver: EOF means the driver died. A remote trial
  // (batch job, Ray job) gets /dev/null there and relies on heartbeats instead.
  // (Only a remote trial is granted this variable: a local one may not even ask for it.)
  const heartbeatMs = channel.startsWith("tls:")
    ? Number(Deno.env.get("TUNEBOX_HEARTBEAT_MS") ?? "0")
    : 0;
  if (channel.startsWith("unix:")) watchStdin(exit);
  // A remote worker of a multi-worker trial (started as one of N tasks, srun -n N) learns its
  // rank from the variable TUNEBOX_RANK_VAR names. (Remote trials only: a local one may not even
  // ask for the variable.)
  const rankVar = channel.startsWith("tls:") ? Deno.env.get("TUNEBOX_RANK_VAR") : undefined;
  // The trainable module loads while the driver has not assigned this process yet (a warm
  // start: the process was started ahead for this trial) or while the start message travels.
  // A computed specifier: Deno checks read permission for the whole imported graph.
  // Not for a remote worker: its network permission narrows once its ring is formed, before
  // any of the trainable's code may run.
  let preloaded: Promise<Record<string, unknown>> | undefined;
  const preload = () => {
    preloaded = moduleUrl && !rankVar ? import(String(moduleUrl)) : undefined;
    preloaded?.catch(() => {}); // reported by run()
  };
  if (channel.startsWith("tls:")) {
    // The first TLS handshake of a process spends ~45 ms of CPU in one-time crypto set-up, on
    // the thread that runs it (the main one). Trigger that set-up on a worker thread now, and
    // load the trainable meanwhile, so a cold remote trial pays it alongside its import instead
    // of before it (bench/slurm_bench.ts --startup).
    warmCrypto();
    preload();
  }
  let conn: Deno.Conn;
  try {
    conn = await connectChannel(channel);
  } catch (e) {
    console.error(`tunebox: cannot reach the driver at ${channel}: ${(e as Error).message}`);
    exit(3);
  }
  // The connection is written and read directly (not through its streams), and messages that
  // meet (a report and a heartbeat) go out in one write: a report is a round trip, so every
  // step on the way counts (bench/channel_bench.ts).
  const sendLine = lineSender(conn);
  const send = (m: TrialMessage): Promise<void> => sendLine(m);
  const acks = new Map<number, (d: "continue" | "stop") => void>();
  let session = undefined as TrialSession | undefined;
  let resolveStart!: (m: Extract<DriverMessage, { type: "start" }>) => void;
  const started = new Promise<Extract<DriverMessage, { type: "start" }>>((r) => (resolveStart = r));

  // A streamed checkpoint to restore arrives after `start` (see the protocol): its pieces are
  // written in order, and `restored` ends it.
  let restoring: Promise<unknown> = Promise.resolve();
  let resolveRestored!: () => void;
  const restored = new Promise<void>((r) => (resolveRestored = r));
  let heard = Date.now();
  if (heartbeatMs > 0) {
    // Both ways: say we are alive, and give the driver up when it went silent (a dead host
    // sends no FIN, so the connection alone would never tell).
    setInterval(() => {
      if (Date.now() - heard > heartbeatMs) {
        console.error(`tunebox: no word from the driver for ${heartbeatMs} ms; exiting`);
        exit(4);
      }
      send({ v: PROTOCOL_VERSION, type: "ping" }).catch(() => {});
    }, Math.max(50, Math.floor(heartbeatMs / 4)));
  }

  (async () => {
    try {
      for await (const raw of readBoundedLines(conn, 64 << 20)) {
        heard = Date.now();
        const m = raw as DriverMessage;
        if (m.type === "start") resolveStart(m);
        else if (m.type === "file") {
          const dir = (await started).checkpoint!;
          restoring = restoring.then(() => writeChunk(dir, m));
          restoring.catch(() => {}); // surfaces where it is awaited, before the trainable runs
        } else if (m.type === "restored") resolveRestored();
        else if (m.type === "ack") {
          acks.get(m.seq)?.(m.decision);
          acks.delete(m.seq);
        } else if (m.type === "stop") session?.abort();
      }
    } catch { /* the driver went away */ }
    // The driver closed the channel: nothing more can be reported.
    exit(1);
  })();

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
    exit(1);
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

  // A worker says its rank in its id; a remote trial says which node it is on.
  // TUNEBOX_NODE_VAR names the variable that holds the node's name.
  const rank = rankVar ? Deno.env.get(rankVar) : undefined;
  const nodeVar = channel.startsWith("tls:")
    ? Deno.env.get("TUNEBOX_NODE_VAR") ?? (rankVar ? "SLURMD_NODENAME" : undefined)
    : undefined;
  const node = nodeVar ? Deno.env.get(nodeVar) : undefined;
  await send({
    v: PROTOCOL_VERSION,
    type: "hello",
    trialId: rank !== undefined ? `${trialId}@${rank}` : trialId,
    token,
    ...(node ? { node } : {}),
  });
  if (!channel.startsWith("tls:")) preload();
  const start = await started;
  if (start.v !== PROTOCOL_VERSION) {
    await send({
      v: PROTOCOL_VERSION,
      type: "error",
      name: "TuneError",
      message: `protocol version ${start.v} is not ${PROTOCOL_VERSION}`,
      fatal: true,
    });
    exit(1);
  }
  const stream = start.streamCheckpoints;
  if (stream && start.checkpoint) {
    try {
      await restored;
      await restoring;
    } catch (e) {
      await send({
        v: PROTOCOL_VERSION,
        type: "error",
        name: "TuneError",
        message: `the checkpoint to restore could not be written into ${start.checkpoint}: ${
          (e as Error).message
        }`,
      }).catch(() => {});
      exit(1);
    }
  }
  const t0 = performance.now();
  let seq = 0;
  let group: Collectives | undefined;
  if (start.group && start.group.worldSize > 1) {
    try {
      group = await connectRing(start.group);
      // Granted to reach a neighbour placed anywhere: narrowed to the one it reached.
      const { next, revokeAfterRing } = start.group;
      const keep = next.hostname.includes(":") ? `[${next.hostname}]` : next.hostname;
      for (const host of revokeAfterRing ?? []) {
        if (host !== `${keep}:${next.port}`) {
          await Deno.permissions.revoke({ name: "net", host });
        }
      }
    } catch (e) {
      const err = e as Error;
      await send({
        v: PROTOCOL_VERSION,
        type: "error",
        name: err.name,
        message: err.message,
      }).catch(() => {});
      exit(1);
    }
  }
  session = new TrialSession(
    {
      trialId,
      config: start.config,
      iteration: start.iteration,
      checkpoint: start.checkpoint,
      trialDir: start.trialDir,
      ...(start.resources ? { resources: start.resources } : {}),
    },
    {
      async send(metrics, checkpointDir) {
        if (stream && checkpointDir) {
          // The driver cannot see this folder: send its files first, then free the space.
          await sendFolder(checkpointDir, stream.chunkBytes, send);
          if (checkpointDir.startsWith(`${start.trialDir}/${STAGING_DIR}/`)) {
            await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
          }
        }
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
        return await answer;
      },
    },
    group,
  );

  return {
    async run(load) {
      let mod: Record<string, unknown>;
      try {
        mod = load ? await load() : await (preloaded ?? import(String(moduleUrl)));
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
      await conn.closeWrite().catch(() => {});
      exit(0);
    },
  };
}

function watchStdin(exit: (code: number) => never): void {
  (async () => {
    // Read directly, not through Deno.stdin.readable: the web streams that would load cost
    // every trial process several ms of start-up (bench/perf_bench.ts).
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* the driver never writes */ }
    } catch { /* closed */ }
    exit(1);
  })();
}

/**
 * Opens the trial's channel to the driver from its `TUNEBOX_CHANNEL` spec. Local trials get
 * `unix:<path>`, a socket only they are granted; a remote executor adds its scheme here (e.g.
 * TLS to the driver with a per-experiment CA).
 *
 * @example
 * ```ts ignore
 * import { connectChannel } from "./trial_main.ts";
 * const conn = await connectChannel("unix:/tmp/tunebox-x/1.sock");
 * ```
 */
export async function connectChannel(spec: string): Promise<Deno.Conn> {
  if (spec.startsWith("unix:")) {
    return await Deno.connect({ transport: "unix", path: spec.slice("unix:".length) });
  }
  if (spec.startsWith("tls:")) {
    // tls:<host>:<port>, the CA (base64 of its PEM) in TUNEBOX_CA.
    const rest = spec.slice("tls:".length);
    const colon = rest.lastIndexOf(":");
    const hostname = rest.slice(0, colon).replace(/^\[|\]$/g, "");
    const port = Number(rest.slice(colon + 1));
    const ca = Deno.env.get("TUNEBOX_CA");
    if (!ca || colon < 0 || !Number.isInteger(port)) {
      throw new TypeError(`tunebox: bad TLS trial channel "${spec}"`);
    }
    const conn = await Deno.connectTls({ hostname, port, caCerts: [atob(ca)] });
    await conn.handshake();
    return conn;
  }
  throw new TypeError(`tunebox: unknown trial channel "${spec}"`);
}

/**
 * Starts the one-time set-up of the crypto library that TLS uses, on one of Deno's worker
 * threads (WebCrypto's EC key generation runs there and needs the same set-up), without waiting
 * for it. The key is thrown away.
 */
function warmCrypto(): void {
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
    .catch(() => {});
}

// Run as the main module (the subprocess executor's trials): boot, then run the trainable.
if (import.meta.main) {
  const trial = await boot();
  await trial.run();
}
