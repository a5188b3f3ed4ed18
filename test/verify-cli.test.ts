// `nsm-emulator verify` on real AWS documents and on ours: exit codes, the failed rule, input
// forms (raw CBOR, hex, base64, stdin), JSON output.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli } from './helpers/cli.js';

const AWS_ROOT = 'vectors/aws/aws-nitro-root-g1.pem';
const DOC10 = 'vectors/aws/aws-real-doc-10.cbor.hex';

describe('nsm-emulator verify', () => {
  it('accepts a real AWS document at its own time and prints what it holds', async () => {
    const r = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK: verified against');
    expect(r.stdout).toContain('module_id   i-0368fa67e156d6d23-enc019b8596b1a9dad6');
    expect(r.stdout).toContain('indefinite-length (bf...ff) payload map');
  });

  it('accepts raw CBOR, base64 and standard input alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsm-verify-'));
    const raw = Buffer.from(readFileSync(DOC10, 'utf8').trim(), 'hex');
    writeFileSync(join(dir, 'doc.cbor'), raw);
    writeFileSync(join(dir, 'doc.b64'), raw.toString('base64') + '\n');
    for (const file of [join(dir, 'doc.cbor'), join(dir, 'doc.b64')]) {
      expect((await runCli(['verify', file, '--root', AWS_ROOT, '--time', '1767472867'])).code).toBe(0);
    }
    expect((await runCli(['verify', '-', '--root', AWS_ROOT, '--time', '2026-01-03T20:41:08Z'], raw.toString('base64'))).code).toBe(0);
  });

  it('exits 1 naming the failed rule: validity now, wrong root, expected values', async () => {
    const now = await runCli(['verify', DOC10, '--root', AWS_ROOT]);
    expect(now.code).toBe(1);
    expect(now.stderr).toMatch(/^nsm-emulator verify: FAILED rule chain\.validity: cabundle\[\d\] .* is valid from .* not at /);
    const ours = await runCli(['verify', DOC10, '--root', 'certs/root.pem', '--time', 'doc']);
    expect(ours.code).toBe(1);
    expect(ours.stderr).toContain('FAILED rule chain.root');
    const pcr = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc', '--expect-pcr', `3=${'00'.repeat(48)}`, '--expect-pcr', `0=${'11'.repeat(48)}`]);
    expect(pcr.code).toBe(1);
    expect(pcr.stderr).toContain('FAILED rule expect.pcr: PCR 0 is ');
    const nonce = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc', '--expect-nonce', '00']);
    expect(nonce.stderr).toContain('FAILED rule expect.nonce: nonce is absent, expected 00');
  });

  it('--expect-module-id: the real document 10 passes with its own module_id (vectors/aws), fails with another', async () => {
    const ok = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc', '--expect-module-id', 'i-0368fa67e156d6d23-enc019b8596b1a9dad6']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc', '--expect-module-id', 'i-0368fa67e156d6d23-enc0000000000000000']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("FAILED rule expect.module_id: module_id is 'i-0368fa67e156d6d23-enc019b8596b1a9dad6', expected 'i-0368fa67e156d6d23-enc0000000000000000'");
  });

  it('prints JSON for success and failure', async () => {
    const ok = await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'doc', '--json']);
    const j = JSON.parse(ok.stdout);
    expect(j).toMatchObject({ ok: true, moduleId: 'i-0368fa67e156d6d23-enc019b8596b1a9dad6', payloadMap: 'indefinite', nonce: null });
    expect(j.chain).toHaveLength(5);
    const bad = await runCli(['verify', DOC10, '--root', 'certs/root.pem', '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, rule: 'chain.root' });
  });

  it('verifies our own documents against certs/root.pem, end to end through the real binary', async () => {
    const made = await spawnCli(['attest', '--nonce', 'abcd', '--format', 'base64']);
    expect(made.code).toBe(0);
    const r = await spawnCli(['verify', '-', '--root', 'certs/root.pem', '--expect-nonce', 'abcd'], made.stdout);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it("--root test pins the committed test root: our documents pass, AWS's fail chain.root", async () => {
    const made = await runCli(['attest', '--nonce', 'abcd', '--format', 'hex']);
    expect(made.code).toBe(0);
    const ours = await runCli(['verify', '-', '--root', 'test', '--expect-nonce', 'abcd'], made.stdout);
    expect(ours.stderr).toBe('');
    expect(ours.code).toBe(0);
    expect(ours.stdout).toMatch(/^OK: verified against the committed test root \(C=US, O=nsm-emulator, OU=TEST ONLY, CN=nsm-emulator test root - not AWS\)/);
    const aws = await runCli(['verify', DOC10, '--root', 'test', '--time', 'doc']);
    expect(aws.code).toBe(1);
    expect(aws.stderr).toContain('FAILED rule chain.root');
    // './test' is a path: the test/ directory here, which is no PEM file.
    expect((await runCli(['verify', DOC10, '--root', './test'])).code).toBe(2);
  });

  it("--root aws pins the embedded Root-G1 (the vector's PEM, byte for byte): a real AWS document passes, ours fail chain.root", async () => {
    const { AWS_NITRO_ROOT_G1_PEM } = await import('../src/index.js');
    expect(AWS_NITRO_ROOT_G1_PEM).toBe(readFileSync('vectors/aws/aws-nitro-root-g1.pem', 'utf8'));
    const real = await runCli(['verify', DOC10, '--root', 'aws', '--time', 'doc']);
    expect(real.stderr).toBe('');
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^OK: verified against AWS's Nitro Enclaves Root-G1 \(embedded\) \(C=US, O=Amazon, OU=AWS, CN=aws\.nitro-enclaves\)/);
    const made = await runCli(['attest', '--format', 'hex']);
    const ours = await runCli(['verify', '-', '--root', 'aws'], made.stdout);
    expect(ours.code).toBe(1);
    expect(ours.stderr).toContain("is not the pinned root 'C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves'");
    // './aws' is a path (none here); a name that is no built-in root is read as a file.
    expect((await runCli(['verify', DOC10, '--root', './aws'])).code).toBe(2);
    expect((await runCli(['verify', DOC10, '--root', 'constructor'])).stderr).toContain('--root constructor');
    expect((await runCli(['verify', '--help'])).stdout).toContain("'aws' names AWS Nitro Enclaves Root-G1");
  });

  it('TEST_ROOT_PEM is certs/root.pem, byte for byte', async () => {
    const { TEST_ROOT_PEM } = await import('../src/index.js');
    expect(TEST_ROOT_PEM).toBe(readFileSync('certs/root.pem', 'utf8'));
  });

  it('reports usage errors with exit 2', async () => {
    expect((await runCli(['verify', DOC10])).stderr).toContain('--root FILE is required');
    expect((await runCli(['verify', '--root', AWS_ROOT])).stderr).toContain('expected one DOC argument');
    expect((await runCli(['verify', 'nope.cbor', '--root', AWS_ROOT])).stderr).toContain('nope.cbor: file not found');
    const notPem = await runCli(['verify', DOC10, '--root', DOC10]);
    expect(notPem.code).toBe(2);
    expect(notPem.stderr).toContain(`--root ${DOC10}: expected a PEM certificate`);
    expect((await runCli(['verify', DOC10, '--root', AWS_ROOT, '--time', 'yesterday'])).stderr).toContain("--time 'yesterday'");
  });
});
