// The verifier against real AWS documents (accept, then reject on any flipped byte, wrong root,
// outside validity) and against hand-built documents that break one rule each.
import { X509Certificate } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../src/index.js';
import {
  AttestationVerifyError,
  type VerifyRule,
  committedTestCa,
  createTestCa,
  encodeCoseSign1,
  encodePayload,
  makeAttestationDocument,
  sigStructure,
  verifyAttestationDocument,
  type PayloadFields,
  type TestCa,
} from '../src/attestation/index.js';
import { intermediatesAt } from '../src/attestation/chain-schedule.js';
import { type IssuedCert, leafName, instanceName, profileExtensions, zonalName } from '../src/attestation/chain-profile.js';
import { nobleBackend, type P384Key } from '../src/attestation/p384.js';
import { type CertExtension, assembleCertificate, encodeName, encodeTbs, extensions, keyIdentifier } from '../src/attestation/x509-build.js';
import { CborWriter } from '../src/wire/cbor-encode.js';
import { hex, unhex } from './helpers/hex.js';
import { AWS_ROOT_PEM as AWS_ROOT, realAwsDoc as real } from './helpers/aws-vectors.js';
import { ruleOf } from './helpers/verify-rule.js';

describe('real AWS documents', () => {
  const numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

  it.each(numbers)('accepts document %i with the AWS root at a time its chain is valid, with its published values', async (n) => {
    const { doc, facts } = real(n);
    const v = await verifyAttestationDocument(doc, { root: AWS_ROOT, time: facts.a_time_chain_is_valid_unix_ms });
    expect(v.moduleId).toBe(facts.module_id);
    expect(v.timestamp).toBe(facts.timestamp_ms);
    expect(Object.fromEntries([...v.pcrs].map(([k, x]) => [String(k), hex(x)]))).toEqual(facts.pcrs);
    expect(v.userData === null ? null : hex(v.userData)).toBe(facts.user_data?.hex ?? null);
    expect(v.nonce === null ? null : hex(v.nonce)).toBe(facts.nonce?.hex ?? null);
    expect(v.publicKey?.length ?? null).toBe(facts.public_key?.length ?? null);
    expect(v.payloadMap).toBe(facts.format.payload_map_encoding.startsWith('definite') ? 'definite' : 'indefinite');
    expect(v.tagged).toBe(false);
    expect(v.chain).toHaveLength(5);
    // Also at the document's own timestamp, with AWS's written field limits.
    await verifyAttestationDocument(doc, { root: AWS_ROOT, time: 'document', fieldLimits: 'aws-rules' });
  });

  it.each(numbers)('rejects document %i outside its validity and with our root', async (n) => {
    const { doc, facts } = real(n);
    expect(await ruleOf(verifyAttestationDocument(doc, { root: AWS_ROOT, time: facts.chain_valid_window.to_unix_ms + 1000 }))).toBe('chain.validity');
    expect(await ruleOf(verifyAttestationDocument(doc, { root: AWS_ROOT, time: facts.chain_valid_window.from_unix_ms - 1000 }))).toBe('chain.validity');
    expect(await ruleOf(verifyAttestationDocument(doc, { root: AWS_ROOT }))).toBe('chain.validity'); // now
    expect(await ruleOf(verifyAttestationDocument(doc, { root: committedTestCa().root.der, time: 'document' }))).toBe('chain.root');
  });

  it('says the pinned root is required when a JavaScript caller leaves it out', async () => {
    const doc = await makeAttestationDocument({ seed: '01' });
    const missing = verifyAttestationDocument(doc, {} as unknown as Parameters<typeof verifyAttestationDocument>[1]);
    expect(await ruleOf(missing)).toBe('chain.root');
    await expect(missing).rejects.toThrow(/options\.root is required: the pinned root certificate as DER bytes or PEM text \(got nothing\)/);
    const noOptions = (verifyAttestationDocument as (d: Uint8Array) => Promise<unknown>)(doc);
    expect(await ruleOf(noOptions)).toBe('chain.root');
    // A root in another realm's Uint8Array (vm, a worker's transfer) is still bytes.
    const foreign = new (runInNewContext('Uint8Array') as Uint8ArrayConstructor)(committedTestCa().root.der);
    expect((await verifyAttestationDocument(doc, { root: foreign, time: 'document' })).nonce).toBeNull();
  });

  it('rejects documents 1 and 10 with any one byte flipped (every 37th byte, and the last 100)', async () => {
    for (const n of [1, 10]) {
      const { doc, facts } = real(n);
      const positions = [...Array(doc.length).keys()].filter((i) => i % 37 === 0 || i >= doc.length - 100);
      for (const i of positions) {
        const bad = doc.slice();
        bad[i]! ^= 0x01;
        const rule = await ruleOf(verifyAttestationDocument(bad, { root: AWS_ROOT, time: facts.a_time_chain_is_valid_unix_ms }));
        expect({ n, i, rule }).not.toEqual({ n, i, rule: 'accepted' });
      }
    }
  });

  it('names the rule for typical flips: header, signature, a certificate, the timestamp', async () => {
    const { doc, facts } = real(10);
    const at = { root: AWS_ROOT, time: facts.a_time_chain_is_valid_unix_ms };
    const flip = (i: number) => {
      const b = doc.slice();
      b[i]! ^= 0x01;
      return b;
    };
    expect(await ruleOf(verifyAttestationDocument(flip(5), at))).toBe('cose.protected'); // 38 22 -> 38 23
    expect(await ruleOf(verifyAttestationDocument(flip(doc.length - 1), at))).toBe('signature');
    const ts = Buffer.from(doc).indexOf(Buffer.from('6974696d657374616d701b', 'hex')) + 18;
    expect(await ruleOf(verifyAttestationDocument(flip(ts), at))).toBe('signature');
    // The last byte of cabundle[1] (inside its signature) -> that certificate's signature.
    const c1 = certBytes(doc, 1);
    const end = Buffer.from(doc).indexOf(Buffer.from(c1)) + c1.length - 1;
    expect(await ruleOf(verifyAttestationDocument(flip(end), at))).toBe('chain.signature');
  });
});

/** cabundle[i] of a document whose payload has a 2-byte length, located by walking the bytes. */
function certBytes(doc: Uint8Array, i: number): Uint8Array {
  const payloadAt = 10;
  const len = (doc[8]! << 8) | doc[9]!;
  const payload = doc.subarray(payloadAt, payloadAt + len);
  const marker = Buffer.from(payload).indexOf(Buffer.from('68636162756e646c6584', 'hex')) + 10;
  let p = marker;
  for (let k = 0; ; k++) {
    const l = (payload[p + 1]! << 8) | payload[p + 2]!;
    if (k === i) return payload.subarray(p + 3, p + 3 + l);
    p += 3 + l;
  }
}

// ---- documents built by hand, each breaking one rule ------------------------------------------

const T = Date.UTC(2026, 0, 3, 20, 41, 7, 402);
const S = Math.floor(T / 1000);
const REGION = 'us-east-1';

interface Chain {
  ca: TestCa;
  certs: IssuedCert[]; // root, regional, zonal, instance, leaf
}

let counter = 0;
async function key(): Promise<P384Key> {
  return nobleBackend.generate(new SeededRandom(new Uint8Array([counter++]), 'verify-test'));
}

async function cert(
  level: IssuedCert['level'],
  name: Parameters<typeof encodeName>[0],
  issuer: IssuedCert,
  options: { exts?: (k: P384Key) => CertExtension[]; notBefore?: number; notAfter?: number; tbs?: (t: Uint8Array) => Uint8Array } = {},
): Promise<IssuedCert> {
  const k = await key();
  const subject = encodeName(name);
  const notBefore = options.notBefore ?? S - 3600;
  const notAfter = options.notAfter ?? S + 3600;
  let tbs = encodeTbs({
    serial: new Uint8Array([1, 2, 3, counter]),
    issuer: issuer.subject,
    subject,
    notBefore,
    notAfter,
    publicKey: k.publicKey,
    extensions: options.exts ? options.exts(k) : profileExtensions(level, keyIdentifier(k.publicKey), issuer, REGION),
  });
  if (options.tbs) tbs = options.tbs(tbs);
  const der = assembleCertificate(tbs, await nobleBackend.sign(issuer.key, tbs));
  return { level, der, key: k, subject, keyId: keyIdentifier(k.publicKey), notBefore, notAfter, issuer };
}

let baseCa: TestCa | null = null;
async function chain(tweak: { instance?: Parameters<typeof cert>[3]; leaf?: Parameters<typeof cert>[3]; extraCa?: boolean } = {}): Promise<Chain> {
  baseCa ??= await createTestCa({ rootNotBefore: Date.UTC(2020, 0, 1), random: new SeededRandom(new Uint8Array([7]), 'ca'), crypto: 'noble' });
  const ca = baseCa;
  const { regional, zonal } = await intermediatesAt(ca, T);
  const certs: IssuedCert[] = [ca.root, regional, zonal];
  if (tweak.extraCa) certs.push(await cert('zonal', zonalName('00000000000000ee', REGION), certs[2]!));
  const instance = await cert('instance', instanceName('i-0123456789abcdef0', REGION), certs.at(-1)!, tweak.instance);
  const leaf = await cert('leaf', leafName('i-0123456789abcdef0-enc0123456789abcdef', REGION), instance, tweak.leaf);
  certs.push(instance, leaf);
  return { ca, certs };
}

function fields(c: Chain, over: Partial<PayloadFields> = {}): PayloadFields {
  return {
    moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
    timestamp: T,
    pcrs: Array.from({ length: 16 }, (_, index) => ({ index, data: new Uint8Array(48) })),
    certificate: c.certs.at(-1)!.der,
    cabundle: c.certs.slice(0, -1).map((x) => x.der),
    publicKey: null,
    userData: null,
    nonce: null,
    ...over,
  };
}

async function sign(c: Chain, payload: Uint8Array): Promise<Uint8Array> {
  return encodeCoseSign1(payload, await nobleBackend.sign(c.certs.at(-1)!.key, sigStructure(payload)));
}

async function verdict(c: Chain, doc: Uint8Array, extra: Partial<Parameters<typeof verifyAttestationDocument>[1]> = {}) {
  return ruleOf(verifyAttestationDocument(doc, { root: c.ca.root.der, time: T, crypto: 'noble', ...extra }));
}

/** A payload map written by hand: entries in order, values as raw CBOR. */
function payloadFrom(entries: Array<[string, (w: CborWriter) => void]>): Uint8Array {
  const w = new CborWriter(8192).mapHeader(entries.length);
  for (const [k, v] of entries) {
    w.text(k);
    v(w);
  }
  return w.finish();
}

function standardEntries(c: Chain): Array<[string, (w: CborWriter) => void]> {
  const f = fields(c);
  return [
    ['module_id', (w) => w.text(f.moduleId)],
    ['digest', (w) => w.text('SHA384')],
    ['timestamp', (w) => w.uint64(T)],
    ['pcrs', (w) => {
      w.mapHeader(16);
      for (let i = 0; i < 16; i++) w.uint(i).bytes(new Uint8Array(48));
    }],
    ['certificate', (w) => w.bytes(f.certificate)],
    ['cabundle', (w) => {
      w.arrayHeader(f.cabundle.length);
      for (const x of f.cabundle) w.bytes(x);
    }],
    ['public_key', (w) => w.null()],
    ['user_data', (w) => w.null()],
    ['nonce', (w) => w.null()],
  ];
}

function replace(entries: Array<[string, (w: CborWriter) => void]>, key: string, v: ((w: CborWriter) => void) | null) {
  return v === null ? entries.filter(([k]) => k !== key) : entries.map(([k, x]) => [k, k === key ? v : x] as [string, (w: CborWriter) => void]);
}

describe('hand-built documents', () => {
  it('accepts a well-formed one in both map forms, tagged or not, and with null fields left out', async () => {
    const c = await chain();
    expect(await verdict(c, await sign(c, encodePayload(fields(c))))).toBe('accepted');
    expect(await verdict(c, await sign(c, encodePayload(fields(c), 'definite')))).toBe('accepted');
    const doc = await sign(c, encodePayload(fields(c)));
    expect(await verdict(c, new Uint8Array([0xd2, ...doc]))).toBe('accepted');
    expect(await verdict(c, new Uint8Array([0xd1, ...doc]))).toBe('cose.tag');
    const noOptional = standardEntries(c).filter(([k]) => !['public_key', 'user_data', 'nonce'].includes(k));
    expect(await verdict(c, await sign(c, payloadFrom(noOptional)))).toBe('accepted');
  });

  it('applies every syntactic rule of the payload', async () => {
    const c = await chain();
    const e = standardEntries(c);
    const cases: Array<[VerifyRule, Array<[string, (w: CborWriter) => void]>]> = [
      ['payload.module_id', replace(e, 'module_id', null)],
      ['payload.module_id', replace(e, 'module_id', (w) => w.text(''))],
      ['payload.digest', replace(e, 'digest', (w) => w.text('SHA256'))],
      ['payload.timestamp', replace(e, 'timestamp', (w) => w.uint(0))],
      ['payload.timestamp', replace(e, 'timestamp', (w) => w.text('now'))],
      ['payload.pcrs', replace(e, 'pcrs', (w) => w.mapHeader(0))],
      ['payload.pcrs', replace(e, 'pcrs', (w) => w.mapHeader(1).uint(32).bytes(new Uint8Array(48)))],
      ['payload.pcrs', replace(e, 'pcrs', (w) => w.mapHeader(1).uint(0).bytes(new Uint8Array(47)))],
      ['payload.pcrs', replace(e, 'pcrs', (w) => w.mapHeader(2).uint(0).bytes(new Uint8Array(48)).uint(0).bytes(new Uint8Array(48)))],
      ['payload.certificate', replace(e, 'certificate', (w) => w.bytes(new Uint8Array(0)))],
      ['payload.cabundle', replace(e, 'cabundle', (w) => w.arrayHeader(0))],
      ['payload.cabundle', replace(e, 'cabundle', (w) => w.arrayHeader(1).bytes(new Uint8Array(1025)))],
      ['payload.public_key', replace(e, 'public_key', (w) => w.bytes(new Uint8Array(0)))],
      ['payload.public_key', replace(e, 'public_key', (w) => w.bytes(new Uint8Array(1025)))],
      ['payload.user_data', replace(e, 'user_data', (w) => w.bytes(new Uint8Array(1025)))],
      ['payload.nonce', replace(e, 'nonce', (w) => w.text('abc'))],
      ['payload.keys', [...e, ['nonce', (w) => w.null()]]],
    ];
    for (const [rule, entries] of cases) {
      expect({ rule: await verdict(c, await sign(c, payloadFrom(entries))) }).toEqual({ rule });
    }
    // 600 bytes of user_data: accepted by default (the device makes up to 1024), not under AWS's written 512.
    const big = replace(e, 'user_data', (w) => w.bytes(new Uint8Array(600)));
    const doc = await sign(c, payloadFrom(big));
    expect(await verdict(c, doc)).toBe('accepted');
    expect(await verdict(c, doc, { fieldLimits: 'aws-rules' })).toBe('payload.user_data');
  });

  it('checks the COSE envelope', async () => {
    const c = await chain();
    const good = await sign(c, encodePayload(fields(c)));
    const w = (f: (x: CborWriter) => void) => {
      const x = new CborWriter();
      f(x);
      return x.finish();
    };
    const payload = encodePayload(fields(c));
    expect(await verdict(c, good.subarray(0, good.length - 1))).toBe('cose.decode');
    expect(await verdict(c, w((x) => x.arrayHeader(3).bytes(unhex('a1013822')).mapHeader(0).bytes(payload)))).toBe('cose.structure');
    expect(await verdict(c, w((x) => x.arrayHeader(4).bytes(unhex('a10126')).mapHeader(0).bytes(payload).bytes(new Uint8Array(96))))).toBe('cose.protected');
    expect(await verdict(c, w((x) => x.arrayHeader(4).bytes(unhex('a1013822')).arrayHeader(0).bytes(payload).bytes(new Uint8Array(96))))).toBe('cose.unprotected');
    expect(await verdict(c, w((x) => x.arrayHeader(4).bytes(unhex('a1013822')).mapHeader(0).null().bytes(new Uint8Array(96))))).toBe('cose.payload');
    expect(await verdict(c, w((x) => x.arrayHeader(4).bytes(unhex('a1013822')).mapHeader(0).bytes(payload).bytes(new Uint8Array(64))))).toBe('cose.signature-format');
    expect(await verdict(c, w((x) => x.arrayHeader(4).bytes(unhex('a1013822')).mapHeader(0).bytes(unhex('8100')).bytes(new Uint8Array(96))))).toBe('payload.decode');
  });

  it('anchors at the pinned root and never trusts cabundle[0] for being there', async () => {
    const c = await chain();
    // Another root with the very same name as this chain's (as two CAs made before names had a key tag did).
    const sameName = new X509Certificate(c.ca.root.der).subject.split('\n').at(-1)!.slice(3);
    const other = await createTestCa({ rootNotBefore: Date.UTC(2020, 0, 1), random: new SeededRandom(new Uint8Array([8]), 'ca'), crypto: 'noble', rootCommonName: sameName });
    const doc = await sign(c, encodePayload(fields(c)));
    // Pinned: another root. cabundle[0] is this chain's root -> rejected; both print the same
    // name, so the message tells them apart by SHA-256 fingerprints (node:crypto's here).
    const err = await verifyAttestationDocument(doc, { root: other.root.der, time: T }).catch((e: unknown) => e as AttestationVerifyError);
    expect(err).toBeInstanceOf(AttestationVerifyError);
    const fp = (der: Uint8Array) => new X509Certificate(der).fingerprint256.replaceAll(':', '').toLowerCase().slice(0, 16);
    const name = new X509Certificate(c.ca.root.der).subject.split('\n').join(', ');
    expect((err as AttestationVerifyError).message).toContain(
      `cabundle[0] ('${name}', SHA-256 ${fp(c.ca.root.der)}) is not the pinned root '${name}' (SHA-256 ${fp(other.root.der)})`,
    );
    expect(fp(c.ca.root.der)).not.toBe(fp(other.root.der));
    // Different names: no fingerprints.
    const aws = (await verifyAttestationDocument(doc, { root: AWS_ROOT, time: T }).catch((e: unknown) => e)) as AttestationVerifyError;
    expect(aws.message).toMatch(/is not the pinned root 'C=US, O=Amazon, OU=AWS, CN=aws\.nitro-enclaves'$/);
    // A forger copies the pinned root into cabundle[0]: the names match,
    // but cabundle[1] was not signed by the pinned root's key.
    const forged = await sign(c, encodePayload(fields(c, { cabundle: [other.root.der, ...fields(c).cabundle.slice(1)] })));
    expect(await ruleOf(verifyAttestationDocument(forged, { root: other.root.der, time: T }))).toBe('chain.signature');
    // Our own documents with AWS's root.
    expect(await ruleOf(verifyAttestationDocument(await makeAttestationDocument({ seed: '01' }), { root: AWS_ROOT }))).toBe('chain.root');
  });

  it('checks basicConstraints, path length, key usage, critical extensions, key type and issuer names', async () => {
    const leafTweaks: Array<[VerifyRule, Parameters<typeof chain>[0]]> = [
      ['chain.basic-constraints', { leaf: { exts: () => [extensions.basicConstraints(true), extensions.keyUsage(['digitalSignature'], false)] } }],
      ['chain.key-usage', { leaf: { exts: () => [extensions.basicConstraints(false), extensions.keyUsage(['nonRepudiation'], false)] } }],
      ['chain.key-usage', { instance: { exts: (k) => [extensions.basicConstraints(true, 0), extensions.keyUsage(['digitalSignature'], true), extensions.subjectKeyIdentifier(keyIdentifier(k.publicKey))] } }],
      ['chain.basic-constraints', { instance: { exts: () => [extensions.keyUsage(['keyCertSign'], true)] } }],
      ['chain.path-length', { extraCa: true }],
      ['chain.critical-extension', { leaf: { exts: () => [extensions.basicConstraints(false), extensions.keyUsage(['digitalSignature'], false), { oid: '1.2.3.4', critical: true, value: unhex('0500') }] } }],
      ['chain.validity', { leaf: { notBefore: S + 10, notAfter: S + 3600 } }],
      ['chain.validity', { instance: { notBefore: S - 7200, notAfter: S - 1 } }],
      // secp384r1 (2b 81 04 00 22) -> secp256k1 (2b 81 04 00 0a) in the leaf's key algorithm.
      ['chain.algorithm', { leaf: { tbs: (t) => patch(t, '2b81040022', '2b8104000a') } }],
      // issuer name changed after the fact: the names no longer chain.
      ['chain.issuer', { leaf: { tbs: (t) => patch(t, '0c0a57617368696e67746f6e', '0c0a57617368696e67746f4e') } }],
    ];
    for (const [rule, tweak] of leafTweaks) {
      const c = await chain(tweak);
      expect({ rule: await verdict(c, await sign(c, encodePayload(fields(c)))), tweak: JSON.stringify(Object.keys(tweak!)) }).toEqual({ rule, tweak: JSON.stringify(Object.keys(tweak!)) });
    }
  });

  it('checks the values the caller expects', async () => {
    const c = await chain();
    const nonce = new Uint8Array([1, 2, 3]);
    const doc = await sign(c, encodePayload(fields(c, { nonce, pcrs: [{ index: 0, data: new Uint8Array(48).fill(7) }] })));
    const pcr0 = new Uint8Array(48).fill(7);
    expect(await verdict(c, doc, { expectedPcrs: { 0: pcr0 }, expectedNonce: nonce, expectedModuleId: 'i-0123456789abcdef0-enc0123456789abcdef' })).toBe('accepted');
    expect(await verdict(c, doc, { expectedPcrs: new Map([[0, new Uint8Array(48)]]) })).toBe('expect.pcr');
    expect(await verdict(c, doc, { expectedPcrs: { 1: pcr0 } })).toBe('expect.pcr');
    expect(await verdict(c, doc, { expectedNonce: new Uint8Array([1, 2]) })).toBe('expect.nonce');
    expect(await verdict(c, doc, { expectedUserData: new Uint8Array(0) })).toBe('expect.user_data');
    expect(await verdict(c, doc, { expectedPublicKey: new Uint8Array(1) })).toBe('expect.public_key');
    expect(await verdict(c, doc, { expectedModuleId: 'i-x' })).toBe('expect.module_id');
  });
});

/** Replaces the first occurrence of one hex sequence with another of the same length. */
function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const at = Buffer.from(bytes).indexOf(Buffer.from(from, 'hex'));
  if (at < 0) throw new Error(`pattern ${from} not found`);
  const out = bytes.slice();
  out.set(unhex(to), at);
  return out;
}

// Issue #10: verification cost is capped before any signature work, unknown payload keys are a
// named failure unless allowed, and malformed input through the CLI is a verification failure.
describe('cost caps and unknown keys', () => {
  /** A backend that counts signature checks: caps must reject before the first one. */
  const counting = () => {
    let calls = 0;
    const backend = { ...nobleBackend, verify: async (...a: Parameters<typeof nobleBackend.verify>) => (calls++, nobleBackend.verify(...a)) };
    return { backend, calls: () => calls };
  };

  it('rejects a 4 MB document with 10,000 cabundle entries by size (cose.size), before any signature check', async () => {
    const c = await chain();
    const e = replace(standardEntries(c), 'cabundle', (w) => {
      w.arrayHeader(10_000);
      for (let i = 0; i < 10_000; i++) w.bytes(c.certs[1]!.der);
    });
    const w = new CborWriter(8 << 20).mapHeader(e.length);
    for (const [k, v] of e) v(w.text(k));
    const doc = await sign(c, w.finish());
    expect(doc.length).toBeGreaterThan(4_000_000);
    const n = counting();
    expect(await verdict(c, doc, { crypto: n.backend })).toBe('cose.size');
    expect(n.calls()).toBe(0);
  });

  it('caps cabundle at 8 entries (payload.cabundle) and the payload at 16384 bytes (cose.payload), before any signature check', async () => {
    const c = await chain();
    const nine = replace(standardEntries(c), 'cabundle', (w) => {
      w.arrayHeader(9);
      for (let i = 0; i < 9; i++) w.bytes(new Uint8Array(600).fill(i));
    });
    const n = counting();
    const doc = await sign(c, payloadFrom(nine));
    expect(doc.length).toBeLessThan(16640);
    expect(await verdict(c, doc, { crypto: n.backend })).toBe('payload.cabundle');
    const big = new CborWriter(20_000).arrayHeader(4).bytes(unhex('a1013822')).mapHeader(0).bytes(new Uint8Array(16385)).bytes(new Uint8Array(96)).finish();
    expect(await verdict(c, big, { crypto: n.backend })).toBe('cose.payload');
    expect(n.calls()).toBe(0);
    // Four entries, a real chain's length, still verify.
    expect(await verdict(c, await sign(c, encodePayload(fields(c))))).toBe('accepted');
  });

  it('fails an unknown payload key by default (payload.unknown-key) and accepts it when allowed', async () => {
    const c = await chain();
    const doc = await sign(c, payloadFrom([...standardEntries(c), ['future_field', (w) => w.text('x')]]));
    expect(await verdict(c, doc)).toBe('payload.unknown-key');
    expect(await verdict(c, doc, { allowUnknownKeys: true })).toBe('accepted');
  });

  it('verify CLI: malformed input exits 1 with a cose.* rule (JSON too); unknown keys need --allow-unknown-keys', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { runCli } = await import('./helpers/cli.js');
    const { pemEncode } = await import('../src/x509/pem.js');
    const dir = mkdtempSync(join(tmpdir(), 'nsm-verify-'));
    try {
      const c = await chain();
      const root = join(dir, 'root.pem');
      writeFileSync(root, pemEncode('CERTIFICATE', c.ca.root.der));
      const good = await sign(c, encodePayload(fields(c)));
      const cases: Array<[string, Uint8Array, string]> = [
        ['empty', new Uint8Array(0), 'cose.decode'],
        ['random', Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff | 0x80), 'cose.decode'],
        ['tag 17', new Uint8Array([0xd1, ...good]), 'cose.tag'],
        ['tag 61 as hex', new TextEncoder().encode('d83d' + hex(good)), 'cose.tag'],
        ['20 KB', new Uint8Array([0x84, ...new Uint8Array(20_000)]), 'cose.size'],
      ];
      for (const [name, bytes, rule] of cases) {
        const f = join(dir, name.replace(/ /g, '_'));
        writeFileSync(f, bytes);
        const r = await runCli(['verify', f, '--root', root, '--time', new Date(T).toISOString(), '--json']);
        expect({ name, code: r.code, rule: JSON.parse(r.stdout).rule }).toEqual({ name, code: 1, rule });
        expect(r.stderr).toMatch(new RegExp(`^nsm-emulator verify: FAILED rule ${rule.replace('.', '\\.')}: .*\\n$`));
      }
      const extra = join(dir, 'extra.cbor');
      writeFileSync(extra, await sign(c, payloadFrom([...standardEntries(c), ['future_field', (w) => w.text('x')]])));
      const strict = await runCli(['verify', extra, '--root', root, '--time', new Date(T).toISOString()]);
      expect([strict.code, strict.stderr]).toEqual([1, expect.stringContaining('FAILED rule payload.unknown-key: key "future_field" is not one of')]);
      const allowed = await runCli(['verify', extra, '--root', root, '--time', new Date(T).toISOString(), '--allow-unknown-keys']);
      expect(allowed.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
