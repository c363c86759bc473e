/**
 * The versioned messages between the driver and a sandboxed trial: newline-delimited JSON on a
 * channel of the trial's own (a unix socket only it is granted, or TLS for remote trials; see
 * `channel.ts`). The trial's own stdout/stderr stay free for the user's logs.
 *
 * @module
 */

import type { Config, JsonValue } from "./trial.ts";
import type { GroupInfo } from "./collectives.ts";

/** The protocol version; a trial speaking another version is refused with a clear error. */
export const PROTOCOL_VERSION = 1;

/** Trial -> driver. */
export type TrialMessage =
  | {
    readonly v: number;
    readonly type: "hello";
    readonly trialId: string;
    readonly token: string;
    /** The node it runs on (a worker of a multi-worker trial on a cluster). */
    readonly node?: string;
  }
  | {
    readonly v: number;
    readonly type: "report";
    readonly seq: number;
    readonly metrics: Record<string, JsonValue>;
    /** Seconds since the trial process booted. */
    readonly elapsed: number;
    /** A staging folder holding this report's checkpoint. */
    readonly checkpointDir?: string;
  }
  | { readonly v: number; readonly type: "done" }
  /**
   * A piece of a checkpoint's file, when checkpoints are streamed (see `start`): a trial sends its
   * checkpoint's files this way, then the report that carries the checkpoint.
   */
  | FileChunk
  /** A heartbeat (remote channels): says the trial is alive while it computes. */
  | { readonly v: number; readonly type: "ping" }
  | {
    readonly v: number;
    readonly type: "error";
    readonly name: string;
    readonly message: string;
    readonly stack?: string;
    /** Set when the trainable module itself is unusable (missing default export). */
    readonly fatal?: boolean;
  };

/** A piece of one file of a streamed checkpoint (either way). */
export interface FileChunk {
  /** The protocol version. */
  readonly v: number;
  /** `"file"`. */
  readonly type: "file";
  /** The file's path inside the checkpoint folder, `/`-separated, relative. */
  readonly path: string;
  /** Where the piece goes in the file; pieces of a file come in order, from 0. */
  readonly offset: number;
  /** The bytes, base64. */
  readonly data: string;
}

/** Driver -> trial. */
export type DriverMessage =
  | {
    readonly v: number;
    readonly type: "start";
    readonly trialId: string;
    readonly config: Config;
    readonly iteration: number;
    readonly checkpoint?: string;
    readonly trialDir: string;
    /** The CPUs and GPUs the trial holds (per worker): `session.resources`. @default 1 CPU, 0 GPU */
    readonly resources?: { readonly cpu: number; readonly gpu: number };
    /** Set for a worker of a multi-worker trial: its rank and its ring neighbours. */
    readonly group?: GroupInfo;
    /**
     * Set when the trial's folder is not on the driver's file system (a cluster without shared
     * storage): checkpoints then travel over the channel as {@linkcode FileChunk}s of at most
     * `chunkBytes` bytes each. The trial sends a checkpoint's files before the report carrying
     * it; when `checkpoint` is set, the driver sends that checkpoint's files (into `checkpoint`,
     * a folder on the trial's side) after `start`, then `restored`.
     */
    readonly streamCheckpoints?: { readonly chunkBytes: number };
  }
  | FileChunk
  /** The end of a streamed checkpoint to restore (see `start`). */
  | { readonly v: number; readonly type: "restored" }
  | {
    readonly v: number;
    readonly type: "ack";
    readonly seq: number;
    readonly decision: "continue" | "stop";
  }
  | { readonly v: number; readonly type: "stop" }
  /** A heartbeat (remote channels): a trial that hears nothing for a while exits. */
  | { readonly v: number; readonly type: "ping" };

/**
 * Encodes one message as a line. Non-finite numbers become the strings `"NaN"`, `"Infinity"`
 * and `"-Infinity"` so that a NaN metric survives the trip (JSON has no NaN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLine } from "./protocol.ts";
 * assert.equal(encodeLine({ x: NaN }), '{"x":"NaN"}\n');
 * ```
 */
export function encodeLine(message: unknown): string {
  return toJson(message) + "\n";
}

/**
 * A `JSON.stringify` replacer that keeps NaN and ±Infinity as strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nonFiniteReplacer } from "./protocol.ts";
 * assert.equal(JSON.stringify([Infinity], nonFiniteReplacer), '["Infinity"]');
 * ```
 */
export function nonFiniteReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

/**
 * `JSON.stringify` with NaN and ±Infinity kept as strings (as {@linkcode nonFiniteReplacer}
 * does), at the cost of a plain `JSON.stringify` when there are none: the replacer, a call per
 * key, runs only when the plain text has a `null` that may stand for one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toJson } from "./protocol.ts";
 *
 * assert.equal(toJson({ loss: 0.5, tag: null }), '{"loss":0.5,"tag":null}');
 * assert.equal(toJson({ loss: NaN, best: -Infinity }), '{"loss":"NaN","best":"-Infinity"}');
 * ```
 */
export function toJson(value: unknown): string {
  const plain: string | undefined = JSON.stringify(value);
  if (plain === undefined) return String(plain);
  return plain.includes("null") ? JSON.stringify(value, nonFiniteReplacer) : plain;
}

/** The default longest message line: 1 MiB (a report's size cap). */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

/** Raised when a peer breaks the framing (a line too long, or not JSON). */
export class ChannelError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ChannelError";
  }
}

/**
 * Where {@linkcode readBoundedLines} reads from: a byte stream, or a connection read directly
 * (`Deno.Conn` and `Deno.TlsConn` have `read`). Reading a connection directly reuses one buffer
 * instead of the stream's new 64 KiB chunk per read, and skips the stream machinery: about 3×
 * the round trips per second (bench/channel_bench.ts).
 */
export type LineSource =
  | ReadableStream<Uint8Array>
  | { read(p: Uint8Array): Promise<number | null> };

/**
 * Splits a byte stream into JSON values, one per line, refusing lines longer than `maxBytes`.
 * Each chunk is scanned once for a newline, so a long line costs O(its length), and the buffer
 * never holds more than `maxBytes`. `maxBytes` may be an object whose `max` changes later (a
 * connection allows longer lines once it is authenticated).
 *
 * @throws {ChannelError} on a line longer than `maxBytes` or one that is not JSON.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBoundedLines } from "./protocol.ts";
 * const stream = ReadableStream.from([new TextEncoder().encode('{"a":1}\n{"a":2}\n')]);
 * assert.deepEqual(await Array.fromAsync(readBoundedLines(stream, 1024)), [{ a: 1 }, { a: 2 }]);
 * ```
 */
export async function* readBoundedLines(
  source: LineSource,
  maxBytes: number | { max: number } = DEFAULT_MAX_LINE_BYTES,
): AsyncGenerator<unknown> {
  const limit = typeof maxBytes === "number" ? { max: maxBytes } : maxBytes;
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let size = 0;
  // A connection is read into one reused buffer: a partial line is copied out before the next
  // read overwrites it. A stream hands over a fresh chunk each time.
  // (A stream is told by its getReader, not by `instanceof ReadableStream`: reading that global
  // loads the web streams, which a trial process otherwise never needs.)
  const direct = !("getReader" in source);
  const buffer = direct ? new Uint8Array(64 * 1024) : undefined;
  const reader = direct ? undefined : (source as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      let chunk: Uint8Array;
      if (buffer) {
        const n = await (source as { read(p: Uint8Array): Promise<number | null> }).read(buffer);
        if (n === null) return;
        chunk = buffer.subarray(0, n);
      } else {
        const { value, done } = await reader!.read();
        if (done) return;
        chunk = value;
      }
      for (;;) {
        const nl = chunk.indexOf(10);
        if (nl < 0) {
          size += chunk.length;
          if (size > limit.max) throw tooLong(limit.max);
          if (chunk.length) parts.push(buffer ? chunk.slice() : chunk);
          break;
        }
        size += nl;
        if (size > limit.max) throw tooLong(limit.max);
        parts.push(chunk.subarray(0, nl));
        const line = parts.length === 1 ? parts[0] : concat(parts, size);
        parts = [];
        size = 0;
        chunk = chunk.subarray(nl + 1);
        const text = decoder.decode(line);
        if (!text.trim()) continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          throw new ChannelError(
            `a message line is not JSON: ${JSON.stringify(text.slice(0, 60))}`,
          );
        }
        yield value;
      }
    }
  } finally {
    reader?.releaseLock();
  }
}

/** Where {@linkcode lineSender} writes: a connection (`Deno.Conn`) or a stream's writer. */
export type LineSink =
  | { write(p: Uint8Array): Promise<number> }
  | WritableStreamDefaultWriter<Uint8Array>;

/**
 * Sends messages as lines, coalescing: messages sent while a write is under way go out together
 * in the next write (a report and a heartbeat, or many acks, cost one system call). Messages
 * keep their order. The returned promise resolves once the message is written, and rejects when
 * the connection failed (then every later send rejects too).
 *
 * @param sink a connection written directly (partial writes are continued), or a stream writer.
 * @returns `send(message)`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineSender } from "./protocol.ts";
 * const chunks: string[] = [];
 * const send = lineSender({
 *   write: (p: Uint8Array) => (chunks.push(new TextDecoder().decode(p)), Promise.resolve(p.length)),
 * });
 * send({ a: 1 });
 * await send({ a: 2 });
 * assert.deepEqual(chunks, [ '{"a":1}\n', '{"a":2}\n' ]);
 * ```
 */
export function lineSender(sink: LineSink): (message: unknown) => Promise<void> {
  const encoder = new TextEncoder();
  // A stream writer is told by its releaseLock, not by `instanceof WritableStreamDefaultWriter`:
  // reading that global loads the web streams, which a trial process otherwise never needs (several
  // ms of its start-up).
  const direct = !("releaseLock" in sink);
  let pending: string[] = [];
  let flushing: Promise<void> | undefined;
  let failed: unknown;
  const writeAll = async (bytes: Uint8Array): Promise<void> => {
    if (!direct) return await (sink as WritableStreamDefaultWriter<Uint8Array>).write(bytes);
    let off = 0;
    while (off < bytes.length) {
      off += await (sink as { write(p: Uint8Array): Promise<number> }).write(bytes.subarray(off));
    }
  };
  const flush = async (): Promise<void> => {
    try {
      while (pending.length) {
        const text = pending.length === 1 ? pending[0] : pending.join("");
        pending = [];
        await writeAll(encoder.encode(text));
      }
    } catch (e) {
      failed = e;
      pending = [];
      throw e;
    } finally {
      flushing = undefined;
    }
  };
  return (message) => {
    if (failed !== undefined) return Promise.reject(failed);
    pending.push(encodeLine(message));
    return flushing ??= flush();
  };
}

function tooLong(max: number): ChannelError {
  return new ChannelError(
    `a message line is longer than ${max} bytes (reports are capped; report fewer or smaller ` +
      `metrics, and save large data as files or checkpoints)`,
  );
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

/**
 * Turns the strings `"NaN"`, `"Infinity"`, `"-Infinity"` of a metrics object back into numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reviveMetrics } from "./protocol.ts";
 * assert.ok(Number.isNaN(reviveMetrics({ loss: "NaN" }).loss));
 * ```
 */
export function reviveMetrics(metrics: Record<string, JsonValue>): Record<string, JsonValue> {
  let out: Record<string, JsonValue> | undefined;
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v === "string" && v in NON_FINITE) (out ??= { ...metrics })[k] = NON_FINITE[v];
  }
  return out ?? metrics;
}

/**
 * Makes text from a trial safe to print: terminal control characters (C0 but newline and tab,
 * DEL, C1, and the bidirectional overrides) are shown as `\xNN`/`\uNNNN` escapes instead of
 * reaching the terminal, so a metric name or an error message cannot set the title, clear the
 * screen or write the clipboard (OSC 52).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./protocol.ts";
 * // The escape sequence comes out as inert text.
 * assert.equal(printable("loss\x1b]52;c;aGk=\x07"), "loss\\x1b]52;c;aGk=\\x07");
 * ```
 */
export function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u${code.toString(16).padStart(4, "0")}`;
    },
  );
}

/** The longest path a {@linkcode FileChunk} may name. */
const MAX_CHUNK_PATH = 1024;

/**
 * What is wrong with a {@linkcode FileChunk}'s path, if anything: it must be relative,
 * `/`-separated, without empty, `.` or `..` segments, backslashes or control characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkPathProblem } from "./protocol.ts";
 * assert.equal(chunkPathProblem("weights/model.bin"), undefined);
 * assert.match(chunkPathProblem("../x")!, /\.\./); // a sentence saying why
 * ```
 */
export function chunkPathProblem(path: unknown): string | undefined {
  if (typeof path !== "string" || !path) return "a checkpoint file has no path";
  if (path.length > MAX_CHUNK_PATH) {
    return `a checkpoint file's path is longer than ${MAX_CHUNK_PATH} characters`;
  }
  // deno-lint-ignore no-control-regex
  if (path.startsWith("/") || /[\\\x00-\x1f\x7f]/.test(path)) {
    return `the checkpoint file path ${
      JSON.stringify(path.slice(0, 80))
    } is not a plain relative path`;
  }
  if (path.split("/").some((s) => s === "" || s === "." || s === "..")) {
    return `the checkpoint file path ${
      JSON.stringify(path.slice(0, 80))
    } has an empty, "." or ".." segment`;
  }
  return undefined;
}

/**
 * Sends every regular file under `dir` as {@linkcode FileChunk}s of at most `chunkBytes` bytes
 * (an empty file as one empty chunk). Symbolic links are skipped: a checkpoint never holds one.
 *
 * @returns the files and bytes sent.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sendFolder } from "./protocol.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "hi");
 * const sent: unknown[] = [];
 * assert.deepEqual(await sendFolder(dir, 1024, async (c) => { sent.push(c); }), { files: 1, bytes: 2 });
 * ```
 */
export async function sendFolder(
  dir: string,
  chunkBytes: number,
  send: (chunk: FileChunk) => Promise<void>,
): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  const buf = new Uint8Array(Math.max(1, Math.floor(chunkBytes)));
  const walk = async (rel: string): Promise<void> => {
    const here = rel ? `${dir}/${rel}` : dir;
    const entries = [];
    for await (const e of Deno.readDir(here)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      if (!e.isFile) continue;
      files++;
      using f = await Deno.open(`${dir}/${path}`);
      let offset = 0;
      for (;;) {
        let n = 0;
        // Fill the whole buffer (a read may return less) so that chunks are full-sized.
        while (n < buf.length) {
          const got = await f.read(buf.subarray(n));
          if (got === null) break;
          n += got;
        }
        if (n > 0 || offset === 0) {
          await send({
            v: PROTOCOL_VERSION,
            type: "file",
            path,
            offset,
            data: buf.subarray(0, n).toBase64(),
          });
        }
        offset += n;
        bytes += n;
        if (n < buf.length) break;
      }
    }
  };
  await walk("");
  return { files, bytes };
}

/**
 * Writes one {@linkcode FileChunk} under `root` (pieces of a file in order: offset 0 creates or
 * truncates it, a later one appends at that offset). The path must pass
 * {@linkcode chunkPathProblem}.
 *
 * @returns the number of bytes written.
 * @throws {ChannelError} for a bad path, bad base64 or an offset that does not follow on.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeChunk } from "./protocol.ts";
 * const root = await Deno.makeTempDir();
 * await writeChunk(root, { v: 1, type: "file", path: "a/b.txt", offset: 0, data: btoa("hi") });
 * assert.equal(await Deno.readTextFile(`${root}/a/b.txt`), "hi");
 * ```
 */
export async function writeChunk(root: string, chunk: FileChunk): Promise<number> {
  const bad = chunkPathProblem(chunk.path);
  if (bad) throw new ChannelError(bad);
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(String(chunk.data));
  } catch {
    throw new ChannelError(`a piece of checkpoint file "${chunk.path}" is not base64`);
  }
  const file = `${root}/${chunk.path}`;
  const slash = file.lastIndexOf("/");
  await Deno.mkdir(file.slice(0, slash), { recursive: true });
  if (chunk.offset === 0) {
    await Deno.writeFile(file, bytes);
    return bytes.length;
  }
  const size = await Deno.lstat(file).then((s) => s.isFile ? s.size : -1, () => -1);
  if (!Number.isSafeInteger(chunk.offset) || size !== chunk.offset) {
    throw new ChannelError(
      `a piece of checkpoint file "${chunk.path}" is at offset ${chunk.offset}, not ${
        Math.max(size, 0)
      }`,
    );
  }
  await Deno.writeFile(file, bytes, { append: true });
  return bytes.length;
}
