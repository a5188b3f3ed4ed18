// The seccomp supervisor route: statically linked (glibc), musl and Go clients the repo builds
// itself, which LD_PRELOAD cannot reach, run through `exec` and directly under the supervisor.
// Answers are compared byte for byte with an identically booted in-process device; errno values
// with what drivers/misc/nsm.c returns; path resolution with what the kernel itself answers.
import { createServer, type Server } from 'node:net';
import { mkdirSync, symlinkSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { decode } from 'cbor-x';
import { sha384 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { type BootFlags, deviceOptionsFromFlags } from '../src/cli/boot-options.js';
import { NsmDevice } from '../src/device/nsm-device.js';
import { buildSupervisor, probeSupervisor } from '../src/node/supervisor.js';
import { encodeRequest } from '../src/wire/encode-request.js';
import type { NsmRequest } from '../src/wire/messages.js';
import { binPath, liveIo } from './helpers/cli.js';
import {
  DRIVER_ERRNO,
  NATIVE_DIR,
  runDriverMode,
  compileClient,
  compileGoClient,
  haveTool,
  hex,
  isDynamicElf,
  runChild,
  runWithServerKilled,
  startServer,
  tempDir,
  twinOptions,
} from './native/helpers.js';
import { DESCRIBE_NSM, DESCRIBE_PCR0, DESCRIBE_PCR1, SCRIPT, patternBytes as bytes, rawRequest as raw } from './native/requests.js';

const HAVE_CC = haveTool('cc', 'the seccomp supervisor tests (C supervisor and clients)');
const HAVE_MUSL = HAVE_CC && haveTool('musl-gcc', 'the supervisor musl client test (Debian: musl-tools)');
const HAVE_GO = HAVE_CC && haveTool('go', 'the supervisor Go client test (Debian: golang-go)', ['version']);

const tmp = tempDir('nsm-sup-');
const cacheDir = join(tmp.path, 'cache');
let supervisor = '';
let probe = { ok: false, reason: 'no C compiler' };
if (HAVE_CC) {
  supervisor = await buildSupervisor({ cacheDir });
  probe = await probeSupervisor(supervisor);
  if (!probe.ok) console.warn(`\n*** SKIPPED: the seccomp supervisor tests: this kernel refuses the route: ${probe.reason} ***\n`);
}
afterAll(() => tmp.remove());

/** exec boot options and the same options as BootFlags, for the in-process twin. */
const BOOT: BootFlags = {
  seed: '5eed',
  time: '1767225600',
  'module-id': 'i-0123456789abcdef0-enc0123456789abcdef',
  pcr: [`0=${'a0'.repeat(48)}`, `1=${'a1'.repeat(48)}`, `16=${'16'.repeat(48)}`],
};
const bootArgs = (b: BootFlags) => [
  ...(b.seed ? ['--seed', b.seed] : []),
  ...(b.time ? ['--time', b.time] : []),
  ...(b['module-id'] ? ['--module-id', b['module-id']] : []),
  ...(b.pcr ?? []).flatMap((p) => ['--pcr', p]),
];

/** Runs the CLI's exec in-process with exec's builds and private socket under tmp. */
async function execCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const saved = { XDG_CACHE_HOME: process.env['XDG_CACHE_HOME'] };
  process.env['XDG_CACHE_HOME'] = join(tmp.path, 'xdg');
  try {
    const t = liveIo('');
    const code = await main(['exec', ...args], t.io);
    return { code, out: t.out(), err: t.err() };
  } finally {
    if (saved.XDG_CACHE_HOME === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = saved.XDG_CACHE_HOME;
  }
}

/** The expected `send` output for requests sent to a fresh device booted with `boot`. */
async function expectedAnswers(boot: BootFlags, requests: Uint8Array[]): Promise<string[]> {
  const twin = new NsmDevice(await deviceOptionsFromFlags(boot));
  const lines: string[] = [];
  for (const r of requests) {
    const resp = await twin.handleRaw(r);
    lines.push(`ok ${resp.length} ${hex(resp)}`);
  }
  return lines;
}

describe.skipIf(!probe.ok)('seccomp supervisor through exec', () => {
  const clients: Array<[string, () => string, boolean]> = [
    ['static glibc C client (gcc -static)', () => compileClient(tmp.path, 'static'), true],
    ['static musl C client (musl-gcc -static)', () => compileClient(tmp.path, 'musl'), HAVE_MUSL],
    ['Go client (raw syscall open + ioctl, CGO_ENABLED=0)', () => compileGoClient(tmp.path), HAVE_GO],
  ];
  for (const [what, build, available] of clients) {
    it.skipIf(!available)(`${what}: every request type, byte for byte as the in-process device`, async () => {
      const client = build();
      expect(isDynamicElf(client), 'the client must be static, out of LD_PRELOAD reach').toBe(false);
      const requests = SCRIPT.map(raw);
      const got = await execCli([...bootArgs(BOOT), '--', client, 'send', ...requests.map(hex)]);
      expect(got.err).toBe('');
      expect(got.code).toBe(0);
      expect(got.out.trim().split('\n')).toEqual([...(await expectedAnswers(BOOT, requests)), 'close 0']);
    }, 180_000); // a Go toolchain that compiles its standard library on first use takes a while
  }

  it('the shim route cannot reach a static program, and exec says so', async () => {
    const client = compileClient(tmp.path, 'static');
    const got = await execCli(['--route', 'shim', '--', client, 'send', DESCRIBE_NSM]);
    expect(got.out).toBe('open-failed ENOENT\n'); // its open went to the kernel: no /dev/nsm here
    expect(got.code).toBe(3);
    expect(got.err).toContain('no client connected to the emulated NSM');
    expect(got.err).toContain('the LD_PRELOAD shim did not see it');
  });

  it('warns when the program never opens /dev/nsm', async () => {
    const got = await execCli(['--', 'sh', '-c', 'exit 0']);
    expect(got.code).toBe(0);
    expect(got.err).toBe("nsm-emulator exec: 'sh' never opened /dev/nsm: no client connected to the emulated NSM\n");
  });

  it('nsm-emulator shim --supervisor prints the built supervisor, and --print-source its C source', async () => {
    const saved = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = join(tmp.path, 'xdg');
    try {
      const t = liveIo('');
      expect(await main(['shim', '--supervisor'], t.io)).toBe(0);
      expect(t.out()).toMatch(new RegExp(`^${join(tmp.path, 'xdg', 'nsm-emulator')}/nsm-supervisor-[0-9a-f]{20}\\n$`));
      expect((await runChild(t.out().trim(), ['--probe'])).code).toBe(0);
      const src = liveIo('');
      expect(await main(['shim', '--supervisor', '--print-source'], src.io)).toBe(0);
      expect(src.out()).toBe(join(NATIVE_DIR, '..', '..', 'native', 'nsm-supervisor.c') + '\n');
    } finally {
      if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
      else process.env['XDG_CACHE_HOME'] = saved;
    }
  });

  it('refuses an unknown --route', async () => {
    const got = await execCli(['--route', 'ptrace', '--', 'true']);
    expect(got.code).toBe(2);
    expect(got.err).toContain('--route ptrace: expected auto, supervisor or shim');
  });

  it("passes AWS nsm-check's assertions (nsm-test/src/bin/nsm-check.rs) with a static client", async () => {
    const zero = new Uint8Array(48);
    const enc = new TextEncoder();
    const measured = (s: string) => sha384(new Uint8Array([...zero, ...sha384(enc.encode(s))]));
    const boot: BootFlags = {
      pcr: [
        `0=${hex(measured('image'))}`,
        `1=${hex(measured('kernel'))}`,
        `2=${hex(measured('application'))}`,
        `4=${hex(sha384(new Uint8Array([...zero, ...enc.encode('i-07e25f3bada361dec')])))}`,
      ],
    };
    // nsm-check's sequence, in its order (main, check_initial_pcrs, check_pcr_locks,
    // check_attestation, check_random), as one run of the client.
    const dummy = new Uint8Array([1, 2, 3]);
    const data = new Uint8Array(1024).fill(128);
    const reqs: NsmRequest[] = [{ type: 'DescribeNSM' }, { type: 'Attestation', userData: null, nonce: null, publicKey: null }];
    for (let i = 0; i < 32; i++) reqs.push({ type: 'DescribePCR', index: i });
    for (let i = 0; i < 16; i++) reqs.push({ type: 'LockPCR', index: i });
    for (let loop = 0; loop < 10; loop++) for (let i = 16; i < 32; i++) reqs.push({ type: 'ExtendPCR', index: i, data: dummy });
    for (let i = 16; i < 32; i++) reqs.push({ type: 'LockPCR', index: i });
    reqs.push({ type: 'LockPCRs', range: 32 }, { type: 'LockPCRs', range: 33 });
    for (let i = 0; i < 32; i++) reqs.push({ type: 'ExtendPCR', index: i, data: dummy });
    for (let loop = 0; loop < 10; loop++) for (let i = 0; i < 32; i++) reqs.push({ type: 'DescribePCR', index: i });
    for (const [u, n, k] of [[null, null, null], [data, null, null], [data, data, null], [data, data, data]] as const) {
      reqs.push({ type: 'Attestation', userData: u, nonce: n, publicKey: k });
    }
    for (let i = 0; i < 16; i++) reqs.push({ type: 'GetRandom' });

    const client = compileClient(tmp.path, 'static');
    const got = await execCli([...bootArgs(boot), '--', client, 'send', ...reqs.map((r) => hex(encodeRequest(r)))]);
    expect(got.err).toBe('');
    const answers = got.out.trim().split('\n').slice(0, -1).map((l) => {
      const [ok, , body] = l.split(' ');
      expect(ok).toBe('ok');
      return decode(Buffer.from(body!, 'hex')) as any; // cbor-x: independent of our codec
    });
    expect(answers).toHaveLength(reqs.length);
    let at = 0;
    const next = () => answers[at++];
    const isError = (r: any) => typeof r === 'object' && 'Error' in r;
    const isZero = (b: Uint8Array) => hex(b) === hex(zero);
    const description = next().DescribeNSM;
    expect(description.max_pcrs).toBe(32);
    expect(description.module_id.length).toBeGreaterThan(0);
    expect(description.digest).toBe('SHA384');
    expect([...description.locked_pcrs]).toEqual([...Array(16).keys()]);
    expect(next().Attestation.document.length).toBeGreaterThan(0);
    for (let i = 0; i < 32; i++) {
      const p = next().DescribePCR;
      expect(p.data.length).toBe(48);
      expect(p.lock).toBe(i < 16);
      expect(isZero(p.data)).toBe(!(i < 5 && i !== 3));
    }
    for (let i = 0; i < 16; i++) expect(isError(next())).toBe(true);
    for (let i = 0; i < 160; i++) {
      const e = next().ExtendPCR;
      expect(e.data.length).toBe(48);
      expect(isZero(e.data)).toBe(false);
    }
    for (let i = 0; i < 16; i++) expect(next()).toBe('LockPCR');
    expect(next()).toBe('LockPCRs');
    expect(isError(next())).toBe(true);
    for (let i = 0; i < 32; i++) expect(isError(next())).toBe(true);
    for (let loop = 0; loop < 10; loop++) {
      for (let i = 0; i < 32; i++) {
        const p = next().DescribePCR;
        expect(p.lock).toBe(true);
        expect(isZero(p.data)).toBe(i === 3 || (i >= 5 && i <= 15));
      }
    }
    for (let i = 0; i < 4; i++) expect(next().Attestation.document.length).toBeGreaterThan(0);
    let prev = '';
    for (let i = 0; i < 16; i++) {
      const r = next().GetRandom.random;
      expect(r.length).toBeGreaterThan(0);
      expect(hex(r)).not.toBe(prev);
      prev = hex(r);
    }
  });
});

describe.skipIf(!probe.ok)('seccomp supervisor, run directly', () => {
  let client: string;
  let dynamic: string;
  let srv: Awaited<ReturnType<typeof startServer>>;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    client = compileClient(tmp.path, 'static');
    dynamic = compileClient(tmp.path);
    srv = await startServer(tmp.path, new NsmDevice(twinOptions()), {}, 'direct.sock');
    env = { ...process.env, NSM_EMULATOR_SOCKET: srv.address };
  });
  afterAll(async () => {
    await srv?.stop();
  });
  const run = (args: string[], e: NodeJS.ProcessEnv = env) => runChild(supervisor, ['--', ...args], { env: e });

  it('gives the kernel driver errno values and leaves errno alone on success', async () => {
    const got = await runDriverMode(tmp.path, 'errors', (address) => run([client, 'errors'], { ...env, NSM_EMULATOR_SOCKET: address }));
    expect(got.stderr).toBe('');
    // Other commands on the descriptor never reach us (the filter reports only the NSM ioctl
    // family); the epoll instance behind it refuses them with EINVAL as the driver does since
    // Linux 6.9, ENOTTY before.
    const [major, minor] = release().split('.').map(Number) as [number, number];
    const generic = major > 6 || (major === 6 && minor >= 9) ? 'EINVAL' : 'ENOTTY';
    expect(got.lines).toEqual(DRIVER_ERRNO.errors.map((l) => (l.startsWith('fionread ') ? `fionread ${generic}` : l)));
    expect(got.exchanges).toBe(DRIVER_ERRNO.errorsExchanges);
  });

  it('reads the argument and the buffers as the kernel does wherever they sit: heap, guard pages, read-only, signal stack', async () => {
    const got = await runDriverMode(tmp.path, 'faults', (address) => run([client, 'faults'], { ...env, NSM_EMULATOR_SOCKET: address }));
    expect(got.stderr).toBe('');
    expect(got.lines).toEqual(DRIVER_ERRNO.faults);
    expect(got.exchanges).toBe(DRIVER_ERRNO.faultsExchanges);
  });

  it('read() and write() on the device fail with EINVAL, as on the real device', async () => {
    const got = await run([client, 'readwrite', DESCRIBE_NSM]);
    const want: string[] = [];
    // The descriptor is an epoll instance: read/write/readv/writev give the device's EINVAL. Two
    // documented differences: pread/pwrite give ESPIPE (the real node: EINVAL), and a descriptor
    // opened O_RDONLY or O_WRONLY does not refuse the other direction with EBADF.
    for (const mode of ['rdwr', 'rdonly', 'wronly']) {
      want.push(...['read', 'read0', 'write', 'readv', 'writev'].map((c) => `${mode} ${c} EINVAL`));
      want.push(`${mode} pread E29`, `${mode} pwrite E29`, `${mode} ioctl-after ok`);
    }
    expect(got.stdout.trim().split('\n')).toEqual(want);
  });

  it('truncates to the caller buffer and writes the length back', async () => {
    const full = hex(await srv.device.handleRaw(encodeRequest({ type: 'DescribeNSM' })));
    expect((await run([client, '-r', '10', 'send', DESCRIBE_NSM])).stdout).toBe(`ok 10 ${full.slice(0, 20)}\nclose 0\n`);
  });

  it('serializes many threads on one descriptor (C threads, Go goroutines)', async () => {
    expect((await run([client, 'threads', '8', '150', DESCRIBE_PCR0, DESCRIBE_PCR1])).stdout).toBe('calls 1200 mismatches 0 errors 0\n');
    if (HAVE_GO) {
      const go = compileGoClient(tmp.path);
      expect((await run([go, 'threads', '8', '100', DESCRIBE_PCR0, DESCRIBE_PCR1])).stdout).toBe('calls 800 mismatches 0 errors 0\nclose 0\n');
    }
  });

  it('serves fork children, dup() copies and descriptors inherited across exec', async () => {
    expect((await run([client, 'fork', DESCRIBE_PCR0])).stdout).toBe('parent ok\nchild ok\n');
    expect((await run([client, 'dup', DESCRIBE_PCR0])).stdout).toBe('dup ok ok\nclose 0\n');
    expect((await run([client, 'inherit', DESCRIBE_PCR0])).stdout).toBe('inherited ok\n');
  });

  it('serves several programs at once against one shared device', async () => {
    srv.device.reset();
    const twin = new NsmDevice(twinOptions());
    const procs = [20, 21, 22, 23].map((index) => {
      const req = hex(encodeRequest({ type: 'ExtendPCR', index, data: bytes(16, index) }));
      return run([client, 'send', ...Array<string>(25).fill(req)]);
    });
    const results = await Promise.all(procs);
    for (const [k, r] of results.entries()) {
      const lines = r.stdout.trim().split('\n');
      for (let i = 0; i < 25; i++) {
        const want = await twin.handleRaw(encodeRequest({ type: 'ExtendPCR', index: 20 + k, data: bytes(16, 20 + k) }));
        expect(lines[i]).toBe(`ok ${want.length} ${hex(want)}`);
      }
    }
  });

  it('recognizes /dev/nsm as the kernel resolves the path, and nothing else', async () => {
    const link = join(tmp.path, 'links');
    mkdirSync(link, { recursive: true });
    symlinkSync('/dev', join(link, 'd'));
    const paths = ['/dev/nsm', '/dev//nsm', '/dev/./nsm', '/tmp/../dev/nsm', `${link}/d/nsm`, '/dev/nsm/', '/dev/nsmx', '/nsm', 'nsm', 'dev/nsm'];
    const fromRoot = await run([client, '-C', '/', 'paths', ...paths]);
    expect(fromRoot.stdout.trim().split('\n')).toEqual([
      '/dev/nsm ok',
      '/dev//nsm ok',
      '/dev/./nsm ok',
      '/tmp/../dev/nsm ok',
      `${link}/d/nsm ok`, // through a symlink to /dev
      '/dev/nsm/ ENOENT', // a trailing slash asks for a directory: the kernel answers
      '/dev/nsmx ENOENT',
      '/nsm ENOENT',
      'nsm ENOENT', // relative to / : no such file
      'dev/nsm ok', // relative to /
    ]);
    expect((await run([client, '-C', '/dev', 'paths', 'nsm', './nsm', '../nsm'])).stdout).toBe('nsm ok\n./nsm ok\n../nsm ENOENT\n');
    // openat relative to a directory descriptor, and openat2 with its RESOLVE_* rules
    const at = async (...a: string[]) => (await run([client, 'at', ...a])).stdout.trim();
    expect(await at('/dev', 'nsm')).toBe('nsm ok');
    expect(await at('/tmp', 'nsm')).toBe('nsm ENOENT');
    expect(await at('/', 'dev/nsm', '0x08')).toBe('dev/nsm ok'); // RESOLVE_BENEATH, stays below /
    expect(await at('/tmp', '../dev/nsm', '0x08')).toBe('../dev/nsm EXDEV'); // escapes: the kernel refuses
    expect(await at('/tmp', '/dev/nsm', '0x10')).toBe('/dev/nsm ENOENT'); // RESOLVE_IN_ROOT: /tmp/dev/nsm
  });

  it('refuses the opens the device node refuses', async () => {
    expect((await run([client, 'flags'])).stdout).toBe('creat-excl EEXIST\ndirectory ENOTDIR\nrdonly ok\n');
  });

  it('closes the server connection of a device the program has closed', async () => {
    let open = 0;
    let most = 0;
    const counted = await startServer(tmp.path, new NsmDevice(twinOptions()), {
      onEvent: (e) => {
        if (e.message === 'connected') most = Math.max(most, ++open);
        if (e.message === 'disconnected') open--;
      },
    }, 'gc.sock');
    try {
      const got = await run([client, 'reopen', '40', DESCRIBE_PCR0], { ...env, NSM_EMULATOR_SOCKET: counted.address });
      expect(got.stdout).toBe('reopened 40 failed 0\n');
      expect(most).toBeLessThanOrEqual(2); // each closed device is released at the next open
    } finally {
      await counted.stop();
    }
  });

  it('leaves unrelated files and ioctls alone', async () => {
    const file = join(NATIVE_DIR, 'frame-server.mjs');
    const { statSync } = await import('node:fs');
    const got = await run([client, 'unrelated', file]);
    expect(got.stdout.split('\n')[0]).toBe(`fionread ok ${statSync(file).size}`);
    expect(got.stdout).toContain('nsm-ioctl ENOTTY\nclose 0\ndevnull ok\n');
  });

  it('fails the open with ENXIO and says why when no server listens', async () => {
    const got = await run([client, 'send', DESCRIBE_NSM], { ...env, NSM_EMULATOR_SOCKET: join(tmp.path, 'nobody.sock') });
    expect(got.stdout).toBe('open-failed ENXIO\n');
    expect(got.stderr).toContain('cannot reach the NSM server at');
  });

  it('gives EIO, promptly, once the emulator is killed mid-run', async () => {
    const sock = join(tmp.path, 'killed.sock');
    const got = await runWithServerKilled(sock, [supervisor, '--', client, 'wait', DESCRIBE_PCR0], { ...env, NSM_EMULATOR_SOCKET: sock });
    expect(got.out).toBe('first ok\nready\nsecond EIO\nthird EIO\nclose 0\n');
    expect(got.code).toBe(0);
    expect(got.elapsedMs).toBeLessThan(10_000);
  });

  it('times out with ETIMEDOUT (never hangs) when the server stops answering', async () => {
    const sock = join(tmp.path, 'stall.sock');
    const stall: Server = createServer((s) => s.on('data', () => {}).on('error', () => {}));
    await new Promise<void>((resolve) => stall.listen(sock, resolve));
    try {
      const got = await run([client, 'send', DESCRIBE_NSM, DESCRIBE_NSM], { ...env, NSM_EMULATOR_SOCKET: sock, NSM_EMULATOR_TIMEOUT_MS: '300' });
      expect(got.stdout).toBe('err ETIMEDOUT\nerr EIO\nclose 0\n');
    } finally {
      await new Promise((resolve) => stall.close(resolve));
    }
  });

  it('keeps serving descendants that outlive the program (their opens still work)', async () => {
    const out = join(tmp.path, 'late.txt');
    const got = await run(['sh', '-c', `(sleep 0.3; cat ${join(NATIVE_DIR, 'frame-server.mjs')} > ${out}; echo late $?) & exit 5`]);
    expect(got.code).toBe(5); // the program's own status, as soon as it exits
    expect(got.stdout).toBe('late 0\n'); // the background open ran after the program had gone
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(NATIVE_DIR, 'frame-server.mjs'), 'utf8'));
  });

  it('exits as the program did: its code, or killed by its signal', async () => {
    expect((await run(['sh', '-c', 'exit 7'])).code).toBe(7);
    const killed = await run(['sh', '-c', 'kill -TERM $$']);
    expect(killed.signal).toBe('SIGTERM');
    const missing = await run([join(tmp.path, 'no-such-program')]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('not found');
  });

  it('exec falls back to the shim, saying why, when the kernel refuses (here: a listener already set)', async () => {
    // Under a supervisor, a second seccomp listener is refused by the kernel (EBUSY).
    const cli = (route: string) =>
      run([process.execPath, binPath, 'exec', '--route', route, '--', dynamic, 'send', DESCRIBE_NSM], { ...env, XDG_CACHE_HOME: join(tmp.path, 'xdg') });
    const auto = await cli('auto');
    expect(auto.stderr).toMatch(/the seccomp supervisor cannot run here \(the kernel refuses seccomp user notification: .*busy\); falling back to the LD_PRELOAD shim/);
    expect(auto.stdout).toMatch(/^ok \d+ [0-9a-f]+\nclose 0\n$/);
    expect(auto.code).toBe(0);
    const forced = await cli('supervisor');
    expect(forced.code).toBe(125);
    expect(forced.stderr).toMatch(/--route supervisor: the kernel refuses seccomp user notification: .*busy/);
  });
});
