/**
 * Reading X.509 certificates (RFC 5280) from untrusted bytes, strictly: every SEQUENCE's
 * elements are checked for tag, order and count, nothing may trail anywhere, BOOLEANs are 00/ff,
 * OIDs minimal, DEFAULT values never encoded, BIT STRING unused bits zero, and the extensions a
 * chain check relies on are decoded completely. The one certificate parser of the package;
 * anything malformed throws {@link DerError} saying which field.
 * @module
 */
import {
  DerError,
  type DerNode,
  DerFields,
  TAG,
  bitStringBytes,
  bitStringValue,
  booleanValue,
  contextTag,
  derChildren,
  expectTag,
  oidValue,
  readDer,
  readDerExact,
  smallUnsigned,
  unsignedValue,
} from './der.js';
import {
  type AuthorityKeyId,
  type BasicConstraints,
  type DistributionPoint,
  parseAuthorityKeyIdentifier,
  parseBasicConstraints,
  parseCrlDistributionPoints,
  parseKeyUsage,
  parseSubjectKeyId,
} from './extensions.js';
import { type NameAttribute, nameAttributes, nameText } from './name.js';
import { type KeyUsageName, OID } from './oids.js';
import { timeValue } from './time.js';

export interface ParsedExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** An AlgorithmIdentifier: its OID, its parameters element if any, and its exact encoding. */
export interface AlgorithmId {
  readonly oid: string;
  readonly params: DerNode | null;
  readonly der: Uint8Array;
}

export interface ParsedCertificate {
  readonly der: Uint8Array;
  /** The TBSCertificate bytes, exactly as signed. */
  readonly tbs: Uint8Array;
  /** 1, 2 or 3. */
  readonly version: number;
  /** Serial number magnitude (big-endian, no sign byte; the INTEGER is never negative). */
  readonly serial: Uint8Array;
  /** signatureAlgorithm OID of the outer certificate. */
  readonly signatureAlgorithm: string;
  /** signature OID inside the TBSCertificate (must equal the outer one). */
  readonly tbsSignatureAlgorithm: string;
  /** Both AlgorithmIdentifiers in full, for comparing parameters too. */
  readonly signatureAlgorithmId: AlgorithmId;
  readonly tbsSignatureAlgorithmId: AlgorithmId;
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
  /** The SubjectPublicKeyInfo AlgorithmIdentifier in full. */
  readonly publicKeyAlgorithmId: AlgorithmId;
  /** Named-curve OID for EC keys, otherwise null. */
  readonly publicKeyCurve: string | null;
  /** subjectPublicKey bits (for EC: the SEC1 point). */
  readonly publicKey: Uint8Array;
  readonly extensions: readonly ParsedExtension[];
  readonly basicConstraints: BasicConstraints | null;
  readonly keyUsage: ReadonlySet<KeyUsageName> | null;
  readonly subjectKeyId: Uint8Array | null;
  readonly authorityKeyId: Uint8Array | null;
  readonly authorityKeyIdentifier: AuthorityKeyId | null;
  readonly crlDistributionPoints: readonly DistributionPoint[] | null;
  /** signatureValue bits (for ECDSA: the DER Ecdsa-Sig-Value). */
  readonly signature: Uint8Array;
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }. */
function algorithm(node: DerNode, what: string): AlgorithmId {
  const f = new DerFields(expectTag(node, TAG.SEQUENCE, what), what);
  const oid = oidValue(f.next(TAG.OID, 'algorithm'), `${what} algorithm`);
  const params = f.peekTag() === undefined ? null : f.any('parameters');
  f.end();
  if (params?.tag === TAG.NULL && params.value.length !== 0) throw new DerError(`${what}: NULL parameters with contents`);
  return { oid, params, der: node.raw };
}

/**
 * Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, inside [3] EXPLICIT; no OID twice. Read
 * one extension at a time, straight from the list's bytes: a certificate may carry tens of
 * thousands, and keeping no intermediate node list keeps the parse's garbage small.
 */
function parseExtensions(node: DerNode): ParsedExtension[] {
  const [list, ...rest] = derChildren(node);
  if (list === undefined || rest.length) throw new DerError('extensions: [3] must hold exactly one SEQUENCE');
  const bytes = expectTag(list, TAG.SEQUENCE, 'extensions').value;
  if (bytes.length === 0) throw new DerError('extensions: empty SEQUENCE (SIZE 1..MAX)');
  const seen = new Set<string>();
  const out: ParsedExtension[] = [];
  for (let p = 0; p < bytes.length; ) {
    const { node: e, end } = readDer(bytes, p);
    p = end;
    const ext = parseExtension(e);
    if (seen.has(ext.oid)) throw new DerError(`extension ${ext.oid} appears twice`);
    seen.add(ext.oid);
    out.push(ext);
  }
  return out;
}

/** Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
function parseExtension(e: DerNode): ParsedExtension {
  const v = expectTag(e, TAG.SEQUENCE, 'extension').value;
  if (v.length === 0) throw new DerError('extension: extnID missing');
  const id = readDer(v, 0);
  const oid = oidValue(expectTag(id.node, TAG.OID, 'extension extnID'), 'extnID');
  let p = id.end;
  let critical = false;
  let field = p < v.length ? readDer(v, p) : undefined;
  if (field !== undefined && field.node.tag === TAG.BOOLEAN) {
    critical = booleanValue(field.node, `extension ${oid} critical`);
    if (!critical) throw new DerError(`extension ${oid}: critical FALSE encoded (it is the DEFAULT, which DER omits)`);
    p = field.end;
    field = p < v.length ? readDer(v, p) : undefined;
  }
  if (field === undefined) throw new DerError(`extension: ${oid} extnValue missing`);
  const value = expectTag(field.node, TAG.OCTET_STRING, `extension ${oid} extnValue`).value;
  if (field.end < v.length) {
    let left = 0;
    for (let q = field.end; q < v.length; left++) q = readDer(v, q).end;
    throw new DerError(`extension: ${left} unexpected element(s) after the last field (tag 0x${v[field.end]!.toString(16)})`);
  }
  return { oid, critical, value };
}

/** Parses one DER certificate (no trailing bytes allowed). */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const top = new DerFields(expectTag(readDerExact(der, 'certificate'), TAG.SEQUENCE, 'certificate'), 'certificate');
  const tbs = top.next(TAG.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithmId = algorithm(top.next(TAG.SEQUENCE, 'signatureAlgorithm'), 'signatureAlgorithm');
  const signature = bitStringBytes(top.next(TAG.BIT_STRING, 'signatureValue'), 'signatureValue');
  top.end();

  const f = new DerFields(tbs, 'tbsCertificate');
  let version = 1;
  const v = f.optional(contextTag(0, true));
  if (v) {
    const inner = new DerFields(v, 'version [0]');
    const n = smallUnsigned(inner.next(TAG.INTEGER, 'version'), 'version', 2);
    inner.end();
    if (n === 0) throw new DerError('version: v1 encoded (it is the DEFAULT, which DER omits)');
    version = n + 1;
  }
  const serial = unsignedValue(f.next(TAG.INTEGER, 'serialNumber'), 'serialNumber');
  const tbsSignatureAlgorithmId = algorithm(f.next(TAG.SEQUENCE, 'signature'), 'signature');
  const issuerNode = f.next(TAG.SEQUENCE, 'issuer');
  const validity = new DerFields(f.next(TAG.SEQUENCE, 'validity'), 'validity');
  const notBefore = timeValue(validity.any('notBefore'), 'notBefore');
  const notAfter = timeValue(validity.any('notAfter'), 'notAfter');
  validity.end();
  const subjectNode = f.next(TAG.SEQUENCE, 'subject');
  const spki = new DerFields(f.next(TAG.SEQUENCE, 'subjectPublicKeyInfo'), 'subjectPublicKeyInfo');
  const keyAlg = algorithm(spki.next(TAG.SEQUENCE, 'algorithm'), 'subjectPublicKeyInfo algorithm');
  const publicKey = bitStringBytes(spki.next(TAG.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey');
  spki.end();
  const publicKeyCurve = keyAlg.oid === OID.ecPublicKey && keyAlg.params?.tag === TAG.OID ? oidValue(keyAlg.params, 'namedCurve') : null;
  // issuerUniqueID [1] and subjectUniqueID [2] (v2 and v3 only), each once and in this order.
  for (const n of [1, 2]) {
    const id = f.optional(contextTag(n, false));
    if (!id) continue;
    if (version < 2) throw new DerError(`tbsCertificate: unique identifier [${n}] in a v1 certificate`);
    bitStringValue(id, n === 1 ? 'issuerUniqueID' : 'subjectUniqueID', contextTag(n, false));
  }
  const extNode = f.optional(contextTag(3, true));
  if (extNode && version !== 3) throw new DerError(`tbsCertificate: extensions in a v${version} certificate`);
  const extensions = extNode ? parseExtensions(extNode) : [];
  f.end();

  const issuerAttributes = nameAttributes(issuerNode, 'issuer');
  if (issuerAttributes.length === 0) throw new DerError('issuer: empty Name (RFC 5280 4.1.2.4 requires a non-empty issuer)');
  const subjectAttributes = nameAttributes(subjectNode, 'subject');
  const ext = (oid: string) => extensions.find((e) => e.oid === oid)?.value;
  const bc = ext(OID.basicConstraints);
  const ku = ext(OID.keyUsage);
  const ski = ext(OID.subjectKeyIdentifier);
  const aki = ext(OID.authorityKeyIdentifier);
  const cdp = ext(OID.crlDistributionPoints);
  const authorityKeyIdentifier = aki ? parseAuthorityKeyIdentifier(aki) : null;
  return {
    der,
    tbs: tbs.raw,
    version,
    serial,
    signatureAlgorithm: signatureAlgorithmId.oid,
    tbsSignatureAlgorithm: tbsSignatureAlgorithmId.oid,
    signatureAlgorithmId,
    tbsSignatureAlgorithmId,
    issuer: issuerNode.raw,
    subject: subjectNode.raw,
    issuerAttributes,
    subjectAttributes,
    issuerText: nameText(issuerAttributes),
    subjectText: nameText(subjectAttributes),
    notBefore,
    notAfter,
    publicKeyAlgorithm: keyAlg.oid,
    publicKeyAlgorithmId: keyAlg,
    publicKeyCurve,
    publicKey,
    extensions,
    basicConstraints: bc ? parseBasicConstraints(bc) : null,
    keyUsage: ku ? parseKeyUsage(ku) : null,
    subjectKeyId: ski ? parseSubjectKeyId(ski) : null,
    authorityKeyId: authorityKeyIdentifier?.keyId ?? null,
    authorityKeyIdentifier,
    crlDistributionPoints: cdp ? parseCrlDistributionPoints(cdp) : null,
    signature,
  };
}
