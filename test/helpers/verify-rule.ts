/**
 * The verifier rule a promise fails with (AttestationVerifyError.rule), or 'accepted' when it
 * resolves; any other error is rethrown.
 * @module
 */
import { AttestationVerifyError, type VerifyRule } from '../../src/attestation/verify-error.js';

export async function ruleOf(p: Promise<unknown>): Promise<VerifyRule | 'accepted'> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (e instanceof AttestationVerifyError) return e.rule;
    throw e;
  }
}
