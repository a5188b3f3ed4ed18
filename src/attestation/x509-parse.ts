/**
 * Reading X.509 certificates from untrusted bytes: the fields a Nitro verifier checks, plus the
 * raw bytes that were signed. Anything malformed throws {@link DerError} saying which field.
 * @module
 */
import {
  DerError,
  type DerNode,
  TAG,
  contextTag,
  derChildren,
  expectTag,
  oidText,
  readDerExact,
  timeValue,
  unsignedValue,
} from './der.js';
import { KEY_USAGE, type KeyUsageName, NAME_OIDS, OID } from './x509-build.js';

export interface ParsedExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

export interface ParsedCertificate {
  readonly der: Uint8Array;
  /** The TBSCertificate bytes, exactly as signed. */
  readonly tbs: Uint8Array;
  readonly version: number;
  /** Serial number magnitude (big-endian, no sign byte). */
  readonly serial: Uint8Array;
  /** signatureAlgorithm OID of the outer certificate. */
  readonly signatureAlgorithm: string;
  /** signature OID inside the TBSCertificate (must equal the outer one). */
  readonly tbsSignatureAlgorithm: string;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly issuerText: string;
  readonly subjectText: string;
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicKeyAlgorithm: string;
  /** Named-curve OID for EC keys, otherwise null. */
  readonly publicKeyCurve: string | null;
  /** subjectPublicKey bits (for EC: the SEC1 point). */
  readonly publicKey: Uint8Array;
  readonly extensions: readonly ParsedExtension[];
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen: number | null } | null;
  readonly keyUsage: ReadonlySet<KeyUsageName> | null;
  readonly subjectKeyId: Uint8Array | null;
  readonly authorityKeyId: Uint8Array | null;
  /** signatureValue bits (for ECDSA: the DER Ecdsa-Sig-Value). */
  readonly signature: Uint8Array;
}

const SHORT_NAMES = new Map(Object.entries(NAME_OIDS).map(([k, v]) => [v, k]));
const KEY_USAGE_NAMES = Object.keys(KEY_USAGE) as KeyUsageName[];
const text = new TextDecoder('utf-8', { fatal: true });

function algorithm(node: DerNode | undefined, what: string): { oid: string; params: DerNode | undefined } {
  const parts = derChildren(expectTag(node, TAG.SEQUENCE, what));
  return { oid: oidText(expectTag(parts[0], TAG.OID, `${what} OID`).value), params: parts[1] };
}

function bitStringBytes(node: DerNode | undefined, what: string): Uint8Array {
  const v = expectTag(node, TAG.BIT_STRING, what).value;
  if (v.length === 0 || v[0] !== 0) throw new DerError(`${what}: expected a BIT STRING with no unused bits`);
  return v.subarray(1);
}

/** RFC 4514-like text of a Name, in encoding order (`C=US, O=Amazon, ...`). */
export function nameText(name: DerNode): string {
  const out: string[] = [];
  for (const rdn of derChildren(expectTag(name, TAG.SEQUENCE, 'Name'))) {
    for (const atv of derChildren(expectTag(rdn, TAG.SET, 'RelativeDistinguishedName'))) {
      const [type, value] = derChildren(expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'));
      const oid = oidText(expectTag(type, TAG.OID, 'attribute type').value);
      let v: string;
      try {
        v = text.decode(value?.value ?? new Uint8Array());
      } catch {
        throw new DerError('attribute value is not valid UTF-8');
      }
      out.push(`${SHORT_NAMES.get(oid) ?? oid}=${v}`);
    }
  }
  return out.join(', ');
}

function parseKeyUsage(value: Uint8Array): Set<KeyUsageName> {
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

function parseBasicConstraints(value: Uint8Array): { ca: boolean; pathLen: number | null } {
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

function parseAuthorityKeyId(value: Uint8Array): Uint8Array | null {
  const parts = derChildren(expectTag(readDerExact(value, 'authorityKeyIdentifier'), TAG.SEQUENCE, 'authorityKeyIdentifier'));
  const id = parts.find((p) => p.tag === contextTag(0, false));
  return id ? id.value : null;
}

/** Parses one DER certificate (no trailing bytes allowed). */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const cert = expectTag(readDerExact(der, 'certificate'), TAG.SEQUENCE, 'certificate');
  const [tbsNode, sigAlgNode, sigNode, ...extra] = derChildren(cert);
  if (extra.length) throw new DerError('certificate: more than three fields');
  const tbs = expectTag(tbsNode, TAG.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithm = algorithm(sigAlgNode, 'signatureAlgorithm').oid;
  const signature = bitStringBytes(sigNode, 'signatureValue');

  const f = derChildren(tbs);
  let i = 0;
  let version = 1;
  if (f[i]?.tag === contextTag(0, true)) {
    const v = unsignedValue(expectTag(derChildren(f[i++]!)[0], TAG.INTEGER, 'version'), 'version');
    version = (v[0] ?? 0) + 1;
  }
  const serial = unsignedValue(expectTag(f[i++], TAG.INTEGER, 'serialNumber'), 'serialNumber');
  const tbsSignatureAlgorithm = algorithm(f[i++], 'signature').oid;
  const issuerNode = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  const validity = derChildren(expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new DerError('validity: expected notBefore and notAfter');
  const notBefore = timeValue(validity[0]!, 'notBefore');
  const notAfter = timeValue(validity[1]!, 'notAfter');
  const subjectNode = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const spki = derChildren(expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo'));
  const keyAlg = algorithm(spki[0], 'subjectPublicKeyInfo algorithm');
  const publicKeyCurve = keyAlg.params?.tag === TAG.OID ? oidText(keyAlg.params.value) : null;
  const publicKey = bitStringBytes(spki[1], 'subjectPublicKey');
  // issuerUniqueID [1] and subjectUniqueID [2] are skipped; extensions are [3].
  while (f[i] && (f[i]!.tag === contextTag(1, false) || f[i]!.tag === contextTag(2, false))) i++;
  const extensions: ParsedExtension[] = [];
  if (f[i]?.tag === contextTag(3, true)) {
    const list = derChildren(expectTag(derChildren(f[i++]!)[0], TAG.SEQUENCE, 'extensions'));
    for (const e of list) {
      const parts = derChildren(expectTag(e, TAG.SEQUENCE, 'extension'));
      const oid = oidText(expectTag(parts[0], TAG.OID, 'extnID').value);
      let critical = false;
      let k = 1;
      if (parts[k]?.tag === TAG.BOOLEAN) critical = parts[k++]!.value[0] === 0xff;
      const value = expectTag(parts[k], TAG.OCTET_STRING, `extension ${oid} value`).value;
      if (extensions.some((x) => x.oid === oid)) throw new DerError(`extension ${oid} appears twice`);
      extensions.push({ oid, critical, value });
    }
  }
  if (i !== f.length) throw new DerError('tbsCertificate: unexpected fields');

  const ext = (oid: string) => extensions.find((e) => e.oid === oid)?.value;
  const bc = ext(OID.basicConstraints);
  const ku = ext(OID.keyUsage);
  const ski = ext(OID.subjectKeyIdentifier);
  const aki = ext(OID.authorityKeyIdentifier);
  return {
    der,
    tbs: tbs.raw,
    version,
    serial,
    signatureAlgorithm,
    tbsSignatureAlgorithm,
    issuer: issuerNode.raw,
    subject: subjectNode.raw,
    issuerText: nameText(issuerNode),
    subjectText: nameText(subjectNode),
    notBefore,
    notAfter,
    publicKeyAlgorithm: keyAlg.oid,
    publicKeyCurve,
    publicKey,
    extensions,
    basicConstraints: bc ? parseBasicConstraints(bc) : null,
    keyUsage: ku ? parseKeyUsage(ku) : null,
    subjectKeyId: ski ? expectTag(readDerExact(ski, 'subjectKeyIdentifier'), TAG.OCTET_STRING, 'subjectKeyIdentifier').value : null,
    authorityKeyId: aki ? parseAuthorityKeyId(aki) : null,
    signature,
  };
}
