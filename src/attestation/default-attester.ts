/**
 * The attester a device uses when given none: the committed test CA in certs/ (TEST ONLY),
 * embedded in committed-ca.ts. The parsed CA is made once and shared: it is immutable apart
 * from each key remembering its WebCrypto handle.
 * @module
 */
import type { AttesterFactory } from '../device/attester.js';
import { caAttester } from './ca-attester.js';
import { COMMITTED_CA_PEM } from './committed-ca.js';
import { type TestCa, testCaFromPem } from './test-ca.js';

let committed: TestCa | null = null;

/** The committed test CA: pin `certs/root.pem` (or `committedTestCa().root.der`) to accept its documents. */
export function committedTestCa(): TestCa {
  committed ??= testCaFromPem(COMMITTED_CA_PEM);
  return committed;
}

/**
 * The committed test CA's root certificate (PEM): what `certs/root.pem` holds. Pin it in
 * tests that verify the emulator's documents, e.g. `verifyAttestationDocument(doc, { root:
 * TEST_ROOT_PEM })`. TEST ONLY: its private key is public.
 */
export const TEST_ROOT_PEM: string = COMMITTED_CA_PEM.root.certificate;

/** Signs with the committed test CA; the payload map is the current (indefinite-length) form. */
export const defaultAttester: AttesterFactory = (env) => caAttester(committedTestCa())(env);
