// The /dev/nsm preload shim, driven by a C client that issues the ioctl exactly as nsm-lib does
// and by a Python client, against an in-process server. Answers are compared with the same
// requests sent to an identically booted device through the library's raw API; errno values
// with what drivers/misc/nsm.c returns.
import { createServer, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/device/nsm-device.js';
import { encodeRequest } from '../src/wire/encode-request.js';
import { shimEnvironment } from '../src/node/shim-env.js';
import {
  DRIVER_ERRNO,
  NATIVE_DIR,
  runDriverMode,
  type RunningServer,
  buildTestShim,
  compileClient,
  haveTool,
  hex,
  runChild,
  runWithServerKilled,
  serverIoModes,
  startServer,
  tempDir,
  twinOptions,
} from './native/helpers.js';
import { DESCRIBE_NSM, DESCRIBE_PCR0, DESCRIBE_PCR1, SCRIPT, patternBytes as bytes, rawRequest as raw } from './native/requests.js';

const HAVE_CC = haveTool('cc', 'the /dev/nsm shim tests (C client)');
const HAVE_PY = HAVE_CC && haveTool('python3', 'the /dev/nsm shim Python client test');

const pcr = (byte: number) => new Uint8Array(48).fill(byte);
const bootPcrs = new Map([
  [0, pcr(0xa0)],
  [1, pcr(0xa1)],
  [16, pcr(0x16)],
]);

// Run against both ways the server can serve a connection (Node's streams, the native socket path).
describe.skipIf(!HAVE_CC).each(serverIoModes('the shim tests'))('preload shim with a C client (nsm-lib ioctl usage; server io: %s)', (io) => {
  const tmp = tempDir();
  let client: string;
  let shim: string;
  let srv: RunningServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    client = compileClient(tmp.path);
    shim = await buildTestShim(tmp.path);
    srv = await startServer(tmp.path, new NsmDevice(twinOptions({ pcrs: bootPcrs })), { io });
    expect(srv.server.io).toBe(io);
    env = shimEnvironment(shim, srv.address);
  });
  afterAll(async () => {
    await srv?.stop();
    tmp.remove();
  });
  const fresh = () => srv.device.reset();

  it('answers every request type byte for byte as the raw API does', async () => {
    fresh();
    const twin = new NsmDevice(twinOptions({ pcrs: bootPcrs }));
    const expected: string[] = [];
    for (const r of SCRIPT) {
      const resp = await twin.handleRaw(raw(r));
      expected.push(`ok ${resp.length} ${hex(resp)}`);
    }
    const got = await runChild(client, ['send', ...SCRIPT.map((r) => hex(raw(r)) || '')], { env });
    expect(got.stderr).toBe('');
    expect(got.stdout.trim().split('\n')).toEqual([...expected, 'close 0']);
  });

  it('intercepts every open entry point (open, open64, openat, openat64, __open_2)', async () => {
    const want = hex(await new NsmDevice(twinOptions({ pcrs: bootPcrs })).handleRaw(encodeRequest({ type: 'DescribePCR', index: 1 })));
    for (const entry of ['open', 'open64', 'openat', 'openat64', '__open_2']) {
      const got = await runChild(client, ['-e', entry, 'send', DESCRIBE_PCR1], { env });
      expect(got.stdout, entry).toBe(`ok ${want.length / 2} ${want}\nclose 0\n`);
    }
  });

  it('truncates to the caller buffer and writes the length back, like the driver', async () => {
    const full = hex(await srv.device.handleRaw(encodeRequest({ type: 'DescribeNSM' })));
    const got = await runChild(client, ['-r', '10', 'send', DESCRIBE_NSM], { env });
    expect(got.stdout).toBe(`ok 10 ${full.slice(0, 20)}\nclose 0\n`);
    const exact = await runChild(client, ['-r', String(full.length / 2), 'send', DESCRIBE_NSM], { env });
    expect(exact.stdout).toBe(`ok ${full.length / 2} ${full}\nclose 0\n`);
  });

  it('gives the kernel driver errno values (EMSGSIZE, EFAULT, EINVAL) and leaves errno alone on success', async () => {
    const got = await runDriverMode(tmp.path, 'errors', (address) => runChild(client, ['errors'], { env: shimEnvironment(shim, address) }));
    // 0x1001 bytes: refused before anything reaches the device; an unwritable response buffer
    // fails after the request ran, as in the kernel; FIONREAD reaches the driver, which refuses it.
    expect(got.lines).toEqual(DRIVER_ERRNO.errors);
    expect(got.exchanges).toBe(DRIVER_ERRNO.errorsExchanges);
  });

  it('reads the argument and the buffers as the kernel does wherever they sit: heap, guard pages, read-only, signal stack', async () => {
    const got = await runDriverMode(tmp.path, 'faults', (address) => runChild(client, ['faults'], { env: shimEnvironment(shim, address) }));
    expect(got.stderr).toBe('');
    expect(got.lines).toEqual(DRIVER_ERRNO.faults);
    expect(got.exchanges).toBe(DRIVER_ERRNO.faultsExchanges);
  });

  it('serializes many threads on one descriptor', async () => {
    const got = await runChild(client, ['threads', '8', '150', DESCRIBE_PCR0, DESCRIBE_PCR1], { env });
    expect(got.stdout).toBe('calls 1200 mismatches 0 errors 0\n');
  });

  it('serves several processes at once against one shared device', async () => {
    fresh();
    const twin = new NsmDevice(twinOptions({ pcrs: bootPcrs }));
    // Each process extends its own PCR 25 times: the final values do not depend on interleaving.
    const procs = [20, 21, 22, 23, 24, 25].map((index) => {
      const req = hex(encodeRequest({ type: 'ExtendPCR', index, data: bytes(16, index) }));
      return runChild(client, ['send', ...Array<string>(25).fill(req)], { env });
    });
    const results = await Promise.all(procs);
    for (const [k, r] of results.entries()) {
      const index = 20 + k;
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(26);
      for (let i = 0; i < 25; i++) {
        const want = await twin.handleRaw(encodeRequest({ type: 'ExtendPCR', index, data: bytes(16, index) }));
        expect(lines[i]).toBe(`ok ${want.length} ${hex(want)}`);
      }
    }
    for (const index of [20, 21, 22, 23, 24, 25]) {
      expect(await srv.device.describePcr(index)).toEqual(await twin.describePcr(index));
    }
  });

  it('is safe across fork: parent and child both keep working', async () => {
    const got = await runChild(client, ['fork', DESCRIBE_PCR0], { env });
    expect(got.stdout).toBe('parent ok\nchild ok\n');
  });

  it('follows a dup() of the descriptor', async () => {
    const got = await runChild(client, ['dup', DESCRIBE_PCR0], { env });
    expect(got.stdout).toBe('dup ok ok\nclose 0\n');
  });

  it('recognizes a descriptor inherited across exec', async () => {
    const got = await runChild(client, ['inherit', DESCRIBE_PCR0], { env });
    expect(got.stdout).toBe('inherited ok\n');
  });

  it('refuses read() and write() like the driver (which has neither): EINVAL, EBADF for the wrong direction; nothing reaches the server', async () => {
    // Before: read() blocked forever on the socket and write() put bytes in the stream, so every
    // later ioctl on the descriptor failed with EIO. Expected errno from the VFS (fs/read_write.c):
    // EBADF when not opened for that direction, else EINVAL because the file has no read/write.
    let exchanges = 0;
    const counting = await startServer(tmp.path, new NsmDevice(twinOptions()), { io, onExchange: () => exchanges++ }, 'rw.sock');
    try {
      const got = await runChild(client, ['readwrite', DESCRIBE_NSM], { env: shimEnvironment(shim, counting.address) });
      const want: string[] = [];
      for (const [mode, canRead, canWrite] of [['rdwr', true, true], ['rdonly', true, false], ['wronly', false, true]] as const) {
        const r = canRead ? 'EINVAL' : 'EBADF';
        const w = canWrite ? 'EINVAL' : 'EBADF';
        want.push(`${mode} read ${r}`, `${mode} read0 ${r}`, `${mode} write ${w}`, `${mode} readv ${r}`, `${mode} writev ${w}`, `${mode} pread ${r}`, `${mode} pwrite ${w}`, `${mode} ioctl-after ok`);
      }
      expect(got.stdout.trim().split('\n')).toEqual(want);
      expect(exchanges).toBe(3); // only the three ioctls
    } finally {
      await counting.stop();
    }
  });

  it('leaves unrelated files alone (open, ioctl, read, close)', async () => {
    const file = join(NATIVE_DIR, 'frame-server.mjs');
    const { statSync, readFileSync } = await import('node:fs');
    const size = statSync(file).size;
    const head = readFileSync(file, 'utf8').slice(0, 63).split('\n')[0];
    const got = await runChild(client, ['unrelated', file], { env });
    const lines = got.stdout.split('\n');
    expect(lines[0]).toBe(`fionread ok ${size}`);
    expect(lines[1]!.startsWith(`read 63 ${head}`)).toBe(true);
    expect(got.stdout).toContain('nsm-ioctl ENOTTY\nclose 0\ndevnull ok\n');
  });

  it('does nothing when NSM_EMULATOR_SOCKET is unset (the real /dev/nsm is opened)', async () => {
    const { NSM_EMULATOR_SOCKET: _, ...bare } = env;
    const got = await runChild(client, ['send', DESCRIBE_NSM], { env: bare });
    // This machine has no /dev/nsm: the libc open fails as it would without the shim.
    expect(got.stdout).toBe('open-failed ENOENT\n');
  });

  it('fails the open with ENXIO and says why when no server listens', async () => {
    const got = await runChild(client, ['send', DESCRIBE_NSM], { env: shimEnvironment(shim, join(tmp.path, 'nobody.sock')) });
    expect(got.stdout).toBe('open-failed ENXIO\n');
    expect(got.stderr).toContain('cannot reach the NSM server at NSM_EMULATOR_SOCKET=');
  });

  it('gives EIO, promptly, once the server process is killed mid-run', async () => {
    const sock = join(tmp.path, 'killed.sock');
    const got = await runWithServerKilled(sock, [client, 'wait', DESCRIBE_PCR0], shimEnvironment(shim, sock));
    expect(got.out).toBe('first ok\nready\nsecond EIO\nthird EIO\nclose 0\n');
    expect(got.code).toBe(0);
    expect(got.elapsedMs).toBeLessThan(10_000);
  });

  it('gives EIO when an in-process server is closed under a connected client', async () => {
    const other = await startServer(tmp.path, new NsmDevice(twinOptions()), { io }, 'closing.sock');
    const c = spawn(client, ['wait', DESCRIBE_PCR0], { env: shimEnvironment(shim, other.address), stdio: 'pipe' });
    let out = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.endsWith('ready\n')) void other.stop().then(() => c.stdin.end('go\n'));
    });
    await new Promise((resolve) => c.on('close', resolve));
    expect(out).toBe('first ok\nready\nsecond EIO\nthird EIO\nclose 0\n');
  });

  it('times out with ETIMEDOUT (never hangs) when the server stops answering', async () => {
    const sock = join(tmp.path, 'stall.sock');
    const stall: Server = createServer((s) => s.on('data', () => {}).on('error', () => {})); // reads, never answers
    await new Promise<void>((resolve) => stall.listen(sock, resolve));
    try {
      const got = await runChild(client, ['send', DESCRIBE_NSM, DESCRIBE_NSM], {
        env: { ...shimEnvironment(shim, sock), NSM_EMULATOR_TIMEOUT_MS: '300' },
      });
      // After a timeout the stream is out of step: the descriptor is dead (EIO), not reused.
      expect(got.stdout).toBe('err ETIMEDOUT\nerr EIO\nclose 0\n');
    } finally {
      await new Promise((resolve) => stall.close(resolve));
    }
  });

  it('keeps the timeout when an answer stops half way, and works on a non-blocking (FIONBIO) descriptor', async () => {
    // A server that sends only the first half of each answer, then nothing.
    const sock = join(tmp.path, 'half.sock');
    const answer = await new NsmDevice(twinOptions({})).handleRaw(encodeRequest({ type: 'DescribeNSM' }));
    const framed = Buffer.concat([Buffer.from([0, 0, answer.length >> 8, answer.length & 0xff]), Buffer.from(answer)]);
    const half: Server = createServer((s) => s.on('data', () => s.write(framed.subarray(0, 40))).on('error', () => {}));
    await new Promise<void>((resolve) => half.listen(sock, resolve));
    try {
      const got = await runChild(client, ['send', DESCRIBE_NSM], { env: { ...shimEnvironment(shim, sock), NSM_EMULATOR_TIMEOUT_MS: '300' } });
      expect(got.stdout).toBe('err ETIMEDOUT\nclose 0\n');
    } finally {
      await new Promise((resolve) => half.close(resolve));
    }
    fresh();
    const twin = new NsmDevice(twinOptions({ pcrs: bootPcrs }));
    const want = hex(await twin.handleRaw(encodeRequest({ type: 'DescribeNSM' })));
    const nb = await runChild(client, ['-n', '1', 'send', DESCRIBE_NSM, DESCRIBE_NSM], { env });
    expect(nb.stdout).toBe(`ok ${want.length / 2} ${want}\nok ${want.length / 2} ${want}\nclose 0\n`);
  });

  it.skipIf(!HAVE_PY)('works from Python (fcntl.ioctl on an os.open descriptor)', async () => {
    fresh();
    const twin = new NsmDevice(twinOptions({ pcrs: bootPcrs }));
    const reqs = [encodeRequest({ type: 'DescribePCR', index: 16 }), encodeRequest({ type: 'ExtendPCR', index: 16, data: bytes(5, 9) }), encodeRequest({ type: 'DescribeNSM' })];
    const want: string[] = [];
    for (const r of reqs) {
      const resp = await twin.handleRaw(r);
      want.push(`ok ${resp.length} ${hex(resp)}`);
    }
    const small = await twin.handleRaw(encodeRequest({ type: 'DescribeNSM' }));
    want.push(`ok 7 ${hex(small.subarray(0, 7))}`, 'err EMSGSIZE');
    const got = await runChild('python3', [join(NATIVE_DIR, 'nsm_client.py'), ...reqs.map(hex)], { env });
    expect(got.stderr).toBe('');
    expect(got.stdout.trim().split('\n')).toEqual(want);
  });
});
