// Progress for long EIF work: drawn on standard error only when it is a terminal, cleared when
// done, and never on pipes; the output itself is the same either way.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { PROGRESS_MIN_BYTES } from '../src/cli/progress.js';
import { liveIo, spawnCli } from './helpers/cli.js';
import { tempDir } from './native/helpers.js';

/** In-process streams whose standard error claims to be a terminal. */
function ttyIo(stdin = '') {
  const t = liveIo(stdin);
  (t.io.stderr as unknown as { isTTY: boolean }).isTTY = true;
  return t;
}

/** The progress lines drawn (each starts with \r and an erase-line escape). */
const drawn = (err: string) => err.split('\r\x1b[K').filter((s) => s !== '');

describe('EIF progress', () => {
  const tmp = tempDir('nsm-progress-');
  let eif = '';
  let built = { out: '', err: '' };
  const inputs = () => ['--kernel', join(tmp.path, 'bzImage'), '--cmdline', 'console=ttyS0', '--ramdisk', join(tmp.path, 'big.cpio'), '--build-time', '2026-01-01T00:00:00+00:00'];

  beforeAll(async () => {
    writeFileSync(join(tmp.path, 'bzImage'), new Uint8Array(4096).fill(0x4b));
    // Large enough to be worth a progress line (every byte distinct enough to hash for real).
    const big = new Uint8Array(PROGRESS_MIN_BYTES + (1 << 20));
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    writeFileSync(join(tmp.path, 'big.cpio'), big);
    eif = join(tmp.path, 'big.eif');
    const t = ttyIo();
    expect(await main(['build-eif', ...inputs(), '--output', eif], t.io)).toBe(0);
    built = { out: t.out(), err: t.err() };
  }, 60_000);
  afterAll(() => tmp.remove());

  it('build-eif on a terminal shows hashing then writing, ends with the line cleared, and writes the same bytes', async () => {
    const lines = drawn(built.err);
    expect(lines[0]).toMatch(/^nsm-emulator build-eif: hashing .*big\.cpio +0% \(0\.0 of 9\.0 MiB\)$/);
    expect(lines.some((l) => /writing .*big\.eif 100% \(9\.0 of 9\.0 MiB\)$/.test(l))).toBe(true);
    expect(built.err.endsWith('\r\x1b[K')).toBe(true);
    const plain = liveIo();
    const again = join(tmp.path, 'again.eif');
    expect(await main(['build-eif', ...inputs(), '--output', again], plain.io)).toBe(0);
    expect(plain.err()).toBe('');
    expect(plain.out()).toBe(built.out);
    expect(readFileSync(again).equals(readFileSync(eif))).toBe(true);
  });

  it('describe-eif on a terminal shows reading progress; through a pipe it prints nothing extra', async () => {
    const tty = ttyIo();
    expect(await main(['describe-eif', '--eif-path', eif], tty.io)).toBe(0);
    expect(drawn(tty.err()).at(-1)).toMatch(/^nsm-emulator describe-eif: reading .*big\.eif 100% \(9\.0 of 9\.0 MiB\)$/);
    expect(tty.err().endsWith('\r\x1b[K')).toBe(true);
    const piped = await spawnCli(['describe-eif', '--eif-path', eif]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe(tty.out());
  });

  it('booting from a large EIF (rpc --eif) shows measuring progress on a terminal only', async () => {
    const tty = ttyIo('"DescribeNSM"\n');
    expect(await main(['rpc', '--json', '--eif', eif], tty.io)).toBe(0);
    expect(drawn(tty.err()).some((l) => /^nsm-emulator rpc: measuring .*big\.eif +\d+% /.test(l))).toBe(true);
    const plain = liveIo('"DescribeNSM"\n');
    expect(await main(['rpc', '--json', '--eif', eif], plain.io)).toBe(0);
    expect(plain.err()).toBe('');
  });

  it('small images draw nothing even on a terminal', async () => {
    const small = join(tmp.path, 'small.eif');
    const t = ttyIo();
    expect(await main(['build-eif', '--kernel', join(tmp.path, 'bzImage'), '--cmdline', 'x', '--ramdisk', join(tmp.path, 'bzImage'), '--output', small], t.io)).toBe(0);
    expect(t.err()).toBe('');
  });
});
