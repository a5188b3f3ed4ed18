// The CLI's cache of derived intermediate certificates (src/node/chain-cache.ts,
// src/attestation/chain-store.ts), through real `nsm-emulator attest` processes: documents are
// byte-identical with and without it (seeded), an unseeded run really takes the regional and
// zonal certificates from it (their randomized signatures repeat), and a corrupt, truncated,
// swapped or symlinked entry is never used (the chain still passes openssl verify, an
// independent check). Files are 0600 in a 0700 directory; NSM_EMULATOR_CHAIN_CACHE=off writes
// nothing.
import { Decoder } from 'cbor-x';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileChainStore } from '../src/node/chain-cache.js';
import { CHAIN_ENTRY_SIZE } from '../src/attestation/chain-store.js';
import { binPath, repoRoot } from './helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'nsm-chain-cache-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const OPENSSL = process.env.OPENSSL ?? 'openssl';
const haveOpenssl = spawnSync(OPENSSL, ['version']).status === 0;
const cbor = new Decoder({ mapsAsObjects: false, useRecords: false });
const SEEDED = ['attest', '--seed', '01', '--time', '2026-05-01T00:00:00Z', '--nonce', 'ab'];
const UNSEEDED = ['attest', '--nonce', 'ab', '--parent-id', 'i-0123456789abcdef0'];

function attest(cache: string, args: string[]): { doc: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [binPath, ...args], { cwd: repoRoot, env: { ...process.env, NSM_EMULATOR_CHAIN_CACHE: cache }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { doc: Buffer.from(r.stdout.trim(), 'hex'), stderr: r.stderr };
}

/** The cabundle (root, regional, zonal, instance) and leaf of a document, read with cbor-x. */
function chainOf(doc: Buffer): { bundle: Uint8Array[]; leaf: Uint8Array; timestamp: number } {
  const [, , payload] = cbor.decode(doc) as [Uint8Array, unknown, Uint8Array];
  const f = cbor.decode(payload) as Map<string, unknown>;
  return { bundle: f.get('cabundle') as Uint8Array[], leaf: f.get('certificate') as Uint8Array, timestamp: Number(f.get('timestamp')) };
}

const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

/** openssl verify of the document's chain against the committed root, at the document's time. */
function opensslVerifies(doc: Buffer): boolean {
  if (!haveOpenssl) {
    console.warn(`NOT CHECKED: '${OPENSSL}' was not found; install openssl (.ci/run) for the chain check`);
    return true;
  }
  const { bundle, leaf, timestamp } = chainOf(doc);
  const dir = mkdtempSync(join(work, 'verify-'));
  writeFileSync(join(dir, 'bundle.pem'), bundle.slice(1).map(pem).join(''));
  writeFileSync(join(dir, 'leaf.pem'), pem(leaf));
  const r = spawnSync(OPENSSL, ['verify', '-attime', String(Math.floor(timestamp / 1000)), '-CAfile', join(repoRoot, 'certs/root.pem'), '-untrusted', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('leaf.pem: OK');
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const entries = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.bin')).sort();

describe('the certificate cache of the CLI', () => {
  it('leaves seeded documents byte-identical: first run (writes), second (reads), cache off', () => {
    const cache = join(work, 'seeded');
    const first = attest(cache, SEEDED);
    expect(entries(cache)).toHaveLength(2); // the regional and zonal certificates
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    for (const n of entries(cache)) {
      const st = lstatSync(join(cache, n));
      expect(st.isFile() && st.size === CHAIN_ENTRY_SIZE && (st.mode & 0o777) === 0o600, n).toBe(true);
    }
    const again = attest(cache, SEEDED);
    const off = attest('off', SEEDED);
    expect(hexOf(again.doc)).toBe(hexOf(first.doc));
    expect(hexOf(off.doc)).toBe(hexOf(first.doc));
    expect(first.stderr + again.stderr).toBe('');
    expect(opensslVerifies(first.doc)).toBe(true);
  });

  it('is really used: an unseeded run repeats the cached regional and zonal certificates (randomized signatures)', () => {
    const cache = join(work, 'unseeded');
    const a = chainOf(attest(cache, UNSEEDED).doc).bundle;
    const b = chainOf(attest(cache, UNSEEDED).doc).bundle;
    const c = chainOf(attest('off', UNSEEDED).doc).bundle;
    expect([hexOf(b[1]!), hexOf(b[2]!)]).toEqual([hexOf(a[1]!), hexOf(a[2]!)]);
    // Without the cache they are signed again: same certificate body, another signature.
    expect(hexOf(c[1]!)).not.toBe(hexOf(a[1]!));
    expect(hexOf(c[2]!)).not.toBe(hexOf(a[2]!));
  });

  it.each([
    ['a flipped byte', (f: string) => {
      const b = readFileSync(f);
      b[b.length - 1]! ^= 1;
      writeFileSync(f, b);
    }],
    ['a truncated file', (f: string) => writeFileSync(f, readFileSync(f).subarray(0, 100))],
    ['a longer file', (f: string) => writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.alloc(1)]))],
  ])('ignores and replaces %s', (_name, damage) => {
    const cache = join(work, `damaged-${_name.replace(/\W/g, '')}`);
    const seeded = attest(cache, SEEDED).doc;
    const cached = chainOf(attest(cache, UNSEEDED).doc).bundle;
    for (const n of entries(cache)) damage(join(cache, n));
    expect(hexOf(attest(cache, SEEDED).doc)).toBe(hexOf(seeded));
    const redone = attest(cache, UNSEEDED).doc;
    expect(opensslVerifies(redone)).toBe(true);
    const bundle = chainOf(redone).bundle;
    expect(hexOf(bundle[1]!)).not.toBe(hexOf(cached[1]!));
    // Replaced by valid entries: the next run takes the new certificates.
    expect(hexOf(chainOf(attest(cache, UNSEEDED).doc).bundle[1]!)).toBe(hexOf(bundle[1]!));
  });

  it('never uses an entry under another certificate\'s name (the two entries swapped)', () => {
    const cache = join(work, 'swapped');
    const seeded = attest(cache, SEEDED).doc;
    attest(cache, UNSEEDED);
    const [x, y] = entries(cache).filter((n) => n.endsWith('.bin'));
    // The unseeded run wrote two more: swap the first two names whatever they hold.
    renameSync(join(cache, x!), join(cache, 'tmp'));
    renameSync(join(cache, y!), join(cache, x!));
    renameSync(join(cache, 'tmp'), join(cache, y!));
    expect(hexOf(attest(cache, SEEDED).doc)).toBe(hexOf(seeded));
    expect(opensslVerifies(attest(cache, UNSEEDED).doc)).toBe(true);
  });

  it('does not follow a symbolic link planted as an entry: reported once, replaced by a file, its target untouched', () => {
    const cache = join(work, 'symlink');
    const seeded = attest(cache, SEEDED).doc;
    const target = join(work, 'target.bin');
    const [name] = entries(cache);
    writeFileSync(target, readFileSync(join(cache, name!)));
    rmSync(join(cache, name!));
    symlinkSync(target, join(cache, name!));
    const r = attest(cache, SEEDED);
    expect(hexOf(r.doc)).toBe(hexOf(seeded));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nsm-emulator attest: certificate cache not used: .*is a symbolic link; not followed/);
    expect(lstatSync(join(cache, name!)).isFile()).toBe(true);
    expect(hexOf(readFileSync(target))).toBe(hexOf(readFileSync(join(cache, name!))));
  });

  it('uses the default directory under HOME, and with a HOME that does not exist creates nothing and says nothing', () => {
    const home = join(work, 'home');
    const env = { ...process.env, NSM_EMULATOR_CHAIN_CACHE: '', XDG_CACHE_HOME: '' };
    const run = (h: string) => spawnSync(process.execPath, [binPath, ...SEEDED], { cwd: repoRoot, env: { ...env, HOME: h }, encoding: 'utf8' });
    const missing = join(home, 'missing');
    const a = run(missing);
    expect([a.status, a.stderr]).toEqual([0, '']);
    expect(existsSync(missing)).toBe(false);
    const b = run(work); // an existing HOME: the cache goes to HOME/.cache/nsm-emulator/chain
    expect([b.status, b.stderr]).toEqual([0, '']);
    expect(entries(join(work, '.cache', 'nsm-emulator', 'chain'))).toHaveLength(2);
    expect(b.stdout).toBe(a.stdout);
  });

  it('off writes nothing; a relative path is a usage error', () => {
    const before = existsSync(join(work, 'off'));
    attest('off', SEEDED);
    expect(before || existsSync(join(work, 'off'))).toBe(false);
    const r = spawnSync(process.execPath, [binPath, ...SEEDED], { cwd: repoRoot, env: { ...process.env, NSM_EMULATOR_CHAIN_CACHE: 'relative/dir' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("nsm-emulator attest: NSM_EMULATOR_CHAIN_CACHE='relative/dir': expected 'off' or an absolute directory path\n");
  });
});

describe('fileChainStore', () => {
  it('keeps at most maxEntries, dropping the oldest', async () => {
    const dir = join(work, 'pruned');
    const store = fileChainStore(dir, { maxEntries: 4 });
    for (let i = 0; i < 6; i++) {
      await store.put(`k${i}`, new Uint8Array(CHAIN_ENTRY_SIZE).fill(i));
      await new Promise((r) => setTimeout(r, 5)); // distinct mtimes
    }
    const left = entries(dir);
    expect(left.length).toBeLessThanOrEqual(4);
    expect((await store.get('k5'))?.[0]).toBe(5);
    expect(await store.get('k0')).toBe(null);
  });

  it('refuses values of the wrong size and reports a directory it cannot create', async () => {
    const errors: string[] = [];
    writeFileSync(join(work, 'a-file'), 'x');
    const store = fileChainStore(join(work, 'a-file', 'sub'), { onError: (e) => errors.push(e.message) });
    await store.put('k', new Uint8Array(CHAIN_ENTRY_SIZE));
    expect(errors).toEqual([`${join(work, 'a-file', 'sub')}: a part of the path is not a directory`]);
    const ok = fileChainStore(join(work, 'sized'));
    await ok.put('k', new Uint8Array(10));
    expect(await ok.get('k')).toBe(null);
  });
});
