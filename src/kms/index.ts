/**
 * A local KMS for testing key policies against emulated enclaves: key-policy evaluation, the
 * CMS envelope of CiphertextForRecipient (build and, for the enclave side, decrypt), the
 * ciphertext blob format and the service behind `nsm-emulator kms`. Runtime-agnostic
 * (WebCrypto); the HTTP endpoint is in `nsm-emulator/node`.
 * @module
 */
export { KmsError, type KmsErrorType } from './errors.js';
export {
  parsePolicy,
  evaluatePolicy,
  conditionHolds,
  wildcardMatch,
  PolicyError,
  MAX_POLICY_LENGTH,
  type KeyPolicy,
  type PolicyStatement,
  type PolicyRequest,
  type PolicyDecision,
} from './policy.js';
export {
  buildCiphertextForRecipient,
  decryptCiphertextForRecipient,
  parseCiphertextForRecipient,
  importRecipientKey,
  CmsError,
  CMS_OID,
  type RecipientEnvelope,
  type RecipientEnvelopeOptions,
  type RecipientPrivateKey,
} from './cms-recipient.js';
export { parseRsaSpki, RSA_RECIPIENT_BITS, type RsaRecipientKey } from './rsa-spki.js';
export { sealBlob, openBlob, blobKeyId, canonicalContext, importBlobKey, type EncryptionContext } from './ciphertext-blob.js';
export {
  checkRecipientDocument,
  attestationConditionKeys,
  encryptionContextConditionKeys,
  MAX_ATTESTATION_DOCUMENT,
  type CheckedRecipient,
  type RecipientCheckOptions,
} from './recipient.js';
export { checkKeyPolicy, type PolicyCheckInput } from './check.js';
export {
  KmsService,
  KMS_OPERATIONS,
  KMS_LIMITS,
  defaultKeyPolicy,
  type KmsServiceOptions,
  type KmsCaller,
  type KmsLogEntry,
  type KmsStateJson,
} from './service.js';
export { BerError, readBer, berStringBytes, type BerNode } from './ber.js';
