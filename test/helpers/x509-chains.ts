/**
 * Certificates the X.509 tests read: every distinct certificate of the real AWS documents in
 * vectors/aws, and a five-level chain of ours (root, regional, zonal, instance, leaf) made
 * reproducibly from two seeds, valid around {@link T}.
 * @module
 */
import { readFileSync } from 'node:fs';
import { intermediatesAt } from '../../src/attestation/chain-schedule.js';
import { type IssuedCert, instanceName, issueCertificate, leafName } from '../../src/attestation/chain-profile.js';
import { DEVICE_FIELD_LIMITS, parseAttestationDocument } from '../../src/attestation/document-parse.js';
import { nobleBackend } from '../../src/attestation/p384.js';
import { createTestCa } from '../../src/attestation/test-ca.js';
import { SeededRandom } from '../../src/device/random.js';

/** The time of aws-real-doc-10, at which its chain and ours are valid (ms), and in seconds. */
export const T = Date.UTC(2026, 0, 3, 20, 41, 7, 402);
export const S = Math.floor(T / 1000);

const LEVELS = ['root', 'regional', 'zonal', 'instance', 'leaf'] as const;

/** Each distinct certificate of aws-real-doc-1..10, named `aws-doc<N>-<level>` by its first document. */
export function awsCertificates(): Array<{ name: string; der: Uint8Array }> {
  const seen = new Map<string, { name: string; der: Uint8Array }>();
  for (let n = 1; n <= 10; n++) {
    const doc = Uint8Array.from(Buffer.from(readFileSync(`vectors/aws/aws-real-doc-${n}.cbor.hex`, 'utf8').trim(), 'hex'));
    const d = parseAttestationDocument(doc, DEVICE_FIELD_LIMITS);
    [...d.cabundle, d.certificate].forEach((c, i) => {
      const key = Buffer.from(c).toString('hex');
      if (!seen.has(key)) seen.set(key, { name: `aws-doc${n}-${LEVELS[i]}`, der: c });
    });
  }
  return [...seen.values()];
}

/** Our chain, root first: the CA from `caSeed`, the instance and leaf keys from `keySeed`. */
export async function seededChain(caSeed: number, keySeed: number, label: string): Promise<IssuedCert[]> {
  const ca = await createTestCa({ rootNotBefore: Date.UTC(2020, 0, 1), random: new SeededRandom(new Uint8Array([caSeed]), label), crypto: 'noble' });
  const { regional, zonal } = await intermediatesAt(ca, T);
  const random = new SeededRandom(new Uint8Array([keySeed]), label);
  const common = { notBefore: S - 3600, notAfter: S + 3600, region: ca.region };
  const instance = await issueCertificate(
    { ...common, level: 'instance', name: instanceName('i-0123456789abcdef0', ca.region), key: await nobleBackend.generate(random), issuer: zonal, serial: new Uint8Array(20).fill(0x5a) },
    nobleBackend,
  );
  const leaf = await issueCertificate(
    { ...common, level: 'leaf', name: leafName('i-0123456789abcdef0-enc0123456789abcdef', ca.region), key: await nobleBackend.generate(random), issuer: instance, serial: new Uint8Array(16).fill(0x11) },
    nobleBackend,
  );
  return [ca.root, regional, zonal, instance, leaf];
}
