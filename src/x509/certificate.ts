/**
 * Reading X.509 certificates (RFC 5280) from untrusted bytes: every field a verifier or EIF
 * tooling looks at, plus the raw bytes that were signed. The one certificate parser of the
 * package; anything malformed throws {@link DerError} saying which field.
 * @module
 */
import { DerError, type DerNode, TAG, bitStringBytes, contextTag, derChildren, expectTag, oidText, readDerExact, unsignedValue } from './der.js';
import { type BasicConstraints, parseAuthorityKeyId, parseBasicConstraints, parseKeyUsage, parseSubjectKeyId } from './extensions.js';
import { type NameAttribute, nameAttributes, nameText } from './name.js';
import { type KeyUsageName, OID } from './oids.js';
import { timeValue } from './time.js';

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
  /** The issuer and subject Names, as encoded. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  /** Their attributes, in encoding order. */
  readonly issuerAttributes: readonly NameAttribute[];
  readonly subjectAttributes: readonly NameAttribute[];
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
  readonly basicConstraints: BasicConstraints | null;
  readonly keyUsage: ReadonlySet<KeyUsageName> | null;
  readonly subjectKeyId: Uint8Array | null;
  readonly authorityKeyId: Uint8Array | null;
  /** signatureValue bits (for ECDSA: the DER Ecdsa-Sig-Value). */
  readonly signature: Uint8Array;
}

function algorithm(node: DerNode | undefined, what: string): { oid: string; params: DerNode | undefined } {
  const parts = derChildren(expectTag(node, TAG.SEQUENCE, what));
  return { oid: oidText(expectTag(parts[0], TAG.OID, `${what} OID`).value), params: parts[1] };
}

function parseExtensions(node: DerNode): ParsedExtension[] {
  const extensions: ParsedExtension[] = [];
  for (const e of derChildren(expectTag(derChildren(node)[0], TAG.SEQUENCE, 'extensions'))) {
    const parts = derChildren(expectTag(e, TAG.SEQUENCE, 'extension'));
    const oid = oidText(expectTag(parts[0], TAG.OID, 'extnID').value);
    let critical = false;
    let k = 1;
    if (parts[k]?.tag === TAG.BOOLEAN) critical = parts[k++]!.value[0] === 0xff;
    const value = expectTag(parts[k], TAG.OCTET_STRING, `extension ${oid} value`).value;
    if (extensions.some((x) => x.oid === oid)) throw new DerError(`extension ${oid} appears twice`);
    extensions.push({ oid, critical, value });
  }
  return extensions;
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
  const extensions = f[i]?.tag === contextTag(3, true) ? parseExtensions(f[i++]!) : [];
  if (i !== f.length) throw new DerError('tbsCertificate: unexpected fields');

  const issuerAttributes = nameAttributes(issuerNode);
  const subjectAttributes = nameAttributes(subjectNode);
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
    issuerAttributes,
    subjectAttributes,
    issuerText: nameText(issuerAttributes),
    subjectText: nameText(subjectAttributes),
    notBefore,
    notAfter,
    publicKeyAlgorithm: keyAlg.oid,
    publicKeyCurve,
    publicKey,
    extensions,
    basicConstraints: bc ? parseBasicConstraints(bc) : null,
    keyUsage: ku ? parseKeyUsage(ku) : null,
    subjectKeyId: ski ? parseSubjectKeyId(ski) : null,
    authorityKeyId: aki ? parseAuthorityKeyId(aki) : null,
    signature,
  };
}
