/**
 * The local KMS end to end through AWS's own SDK (@aws-sdk/client-kms): a key whose policy
 * pins PCR0, documents from the emulated NSM, and the CiphertextForRecipient opened both by
 * `openssl cms -decrypt` and by the library's WebCrypto decryptor.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsmDevice, createTestCa, decryptCiphertextForRecipient, KmsService, type KmsLogEntry } from '../src/index.js';
import { KmsHttpServer } from '../src/node/index.js';
import { parseAuthorization } from '../src/node/sigv4.js';
import { hex } from './helpers/hex.js';

const PCR0 = new Uint8Array(48).fill(0xab);
const OTHER_PCR0 = new Uint8Array(48).fill(0xcd);
const SECRET = new TextEncoder().encode('the database password: hunter2');

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = new Uint8Array(rsa.publicKey.export({ type: 'spki', format: 'der' }));
const pkcs8Pem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

const pcr0Policy = (condition: Record<string, unknown>, extra: unknown[] = []) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: ['kms:Encrypt', 'kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:CreateAlias', 'kms:GenerateDataKeyWithoutPlaintext'], Resource: '*' },
      { Sid: 'EnclaveDecrypt', Effect: 'Allow', Principal: { AWS: '*' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: '*', Condition: condition },
      ...extra,
    ],
  });

async function documentFor(pcr0: Uint8Array, publicKey: Uint8Array | null = spki) {
  const device = new NsmDevice({ pcrs: { 0: pcr0 } });
  return device.attestation({ publicKey });
}

let dir: string;
let server: KmsHttpServer;
let client: KMSClient;
const log: KmsLogEntry[] = [];
const lastLog = (operation: string): KmsLogEntry => [...log].reverse().find((e) => e.operation === operation)!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nsm-kms-'));
  writeFileSync(join(dir, 'key.pem'), pkcs8Pem, { mode: 0o600 });
  const { committedTestCa } = await import('../src/index.js');
  const service = new KmsService({ trustRoots: [committedTestCa().root.der], log: (e) => log.push(e) });
  server = new KmsHttpServer(service);
  const url = await server.listen('127.0.0.1', 0);
  client = new KMSClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'any' }, maxAttempts: 1 });
});

afterAll(async () => {
  client?.destroy();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function opensslDecrypt(cms: Uint8Array): Uint8Array {
  const file = join(dir, `cms-${Math.random().toString(16).slice(2)}.der`);
  writeFileSync(file, cms);
  return new Uint8Array(execFileSync('openssl', ['cms', '-decrypt', '-inform', 'DER', '-binary', '-inkey', join(dir, 'key.pem'), '-in', file]));
}

async function exceptionOf(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

async function keyWith(policy: string): Promise<string> {
  const made = await client.send(new CreateKeyCommand({ Policy: policy, Description: 'pcr0 test' }));
  return made.KeyMetadata!.KeyId!;
}

describe('KMS endpoint through @aws-sdk/client-kms', () => {
  it('Decrypt with Recipient: allowed on the pinned PCR0, opened by openssl cms and by the library', async () => {
    const keyId = await keyWith(pcr0Policy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:PCR0': hex(PCR0) } }));
    const enc = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: SECRET, EncryptionContext: { app: 'demo' } }));
    expect(enc.CiphertextBlob!.length).toBeGreaterThan(SECRET.length);
    const doc = await documentFor(PCR0);
    const out = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { app: 'demo' }, Recipient: { AttestationDocument: doc, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }));
    expect(out.Plaintext).toBeUndefined();
    expect(out.KeyId).toMatch(new RegExp(`^arn:aws:kms:us-east-1:111122223333:key/${keyId}$`));
    const cms = out.CiphertextForRecipient!;
    expect(opensslDecrypt(cms)).toEqual(SECRET);
    expect(await decryptCiphertextForRecipient(cms, pkcs8Pem)).toEqual(SECRET);
    const entry = lastLog('Decrypt');
    expect(entry.outcome).toBe('ok');
    expect(entry.policy!.statement).toBe("Sid 'EnclaveDecrypt'");
    expect(entry.policy!.condition).toContain('StringEqualsIgnoreCase kms:RecipientAttestation:PCR0');
  });

  it('a document with another PCR0 gets AccessDeniedException, and the log names the statement and condition', async () => {
    const keyId = await keyWith(pcr0Policy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:PCR0': hex(PCR0) } }));
    const enc = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: SECRET }));
    const doc = await documentFor(OTHER_PCR0);
    const err = await exceptionOf(client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, Recipient: { AttestationDocument: doc } })));
    expect(err).toEqual({ name: 'AccessDeniedException', status: 400 });
    const entry = lastLog('Decrypt');
    expect(entry.outcome).toBe('AccessDeniedException');
    expect(entry.policy!.outcome).toBe('implicit-deny');
    expect(entry.policy!.statement).toBe("Sid 'EnclaveDecrypt'");
    expect(entry.policy!.reason).toContain(hex(OTHER_PCR0));
    // Without a Recipient the condition key is absent, so the same policy denies a plain Decrypt.
    expect((await exceptionOf(client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })))).name).toBe('AccessDeniedException');
  });

  it('ImageSha384 with StringEqualsIgnoreCase matches PCR0 written in upper case', async () => {
    const keyId = await keyWith(pcr0Policy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': hex(PCR0).toUpperCase() } }));
    const doc = await documentFor(PCR0);
    const out = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', Recipient: { AttestationDocument: doc, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }));
    expect(out.Plaintext).toBeUndefined();
    const dataKey = opensslDecrypt(out.CiphertextForRecipient!);
    expect(dataKey.length).toBe(32);
    expect(await decryptCiphertextForRecipient(out.CiphertextForRecipient!, pkcs8Pem)).toEqual(dataKey);
    // The CiphertextBlob is the same data key under the KMS key: a plain Decrypt by the admin is denied by policy, so check via the enclave path.
    const back = await client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, Recipient: { AttestationDocument: doc } }));
    expect(opensslDecrypt(back.CiphertextForRecipient!)).toEqual(dataKey);
    // Case matters with StringEquals: the upper-case value no longer matches.
    const strict = await keyWith(pcr0Policy({ StringEquals: { 'kms:RecipientAttestation:ImageSha384': hex(PCR0).toUpperCase() } }));
    expect((await exceptionOf(client.send(new GenerateDataKeyCommand({ KeyId: strict, KeySpec: 'AES_256', Recipient: { AttestationDocument: doc } })))).name).toBe('AccessDeniedException');
  });

  it('an explicit Deny wins over an Allow', async () => {
    const deny = { Sid: 'NoDebugEnclaves', Effect: 'Deny', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'kms:RecipientAttestation:PCR0': hex(PCR0) } } };
    const keyId = await keyWith(pcr0Policy({ StringLike: { 'kms:RecipientAttestation:PCR0': '*' } }, [deny]));
    const enc = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: SECRET }));
    const allowed = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, Recipient: { AttestationDocument: await documentFor(OTHER_PCR0) } }));
    expect(opensslDecrypt(allowed.CiphertextForRecipient!)).toEqual(SECRET);
    const err = await exceptionOf(client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, Recipient: { AttestationDocument: await documentFor(PCR0) } })));
    expect(err.name).toBe('AccessDeniedException');
    const entry = lastLog('Decrypt');
    expect(entry.policy!.outcome).toBe('explicit-deny');
    expect(entry.policy!.statement).toBe("Sid 'NoDebugEnclaves'");
  });

  describe('refusals', () => {
    let keyId: string;
    let blob: Uint8Array;
    beforeAll(async () => {
      keyId = await keyWith(pcr0Policy({ StringEqualsIgnoreCase: { 'kms:RecipientAttestation:PCR0': hex(PCR0) } }));
      blob = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: SECRET }))).CiphertextBlob!;
    });
    const decrypt = (doc: Uint8Array, ciphertext = blob) => exceptionOf(client.send(new DecryptCommand({ CiphertextBlob: ciphertext, Recipient: { AttestationDocument: doc } })));

    it('a tampered document: ValidationException naming the failed signature', async () => {
      const doc = await documentFor(PCR0);
      doc[doc.length - 1]! ^= 1; // last byte of the ES384 signature
      expect(await decrypt(doc)).toEqual({ name: 'ValidationException', status: 400 });
      expect(lastLog('Decrypt').detail).toMatch(/^signature: /);
    });

    it('a document under an untrusted root: ValidationException naming chain.root', async () => {
      const other = await createTestCa({ rootNotBefore: Date.now() - 86_400_000 });
      const { caAttester } = await import('../src/index.js');
      const device = new NsmDevice({ pcrs: { 0: PCR0 }, attester: caAttester(other) });
      expect(await decrypt(await device.attestation({ publicKey: spki }))).toEqual({ name: 'ValidationException', status: 400 });
      expect(lastLog('Decrypt').detail).toMatch(/^chain\.root: /);
    });

    it('an EC public key: ValidationException (the key must be RSA)', async () => {
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const doc = await documentFor(PCR0, new Uint8Array(ec.publicKey.export({ type: 'spki', format: 'der' })));
      expect(await decrypt(doc)).toEqual({ name: 'ValidationException', status: 400 });
      expect(lastLog('Decrypt').detail).toContain('an EC key');
    });

    it('no public key at all: ValidationException', async () => {
      expect((await decrypt(await documentFor(PCR0, null))).name).toBe('ValidationException');
    });

    it('a bad ciphertext: InvalidCiphertextException (altered byte, other context, garbage)', async () => {
      const doc = await documentFor(PCR0);
      const altered = blob.slice();
      altered[altered.length - 1]! ^= 1;
      expect(await decrypt(doc, altered)).toEqual({ name: 'InvalidCiphertextException', status: 400 });
      expect(await decrypt(doc, new Uint8Array([1, 2, 3]))).toEqual({ name: 'InvalidCiphertextException', status: 400 });
      const withContext = (await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: SECRET, EncryptionContext: { a: 'b' } }))).CiphertextBlob!;
      expect((await exceptionOf(client.send(new DecryptCommand({ CiphertextBlob: withContext, EncryptionContext: { a: 'c' }, Recipient: { AttestationDocument: doc } })))).name).toBe('InvalidCiphertextException');
    });
  });

  it('keys, aliases and policies: CreateAlias / ListAliases, alias names as KeyId, ListKeys, Get/PutKeyPolicy, NotFoundException', async () => {
    const keyId = await keyWith(pcr0Policy({ StringEquals: { 'kms:RecipientAttestation:PCR0': hex(PCR0) } }));
    const alias = `alias/test-${Math.random().toString(16).slice(2)}`;
    await client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    const aliases = await client.send(new ListAliasesCommand({ KeyId: keyId }));
    expect(aliases.Aliases!.map((a) => a.AliasName)).toEqual([alias]);
    expect((await client.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata!.KeyId).toBe(keyId);
    expect((await exceptionOf(client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId })))).name).toBe('AlreadyExistsException');
    const keys = await client.send(new ListKeysCommand({}));
    expect(keys.Keys!.some((k) => k.KeyId === keyId)).toBe(true);
    const enc = await client.send(new EncryptCommand({ KeyId: alias, Plaintext: SECRET }));
    expect((await client.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: alias, NumberOfBytes: 24 }))).CiphertextBlob!.length).toBeGreaterThan(24);
    const policy = (await client.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }))).Policy!;
    expect(JSON.parse(policy).Statement[1].Sid).toBe('EnclaveDecrypt');
    // Open the key to the account without conditions: a plain Decrypt now returns the Plaintext.
    await client.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: pcr0Policy({}).replace('"Condition":{},', '') }));
    const plain = await client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
    expect(plain.Plaintext).toEqual(SECRET);
    expect((await exceptionOf(client.send(new DescribeKeyCommand({ KeyId: 'alias/does-not-exist' })))).name).toBe('NotFoundException');
    expect((await exceptionOf(client.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: '{"Statement":[{"Effect":"Maybe"}]}' })))).name).toBe('MalformedPolicyDocumentException');
  });

  it('GenerateDataKeyPair: the private key (PKCS#8) comes back to the enclave, matching PublicKey; without Recipient in PrivateKeyPlaintext', async () => {
    const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!; // default policy: the account may do kms:*
    const sealed = await client.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'RSA_2048', Recipient: { AttestationDocument: await documentFor(PCR0) } }));
    expect(sealed.PrivateKeyPlaintext).toBeUndefined();
    const pkcs8 = opensslDecrypt(sealed.CiphertextForRecipient!);
    const pub = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
    expect(new Uint8Array(pub)).toEqual(sealed.PublicKey);
    expect((await client.send(new DecryptCommand({ CiphertextBlob: sealed.PrivateKeyCiphertextBlob }))).Plaintext).toEqual(pkcs8);
    const plain = await client.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }));
    const ec = createPrivateKey({ key: Buffer.from(plain.PrivateKeyPlaintext!), format: 'der', type: 'pkcs8' });
    expect(ec.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect((await exceptionOf(client.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_SECG_P256K1' })))).name).toBe('UnsupportedOperationException');
  });

  it('GenerateRandom: Plaintext without Recipient, CiphertextForRecipient with one', async () => {
    const r = await client.send(new GenerateRandomCommand({ NumberOfBytes: 64 }));
    expect(r.Plaintext!.length).toBe(64);
    const sealed = await client.send(new GenerateRandomCommand({ NumberOfBytes: 64, Recipient: { AttestationDocument: await documentFor(OTHER_PCR0) } }));
    expect(sealed.Plaintext).toBeUndefined();
    expect(opensslDecrypt(sealed.CiphertextForRecipient!).length).toBe(64);
    expect((await exceptionOf(client.send(new GenerateRandomCommand({ NumberOfBytes: 2000 })))).name).toBe('ValidationException');
  });
});

describe('SigV4 Authorization header problems are named', () => {
  // The SDK always sends a well-formed header; hand-written clients (curl, scripts) may not.
  const header = (signature: string, credential = 'AKIDEXAMPLE/20261130/us-east-1/kms/aws4_request') =>
    `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=content-type;host;x-amz-date, Signature=${signature}`;
  it.each([
    [header('a'.repeat(64)), null],
    ['Bearer abc', 'expected the AWS4-HMAC-SHA256 scheme'],
    [header('00'), 'Signature must be 64 lowercase hex digits (an HMAC-SHA256), got 2 characters'],
    [header('a'.repeat(64), 'AKID/2026-11-30/us-east-1/kms/aws4_request'), 'Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request'],
    ['AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/kms/aws4_request, SignedHeaders=host', 'Signature is missing'],
  ])('%s', (authorization, problem) => {
    if (problem === null) {
      expect(parseAuthorization({ authorization }).signature).toBe('a'.repeat(64));
    } else {
      expect(() => parseAuthorization({ authorization })).toThrow(`Authorization header: ${problem}`);
    }
  });
});
