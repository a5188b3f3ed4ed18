/**
 * Writing X.509 v3 certificates (RFC 5280) signed with ECDSA P-384 / SHA-384, with the exact
 * encodings AWS's Nitro chain uses: countryName as PrintableString and every other attribute as
 * UTF8String, UTCTime validity, extensions in the order given.
 * @module
 */
import { sha1 } from '@noble/hashes/legacy.js';
import {
  der,
  derBitString,
  derBoolean,
  derOctetString,
  derOid,
  derSequence,
  derSmallInt,
  derString,
  derTime,
  derUnsigned,
} from '../x509/der-write.js';
import { TAG, contextTag } from '../x509/der.js';
import { KEY_USAGE, type KeyUsageName, NAME_OIDS, type NameAttributeType, OID } from '../x509/oids.js';
import { type P384Backend, type P384Key, signatureToDer } from './p384.js';

/** A distinguished name in encoding order (first = outermost RDN). */
export type DistinguishedName = ReadonlyArray<readonly [NameAttributeType, string]>;

/** The DER `Name`: one attribute per RDN, C as PrintableString, the rest UTF8String. */
export function encodeName(name: DistinguishedName): Uint8Array {
  return derSequence(
    ...name.map(([type, value]) =>
      der(TAG.SET, derSequence(derOid(NAME_OIDS[type]), derString(type === 'C' ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING, value))),
    ),
  );
}

/** One certificate extension. */
export interface CertExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The DER value that goes inside the extnValue OCTET STRING. */
  readonly value: Uint8Array;
}

/** Named BIT STRING with trailing zero bits removed, as DER requires. */
export function encodeKeyUsageBits(usages: readonly KeyUsageName[]): Uint8Array {
  const bits = usages.map((u) => KEY_USAGE[u]);
  if (bits.length === 0) return der(TAG.BIT_STRING, new Uint8Array([0]));
  const top = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (top % 8);
  return der(TAG.BIT_STRING, new Uint8Array([unused]), bytes);
}

export const extensions = {
  /** basicConstraints: `ca` false gives the empty SEQUENCE AWS uses on the leaf. */
  basicConstraints(ca: boolean, pathLen?: number): CertExtension {
    const parts = ca ? [derBoolean(true), ...(pathLen === undefined ? [] : [derSmallInt(pathLen)])] : [];
    return { oid: OID.basicConstraints, critical: true, value: derSequence(...parts) };
  },
  keyUsage(usages: readonly KeyUsageName[], critical: boolean): CertExtension {
    return { oid: OID.keyUsage, critical, value: encodeKeyUsageBits(usages) };
  },
  subjectKeyIdentifier(keyId: Uint8Array): CertExtension {
    return { oid: OID.subjectKeyIdentifier, critical: false, value: derOctetString(keyId) };
  },
  /** authorityKeyIdentifier with the keyIdentifier field only. */
  authorityKeyIdentifier(keyId: Uint8Array): CertExtension {
    return { oid: OID.authorityKeyIdentifier, critical: false, value: derSequence(der(contextTag(0, false), keyId)) };
  },
  /** One distribution point with one URI as its full name. */
  crlDistributionPoint(uri: string): CertExtension {
    const fullName = der(contextTag(0, true), derString(contextTag(6, false), uri));
    return { oid: OID.crlDistributionPoints, critical: false, value: derSequence(derSequence(der(contextTag(0, true), fullName))) };
  },
};

/** SHA-1 of the public key bits: key identifier method 1 of RFC 5280 4.2.1.2, as AWS's chain uses. */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return sha1(publicKey);
}

const ALG_ECDSA_SHA384 = derSequence(derOid(OID.ecdsaWithSha384));
const SPKI_ALG = derSequence(derOid(OID.ecPublicKey), derOid(OID.secp384r1));

/** SubjectPublicKeyInfo for a P-384 point. */
export function encodeSpki(publicKey: Uint8Array): Uint8Array {
  return derSequence(SPKI_ALG, derBitString(publicKey));
}

export interface TbsFields {
  /** Serial magnitude, big-endian (encoded as a positive INTEGER). */
  readonly serial: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  /** Seconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicKey: Uint8Array;
  readonly extensions: readonly CertExtension[];
}

/** TBSCertificate of a v3 certificate. */
export function encodeTbs(f: TbsFields): Uint8Array {
  const exts = f.extensions.map((e) =>
    derSequence(derOid(e.oid), ...(e.critical ? [derBoolean(true)] : []), derOctetString(e.value)),
  );
  return derSequence(
    der(contextTag(0, true), derSmallInt(2)),
    derUnsigned(f.serial),
    ALG_ECDSA_SHA384,
    f.issuer,
    derSequence(derTime(f.notBefore), derTime(f.notAfter)),
    f.subject,
    encodeSpki(f.publicKey),
    der(contextTag(3, true), derSequence(...exts)),
  );
}

/** The certificate DER from a TBSCertificate and its 96-byte r || s signature. */
export function assembleCertificate(tbs: Uint8Array, rs: Uint8Array): Uint8Array {
  return derSequence(tbs, ALG_ECDSA_SHA384, derBitString(signatureToDer(rs)));
}

/** Signs a TBSCertificate with the issuer's key and returns the certificate DER. */
export async function signCertificate(tbs: Uint8Array, issuerKey: P384Key, backend: P384Backend): Promise<Uint8Array> {
  return assembleCertificate(tbs, await backend.sign(issuerKey, tbs));
}
