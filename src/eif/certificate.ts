/**
 * The parts of an X.509 signing certificate that EIF tooling uses: the DER, the issuer name,
 * the validity period, the signature, and the EC public key that checks the PCR0 signature.
 * @module
 */
import { DER, DerError, bitStringBytes, children, decodeDer, expectTag, oidText, type DerElement } from './der.js';
import { findPem } from './pem.js';

export type EcCurve = 'P-256' | 'P-384' | 'P-521';

export const CURVE_OIDS: Record<string, EcCurve> = {
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
};
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';

export interface EcPublicKey {
  readonly curve: EcCurve;
  /** SEC1 point (uncompressed: 04 || x || y). */
  readonly point: Uint8Array;
}

export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
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
const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeString(el: DerElement): string {
  switch (el.tag) {
    case DER.UTF8_STRING:
      return utf8.decode(el.value);
    case DER.PRINTABLE_STRING:
    case DER.IA5_STRING:
    case DER.T61_STRING:
      return latin1(el.value);
    case DER.BMP_STRING: {
      let s = '';
      for (let i = 0; i + 1 < el.value.length; i += 2) s += String.fromCharCode((el.value[i]! << 8) | el.value[i + 1]!);
      return s;
    }
    case DER.UNIVERSAL_STRING: {
      let s = '';
      const v = new DataView(el.value.buffer, el.value.byteOffset, el.value.length);
      for (let i = 0; i + 3 < el.value.length; i += 4) s += String.fromCodePoint(v.getUint32(i));
      return s;
    }
    default:
      return latin1(el.value);
  }
}

function parseName(el: DerElement): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of children(expectTag(el, DER.SEQUENCE, 'Name'))) {
    for (const atv of children(expectTag(rdn, DER.SET, 'RelativeDistinguishedName'))) {
      const [type, value] = children(expectTag(atv, DER.SEQUENCE, 'AttributeTypeAndValue'));
      out.push({ oid: oidText(expectTag(type, DER.OID, 'attribute type').value), value: decodeString(value!) });
    }
  }
  return out;
}

function parseTime(el: DerElement | undefined): { date: Date; text: string } {
  if (!el || (el.tag !== DER.UTC_TIME && el.tag !== DER.GENERALIZED_TIME)) throw new DerError('validity: expected a UTCTime or GeneralizedTime');
  const s = latin1(el.value);
  const m = el.tag === DER.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d+)?Z$/.exec(s);
  if (!m) throw new DerError(`validity: malformed time '${s}'`);
  let year = Number(m[1]);
  if (el.tag === DER.UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [mo, d, h, mi, sec] = [2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const frac = m[7] ?? '';
  const ms = frac ? Math.floor(Number('0' + frac) * 1000) : 0;
  const date = new Date(Date.UTC(year, mo! - 1, d!, h!, mi!, sec!, ms));
  const two = (n: number) => String(n).padStart(2, '0');
  const text = `${MONTHS[mo! - 1]} ${String(d).padStart(2, ' ')} ${two(h!)}:${two(mi!)}:${two(sec!)}${frac} ${year} GMT`;
  return { date, text };
}

function parseSpki(el: DerElement): EcPublicKey | null {
  const [alg, key] = children(expectTag(el, DER.SEQUENCE, 'SubjectPublicKeyInfo'));
  const [algOid, params] = children(expectTag(alg, DER.SEQUENCE, 'AlgorithmIdentifier'));
  if (oidText(expectTag(algOid, DER.OID, 'algorithm').value) !== EC_PUBLIC_KEY || params?.tag !== DER.OID) return null;
  const curve = CURVE_OIDS[oidText(params.value)];
  if (!curve) return null;
  return { curve, point: bitStringBytes(expectTag(key, DER.BIT_STRING, 'subjectPublicKey')) };
}

/** Parses a DER certificate. Throws {@link DerError} when it is not one. */
export function parseCertificate(der: Uint8Array): SigningCertificate {
  const [tbs, sigAlg, sig] = children(expectTag(decodeDer(der), DER.SEQUENCE, 'Certificate'));
  const t = children(expectTag(tbs, DER.SEQUENCE, 'TBSCertificate'));
  let i = t[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  expectTag(t[i++], DER.INTEGER, 'serialNumber');
  expectTag(t[i++], DER.SEQUENCE, 'signature');
  const issuer = parseName(t[i++]!);
  const [nb, na] = children(expectTag(t[i++], DER.SEQUENCE, 'Validity'));
  const subject = parseName(t[i++]!);
  const publicKey = parseSpki(t[i++]!);
  const [algOid] = children(expectTag(sigAlg, DER.SEQUENCE, 'signatureAlgorithm'));
  const notBefore = parseTime(nb);
  const notAfter = parseTime(na);
  return {
    der,
    issuer,
    subject,
    signatureAlgorithmOid: oidText(expectTag(algOid, DER.OID, 'signatureAlgorithm').value),
    notBefore: notBefore.date,
    notAfter: notAfter.date,
    notBeforeText: notBefore.text,
    notAfterText: notAfter.text,
    signature: bitStringBytes(expectTag(sig, DER.BIT_STRING, 'signatureValue')),
    publicKey,
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
    parseCertificate(block.der);
  } catch {
    return null;
  }
  return block.der;
}

/** OpenSSL's long names for the attribute and algorithm identifiers certificates commonly carry. */
export const OID_LONG_NAMES: Record<string, string> = {
  '2.5.4.3': 'commonName',
  '2.5.4.4': 'surname',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'countryName',
  '2.5.4.7': 'localityName',
  '2.5.4.8': 'stateOrProvinceName',
  '2.5.4.9': 'streetAddress',
  '2.5.4.10': 'organizationName',
  '2.5.4.11': 'organizationalUnitName',
  '2.5.4.12': 'title',
  '2.5.4.15': 'businessCategory',
  '2.5.4.17': 'postalCode',
  '2.5.4.42': 'givenName',
  '2.5.4.43': 'initials',
  '2.5.4.44': 'generationQualifier',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
  '2.5.4.97': 'organizationIdentifier',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.1': 'userId',
  '0.9.2342.19200300.100.1.25': 'domainComponent',
  '1.3.6.1.4.1.311.60.2.1.3': 'jurisdictionCountryName',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
};

/** OpenSSL's text for an object identifier: its long name, else the dotted number. */
export function oidLongName(oid: string): string {
  return OID_LONG_NAMES[oid] ?? oid;
}
