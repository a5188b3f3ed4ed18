// Independent cross-checks of our documents: cose-js (elliptic) verifies the COSE_Sign1, openssl
// verifies the certificate chain and the ES384 signature, node:crypto checks every issuer link.
import { encode as cborxEncode, Decoder } from 'cbor-x';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/index.js';
import { makeAttestationDocument } from '../src/attestation/index.js';
import { nodeAttester } from '../src/node/ca-dir.js';
import { hex } from './helpers/hex.js';

const require = createRequire(import.meta.url);
const cose = require('cose-js') as { sign: { verify(doc: Buffer, verifier: unknown, options?: unknown): Promise<Buffer> } };

const cborx = new Decoder({ mapsAsObjects: false, useRecords: false });
const OPENSSL = process.env.OPENSSL ?? 'openssl';
const haveOpenssl = spawnSync(OPENSSL, ['version']).status === 0;
/** openssl is required by these checks; when it is absent the reason is printed (install it in .ci/run). */
function needOpenssl(): boolean {
  if (!haveOpenssl) console.warn(`NOT CHECKED: '${OPENSSL}' was not found; install openssl (.ci/run) to run the openssl cross-checks`);
  return haveOpenssl;
}

function openssl(args: string[], input?: Uint8Array): { status: number | null; out: string } {
  const r = spawnSync(OPENSSL, args, { input: input ?? '', encoding: 'buffer' });
  return { status: r.status, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

function open(doc: Uint8Array) {
  const [protectedBytes, , payload, signature] = cborx.decode(doc) as [Uint8Array, unknown, Uint8Array, Uint8Array];
  const f = cborx.decode(payload) as Map<string, unknown>;
  return {
    protectedBytes,
    payload,
    signature,
    timestamp: Number(f.get('timestamp')),
    leaf: f.get('certificate') as Uint8Array,
    bundle: f.get('cabundle') as Uint8Array[],
  };
}

/** DER Ecdsa-Sig-Value from r || s, written here independently of the library. */
function derSignature(rs: Uint8Array): Buffer {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), b.subarray(i)]) : Buffer.from(b.subarray(i));
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(rs.subarray(0, 48)), int(rs.subarray(48))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

const documents: Array<[string, () => Promise<Uint8Array>]> = [
  ['a default device (WebCrypto, indefinite map)', () => new NsmDevice().attestation({ nonce: new Uint8Array([1, 2, 3]), publicKey: new Uint8Array(97).fill(4) })],
  ['a seeded device (RFC 6979 via noble)', () => new NsmDevice({ seed: 'c0ffee', clock: () => 1_767_472_867_402 }).attestation({ userData: new Uint8Array(0) })],
  ['a device signing through node:crypto (nsm-emulator/node)', () => new NsmDevice({ attester: nodeAttester() }).attestation({ userData: new Uint8Array(32).fill(7) })],
  ['makeAttestationDocument (definite map, 2022 timestamp)', () => makeAttestationDocument({ timestamp: 1_657_117_102_484, payloadMap: 'definite', seed: '02' })],
];

describe.each(documents)('%s', (_name, make) => {
  it('verifies with cose-js using the leaf public key (untagged, read as COSE_Sign1)', async () => {
    const doc = await make();
    const { leaf, payload } = open(doc);
    const jwk = new X509Certificate(leaf).publicKey.export({ format: 'jwk' });
    const verifier = { key: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') } };
    const out = await cose.sign.verify(Buffer.from(doc), verifier, { defaultType: 18 });
    expect(hex(out)).toBe(hex(payload));
    const bad = Buffer.from(doc);
    bad[bad.length - 5]! ^= 0x01;
    await expect(cose.sign.verify(bad, verifier, { defaultType: 18 })).rejects.toThrow(/missmatch|mismatch/i);
  });

  it('chains root -> regional -> zonal -> instance -> leaf by node:crypto issuer checks', async () => {
    const { leaf, bundle } = open(await make());
    const chain = [...bundle, leaf].map((d) => new X509Certificate(d));
    for (let i = 1; i < chain.length; i++) {
      expect(chain[i]!.checkIssued(chain[i - 1]!)).toBe(true);
      expect(chain[i]!.verify(chain[i - 1]!.publicKey)).toBe(true);
    }
    expect(chain[0]!.verify(chain[0]!.publicKey)).toBe(true);
  });

  it('passes openssl verify at the document time, and openssl dgst -sha384 -verify', async () => {
    if (!needOpenssl()) return;
    const doc = await make();
    const { leaf, bundle, timestamp, payload, protectedBytes, signature } = open(doc);
    const dir = mkdtempSync(join(tmpdir(), 'nsm-xcheck-'));
    writeFileSync(join(dir, 'root.pem'), pem(bundle[0]!));
    writeFileSync(join(dir, 'bundle.pem'), bundle.slice(1).map(pem).join(''));
    writeFileSync(join(dir, 'leaf.pem'), pem(leaf));
    const at = String(Math.floor(timestamp / 1000));
    const ok = openssl(['verify', '-attime', at, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')]);
    expect(ok.out).toContain('leaf.pem: OK');
    expect(ok.status).toBe(0);
    // Like AWS's own leaf, ours has no authorityKeyIdentifier, which only -x509_strict objects to
    // (real document 10 fails it with the same error 85 at depth 0).
    const strict = openssl(['verify', '-x509_strict', '-attime', at, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')]);
    expect(strict.out).toContain('error 85 at 0 depth lookup: Missing Authority Key Identifier');
    // ...and not once the 3-hour leaf has expired.
    const late = openssl(['verify', '-attime', String(Number(at) + 4 * 3600), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')]);
    expect(late.status).not.toBe(0);

    // Sig_structure encoded by cbor-x, not by the library.
    const toBeSigned = cborxEncode(['Signature1', Buffer.from(protectedBytes), Buffer.alloc(0), Buffer.from(payload)]);
    writeFileSync(join(dir, 'tbs.bin'), toBeSigned);
    writeFileSync(join(dir, 'sig.der'), derSignature(signature));
    writeFileSync(join(dir, 'leafpub.pem'), new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'pem' }));
    const dgst = openssl(['dgst', '-sha384', '-verify', join(dir, 'leafpub.pem'), '-signature', join(dir, 'sig.der'), join(dir, 'tbs.bin')]);
    expect(dgst.out.trim()).toBe('Verified OK');
    toBeSigned[toBeSigned.length - 1]! ^= 1;
    writeFileSync(join(dir, 'tbs.bin'), toBeSigned);
    expect(openssl(['dgst', '-sha384', '-verify', join(dir, 'leafpub.pem'), '-signature', join(dir, 'sig.der'), join(dir, 'tbs.bin')]).out).toContain('Verification failure');
  });
});

describe('the committed test CA in certs/', () => {
  it('has a key openssl reads as P-384 and that matches its certificate; nothing else is stored', () => {
    if (!needOpenssl()) return;
    const key = openssl(['pkey', '-in', 'certs/root.key', '-pubout']);
    expect(key.status).toBe(0);
    const cert = openssl(['x509', '-in', 'certs/root.pem', '-noout', '-pubkey']);
    expect(key.out).toBe(cert.out);
    expect(openssl(['pkey', '-in', 'certs/root.key', '-noout', '-text']).out).toContain('NIST CURVE: P-384');
  });

  // From the root's first second to its last: openssl verifies every document's chain at the
  // document time (and the CA levels under -x509_strict), and the leaf's dates sit inside it.
  const times = [
    Date.UTC(2019, 9, 28, 13, 28, 5),
    Date.UTC(2019, 9, 28, 13, 29, 0),
    Date.UTC(2019, 10, 2),
    Date.UTC(2025, 0, 1),
    Date.UTC(2038, 0, 19, 3, 14, 8),
    Date.UTC(2049, 9, 20),
    Date.UTC(2049, 9, 28, 13, 0, 0),
    Date.UTC(2049, 9, 28, 14, 28, 4, 999), // the last instant before notAfter, which OpenSSL already counts as expired
  ];
  it.each(times.map((t) => [new Date(t).toISOString(), t] as const))('signs at %s, and openssl verifies the chain then', async (_iso, t) => {
    if (!needOpenssl()) return;
    const doc = await new NsmDevice({ seed: '0c', clock: () => t }).attestation();
    const { leaf, bundle, timestamp } = open(doc);
    expect(timestamp).toBe(t);
    const dir = mkdtempSync(join(tmpdir(), 'nsm-xcheck-'));
    writeFileSync(join(dir, 'bundle.pem'), bundle.slice(1, -1).map(pem).join(''));
    writeFileSync(join(dir, 'instance.pem'), pem(bundle.at(-1)!));
    writeFileSync(join(dir, 'leaf.pem'), pem(leaf));
    writeFileSync(join(dir, 'all.pem'), bundle.slice(1).map(pem).join(''));
    const at = String(Math.floor(t / 1000));
    expect(Date.parse(new X509Certificate(leaf).validTo)).toBeGreaterThan(t);
    const ca = openssl(['verify', '-x509_strict', '-attime', at, '-CAfile', 'certs/root.pem', '-untrusted', join(dir, 'bundle.pem'), join(dir, 'instance.pem')]);
    expect(ca.out).toContain('instance.pem: OK');
    const ok = openssl(['verify', '-attime', at, '-CAfile', 'certs/root.pem', '-untrusted', join(dir, 'all.pem'), join(dir, 'leaf.pem')]);
    expect(ok.out).toContain('leaf.pem: OK');
    expect(ok.status).toBe(0);
  });
});
