// Test CAs: made in memory and on disk, loaded back, checked for consistency; the committed CA
// in certs/ and its embedded copy; the `ca` command.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NsmDevice, SeededRandom } from '../src/index.js';
import { committedTestCa, createTestCa, testCaToPem, verifyAttestationDocument } from '../src/attestation/index.js';
import { COMMITTED_CA_PEM } from '../src/attestation/committed-ca.js';
import { CaDirError, attesterFromCaDir, caModuleSource, loadCaDir, writeCaDir } from '../src/node/ca-dir.js';
import { execFileSync } from 'node:child_process';
import { intermediatesAt } from '../src/attestation/chain-schedule.js';
import { runCli, spawnCli } from './helpers/cli.js';

const T = Date.UTC(2026, 5, 1, 12, 0, 0);
const tmp = () => mkdtempSync(join(tmpdir(), 'nsm-ca-'));

describe('createTestCa', () => {
  it("gives the root AWS Root-G1's validity by default (checked against vectors/aws), derived intermediates in AWS profile", async () => {
    const ca = await createTestCa({ region: 'eu-west-1' });
    const aws = new X509Certificate(readFileSync('vectors/aws/aws-nitro-root-g1.pem'));
    const root = new X509Certificate(ca.root.der);
    // The CN ends in 8 hex digits of the SHA-256 of the public key (SPKI's BIT STRING content), computed here by node:crypto.
    const spki = root.publicKey.export({ type: 'spki', format: 'der' });
    const point = spki.subarray(spki.length - 97);
    const tag = createHash('sha256').update(point).digest('hex').slice(0, 8);
    expect(root.subject.split('\n')).toEqual(['C=US', 'O=nsm-emulator', 'OU=TEST ONLY', `CN=nsm-emulator test root - not AWS - ${tag}`]);
    expect(root.verify(root.publicKey)).toBe(true);
    expect([root.validFrom, root.validTo]).toEqual([aws.validFrom, aws.validTo]);
    expect([root.validFrom, root.validTo]).toEqual(['Oct 28 13:28:05 2019 GMT', 'Oct 28 14:28:05 2049 GMT']);
    const { regional, zonal, instance } = await intermediatesAt(ca, T);
    const [r, z, i] = [regional, zonal, instance].map((c) => new X509Certificate(c.der));
    expect(r!.checkIssued(root) && r!.verify(root.publicKey)).toBe(true);
    expect(z!.checkIssued(r!) && z!.verify(r!.publicKey)).toBe(true);
    expect(i!.checkIssued(z!) && i!.verify(z!.publicKey)).toBe(true);
    expect(r!.subject).toMatch(/CN=[0-9a-f]{16}\.eu-west-1\.aws\.nitro-enclaves/);
    expect(z!.subject).toMatch(/CN=[0-9a-f]{16}\.zonal\.eu-west-1\.aws\.nitro-enclaves/);
    expect(Date.parse(r!.validTo) - Date.parse(r!.validFrom)).toBe((20 * 24 + 1) * 3600_000);
    expect(Date.parse(z!.validTo) - Date.parse(z!.validFrom)).toBe((5 * 24 + 22) * 3600_000);
    expect(Date.parse(i!.validTo) - Date.parse(i!.validFrom)).toBe(24 * 3600_000);
    expect([root, r, z, i].every((c) => c!.ca)).toBe(true);
  });

  it('takes a chosen validity: notBefore alone gives 30 years and 1 hour, both give exactly that', async () => {
    const a = new X509Certificate((await createTestCa({ rootNotBefore: Date.UTC(2020, 0, 1) })).root.der);
    expect([a.validFrom, a.validTo]).toEqual(['Jan  1 00:00:00 2020 GMT', 'Jan  1 01:00:00 2050 GMT']);
    const b = new X509Certificate((await createTestCa({ rootNotBefore: Date.UTC(2024, 0, 1), rootNotAfter: Date.UTC(2025, 0, 1) })).root.der);
    expect([b.validFrom, b.validTo]).toEqual(['Jan  1 00:00:00 2024 GMT', 'Jan  1 00:00:00 2025 GMT']);
    await expect(createTestCa({ rootNotBefore: Date.UTC(2025, 0, 1), rootNotAfter: Date.UTC(2024, 0, 1) })).rejects.toThrow(/must be after rootNotBefore/);
  });

  it('gives every new root its own name; rootCommonName chooses one, bounded to 64 characters', async () => {
    const [a, b] = [await createTestCa(), await createTestCa()];
    const subj = (der: Uint8Array) => new X509Certificate(der).subject;
    expect(subj(a.root.der)).not.toBe(subj(b.root.der));
    expect(subj(a.root.der)).not.toBe(subj(committedTestCa().root.der));
    const c = await createTestCa({ rootCommonName: 'my root' });
    expect(subj(c.root.der).split('\n').at(-1)).toBe('CN=my root');
    await expect(createTestCa({ rootCommonName: 'x'.repeat(65) })).rejects.toThrow(/1 to 64 characters/);
  });

  it('is reproducible from a seeded random source', async () => {
    const make = () => createTestCa({ random: new SeededRandom(new Uint8Array([1]), 'ca') });
    const [a, b] = [await make(), await make()];
    expect(testCaToPem(a)).toEqual(testCaToPem(b));
  });
});

describe('CA directories', () => {
  it('round-trip through writeCaDir and loadCaDir, with PKCS#8 keys node:crypto reads', async () => {
    const dir = tmp();
    const ca = await createTestCa();
    const written = await writeCaDir(dir, ca);
    expect(written.map((f) => f.slice(dir.length + 1)).sort()).toEqual(['manifest.json', 'root.key', 'root.pem']);
    const loaded = await loadCaDir(dir);
    expect(testCaToPem(loaded)).toEqual(testCaToPem(ca));
    const k = createPrivateKey(readFileSync(join(dir, 'root.key')));
    expect(k.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.warning).toMatch(/TEST ONLY/);
    await expect(writeCaDir(dir, ca)).rejects.toThrow(/already exists/);
  });

  it('sign documents that verify against the directory root, and not against another', async () => {
    const dir = tmp();
    await writeCaDir(dir, await createTestCa());
    const device = new NsmDevice({ attester: await attesterFromCaDir(dir), clock: () => T + 60_000 });
    const doc = await device.attestation({ nonce: new Uint8Array([5]) });
    const v = await verifyAttestationDocument(doc, { root: readFileSync(join(dir, 'root.pem'), 'utf8'), time: 'document' });
    expect(v.nonce).toEqual(new Uint8Array([5]));
    await expect(verifyAttestationDocument(doc, { root: committedTestCa().root.der, time: 'document' })).rejects.toThrow(/chain.root/);
  });

  it('report the file and field at fault', async () => {
    const dir = tmp();
    await expect(loadCaDir(dir)).rejects.toThrow(`${join(dir, 'manifest.json')}: file not found`);
    await writeCaDir(dir, await createTestCa());
    const manifest = join(dir, 'manifest.json');
    const good = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, good.replace('nsm-emulator-ca/1', 'other'));
    await expect(loadCaDir(dir)).rejects.toThrow(`${manifest}: field 'format' must be "nsm-emulator-ca/1"`);
    writeFileSync(manifest, good.replace('"root.key"', '"../root.key"'));
    await expect(loadCaDir(dir)).rejects.toThrow(/field 'root.privateKey' must be a file name inside the directory/);
    writeFileSync(manifest, good);
    // A key that belongs to another certificate.
    const other = tmp();
    await writeCaDir(other, await createTestCa());
    writeFileSync(join(dir, 'root.key'), readFileSync(join(other, 'root.key')));
    const err = await loadCaDir(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaDirError);
    expect((err as CaDirError).file).toBe(join(dir, 'root.key'));
    expect((err as Error).message).toMatch(/does not belong to the certificate/);
    rmSync(join(dir, 'root.key'));
    await expect(loadCaDir(dir)).rejects.toThrow(`${join(dir, 'root.key')}: file not found`);
  });

  it('made by an earlier version (with regional and zonal entries) still load; those entries are ignored', async () => {
    const dir = tmp();
    await writeCaDir(dir, await createTestCa());
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    manifest.regional = { certificate: 'regional.pem', privateKey: 'regional.key' };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const device = new NsmDevice({ attester: await attesterFromCaDir(dir), clock: () => T });
    await verifyAttestationDocument(await device.attestation(), { root: readFileSync(join(dir, 'root.pem'), 'utf8'), time: 'document' });
  });
});

describe('CA keys without their public key', () => {
  it('load in a fresh process (pure-JS ECDSA loaded on demand) and sign documents that verify', async () => {
    const dir = tmp();
    await writeCaDir(dir, await createTestCa());
    // openssl rewrites the key as PKCS#8 holding only the private scalar.
    for (const level of ['root']) {
      const key = join(dir, `${level}.key`);
      const sec1 = execFileSync('openssl', ['ec', '-in', key, '-no_public'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const pkcs8 = execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt'], { input: sec1, stdio: ['pipe', 'pipe', 'ignore'] });
      expect(createPrivateKey(pkcs8).export({ format: 'der', type: 'pkcs8' }).length).toBeLessThan(readFileSync(key).length);
      writeFileSync(key, pkcs8);
    }
    const att = await spawnCli(['attest', '--ca', dir, '--time', '2026-06-01T13:00:00Z', '--format', 'hex']);
    expect(att.stderr).toBe('');
    expect(att.code).toBe(0);
    const v = await verifyAttestationDocument(Buffer.from(att.stdout.trim(), 'hex'), { root: readFileSync(join(dir, 'root.pem'), 'utf8'), time: 'document' });
    expect(v.moduleId).toMatch(/^i-/);
  });
});

describe('the committed test CA', () => {
  it('is embedded byte for byte from certs/ (regenerate with nsm-emulator ca embed)', async () => {
    const manifest = JSON.parse(readFileSync('certs/manifest.json', 'utf8'));
    expect(COMMITTED_CA_PEM.region).toBe(manifest.region);
    expect(COMMITTED_CA_PEM.root.certificate).toBe(readFileSync('certs/root.pem', 'utf8'));
    expect(COMMITTED_CA_PEM.root.privateKey).toBe(readFileSync('certs/root.key', 'utf8'));
    expect(readdirSync('certs').sort()).toEqual(['README.md', 'manifest.json', 'root.key', 'root.pem']);
    expect(readFileSync('src/attestation/committed-ca.ts', 'utf8')).toBe(await caModuleSource('certs'));
  });

  it('is reproduced byte for byte by the command certs/README.md gives', async () => {
    const cmd = /nsm-emulator ca init --dir certs --seed ([0-9a-f]+) --root-cn '([^']+)' --force/.exec(readFileSync('certs/README.md', 'utf8'))!;
    expect(cmd).not.toBeNull();
    const dir = tmp();
    const r = await runCli(['ca', 'init', '--dir', dir, '--seed', cmd[1]!, '--root-cn', cmd[2]!]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['root.pem', 'root.key', 'manifest.json']) expect(readFileSync(join(dir, f), 'utf8'), f).toBe(readFileSync(join('certs', f), 'utf8'));
  });

  it("has a root that says it is a test root, valid exactly as long as AWS's Root-G1, and loads cleanly", async () => {
    const root = new X509Certificate(readFileSync('certs/root.pem'));
    const aws = new X509Certificate(readFileSync('vectors/aws/aws-nitro-root-g1.pem'));
    expect(root.subject).toContain('O=nsm-emulator');
    expect(root.subject).toContain('OU=TEST ONLY');
    expect(root.validFrom).toBe(aws.validFrom);
    expect(root.validTo).toBe(aws.validTo);
    expect(root.validTo).toBe('Oct 28 14:28:05 2049 GMT');
    expect(readFileSync('certs/README.md', 'utf8')).toMatch(/TEST ONLY/);
    const loaded = await loadCaDir('certs');
    expect(Buffer.from(loaded.root.der).equals(root.raw)).toBe(true);
  });
});

describe('nsm-emulator ca', () => {
  it('init writes a CA that show and attest --ca accept; --seed makes it reproducible', async () => {
    const [a, b] = [tmp(), tmp()];
    for (const dir of [a, b]) {
      const r = await runCli(['ca', 'init', '--dir', dir, '--root-not-before', '2020-01-01T00:00:00Z', '--seed', '0a0b']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${dir}/root.pem`);
    }
    expect(readFileSync(join(a, 'root.pem'), 'utf8')).toBe(readFileSync(join(b, 'root.pem'), 'utf8'));
    const show = await runCli(['ca', 'show', '--dir', a]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/root {6}C=US, O=nsm-emulator, OU=TEST ONLY, CN=nsm-emulator test root - not AWS - [0-9a-f]{8}\n/);
    const longCn = await runCli(['ca', 'init', '--dir', tmp(), '--root-cn', 'x'.repeat(65)]);
    expect([longCn.code, longCn.stderr]).toEqual([2, expect.stringContaining("--root-cn 'xxx")]);
    expect(show.stdout).toContain('valid 2020-01-01T00:00:00.000Z to 2050-01-01T01:00:00.000Z');
    const files = () => Object.fromEntries(readdirSync(a).sort().map((f) => [f, readFileSync(join(a, f), 'utf8')]));
    const before = files();
    const again = await runCli(['ca', 'init', '--dir', a]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${join(a, 'manifest.json')}: already exists (pass --force to replace the CA)`);
    expect(files()).toEqual(before);
    const badTime = await runCli(['ca', 'init', '--dir', a, '--force', '--root-not-after', 'yesterday']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain("--root-not-after 'yesterday'");
    const backwards = await runCli(['ca', 'init', '--dir', a, '--force', '--root-not-before', '2030-01-01T00:00:00Z', '--root-not-after', '2029-01-01T00:00:00Z']);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain("--root-not-after '2029-01-01T00:00:00Z' is not after the root's notBefore (2030-01-01T00:00:00.000Z)");
    expect(files()).toEqual(before);
    const att = await runCli(['attest', '--ca', a, '--time', '2026-06-01T13:00:00Z', '--format', 'hex']);
    expect(att.code).toBe(0);
    const ver = await runCli(['verify', '-', '--root', join(a, 'root.pem'), '--time', 'doc'], att.stdout);
    expect(ver.code).toBe(0);
  });

  it('embed prints the module for a directory; errors name the option or file', async () => {
    const r = await runCli(['ca', 'embed', '--dir', 'certs']);
    expect(r.stdout).toBe(readFileSync('src/attestation/committed-ca.ts', 'utf8'));
    expect((await runCli(['ca', 'init'])).stderr).toContain('--dir DIR is required');
    expect((await runCli(['ca', 'frob'])).stderr).toContain("unknown subcommand 'frob'");
    const missing = join(tmp(), 'nope');
    const s = await runCli(['ca', 'show', '--dir', missing]);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain(`${missing}: directory does not exist (make one with \`nsm-emulator ca init --dir DIR\`)`);
    expect(existsSync(missing)).toBe(false);
  });
});
