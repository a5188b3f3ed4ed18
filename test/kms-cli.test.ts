/**
 * `nsm-emulator kms` as a process (first stdout line, SigV4 checking with AWS's SDK signing,
 * --state persistence at 0600 without following symlinks) and `nsm-emulator kms check`; plus
 * the HTTP endpoint's bounds (body size, connection count, protocol errors).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsService, committedTestCa, makeAttestationDocument } from '../src/index.js';
import { KmsHttpServer } from '../src/node/index.js';
import { binPath, repoRoot, runCli, spawnCli } from './helpers/cli.js';
import { hex } from './helpers/hex.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-kms-cli-'));
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `nsm-emulator kms ...`; resolves with the URL from its first stdout line. */
function startKms(args: string[]): Promise<{ url: string; child: ChildProcess; stderr: () => string; exited: Promise<number> }> {
  const child = spawn(process.execPath, [binPath, 'kms', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => (children.delete(child), resolve(code ?? -1))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kms did not start: ${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child, stderr: () => err, exited });
      }
    });
    void exited.then((code) => reject(new Error(`kms exited ${code}: ${err}`)));
  });
}

const clientFor = (url: string, accessKeyId: string, secretAccessKey: string) =>
  new KMSClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });

const errorName = (p: Promise<unknown>) => p.then(() => 'no error', (e: { name: string }) => e.name);

describe('nsm-emulator kms (process)', () => {
  it('checks SigV4 with --credentials, persists keys with --state (0600), and keeps them across a restart', async () => {
    const state = join(dir, 'state');
    const args = ['--listen', '127.0.0.1:0', '--credentials', 'AKIDTEST:s3cret', '--state', state];
    const first = await startKms(args);
    const good = clientFor(first.url, 'AKIDTEST', 's3cret');
    const keyId = (await good.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await good.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array([1, 2, 3]) }))).CiphertextBlob!;
    expect(await errorName(clientFor(first.url, 'AKIDTEST', 'wrong').send(new DescribeKeyCommand({ KeyId: keyId })))).toBe('InvalidSignatureException');
    expect(await errorName(clientFor(first.url, 'AKIDOTHER', 's3cret').send(new DescribeKeyCommand({ KeyId: keyId })))).toBe('UnrecognizedClientException');
    expect(first.stderr()).toMatch(/SigV4 checked for 1 key pair/);
    // The log names the operation, key, caller, outcome and the deciding statement.
    expect(first.stderr()).toContain(`Encrypt key ${keyId} by arn:aws:iam::111122223333:root: OK — allowed by Allow Sid 'Enable IAM User Permissions' (no conditions)`);
    expect(first.stderr()).toMatch(/DescribeKey: authentication refused: InvalidSignatureException/);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const file = join(state, 'kms-state.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8')).keys[0].keyId).toBe(keyId);

    const second = await startKms(args);
    const again = clientFor(second.url, 'AKIDTEST', 's3cret');
    expect((await again.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext).toEqual(new Uint8Array([1, 2, 3]));
    second.child.kill('SIGTERM');
    await second.exited;
    good.destroy();
    again.destroy();
  }, 180_000);

  it('refuses a state file that is a symbolic link', async () => {
    const state = join(dir, 'linked');
    mkdirSync(state);
    writeFileSync(join(dir, 'elsewhere.json'), '{}');
    symlinkSync(join(dir, 'elsewhere.json'), join(state, 'kms-state.json'));
    const r = await spawnCli(['kms', '--state', state], '', 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/kms-state\.json: is a symbolic link/);
    expect(lstatSync(join(state, 'kms-state.json')).isSymbolicLink()).toBe(true);
  }, 90_000);

  it('usage errors exit 2 with one line', async () => {
    const r = await runCli(['kms', '--listen', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^nsm-emulator kms: --listen 'nope'/);
    expect((await runCli(['kms', '--principal', 'AKID=bob'])).stderr).toMatch(/expected an IAM or STS ARN/);
  });
});

describe('nsm-emulator kms check', () => {
  const pcr0 = new Uint8Array(48).fill(0x5a);
  const spki = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'EnclaveOnly', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:Decrypt', Resource: '*', Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': hex(pcr0) }, StringEquals: { 'kms:EncryptionContext:app': 'payments' } } },
      ],
    }),
  );

  it('exit 0 and the deciding statement when allowed; exit 1 and the failing condition when denied', async () => {
    const docFile = join(dir, 'doc.cbor');
    writeFileSync(docFile, await makeAttestationDocument({ pcrs: { 0: pcr0 }, publicKey: spki }));
    const ok = await runCli(['kms', 'check', '--policy', policyFile, '--document', docFile, '--context', 'app=payments']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ALLOW: allowed by Allow Sid 'EnclaveOnly' because StringEqualsIgnoreCase kms:RecipientAttestation:ImageSha384/);
    const noCtx = await runCli(['kms', 'check', '--policy', policyFile, '--document', docFile]);
    expect(noCtx.code).toBe(1);
    expect(noCtx.stdout).toMatch(/^DENY: .*Sid 'EnclaveOnly'.*StringEquals kms:EncryptionContext:app "payments" \(the request has no such key\)/);
    const otherDoc = join(dir, 'other.hex');
    writeFileSync(otherDoc, hex(await makeAttestationDocument({ pcrs: { 0: new Uint8Array(48) }, publicKey: spki })));
    const wrong = await runCli(['kms', 'check', '--policy', policyFile, '--document', otherDoc, '--context', 'app=payments', '--json']);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ allowed: false, outcome: 'implicit-deny', statement: "Sid 'EnclaveOnly'" });
  });

  it('a real AWS document verifies under the AWS root (and is then refused for its non-RSA public key); under the test root it is untrusted', async () => {
    const real = join(repoRoot, 'vectors/aws/aws-real-doc-9.cbor.hex');
    const aws = await runCli(['kms', 'check', '--policy', policyFile, '--document', real, '--trust-root', join(repoRoot, 'vectors/aws/aws-nitro-root-g1.pem'), '--time', 'doc']);
    expect(aws.code).toBe(1);
    expect(aws.stdout).toMatch(/^REFUSED \(ValidationException\): .* — public_key: is not a DER SubjectPublicKeyInfo/);
    // 'aws' names the embedded Root-G1: the same verdict as the vector's PEM file.
    const named = await runCli(['kms', 'check', '--policy', policyFile, '--document', real, '--trust-root', 'aws', '--time', 'doc']);
    expect([named.code, named.stdout]).toEqual([aws.code, aws.stdout]);
    const test = await runCli(['kms', 'check', '--policy', policyFile, '--document', real]);
    expect(test.stdout).toMatch(/chain\.root: cabundle\[0\] is 'C=US, O=Amazon, OU=AWS, CN=aws\.nitro-enclaves', which is not one of the endpoint's 1 trusted root/);
  });

  it('a malformed policy is a usage error naming the file and field', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ Statement: [{ Sid: 'A', Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { k: { x: 1 } } } }] }));
    const r = await runCli(['kms', 'check', '--policy', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`nsm-emulator kms: --policy ${bad}: Statement[0] (Sid 'A').Condition.StringEquals.k: expected strings, found {"x":1}\n`);
  });
});

describe('HTTP endpoint bounds and protocol errors', () => {
  async function withServer(options: ConstructorParameters<typeof KmsHttpServer>[1], fn: (port: number) => Promise<void>) {
    const server = new KmsHttpServer(new KmsService({ trustRoots: [committedTestCa().root.der] }), options);
    const url = await server.listen('127.0.0.1', 0);
    try {
      await fn(Number(new URL(url).port));
    } finally {
      await server.close();
    }
  }

  function post(port: number, headers: Record<string, string>, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  const auth = { authorization: `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}` };
  const json = { 'content-type': 'application/x-amz-json-1.1' };

  it('refuses a body over the limit by its Content-Length, without running the request', async () => {
    await withServer({ maxBodyBytes: 1000 }, async (port) => {
      const r = await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.CreateKey' }, JSON.stringify({ Description: 'x'.repeat(2000) }));
      expect(r.status).toBe(413);
      expect(r.body.__type).toBe('ValidationException');
      const list = await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.ListKeys' }, '{}');
      expect(list.body.Keys).toEqual([]);
    });
  });

  it('answers KMS exception names for protocol errors', async () => {
    await withServer({}, async (port) => {
      expect((await post(port, { ...json, 'x-amz-target': 'TrentService.ListKeys' }, '{}')).body.__type).toBe('MissingAuthenticationTokenException');
      expect((await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.ScheduleKeyDeletion' }, '{}')).body.__type).toBe('UnknownOperationException');
      expect((await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.ListKeys' }, '{nope')).body.__type).toBe('SerializationException');
      expect((await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.Encrypt' }, '{"KeyId":"alias/x","Plaintext":"AAAA"}')).body.__type).toBe('NotFoundException');
      expect((await post(port, { ...auth, ...json, 'x-amz-target': 'TrentService.GenerateRandom' }, '{"NumberOfBytes":0}')).body).toMatchObject({ __type: 'ValidationException', message: expect.stringMatching(/numberOfBytes/) });
    });
  });

  it('holds at most maxConnections connections open', async () => {
    await withServer({ maxConnections: 2 }, async (port) => {
      const open = () =>
        new Promise<import('node:net').Socket>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
        });
      const a = await open();
      const b = await open();
      const c = await open();
      const closed = await new Promise<boolean>((resolve) => {
        c.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 2000);
      });
      expect(closed).toBe(true);
      a.destroy();
      b.destroy();
    });
  });
});
