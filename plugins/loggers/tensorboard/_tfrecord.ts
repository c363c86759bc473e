/**
 * TFRecord framing: `u64 length | masked_crc32c(length bytes) | data | masked_crc32c(data)`,
 * all little-endian, records back to back with no file header.
 *
 * @module
 */

import { maskedCrc32c } from "./_crc32c.ts";

/** Bytes a record adds around its data: 8 (length) + 4 (length CRC) + 4 (data CRC). */
export const RECORD_OVERHEAD = 16;
/** Bytes before the data of a record. */
export const RECORD_HEADER = 12;

/**
 * Fills in the frame of a record whose data already sits at `start + 12` in `buf`: the length
 * and its CRC before it, the data CRC after it. `buf` must have room for `dataLength + 16` bytes
 * from `start`.
 *
 * @returns the offset just past the record.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sealRecord } from "./_tfrecord.ts";
 * const buf = new Uint8Array(16 + 2);
 * buf.set([0x10, 0x01], 12); // the data: Event{step: 1}
 * assert.equal(sealRecord(buf, new DataView(buf.buffer), 0, 2), 18);
 * ```
 */
export function sealRecord(
  buf: Uint8Array,
  view: DataView,
  start: number,
  dataLength: number,
): number {
  view.setUint32(start, dataLength >>> 0, true);
  view.setUint32(start + 4, Math.floor(dataLength / 0x1_0000_0000), true);
  view.setUint32(start + 8, maskedCrc32c(buf, start, start + 8), true);
  const end = start + RECORD_HEADER + dataLength;
  view.setUint32(end, maskedCrc32c(buf, start + RECORD_HEADER, end), true);
  return end + 4;
}

/**
 * One framed record holding `data`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frameRecord } from "./_tfrecord.ts";
 * assert.equal(frameRecord(new Uint8Array([0x10, 0x01])).length, 18);
 * ```
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + RECORD_OVERHEAD);
  out.set(data, RECORD_HEADER);
  sealRecord(out, new DataView(out.buffer), 0, data.length);
  return out;
}

/** What {@linkcode readRecords} found in a file. */
export interface RecordScan {
  /** The data of every complete record, in order. */
  readonly records: Uint8Array[];
  /** Bytes covered by complete records. */
  readonly validBytes: number;
  /** True when bytes after the last complete record make up a partial one (a cut-off write). */
  readonly truncated: boolean;
}

/**
 * Splits a TFRecord file into records, checking both CRCs. A partial record at the end (a
 * writer killed mid-write) is not an error: TensorBoard's readers stop there too and read it
 * once it is complete.
 *
 * @throws {RangeError} when a CRC does not match (corrupted data).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frameRecord, readRecords } from "./_tfrecord.ts";
 * const file = frameRecord(new Uint8Array([0x10, 0x01]));
 * const scan = readRecords(file.subarray(0, 10));
 * assert.equal(scan.records.length, 0);
 * assert.equal(scan.truncated, true);
 * ```
 */
export function readRecords(file: Uint8Array): RecordScan {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at + RECORD_HEADER <= file.length) {
    const length = view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
    if (view.getUint32(at + 8, true) !== maskedCrc32c(file, at, at + 8)) {
      throw new RangeError(`TFRecord length CRC mismatch at byte ${at}: the file is corrupted`);
    }
    const end = at + RECORD_HEADER + length;
    if (end + 4 > file.length) break;
    if (view.getUint32(end, true) !== maskedCrc32c(file, at + RECORD_HEADER, end)) {
      throw new RangeError(`TFRecord data CRC mismatch in the record at byte ${at}`);
    }
    records.push(file.subarray(at + RECORD_HEADER, end));
    at = end + 4;
  }
  return { records, validBytes: at, truncated: at < file.length };
}
