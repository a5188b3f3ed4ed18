// Test CAs: made in memory and on disk, loaded back, checked for consistency; the committed CA
// in certs/ and its embedded copy; the `ca` command.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NsmDevice, SeededRandom } from '../src/index.js';
import { committedTestCa, createTestCa, testCaToPem, verifyAttestationDocument } from '../src/attestation/index.js';
import { COMMITTED_CA_PEM } from '../src/attestation/committed-ca.js';
import { CaDirError, attesterFromCaDir, caModuleSource, loadCaDir, writeCaDir } from '../src/node/ca-dir.js';
import { runCli } from './helpers/cli.js';

const T = Date.UTC(2026, 5, 1, 12, 0, 0);
const tmp = () => mkdtempSync(join(tmpdir(), 'nsm-ca-'));

describe('createTestCa', () => {
  it('makes a root, regional and zonal in AWS profile, checked by node:crypto', async () => {
    const ca = await createTestCa({ time: T, rootNotBefore: Date.UTC(2020, 0, 1), region: 'eu-west-1' });
    const [root, regional, zonal] = [ca.root, ca.regional!, ca.zonal!].map((c) => new X509Certificate(c.der));
    expect(root!.subject).toContain('CN=nsm-emulator test root - not AWS');
    expect(root!.verify(root!.publicKey)).toBe(true);
    expect(regional!.checkIssued(root!) && regional!.verify(root!.publicKey)).toBe(true);
    expect(zonal!.checkIssued(regional!) && zonal!.verify(regional!.publicKey)).toBe(true);
    expect(regional!.subject).toMatch(/CN=[0-9a-f]{16}\.eu-west-1\.aws\.nitro-enclaves/);
    expect(zonal!.subject).toMatch(/CN=[0-9a-f]{16}\.zonal\.eu-west-1\.aws\.nitro-enclaves/);
    expect(root!.validFrom).toBe('Jan  1 00:00:00 2020 GMT');
    expect(root!.validTo).toBe('Jan  1 00:00:00 2050 GMT');
    expect(Date.parse(regional!.validTo) - Date.parse(regional!.validFrom)).toBe((20 * 24 + 1) * 3600_000);
    expect(Date.parse(zonal!.validTo) - Date.parse(zonal!.validFrom)).toBe((5 * 24 + 22) * 3600_000);
    expect([root, regional, zonal].every((c) => c!.ca)).toBe(true);
  });

  it('is reproducible from a seeded random source', async () => {
    const make = () => createTestCa({ time: T, random: new SeededRandom(new Uint8Array([1]), 'ca') });
    const [a, b] = [await make(), await make()];
    expect(testCaToPem(a)).toEqual(testCaToPem(b));
  });
});

describe('CA directories', () => {
  it('round-trip through writeCaDir and loadCaDir, with PKCS#8 keys node:crypto reads', async () => {
    const dir = tmp();
    const ca = await createTestCa({ time: T });
    const written = await writeCaDir(dir, ca);
    expect(written.map((f) => f.slice(dir.length + 1)).sort()).toEqual(
      ['manifest.json', 'regional.key', 'regional.pem', 'root.key', 'root.pem', 'zonal.key', 'zonal.pem'].sort(),
    );
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
    await writeCaDir(dir, await createTestCa({ time: T }));
    const device = new NsmDevice({ attester: await attesterFromCaDir(dir), clock: () => T + 60_000 });
    const doc = await device.attestation({ nonce: new Uint8Array([5]) });
    const v = await verifyAttestationDocument(doc, { root: readFileSync(join(dir, 'root.pem'), 'utf8'), time: 'document' });
    expect(v.nonce).toEqual(new Uint8Array([5]));
    await expect(verifyAttestationDocument(doc, { root: committedTestCa().root.der, time: 'document' })).rejects.toThrow(/chain.root/);
  });

  it('report the file and field at fault', async () => {
    const dir = tmp();
    await expect(loadCaDir(dir)).rejects.toThrow(`${join(dir, 'manifest.json')}: file not found`);
    await writeCaDir(dir, await createTestCa({ time: T }));
    const manifest = join(dir, 'manifest.json');
    const good = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, good.replace('nsm-emulator-ca/1', 'other'));
    await expect(loadCaDir(dir)).rejects.toThrow(`${manifest}: field 'format' must be "nsm-emulator-ca/1"`);
    writeFileSync(manifest, good.replace('"root.key"', '"../root.key"'));
    await expect(loadCaDir(dir)).rejects.toThrow(/field 'root.privateKey' must be a file name inside the directory/);
    writeFileSync(manifest, good);
    // A key that belongs to another certificate.
    writeFileSync(join(dir, 'zonal.key'), readFileSync(join(dir, 'regional.key')));
    const err = await loadCaDir(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CaDirError);
    expect((err as CaDirError).file).toBe(join(dir, 'zonal.key'));
    expect((err as Error).message).toMatch(/does not belong to the certificate/);
    rmSync(join(dir, 'zonal.key'));
    await expect(loadCaDir(dir)).rejects.toThrow(`${join(dir, 'zonal.key')}: file not found`);
  });
});

describe('the committed test CA', () => {
  it('is embedded byte for byte from certs/ (regenerate with nsm-emulator ca embed)', async () => {
    const manifest = JSON.parse(readFileSync('certs/manifest.json', 'utf8'));
    expect(COMMITTED_CA_PEM.region).toBe(manifest.region);
    for (const level of ['root', 'regional', 'zonal'] as const) {
      expect(COMMITTED_CA_PEM[level]?.certificate).toBe(readFileSync(`certs/${level}.pem`, 'utf8'));
      expect(COMMITTED_CA_PEM[level]?.privateKey).toBe(readFileSync(`certs/${level}.key`, 'utf8'));
    }
    expect(readFileSync('src/attestation/committed-ca.ts', 'utf8')).toBe(await caModuleSource('certs'));
  });

  it('has a root that says it is a test root, valid 2019-10-28 to 2049-10-28, and loads cleanly', async () => {
    const root = new X509Certificate(readFileSync('certs/root.pem'));
    expect(root.subject).toContain('O=nsm-emulator');
    expect(root.subject).toContain('OU=TEST ONLY');
    expect(root.validFrom).toBe('Oct 28 13:28:05 2019 GMT');
    expect(root.validTo).toBe('Oct 28 13:28:05 2049 GMT');
    expect(readFileSync('certs/README.md', 'utf8')).toMatch(/TEST ONLY/);
    const loaded = await loadCaDir('certs');
    expect(Buffer.from(loaded.root.der).equals(root.raw)).toBe(true);
  });
});

describe('nsm-emulator ca', () => {
  it('init writes a CA that show and attest --ca accept; --seed makes it reproducible', async () => {
    const [a, b] = [tmp(), tmp()];
    for (const dir of [a, b]) {
      const r = await runCli(['ca', 'init', '--dir', dir, '--time', '2026-06-01T12:00:00Z', '--root-not-before', '2020-01-01T00:00:00Z', '--seed', '0a0b']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${dir}/root.pem`);
    }
    expect(readFileSync(join(a, 'root.pem'), 'utf8')).toBe(readFileSync(join(b, 'root.pem'), 'utf8'));
    const show = await runCli(['ca', 'show', '--dir', a]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('valid 2020-01-01T00:00:00.000Z to 2050-01-01T00:00:00.000Z');
    const files = () => Object.fromEntries(readdirSync(a).sort().map((f) => [f, readFileSync(join(a, f), 'utf8')]));
    const before = files();
    const again = await runCli(['ca', 'init', '--dir', a]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${join(a, 'manifest.json')}: already exists (pass --force to replace the CA)`);
    expect(files()).toEqual(before);
    const badTime = await runCli(['ca', 'init', '--dir', a, '--force', '--time', 'yesterday']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain("--time 'yesterday'");
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
    expect(s.stderr).toContain(`${join(missing, 'manifest.json')}: file not found`);
    expect(existsSync(missing)).toBe(false);
  });
});
