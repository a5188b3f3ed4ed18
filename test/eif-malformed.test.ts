/**
 * Malformed EIFs: each gets its exact error code, the file offset of the problem, and a message
 * that names both. Images are assembled here by hand from the layout in the spec (not with the
 * library's writer), then damaged.
 */
import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { EifFormatError, measureEif, readEif } from '../src/eif/index.js';
import { encodeSignatureSection } from '../src/eif/signature-section.js';

const dir = new URL('../vectors/eif/synthetic/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const v1 = read('v1_basic_unsigned.eif');
const K = 1, C = 2, R = 3, S = 4, M = 5;

/** Spec §6.1, done by hand: header, then (type, flags 0, size, data) per section, then the CRC. */
function assemble(sections: Array<[number, Uint8Array]>, opts: { version?: number; flags?: number } = {}): Uint8Array {
  const size = 548 + sections.reduce((n, [, d]) => n + 12 + d.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set([0x2e, 0x65, 0x69, 0x66]);
  v.setUint16(4, opts.version ?? 4);
  v.setUint16(6, opts.flags ?? 0);
  v.setBigUint64(8, 1n << 30n);
  v.setBigUint64(16, 2n);
  v.setUint16(26, sections.length);
  let at = 548;
  sections.forEach(([t, d], i) => {
    v.setBigUint64(28 + 8 * i, BigInt(at));
    v.setBigUint64(284 + 8 * i, BigInt(d.length));
    v.setUint16(at, t);
    v.setBigUint64(at + 4, BigInt(d.length));
    out.set(d, at + 12);
    at += 12 + d.length;
  });
  fixCrc(out);
  return out;
}

function fixCrc(b: Uint8Array): Uint8Array {
  const crc = zlibCrc32(Buffer.concat([b.subarray(0, 544), b.subarray(548)]));
  new DataView(b.buffer, b.byteOffset).setUint32(544, crc);
  return b;
}

function patch(b: Uint8Array, at: number, f: (v: DataView) => void): Uint8Array {
  const c = b.slice();
  f(new DataView(c.buffer, at));
  return c;
}

const k = new Uint8Array([1, 2, 3]);
const c = new TextEncoder().encode('console=ttyS0');
const m = new TextEncoder().encode('{}');
const r = new Uint8Array([9, 9]);

async function failure(bytes: Uint8Array | Iterable<Uint8Array>): Promise<EifFormatError> {
  try {
    await measureEif(bytes);
  } catch (e) {
    if (e instanceof EifFormatError) return e;
    throw e;
  }
  throw new Error('accepted a malformed image');
}

async function expectError(bytes: Uint8Array | Iterable<Uint8Array>, code: string, offset: number, text: RegExp) {
  const e = await failure(bytes);
  expect({ code: e.code, offset: e.offset }).toEqual({ code, offset });
  expect(e.message).toMatch(text);
  expect(e.message).toContain(`at offset ${offset} = 0x${offset.toString(16)}`);
}

describe('malformed images', () => {
  test('hand-assembled well-formed images are accepted (the helper is right)', async () => {
    expect(assemble([[K, read('kernel.bin')], [C, read('cmdline.txt')], [M, read('metadata.json')], [R, read('ramdisk0.bin')], [R, read('ramdisk1.bin')]])).toEqual(v1);
    await expect(readEif(assemble([[K, k], [C, c], [R, r]], { version: 3 }))).resolves.toMatchObject({ crc: { ok: true } });
    await expect(readEif(assemble([[K, k], [C, c], [M, m], [R, r]], { flags: 1 }))).resolves.toMatchObject({ header: { architecture: 'aarch64' } });
  });

  test('bad magic', () => expectError(patch(v1, 0, (v) => v.setUint8(1, 0x45)), 'BAD_MAGIC', 0, /magic is 2e 45 69 66/));
  test('truncated header', () => expectError(v1.subarray(0, 100), 'TRUNCATED_HEADER', 100, /inside the 548-byte EIF header/));
  test('empty file', () => expectError(new Uint8Array(0), 'TRUNCATED_HEADER', 0, /after 0 bytes/));
  test('version 1 and version 5', async () => {
    await expectError(patch(v1, 4, (v) => v.setUint16(0, 1)), 'UNSUPPORTED_VERSION', 4, /version 1 is not supported/);
    await expectError(patch(v1, 4, (v) => v.setUint16(0, 5)), 'UNSUPPORTED_VERSION', 4, /version 5/);
  });
  test('reserved header flag bits', () => expectError(patch(v1, 6, (v) => v.setUint16(0, 2)), 'RESERVED_FLAGS', 6, /flags 0x0002/));
  test('section count over 32', () => expectError(patch(v1, 0x1a, (v) => v.setUint16(0, 33)), 'TOO_MANY_SECTIONS', 0x1a, /num_sections is 33/));
  test('section offset beyond the file', () =>
    expectError(patch(v1, 0x1c + 8 * 4, (v) => v.setBigUint64(0, 1n << 40n)), 'SECTION_BEYOND_FILE', 0x1c + 32, /section_offsets\[4\] is 1099511627776/));
  test('section offset not where the previous section ends', () =>
    expectError(patch(v1, 0x1c + 8, (v) => v.setBigUint64(0, 70562n)), 'SECTION_OFFSET_MISMATCH', 0x1c + 8, /section_offsets\[1\] is 70562, expected 70561/));
  test('section size beyond the file (size known)', () => expectError(v1.subarray(0, 100000), 'SECTION_BEYOND_FILE', 0x11c + 8 * 4, /section_sizes\[4\] is 33333/));
  test('section size over 2^53', () => expectError(patch(v1, 0x11c, (v) => v.setBigUint64(0, 1n << 60n)), 'SECTION_BEYOND_FILE', 0x11c, /section_sizes\[0\]/));
  test('truncated section (streamed, size unknown)', () => expectError([v1.subarray(0, 100000)], 'TRUNCATED_SECTION', 100000, /ends 24370 bytes before the end of section 4/));
  test('truncated section header (streamed)', () => expectError([v1.subarray(0, 70565)], 'TRUNCATED_SECTION', 70565, /inside the header of section 1/));
  test('header and section header disagree on the size', () =>
    expectError(patch(v1, 70561 + 4, (v) => v.setBigUint64(0, 118n)), 'SECTION_SIZE_MISMATCH', 70565, /header says 118 bytes but the EIF header's section_sizes\[1\] says 119/));
  test('non-zero section flags', () => expectError(patch(v1, 70561 + 2, (v) => v.setUint16(0, 1)), 'SECTION_FLAGS', 70563, /section 1 has flags 0x0001/));
  test('unknown section types 6 and 0', async () => {
    await expectError(patch(v1, 70692, (v) => v.setUint16(0, 6)), 'UNKNOWN_SECTION_TYPE', 70692, /type 6/);
    await expectError(patch(v1, 70692, (v) => v.setUint16(0, 0)), 'UNKNOWN_SECTION_TYPE', 70692, /type 0/);
  });
  test('duplicate kernel, cmdline, metadata and signature', async () => {
    await expectError(patch(v1, 70561, (v) => v.setUint16(0, K)), 'DUPLICATE_SECTION', 70561, /second kernel section/);
    await expectError(patch(v1, 70692, (v) => v.setUint16(0, C)), 'DUPLICATE_SECTION', 70692, /second cmdline section/);
    const at = 548 + 12 + 3 + 12 + c.length;
    await expectError(assemble([[K, k], [C, c], [M, m], [M, m], [R, r]]), 'DUPLICATE_SECTION', at + 12 + 2, /second metadata/);
  });
  test('no kernel, no cmdline, no ramdisk, no metadata (v4)', async () => {
    const end = (s: Array<[number, Uint8Array]>) => assemble(s).length;
    const noK: Array<[number, Uint8Array]> = [[C, c], [M, m]];
    await expectError(assemble(noK), 'MISSING_KERNEL', end(noK), /no kernel section/);
    const noC: Array<[number, Uint8Array]> = [[K, k], [M, m], [R, r]];
    await expectError(assemble(noC), 'MISSING_CMDLINE', end(noC), /no cmdline section/);
    const noR: Array<[number, Uint8Array]> = [[K, k], [C, c], [M, m]];
    await expectError(assemble(noR), 'MISSING_RAMDISK', end(noR), /no ramdisk section/);
    const noM: Array<[number, Uint8Array]> = [[K, k], [C, c], [R, r]];
    await expectError(assemble(noM), 'MISSING_METADATA', end(noM), /version 4 but has no metadata/);
  });
  test('ramdisk before the kernel', () => expectError(assemble([[R, r], [K, k], [C, c], [M, m]]), 'RAMDISK_BEFORE_KERNEL', 548, /before the kernel/));
  test('bytes after the last section', () => expectError(new Uint8Array([...v1, 0]), 'TRAILING_DATA', v1.length, /bytes follow the last section/));
  test('signature section over 32768 bytes', () =>
    expectError(assemble([[K, k], [C, c], [M, m], [R, r], [S, new Uint8Array(32769)]]), 'SIGNATURE_TOO_LARGE', 548 + 12 + 3 + 12 + 13 + 12 + 2 + 12 + 2 + 4, /32769 bytes/));
  test('signature section that is not the expected CBOR, or holds a DER certificate', async () => {
    const sigAt = 548 + 12 + 3 + 12 + 13 + 12 + 2 + 12 + 2 + 12;
    await expectError(assemble([[K, k], [C, c], [M, m], [R, r], [S, new Uint8Array([0xa0])]]), 'BAD_SIGNATURE_SECTION', sigAt, /non-empty CBOR array/);
    await expectError(assemble([[K, k], [C, c], [M, m], [R, r], [S, new Uint8Array([0x81, 0x1c])]]), 'BAD_SIGNATURE_SECTION', sigAt + 1, /not CBOR/);
    const der = new Uint8Array(readFileSync(new URL('signing_cert.pem', dir), 'utf8').split('\n').slice(1, -2).join('').length);
    const section = encodeSignatureSection([{ signingCertificate: der.fill(0x30), signature: new Uint8Array([0x80]) }]);
    await expectError(assemble([[K, k], [C, c], [M, m], [R, r], [S, section]]), 'BAD_CERTIFICATE', sigAt, /not a PEM X.509 certificate/);
  });
  test('a bad CRC is reported, not thrown (as nitro-cli describe-eif does)', async () => {
    const bad = patch(v1, 544, (v) => v.setUint8(3, v.getUint8(3) ^ 1));
    const layout = await readEif(bad);
    expect(layout.crc).toEqual({ stored: 0x1323de62, computed: 0x1323de63, ok: false });
    const flipped = patch(v1, 600, (v) => v.setUint8(0, v.getUint8(0) ^ 1));
    expect((await readEif(flipped)).crc.ok).toBe(false);
  });
});
