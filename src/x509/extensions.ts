/**
 * Decoding the values of the certificate extensions a chain check needs: basicConstraints,
 * keyUsage, subjectKeyIdentifier and authorityKeyIdentifier (RFC 5280 4.2.1).
 * @module
 */
import { DerError, TAG, contextTag, derChildren, expectTag, readDerExact, unsignedValue } from './der.js';
import { KEY_USAGE, type KeyUsageName } from './oids.js';

const KEY_USAGE_NAMES = Object.keys(KEY_USAGE) as KeyUsageName[];

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen: number | null;
}

/** The usages named by a keyUsage value. */
export function parseKeyUsage(value: Uint8Array): Set<KeyUsageName> {
  const bits = readDerExact(value, 'keyUsage');
  expectTag(bits, TAG.BIT_STRING, 'keyUsage');
  if (bits.value.length === 0 || bits.value[0]! > 7) throw new DerError('keyUsage: malformed BIT STRING');
  const out = new Set<KeyUsageName>();
  for (let i = 0; i < (bits.value.length - 1) * 8; i++) {
    if (bits.value[1 + (i >> 3)]! & (0x80 >> (i & 7))) {
      const name = KEY_USAGE_NAMES[i];
      if (name) out.add(name);
    }
  }
  return out;
}

/** The cA flag and path length of a basicConstraints value. */
export function parseBasicConstraints(value: Uint8Array): BasicConstraints {
  const parts = derChildren(expectTag(readDerExact(value, 'basicConstraints'), TAG.SEQUENCE, 'basicConstraints'));
  let i = 0;
  let ca = false;
  let pathLen: number | null = null;
  if (parts[i]?.tag === TAG.BOOLEAN) {
    const b = parts[i++]!.value;
    if (b.length !== 1 || (b[0] !== 0 && b[0] !== 0xff)) throw new DerError('basicConstraints: malformed BOOLEAN');
    ca = b[0] === 0xff;
  }
  if (parts[i]?.tag === TAG.INTEGER) {
    const m = unsignedValue(parts[i++]!, 'basicConstraints pathLenConstraint');
    if (m.length > 4) throw new DerError('basicConstraints: pathLenConstraint too large');
    pathLen = m.reduce((a, b) => a * 256 + b, 0);
  }
  if (i !== parts.length) throw new DerError('basicConstraints: unexpected fields');
  return { ca, pathLen };
}

/** The key identifier of a subjectKeyIdentifier value. */
export function parseSubjectKeyId(value: Uint8Array): Uint8Array {
  return expectTag(readDerExact(value, 'subjectKeyIdentifier'), TAG.OCTET_STRING, 'subjectKeyIdentifier').value;
}

/** The keyIdentifier [0] of an authorityKeyIdentifier value, or null when it has none. */
export function parseAuthorityKeyId(value: Uint8Array): Uint8Array | null {
  const parts = derChildren(expectTag(readDerExact(value, 'authorityKeyIdentifier'), TAG.SEQUENCE, 'authorityKeyIdentifier'));
  const id = parts.find((p) => p.tag === contextTag(0, false));
  return id ? id.value : null;
}
