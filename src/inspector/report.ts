/**
 * The inspector's view of one attestation document: every field decoded for a person, the
 * certificate chain with its validity windows, and a verdict against each trusted root. Pure
 * data, no DOM: the page renders it and tests check it.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { type AttestationDocument, parseAttestationDocument } from '../attestation/document-parse.js';
import { verifyAttestationDocument } from '../attestation/verify.js';
import { AttestationVerifyError } from '../attestation/verify-error.js';
import { parseCertificate } from '../x509/certificate.js';
import { type PublicKeyDescription, describePublicKey } from './public-key.js';

/** A root the document may chain to, by a name people recognise. */
export interface TrustedRoot {
  readonly name: string;
  /** PEM text or DER bytes. */
  readonly certificate: string | Uint8Array;
}

export interface Verdict {
  readonly valid: boolean;
  /** The root the document verified against (valid) or the one whose check is reported. */
  readonly root: string | null;
  /** The rule that failed (invalid only). */
  readonly rule: string | null;
  readonly message: string;
  /** The instant the chain was checked at (ms). */
  readonly at: number | null;
}

export interface PcrRow {
  readonly index: number;
  readonly hex: string;
  readonly zero: boolean;
  /** PCRs 0-15 are locked once the enclave has booted; 16-31 are the application's to extend. */
  readonly lockedAtBoot: boolean;
}

export interface BytesField {
  readonly name: 'user_data' | 'nonce' | 'public_key';
  readonly present: boolean;
  readonly hex: string;
  readonly length: number;
  /** UTF-8 text when every character is printable. */
  readonly text: string | null;
  /** Pretty-printed JSON when the text is a JSON object or array. */
  readonly json: string | null;
  /** public_key only. */
  readonly key: PublicKeyDescription | null;
}

export interface CertificateRow {
  /** `cabundle[0]` ... `certificate`. */
  readonly position: string;
  /** root, regional, zonal, instance, leaf: AWS's five levels, named by position. */
  readonly role: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly keyUsage: readonly string[];
  readonly ca: boolean | null;
  readonly pathLen: number | null;
  /** Whether the validity window covers the document's timestamp. */
  readonly coversDocument: boolean;
  /** Set when the certificate cannot be parsed (the other fields are then empty). */
  readonly error: string | null;
}

export interface InspectReport {
  /** Set when the bytes are not a readable document (then only `verdict` is meaningful). */
  readonly decodeError: string | null;
  readonly verdict: Verdict;
  /** Each root's own outcome, in the order given. */
  readonly checks: readonly Verdict[];
  readonly moduleId: string | null;
  readonly digest: string | null;
  readonly timestamp: number | null;
  readonly payloadMap: 'definite' | 'indefinite' | null;
  readonly pcrs: readonly PcrRow[];
  readonly fields: readonly BytesField[];
  readonly chain: readonly CertificateRow[];
}

export interface InspectOptions {
  /** Roots to try, in order of preference. */
  readonly roots: readonly TrustedRoot[];
  /** When the certificates must be valid: `document` (its own timestamp, the default) or ms. */
  readonly time?: 'document' | number;
}

const ROLES = ['root', 'regional', 'zonal', 'instance'];
const PRINTABLE = /^[\P{Cc}\t\n\r]*$/u;

function bytesField(name: BytesField['name'], value: Uint8Array | null): BytesField {
  if (value === null) return { name, present: false, hex: '', length: 0, text: null, json: null, key: null };
  let text: string | null = null;
  let json: string | null = null;
  try {
    const t = new TextDecoder('utf-8', { fatal: true }).decode(value);
    if (t.length > 0 && PRINTABLE.test(t)) text = t;
  } catch {
    /* not UTF-8 */
  }
  if (text !== null && /^\s*[[{]/.test(text)) {
    try {
      json = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* not JSON */
    }
  }
  const key = name === 'public_key' ? describePublicKey(value) : null;
  return { name, present: true, hex: bytesToHex(value), length: value.length, text, json, key };
}

function certificateRow(der: Uint8Array, position: string, role: string, docTime: number): CertificateRow {
  try {
    const c = parseCertificate(der);
    return {
      position,
      role,
      subject: c.subjectText,
      issuer: c.issuerText,
      serial: bytesToHex(c.serial),
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      keyUsage: c.keyUsage ? [...c.keyUsage] : [],
      ca: c.basicConstraints ? c.basicConstraints.ca : null,
      pathLen: c.basicConstraints ? c.basicConstraints.pathLen : null,
      coversDocument: docTime >= c.notBefore && docTime <= c.notAfter,
      error: null,
    };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return { position, role, subject: '', issuer: '', serial: '', notBefore: 0, notAfter: 0, keyUsage: [], ca: null, pathLen: null, coversDocument: false, error };
  }
}

function roleOf(index: number, count: number): string {
  if (index === 0) return 'root';
  return count === 4 ? ROLES[index]! : `intermediate ${index}`;
}

async function check(bytes: Uint8Array, root: TrustedRoot, time: 'document' | number): Promise<Verdict> {
  try {
    const v = await verifyAttestationDocument(bytes, { root: root.certificate, time });
    return { valid: true, root: root.name, rule: null, message: `signed under ${root.name}`, at: v.verifiedAt };
  } catch (e) {
    if (e instanceof AttestationVerifyError) return { valid: false, root: root.name, rule: e.rule, message: e.message, at: null };
    return { valid: false, root: root.name, rule: 'internal', message: e instanceof Error ? e.message : String(e), at: null };
  }
}

/** The overall verdict: the first root that accepts; else the most telling failure. */
function overall(checks: readonly Verdict[]): Verdict {
  const ok = checks.find((c) => c.valid);
  if (ok) return ok;
  // A root the document does chain to says more than roots it merely is not under.
  const telling = checks.find((c) => c.rule !== 'chain.root');
  if (telling) return telling;
  const names = checks.map((c) => c.root).join(', ');
  return { valid: false, root: null, rule: 'chain.root', message: `chain.root: the document is not issued under any trusted root (${names || 'none given'})`, at: null };
}

/** Builds the report for one document. Never throws for bad input: it ends up in the verdict. */
export async function inspectDocument(bytes: Uint8Array, options: InspectOptions): Promise<InspectReport> {
  const time = options.time ?? 'document';
  let doc: AttestationDocument;
  try {
    doc = parseAttestationDocument(bytes);
  } catch (e) {
    const rule = e instanceof AttestationVerifyError ? e.rule : 'cose.decode';
    const message = e instanceof Error ? e.message : String(e);
    const verdict: Verdict = { valid: false, root: null, rule, message, at: null };
    return { decodeError: message, verdict, checks: [], moduleId: null, digest: null, timestamp: null, payloadMap: null, pcrs: [], fields: [], chain: [] };
  }
  const checks: Verdict[] = [];
  for (const root of options.roots) checks.push(await check(bytes, root, time));
  const pcrs = [...doc.pcrs].map(([index, v]) => ({ index, hex: bytesToHex(v), zero: v.every((b) => b === 0), lockedAtBoot: index < 16 }));
  pcrs.sort((a, b) => a.index - b.index);
  const chain = [
    ...doc.cabundle.map((der, i) => certificateRow(der, `cabundle[${i}]`, roleOf(i, doc.cabundle.length), doc.timestamp)),
    certificateRow(doc.certificate, 'certificate', 'leaf', doc.timestamp),
  ];
  return {
    decodeError: null,
    verdict: overall(checks),
    checks,
    moduleId: doc.moduleId,
    digest: doc.digest,
    timestamp: doc.timestamp,
    payloadMap: doc.payloadMap,
    pcrs,
    fields: [bytesField('user_data', doc.userData), bytesField('nonce', doc.nonce), bytesField('public_key', doc.publicKey)],
    chain,
  };
}
