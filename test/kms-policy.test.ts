/**
 * Key-policy evaluation against the IAM rules AWS documents (expected outcomes written from
 * the IAM and KMS documentation, not from our output): absent keys, negated operators, set
 * operators, Null, Bool, IfExists, wildcards, principals, explicit deny.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PolicyError, checkKeyPolicy, evaluatePolicy, makeAttestationDocument, parsePolicy, type PolicyRequest } from '../src/index.js';
import { hex } from './helpers/hex.js';

const ACCOUNT = '111122223333';
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

function request(context: Record<string, string[]> = {}, over: Partial<PolicyRequest> = {}): PolicyRequest {
  return { action: 'kms:Decrypt', principalArn: `arn:aws:iam::${ACCOUNT}:root`, principalAccount: ACCOUNT, resource: KEY, context: new Map(Object.entries(context)), ...over };
}

const allowIf = (condition: unknown, extra: Record<string, unknown> = {}) =>
  parsePolicy({ Version: '2012-10-17', Statement: [{ Sid: 'S', Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*', Condition: condition, ...extra }] });

const allowed = (condition: unknown, context: Record<string, string[]> = {}) => evaluatePolicy(allowIf(condition), request(context)).allowed;

describe('condition operators', () => {
  const K = 'kms:RecipientAttestation:PCR0';
  it('StringEquals is case-sensitive, StringEqualsIgnoreCase is not; an absent key never matches a positive operator', () => {
    expect(allowed({ StringEquals: { [K]: 'ab' } }, { [K]: ['ab'] })).toBe(true);
    expect(allowed({ StringEquals: { [K]: 'AB' } }, { [K]: ['ab'] })).toBe(false);
    expect(allowed({ StringEqualsIgnoreCase: { [K]: 'AB' } }, { [K]: ['ab'] })).toBe(true);
    expect(allowed({ StringEquals: { [K]: 'ab' } }, {})).toBe(false);
    expect(allowed({ StringEquals: { [K]: ['xx', 'ab'] } }, { [K]: ['ab'] })).toBe(true); // values in a list are OR-ed
  });

  it('negated operators are true for an absent key (IAM), false when any value matches', () => {
    expect(allowed({ StringNotEquals: { [K]: 'ab' } }, {})).toBe(true);
    expect(allowed({ StringNotEquals: { [K]: 'ab' } }, { [K]: ['ab'] })).toBe(false);
    expect(allowed({ StringNotEquals: { [K]: ['ab', 'cd'] } }, { [K]: ['ef'] })).toBe(true);
    expect(allowed({ StringNotEqualsIgnoreCase: { [K]: 'AB' } }, { [K]: ['ab'] })).toBe(false);
    expect(allowed({ StringNotLike: { [K]: 'a*' } }, { [K]: ['ab'] })).toBe(false);
  });

  it('StringLike: * is any run and ? one character, case-sensitive', () => {
    expect(allowed({ StringLike: { [K]: 'a?c*' } }, { [K]: ['abcdef'] })).toBe(true);
    expect(allowed({ StringLike: { [K]: 'a?c*' } }, { [K]: ['ac'] })).toBe(false);
    expect(allowed({ StringLike: { [K]: 'A*' } }, { [K]: ['ab'] })).toBe(false);
    expect(allowed({ StringLike: { [K]: 'a.c' } }, { [K]: ['abc'] })).toBe(false); // '.' is literal
  });

  it('ForAnyValue needs one match and is false for an empty set; ForAllValues needs all and is true for an empty set', () => {
    const keys = 'kms:EncryptionContextKeys';
    expect(allowed({ 'ForAnyValue:StringEquals': { [keys]: ['purpose'] } }, { [keys]: ['purpose', 'x'] })).toBe(true);
    expect(allowed({ 'ForAnyValue:StringEquals': { [keys]: ['purpose'] } }, {})).toBe(false);
    expect(allowed({ 'ForAllValues:StringEquals': { [keys]: ['purpose', 'app'] } }, { [keys]: ['purpose'] })).toBe(true);
    expect(allowed({ 'ForAllValues:StringEquals': { [keys]: ['purpose', 'app'] } }, { [keys]: ['purpose', 'x'] })).toBe(false);
    expect(allowed({ 'ForAllValues:StringEquals': { [keys]: ['purpose'] } }, {})).toBe(true);
    expect(allowed({ 'ForAnyValue:StringNotEquals': { [keys]: ['purpose'] } }, { [keys]: ['purpose', 'x'] })).toBe(true);
  });

  it('Null tests presence; Bool compares true/false; IfExists passes an absent key', () => {
    expect(allowed({ Null: { [K]: 'false' } }, { [K]: ['ab'] })).toBe(true);
    expect(allowed({ Null: { [K]: 'false' } }, {})).toBe(false);
    expect(allowed({ Null: { [K]: 'true' } }, {})).toBe(true);
    expect(allowed({ Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': ['true'] })).toBe(true);
    expect(allowed({ Bool: { 'aws:SecureTransport': true } }, { 'aws:SecureTransport': ['false'] })).toBe(false);
    expect(allowed({ StringEqualsIfExists: { [K]: 'ab' } }, {})).toBe(true);
    expect(allowed({ StringEqualsIfExists: { [K]: 'ab' } }, { [K]: ['cd'] })).toBe(false);
  });

  it('condition key names are case-insensitive; several keys and operators are AND-ed', () => {
    expect(allowed({ StringEquals: { 'KMS:recipientattestation:pcr0': 'ab' } }, { [K]: ['ab'] })).toBe(true);
    const both = { StringEquals: { [K]: 'ab', 'kms:EncryptionContext:app': 'web' } };
    expect(allowed(both, { [K]: ['ab'], 'kms:EncryptionContext:app': ['web'] })).toBe(true);
    expect(allowed(both, { [K]: ['ab'] })).toBe(false);
    expect(allowed({ StringEquals: { [K]: 'ab' }, Null: { 'kms:EncryptionContextKeys': 'true' } }, { [K]: ['ab'], 'kms:EncryptionContextKeys': ['a'] })).toBe(false);
  });
});

describe('statements', () => {
  it('Action wildcards are case-insensitive; NotAction excludes; Resource must match the key ARN', () => {
    const p = (st: Record<string, unknown>) => parsePolicy({ Statement: { Effect: 'Allow', Principal: '*', Resource: '*', ...st } });
    expect(evaluatePolicy(p({ Action: 'KMS:decrypt' }), request()).allowed).toBe(true);
    expect(evaluatePolicy(p({ Action: 'kms:Gen*' }), request({}, { action: 'kms:GenerateDataKey' })).allowed).toBe(true);
    expect(evaluatePolicy(p({ Action: 'kms:Gen*' }), request()).allowed).toBe(false);
    expect(evaluatePolicy(p({ NotAction: 'kms:Decrypt' }), request()).allowed).toBe(false);
    expect(evaluatePolicy(p({ NotAction: 'kms:Decrypt' }), request({}, { action: 'kms:Encrypt' })).allowed).toBe(true);
    const onKey = parsePolicy({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: `arn:aws:kms:*:${ACCOUNT}:key/*` } });
    expect(evaluatePolicy(onKey, request()).allowed).toBe(true);
    expect(evaluatePolicy(onKey, request({}, { resource: 'arn:aws:kms:us-east-1:999999999999:key/x' })).allowed).toBe(false);
  });

  it('principals: *, the account id, the account root and an exact ARN; a Service principal never matches a caller', () => {
    const p = (principal: unknown) => parsePolicy({ Statement: { Effect: 'Allow', Principal: principal, Action: 'kms:*', Resource: '*' } });
    const role = request({}, { principalArn: `arn:aws:iam::${ACCOUNT}:role/App` });
    expect(evaluatePolicy(p('*'), role).allowed).toBe(true);
    expect(evaluatePolicy(p({ AWS: ACCOUNT }), role).allowed).toBe(true);
    expect(evaluatePolicy(p({ AWS: `arn:aws:iam::${ACCOUNT}:root` }), role).allowed).toBe(true);
    expect(evaluatePolicy(p({ AWS: [`arn:aws:iam::${ACCOUNT}:role/App`] }), role).allowed).toBe(true);
    expect(evaluatePolicy(p({ AWS: `arn:aws:iam::${ACCOUNT}:role/Other` }), role).allowed).toBe(false);
    expect(evaluatePolicy(p({ AWS: 'arn:aws:iam::444455556666:root' }), role).allowed).toBe(false);
    expect(evaluatePolicy(p({ Service: 'ec2.amazonaws.com' }), role).allowed).toBe(false);
  });

  it('an explicit Deny wins over any Allow and is named with its condition; no Allow is an implicit deny', () => {
    const policy = parsePolicy({
      Statement: [
        { Sid: 'All', Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' },
        { Sid: 'NoFoo', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:EncryptionContext:app': 'foo' } } },
      ],
    });
    const d = evaluatePolicy(policy, request({ 'kms:EncryptionContext:app': ['foo'] }));
    expect(d).toMatchObject({ allowed: false, outcome: 'explicit-deny', statement: "Sid 'NoFoo'" });
    expect(d.condition).toContain('kms:EncryptionContext:app');
    expect(evaluatePolicy(policy, request({ 'kms:EncryptionContext:app': ['bar'] }))).toMatchObject({ allowed: true, statement: "Sid 'All'" });
    const none = evaluatePolicy(parsePolicy({ Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:Encrypt', Resource: '*' } }), request());
    expect(none).toMatchObject({ allowed: false, outcome: 'implicit-deny', statement: null });
  });

  it('malformed policies are refused naming the statement and field', () => {
    expect(() => parsePolicy('{')).toThrow(PolicyError);
    expect(() => parsePolicy({ Statement: [{ Sid: 'X', Effect: 'Permit', Principal: '*', Action: '*', Resource: '*' }] })).toThrow(/Statement\[0\] \(Sid 'X'\)\.Effect/);
    expect(() => parsePolicy({ Statement: [{ Effect: 'Allow', Principal: '*', Action: '*' }] })).toThrow(/Resource/);
    expect(() => parsePolicy({ Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { NumericEquals: { a: '1' } } }] })).toThrow(/unsupported condition operator 'NumericEquals'/);
    expect(() => parsePolicy({ Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { Null: { a: 'maybe' } } }] })).toThrow(/"true" or "false"/);
    expect(() => parsePolicy('x'.repeat(40000))).toThrow(/at most 32768/);
  });
});

describe('checkKeyPolicy with a signed document', () => {
  const pcr0 = new Uint8Array(48).fill(0x11);
  const pcr16 = new Uint8Array(48).fill(0x22);
  const policy = JSON.stringify({
    Statement: [{ Sid: 'Enclave', Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'kms:Decrypt', Resource: '*', Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': hex(pcr0), 'kms:RecipientAttestation:PCR16': hex(pcr16) } } }],
  });
  const publicKey = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }));
  it('reads ImageSha384 (PCR0) and custom PCRs from the verified document', async () => {
    const doc = await makeAttestationDocument({ pcrs: { 0: pcr0, 16: pcr16 }, publicKey });
    expect((await checkKeyPolicy({ policy, document: doc })).allowed).toBe(true);
    expect((await checkKeyPolicy({ policy, document: doc, action: 'kms:Encrypt' })).allowed).toBe(false);
    const other = await makeAttestationDocument({ pcrs: { 0: pcr0, 16: pcr0 }, publicKey });
    const d = await checkKeyPolicy({ policy, document: other });
    expect(d.allowed).toBe(false);
    expect(d.condition).toContain('kms:RecipientAttestation:PCR16');
    expect((await checkKeyPolicy({ policy })).allowed).toBe(false); // no document: the keys are absent
  });

  it('refuses a document KMS would refuse (no public_key) unless verification is skipped', async () => {
    const noKey = await makeAttestationDocument({ pcrs: { 0: pcr0, 16: pcr16 } });
    await expect(checkKeyPolicy({ policy, document: noKey })).rejects.toMatchObject({ type: 'ValidationException', detail: expect.stringMatching(/^public_key: /) });
    expect((await checkKeyPolicy({ policy, document: noKey, verify: 'skip' })).allowed).toBe(true);
  });
});
