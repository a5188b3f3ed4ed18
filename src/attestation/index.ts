/**
 * Attestation: the test CA, the attester the device signs with, document encoding, and the
 * verifier. Re-exported by the package root.
 * @module
 */
export { caAttester, CaAttester, type CaAttesterOptions } from './ca-attester.js';
export { defaultAttester, committedTestCa, TEST_ROOT_PEM } from './default-attester.js';
export {
  createTestCa,
  defaultRootCommonName,
  AWS_ROOT_G1_NOT_BEFORE,
  AWS_ROOT_G1_NOT_AFTER,
  testCaFromPem,
  testCaToPem,
  TestCaError,
  type TestCa,
  type TestCaPem,
  type PemPair,
  type CreateTestCaOptions,
} from './test-ca.js';
export { ChainIssueError } from './chain-issuer.js';
export { CHAIN_CADENCE, intermediatesAt } from './chain-schedule.js';
export { CHAIN_ENTRY_SIZE, type ChainStore } from './chain-store.js';
export { LIFETIME_SECONDS, LEAF_BACKDATE_SECONDS, TEST_ROOT_CN, type IssuedCert, type ChainLevel } from './chain-profile.js';
export { makeAttestationDocument, type DocumentValues } from './make-document.js';
export {
  encodePayload,
  encodeCoseSign1,
  sigStructure,
  type PayloadFields,
  type PayloadMapForm,
  type PcrEntry,
} from './document.js';
export { parseAttestationDocument, type AttestationDocument } from './document-parse.js';
export { verifyAttestationDocument, type VerifyOptions, type VerifiedDocument } from './verify.js';
export { AttestationVerifyError, type VerifyRule } from './verify-error.js';
export { parseCertificate, type ParsedCertificate } from '../x509/certificate.js';
export { P384Key, type P384Backend, type P384BackendChoice } from './p384.js';
export { pemEncode, pemDecode, PemError } from '../x509/pem.js';
export { AWS_NITRO_ROOT_G1_PEM } from './aws-root.js';
export { decodeDocumentInput, DocumentInputError } from './document-input.js';
