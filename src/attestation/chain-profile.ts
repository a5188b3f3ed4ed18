/**
 * The shape of AWS's Nitro certificate chain, level by level: root -> regional -> zonal ->
 * instance -> leaf. Subject names and their attribute order, lifetimes, extensions (and their
 * order and criticality), key usage and serial layout all follow the real chain as seen in AWS
 * documents from 2022 to 2026; only the root's name differs, so that nobody mistakes the test
 * root for AWS's.
 * @module
 */
import { sha384 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { instanceIdOf } from '../device/boot.js';
import type { P384Backend, P384Key } from './p384.js';
import {
  type CertExtension,
  type DistinguishedName,
  encodeName,
  encodeTbs,
  extensions,
  assembleCertificate,
  keyIdentifier,
} from './x509-build.js';

export type ChainLevel = 'root' | 'regional' | 'zonal' | 'instance' | 'leaf';

const HOUR = 3600;
const DAY = 24 * HOUR;

/** Lifetimes in seconds (notAfter - notBefore), as in real chains (the root: see {@link rootNotAfter}). */
export const LIFETIME_SECONDS = {
  /** Real regional certificates: 20 days and 1 hour. */
  regional: 20 * DAY + HOUR,
  /** Real zonal certificates: 5 days 18-22 hours; 5 days 22 hours here. */
  zonal: 5 * DAY + 22 * HOUR,
  /** Real instance certificates: exactly one day. */
  instance: DAY,
  /** The leaf: issued 3 s before first use, valid until 3 h after issuance. */
  leaf: 3 * HOUR + 3,
} as const;

/** The leaf's notBefore is this many seconds before its issuance (the time in its serial). */
export const LEAF_BACKDATE_SECONDS = 3;

export const DEFAULT_REGION = 'us-east-1';

/** The committed test root's common name; new roots add ` - ` and 8 hex digits of their key (see {@link testRootName}). */
export const TEST_ROOT_CN = 'nsm-emulator test root - not AWS';

/** A test root's subject: same attribute order and string types as Root-G1, plainly not AWS. */
export function testRootName(cn: string): DistinguishedName {
  return [
    ['C', 'US'],
    ['O', 'nsm-emulator'],
    ['OU', 'TEST ONLY'],
    ['CN', cn],
  ];
}

/** The committed test root's subject (certs/root.pem). */
export const TEST_ROOT_NAME: DistinguishedName = testRootName(TEST_ROOT_CN);

export function regionalName(id: string, region: string): DistinguishedName {
  return [
    ['C', 'US'],
    ['O', 'Amazon'],
    ['OU', 'AWS'],
    ['CN', `${id}.${region}.aws.nitro-enclaves`],
  ];
}

/** The zonal certificate's attributes come in the opposite order to every other level's. */
export function zonalName(id: string, region: string): DistinguishedName {
  return [
    ['CN', `${id}.zonal.${region}.aws.nitro-enclaves`],
    ['OU', 'AWS'],
    ['O', 'Amazon'],
    ['C', 'US'],
    ['ST', 'WA'],
    ['L', 'Seattle'],
  ];
}

function hostName(cn: string): DistinguishedName {
  return [
    ['C', 'US'],
    ['ST', 'Washington'],
    ['L', 'Seattle'],
    ['O', 'Amazon'],
    ['OU', 'AWS'],
    ['CN', cn],
  ];
}

export function instanceName(instanceId: string, region: string): DistinguishedName {
  return hostName(`${instanceId}.${region}.aws.nitro-enclaves`);
}

export function leafName(moduleId: string, region: string): DistinguishedName {
  return hostName(`${moduleId}.${region}.aws`);
}

/** A certificate of the chain together with its subject's key. */
export interface IssuedCert {
  readonly level: ChainLevel;
  readonly der: Uint8Array;
  readonly key: P384Key;
  /** The encoded subject Name. */
  readonly subject: Uint8Array;
  /** Subject key identifier (SHA-1 of the public key). */
  readonly keyId: Uint8Array;
  /** Seconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The certificate that signed this one; null for the root. */
  readonly issuer: IssuedCert | null;
}

/** True when the certificate is valid during the whole of [from, to] (seconds). */
export function covers(cert: IssuedCert, from: number, to: number): boolean {
  return cert.notBefore <= from && to <= cert.notAfter;
}

/**
 * SHA-1 (key identifiers) and SHA-384 (CRL URLs) for the certificate fields that hash a public
 * key: a signing backend may supply native ones (P384Backend.hashes), which give the same bytes
 * as the @noble/hashes defaults.
 */
export interface CertificateHashes {
  sha1(data: Uint8Array): Uint8Array;
  sha384(data: Uint8Array): Uint8Array;
}

/** A CRL URL under the reserved `.invalid` domain (AWS documents say no CRL is used). */
function crlUrl(host: string, issuerKey: Uint8Array, hashes?: CertificateHashes): string {
  const h = hashes ? hashes.sha384(issuerKey) : sha384(issuerKey);
  const b = h.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const x = bytesToHex(b);
  return `http://${host}/crl/${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}.crl`;
}

/** The extensions of each level, in AWS's order. */
export function profileExtensions(level: ChainLevel, keyId: Uint8Array, issuer: IssuerInfo | null, region: string, hashes?: CertificateHashes): CertExtension[] {
  const caUsage = extensions.keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign'], true);
  const aki = issuer ? extensions.authorityKeyIdentifier(issuer.keyId) : null;
  switch (level) {
    case 'root':
      return [extensions.basicConstraints(true), extensions.subjectKeyIdentifier(keyId), caUsage];
    case 'regional':
      return [
        extensions.basicConstraints(true, 2),
        aki!,
        extensions.subjectKeyIdentifier(keyId),
        caUsage,
        extensions.crlDistributionPoint(crlUrl('crl.nsm-emulator.invalid', issuer!.key.publicKey, hashes)),
      ];
    case 'zonal':
      return [
        extensions.basicConstraints(true, 1),
        aki!,
        extensions.subjectKeyIdentifier(keyId),
        caUsage,
        extensions.crlDistributionPoint(crlUrl(`crl-${region}.nsm-emulator.invalid`, issuer!.key.publicKey, hashes)),
      ];
    case 'instance':
      return [
        extensions.basicConstraints(true, 0),
        extensions.keyUsage(['keyCertSign'], true),
        extensions.subjectKeyIdentifier(keyId),
        aki!,
      ];
    case 'leaf':
      return [extensions.basicConstraints(false), extensions.keyUsage(['digitalSignature', 'nonRepudiation'], false)];
  }
}

/** What a new certificate needs from its issuer (known before the issuer itself is signed). */
export interface IssuerInfo {
  readonly subject: Uint8Array;
  readonly keyId: Uint8Array;
  readonly key: P384Key;
}

export interface IssueRequest {
  readonly level: ChainLevel;
  readonly name: DistinguishedName;
  readonly key: P384Key;
  /** Null makes a self-signed root. */
  readonly issuer: IssuerInfo | null;
  readonly serial: Uint8Array;
  /** Seconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly region: string;
  /** Native hashes for the key identifier and CRL URL (default: @noble/hashes; same bytes). */
  readonly hashes?: CertificateHashes | undefined;
}

/** A certificate ready to be signed: everything but the signature. */
export interface CertificateDraft extends IssuerInfo {
  readonly level: ChainLevel;
  readonly tbs: Uint8Array;
  readonly signingKey: P384Key;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Builds the TBSCertificate of one certificate of the chain. */
export function draftCertificate(req: IssueRequest): CertificateDraft {
  const subject = encodeName(req.name);
  const keyId = req.hashes ? req.hashes.sha1(req.key.publicKey) : keyIdentifier(req.key.publicKey);
  const tbs = encodeTbs({
    serial: req.serial,
    issuer: req.issuer ? req.issuer.subject : subject,
    subject,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    publicKey: req.key.publicKey,
    extensions: profileExtensions(req.level, keyId, req.issuer, req.region, req.hashes),
  });
  const signingKey = req.issuer ? req.issuer.key : req.key;
  return { level: req.level, tbs, subject, keyId, key: req.key, signingKey, notBefore: req.notBefore, notAfter: req.notAfter };
}

/** The issued certificate from a draft and its signature; `issuer` is the certificate above it. */
export function finishDraft(draft: CertificateDraft, signature: Uint8Array, issuer: IssuedCert | null): IssuedCert {
  const { level, key, subject, keyId, notBefore, notAfter } = draft;
  return { level, der: assembleCertificate(draft.tbs, signature), key, subject, keyId, notBefore, notAfter, issuer };
}

/** Builds and signs one certificate of the chain. */
export async function issueCertificate(req: IssueRequest & { readonly issuer: IssuedCert | null }, backend: P384Backend): Promise<IssuedCert> {
  const draft = draftCertificate(req);
  return finishDraft(draft, await backend.sign(draft.signingKey, draft.tbs), req.issuer);
}


const MODULE_ID = /^(i-[0-9a-f]+)-enc([0-9a-f]{16})$/;

/**
 * The parent instance id and 8-byte enclave id in a module_id `i-<hex>-enc<16 hex>`. Other
 * module ids (chosen by the user) get the part before `-enc` (or all of it) as instance id and
 * an enclave id hashed from the module id, with first byte 01 as in real ids.
 */
export function splitModuleId(moduleId: string): { instanceId: string; enclaveId: Uint8Array } {
  const m = MODULE_ID.exec(moduleId);
  if (m) {
    const hex = m[2]!;
    return { instanceId: m[1]!, enclaveId: hexToBytes(hex) };
  }
  const enclaveId = sha384(new TextEncoder().encode(moduleId)).slice(0, 8);
  enclaveId[0] = 0x01;
  // The same parent instance the device measured into PCR4.
  return { instanceId: instanceIdOf(moduleId), enclaveId };
}

/** The leaf serial: enclave id (8 bytes) || 00000000 || issuance time in Unix seconds (4 bytes). */
export function leafSerial(enclaveId: Uint8Array, issuedAt: number): Uint8Array {
  const s = new Uint8Array(16);
  s.set(enclaveId.subarray(0, 8));
  new DataView(s.buffer).setUint32(12, issuedAt >>> 0);
  return s;
}

/** Serial lengths of the random serials (root, regional and zonal: 16 bytes; instance: 20). */
export const RANDOM_SERIAL_BYTES: Record<Exclude<ChainLevel, 'leaf'>, number> = {
  root: 16,
  regional: 16,
  zonal: 16,
  instance: 20,
};
