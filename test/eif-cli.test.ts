/**
 * describe-eif, pcr and build-eif through the CLI, cross-checked with openssl where it gives an
 * independent answer, and the round trip: build an EIF, describe it, boot a device from it,
 * attest, and check the attested PCRs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runCli } from './helpers/cli.js';
import { deviceOptionsFromFlags } from '../src/cli/boot-options.js';
import { NsmDevice } from '../src/device/nsm-device.js';
import { measureEif } from '../src/eif/index.js';
import { decodeSignatureSection } from '../src/eif/signature-section.js';
import { recordingAttester } from './helpers/fake-attester.js';
import type { AttestationInput } from '../src/device/attester.js';

const vec = (p: string) => new URL(`../vectors/eif/${p}`, import.meta.url).pathname;
const expected = JSON.parse(readFileSync(vec('expected.json'), 'utf8')).vectors;
const pcr34 = JSON.parse(readFileSync(vec('pcr3_pcr4.json'), 'utf8')).aws_docs_examples;
const tmp = mkdtempSync(join(tmpdir(), 'nsm-eif-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function openssl(args: string[], input?: Uint8Array): string | null {
  try {
    return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
}
const hasOpenssl = openssl(['version']) !== null;
if (!hasOpenssl) console.warn('eif-cli.test: openssl is not installed, so the openssl cross-checks only print this notice (.ci/run must install openssl)');

describe('describe-eif', () => {
  test.each(Object.keys(expected))('%s: nitro-cli fields and values', async (name) => {
    const v = expected[name];
    const r = await runCli(['describe-eif', '--eif-path', vec(v.file)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    const signed = v.expected_pcrs.PCR8 !== undefined;
    expect(Object.keys(j)).toEqual(['EifVersion', 'Measurements', 'IsSigned', ...(signed ? ['SigningCertificate'] : []), 'CheckCRC', ...(signed ? ['SignatureCheck'] : []), 'ImageName', 'ImageVersion', 'Metadata']);
    expect(j.EifVersion).toBe(4);
    expect(j.Measurements).toEqual({ HashAlgorithm: 'Sha384 { ... }', ...v.expected_pcrs });
    expect(Object.keys(j.Measurements)).toEqual(['HashAlgorithm', 'PCR0', 'PCR1', 'PCR2', ...(signed ? ['PCR8'] : [])]);
    expect(j.IsSigned).toBe(signed);
    expect(j.CheckCRC).toBe(true);
    if (signed) expect(j.SignatureCheck).toBe(true);
    expect([j.ImageName, j.ImageVersion]).toEqual(['synthetic-eif', '1.0']);
    // Build metadata, DockerInfo, then CustomMetadata's keys merged in (serde flatten).
    expect(j.Metadata).toEqual({ BuildTime: '2024-01-01T00:00:00+00:00', BuildTool: 'synthetic', BuildToolVersion: '0.0.0', OperatingSystem: 'Linux', KernelVersion: '6.1.0', DockerInfo: { Architecture: 'amd64', Id: 'sha256:0000' }, Purpose: 'test vector' });
    // serde_json's pretty printer: two-space indent, "key": value.
    expect(r.stdout).toBe(JSON.stringify(j, null, 2) + '\n');
  });

  test('SigningCertificate agrees with openssl', async () => {
    const j = JSON.parse((await runCli(['describe-eif', '--eif-path', vec('synthetic/v4_signed.eif')])).stdout).SigningCertificate;
    expect(Object.keys(j)).toEqual(['IssuerName', 'Algorithm', 'NotBefore', 'NotAfter', 'Signature']);
    if (!hasOpenssl) return console.warn('skipping the openssl comparison: openssl is not installed');
    const pem = vec('synthetic/signing_cert.pem');
    const x = (...a: string[]) => openssl(['x509', '-in', pem, '-noout', ...a])!.trim();
    expect(`notBefore=${j.NotBefore}`).toBe(x('-startdate'));
    expect(`notAfter=${j.NotAfter}`).toBe(x('-enddate'));
    const issuer = x('-issuer', '-nameopt', 'lname,sep_comma_plus').replace(/^issuer=/, '');
    expect(Object.fromEntries(issuer.split(/,\s*/).map((kv) => kv.split('=')))).toEqual(j.IssuerName);
    const text = x('-text');
    expect(text).toContain(`Signature Algorithm: ${j.Algorithm}`);
    const sigHex = /Signature Value:\s*([\s\S]*)$/.exec(text)![1]!.replace(/[\s:]/g, '');
    expect(j.Signature.replace(/:/g, '').toLowerCase()).toBe(sigHex);
  });

  test('a bad CRC: JSON with CheckCRC false, reason on stderr, exit 1', async () => {
    const b = new Uint8Array(readFileSync(vec('synthetic/v1_basic_unsigned.eif')));
    b[547] = b[547]! ^ 0xff;
    const f = join(tmp, 'badcrc.eif');
    writeFileSync(f, b);
    const r = await runCli(['describe-eif', '--eif-path', f]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).CheckCRC).toBe(false);
    expect(JSON.parse(r.stdout).Measurements.PCR0).toBe(expected.v1_basic_unsigned.expected_pcrs.PCR0);
    expect(r.stderr).toBe(`nsm-emulator describe-eif: ${f}: CRC mismatch: the header (offset 0x220) holds 1323de9c, the image's CRC-32 is 1323de63\n`);
  });

  test('not an EIF, a missing file, a missing option: exit 2 naming the file and the problem', async () => {
    const f = join(tmp, 'junk.eif');
    writeFileSync(f, new Uint8Array(600));
    let r = await runCli(['describe-eif', '--eif-path', f]);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(`nsm-emulator describe-eif: ${f}: not an EIF: magic is 00 00 00 00, expected 2e 65 69 66 (".eif") (at offset 0 = 0x0)\n`);
    r = await runCli(['describe-eif', '--eif-path', join(tmp, 'nope.eif')]);
    expect(r.stderr).toBe(`nsm-emulator describe-eif: ${join(tmp, 'nope.eif')}: cannot read the file (ENOENT)\n`);
    r = await runCli(['describe-eif']);
    expect([r.code, r.stderr]).toEqual([2, 'nsm-emulator describe-eif: --eif-path FILE is required\n']);
    // nitro-cli's habit of a positional FILE is refused with the option to use instead.
    r = await runCli(['describe-eif', f]);
    expect([r.code, r.stdout, r.stderr]).toEqual([2, '', `nsm-emulator describe-eif: unexpected argument '${f}': did you mean --eif-path ${f}?\n`]);
    r = await runCli(['describe-eif', f, '--eif-path', f]);
    expect([r.code, r.stderr]).toEqual([2, `nsm-emulator describe-eif: unexpected argument '${f}' (the image is given with --eif-path FILE)\n`]);
  });
});

describe('pcr', () => {
  test('--input: the extend of the file, key "PCR" (nitro-cli get_file_pcr)', async () => {
    const r = await runCli(['pcr', '--input', vec('synthetic/ramdisk1.bin')]);
    expect(r.stdout).toBe(`{\n  "PCR": "${expected.v1_basic_unsigned.expected_pcrs.PCR2}"\n}\n`);
  });
  test('--signing-certificate: PCR8 of the signed vector', async () => {
    const r = await runCli(['pcr', '--signing-certificate', vec('synthetic/signing_cert.pem')]);
    expect(JSON.parse(r.stdout)).toEqual({ PCR8: expected.v4_signed.expected_pcrs.PCR8 });
  });
  test('--parent-role and --parent-id: the AWS user guide values', async () => {
    expect(JSON.parse((await runCli(['pcr', '--parent-role', pcr34[0].input])).stdout)).toEqual({ PCR3: pcr34[0].expected });
    expect(JSON.parse((await runCli(['pcr', '--parent-id', pcr34[1].input])).stdout)).toEqual({ PCR4: pcr34[1].expected });
  });
  test('errors', async () => {
    expect((await runCli(['pcr'])).stderr).toBe('nsm-emulator pcr: give exactly one of --input, --signing-certificate, --parent-role, --parent-id\n');
    const r = await runCli(['pcr', '--signing-certificate', vec('synthetic/ramdisk0.bin')]);
    expect([r.code, r.stderr]).toEqual([2, `nsm-emulator pcr: --signing-certificate ${vec('synthetic/ramdisk0.bin')}: expected a PEM file holding an X.509 certificate ("-----BEGIN CERTIFICATE-----")\n`]);
    // 70001 bytes: over the 64 KiB a PEM file may have, refused while reading.
    const big = await runCli(['pcr', '--signing-certificate', vec('synthetic/kernel.bin')]);
    expect([big.code, big.stderr]).toEqual([2, `nsm-emulator pcr: --signing-certificate ${vec('synthetic/kernel.bin')}: more than 64 KiB; stopped reading there (expected a PEM certificate, a few KiB)\n`]);
  });
});

describe('build-eif', () => {
  const inputs = ['--kernel', vec('synthetic/kernel.bin'), '--cmdline', readFileSync(vec('synthetic/cmdline.txt'), 'utf8'), '--ramdisk', vec('synthetic/ramdisk0.bin'), '--ramdisk', vec('synthetic/ramdisk1.bin')];
  const meta = ['--name', 'synthetic-eif', '--version', '1.0', '--build-time', '2024-01-01T00:00:00+00:00', '--build-tool', 'synthetic', '--build-tool-version', '0.0.0', '--image-os', 'Linux', '--image-kernel', '6.1.0'];

  test('reproduces v1_basic_unsigned byte for byte and prints its measurements', async () => {
    writeFileSync(join(tmp, 'docker.json'), '{"Id":"sha256:0000","Architecture":"amd64"}');
    writeFileSync(join(tmp, 'custom.json'), '{"Purpose": "test vector"}');
    const out = join(tmp, 'v1.eif');
    const r = await runCli(['build-eif', ...inputs, ...meta, '--docker-info', join(tmp, 'docker.json'), '--metadata', join(tmp, 'custom.json'), '--output', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(vec('synthetic/v1_basic_unsigned.eif')))).toBe(true);
    expect(JSON.parse(r.stdout)).toEqual({ Measurements: { HashAlgorithm: 'Sha384 { ... }', ...expected.v1_basic_unsigned.expected_pcrs } });
  });

  test('signs with an openssl-made key; the signature verifies with openssl', async () => {
    if (!hasOpenssl) return console.warn('skipping the signed build: openssl is not installed (needed to make a key and certificate)');
    const key = join(tmp, 'key.pem');
    const cert = join(tmp, 'cert.pem');
    openssl(['ecparam', '-name', 'secp384r1', '-genkey', '-out', key]);
    openssl(['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', '/C=US/O=Test/CN=signer']);
    const out = join(tmp, 'signed.eif');
    const r = await runCli(['build-eif', ...inputs, ...meta, '--signing-certificate', cert, '--private-key', key, '--output', out]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const built = JSON.parse(r.stdout).Measurements;
    expect(built.PCR0).toBe(expected.v4_signed.expected_pcrs.PCR0); // signing does not change PCR0
    expect(built.PCR8).toBe(JSON.parse((await runCli(['pcr', '--signing-certificate', cert])).stdout).PCR8);
    const d = JSON.parse((await runCli(['describe-eif', '--eif-path', out])).stdout);
    expect([d.IsSigned, d.SignatureCheck, d.CheckCRC, d.Measurements]).toEqual([true, true, true, built]);
    // Independent check of the COSE_Sign1: Sig_structure built by hand, ECDSA checked by openssl.
    const m = await measureEif(new Uint8Array(readFileSync(out)));
    const [entry] = decodeSignatureSection(m.layout.signature!);
    expect(Buffer.from(entry!.signingCertificate).equals(readFileSync(cert))).toBe(true);
    const cose = Buffer.from(entry!.signature);
    // 84 | 44 a1013822 | a0 | 58 len payload | 58 60 r||s
    expect(cose.subarray(0, 8).toString('hex')).toBe('8444a1013822a058');
    const payload = Buffer.from(cose.subarray(9, 9 + cose[8]!));
    expect(cose.subarray(9 + payload.length, 11 + payload.length).toString('hex')).toBe('5860');
    expect(payload.toString('hex')).toBe(expected.v4_signed.signature_pcr0_payload_cbor_hex);
    const sig = cose.subarray(11 + payload.length);
    expect(sig.length).toBe(96);
    const tbs = Buffer.concat([Buffer.from('846a5369676e61747572653144a101382240', 'hex'), Buffer.from([0x58, payload.length]), payload]);
    const int = (b: Buffer) => {
      let x = b;
      while (x.length > 1 && x[0] === 0 && x[1]! < 0x80) x = x.subarray(1);
      if (x[0]! >= 0x80) x = Buffer.concat([Buffer.from([0]), x]);
      return Buffer.concat([Buffer.from([2, x.length]), x]);
    };
    const body = Buffer.concat([int(sig.subarray(0, 48)), int(sig.subarray(48))]);
    const der = Buffer.concat([Buffer.from([0x30, body.length]), body]);
    writeFileSync(join(tmp, 'tbs.bin'), tbs);
    writeFileSync(join(tmp, 'sig.der'), der);
    openssl(['x509', '-in', cert, '-pubkey', '-noout', '-out', join(tmp, 'pub.pem')]);
    expect(openssl(['dgst', '-sha384', '-verify', join(tmp, 'pub.pem'), '-signature', join(tmp, 'sig.der'), join(tmp, 'tbs.bin')])).toContain('Verified OK');
  });

  test('refuses a key that does not belong to the certificate, and names the files', async () => {
    if (!hasOpenssl) return console.warn('skipping: openssl is not installed');
    const other = join(tmp, 'other.pem');
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', other]);
    const r = await runCli(['build-eif', ...inputs, '--signing-certificate', vec('synthetic/signing_cert.pem'), '--private-key', other, '--output', join(tmp, 'x.eif')]);
    expect([r.code, r.stderr]).toEqual([2, `nsm-emulator build-eif: --private-key ${other}: the private key does not belong to the signing certificate's public key\n`]);
  });

  test('usage errors', async () => {
    expect((await runCli(['build-eif', '--cmdline', 'x'])).stderr).toBe('nsm-emulator build-eif: --kernel is required\n');
    expect((await runCli(['build-eif', ...inputs, '--output', join(tmp, 'y.eif'), '--private-key', 'k'])).stderr).toBe('nsm-emulator build-eif: --signing-certificate and --private-key go together\n');
  });
});

describe('build-eif --cmdline with a leading dash', () => {
  test('"-x ..." is taken as the command line (not refused as ambiguous), the same as --cmdline=-x ...', async () => {
    const cmdline = '-x console=ttyS0 quiet';
    const [split, joined] = [join(tmp, 'dash-split.eif'), join(tmp, 'dash-joined.eif')];
    const base = ['--kernel', vec('synthetic/kernel.bin'), '--ramdisk', vec('synthetic/ramdisk0.bin')];
    const a = await runCli(['build-eif', ...base, '--cmdline', cmdline, '--output', split]);
    expect(a.code, a.stderr).toBe(0);
    expect((await runCli(['build-eif', ...base, `--cmdline=${cmdline}`, '--output', joined])).code).toBe(0);
    const pcrs = async (f: string) => JSON.parse((await runCli(['describe-eif', '--eif-path', f])).stdout).Measurements;
    const [m1, m2] = [await pcrs(split), await pcrs(joined)];
    expect(m1).toEqual(m2);
    // PCR1 covers kernel || cmdline || first ramdisk: recomputed with node:crypto, so the
    // command line stored is exactly the text given.
    const { createHash } = await import('node:crypto');
    const inner = createHash('sha384').update(readFileSync(vec('synthetic/kernel.bin'))).update(cmdline).update(readFileSync(vec('synthetic/ramdisk0.bin'))).digest();
    expect(m1.PCR1).toBe(createHash('sha384').update(Buffer.alloc(48)).update(inner).digest('hex'));
  });
});

describe('round trip: build, describe, boot, attest', () => {
  test('a device booted with --eif/--parent-id/--parent-role attests the described PCRs', async () => {
    const out = join(tmp, 'rt.eif');
    const b = await runCli(['build-eif', '--kernel', vec('synthetic/kernel.bin'), '--cmdline', 'console=ttyS0', '--ramdisk', vec('synthetic/ramdisk0.bin'), '--ramdisk', vec('synthetic/ramdisk2.bin'), '--output', out]);
    expect(b.code).toBe(0);
    const d = JSON.parse((await runCli(['describe-eif', '--eif-path', out])).stdout).Measurements;
    const options = await deviceOptionsFromFlags({ eif: out, 'parent-id': pcr34[1].input, 'parent-role': pcr34[0].input, seed: '07' });
    const seen: AttestationInput[] = [];
    const device = new NsmDevice({ ...options, attester: recordingAttester(seen) });
    const want: Record<number, string> = { 0: d.PCR0, 1: d.PCR1, 2: d.PCR2, 3: pcr34[0].expected, 4: pcr34[1].expected };
    for (let i = 0; i < 16; i++) expect(hex((await device.describePcr(i)).data)).toBe(want[i] ?? '00'.repeat(48));
    expect(device.moduleId.startsWith(`${pcr34[1].input}-enc`)).toBe(true);
    await device.attestation({ nonce: new Uint8Array([1]) });
    expect(seen[0]!.moduleId).toBe(device.moduleId);
    expect(Object.fromEntries(seen[0]!.pcrs.map((p) => [p.index, hex(p.data)]))).toEqual(Object.fromEntries([...Array(16).keys()].map((i) => [i, want[i] ?? '00'.repeat(48)])));
  });

  test('the real attester signs those PCRs and the verifier accepts them (expectedPcrs, module_id)', async () => {
    const out = join(tmp, 'rt2.eif');
    await runCli(['build-eif', '--kernel', vec('synthetic/kernel.bin'), '--cmdline', 'console=ttyS0', '--ramdisk', vec('synthetic/ramdisk0.bin'), '--ramdisk', vec('synthetic/ramdisk2.bin'), '--output', out]);
    const d = JSON.parse((await runCli(['describe-eif', '--eif-path', out])).stdout).Measurements;
    const { verifyAttestationDocument } = await import('../src/attestation/verify.js');
    const { committedTestCa } = await import('../src/attestation/default-attester.js');
    const options = await deviceOptionsFromFlags({ eif: out, 'parent-id': pcr34[1].input, 'parent-role': pcr34[0].input, seed: '08' });
    const device = new NsmDevice(options);
    const nonce = new Uint8Array([9, 8, 7]);
    const doc = await device.attestation({ nonce });
    const want = new Map<number, Uint8Array>([...Array(16).keys()].map((i) => [i, new Uint8Array(48)]));
    for (const [i, v] of [[0, d.PCR0], [1, d.PCR1], [2, d.PCR2], [3, pcr34[0].expected], [4, pcr34[1].expected]] as const) want.set(i, Buffer.from(v, 'hex'));
    const verified = await verifyAttestationDocument(doc, { root: committedTestCa().root.der, expectedPcrs: want, expectedNonce: nonce, expectedModuleId: device.moduleId });
    expect([...verified.pcrs.keys()]).toEqual([...Array(16).keys()]);
    expect([...verified.pcrs].map(([i, v]) => [i, hex(v)])).toEqual([...want].map(([i, v]) => [i, hex(v)]));
    expect(verified.moduleId.startsWith(`${pcr34[1].input}-enc`)).toBe(true);
    // A document whose PCR0 differs from the EIF's is rejected by the same verifier.
    const wrong = new Map(want).set(0, new Uint8Array(48).fill(1));
    await expect(verifyAttestationDocument(doc, { root: committedTestCa().root.der, expectedPcrs: wrong })).rejects.toThrow();
  });

  test('rpc --eif --debug: PCR0 reads zero, PCR4 is kept', async () => {
    const r = await runCli(['rpc', '--json', '--eif', vec('synthetic/v1_basic_unsigned.eif'), '--parent-id', 'i-0abc', '--debug'], '{"DescribePCR":{"index":0}}\n{"DescribePCR":{"index":4}}\n');
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ DescribePCR: { lock: true, data: '00'.repeat(48) } });
    expect(lines[1].DescribePCR.data).toBe(JSON.parse((await runCli(['pcr', '--parent-id', 'i-0abc'])).stdout).PCR4);
  });

  test('--eif with a bad image or a bad CRC is refused with the file and the reason', async () => {
    const b = new Uint8Array(readFileSync(vec('synthetic/v1_basic_unsigned.eif')));
    b[547] = b[547]! ^ 0xff;
    const f = join(tmp, 'boot-badcrc.eif');
    writeFileSync(f, b);
    const r = await runCli(['rpc', '--eif', f], '');
    expect([r.code, r.stderr]).toEqual([2, `nsm-emulator rpc: --eif ${f}: not a bootable EIF: CRC mismatch: the header holds 1323de9c but the image's CRC-32 is 1323de63 (at offset 544 = 0x220)\n`]);
    const r2 = await runCli(['rpc', '--eif', vec('synthetic/kernel.bin')], '');
    expect(r2.stderr).toMatch(/^nsm-emulator rpc: --eif .*kernel\.bin: not a bootable EIF: not an EIF: magic is/);
  });
});
