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
