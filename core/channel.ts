/**
 * The driver's side of the trial channel: an authenticated, bounded message connection to one
 * trial, whatever carries it. This is the seam between the runner's protocol and an executor's
 * transport:
 *
 * - An executor owns the transport. The local subprocess executor gives each trial its own unix
 *   socket in a private folder that only that trial is granted; a remote executor (Slurm, Ray)
 *   listens on TLS and tells trials apart by their per-trial tokens. Either way it wraps the
 *   listener in a {@linkcode TrialChannelServer}, calls {@linkcode TrialChannelServer.expect}
 *   with the trial's id and token before starting it, and gets back a
 *   {@linkcode TrialConnection} once that trial said `hello` with the right token.
 * - {@linkcode driveTrial} then speaks the protocol over the connection: it sends
 *   `start`, turns each `report` into a {@linkcode TrialListener.report} call and an `ack`, and
 *   returns how the trial ended. Everything the trial sends is checked: a malformed message
 *   fails that trial alone.
 *
 * Everything here treats the other end as hostile: lines are bounded (and only new bytes are
 * scanned for the newline), connections that do not authenticate in time are closed, at most a
 * few may wait unauthenticated, and no handler can throw into the accept loop.
 *
 * @module
 */

import { STAGING_DIR } from "./layout.ts";
import {
  ChannelError,
  chunkPathProblem,
  DEFAULT_MAX_LINE_BYTES,
  lineSender,
  PROTOCOL_VERSION,
  readBoundedLines,
  reviveMetrics,
  sendFolder,
  writeChunk,
} from "./protocol.ts";
import type { DriverMessage, TrialMessage } from "./protocol.ts";
import type { Ack, TrialExit, TrialJob, TrialListener } from "./plugin.ts";
import type { JsonValue } from "./trial.ts";
import { parseDenial } from "./denial.ts";
import type { GroupInfo } from "./collectives.ts";
import { join } from "./_path.ts";

/** Bounds on what a trial (or anything that connects) may send. */
export interface ChannelLimits {
  /** The longest message line, in bytes (a report's size). @default 1048576 (1 MiB) */
  readonly maxLineBytes?: number;
  /** How long a new connection has to say `hello` with a valid token. @default 10000 */
  readonly authTimeoutMs?: number;
  /** Connections that may wait unauthenticated at once; more are closed at once. @default 16 */
  readonly maxUnauthenticated?: number;
  /**
   * Told about every refused connection, with the reason in words (wrong token, a trial already
   * connected or finished, a failed TLS handshake, ...) and the peer's address when known.
   * @default refusals are only counted
   */
  readonly onRefuse?: (reason: string, peer: string) => void;
}

export { ChannelError, DEFAULT_MAX_LINE_BYTES, readBoundedLines };

/** A stream the channel runs on: a `Deno.Conn` (unix, TCP or TLS) has this shape. */
export interface ByteConn {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes both directions. */
  close(): void;
  /** Reads into `p` directly (a `Deno.Conn` has it): used instead of `readable` when present. */
  read?(p: Uint8Array): Promise<number | null>;
  /** Writes from `p` directly (a `Deno.Conn` has it): used instead of `writable` when present. */
  write?(p: Uint8Array): Promise<number>;
}

/** A connection's bytes in: read directly when it can be, else through its stream. */
function source(conn: ByteConn): ReadableStream<Uint8Array> | {
  read(p: Uint8Array): Promise<number | null>;
} {
  return typeof conn.read === "function"
    ? { read: (p: Uint8Array) => conn.read!(p) }
    : conn.readable;
}

/** An authenticated message connection to one trial. */
export interface TrialConnection {
  /** The trial it belongs to. */
  readonly trialId: string;
  /**
   * The node the trial says (in its `hello`) it runs on, when a cluster executor asked it to
   * (a worker of a multi-worker trial on Slurm): untrusted, used only to route its ring.
   */
  readonly node?: string;
  /** Messages after `hello`, parsed but not yet checked (see {@linkcode checkTrialMessage}). */
  readonly messages: AsyncIterator<unknown>;
  /** Sends a message; never throws (a dead peer is noticed by the reader). */
  send(message: DriverMessage): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

interface Expected {
  token: string;
  resolve: (c: TrialConnection) => void;
}

/**
 * Accepts connections on any listener, authenticates each by its `hello` (trial id and token),
 * and hands it to the trial that was expected. Nothing a peer does can throw out of the accept
 * loop: running out of file descriptors pauses accepting briefly, a peer that does not say
 * `hello` in time or says it wrong is closed, and at most `maxUnauthenticated` peers wait.
 *
 * @example
 * ```ts ignore
 * import { TrialChannelServer } from "./channel.ts";
 * const server = new TrialChannelServer(Deno.listen({ transport: "unix", path: "/tmp/x.sock" }));
 * const conn = await server.expect("a_00000", crypto.randomUUID());
 * ```
 */
export class TrialChannelServer {
  readonly #listener: Deno.Listener;
  readonly #limits: Required<Omit<ChannelLimits, "onRefuse">>;
  readonly #onRefuse?: (reason: string, peer: string) => void;
  readonly #expected = new Map<string, Expected>();
  /** Trials that connected, and those whose run ended: a second hello from either is refused. */
  readonly #connected = new Set<string>();
  readonly #finished = new Set<string>();
  #unauthenticated = 0;
  #closed = false;
  /** Connections refused so far (bad hello, timeout, over the cap), for diagnostics. */
  refused = 0;

  /** Starts accepting on `listener`. */
  constructor(listener: Deno.Listener, limits: ChannelLimits = {}) {
    this.#listener = listener;
    this.#limits = {
      maxLineBytes: limits.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      authTimeoutMs: limits.authTimeoutMs ?? 10_000,
      maxUnauthenticated: limits.maxUnauthenticated ?? 16,
    };
    this.#onRefuse = limits.onRefuse;
    this.#acceptLoop();
  }

  /**
   * Waits for the trial `trialId` to connect with `token`. Call it before the trial starts.
   *
   * @returns the authenticated connection.
   */
  expect(trialId: string, token: string): Promise<TrialConnection> {
    this.#connected.delete(trialId);
    this.#finished.delete(trialId);
    return new Promise((resolve) => this.#expected.set(trialId, { token, resolve }));
  }

  /** Stops waiting for a trial (it exited, connected or not): its token is refused from now on. */
  forget(trialId: string): void {
    this.#expected.delete(trialId);
    this.#connected.delete(trialId);
    this.#finished.add(trialId);
  }

  #refuse(conn: Deno.Conn | ByteConn, reason: string): void {
    this.refused++;
    if (this.#onRefuse) {
      const a = (conn as Partial<Deno.Conn>).remoteAddr;
      const peer = a && "hostname" in a ? `${a.hostname}:${a.port}` : a?.transport ?? "?";
      try {
        this.#onRefuse(reason, peer);
      } catch { /* a logger must not break the accept loop */ }
    }
    closeQuietly(conn);
  }

  /** Stops accepting; connections already handed out stay open. */
  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed */ }
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        // EMFILE/ENFILE and friends: back off and keep serving.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#unauthenticated >= this.#limits.maxUnauthenticated) {
        this.#refuse(conn, "too many connections waiting to authenticate");
        continue;
      }
      this.#unauthenticated++;
      this.#authenticate(conn).catch(() => closeQuietly(conn)).finally(() =>
        this.#unauthenticated--
      );
    }
  }

  async #authenticate(conn: ByteConn): Promise<void> {
    const limit = { max: Math.min(this.#limits.maxLineBytes, 4096) };
    const messages = readBoundedLines(source(conn), limit);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), this.#limits.authTimeoutMs);
    });
    const firstP = messages.next();
    firstP.catch(() => {}); // a reset after the timeout must not surface anywhere
    let first: IteratorResult<unknown> | "timeout";
    let failure = "";
    try {
      first = await Promise.race([firstP, timeout]);
      if (first === "timeout") failure = `no hello within ${this.#limits.authTimeoutMs} ms`;
    } catch (e) {
      first = "timeout";
      failure = e instanceof ChannelError
        ? e.message
        : `the connection failed before hello (${(e as Error)?.message ?? e})`;
    } finally {
      clearTimeout(timer);
    }
    const hello = first === "timeout" || first.done ? undefined : first.value;
    const h = hello as Partial<Extract<TrialMessage, { type: "hello" }>> | undefined;
    const expected = h && typeof h === "object" && h.type === "hello" &&
        typeof h.trialId === "string" && typeof h.token === "string"
      ? this.#expected.get(h.trialId)
      : undefined;
    if (!expected || !h || !timingSafeEqual(expected.token, h.token!)) {
      const id = h && typeof h.trialId === "string" ? JSON.stringify(h.trialId.slice(0, 64)) : "";
      const reason = failure
        ? failure
        : !h || h.type !== "hello" || typeof h.token !== "string"
        ? "the first message is not a hello"
        : expected
        ? `wrong token for trial ${id}`
        : this.#connected.has(h.trialId!)
        ? `trial ${id} is already connected (a second connection with its token)`
        : this.#finished.has(h.trialId!)
        ? `trial ${id} has finished (its token is spent)`
        : `no trial ${id} is expected`;
      this.#refuse(conn, reason);
      messages.return(undefined).catch(() => {});
      return;
    }
    this.#expected.delete(h.trialId!);
    this.#connected.add(h.trialId!);
    // Authenticated: from now on a line may be as long as a report may be.
    limit.max = this.#limits.maxLineBytes;
    const node = (h as { node?: unknown }).node;
    const wrapped = wrapConnection(h.trialId!, conn, messages);
    expected.resolve(
      typeof node === "string" && /^[\w.-]{1,255}$/.test(node) ? { ...wrapped, node } : wrapped,
    );
  }
}

/**
 * Wraps a byte stream whose peer is known (already authenticated, or a private pipe) as a
 * {@linkcode TrialConnection}. `messages` is the line limit, or a reader already started on
 * `conn.readable` (as after `hello`).
 *
 * @example
 * ```ts ignore
 * import { wrapConnection } from "./channel.ts";
 * const conn = wrapConnection("a_00000", await Deno.connect({ transport: "unix", path }), 1 << 20);
 * ```
 */
export function wrapConnection(
  trialId: string,
  conn: ByteConn,
  messages: number | AsyncIterator<unknown> = DEFAULT_MAX_LINE_BYTES,
): TrialConnection {
  // Written directly when the connection can be, with messages that meet coalesced into one
  // write (an ack and a heartbeat, say).
  const send = lineSender(
    typeof conn.write === "function"
      ? { write: (p: Uint8Array) => conn.write!(p) }
      : conn.writable.getWriter(),
  );
  return {
    trialId,
    messages: typeof messages === "number" ? readBoundedLines(source(conn), messages) : messages,
    send(m) {
      return send(m).catch(() => {});
    },
    close() {
      closeQuietly(conn);
    },
  };
}

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const MAX_TEXT = 8192;

/**
 * Checks one message from a trial; returns it typed, or a description of what is wrong. Metric
 * values must be JSON, `__proto__` keys are refused, texts are cut to 8 KiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTrialMessage } from "./channel.ts";
 * const ok = { v: 1, type: "report", seq: 1, metrics: {}, elapsed: 0 };
 * assert.equal(typeof checkTrialMessage(ok), "object");
 * assert.equal(typeof checkTrialMessage({ v: 1, type: "report" }), "string"); // what is wrong
 * ```
 */
export function checkTrialMessage(m: unknown): TrialMessage | string {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "a message is not an object";
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case "report": {
      if (!Number.isSafeInteger(o.seq)) return "a report has no integer seq";
      if (typeof o.metrics !== "object" || o.metrics === null || Array.isArray(o.metrics)) {
        return "a report's metrics are not an object";
      }
      const shape = metricsShape(o.metrics);
      if (shape) return shape;
      if (typeof o.elapsed !== "number" || !Number.isFinite(o.elapsed) || o.elapsed < 0) {
        return "a report's elapsed time is not a number >= 0";
      }
      if (o.checkpointDir !== undefined && typeof o.checkpointDir !== "string") {
        return "a report's checkpointDir is not a string";
      }
      return {
        v: Number(o.v),
        type: "report",
        seq: o.seq as number,
        metrics: o.metrics as Record<string, JsonValue>,
        elapsed: o.elapsed,
        ...(o.checkpointDir !== undefined ? { checkpointDir: o.checkpointDir as string } : {}),
      };
    }
    case "done":
      return { v: Number(o.v), type: "done" };
    case "ping":
      return { v: Number(o.v), type: "ping" };
    case "file": {
      const bad = chunkPathProblem(o.path);
      if (bad) return bad;
      if (!Number.isSafeInteger(o.offset) || (o.offset as number) < 0) {
        return "a checkpoint file piece has no offset >= 0";
      }
      if (typeof o.data !== "string") return "a checkpoint file piece has no data";
      return {
        v: Number(o.v),
        type: "file",
        path: o.path as string,
        offset: o.offset as number,
        data: o.data,
      };
    }
    case "error":
      return {
        v: Number(o.v),
        type: "error",
        name: text(o.name, "Error"),
        message: text(o.message, ""),
        ...(typeof o.stack === "string" ? { stack: text(o.stack, "") } : {}),
        ...(o.fatal === true ? { fatal: true } : {}),
      };
    default:
      return `unknown message type ${JSON.stringify(String(o.type).slice(0, 40))}`;
  }
}

function text(v: unknown, fallback: string): string {
  const s = typeof v === "string" ? v : fallback;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}… (cut)` : s;
}

const MAX_DEPTH = 32;

/** What is wrong with a report's metrics: a `__proto__` key, or nesting too deep to walk. */
function metricsShape(v: unknown, depth = 0): string | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  if (depth >= MAX_DEPTH) return `a report's metrics nest deeper than ${MAX_DEPTH} levels`;
  if (Array.isArray(v)) {
    for (const x of v) {
      const bad = metricsShape(x, depth + 1);
      if (bad) return bad;
    }
    return undefined;
  }
  for (const k of Object.keys(v)) {
    if (k === "__proto__") return 'a report has a "__proto__" key';
    const bad = metricsShape((v as Record<string, unknown>)[k], depth + 1);
    if (bad) return bad;
  }
  return undefined;
}

/** What {@linkcode driveTrial} found out. */
export interface Conversation {
  /** How the trial said it ended (`done` or `error`), if it said so. */
  readonly outcome?: TrialExit;
  /** Set when the trial broke the protocol: the executor should kill it. */
  readonly broken?: string;
}

/**
 * Checkpoints over the channel, for a trial whose folder is not on the driver's file system
 * (a cluster without shared storage).
 */
export interface StreamCheckpoints {
  /**
   * The trial's folder on the driver (`TrialJob.workDir` there): streamed checkpoints are
   * written into its `.staging` before the report that commits them.
   */
  readonly localDir: string;
  /** The largest checkpoint a trial may send, in bytes. @default 1073741824 (1 GiB) */
  readonly maxBytes?: number;
  /** The longest message line the connection allows (sizes the pieces). @default 1048576 */
  readonly maxLineBytes?: number;
}

/** The most files one streamed checkpoint may hold. */
const MAX_STREAMED_FILES = 100_000;

/**
 * Speaks the protocol with one authenticated trial: sends `start`, answers every report through
 * `listener`, and returns when the trial ends its side or breaks the protocol. `group` is the worker's place
 * in its ring, for a worker of a multi-worker trial. With `stream`,
 * checkpoints travel over the connection: a restored checkpoint is sent to the trial after
 * `start`, and each checkpoint the trial sends is written into the local trial folder's
 * `.staging` and handed on as the report's `checkpointDir`.
 *
 * @example
 * ```ts ignore
 * import { driveTrial } from "./channel.ts";
 * const { outcome, broken } = await driveTrial(conn, job, listener);
 * ```
 */
export async function driveTrial(
  conn: TrialConnection,
  job: TrialJob,
  listener: TrialListener,
  stream?: StreamCheckpoints,
  group?: GroupInfo,
): Promise<Conversation> {
  const maxLine = stream?.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // base64 makes 4 characters of 3 bytes; leave room for the message around the data.
  const chunkBytes = Math.max(1024, Math.min(512 << 10, Math.floor((maxLine - 4096) * 3 / 4)));
  const restoreDir = stream && job.checkpoint ? `${job.workDir}/.restore` : undefined;
  await conn.send({
    v: PROTOCOL_VERSION,
    type: "start",
    trialId: job.trialId,
    config: job.config,
    iteration: job.iteration,
    ...(job.checkpoint ? { checkpoint: restoreDir ?? job.checkpoint } : {}),
    trialDir: job.workDir,
    resources: { cpu: job.resources?.cpu ?? 1, gpu: job.resources?.gpu ?? 0 },
    ...(stream ? { streamCheckpoints: { chunkBytes } } : {}),
    ...(group ? { group } : {}),
  });
  if (restoreDir) {
    // The trial waits for `restored` before it runs: send the files, then say so.
    const sending = sendFolder(job.checkpoint!, chunkBytes, (c) => conn.send(c))
      .then(() => conn.send({ v: PROTOCOL_VERSION, type: "restored" }));
    sending.catch(() => conn.close()); // a checkpoint that cannot be read: the trial fails
  }
  const maxBytes = stream?.maxBytes ?? 1 << 30;
  let staged: string | undefined;
  let stagedBytes = 0;
  let stagedFiles = new Set<string>();
  let outcome: TrialExit | undefined;
  let lastSeq = 0;
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await conn.messages.next();
    } catch (e) {
      if (e instanceof ChannelError) return { ...(outcome ? { outcome } : {}), broken: e.message };
      break; // the connection was reset: the process died
    }
    if (next.done) break;
    const m = checkTrialMessage(next.value);
    if (typeof m === "string") return { broken: m };
    if (m.type === "file") {
      if (!stream) return { broken: "the trial sent a checkpoint file, but none was asked for" };
      staged ??= join(stream.localDir, STAGING_DIR, `stream_${crypto.randomUUID()}`);
      stagedFiles.add(m.path);
      if (stagedFiles.size > MAX_STREAMED_FILES) {
        return { broken: `a checkpoint has more than ${MAX_STREAMED_FILES} files` };
      }
      try {
        // Bounded before it is written: base64 length tells the size.
        stagedBytes += Math.floor(m.data.length * 3 / 4);
        if (stagedBytes > maxBytes + 3) {
          return {
            broken: `a checkpoint is larger than ${maxBytes} bytes, the most a checkpoint may be ` +
              `when it is streamed to the driver (use shared storage, or raise the limit)`,
          };
        }
        await writeChunk(staged, m);
      } catch (e) {
        if (e instanceof ChannelError) return { broken: e.message };
        throw e;
      }
    } else if (m.type === "report") {
      if (m.seq !== lastSeq + 1) return { broken: `report seq ${m.seq} is not ${lastSeq + 1}` };
      lastSeq = m.seq;
      let checkpointDir = m.checkpointDir;
      if (stream) {
        if (checkpointDir) {
          // An empty checkpoint folder sends no files: it is still a checkpoint.
          staged ??= join(stream.localDir, STAGING_DIR, `stream_${crypto.randomUUID()}`);
          await Deno.mkdir(staged, { recursive: true });
          checkpointDir = staged;
        } else if (staged) await Deno.remove(staged, { recursive: true }).catch(() => {});
        staged = undefined;
        stagedBytes = 0;
        stagedFiles = new Set();
      }
      const ack: Ack = await listener.report({
        metrics: reviveMetrics(m.metrics),
        elapsedS: m.elapsed,
        ...(checkpointDir ? { checkpointDir } : {}),
      });
      await conn.send({ v: PROTOCOL_VERSION, type: "ack", seq: m.seq, decision: ack });
    } else if (m.type === "done") {
      outcome = { kind: "done" };
    } else if (m.type === "error") {
      const denial = m.name === "NotCapable" || m.message.includes("Requires")
        ? parseDenial(m.message)
        : undefined;
      outcome = {
        kind: "error",
        message: `${m.name}: ${m.message}`,
        ...(m.stack ? { stack: m.stack } : {}),
        ...(denial ? { violation: denial } : {}),
        ...(m.fatal ? { fatal: true } : {}),
      };
    }
  }
  return outcome ? { outcome } : {};
}
