// Hostile CLI inputs (issue #10): every file or stdin a command reads is capped while reading,
// measured by the peak RSS of a real child process fed /dev/zero; and every file-system failure,
// reading or writing, is one line with exit 2 (never a stack trace).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { boundedLines } from '../src/cli/rpc.js';
import { binPath, repoRoot, runCli } from './helpers/cli.js';
import { tempDir } from './native/helpers.js';

/** Peak RSS must stay far below what reading the input whole would take (>500 MB in 2 s). */
const RSS_LIMIT_MB = 200;

interface Measured {
  code: number | null;
  stderr: string;
  peakMb: number;
  killed: boolean;
}

/**
 * Runs `node bin/nsm-emulator.js ARGS` with stdin from `stdinFile` (default /dev/null), sampling
 * the child's peak RSS (VmHWM in /proc) until it exits, or killing it after `runForMs`.
 */
function measure(args: string[], opts: { stdinFile?: string; runForMs?: number } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const fd = openSync(opts.stdinFile ?? '/dev/null', 'r');
    const child = spawn(process.execPath, [binPath, ...args], { cwd: repoRoot, stdio: [fd, 'ignore', 'pipe'] });
    closeSync(fd);
    let stderr = '';
    let peakKb = 0;
    let killed = false;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // exited between samples
      }
    };
    const sampler = setInterval(sample, 20);
    const stopAt = setTimeout(() => {
      sample();
      killed = true;
      child.kill('SIGKILL');
    }, opts.runForMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(stopAt);
      resolve({ code, stderr, peakMb: peakKb / 1024, killed });
    });
  });
}

describe('CLI inputs are bounded while reading (child process RSS, /dev/zero)', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  const doc = join(repoRoot, 'vectors/aws/aws-real-doc-10.cbor.hex');

  const refused: Array<[string, string[], string | undefined, RegExp]> = [
    ['verify DOC=/dev/zero', ['verify', '/dev/zero', '--root', 'certs/root.pem'], undefined, /^nsm-emulator verify: \/dev\/zero: more than 64 KiB; stopped reading there \(expected an attestation document/],
    ['verify - < /dev/zero', ['verify', '-', '--root', 'certs/root.pem'], '/dev/zero', /^nsm-emulator verify: standard input: more than 64 KiB/],
    ['verify --root /dev/zero', ['verify', 'DOC', '--root', '/dev/zero'], undefined, /^nsm-emulator verify: --root \/dev\/zero: more than 64 KiB/],
    ['attest --public-key @/dev/zero', ['attest', '--public-key', '@/dev/zero'], undefined, /^nsm-emulator attest: --public-key @\/dev\/zero: more than 1 KiB; stopped reading there/],
    ['pcr --signing-certificate /dev/zero', ['pcr', '--signing-certificate', '/dev/zero'], undefined, /^nsm-emulator pcr: --signing-certificate \/dev\/zero: more than 64 KiB/],
    [
      'build-eif --metadata /dev/zero',
      ['build-eif', '--kernel', 'k', '--cmdline', 'c', '--ramdisk', 'r', '--output', 'o', '--metadata', '/dev/zero'],
      undefined,
      /^nsm-emulator build-eif: --metadata \/dev\/zero: more than 4 KiB/,
    ],
    ['build-eif --private-key /dev/zero', ['build-eif', '--kernel', 'k', '--cmdline', 'c', '--ramdisk', 'r', '--output', 'o', '--signing-certificate', 'certs/root.pem', '--private-key', '/dev/zero'], undefined, /--private-key \/dev\/zero: more than 64 KiB/],
  ];
  for (const [name, args, stdin, message] of refused) {
    it(`${name}: exit 2 at once, one line, flat memory`, async () => {
      const r = await measure(args.map((a) => (a === 'DOC' ? doc : a)), { stdinFile: stdin });
      expect(r.killed).toBe(false);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n').length).toBe(1);
      expect(r.peakMb).toBeLessThan(RSS_LIMIT_MB);
    });
  }

  it('a CA directory whose manifest is /dev/zero: exit 2, flat memory', async () => {
    const dir = join(tmp.path, 'zero-ca');
    mkdirSync(dir);
    symlinkSync('/dev/zero', join(dir, 'manifest.json'));
    const r = await measure(['ca', 'show', '--dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/manifest\.json: more than 64 KiB/);
    expect(r.peakMb).toBeLessThan(RSS_LIMIT_MB);
  });

  it('pcr --input streams any file: /dev/zero is hashed for 2 s with flat memory', async () => {
    const r = await measure(['pcr', '--input', '/dev/zero'], { runForMs: 2000 });
    expect(r.killed).toBe(true);
    expect(r.peakMb).toBeGreaterThan(0);
    expect(r.peakMb).toBeLessThan(RSS_LIMIT_MB);
  });

  it('rpc < /dev/zero: the endless line is reported at once and discarded, memory flat', async () => {
    const r = await measure(['rpc'], { stdinFile: '/dev/zero', runForMs: 2000 });
    expect(r.killed).toBe(true);
    expect(r.stderr).toContain('nsm-emulator rpc: stdin line 1: longer than 65536 characters');
    expect(r.peakMb).toBeLessThan(RSS_LIMIT_MB);
  });
});

describe('rpc line reader', () => {
  async function lines(chunks: string[], max: number) {
    const s = new PassThrough();
    for (const c of chunks) s.write(c);
    s.end();
    const out: Array<string | null> = [];
    for await (const l of boundedLines(s, max)) out.push(l);
    return out;
  }
  it('splits LF and CRLF lines across chunk boundaries, and reports an over-long line once', async () => {
    expect(await lines(['ab', 'c\r\nd', 'e\n\nlast'], 8)).toEqual(['abc', 'de', '', 'last']);
    expect(await lines(['12345', '6789012\nok\n'], 8)).toEqual([null, 'ok']);
    expect(await lines(['12345678\n123456789\n'], 8)).toEqual(['12345678', null]);
  });
  it('keeps answering after an over-long line', async () => {
    const r = await runCli(['rpc'], `${'00'.repeat(40_000)}\n6b44657363726962654e534d\n`);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('nsm-emulator rpc: stdin line 1: longer than 65536 characters (a request is at most 4096 bytes); skipped unread, no request sent\n');
    expect(r.stdout.split('\n').length).toBe(2); // one answer line (DescribeNSM)
  });
});

describe('every command says in one line, exit 2, when a file cannot be written or read', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('writing into a directory that does not exist', async () => {
    const kernel = join(tmp.path, 'k');
    writeFileSync(kernel, new Uint8Array(64));
    const cases: Array<[string[], string]> = [
      [['attest', '--seed', '01', '--out', '/nonexistent/dir/doc.cbor'], 'nsm-emulator attest: --out /nonexistent/dir/doc.cbor: directory /nonexistent/dir does not exist'],
      [['ca', 'embed', '--dir', 'certs', '--out', '/nonexistent/x.ts'], 'nsm-emulator ca: --out /nonexistent/x.ts: directory /nonexistent does not exist'],
      [['build-eif', '--kernel', kernel, '--cmdline', 'c', '--ramdisk', kernel, '--output', '/nonexistent/dir/x.eif'], 'nsm-emulator build-eif: --output /nonexistent/dir/x.eif: directory /nonexistent/dir does not exist'],
      [['exec', '--log', '/nonexistent/dir/x.log', '--', 'true'], 'nsm-emulator exec: --log /nonexistent/dir/x.log: directory /nonexistent/dir does not exist'],
      [['serve', '--socket', '/nonexistent/dir/x.sock'], 'nsm-emulator serve: --socket /nonexistent/dir/x.sock: directory /nonexistent/dir does not exist'],
      [['pcr', '--input', '/nonexistent/dir/f'], 'nsm-emulator pcr: --input /nonexistent/dir/f: directory /nonexistent/dir does not exist'],
      [['attest', '--out', tmp.path], `nsm-emulator attest: --out ${tmp.path}: is a directory`],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 2, stderr: line + '\n' });
    }
  });

  it('a file-system error reaches the person as one line, not a stack trace (real process)', async () => {
    const file = join(tmp.path, 'plain');
    writeFileSync(file, 'x');
    const r = await measure(['ca', 'init', '--dir', join(file, 'ca'), '--seed', '01']);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nsm-emulator ca: .*plain.*: a part of the path is not a directory\n$/);
    const out = await measure(['attest', '--out', '/nonexistent/dir/doc.cbor']);
    expect([out.code, out.stderr]).toEqual([2, 'nsm-emulator attest: --out /nonexistent/dir/doc.cbor: directory /nonexistent/dir does not exist\n']);
  });
});

describe("option parsing errors, in the CLI's own words", () => {
  it('names the option and what was expected, in one line, exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['verify', 'doc.bin', '--root', 'test', '--bogus'], 'nsm-emulator verify: unknown option --bogus (--help lists the options)\n'],
      [['serve', '--socket'], 'nsm-emulator serve: --socket: a value is required\n'],
      [['serve', '--log=yes', '--socket', 'x'], 'nsm-emulator serve: --log takes no value\n'],
      [['rpc', 'extra'], "nsm-emulator rpc: unexpected argument 'extra': this command takes options only (--help lists them)\n"],
      [['rpc', "it's"], "nsm-emulator rpc: unexpected argument 'it's': this command takes options only (--help lists them)\n"],
      [['serve', '--bogus=a b'], 'nsm-emulator serve: unknown option --bogus (--help lists the options)\n'],
    ];
    for (const [argv, line] of cases) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0] + '\n', argv.join(' ')).toBe(line);
    }
  });
});
