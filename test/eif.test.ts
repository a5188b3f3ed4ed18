/**
 * EIF reader, measurements and writer against the shared vectors (expected.json was made by an
 * independent re-implementation and cross-checked with AWS's own reader and builder).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  buildEifBytes,
  checkEifSignature,
  crc32,
  decodeSignatureSection,
  eifBootProfile,
  encodePcrInfo,
  encodeSignatureSection,
  measureEif,
  parentInstancePcr,
  parentRolePcr,
  readEif,
} from '../src/eif/index.js';
import { decodeCoseSign1, verifyCoseSign1 } from '../src/eif/cose-sign1.js';
import { parseCertificate } from '../src/eif/certificate.js';
import { decodeCbor, cborMapGet } from '../src/wire/cbor-decode.js';
import { NsmDevice } from '../src/device/nsm-device.js';
import { recordingAttester } from './helpers/fake-attester.js';
import type { AttestationInput } from '../src/device/attester.js';

const dir = new URL('../vectors/eif/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const json = (p: string) => JSON.parse(readFileSync(new URL(p, dir), 'utf8'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const expected = json('expected.json') as { vectors: Record<string, any> };
const names = Object.keys(expected.vectors);

const kernel = read('synthetic/kernel.bin');
const cmdline = new TextDecoder().decode(read('synthetic/cmdline.txt'));
const rd0 = read('synthetic/ramdisk0.bin');
const rd1 = read('synthetic/ramdisk1.bin');
const rd2 = read('synthetic/ramdisk2.bin');
const metadata = read('synthetic/metadata.json');
const certPem = read('synthetic/signing_cert.pem');

describe.each(names)('vector %s', (name) => {
  const v = expected.vectors[name];
  const bytes = read(v.file);

  test('is the file the vectors describe', () => {
    expect(bytes.length).toBe(v.file_size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(v.file_sha256);
  });

  test('header, CRC and section table', async () => {
    const layout = await readEif(bytes);
    const h = layout.header;
    expect(h.version).toBe(v.header.version);
    expect(h.flags).toBe(v.header.flags);
    expect(h.architecture).toBe('x86_64');
    expect(h.defaultMem).toBe(BigInt(v.header.default_mem));
    expect(h.defaultCpus).toBe(BigInt(v.header.default_cpus));
    expect(h.numSections).toBe(v.header.num_sections);
    expect(h.crc32).toBe(v.header.eif_crc32);
    expect(layout.crc).toEqual({ stored: v.header.eif_crc32, computed: v.header.eif_crc32, ok: v.crc_ok });
    expect(layout.fileSize).toBe(v.file_size);
    expect(layout.sections.length).toBe(v.sections.length);
    for (const [i, s] of (v.sections as any[]).entries()) {
      const got = layout.sections[i]!;
      expect({ index: got.index, type: got.typeNumber, type_name: got.type, header_offset: got.headerOffset, data_offset: got.dataOffset, size: got.size }).toEqual({
        index: s.index,
        type: s.type,
        type_name: s.type_name,
        header_offset: s.header_offset,
        data_offset: s.data_offset,
        size: s.size,
      });
      expect(h.sectionOffsets[i]).toBe(s.header_offset);
      expect(h.sectionSizes[i]).toBe(s.size);
      const data = bytes.subarray(got.dataOffset, got.dataOffset + got.size);
      expect(createHash('sha384').update(data).digest('hex')).toBe(s.data_sha384);
    }
    expect(new TextDecoder().decode(layout.cmdline!)).toBe(cmdline);
    expect(layout.metadata).toEqual(metadata);
  });

  test('measurements and content digests', async () => {
    const m = await measureEif(bytes);
    expect(hex(m.pcrs.pcr0)).toBe(v.expected_pcrs.PCR0);
    expect(hex(m.pcrs.pcr1)).toBe(v.expected_pcrs.PCR1);
    expect(hex(m.pcrs.pcr2)).toBe(v.expected_pcrs.PCR2);
    expect(m.pcrs.pcr8 && hex(m.pcrs.pcr8)).toBe(v.expected_pcrs.PCR8 ?? null);
    expect(hex(m.contentDigests.pcr0)).toBe(v.content_digests.PCR0);
    expect(hex(m.contentDigests.pcr1)).toBe(v.content_digests.PCR1);
    expect(hex(m.contentDigests.pcr2)).toBe(v.content_digests.PCR2);
    expect(m.contentDigests.pcr8 && hex(m.contentDigests.pcr8)).toBe(v.content_digests.PCR8 ?? null);
  });

  test('the same in any chunking: Blob, ReadableStream, 1-byte and odd chunks', async () => {
    const want = await measureEif(bytes);
    const odd = function* () {
      for (let o = 0, n = 1; o < bytes.length; o += n, n = (n * 7 + 3) % 4099) yield bytes.slice(o, o + n);
    };
    const sources = [new Blob([bytes]), new Blob([bytes]).stream(), odd()];
    for (const s of sources) {
      const m = await measureEif(s);
      expect(m.pcrs).toEqual(want.pcrs);
      expect(m.layout.crc).toEqual(want.layout.crc);
    }
    const small = bytes.subarray(0, 2000);
    const tiny = (async function* () {
      for (const b of small) yield new Uint8Array([b]);
    })();
    await expect(measureEif(tiny)).rejects.toMatchObject({ code: 'TRUNCATED_SECTION' });
  });
});

test('the empty-content PCR and PCR0 == PCR1 with a single ramdisk', async () => {
  const m = await measureEif(read('synthetic/v3_single_ramdisk.eif'));
  expect(hex(m.pcrs.pcr2)).toBe(expected.vectors.v3_single_ramdisk.expected_pcrs.PCR2);
  expect(hex(m.pcrs.pcr2)).toBe((json('expected.json') as any)._about.empty_content_pcr);
  expect(m.pcrs.pcr0).toEqual(m.pcrs.pcr1);
});

test('CRC-32 is the zlib CRC (node:zlib and known check value)', async () => {
  const zlib = await import('node:zlib');
  expect(crc32(0, new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  for (const len of [0, 1, 7, 8, 9, 1000, 70001]) {
    const d = kernel.subarray(0, len);
    expect(crc32(0, d)).toBe(zlib.crc32(d));
    expect(crc32(crc32(0, d.subarray(0, len >> 1)), d.subarray(len >> 1))).toBe(zlib.crc32(d));
  }
});

describe('writer', () => {
  const base = { kernel, cmdline, ramdisks: [rd0, rd1], metadata };

  test('reproduces v1_basic_unsigned and v3_single_ramdisk byte for byte', async () => {
    expect((await buildEifBytes(base)).bytes).toEqual(read('synthetic/v1_basic_unsigned.eif'));
    expect((await buildEifBytes({ ...base, ramdisks: [rd0] })).bytes).toEqual(read('synthetic/v3_single_ramdisk.eif'));
  });

  test('encodes the metadata section as AWS does (field order, sorted free-form keys)', async () => {
    const info = {
      imageName: 'synthetic-eif',
      imageVersion: '1.0',
      buildMetadata: { buildTime: '2024-01-01T00:00:00+00:00', buildTool: 'synthetic', buildToolVersion: '0.0.0', operatingSystem: 'Linux', kernelVersion: '6.1.0' },
      dockerInfo: { Id: 'sha256:0000', Architecture: 'amd64' },
      customMetadata: { Purpose: 'test vector' },
    };
    expect((await buildEifBytes({ ...base, metadata: info })).bytes).toEqual(read('synthetic/v1_basic_unsigned.eif'));
  });

  test('reproduces v4_signed byte for byte from the same certificate and COSE_Sign1', async () => {
    const built = await buildEifBytes({ ...base, signing: { certificatePem: certPem, coseSign1: read('synthetic/v4_cose_sign1.bin') } });
    expect(built.bytes).toEqual(read('synthetic/v4_signed.eif'));
    expect(hex(built.pcrs.pcr8!)).toBe(expected.vectors.v4_signed.expected_pcrs.PCR8);
  });

  test('signature section bytes match the image-format crate (cbor.rs vectors)', () => {
    const v = json('cbor_signature_section.json');
    expect(hex(encodePcrInfo(0, unhex(v.pcr_info.value.register_value_hex)))).toBe(v.pcr_info.cbor_hex);
    const e = v.signature_section.value[0];
    const section = encodeSignatureSection([{ signingCertificate: new TextEncoder().encode(e.signing_certificate_utf8), signature: unhex(e.signature_hex) }]);
    expect(hex(section)).toBe(v.signature_section.cbor_hex);
    expect(decodeSignatureSection(section)[0]!.signature).toEqual(unhex(e.signature_hex));
    expect(hex(encodeSignatureSection([{ signingCertificate: certPem, signature: read('synthetic/v4_cose_sign1.bin') }]))).toBe(hex(read('synthetic/v4_signature_section.bin')));
    expect(hex(encodePcrInfo(0, unhex(expected.vectors.v4_signed.expected_pcrs.PCR0)))).toBe(expected.vectors.v4_signed.signature_pcr0_payload_cbor_hex);
  });

  test('the vector COSE_Sign1 verifies with the certificate key and signs PCR0', async () => {
    const m = await measureEif(read('synthetic/v4_signed.eif'));
    const c = checkEifSignature(m, new Date('2030-01-01T00:00:00Z'))!;
    expect(c.signatureError).toBeNull();
    expect(c.pcr0Matches).toBe(true);
    expect(hex(c.signedPcr0!)).toBe(expected.vectors.v4_signed.expected_pcrs.PCR0);
    expect(c.validity).toBe('valid');
    expect(checkEifSignature(m, new Date('2023-06-01T00:00:00Z'))!.validity).toBe('not-yet-valid');
    expect(checkEifSignature(m, new Date('2055-01-01T00:00:00Z'))!.validity).toBe('expired');
    const cose = decodeCoseSign1(read('synthetic/v4_cose_sign1.bin'));
    expect(hex(cose.protectedBytes)).toBe('a1013822');
    const cert = parseCertificate(m.signature!.certificateDer);
    const bad = { ...cose, signature: cose.signature.map((b, i) => (i === 5 ? b ^ 1 : b)) };
    expect(() => verifyCoseSign1(bad, cert.publicKey!)).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE' }));
  });

  test('changing one byte of a section changes exactly the PCRs that cover it', async () => {
    const base0 = await measureEif((await buildEifBytes({ ...base, ramdisks: [rd0, rd1, rd2] })).bytes);
    const flip = (b: Uint8Array) => b.map((x, i) => (i === 10 ? x ^ 0xff : x));
    const cases: Array<[string, object, boolean[]]> = [
      ['kernel', { kernel: flip(kernel) }, [true, true, false]],
      ['cmdline', { cmdline: cmdline + ' quiet' }, [true, true, false]],
      ['ramdisk0', { ramdisks: [flip(rd0), rd1, rd2] }, [true, true, false]],
      ['ramdisk2', { ramdisks: [rd0, rd1, flip(rd2)] }, [true, false, true]],
      ['metadata', { metadata: new TextEncoder().encode('{}') }, [false, false, false]],
    ];
    for (const [, change, changed] of cases) {
      const m = await measureEif((await buildEifBytes({ ...base, ramdisks: [rd0, rd1, rd2], ...change })).bytes);
      expect([m.pcrs.pcr0, m.pcrs.pcr1, m.pcrs.pcr2].map((p, i) => hex(p) !== hex([base0.pcrs.pcr0, base0.pcrs.pcr1, base0.pcrs.pcr2][i]!))).toEqual(changed);
    }
  });
});

describe('PCR3 and PCR4', () => {
  const v = json('pcr3_pcr4.json');

  test('AWS user guide examples', () => {
    for (const e of v.aws_docs_examples) {
      const got = e.pcr === 3 ? parentRolePcr(e.input) : parentInstancePcr(e.input);
      expect(hex(got)).toBe(e.expected);
    }
    const arn = 'arn:aws:iam::123456789012:role/Webserver';
    expect(hex(parentRolePcr(arn))).not.toBe(v.wrong_formula_for_contrast[arn]);
  });

  test('PCR4 in every real AWS document is the extend of its module_id prefix', () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      const doc = decodeCbor(unhex(readFileSync(new URL(`aws-docs/aws-real-doc-${n}.cbor.hex`, dir), 'utf8').trim()));
      const items = doc.type === 'tag' ? (doc.value as any).items : (doc as any).items;
      const payload = decodeCbor(items[2].value);
      if (payload.type !== 'map') throw new Error('payload');
      const moduleId = (cborMapGet(payload, 'module_id') as any).value as string;
      const pcrs = cborMapGet(payload, 'pcrs') as any;
      const pcr4 = pcrs.entries.find(([k]: any) => k.value === 4)[1].value as Uint8Array;
      expect(moduleId).toMatch(/^i-[0-9a-f]+-enc[0-9a-f]{16}$/);
      const instance = moduleId.slice(0, moduleId.indexOf('-enc'));
      expect(hex(parentInstancePcr(instance))).toBe(hex(pcr4));
      // A device booted with that parent reports the same PCR4 and a module_id with the same prefix.
      const profile = eifBootProfile(null, { parentInstanceId: instance });
      const device = new NsmDevice({ ...profile, seed: '01' });
      expect(device.moduleId.startsWith(`${instance}-enc`)).toBe(true);
      expect(hex(profile.pcrs.get(4)!)).toBe(hex(pcr4));
    }
  });
});

describe('boot profile', () => {
  test('a device booted from v4_signed holds the measured PCRs, all of 0-15 locked, and attests them', async () => {
    const m = await measureEif(read('synthetic/v4_signed.eif'));
    const role = 'arn:aws:iam::123456789012:role/Webserver';
    const seen: AttestationInput[] = [];
    const device = new NsmDevice({ ...eifBootProfile(m.pcrs, { parentRoleArn: role, parentInstanceId: 'i-1234567890abcdef0' }), seed: '02', attester: recordingAttester(seen) });
    const want = expected.vectors.v4_signed.expected_pcrs;
    const ex = json('pcr3_pcr4.json').aws_docs_examples;
    const expect16: Record<number, string> = { 0: want.PCR0, 1: want.PCR1, 2: want.PCR2, 3: ex[0].expected, 4: ex[1].expected, 8: want.PCR8 };
    for (let i = 0; i < 32; i++) {
      const { lock, data } = await device.describePcr(i);
      expect(lock).toBe(i < 16);
      expect(hex(data)).toBe(expect16[i] ?? '00'.repeat(48));
    }
    expect(device.moduleId).toMatch(/^i-1234567890abcdef0-enc[0-9a-f]{16}$/);
    await device.attestation();
    expect(seen[0]!.pcrs.map((p) => p.index)).toEqual([...Array(16).keys()]);
    expect(seen[0]!.pcrs.map((p) => hex(p.data))).toEqual([...Array(16).keys()].map((i) => expect16[i] ?? '00'.repeat(48)));
  });

  test('debug mode zeroes PCR0, PCR1, PCR2 and PCR8 and keeps PCR3 and PCR4', async () => {
    const m = await measureEif(read('synthetic/v4_signed.eif'));
    const p = eifBootProfile(m.pcrs, { parentRoleArn: 'arn:aws:iam::1:role/r', parentInstanceId: 'i-0abc', debug: true });
    expect([...p.pcrs.keys()].sort()).toEqual([3, 4]);
    const device = new NsmDevice({ ...p, seed: '03' });
    for (const i of [0, 1, 2, 8]) expect(hex((await device.describePcr(i)).data)).toBe('00'.repeat(48));
    expect(hex((await device.describePcr(4)).data)).toBe(hex(parentInstancePcr('i-0abc')));
  });

  test('without a parent id the profile imposes none: the device draws one and measures it into PCR4', async () => {
    const m = await measureEif(read('synthetic/v1_basic_unsigned.eif'));
    const p = eifBootProfile(m.pcrs);
    expect([...p.pcrs.keys()]).toEqual([0, 1, 2]);
    expect(p.instanceId).toBeUndefined();
    const device = new NsmDevice({ ...p, seed: '04' });
    const instance = device.moduleId.slice(0, device.moduleId.indexOf('-enc'));
    expect(hex((await device.describePcr(4)).data)).toBe(hex(parentInstancePcr(instance)));
    expect(hex((await device.describePcr(0)).data)).toBe(hex(m.pcrs.pcr0));
  });
});
