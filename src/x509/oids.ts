/**
 * Object identifiers and named bits of X.509 that both the certificate writer and the parser
 * use: algorithms, name attributes, extensions, key-usage bits and the NIST EC curves.
 * @module
 */

/** Object identifiers used by certificates and keys here. */
export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  countryName: '2.5.4.6',
  stateOrProvinceName: '2.5.4.8',
  localityName: '2.5.4.7',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  crlDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

/** Attribute short names, in the spelling of RFC 4514. */
export type NameAttributeType = 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN';

export const NAME_OIDS: Record<NameAttributeType, string> = {
  C: OID.countryName,
  ST: OID.stateOrProvinceName,
  L: OID.localityName,
  O: OID.organizationName,
  OU: OID.organizationalUnitName,
  CN: OID.commonName,
};

/** KeyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KEY_USAGE = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;

export type KeyUsageName = keyof typeof KEY_USAGE;

/** The NIST curves EC keys may name. */
export type EcCurve = 'P-256' | 'P-384' | 'P-521';

export const CURVE_OIDS: Record<string, EcCurve> = {
  '1.2.840.10045.3.1.7': 'P-256',
  [OID.secp384r1]: 'P-384',
  '1.3.132.0.35': 'P-521',
};
