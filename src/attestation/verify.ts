/**
 * Verifying an attestation document against a pinned root, as a careful verifier of real AWS
 * documents does: syntax (document-parse.ts), then the certificate path from the pinned root
 * through `cabundle` to the leaf, then ES384 over the Sig_structure, then the values the caller
 * expects. The first failure throws {@link AttestationVerifyError} naming its rule.
 *
 * `cabundle[0]` is never trusted for being there: the path starts at the pinned root, and
 * `cabundle[0]` must be byte-identical to it. No CRL is fetched (AWS does not use CRLs).
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { DerError } from '../x509/der.js';
import { type ParsedCertificate, parseCertificate } from '../x509/certificate.js';
import { OID } from '../x509/oids.js';
import { pemDecode } from '../x509/pem.js';
import {
  type AttestationDocument,
  AWS_RULE_FIELD_LIMITS,
  DEVICE_FIELD_LIMITS,
  parseAttestationDocument,
} from './document-parse.js';
import { sigStructure } from './document.js';
import { type P384BackendChoice, selectBackend, signatureFromDer } from './p384.js';
import { AttestationVerifyError, type VerifyRule } from './verify-error.js';

export interface VerifyOptions {
  /** The pinned root certificate: DER bytes or PEM text. */
  readonly root: Uint8Array | string;
  /** When every certificate must be valid: ms since the epoch, or `document` for its timestamp (default: now). */
  readonly time?: number | 'document';
  /** PCR values that must be present and equal: index -> bytes. */
  readonly expectedPcrs?: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>>;
  readonly expectedNonce?: Uint8Array;
  readonly expectedUserData?: Uint8Array;
  readonly expectedPublicKey?: Uint8Array;
  readonly expectedModuleId?: string;
  /** `device` (default): user_data and nonce up to 1024 bytes; `aws-rules`: up to 512, as AWS's prose says. */
  readonly fieldLimits?: 'device' | 'aws-rules';
  /** Accept payload keys AWS does not define (default false: rule `payload.unknown-key`). */
  readonly allowUnknownKeys?: boolean;
  /** Signature backend (default: WebCrypto where available). */
  readonly crypto?: P384BackendChoice;
}

export interface VerifiedDocument extends AttestationDocument {
  /** The verified path: pinned root first, leaf last. */
  readonly chain: readonly ParsedCertificate[];
  /** The instant (ms) the chain was checked at. */
  readonly verifiedAt: number;
}

/**
 * Extensions this verifier processes, so they may be critical. cRLDistributionPoints is always
 * parsed (a malformed one fails `chain.parse`) but is not in this set: no CRL is fetched, so a
 * critical one cannot be honoured and is refused (RFC 5280 4.2).
 */
const KNOWN_EXTENSIONS = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier]);

/** The one encoding of ecdsa-with-SHA384's AlgorithmIdentifier: parameters absent (RFC 5758 3.2). */
const ECDSA_SHA384_ALG = '300a06082a8648ce3d040303';
/** id-ecPublicKey with namedCurve secp384r1 (RFC 5480 2.1.1). */
const P384_KEY_ALG = '301006072a8648ce3d020106052b81040022';

const fail = (rule: VerifyRule, message: string): never => {
  throw new AttestationVerifyError(rule, message);
};

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const iso = (ms: number) => new Date(ms).toISOString();

function rootDer(root: Uint8Array | string): Uint8Array {
  if (ArrayBuffer.isView(root)) return new Uint8Array(root.buffer, root.byteOffset, root.byteLength);
  if (typeof root !== 'string') {
    // A JavaScript caller can leave it out; say so rather than fail inside the certificate parser.
    return fail('chain.root', `options.root is required: the pinned root certificate as DER bytes or PEM text (got ${root === undefined ? 'nothing' : typeof root})`);
  }
  try {
    return pemDecode(root, 'CERTIFICATE');
  } catch (e) {
    return fail('chain.root', `the pinned root is not a PEM certificate (${(e as Error).message})`);
  }
}

function parse(der: Uint8Array, where: string): ParsedCertificate {
  try {
    const c = parseCertificate(der);
    if (c.version !== 3) fail('chain.parse', `${where} is X.509 v${c.version}, expected v3`);
    return c;
  } catch (e) {
    if (e instanceof AttestationVerifyError) throw e;
    return fail('chain.parse', `${where} is not a valid certificate (${e instanceof DerError ? e.message : String(e)})`);
  }
}

function checkP384(c: ParsedCertificate, where: string): void {
  if (c.signatureAlgorithm !== OID.ecdsaWithSha384 || c.tbsSignatureAlgorithm !== OID.ecdsaWithSha384) {
    fail('chain.algorithm', `${where} is signed with ${c.signatureAlgorithm}, expected ecdsa-with-SHA384 (${OID.ecdsaWithSha384})`);
  }
  if (!equal(c.signatureAlgorithmId.der, c.tbsSignatureAlgorithmId.der)) {
    fail('chain.algorithm', `${where} has different signature AlgorithmIdentifiers inside and outside the TBSCertificate (RFC 5280 4.1.1.2)`);
  }
  if (bytesToHex(c.signatureAlgorithmId.der) !== ECDSA_SHA384_ALG) {
    fail('chain.algorithm', `${where} has parameters in its ecdsa-with-SHA384 AlgorithmIdentifier (RFC 5758 3.2: absent)`);
  }
  if (bytesToHex(c.publicKeyAlgorithmId.der) !== P384_KEY_ALG || c.publicKey.length !== 97 || c.publicKey[0] !== 4) {
    fail('chain.algorithm', `${where} does not hold an uncompressed EC P-384 public key (id-ecPublicKey, namedCurve secp384r1)`);
  }
}

/** RFC 5280 4.1.2.2: a positive serial of at most 20 octets (the INTEGER is never negative here). */
function checkSerial(c: ParsedCertificate, where: string): void {
  if (c.serial.length === 1 && c.serial[0] === 0) fail('chain.serial', `${where} has serial number 0 (RFC 5280 4.1.2.2: positive)`);
  if (c.serial.length > 20) fail('chain.serial', `${where} has a ${c.serial.length}-octet serial number (RFC 5280 4.1.2.2: at most 20)`);
}

/** Verifies a document; resolves to its fields and chain, or rejects with {@link AttestationVerifyError}. */
export async function verifyAttestationDocument(bytes: Uint8Array, options: VerifyOptions): Promise<VerifiedDocument> {
  options ??= {} as VerifyOptions; // a JavaScript caller may leave it out: rule chain.root says what is missing
  const doc = parseAttestationDocument(bytes, options.fieldLimits === 'aws-rules' ? AWS_RULE_FIELD_LIMITS : DEVICE_FIELD_LIMITS, {
    allowUnknownKeys: options.allowUnknownKeys === true,
  });
  const at = options.time === 'document' ? doc.timestamp : (options.time ?? Date.now());
  const backend = selectBackend(options.crypto ?? 'auto');

  // ---- the path: pinned root, cabundle[1..], leaf ----
  const root = parse(rootDer(options.root), 'the pinned root');
  if (!equal(doc.cabundle[0]!, root.der)) {
    let what = 'unparseable';
    let sameName = false;
    try {
      const first = parseCertificate(doc.cabundle[0]!).subjectText;
      what = `'${first}'`;
      sameName = first === root.subjectText;
    } catch {
      /* keep 'unparseable' */
    }
    // Two roots that print the same name (two test CAs) are told apart by their fingerprints.
    const fp = (der: Uint8Array) => `, SHA-256 ${bytesToHex(sha256(der)).slice(0, 16)}`;
    const [mine, pinned] = sameName ? [fp(doc.cabundle[0]!), fp(root.der)] : ['', ''];
    fail('chain.root', `cabundle[0] (${what}${mine}) is not the pinned root '${root.subjectText}'${pinned ? ` (${pinned.slice(2)})` : ''}`);
  }
  const names = ['the pinned root', ...doc.cabundle.slice(1).map((_, i) => `cabundle[${i + 1}]`), 'the leaf certificate'];
  const path = [root, ...doc.cabundle.slice(1).map((c, i) => parse(c, `cabundle[${i + 1}]`)), parse(doc.certificate, 'the leaf certificate')];
  const leafIndex = path.length - 1;

  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    const where = `${names[i]} '${c.subjectText}'`;
    checkP384(c, where);
    if (at < c.notBefore || at > c.notAfter) {
      fail('chain.validity', `${where} is valid from ${iso(c.notBefore)} to ${iso(c.notAfter)}, not at ${iso(at)}`);
    }
    checkSerial(c, where);
    const unknown = c.extensions.find((e) => e.critical && !KNOWN_EXTENSIONS.has(e.oid));
    if (unknown) {
      const why = unknown.oid === OID.crlDistributionPoints ? 'a critical cRLDistributionPoints (no CRL is fetched, so it cannot be honoured)' : `an unrecognised critical extension ${unknown.oid}`;
      fail('chain.critical-extension', `${where} has ${why}`);
    }
    const bc = c.basicConstraints;
    const ku = c.keyUsage;
    if (bc && !bc.ca && bc.pathLen !== null) {
      fail('chain.basic-constraints', `${where} has a pathLenConstraint without cA TRUE (RFC 5280 4.2.1.9)`);
    }
    if (i < leafIndex) {
      if (!bc || !bc.ca) fail('chain.basic-constraints', `${where} issues certificates but is not a CA (basicConstraints CA:TRUE)`);
      if (!c.extensions.find((e) => e.oid === OID.basicConstraints)!.critical) {
        fail('chain.basic-constraints', `${where} is a CA whose basicConstraints is not critical (RFC 5280 4.2.1.9)`);
      }
      const below = leafIndex - 1 - i; // intermediate CAs under this one
      if (bc!.pathLen !== null && below > bc!.pathLen) {
        fail('chain.path-length', `${where} allows ${bc!.pathLen} CA certificate(s) below it, the chain has ${below}`);
      }
      if (!ku?.has('keyCertSign')) fail('chain.key-usage', `${where} lacks keyUsage keyCertSign`);
    } else {
      if (bc?.ca) fail('chain.basic-constraints', `${where} is a CA certificate, but the document must be signed by an end-entity key`);
      if (!ku?.has('digitalSignature')) fail('chain.key-usage', `${where} lacks keyUsage digitalSignature`);
      if (ku!.has('keyCertSign')) fail('chain.key-usage', `${where} asserts keyCertSign but is not a CA (RFC 5280 4.2.1.3)`);
    }
    if (i === 0) continue;
    const parent = path[i - 1]!;
    // Names are compared byte for byte (see docs/attestation.md, "Certificate parsing").
    if (!equal(c.issuer, parent.subject)) fail('chain.issuer', `${where} names issuer '${c.issuerText}', but the certificate above it is '${parent.subjectText}'`);
    let rs: Uint8Array;
    try {
      rs = signatureFromDer(c.signature);
    } catch (e) {
      return fail('chain.signature', `${where} has a malformed signature (${(e as Error).message})`);
    }
    if (!(await backend.verify(parent.publicKey, c.tbs, rs))) {
      fail('chain.signature', `${where} is not signed by the key of ${names[i - 1]} '${parent.subjectText}'`);
    }
  }

  // ---- the document signature ----
  if (!(await backend.verify(path[leafIndex]!.publicKey, sigStructure(doc.payload), doc.signature))) {
    fail('signature', 'the ES384 signature does not verify with the leaf certificate key');
  }

  // ---- what the caller expects ----
  const expected = options.expectedPcrs;
  if (expected) {
    const entries = expected instanceof Map ? [...expected] : Object.entries(expected).map(([k, v]) => [Number(k), v] as const);
    for (const [i, v] of entries) {
      const got = doc.pcrs.get(i);
      if (!got) fail('expect.pcr', `PCR ${i} is not in the document`);
      else if (!equal(got, v)) fail('expect.pcr', `PCR ${i} is ${bytesToHex(got)}, expected ${bytesToHex(v)}`);
    }
  }
  const same = (rule: VerifyRule, name: string, want: Uint8Array | undefined, got: Uint8Array | null) => {
    if (want === undefined) return;
    if (got === null) fail(rule, `${name} is absent, expected ${bytesToHex(want)}`);
    else if (!equal(got, want)) fail(rule, `${name} is ${bytesToHex(got)}, expected ${bytesToHex(want)}`);
  };
  same('expect.nonce', 'nonce', options.expectedNonce, doc.nonce);
  same('expect.user_data', 'user_data', options.expectedUserData, doc.userData);
  same('expect.public_key', 'public_key', options.expectedPublicKey, doc.publicKey);
  if (options.expectedModuleId !== undefined && doc.moduleId !== options.expectedModuleId) {
    fail('expect.module_id', `module_id is '${doc.moduleId}', expected '${options.expectedModuleId}'`);
  }
  return { ...doc, chain: path, verifiedAt: at };
}
