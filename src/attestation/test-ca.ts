/**
 * A test certificate authority shaped like AWS's Nitro hierarchy.
 *
 * A {@link TestCa} is a root certificate (the one users pin) and its key. Everything below it
 * is derived: the regional, zonal and instance certificates from the root key and the time
 * (chain-schedule.ts), the leaf per device (chain-issuer.ts), so a CA never goes stale. By
 * default the root has the validity of AWS's Root-G1, 2019-10-28T13:28:05Z to
 * 2049-10-28T14:28:05Z (30 years and 1 hour). Create one in memory with {@link createTestCa},
 * or load one from PEM text with {@link testCaFromPem}.
 * @module
 */
import type { RandomSource } from '../device/random.js';
import { systemRandom } from '../device/random.js';
import { DerError } from '../x509/der.js';
import { parseCertificate } from '../x509/certificate.js';
import { pemDecode, pemEncode } from '../x509/pem.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { DEFAULT_REGION, type IssuedCert, RANDOM_SERIAL_BYTES, TEST_ROOT_CN, issueCertificate, testRootName } from './chain-profile.js';
import { type P384BackendChoice, type P384Key, selectBackend } from './p384.js';
import { decodePkcs8, encodePkcs8 } from './pkcs8.js';
import { NistCurvesNotLoadedError } from '../x509/nist-curves.js';
import { keyIdentifier } from './x509-build.js';

export interface TestCa {
  /** Region in the intermediate names (`us-east-1`). */
  readonly region: string;
  readonly root: IssuedCert;
}

/** AWS Nitro Enclaves Root-G1's notBefore, ms: the default start of a test root. */
export const AWS_ROOT_G1_NOT_BEFORE = Date.UTC(2019, 9, 28, 13, 28, 5);
/** AWS Nitro Enclaves Root-G1's notAfter, ms (30 years and 1 hour after its notBefore). */
export const AWS_ROOT_G1_NOT_AFTER = Date.UTC(2049, 9, 28, 14, 28, 5);

/** A root's notAfter for a chosen notBefore (ms): Root-G1's shape, 30 years and 1 hour later. */
export function rootNotAfterFor(notBeforeMs: number): number {
  const d = new Date(notBeforeMs);
  d.setUTCFullYear(d.getUTCFullYear() + 30);
  return d.getTime() + 3600_000;
}

export interface CreateTestCaOptions {
  /** The root's notBefore, ms (default AWS Root-G1's, 2019-10-28T13:28:05Z). */
  readonly rootNotBefore?: number;
  /**
   * The root's notAfter, ms (default: 30 years and 1 hour after `rootNotBefore`, as Root-G1;
   * with neither given, 2049-10-28T14:28:05Z).
   */
  readonly rootNotAfter?: number;
  readonly region?: string;
  /** Randomness for the serial, and for the key with the noble backend (default: system). */
  readonly random?: RandomSource;
  /** Signing backend (default `auto`: WebCrypto where available). */
  readonly crypto?: P384BackendChoice;
  /**
   * The root's common name. Default: `nsm-emulator test root - not AWS - ` and the first 8 hex
   * digits of the SHA-256 of the root's public key, so that two test roots never print the same
   * name (the committed root in certs/ is the one with the bare name, {@link TEST_ROOT_CN}).
   */
  readonly rootCommonName?: string;
}

/** The default common name of a new test root: {@link TEST_ROOT_CN}, ` - ` and 8 hex digits of its public key's SHA-256. */
export function defaultRootCommonName(publicKey: Uint8Array): string {
  return `${TEST_ROOT_CN} - ${bytesToHex(sha256(publicKey)).slice(0, 8)}`;
}

/** Makes a fresh root (new key, AWS's profile); intermediates are derived from it on use. */
export async function createTestCa(options: CreateTestCaOptions = {}): Promise<TestCa> {
  const random = options.random ?? systemRandom;
  const backend = selectBackend(options.crypto ?? 'auto', random);
  const region = options.region ?? DEFAULT_REGION;
  const startMs = options.rootNotBefore ?? AWS_ROOT_G1_NOT_BEFORE;
  const endMs = options.rootNotAfter ?? rootNotAfterFor(startMs);
  for (const [name, v] of [['rootNotBefore', startMs], ['rootNotAfter', endMs]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be milliseconds since 1970, got ${v}`);
  }
  const notBefore = Math.floor(startMs / 1000);
  const notAfter = Math.floor(endMs / 1000);
  if (notAfter <= notBefore) throw new RangeError(`rootNotAfter (${new Date(endMs).toISOString()}) must be after rootNotBefore (${new Date(startMs).toISOString()})`);
  const cn = options.rootCommonName;
  if (cn !== undefined && (cn.length === 0 || cn.length > 64)) throw new RangeError(`rootCommonName must be 1 to 64 characters (X.520's upper bound), got ${cn.length}`);
  const key = await backend.generate(random);
  const root = await issueCertificate(
    { level: 'root', name: testRootName(cn ?? defaultRootCommonName(key.publicKey)), key, issuer: null, serial: random.bytes(RANDOM_SERIAL_BYTES.root), notBefore, notAfter, region },
    backend,
  );
  return { region, root };
}

/** One certificate with its private key, as PEM text. */
export interface PemPair {
  readonly certificate: string;
  readonly privateKey: string;
}

/** A CA as PEM text: what a CA directory holds. */
export interface TestCaPem {
  readonly region: string;
  readonly root: PemPair;
}

/** A CA as PEM text (certificates and unencrypted PKCS#8 keys): the inverse of {@link testCaFromPem}. */
export function testCaToPem(ca: TestCa): TestCaPem {
  return {
    region: ca.region,
    root: { certificate: pemEncode('CERTIFICATE', ca.root.der), privateKey: pemEncode('PRIVATE KEY', encodePkcs8(ca.root.key)) },
  };
}

/** Thrown when CA material is inconsistent; `part` names the certificate or key at fault. */
export class TestCaError extends Error {
  override readonly name = 'TestCaError';
  constructor(
    readonly part: string,
    message: string,
  ) {
    super(`${part}: ${message}`);
  }
}

function loadPair(part: string, level: 'root', pair: PemPair, issuer: IssuedCert | null): IssuedCert {
  let der: Uint8Array;
  let key: P384Key;
  try {
    der = pemDecode(pair.certificate, 'CERTIFICATE');
  } catch (e) {
    throw new TestCaError(`${part} certificate`, (e as Error).message);
  }
  try {
    key = decodePkcs8(pemDecode(pair.privateKey, 'PRIVATE KEY'));
  } catch (e) {
    if (e instanceof NistCurvesNotLoadedError) throw e; // a key without its public key: load, then retry
    throw new TestCaError(`${part} private key`, (e as Error).message);
  }
  let cert;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new TestCaError(`${part} certificate`, e instanceof DerError ? e.message : String(e));
  }
  const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(cert.publicKey, key.publicKey)) throw new TestCaError(`${part} private key`, 'does not belong to the certificate');
  const expectedIssuer = issuer ? issuer.subject : cert.subject;
  if (!same(cert.issuer, expectedIssuer)) {
    throw new TestCaError(`${part} certificate`, `issuer '${cert.issuerText}' is not the subject of the ${issuer ? issuer.level : 'certificate itself'}`);
  }
  if (!cert.basicConstraints?.ca) throw new TestCaError(`${part} certificate`, 'is not a CA certificate (basicConstraints CA:TRUE)');
  return {
    level,
    der,
    key,
    subject: cert.subject,
    keyId: cert.subjectKeyId ?? keyIdentifier(key.publicKey),
    notBefore: Math.floor(cert.notBefore / 1000),
    notAfter: Math.floor(cert.notAfter / 1000),
    issuer,
  };
}

/**
 * A CA from PEM text. Checks that the key matches the certificate, that the certificate is
 * self-issued and a CA (the signature is not re-verified here).
 */
export function testCaFromPem(pem: TestCaPem): TestCa {
  return { region: pem.region || DEFAULT_REGION, root: loadPair('root', 'root', pem.root, null) };
}
