/**
 * Offline key-policy checks: would this policy let this caller do this action with this
 * attestation document and encryption context? What `nsm-emulator kms check` runs, and the
 * same evaluation the endpoint applies to a request.
 * @module
 */
import { committedTestCa } from '../attestation/default-attester.js';
import { parseAttestationDocument } from '../attestation/document-parse.js';
import { type PolicyDecision, evaluatePolicy, parsePolicy } from './policy.js';
import { attestationConditionKeys, checkRecipientDocument, encryptionContextConditionKeys } from './recipient.js';

export interface PolicyCheckInput {
  /** The key policy: JSON text or a parsed object. */
  readonly policy: string | unknown;
  /** The Recipient attestation document (raw COSE_Sign1), if the request carries one. */
  readonly document?: Uint8Array;
  /** Default `kms:Decrypt`. */
  readonly action?: string;
  readonly encryptionContext?: Readonly<Record<string, string>>;
  /** The caller's account (default 111122223333) and ARN (default that account's root). */
  readonly account?: string;
  readonly principalArn?: string;
  /** The key's ARN (default a key of `account` in us-east-1). */
  readonly keyArn?: string;
  /**
   * How the document is checked: `verify` (default) against `roots` (default the committed
   * test root) as the endpoint does, or `skip` to evaluate only its PCRs.
   */
  readonly verify?: 'verify' | 'skip';
  readonly roots?: readonly Uint8Array[];
  readonly time?: number | 'document';
}

/**
 * Evaluates a key policy for one request. A document that fails verification throws the
 * endpoint's KmsError (ValidationException); a malformed policy throws PolicyError.
 */
export async function checkKeyPolicy(input: PolicyCheckInput): Promise<PolicyDecision> {
  const policy = parsePolicy(input.policy);
  const account = input.account ?? '111122223333';
  const principalArn = input.principalArn ?? `arn:aws:iam::${account}:root`;
  const context = encryptionContextConditionKeys(input.encryptionContext);
  if (input.document) {
    const doc =
      input.verify === 'skip'
        ? parseAttestationDocument(input.document)
        : (await checkRecipientDocument(input.document, { roots: input.roots ?? [committedTestCa().root.der], ...(input.time === undefined ? {} : { time: input.time }) })).document;
    for (const [k, v] of attestationConditionKeys(doc)) context.set(k, v);
  }
  context.set('kms:CallerAccount', [account]);
  context.set('aws:PrincipalArn', [principalArn]);
  context.set('aws:PrincipalAccount', [account]);
  return evaluatePolicy(policy, {
    action: input.action ?? 'kms:Decrypt',
    principalArn,
    principalAccount: account,
    resource: input.keyArn ?? `arn:aws:kms:us-east-1:${account}:key/00000000-0000-4000-8000-000000000000`,
    context,
  });
}
