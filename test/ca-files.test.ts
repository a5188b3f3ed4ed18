// `ca init` against a hostile target directory (issue #10): planted symbolic links, dangling
// manifest.json links, pre-existing key files with loose modes, hard links to a victim, the
// umask. Modes and contents are read back with lstat/readFile, independently of the writer.
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { tempDir } from './native/helpers.js';

const mode = (p: string) => (lstatSync(p).mode & 0o777).toString(8).padStart(3, '0');
const init = (dir: string, ...more: string[]) => runCli(['ca', 'init', '--dir', dir, '--seed', '01', ...more]);
const KEYS = ['root.key'];
const CERTS = ['root.pem', 'manifest.json'];

describe('ca init writes only its own files, with owner-only keys', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  let n = 0;
  const fresh = () => {
    const base = join(tmp.path, `case${n++}`);
    mkdirSync(base);
    return base;
  };

  it('refuses a planted root.key symlink (with or without --force); the victim keeps its bytes and mode', async () => {
    const base = fresh();
    const victim = join(base, 'victim');
    writeFileSync(victim, 'victim data\n');
    chmodSync(victim, 0o644);
    const dir = join(base, 'ca');
    mkdirSync(dir);
    symlinkSync('../victim', join(dir, 'root.key'));
    for (const force of [[], ['--force']]) {
      const r = await init(dir, ...force);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`nsm-emulator ca: ${join(dir, 'root.key')}: is a symbolic link; refusing to write through it (remove it first)\n`);
      expect(readFileSync(victim, 'utf8')).toBe('victim data\n');
      expect(mode(victim)).toBe('644');
      expect(readdirSync(dir)).toEqual(['root.key']); // nothing else written
    }
  });

  it('refuses a dangling manifest.json symlink instead of following it', async () => {
    const dir = join(fresh(), 'ca');
    mkdirSync(dir);
    const target = join(dir, '..', 'created-through-link');
    symlinkSync(target, join(dir, 'manifest.json'));
    const r = await init(dir, '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'manifest.json')}: is a symbolic link`);
    expect(() => lstatSync(target)).toThrow(/ENOENT/);
    const plain = await init(dir);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('is a symbolic link');
  });

  it('refuses a directory that is itself a symbolic link', async () => {
    const base = fresh();
    mkdirSync(join(base, 'real'));
    symlinkSync('real', join(base, 'link'));
    const r = await init(join(base, 'link'));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`nsm-emulator ca: ${join(base, 'link')}: is a symbolic link; give the directory itself\n`);
    expect(readdirSync(join(base, 'real'))).toEqual([]);
  });

  it('keys are 0600, certificates 0644, the directory 0700, at umask 000 and over 0666 files with --force', async () => {
    const old = process.umask(0);
    try {
      const dir = join(fresh(), 'nested', 'ca');
      expect((await init(dir)).code).toBe(0);
      expect(mode(dir)).toBe('700');
      for (const k of KEYS) expect([k, mode(join(dir, k))]).toEqual([k, '600']);
      for (const c of CERTS) expect([c, mode(join(dir, c))]).toEqual([c, '644']);

      for (const f of [...KEYS, ...CERTS]) chmodSync(join(dir, f), 0o666);
      chmodSync(dir, 0o777);
      expect((await init(dir, '--force')).code).toBe(0);
      expect(mode(dir)).toBe('700');
      for (const k of KEYS) expect([k, mode(join(dir, k))]).toEqual([k, '600']);
      for (const c of CERTS) expect([c, mode(join(dir, c))]).toEqual([c, '644']);
      expect(readdirSync(dir).sort()).toEqual([...KEYS, ...CERTS].sort()); // no temporary files left
    } finally {
      process.umask(old);
    }
  });

  it('never writes into an existing inode: a hard link to a key file keeps the old bytes', async () => {
    const base = fresh();
    const dir = join(base, 'ca');
    expect((await init(dir)).code).toBe(0);
    const outside = join(base, 'other-name');
    linkSync(join(dir, 'root.key'), outside);
    const before = readFileSync(outside, 'utf8');
    expect((await runCli(['ca', 'init', '--dir', dir, '--seed', '02', '--force'])).code).toBe(0);
    expect(readFileSync(outside, 'utf8')).toBe(before);
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).not.toBe(before);
    expect(statSync(join(dir, 'root.key')).ino).not.toBe(statSync(outside).ino);
  });

  it('without --force refuses any existing CA file, not only manifest.json', async () => {
    const dir = join(fresh(), 'ca');
    mkdirSync(dir);
    writeFileSync(join(dir, 'root.key'), 'mine');
    const r = await init(dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`nsm-emulator ca: ${join(dir, 'root.key')}: already exists (pass --force to replace the CA)\n`);
    expect(readFileSync(join(dir, 'root.key'), 'utf8')).toBe('mine');
  });
});
