// CRC-32 pieces joined with crc32Combine give what node:zlib computes over the whole input, for
// any cut, any piece lengths (including lengths past 2^31 bytes) and pieces computed out of order.
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Accumulator, crc32Combine } from '../src/eif/crc32.js';

describe('crc32Combine', () => {
  it('joins the CRCs of two pieces into zlib.crc32 of both, for every cut of random inputs', () => {
    for (const n of [0, 1, 2, 3, 4, 7, 8, 9, 63, 64, 65, 1000, 4096, 65537]) {
      const d = new Uint8Array(randomBytes(n));
      const want = zlib.crc32(d);
      const cuts = n <= 70 ? Array.from({ length: n + 1 }, (_, i) => i) : [0, 1, n >> 1, n - 1, n];
      for (const cut of cuts) {
        const a = d.subarray(0, cut);
        const b = d.subarray(cut);
        expect(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length)).toBe(want);
      }
    }
  });

  it('joins many pieces in order, whichever order their CRCs were computed in', () => {
    const d = new Uint8Array(randomBytes(3 << 20));
    const block = 1 << 18;
    const crcs = [];
    for (let o = d.length - block; o >= 0; o -= block) crcs.unshift(zlib.crc32(d.subarray(o, o + block)));
    let c = 0;
    for (const x of crcs) c = crc32Combine(c, x, block);
    expect(c).toBe(zlib.crc32(d));
  });

  it('handles lengths past 2^31 bytes (the shift operator is built bit by bit of a 53-bit length)', () => {
    const zeros = new Uint8Array(64 << 20);
    const tail = new Uint8Array(randomBytes(17));
    // zlib over 2^31 + 17 bytes: 32 blocks of 64 MiB of zeros, then 17 random bytes.
    let want = zlib.crc32(new Uint8Array([0xa5]));
    for (let i = 0; i < 32; i++) want = zlib.crc32(zeros, want);
    want = zlib.crc32(tail, want);
    let zerosCrc = 0;
    for (let i = 0; i < 32; i++) zerosCrc = zlib.crc32(zeros, zerosCrc);
    const b = crc32Combine(zerosCrc, zlib.crc32(tail), tail.length);
    expect(crc32Combine(zlib.crc32(new Uint8Array([0xa5])), b, 2 ** 31 + 17)).toBe(want);
  });

  it('refuses a length that is not a byte count', () => {
    expect(() => crc32Combine(0, 0, -1)).toThrow(RangeError);
    expect(() => crc32Combine(0, 0, 1.5)).toThrow(RangeError);
  });

  it('the plain accumulator is the running CRC (pure JS and zlib alike)', async () => {
    const d = new Uint8Array(randomBytes(100_000));
    for (const fn of [crc32, (c: number, x: Uint8Array) => zlib.crc32(x, c)]) {
      const acc = crc32Accumulator(fn);
      acc.update(d.subarray(0, 12_345), 0);
      acc.update(d.subarray(12_345), 12_345);
      expect(await acc.result()).toBe(zlib.crc32(d));
    }
  });
});
