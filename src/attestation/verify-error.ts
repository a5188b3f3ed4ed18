/**
 * The error every verification failure throws, naming the rule that failed.
 *
 * Rules are grouped: `cose.*` (the COSE_Sign1 envelope), `payload.*` (the syntactic checks of
 * AWS's procedure, one per field), `chain.*` (the certificate path from the pinned root to the
 * leaf), `signature` (ES384 over the Sig_structure) and `expect.*` (values the caller asked for).
 * @module
 */

export type VerifyRule =
  | 'cose.size'
  | 'cose.decode'
  | 'cose.tag'
  | 'cose.structure'
  | 'cose.protected'
  | 'cose.unprotected'
  | 'cose.payload'
  | 'cose.signature-format'
  | 'payload.decode'
  | 'payload.keys'
  | 'payload.unknown-key'
  | 'payload.module_id'
  | 'payload.digest'
  | 'payload.timestamp'
  | 'payload.pcrs'
  | 'payload.certificate'
  | 'payload.cabundle'
  | 'payload.public_key'
  | 'payload.user_data'
  | 'payload.nonce'
  | 'chain.root'
  | 'chain.parse'
  | 'chain.issuer'
  | 'chain.algorithm'
  | 'chain.signature'
  | 'chain.validity'
  | 'chain.serial'
  | 'chain.basic-constraints'
  | 'chain.path-length'
  | 'chain.key-usage'
  | 'chain.critical-extension'
  | 'signature'
  | 'expect.pcr'
  | 'expect.nonce'
  | 'expect.user_data'
  | 'expect.public_key'
  | 'expect.module_id';

export class AttestationVerifyError extends Error {
  override readonly name = 'AttestationVerifyError';
  constructor(
    /** The rule that failed. */
    readonly rule: VerifyRule,
    message: string,
  ) {
    super(`${rule}: ${message}`);
  }
}
