/**
 * The EIF view of an X.509 signing certificate, built on the shared parser in
 * src/x509/certificate.ts: the issuer name, the validity period (with OpenSSL's text for it, as
 * describe-eif prints it), the signature, and the EC public key that checks the PCR0 signature.
 * @module
 */
import { parseCertificate as parseX509 } from '../x509/certificate.js';
import type { NameAttribute } from '../x509/name.js';
import { CURVE_OIDS, type EcCurve, OID } from '../x509/oids.js';
import { findPem } from '../x509/pem.js';

export interface EcPublicKey {
  readonly curve: EcCurve;
  /** SEC1 point (uncompressed: 04 || x || y). */
  readonly point: Uint8Array;
}

export interface SigningCertificate {
  readonly der: Uint8Array;
  readonly issuer: readonly NameAttribute[];
  readonly subject: readonly NameAttribute[];
  readonly signatureAlgorithmOid: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The validity times as OpenSSL prints them (`Jan  1 00:00:00 2024 GMT`). */
  readonly notBeforeText: string;
  readonly notAfterText: string;
  /** The certificate's own signature (the BIT STRING contents). */
  readonly signature: Uint8Array;
  /** The subject public key when it is an EC key on P-256, P-384 or P-521. */
  readonly publicKey: EcPublicKey | null;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** A time as OpenSSL's ASN1_TIME_print writes it. */
function opensslTime(d: Date): string {
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
}

/** Parses a DER certificate. Throws `DerError` (src/x509/der.ts) when it is not one. */
export function parseCertificate(der: Uint8Array): SigningCertificate {
  const c = parseX509(der);
  const curve = c.publicKeyAlgorithm === OID.ecPublicKey && c.publicKeyCurve !== null ? CURVE_OIDS[c.publicKeyCurve] : undefined;
  const notBefore = new Date(c.notBefore);
  const notAfter = new Date(c.notAfter);
  return {
    der,
    issuer: c.issuerAttributes,
    subject: c.subjectAttributes,
    signatureAlgorithmOid: c.signatureAlgorithm,
    notBefore,
    notAfter,
    notBeforeText: opensslTime(notBefore),
    notAfterText: opensslTime(notAfter),
    signature: c.signature,
    publicKey: curve ? { curve, point: c.publicKey } : null,
  };
}

/**
 * The DER of the first certificate in PEM text, as OpenSSL's PEM reader takes it (the
 * `CERTIFICATE` or `X509 CERTIFICATE` label). Null when there is none or it does not parse.
 */
export function certificateDerFromPem(pem: string): Uint8Array | null {
  const block = findPem(pem, ['CERTIFICATE', 'X509 CERTIFICATE']);
  if (!block) return null;
  try {
    parseX509(block.der);
  } catch {
    return null;
  }
  return block.der;
}
