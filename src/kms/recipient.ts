/**
 * The `Recipient` of a KMS request: checking its attestation document against the endpoint's
 * trusted roots (through the package's verifier) and its public key (an RSA
 * SubjectPublicKeyInfo), and the condition keys the document supplies to key policies.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseAttestationDocument } from '../attestation/document-parse.js';
import { type VerifiedDocument, verifyAttestationDocument } from '../attestation/verify.js';
import { AttestationVerifyError } from '../attestation/verify-error.js';
import { parseCertificate } from '../x509/certificate.js';
import { KmsError } from './errors.js';
import { type RsaRecipientKey, parseRsaSpki } from './rsa-spki.js';

/** Largest AttestationDocument KMS accepts (RecipientInfo), in bytes. */
export const MAX_ATTESTATION_DOCUMENT = 262144;

export interface RecipientCheckOptions {
  /** Trusted root certificates (DER). */
  readonly roots: readonly Uint8Array[];
  /** When certificates must be valid: ms since the epoch, `document` (its own timestamp) or now. */
  readonly time?: number | 'document';
}

export interface CheckedRecipient {
  readonly document: VerifiedDocument;
  readonly key: RsaRecipientKey;
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

function invalid(detail: string): never {
  throw new KmsError('ValidationException', 'Recipient.AttestationDocument is not a valid Nitro Enclaves attestation document', detail);
}

/**
 * Verifies the document against whichever trusted root its cabundle starts with, then checks
 * its public_key. Failures are ValidationException, with the verifier's rule in `detail`.
 */
export async function checkRecipientDocument(bytes: Uint8Array, options: RecipientCheckOptions): Promise<CheckedRecipient> {
  let first: Uint8Array;
  try {
    first = parseAttestationDocument(bytes).cabundle[0]!;
  } catch (e) {
    if (e instanceof AttestationVerifyError) invalid(e.message);
    throw e;
  }
  const root = options.roots.find((r) => equal(r, first));
  if (!root) {
    let what = 'an unparseable certificate';
    try {
      what = `'${parseCertificate(first).subjectText}'`;
    } catch {
      /* keep */
    }
    invalid(`chain.root: cabundle[0] is ${what}, which is not one of the endpoint's ${options.roots.length} trusted root(s)`);
  }
  let document: VerifiedDocument;
  try {
    document = await verifyAttestationDocument(bytes, { root, ...(options.time === undefined ? {} : { time: options.time }) });
  } catch (e) {
    if (e instanceof AttestationVerifyError) invalid(e.message);
    throw e;
  }
  if (document.publicKey === null) invalid('public_key: the document has no public_key; KMS needs the RSA key to encrypt the response to');
  let key: RsaRecipientKey;
  try {
    key = parseRsaSpki(document.publicKey);
  } catch (e) {
    return invalid(`public_key: ${(e as Error).message.replace(/^public_key /, '')}`);
  }
  return { document, key };
}

/** The condition keys a verified document supplies: ImageSha384 (PCR0) and PCR<N>, lower-case hex. */
export function attestationConditionKeys(document: { readonly pcrs: ReadonlyMap<number, Uint8Array> }): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [i, v] of document.pcrs) out.set(`kms:RecipientAttestation:PCR${i}`, [bytesToHex(v)]);
  const pcr0 = document.pcrs.get(0);
  if (pcr0) out.set('kms:RecipientAttestation:ImageSha384', [bytesToHex(pcr0)]);
  return out;
}

/** The condition keys an encryption context supplies: kms:EncryptionContext:<key> and kms:EncryptionContextKeys. */
export function encryptionContextConditionKeys(context: Readonly<Record<string, string>> | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!context) return out;
  const keys = Object.keys(context);
  if (keys.length === 0) return out;
  for (const k of keys) out.set(`kms:EncryptionContext:${k}`, [context[k]!]);
  out.set('kms:EncryptionContextKeys', keys);
  return out;
}
