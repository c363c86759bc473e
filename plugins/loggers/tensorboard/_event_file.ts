/**
 * A TensorBoard event-file writer: `tensorboard.Event` protobufs in TFRecord framing, first
 * record `brain.Event:2`, scalars as rank-0 DT_FLOAT tensors with the `scalars` plugin metadata
 * on the first value of each tag in the file.
 *
 * Records are encoded into an in-memory buffer and reach the file on {@linkcode
 * EventFileWriter.flush}, one write call per flush, so a process killed mid-write leaves at most
 * one partial record at the end, which TensorBoard's readers skip.
 *
 * @module
 */

import { ProtoWriter } from "./_proto.ts";
import { RECORD_HEADER, RECORD_OVERHEAD, sealRecord } from "./_tfrecord.ts";

const utf8 = new TextEncoder();

/** `SummaryMetadata{plugin_data{plugin_name: "scalars"}, data_class: DATA_CLASS_SCALAR}`. */
const SCALAR_METADATA = new Uint8Array([
  0x0a,
  0x09,
  0x0a,
  0x07,
  ...utf8.encode("scalars"),
  0x20,
  0x01,
]);
/** Summary.Value field 9 (metadata) key, its length, and the metadata. */
const METADATA_FIELD = new Uint8Array([0x4a, SCALAR_METADATA.length, ...SCALAR_METADATA]);
/** Summary.Value field 8 (tensor): `TensorProto{dtype: DT_FLOAT, tensor_shape{}, float_val[1]}`. */
const TENSOR_PREFIX = new Uint8Array([0x42, 0x0a, 0x08, 0x01, 0x12, 0x00, 0x2a, 0x04]);
const TENSOR_FIELD_LENGTH = TENSOR_PREFIX.length + 4;

/**
 * The hparams plugin's "null tensor" (`metadata.NULL_TENSOR`): DT_FLOAT with shape `[0]`.
 */
export const NULL_TENSOR: Uint8Array = new Uint8Array([0x08, 0x01, 0x12, 0x02, 0x12, 0x00]);

/** The `file_version` every event file starts with. */
export const FILE_VERSION = "brain.Event:2";

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

function putVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}

/**
 * The first event of a file: `Event{wall_time, file_version: "brain.Event:2",
 * source_metadata{writer}}` (the writer name is left out when undefined).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileVersionEvent } from "./_event_file.ts";
 * assert.equal(fileVersionEvent(1700000000).length, 24);
 * ```
 */
export function fileVersionEvent(wallTime: number, writer?: string): Uint8Array {
  const w = new ProtoWriter().double(1, wallTime).string(3, FILE_VERSION);
  if (writer !== undefined) w.message(10, (m) => m.string(1, writer));
  return w.finish();
}

/**
 * `Event{wall_time, step, session_log{status: START}}`. TensorBoard's Python reader takes the
 * first one of a run as its start, and at each later one drops every point of the run at `step`
 * or later read so far (a restart from a checkpoint redoes those steps). The Rust reader drops
 * such points by itself when a step goes back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sessionStartEvent } from "./_event_file.ts";
 * assert.deepEqual(sessionStartEvent(3, 0), new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0, 16, 3, 58, 2, 8, 1]));
 * ```
 */
export function sessionStartEvent(step: number, wallTime: number): Uint8Array {
  const w = new ProtoWriter().double(1, wallTime);
  if (step !== 0) w.uint(2, step);
  return w.message(7, (log) => log.uint(1, 1)).finish().slice();
}

/**
 * An event holding one plugin summary value: `Event{wall_time, step, summary{value{tag,
 * metadata{plugin_data{plugin_name, content}, data_class}, tensor}}}`.
 *
 * @param dataClass `SummaryMetadata.data_class` (2 = tensor); 0 leaves it out.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NULL_TENSOR, pluginEvent } from "./_event_file.ts";
 * const e = pluginEvent(0, 1700000000, "_hparams_/session_end_info", "hparams",
 *   new Uint8Array([0x22, 0x02, 0x08, 0x01]), NULL_TENSOR, 2);
 * assert.equal(e.length > 0, true);
 * ```
 */
export function pluginEvent(
  step: number,
  wallTime: number,
  tag: string,
  pluginName: string,
  content: Uint8Array,
  tensor?: Uint8Array,
  dataClass = 0,
): Uint8Array {
  const w = new ProtoWriter().double(1, wallTime);
  if (step !== 0) w.uint(2, step);
  w.message(5, (summary) =>
    summary.message(1, (value) => {
      value.string(1, tag).message(9, (meta) => {
        meta.message(1, (pd) => pd.string(1, pluginName).bytes(2, content));
        if (dataClass !== 0) meta.uint(4, dataClass);
      });
      if (tensor) value.bytes(8, tensor);
    }));
  return w.finish().slice();
}

/** Options of {@linkcode EventFileWriter.create}. */
export interface EventFileWriterOptions {
  /** Name written as `source_metadata.writer` in the first event. @default "tunebox" */
  readonly writer?: string;
  /** Clock in Unix seconds, for the first event and the file name. @default Date.now() / 1000 */
  readonly now?: () => number;
  /** Bytes of encoded records held before a write is forced. @default 1 MiB */
  readonly bufferBytes?: number;
}

let fileSeq = 0;

function hostname(): string {
  // Only with --allow-sys already granted: never prompt. The name only has to contain "tfevents".
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname().replace(/[^A-Za-z0-9._-]/g, "_") || "localhost";
    }
  } catch { /* fall through */ }
  return "localhost";
}

/**
 * Writes one event file. Each writer creates its own file
 * (`events.out.tfevents.<10-digit seconds>.<host>.<pid>.<n>`), so two writers never share one.
 *
 * @example
 * ```ts
 * import { EventFileWriter } from "./_event_file.ts";
 * const dir = await Deno.makeTempDir();
 * const w = EventFileWriter.create(dir);
 * w.scalars(1, Date.now() / 1000, ["loss", "acc"], [0.5, 0.8]);
 * w.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class EventFileWriter {
  /** The file's path. */
  readonly path: string;
  #file: Deno.FsFile | undefined;
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;
  readonly #limit: number;
  readonly #described = new Set<string>();
  readonly #tagBytes = new Map<string, Uint8Array>();
  #first = new Uint8Array(64);

  private constructor(path: string, file: Deno.FsFile, limit: number) {
    this.path = path;
    this.#file = file;
    this.#limit = limit;
    this.#buf = new Uint8Array(Math.min(limit, 64 * 1024) + 256);
    this.#view = new DataView(this.#buf.buffer);
  }

  /**
   * Creates `dir` if needed and a new event file in it, and writes (and flushes) the
   * `brain.Event:2` record.
   *
   * @throws {Deno.errors.PermissionDenied} and other file-system errors.
   */
  static create(dir: string, options: EventFileWriterOptions = {}): EventFileWriter {
    const now = options.now ?? (() => Date.now() / 1000);
    const t = now();
    Deno.mkdirSync(dir, { recursive: true });
    const secs = String(Math.max(0, Math.floor(t))).padStart(10, "0");
    const name = `events.out.tfevents.${secs}.${hostname()}.${Deno.pid}.${fileSeq++}`;
    const path = `${dir.replace(/[\\/]+$/, "")}/${name}`;
    const file = Deno.openSync(path, { write: true, createNew: true });
    const w = new EventFileWriter(path, file, options.bufferBytes ?? 1024 * 1024);
    w.writeEvent(fileVersionEvent(t, options.writer ?? "tunebox"));
    w.flush();
    return w;
  }

  /** Whether the file is open for writing. */
  get open(): boolean {
    return this.#file !== undefined;
  }

  /** Bytes encoded and not yet written to the file. */
  get pending(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    if (this.#len > 0 && this.#len >= this.#limit) this.flush();
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends one record holding an already encoded `tensorboard.Event`. */
  writeEvent(event: Uint8Array): void {
    this.#room(event.length + RECORD_OVERHEAD);
    this.#buf.set(event, this.#len + RECORD_HEADER);
    this.#len = sealRecord(this.#buf, this.#view, this.#len, event.length);
  }

  #tag(tag: string): Uint8Array {
    let b = this.#tagBytes.get(tag);
    if (b === undefined) {
      const t = utf8.encode(tag);
      // Summary.Value field 1 (tag), ready to copy.
      b = new Uint8Array(1 + varintLength(t.length) + t.length);
      b[0] = 0x0a;
      b.set(t, putVarint(b, 1, t.length));
      this.#tagBytes.set(tag, b);
    }
    return b;
  }

  /**
   * Appends one event at `step` holding one scalar per tag (`values[i]` for `tags[i]`, rounded to
   * float32). The first value of each tag in this file carries the `scalars` plugin metadata.
   *
   * @param step a non-negative safe integer (the training iteration).
   * @param wallTime Unix seconds.
   * @param count how many of `tags` to write. @default tags.length
   * @throws {RangeError} when `step` is not a non-negative safe integer.
   */
  scalars(
    step: number,
    wallTime: number,
    tags: readonly string[],
    values: ArrayLike<number>,
    count: number = tags.length,
  ): void {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new RangeError(`A step must be a non-negative safe integer, got ${step}`);
    }
    if (this.#first.length < count) this.#first = new Uint8Array(count * 2);
    const firstFlags = this.#first;
    let summaryLength = 0;
    for (let i = 0; i < count; i++) {
      // A tag repeated within one event gets the metadata once, on its first value.
      const first = !this.#described.has(tags[i]);
      if (first) this.#described.add(tags[i]);
      firstFlags[i] = first ? 1 : 0;
      const valueLength = this.#tag(tags[i]).length + TENSOR_FIELD_LENGTH +
        (first ? METADATA_FIELD.length : 0);
      summaryLength += 1 + varintLength(valueLength) + valueLength;
    }
    const eventLength = 9 + (step === 0 ? 0 : 1 + varintLength(step)) + 1 +
      varintLength(summaryLength) + summaryLength;
    this.#room(eventLength + RECORD_OVERHEAD);
    const buf = this.#buf, view = this.#view, start = this.#len;
    let at = start + RECORD_HEADER;
    buf[at] = 0x09;
    view.setFloat64(at + 1, wallTime, true);
    at += 9;
    if (step !== 0) {
      buf[at++] = 0x10;
      at = putVarint(buf, at, step);
    }
    buf[at++] = 0x2a;
    at = putVarint(buf, at, summaryLength);
    for (let i = 0; i < count; i++) {
      const tb = this.#tag(tags[i]);
      const first = firstFlags[i] === 1;
      const valueLength = tb.length + TENSOR_FIELD_LENGTH + (first ? METADATA_FIELD.length : 0);
      buf[at++] = 0x0a;
      at = putVarint(buf, at, valueLength);
      buf.set(tb, at);
      at += tb.length;
      if (first) {
        buf.set(METADATA_FIELD, at);
        at += METADATA_FIELD.length;
      }
      buf.set(TENSOR_PREFIX, at);
      view.setFloat32(at + TENSOR_PREFIX.length, values[i], true);
      at += TENSOR_FIELD_LENGTH;
    }
    this.#len = sealRecord(buf, view, start, eventLength);
  }

  /** Writes the buffered records to the file with one write call. No-op when closed. */
  flush(): void {
    if (this.#len === 0 || this.#file === undefined) return;
    let off = 0;
    while (off < this.#len) off += this.#file.writeSync(this.#buf.subarray(off, this.#len));
    this.#len = 0;
  }

  /** Flushes and closes the file; {@linkcode EventFileWriter.reopen} appends to it again. */
  close(): void {
    if (this.#file === undefined) return;
    try {
      this.flush();
    } finally {
      this.#file.close();
      this.#file = undefined;
    }
  }

  /** Opens the (closed) file again for appending; the tags already described stay described. */
  reopen(): void {
    if (this.#file !== undefined) return;
    this.#file = Deno.openSync(this.path, { append: true });
  }
}
