// The inspector's report, comparisons and input decoding, checked against the facts recorded
// with the real AWS documents (vectors/aws/*.json), the EIF vectors' expected PCRs, and
// node:crypto's own reading of the public keys; and the `inspect` command's server.
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/index.js';
import { DocumentInputError, decodeDocumentInput } from '../src/attestation/document-input.js';
import { AWS_NITRO_ROOT_G1_PEM } from '../src/attestation/aws-root.js';
import { committedTestCa } from '../src/attestation/default-attester.js';
import { inspectDocument, type TrustedRoot } from '../src/inspector/report.js';
import { ExpectedPcrsError, comparePcrs, diffReports, parseExpectedPcrs } from '../src/inspector/compare.js';
import { describePublicKey } from '../src/inspector/public-key.js';
import { hex, unhex } from './helpers/hex.js';
import { AWS_ROOT_PEM, realAwsDoc as real } from './helpers/aws-vectors.js';
import { runCli } from './helpers/cli.js';
import { encodeRequest } from '../src/wire/encode-request.js';
import { spawnCliLive } from './helpers/inspector.js';

const AWS: TrustedRoot = { name: 'aws', certificate: AWS_ROOT_PEM };
const TEST: TrustedRoot = { name: 'test', certificate: committedTestCa().root.der };
const EIF = JSON.parse(readFileSync('vectors/eif/expected.json', 'utf8')).vectors.v1_basic_unsigned.expected_pcrs as Record<string, string>;

describe('the embedded AWS root', () => {
  it('is byte for byte the vector copy of AWS Nitro Enclaves Root-G1', () => {
    expect(AWS_NITRO_ROOT_G1_PEM.trim()).toBe(readFileSync('vectors/aws/aws-nitro-root-g1.pem', 'utf8').trim());
  });
});

describe('inspectDocument on real AWS documents', () => {
  for (let n = 1; n <= 10; n++) {
    it(`document ${n}: valid under AWS's root at its time, fields as recorded`, async () => {
      const { doc, facts } = real(n);
      const r = await inspectDocument(doc, { roots: [TEST, AWS] });
      expect(r.verdict).toMatchObject({ valid: true, root: 'aws', at: facts.timestamp_ms });
      expect(r.checks.map((c) => [c.root, c.valid, c.rule])).toEqual([['test', false, 'chain.root'], ['aws', true, null]]);
      expect(r.moduleId).toBe(facts.module_id);
      expect(r.timestamp).toBe(facts.timestamp_ms);
      expect(r.payloadMap).toBe(facts.format.payload_map_encoding.startsWith('indefinite') ? 'indefinite' : 'definite');
      expect(Object.fromEntries(r.pcrs.map((p) => [String(p.index), p.hex]))).toEqual(facts.pcrs);
      for (const p of r.pcrs) expect(p.zero).toBe(/^0+$/.test(facts.pcrs[String(p.index)]!));
      expect(r.fields.find((f) => f.name === 'user_data')!.hex).toBe(facts.user_data?.hex ?? '');
      expect(r.fields.find((f) => f.name === 'nonce')!.present).toBe(facts.nonce !== null);
      expect(r.chain.map((c) => c.role)).toEqual(['root', 'regional', 'zonal', 'instance', 'leaf']);
      expect(r.chain.every((c) => c.coversDocument && c.error === null)).toBe(true);
      expect(r.chain[0]!.subject).toBe('C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves');
      expect(r.chain[0]!.serial).toBe('f93175681b90afe11d46ccb4e4e7f856');
    });
  }

  it('checked at a time outside the chain: invalid with chain.validity', async () => {
    const { doc } = real(10);
    const r = await inspectDocument(doc, { roots: [TEST, AWS], time: Date.parse('2030-01-01T00:00:00Z') });
    expect(r.verdict).toMatchObject({ valid: false, root: 'aws', rule: 'chain.validity' });
  });

  it('under neither root: chain.root naming both', async () => {
    const { doc } = real(3);
    const r = await inspectDocument(doc, { roots: [TEST] });
    expect(r.verdict.rule).toBe('chain.root');
    const none = await inspectDocument(doc, { roots: [] });
    expect(none.verdict).toMatchObject({ valid: false, rule: 'chain.root' });
  });

  it('one flipped signature byte: invalid with the signature rule, fields still shown', async () => {
    const { doc, facts } = real(10);
    const bad = doc.slice();
    bad[bad.length - 1]! ^= 1;
    const r = await inspectDocument(bad, { roots: [TEST, AWS] });
    expect(r.verdict).toMatchObject({ valid: false, root: 'aws', rule: 'signature' });
    expect(r.moduleId).toBe(facts.module_id);
  });

  it('bytes that are not a document: a decode verdict and nothing else', async () => {
    const r = await inspectDocument(new Uint8Array([0x84, 0x40]), { roots: [AWS] });
    expect(r.decodeError).not.toBeNull();
    expect(r.verdict.valid).toBe(false);
    expect(r.verdict.rule).toMatch(/^cose\./);
    expect(r.pcrs).toEqual([]);
  });
});

describe('inspectDocument on emulator documents', () => {
  it('valid under the test root; user_data as JSON; an RSA public key decoded as node:crypto reads it', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
    const node = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).asymmetricKeyDetails!;
    const device = new NsmDevice({ seed: '01', pcrs: { 0: unhex(EIF['PCR0']!), 1: unhex(EIF['PCR1']!), 2: unhex(EIF['PCR2']!) } });
    const doc = await device.attestation({ userData: new TextEncoder().encode('{"app":"demo","n":1}'), nonce: new Uint8Array([1, 2, 3]), publicKey: spki });
    const r = await inspectDocument(doc, { roots: [TEST, AWS] });
    expect(r.verdict).toMatchObject({ valid: true, root: 'test' });
    expect(r.moduleId).toBe(device.moduleId);
    const user = r.fields.find((f) => f.name === 'user_data')!;
    expect(user.text).toBe('{"app":"demo","n":1}');
    expect(JSON.parse(user.json!)).toEqual({ app: 'demo', n: 1 });
    expect(r.fields.find((f) => f.name === 'nonce')).toMatchObject({ hex: '010203', text: null });
    const key = r.fields.find((f) => f.name === 'public_key')!.key!;
    expect(key).toMatchObject({ kind: 'rsa', bits: node.modulusLength, exponent: String(node.publicExponent) });

    const expected = parseExpectedPcrs(JSON.stringify({ Measurements: { HashAlgorithm: 'Sha384 { ... }', ...EIF } }));
    expect(comparePcrs(r, expected).map((c) => [c.index, c.match])).toEqual([[0, true], [1, true], [2, true]]);
    const wrong = parseExpectedPcrs(`PCR0=${EIF['PCR0']}\n1: ${'ab'.repeat(48)}\n# comment\n15 ${'00'.repeat(48)}\n16 ${'00'.repeat(48)}`);
    expect(comparePcrs(r, wrong).map((c) => [c.index, c.match])).toEqual([[0, true], [1, false], [15, true], [16, false]]);
  });

  it('EC and non-SPKI public keys are described, never thrown on', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(describePublicKey(new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })))).toMatchObject({ kind: 'ec', curve: 'P-256' });
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    expect(describePublicKey(new Uint8Array(ed))).toMatchObject({ kind: 'other-spki', algorithm: 'Ed25519' });
    expect(describePublicKey(new Uint8Array([1, 2, 3]))).toMatchObject({ kind: 'opaque' });
    expect(describePublicKey(new Uint8Array(0))).toMatchObject({ kind: 'opaque' });
  });

  it('two documents diffed: exactly the fields that differ', async () => {
    // Same seed and clock; the second was booted with PCR3 set (a parent role) and asked another nonce.
    const boot = { seed: '02', clock: () => Date.parse('2026-06-01T00:00:00Z') };
    const a = await inspectDocument(await new NsmDevice(boot).attestation({ nonce: new Uint8Array([1]) }), { roots: [TEST] });
    const other = new NsmDevice({ ...boot, pcrs: { 3: new Uint8Array(48).fill(3) } });
    const b = await inspectDocument(await other.attestation({ nonce: new Uint8Array([2]) }), { roots: [TEST] });
    const diff = diffReports(a, b);
    expect(diff.filter((d) => !d.same).map((d) => d.field)).toEqual(['PCR3', 'nonce']);
    expect(diff.find((d) => d.field === 'PCR3')).toMatchObject({ left: '00'.repeat(48), right: '03'.repeat(48) });
  });

  it('expected-PCR text that is not usable says why', () => {
    expect(() => parseExpectedPcrs('')).toThrow(ExpectedPcrsError);
    expect(() => parseExpectedPcrs('{"Measurements":{"PCR0":"xyz"}}')).toThrow(/PCR0 is not a PCR value/);
    expect(() => parseExpectedPcrs('PCR0 = zz')).toThrow(/line 1/);
    expect(() => parseExpectedPcrs('{bad')).toThrow(/not valid JSON/);
  });
});

describe('decodeDocumentInput', () => {
  const { doc } = real(10);
  it('accepts raw CBOR, hex (with spaces and 0x), base64 and base64url', () => {
    expect(decodeDocumentInput(doc)).toEqual(doc);
    expect(decodeDocumentInput(hex(doc))).toEqual(doc);
    expect(decodeDocumentInput(`0x${hex(doc).replace(/(.{64})/g, '$1\n ')}`)).toEqual(doc);
    expect(decodeDocumentInput(Buffer.from(doc).toString('base64'))).toEqual(doc);
    expect(decodeDocumentInput(Buffer.from(doc).toString('base64url'))).toEqual(doc);
    expect(decodeDocumentInput(new TextEncoder().encode(Buffer.from(doc).toString('base64')))).toEqual(doc);
  });
  it('refuses empty and undecodable input, and text that decodes to something else', () => {
    expect(() => decodeDocumentInput('')).toThrow(DocumentInputError);
    expect(() => decodeDocumentInput(new Uint8Array(0))).toThrow(DocumentInputError);
    expect(() => decodeDocumentInput('not a document!')).toThrow(/raw CBOR .* hex or base64/);
    // 'garbage' is valid base64 (81 aa db 6a 07), and 'a0' valid hex: neither is a COSE_Sign1.
    expect(() => decodeDocumentInput('garbage\n')).toThrow(/base64 decodes to 5 bytes starting 81aadb6a, not a COSE_Sign1/);
    expect(() => decodeDocumentInput('a0')).toThrow(/hex decodes to 1 bytes starting a0/);
    expect(() => decodeDocumentInput('{"DescribeNSM":{}}')).toThrow(/Attestation answer/);
  });

  it("takes the document out of the device's Attestation answer: raw CBOR, hex, and rpc --json's line", async () => {
    const device = new NsmDevice({ seed: '07' });
    const request = encodeRequest({ type: 'Attestation', userData: null, nonce: new Uint8Array([7]), publicKey: null });
    const answer = await device.handleRaw(request);
    expect(answer.subarray(0, 13)).toEqual(new Uint8Array([0xa1, 0x6b, ...new TextEncoder().encode('Attestation')]));
    const doc = decodeDocumentInput(answer);
    expect(doc[0]).toBe(0x84);
    expect(decodeDocumentInput(hex(answer))).toEqual(doc);
    const line = (await runCli(['rpc', '--json', '--seed', '07'], '{"Attestation":{"nonce":"07"}}\n')).stdout.trim();
    expect(line.startsWith('{"Attestation":{"document":"84')).toBe(true);
    const fromJson = decodeDocumentInput(line);
    const r = await inspectDocument(fromJson, { roots: [TEST] });
    expect(r.verdict.valid).toBe(true);
    expect(r.fields.find((f) => f.name === 'nonce')!.hex).toBe('07');
  });
});

describe('nsm-emulator inspect', () => {
  it('prints the address first, then the link that opens DOC; serves only the page and its modules', async () => {
    const cli = await spawnCliLive(['inspect', 'vectors/aws/aws-real-doc-10.cbor.hex']);
    try {
      const [listening, openLine] = await cli.lines(2);
      const url = /^listening on (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(listening!)![1]!;
      const { doc } = real(10);
      expect(openLine).toBe(`open ${url}#doc=${Buffer.from(doc).toString('base64url')}`);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).toContain("connect-src 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(await page.text()).toContain('/lib/inspector/page.js');
      expect((await fetch(`${url}lib/inspector/page.js`)).status).toBe(200);
      expect((await fetch(`${url}vendor/@noble/hashes/utils.js`)).status).toBe(200);
      for (const path of ['lib/../../package.json', 'lib/%2e%2e/%2e%2e/package.json', 'lib/node/ca-dir.d.ts', 'vendor/@noble/hashes/package.json', 'etc/passwd']) {
        expect((await fetch(url + path)).status, path).toBe(404);
      }
      expect((await fetch(url, { method: 'POST', body: 'x' })).status).toBe(405);
    } finally {
      expect(await cli.stop()).toBe(0);
    }
  });

  it('usage errors: exit 2 with one line naming the file', async () => {
    const cli = await spawnCliLive(['inspect', 'vectors/aws/INDEX.md']);
    expect(await cli.exit()).toBe(2);
    expect(cli.stderr().trim().split('\n')).toHaveLength(1);
    expect(cli.stderr()).toMatch(/^nsm-emulator inspect: vectors\/aws\/INDEX\.md: /);
    const garbage = join(mkdtempSync(join(tmpdir(), 'inspect-')), 'garbage.txt');
    writeFileSync(garbage, 'garbage\n');
    const text = await spawnCliLive(['inspect', garbage]);
    expect(await text.exit()).toBe(2);
    expect(text.stderr()).toMatch(/garbage\.txt: the base64 decodes to 5 bytes .* not a COSE_Sign1/);
    const big = await spawnCliLive(['inspect', '/dev/zero']);
    expect(await big.exit()).toBe(2);
    expect(big.stderr()).toMatch(/\/dev\/zero: more than 64 KiB; stopped reading there/);
  });
});
