// docs/kms.md's worked key-policy test must run as printed, and its shell quick start's requests must
// succeed (and be refused) in the order printed, both against AWS's SDK.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

it('the docs/kms.md worked example runs and prints what its comments say', async () => {
  const doc = readFileSync(new URL('../docs/kms.md', import.meta.url), 'utf8');
  const block = /## A worked key-policy test[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  expect(block).toBeDefined();
  const js = ts.transpileModule(block!, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const mods: Record<string, unknown> = {
    'node:crypto': await import('node:crypto'),
    '@aws-sdk/client-kms': await import('@aws-sdk/client-kms'),
    'nsm-emulator': await import('../src/index.js'),
    'nsm-emulator/node': await import('../src/node/index.js'),
  };
  const body = js.replace(/import \{([^}]*)\} from '([^']+)';/g, (_, names: string, from: string) => {
    expect(Object.keys(mods)).toContain(from);
    return `const {${names}} = mods[${JSON.stringify(from)}];`;
  });
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.join(' '));
  await new Function('mods', 'log', `return (async () => { ${body.replace(/console\.log/g, 'log')} })();`)(mods, log);
  expect(lines[0]).toBe('s3cret');
  expect(lines[1]).toBe('AccessDeniedException');
  expect(lines[2]).toMatch(/^denied: .*condition not met: StringEqualsIgnoreCase kms:RecipientAttestation:PCR0 "(ab){48}" \(the request has "(cd){48}"\)$/);
});

it("docs/kms.md's shell quick start works in order: its policy.json allows CreateAlias and Encrypt by alias, and Decrypt only with the PCR0 it pins", async () => {
  const doc = readFileSync(new URL('../docs/kms.md', import.meta.url), 'utf8');
  const quick = doc.slice(doc.indexOf('## Quick start'), doc.indexOf('## A worked key-policy test'));
  // What a reader copies: the policy file, the exported variables, the alias and the PCR0 of the document.
  const policy = /cat > policy\.json <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(quick)![1]!;
  expect(JSON.parse(policy).Statement).toHaveLength(2);
  expect(quick).toMatch(/^export .*AWS_DEFAULT_REGION=us-east-1/m); // aws-cli v1 ignores AWS_REGION
  expect(quick).toMatch(/create-key .*--policy file:\/\/policy\.json/);
  const alias = /create-alias .*--alias-name (\S+) --target-key-id "\$key"/.exec(quick)![1]!;
  expect(quick).toContain(`encrypt --endpoint-url http://127.0.0.1:4599 --key-id ${alias} --plaintext fileb://secret.bin`);
  const plaintext = /printf (\w+) > secret\.bin/.exec(quick)![1]!;
  const pcr0 = /attest --pcr 0=\$\(printf '([0-9a-f]{2})%\.0s' \{1\.\.48\}\)/.exec(quick)![1]!.repeat(48);
  expect(quick).toMatch(/openssl cms -decrypt -inform DER -binary -inkey key\.pem -in out\.der +# (\w+)/);
  expect(/in out\.der +# (\w+)/.exec(quick)![1]).toBe(plaintext);

  // The same requests through AWS's SDK against the endpoint.
  const { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } = await import('@aws-sdk/client-kms');
  const { KmsService, NsmDevice, committedTestCa } = await import('../src/index.js');
  const { KmsHttpServer } = await import('../src/node/index.js');
  const server = new KmsHttpServer(new KmsService({ trustRoots: [committedTestCa().root.der], log: () => {} }));
  const kms = new KMSClient({ endpoint: await server.listen('127.0.0.1', 0), region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const dir = mkdtempSync(join(tmpdir(), 'kms-quick-'));
  try {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Policy: policy }));
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata!.KeyId }));
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: new TextEncoder().encode(plaintext) }));
    await expect(kms.send(new DecryptCommand({ CiphertextBlob }))).rejects.toMatchObject({ name: 'AccessDeniedException' });

    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'key.pem')], { stdio: 'ignore' });
    const spki = execFileSync('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout', '-outform', 'DER']);
    const document = await new NsmDevice({ pcrs: { 0: Uint8Array.from(Buffer.from(pcr0, 'hex')) } }).attestation({ publicKey: spki });
    const out = await kms.send(new DecryptCommand({ CiphertextBlob, Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: document } }));
    expect(out.Plaintext).toBeUndefined();
    writeFileSync(join(dir, 'out.der'), out.CiphertextForRecipient!);
    const opened = execFileSync('openssl', ['cms', '-decrypt', '-inform', 'DER', '-binary', '-inkey', join(dir, 'key.pem'), '-in', join(dir, 'out.der')]);
    expect(opened.toString()).toBe(plaintext);

    const other = await new NsmDevice({ pcrs: { 0: new Uint8Array(48).fill(0xcd) } }).attestation({ publicKey: spki });
    await expect(kms.send(new DecryptCommand({ CiphertextBlob, Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: other } })))
      .rejects.toMatchObject({ name: 'AccessDeniedException' });
  } finally {
    kms.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
