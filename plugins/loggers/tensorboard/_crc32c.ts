/**
 * CRC-32C (Castagnoli), as TFRecord files use it, and TensorFlow's masking of it.
 *
 * Slicing-by-8 over the reflected polynomial 0x82F63B78: eight table lookups per 8 input bytes.
 *
 * @module
 */

/** Eight 256-entry tables back to back (one array keeps the lookups monomorphic). */
const T: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let s = 1; s < 8; s++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[s * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/**
 * The CRC-32C of `data[start, end)`, continuing from `crc` (the CRC of the bytes before).
 *
 * @param data the bytes.
 * @param start first byte (inclusive). @default 0
 * @param end last byte (exclusive). @default data.length
 * @param crc the CRC of earlier bytes, to checksum data in pieces. @default 0
 * @returns the unsigned 32-bit CRC.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c } from "./_crc32c.ts";
 * const crc = crc32c(new TextEncoder().encode("123456789"));
 * assert.equal(crc.toString(16), "e3069283");
 * ```
 */
export function crc32c(data: Uint8Array, start = 0, end: number = data.length, crc = 0): number {
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^
      T[1024 + (lo >>> 24)] ^ T[768 + data[i + 4]] ^ T[512 + data[i + 5]] ^ T[256 + data[i + 6]] ^
      T[data[i + 7]];
  }
  for (; i < end; i++) c = T[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * TensorFlow's `crc32c::Mask`: rotate right by 15 bits and add 0xA282EAD8 (mod 2^32). Records
 * store masked CRCs so that a CRC of data that itself holds CRCs stays well distributed.
 *
 * @param crc an unsigned 32-bit CRC.
 * @returns the masked value, unsigned.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskCrc } from "./_crc32c.ts";
 * assert.equal(maskCrc(0).toString(16), "a282ead8");
 * ```
 */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * The masked CRC-32C of `data[start, end)`, as a TFRecord stores it.
 *
 * @param data the bytes.
 * @param start first byte (inclusive). @default 0
 * @param end last byte (exclusive). @default data.length
 * @returns the masked CRC, unsigned.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskedCrc32c } from "./_crc32c.ts";
 * assert.equal(maskedCrc32c(new TextEncoder().encode("123456789")).toString(16), "c78ab0e5");
 * ```
 */
export function maskedCrc32c(data: Uint8Array, start = 0, end: number = data.length): number {
  return maskCrc(crc32c(data, start, end));
}
