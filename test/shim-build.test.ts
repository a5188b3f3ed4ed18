// Building the preload shim: cached per source, rebuilt on change, clear errors without a
// compiler or with an unsafe cache directory, and the `shim` command.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { ShimBuildError, buildShim, shimSourcePath } from '../src/node/shim-build.js';
import { haveTool, tempDir } from './native/helpers.js';

const HAVE_CC = haveTool('cc', 'the shim build tests');

describe('shim build', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('says plainly when there is no C compiler', async () => {
    const err = await buildShim({ cacheDir: join(tmp.path, 'nocc'), cc: join(tmp.path, 'no-such-cc') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShimBuildError);
    expect((err as Error).message).toMatch(/no C compiler: '.*no-such-cc' was not found.*apt-get install gcc/);
  });

  it.skipIf(!HAVE_CC)('builds once, reuses the cache, and rebuilds when the source changes', async () => {
    const cacheDir = join(tmp.path, 'cache');
    const a = await buildShim({ cacheDir });
    expect(a).toMatch(/nsm-shim-[0-9a-f]{20}\.so$/);
    const first = statSync(a);
    expect(first.mode & 0o777 & 0o022).toBe(0);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    const again = await buildShim({ cacheDir });
    expect(again).toBe(a);
    expect(statSync(again).ino).toBe(first.ino); // not rebuilt
    const rebuilt = await buildShim({ cacheDir, rebuild: true });
    expect(rebuilt).toBe(a);
    expect(statSync(rebuilt).ino).not.toBe(first.ino);
    const edited = join(tmp.path, 'edited.c');
    writeFileSync(edited, readFileSync(shimSourcePath(), 'utf8') + '\n/* edited */\n');
    const b = await buildShim({ cacheDir, source: edited });
    expect(b).not.toBe(a);
  });

  it.skipIf(!HAVE_CC)('reports compile errors with the compiler output', async () => {
    const bad = join(tmp.path, 'bad.c');
    writeFileSync(bad, 'this is not C;\n');
    await expect(buildShim({ cacheDir: join(tmp.path, 'cache'), source: bad })).rejects.toThrow(/compiling .*bad\.c .* failed:\n.*error/s);
  });

  it('refuses a cache directory other users can write to', async () => {
    const open = join(tmp.path, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(buildShim({ cacheDir: open })).rejects.toThrow(/writable by other users/);
  });

  it.skipIf(!HAVE_CC)('nsm-emulator shim --print-path prints the cached library', async () => {
    const saved = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = join(tmp.path, 'xdg');
    try {
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (d: Buffer) => (out += d));
      expect(await main(['shim', '--print-path'], { stdin: new PassThrough(), stdout, stderr: new PassThrough() })).toBe(0);
      expect(out).toMatch(new RegExp(`^${join(tmp.path, 'xdg', 'nsm-emulator')}/nsm-shim-[0-9a-f]{20}\\.so\\n$`));
      expect(statSync(out.trim()).isFile()).toBe(true);
    } finally {
      if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
      else process.env['XDG_CACHE_HOME'] = saved;
    }
  });
});
