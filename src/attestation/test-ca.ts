/**
 * A test certificate authority shaped like AWS's Nitro hierarchy.
 *
 * A {@link TestCa} holds the root (the certificate users pin) and optionally a regional and a
 * zonal certificate with their keys, used while they are valid. Instance and leaf certificates
 * are made per device by the attester (see chain-issuer.ts). Create one in memory with
 * {@link createTestCa}, or load one from PEM text with {@link testCaFromPem}.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { RandomSource } from '../device/random.js';
import { systemRandom } from '../device/random.js';
import { DerError } from '../x509/der.js';
import { parseCertificate } from '../x509/certificate.js';
import { pemDecode, pemEncode } from '../x509/pem.js';
import {
  type ChainLevel,
  DEFAULT_REGION,
  type IssuedCert,
  LIFETIME_SECONDS,
  RANDOM_SERIAL_BYTES,
  TEST_ROOT_NAME,
  issueCertificate,
  regionalName,
  rootNotAfter,
  zonalName,
} from './chain-profile.js';
import { type P384BackendChoice, type P384Key, selectBackend } from './p384.js';
import { decodePkcs8, encodePkcs8 } from './pkcs8.js';
import { keyIdentifier } from './x509-build.js';

export interface TestCa {
  /** Region in the intermediate names (`us-east-1`). */
  readonly region: string;
  readonly root: IssuedCert;
  /** Regional and zonal certificates kept with the CA; used while valid, replaced in memory after. */
  readonly regional: IssuedCert | null;
  readonly zonal: IssuedCert | null;
  /**
   * Regional and zonal certificates issued later under this root by unseeded devices, shared by
   * all of them as one AWS region serves many enclaves. Seeded devices keep their own, so that
   * their output depends only on their seed.
   */
  readonly shared?: SharedIntermediates;
}

/** The one mutable part of a CA: intermediates re-issued after the stored ones expired. */
export interface SharedIntermediates {
  regional: IssuedCert | null;
  zonal: IssuedCert | null;
}

export interface CreateTestCaOptions {
  /** Issuance time of the regional and zonal certificates, ms (default now). */
  readonly time?: number;
  /** The root's notBefore, ms (default: `time`). */
  readonly rootNotBefore?: number;
  readonly region?: string;
  /** Randomness for serials and ids, and for keys with the noble backend (default: system). */
  readonly random?: RandomSource;
  /** Signing backend (default `auto`: WebCrypto where available). */
  readonly crypto?: P384BackendChoice;
}

/** Makes a fresh root, regional and zonal (new keys, AWS's profile). */
export async function createTestCa(options: CreateTestCaOptions = {}): Promise<TestCa> {
  const random = options.random ?? systemRandom;
  const backend = selectBackend(options.crypto ?? 'auto', random);
  const region = options.region ?? DEFAULT_REGION;
  const now = Math.floor((options.time ?? Date.now()) / 1000);
  const rootStart = Math.floor((options.rootNotBefore ?? now * 1000) / 1000);
  if (rootStart > now) throw new RangeError('rootNotBefore is after the issuance time');
  const [rootKey, regionalKey, zonalKey] = [await backend.generate(random), await backend.generate(random), await backend.generate(random)];
  const root = await issueCertificate(
    {
      level: 'root',
      name: TEST_ROOT_NAME,
      key: rootKey,
      issuer: null,
      serial: random.bytes(RANDOM_SERIAL_BYTES.root),
      notBefore: rootStart,
      notAfter: rootNotAfter(rootStart),
      region,
    },
    backend,
  );
  const regional = await issueCertificate(
    {
      level: 'regional',
      name: regionalName(bytesToHex(random.bytes(8)), region),
      key: regionalKey,
      issuer: root,
      serial: random.bytes(RANDOM_SERIAL_BYTES.regional),
      notBefore: now,
      notAfter: Math.min(now + LIFETIME_SECONDS.regional, root.notAfter),
      region,
    },
    backend,
  );
  const zonal = await issueCertificate(
    {
      level: 'zonal',
      name: zonalName(bytesToHex(random.bytes(8)), region),
      key: zonalKey,
      issuer: regional,
      serial: random.bytes(RANDOM_SERIAL_BYTES.zonal),
      notBefore: now,
      notAfter: Math.min(now + LIFETIME_SECONDS.zonal, root.notAfter),
      region,
    },
    backend,
  );
  return { region, root, regional, zonal, shared: { regional: null, zonal: null } };
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
  readonly regional?: PemPair | undefined;
  readonly zonal?: PemPair | undefined;
}

/** A CA as PEM text (certificates and unencrypted PKCS#8 keys): the inverse of {@link testCaFromPem}. */
export function testCaToPem(ca: TestCa): TestCaPem {
  const pair = (c: IssuedCert): PemPair => ({
    certificate: pemEncode('CERTIFICATE', c.der),
    privateKey: pemEncode('PRIVATE KEY', encodePkcs8(c.key)),
  });
  return {
    region: ca.region,
    root: pair(ca.root),
    regional: ca.regional ? pair(ca.regional) : undefined,
    zonal: ca.zonal ? pair(ca.zonal) : undefined,
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

function loadPair(part: string, level: ChainLevel, pair: PemPair, issuer: IssuedCert | null): IssuedCert {
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
 * A CA from PEM text. Checks that every key matches its certificate and that each certificate
 * names the one above it as issuer (signatures are not re-verified here).
 */
export function testCaFromPem(pem: TestCaPem): TestCa {
  const root = loadPair('root', 'root', pem.root, null);
  const regional = pem.regional ? loadPair('regional', 'regional', pem.regional, root) : null;
  if (pem.zonal && !regional) throw new TestCaError('zonal certificate', 'needs the regional certificate that issued it');
  const zonal = pem.zonal && regional ? loadPair('zonal', 'zonal', pem.zonal, regional) : null;
  return { region: pem.region || DEFAULT_REGION, root, regional, zonal, shared: { regional: null, zonal: null } };
}
