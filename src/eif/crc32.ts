/**
 * CRC-32/ISO-HDLC (the zlib / IEEE 802.3 CRC) that the EIF header carries, computed
 * incrementally. Same convention as zlib's `crc32(prev, data)`: start from 0 and feed each
 * chunk with the previous result. Slicing-by-8 tables keep it well ahead of SHA-384.
 * @module
 */

/** `(previous crc, chunk) -> crc`: the shape shared with node:zlib `crc32(data, value)`. */
export type Crc32Function = (crc: number, chunk: Uint8Array) => number;

let tables: Uint32Array | null = null;

function makeTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The pure-JS CRC-32 (runs anywhere). */
export const crc32: Crc32Function = (crc, data) => {
  const t = (tables ??= makeTables());
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  // Bytes up to a 4-byte boundary, then 8 bytes per step through 32-bit words.
  while (i < n && (data.byteOffset + i) % 4 !== 0) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  if (LITTLE_ENDIAN && n - i >= 8) {
    const words = new Uint32Array(data.buffer, data.byteOffset + i, (n - i) >>> 2);
    const end = words.length & ~1;
    for (let w = 0; w < end; w += 2) {
      const a = c ^ words[w]!;
      const b = words[w + 1]!;
      c =
        t[1792 + (a & 0xff)]! ^
        t[1536 + ((a >>> 8) & 0xff)]! ^
        t[1280 + ((a >>> 16) & 0xff)]! ^
        t[1024 + (a >>> 24)]! ^
        t[768 + (b & 0xff)]! ^
        t[512 + ((b >>> 8) & 0xff)]! ^
        t[256 + ((b >>> 16) & 0xff)]! ^
        t[b >>> 24]!;
    }
    i += end * 4;
  }
  while (i < n) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
};

// Combining CRCs: crc(A || B) from crc(A), crc(B) and B's length, in GF(2) arithmetic modulo the
// CRC polynomial (reflected: bit 31 is x^0). Appending n bytes multiplies A's CRC by x^(8n), so
// the combination is `x^(8n) * crc(A) + crc(B)`; the pre- and post-inversion of CRC-32 cancel out.

const POLY = 0xedb88320;

/** `a * b` modulo the CRC polynomial (both reflected). */
function multModP(a: number, b: number): number {
  let p = 0;
  for (let m = 0x80000000; m !== 0 && (a & (m | (m - 1))) !== 0; m >>>= 1) {
    if (a & m) p ^= b;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

let powers: Uint32Array | null = null; // powers[k] = x^(2^k) mod P; x's order divides 2^32 - 1, so k wraps at 32

/** `x^(8 * bytes)` modulo the CRC polynomial: the operator that appends `bytes` zero bytes. */
function shiftOperator(bytes: number): number {
  const t = (powers ??= (() => {
    const p = new Uint32Array(32);
    p[0] = 0x40000000; // x^1
    for (let k = 1; k < 32; k++) p[k] = multModP(p[k - 1]!, p[k - 1]!);
    return p;
  })());
  let op = 0x80000000; // x^0
  let k = 3; // 8 = 2^3
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) op = multModP(t[k & 31]!, op);
  }
  return op;
}

let lastLength = -1;
let lastOperator = 0;

/**
 * The CRC-32 of `A || B` from `crcA` (of A), `crcB` (of B) and the length of B in bytes (any
 * safe integer). Lets pieces of one input be checked on different threads and joined in order.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) throw new RangeError(`crc32Combine: length ${lengthB} is not a byte count`);
  if (lengthB !== lastLength) {
    lastOperator = shiftOperator(lengthB);
    lastLength = lengthB;
  }
  return (multModP(lastOperator, crcA >>> 0) ^ crcB) >>> 0;
}

/**
 * Where a reader sends the bytes the EIF header's CRC covers, in file order, each piece with its
 * file offset; `result` is the CRC-32 of all of them (it may wait, e.g. for another thread that
 * computed some pieces' CRCs).
 */
export interface Crc32Accumulator {
  update(chunk: Uint8Array, offset: number): void;
  result(): number | Promise<number>;
}

/** The plain accumulator: one running CRC through `fn`. */
export function crc32Accumulator(fn: Crc32Function = crc32): Crc32Accumulator {
  let c = 0;
  return {
    update(chunk) {
      c = fn(c, chunk);
    },
    result: () => c >>> 0,
  };
}
