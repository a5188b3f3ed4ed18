// `nsm-emulator exec`, run in-process: the program's exit status comes back, its stdio is
// forwarded, signals reach it, and no socket or temp dir is left behind.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { splitCommandLine } from '../src/cli/exec.js';
import { NsmDevice } from '../src/device/nsm-device.js';
import { encodeRequest } from '../src/wire/encode-request.js';
import { liveIo } from './helpers/cli.js';
import { compileClient, haveTool, hex, tempDir } from './native/helpers.js';

const HAVE_CC = haveTool('cc', 'the exec tests (they build the shim)');

const io = () => liveIo('');

describe('exec command line', () => {
  it('splits its own options from the program at --, or at the first non-option', () => {
    expect(splitCommandLine(['--seed', '01', '--', 'app', '--seed', 'x'])).toEqual({ options: ['--seed', '01'], program: ['app', '--seed', 'x'] });
    expect(splitCommandLine(['--debug', '--pcr', '16=00', 'app', '-v'])).toEqual({ options: ['--debug', '--pcr', '16=00'], program: ['app', '-v'] });
    expect(splitCommandLine(['--time=5', 'app'])).toEqual({ options: ['--time=5'], program: ['app'] });
    expect(splitCommandLine(['--seed', '01'])).toEqual({ options: ['--seed', '01'], program: [] });
  });

  it('asks for a program', async () => {
    const t = io();
    expect(await main(['exec', '--seed', '01'], t.io)).toBe(2);
    expect(t.err()).toContain('no program given');
  });
});

describe('exec exit status: 2 for usage errors before anything starts, 125 when exec itself fails', () => {
  const tmp = tempDir();
  const saved = { XDG_CACHE_HOME: process.env['XDG_CACHE_HOME'], CC: process.env['CC'] };
  beforeAll(() => {
    // A fresh cache and a compiler that does not exist: the supervisor and shim cannot be built.
    process.env['XDG_CACHE_HOME'] = join(tmp.path, 'cache');
    process.env['CC'] = join(tmp.path, 'no-such-cc');
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    tmp.remove();
  });

  it('a --log into a missing directory is a usage error (2), found before the helper build fails', async () => {
    const t = io();
    expect(await main(['exec', '--log', join(tmp.path, 'missing', 'nsm.jsonl'), '--', 'true'], t.io)).toBe(2);
    expect(t.err()).toMatch(/^nsm-emulator exec: --log .*missing\/nsm\.jsonl: /);
    expect(t.err()).not.toContain('no-such-cc');
  });

  it('a helper that cannot be built is a failure of exec itself (125), named on stderr', async () => {
    const t = io();
    expect(await main(['exec', '--route', 'shim', '--', 'true'], t.io)).toBe(125);
    expect(t.err()).toContain('no-such-cc');
  });
});

describe.skipIf(!HAVE_CC)('nsm-emulator exec', () => {
  const tmp = tempDir();
  const saved = { XDG_CACHE_HOME: process.env['XDG_CACHE_HOME'], TMPDIR: process.env['TMPDIR'] };
  let client: string;
  let work: string;
  beforeAll(() => {
    client = compileClient(tmp.path);
    work = join(tmp.path, 'tmp');
    mkdirSync(work);
    process.env['XDG_CACHE_HOME'] = join(tmp.path, 'cache');
    process.env['TMPDIR'] = work; // exec's private socket directory goes here
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    tmp.remove();
  });

  it("returns the program's exit code and leaves no socket behind", async () => {
    const t = io();
    const code = await main(['exec', '--', 'sh', '-c', 'echo "$NSM_EMULATOR_SOCKET"; test -S "${NSM_EMULATOR_SOCKET#unix:}" && exit 7'], t.io);
    expect(code).toBe(7);
    const socket = t.out().trim().replace(/^unix:/, '');
    expect(socket.startsWith(work)).toBe(true);
    expect(existsSync(socket)).toBe(false);
    expect(readdirSync(work)).toEqual([]);
  });

  it('runs a native client against the device its boot options describe, logging to --log', async () => {
    const pcr16 = '16'.repeat(48);
    const log = join(tmp.path, 'exchanges.jsonl');
    const t = io();
    const req = encodeRequest({ type: 'DescribePCR', index: 16 });
    const code = await main(['exec', '--seed', '5eed', '--time', '1767225600', '--pcr', `16=${pcr16}`, '--log', log, client, 'send', hex(req)], t.io);
    expect(t.err()).toBe('');
    expect(code).toBe(0);
    const twin = new NsmDevice({ seed: '5eed', clock: () => 1_767_225_600_000, pcrs: new Map([[16, new Uint8Array(48).fill(0x16)]]) });
    const want = await twin.handleRaw(req);
    expect(t.out()).toBe(`ok ${want.length} ${hex(want)}\nclose 0\n`);
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => 'response' in l)).toEqual({
      connection: 1,
      request: { DescribePCR: { index: 16 } },
      response: { DescribePCR: { lock: false, data: pcr16 } },
    });
    expect(readdirSync(work)).toEqual([]);
  });

  it("default boot passes nsm-check's PCR checks through the C client: PCR0-2 and 4 set, 3 and 8 zero, 0-15 locked", async () => {
    const t = io();
    const reqs = Array.from({ length: 32 }, (_, index) => hex(encodeRequest({ type: 'DescribePCR', index })));
    expect(await main(['exec', '--', client, 'send', ...reqs], t.io)).toBe(0);
    const lines = t.out().trim().split('\n').filter((l) => l.startsWith('ok '));
    expect(lines).toHaveLength(32);
    const zero = '00'.repeat(48);
    lines.forEach((l, i) => {
      const r = decode(Buffer.from(l.split(' ')[2]!, 'hex')) as { DescribePCR: { lock: boolean; data: Uint8Array } };
      const data = Buffer.from(r.DescribePCR.data).toString('hex');
      expect(r.DescribePCR.lock, `PCR${i} lock`).toBe(i < 16);
      if ([0, 1, 2, 4].includes(i)) expect(data, `PCR${i}`).not.toBe(zero);
      else expect(data, `PCR${i}`).toBe(zero);
    });
  });

  it('passes SIGTERM on to the program', async () => {
    const t = io();
    const done = main(['exec', '--', 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], t.io);
    while (!t.out().includes('ready')) await new Promise((r) => setTimeout(r, 10));
    process.emit('SIGTERM');
    expect(await done).toBe(42);
  });

  it('a server that cannot be started (no socket directory) is a failure of exec itself (125), not a usage error', async () => {
    const t = io();
    process.env['TMPDIR'] = join(tmp.path, 'no-such-dir');
    try {
      expect(await main(['exec', '--', 'true'], t.io)).toBe(125);
    } finally {
      process.env['TMPDIR'] = work;
    }
    expect(t.err()).toMatch(/^nsm-emulator exec: cannot make the server's socket directory: .*no-such-dir/);
  });

  it('reports 128+N for a program killed by signal N, 127 for a missing program', async () => {
    expect(await main(['exec', '--', 'sh', '-c', 'kill -9 $$'], io().io)).toBe(137);
    const t = io();
    expect(await main(['exec', '--', join(tmp.path, 'no-such-program')], t.io)).toBe(127);
    expect(t.err()).toBe(`nsm-emulator exec: cannot run '${join(tmp.path, 'no-such-program')}': not found\n`); // and no 'never opened' warning
    expect(readdirSync(work)).toEqual([]);
  });
});
