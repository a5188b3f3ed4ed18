/**
 * Decoding the certificate extensions a chain check relies on, strictly and completely:
 * basicConstraints, keyUsage, subjectKeyIdentifier, authorityKeyIdentifier and
 * cRLDistributionPoints (RFC 5280 4.2.1), including the GeneralNames they may hold. Every
 * field is checked for tag, order, count and DER form; anything else throws {@link DerError}.
 * @module
 */
import {
  DerError,
  type DerNode,
  DerFields,
  TAG,
  booleanValue,
  contextTag,
  derChildren,
  expectTag,
  namedBits,
  oidValue,
  readDerExact,
  smallUnsigned,
  unsignedValue,
} from './der.js';
import { nameAttributes, rdnAttributes, stringValue } from './name.js';
import { KEY_USAGE, type KeyUsageName } from './oids.js';

const KEY_USAGE_NAMES = Object.keys(KEY_USAGE) as KeyUsageName[];

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen: number | null;
}

export interface AuthorityKeyId {
  readonly keyId: Uint8Array | null;
  /** authorityCertIssuer and authorityCertSerialNumber (present together or not at all). */
  readonly hasIssuerAndSerial: boolean;
}

/** The usages named by a keyUsage value (unused bits zero, no trailing zero bits, at least one bit set). */
export function parseKeyUsage(value: Uint8Array): Set<KeyUsageName> {
  const bits = namedBits(readDerExact(value, 'keyUsage'), 'keyUsage');
  if (bits.size === 0) throw new DerError('keyUsage: no bit set (RFC 5280 4.2.1.3 requires at least one)');
  const out = new Set<KeyUsageName>();
  for (const i of bits) {
    const name = KEY_USAGE_NAMES[i];
    if (name) out.add(name);
  }
  return out;
}

/** The cA flag and path length of a basicConstraints value (cA FALSE is the DEFAULT and is never encoded). */
export function parseBasicConstraints(value: Uint8Array): BasicConstraints {
  const f = new DerFields(expectTag(readDerExact(value, 'basicConstraints'), TAG.SEQUENCE, 'basicConstraints'), 'basicConstraints');
  let ca = false;
  const flag = f.optional(TAG.BOOLEAN);
  if (flag) {
    ca = booleanValue(flag, 'basicConstraints cA');
    if (!ca) throw new DerError('basicConstraints: cA FALSE encoded (it is the DEFAULT, which DER omits)');
  }
  const len = f.optional(TAG.INTEGER);
  const pathLen = len ? smallUnsigned(len, 'basicConstraints pathLenConstraint', 0x7fffffff) : null;
  f.end();
  return { ca, pathLen };
}

/** The key identifier of a subjectKeyIdentifier value. */
export function parseSubjectKeyId(value: Uint8Array): Uint8Array {
  const id = expectTag(readDerExact(value, 'subjectKeyIdentifier'), TAG.OCTET_STRING, 'subjectKeyIdentifier').value;
  if (id.length === 0) throw new DerError('subjectKeyIdentifier: empty');
  return id;
}

/** authorityKeyIdentifier: keyIdentifier [0], then authorityCertIssuer [1] and authorityCertSerialNumber [2] together. */
export function parseAuthorityKeyIdentifier(value: Uint8Array): AuthorityKeyId {
  const what = 'authorityKeyIdentifier';
  const f = new DerFields(expectTag(readDerExact(value, what), TAG.SEQUENCE, what), what);
  const id = f.optional(contextTag(0, false));
  const issuer = f.optional(contextTag(1, true));
  const serial = f.optional(contextTag(2, false));
  f.end();
  if (id && id.value.length === 0) throw new DerError(`${what}: empty keyIdentifier`);
  if (issuer) generalNames(issuer, `${what} authorityCertIssuer`);
  if (serial) unsignedValue(serial, `${what} authorityCertSerialNumber`);
  if (!issuer !== !serial) throw new DerError(`${what}: authorityCertIssuer and authorityCertSerialNumber must be present together`);
  return { keyId: id ? id.value : null, hasIssuerAndSerial: !!issuer };
}

/** The keyIdentifier [0] of an authorityKeyIdentifier value, or null when it has none. */
export function parseAuthorityKeyId(value: Uint8Array): Uint8Array | null {
  return parseAuthorityKeyIdentifier(value).keyId;
}

/** One distribution point as read: its full-name URIs (the other forms are checked, not kept). */
export interface DistributionPoint {
  readonly uris: readonly string[];
}

/**
 * cRLDistributionPoints (RFC 5280 4.2.1.13): a non-empty SEQUENCE of DistributionPoint, each
 * with distributionPoint [0] and/or cRLIssuer [2] (reasons [1] alone is not allowed).
 */
export function parseCrlDistributionPoints(value: Uint8Array): DistributionPoint[] {
  const what = 'cRLDistributionPoints';
  const points = derChildren(expectTag(readDerExact(value, what), TAG.SEQUENCE, what));
  if (points.length === 0) throw new DerError(`${what}: empty`);
  return points.map((p, n) => {
    const at = `${what}[${n}]`;
    const f = new DerFields(expectTag(p, TAG.SEQUENCE, at), at);
    const name = f.optional(contextTag(0, true));
    const reasons = f.optional(contextTag(1, false));
    const crlIssuer = f.optional(contextTag(2, true));
    f.end();
    if (!name && !crlIssuer) throw new DerError(`${at}: neither distributionPoint nor cRLIssuer`);
    if (reasons) namedBits(reasons, `${at} reasons`, contextTag(1, false));
    if (crlIssuer) generalNames(crlIssuer, `${at} cRLIssuer`);
    let uris: string[] = [];
    if (name) {
      // distributionPoint [0] is explicit (DistributionPointName is a CHOICE): exactly one of
      // fullName [0] GeneralNames or nameRelativeToCRLIssuer [1] RDN.
      const inner = new DerFields(name, `${at} distributionPoint`);
      const full = inner.optional(contextTag(0, true));
      const relative = full ? undefined : inner.next(contextTag(1, true), 'fullName or nameRelativeToCRLIssuer');
      inner.end();
      if (full) uris = generalNames(full, `${at} fullName`).filter((g) => g.tag === 6).map((g) => g.text!);
      else rdnAttributes(relative!, `${at} nameRelativeToCRLIssuer`, contextTag(1, true));
    }
    return { uris };
  });
}

/** One GeneralName as read: its CHOICE number and, for the IA5 forms, its text. */
export interface GeneralName {
  readonly tag: number;
  readonly text?: string;
}

/** GeneralNames (RFC 5280 4.2.1.6): a non-empty sequence, each alternative checked for its form. */
export function generalNames(node: DerNode, what: string): GeneralName[] {
  const items = derChildren(node);
  if (items.length === 0) throw new DerError(`${what}: empty GeneralNames`);
  return items.map((g) => generalName(g, what));
}

function generalName(g: DerNode, what: string): GeneralName {
  const n = g.tag & 0x1f;
  const constructed = (g.tag & 0x20) !== 0;
  if ((g.tag & 0xc0) !== 0x80 || n > 8) throw new DerError(`${what}: tag 0x${g.tag.toString(16)} is not a GeneralName`);
  const expectConstructed = n === 0 || n === 3 || n === 4 || n === 5;
  if (constructed !== expectConstructed) throw new DerError(`${what}: GeneralName [${n}] in the wrong (primitive/constructed) form`);
  switch (n) {
    case 0: {
      // otherName: type-id OID, then value [0] EXPLICIT ANY.
      const f = new DerFields(g, `${what} otherName`);
      oidValue(f.next(TAG.OID, 'type-id'), `${what} otherName type-id`);
      const v = f.next(contextTag(0, true), 'value');
      f.end();
      if (derChildren(v).length !== 1) throw new DerError(`${what} otherName: value must hold exactly one element`);
      return { tag: n };
    }
    case 1:
    case 2:
    case 6:
      // rfc822Name, dNSName, uniformResourceIdentifier: IA5String.
      return { tag: n, text: stringValue({ tag: TAG.IA5_STRING, value: g.value, raw: g.raw }, `${what} [${n}]`) };
    case 4: {
      const [name, ...rest] = derChildren(g);
      if (!name || rest.length) throw new DerError(`${what} directoryName: must hold exactly one Name`);
      nameAttributes(name, `${what} directoryName`);
      return { tag: n };
    }
    case 7:
      if (g.value.length !== 4 && g.value.length !== 16) throw new DerError(`${what} iPAddress: ${g.value.length} octets (4 or 16)`);
      return { tag: n };
    case 8:
      oidValue({ tag: TAG.OID, value: g.value, raw: g.raw }, `${what} registeredID`);
      return { tag: n };
    default:
      // x400Address [3] and ediPartyName [5]: constructed, elements well-formed (read above).
      derChildren(g);
      return { tag: n };
  }
}
