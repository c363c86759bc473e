/**
 * The minimal protocol-buffers encoding the event files need (varint, fixed32/64, length
 * delimited), and a decoder for reading back what this package wrote.
 *
 * Proto3 leaves out fields that hold their default value; callers decide that, since members of a
 * `oneof` must be written even when they are 0, `false` or `""`.
 *
 * @module
 */

/** Protobuf wire types. */
export const WIRE = { varint: 0, fixed64: 1, len: 2, fixed32: 5 } as const;

const utf8 = new TextEncoder();

/**
 * An append-only protobuf encoder over a growable buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProtoWriter } from "./_proto.ts";
 * const w = new ProtoWriter();
 * w.string(1, "lr").uint(4, 3); // HParamInfo{name: "lr", type: FLOAT64}
 * assert.deepEqual(w.finish(), new Uint8Array([10, 2, 108, 114, 32, 3]));
 * ```
 */
export class ProtoWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  /** An empty writer with room for `capacity` bytes before it grows. */
  constructor(capacity = 64) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends raw bytes. */
  raw(bytes: Uint8Array): this {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /**
   * Appends a varint. Non-negative integers up to 2^53 take the fast path; negative ones are
   * written as 64-bit two's complement (10 bytes), as protobuf does for int32/int64.
   */
  varint(v: number | bigint): this {
    this.#room(10);
    if (typeof v === "number" && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      while (v >= 0x80) {
        this.#buf[this.#len++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.#buf[this.#len++] = v;
      return this;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b >= 0x80n) {
      this.#buf[this.#len++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.#buf[this.#len++] = Number(b);
    return this;
  }

  /** Appends a field key. */
  key(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A varint field (int32, int64, uint, enum, bool as 0/1). */
  uint(field: number, v: number | bigint): this {
    return this.key(field, WIRE.varint).varint(v);
  }

  /** A `double` field (fixed64, little-endian). */
  double(field: number, v: number): this {
    this.key(field, WIRE.fixed64).#room(8);
    this.#view.setFloat64(this.#len, v, true);
    this.#len += 8;
    return this;
  }

  /** A `float` field (fixed32, little-endian): the value is rounded to float32. */
  float(field: number, v: number): this {
    this.key(field, WIRE.fixed32).#room(4);
    this.#view.setFloat32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  /** A `bytes` field, or an already encoded sub-message. */
  bytes(field: number, b: Uint8Array): this {
    return this.key(field, WIRE.len).varint(b.length).raw(b);
  }

  /** A `string` field, UTF-8 encoded. */
  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  /** A sub-message field, encoded by `fill` into a fresh writer. */
  message(field: number, fill: (w: ProtoWriter) => void): this {
    const sub = new ProtoWriter();
    fill(sub);
    return this.bytes(field, sub.finish());
  }

  /** The bytes written, as a view (valid until the next write). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

/** One decoded field. */
export interface ProtoField {
  /** The field number. */
  readonly field: number;
  /** The wire type ({@linkcode WIRE}). */
  readonly wire: number;
  /** The value of a varint field (exact up to 2^53). */
  readonly int: number;
  /** The payload of a length-delimited field, or the 4 / 8 raw bytes of a fixed field. */
  readonly bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * Splits one message into its fields, in wire order.
 *
 * @throws {RangeError} when the bytes are not a well-formed message.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFields } from "./_proto.ts";
 * const f = decodeFields(new Uint8Array([0x20, 0x03]));
 * assert.equal(f[0].field, 4);
 * assert.equal(f[0].int, 3);
 * ```
 */
export function decodeFields(msg: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0, mul = 1;
    for (;;) {
      if (i >= msg.length) throw new RangeError("Truncated varint in protobuf message");
      const b = msg[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  const take = (n: number): Uint8Array => {
    if (i + n > msg.length) throw new RangeError("Truncated field in protobuf message");
    const b = msg.subarray(i, i + n);
    i += n;
    return b;
  };
  while (i < msg.length) {
    const k = varint();
    const field = Math.floor(k / 8), wire = k % 8;
    if (wire === WIRE.varint) out.push({ field, wire, int: varint(), bytes: EMPTY });
    else if (wire === WIRE.fixed64) out.push({ field, wire, int: 0, bytes: take(8) });
    else if (wire === WIRE.fixed32) out.push({ field, wire, int: 0, bytes: take(4) });
    else if (wire === WIRE.len) out.push({ field, wire, int: 0, bytes: take(varint()) });
    else throw new RangeError(`Unsupported protobuf wire type ${wire} (field ${field})`);
  }
  return out;
}

/**
 * The fields of `msg` with number `field`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fieldsOf } from "./_proto.ts";
 * assert.deepEqual(fieldsOf(new Uint8Array([0x08, 0x01, 0x08, 0x02]), 1).map((f) => f.int), [1, 2]);
 * ```
 */
export function fieldsOf(msg: Uint8Array, field: number): ProtoField[] {
  return decodeFields(msg).filter((f) => f.field === field);
}

/**
 * Reads a little-endian double from a fixed64 field's bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readDouble } from "./_proto.ts";
 * assert.equal(readDouble(new Uint8Array([0, 0, 0, 0, 0, 0, 0xf0, 0x3f])), 1);
 * ```
 */
export function readDouble(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
}

/**
 * Reads a little-endian float from a fixed32 field's bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFloat } from "./_proto.ts";
 * assert.equal(readFloat(new Uint8Array([0, 0, 0x80, 0x3e])), 0.25);
 * ```
 */
export function readFloat(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}
