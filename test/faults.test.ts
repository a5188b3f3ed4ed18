// Fault injection, through the library, `rpc`, `serve` and `exec`: injected errors are the
// device's own error answers (checked against cbor-x's encoding of {"Error": code}), the faulted
// request never executes, delays hold the queue, and a device that disappears closes
// connections (a /dev/nsm client gets EIO).
import { connect, type Socket } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from 'cbor-x';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type FaultEvent, FAULT_ERROR_CODES, NsmDevice, NsmDeviceGoneError, NsmError, encodeRequest, parseFault,
} from '../src/index.js';
import { main } from '../src/cli/main.js';
import { liveIo, runCli } from './helpers/cli.js';
import { compileClient, haveTool, hex, tempDir } from './native/helpers.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { ETIMEDOUT, LinuxNsmDriver, TestMemory } from './helpers/virtqueue-driver.js';

/** {"Error": code} as an independent encoder writes it (shortest-form map header, as serde_cbor). */
const cborx = new Encoder({ variableMapSize: true, useRecords: false });
const errorBytes = (code: string) => hex(cborx.encode({ Error: code }));
const DESCRIBE_NSM = encodeRequest({ type: 'DescribeNSM' });
const GET_RANDOM = encodeRequest({ type: 'GetRandom' });
const EXTEND_16 = encodeRequest({ type: 'ExtendPCR', index: 16, data: new Uint8Array([1, 2, 3]) });
const DESCRIBE_16 = encodeRequest({ type: 'DescribePCR', index: 16 });

describe('device option faults', () => {
  it('an injected error is the device error answer, byte for byte, and the request does not execute', async () => {
    const events: FaultEvent[] = [];
    const d = new NsmDevice({ seed: '01', faults: [{ request: 'ExtendPCR', effect: { error: 'InternalError' } }], onFault: (e) => events.push(e) });
    const twin = new NsmDevice({ seed: '01' });
    expect(hex(await d.handleRaw(EXTEND_16))).toBe(errorBytes('InternalError'));
    // Nothing changed: PCR16 is still what an untouched twin shows; the next ExtendPCR works.
    expect(hex(await d.handleRaw(DESCRIBE_16))).toBe(hex(await twin.handleRaw(DESCRIBE_16)));
    expect(hex(await d.handleRaw(EXTEND_16))).toBe(hex(await twin.handleRaw(EXTEND_16)));
    expect(events.map((e) => e.message)).toEqual(['ExtendPCR answered InternalError (fault 1, 1 of 1)']);
  });

  it('counts, always, @K (skip) and *; the typed API rejects with NsmError carrying the code', async () => {
    const d = new NsmDevice({
      faults: [
        { request: 'GetRandom', effect: { error: 'InternalError' }, when: 2, skip: 1 },
        { request: 'LockPCR', effect: { error: 'ReadOnlyIndex' }, when: 'always' },
      ],
    });
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await d.getRandom().then(() => 'ok', (e: NsmError) => e.code));
    expect(outcomes).toEqual(['ok', 'InternalError', 'InternalError', 'ok', 'ok']);
    for (let i = 0; i < 3; i++) await expect(d.lockPcr(20)).rejects.toEqual(new NsmError('ReadOnlyIndex'));
    expect((await d.describePcr(20)).lock).toBe(false);

    const any = new NsmDevice({ faults: [{ request: '*', effect: { error: 'InvalidOperation' }, when: 1 }] });
    // A malformed request gets its own answer and does not use up the fault...
    expect(hex(await any.handleRaw(new Uint8Array([0xff])))).toBe(errorBytes('InvalidOperation'));
    await expect(any.describeNsm()).rejects.toMatchObject({ code: 'InvalidOperation' });
    await expect(any.describeNsm()).resolves.toMatchObject({ maxPcrs: 32 });
  });

  it('probabilities draw from the seed: the same seed gives the same pattern; 0 never hits, 1 always does', async () => {
    const pattern = async (seed: string, probability: number) => {
      const d = new NsmDevice({ seed, faults: [{ request: 'DescribeNSM', effect: { error: 'InternalError' }, when: { probability } }] });
      let s = '';
      for (let i = 0; i < 200; i++) s += (await d.handleRaw(DESCRIBE_NSM))[1] === 0x65 ? 'x' : '.';
      return s;
    };
    const a = await pattern('01', 0.25);
    expect(await pattern('01', 0.25)).toBe(a);
    expect(await pattern('02', 0.25)).not.toBe(a);
    const hits = a.split('x').length - 1;
    expect(hits).toBeGreaterThan(25); // 200 draws at p = 0.25: 50 expected
    expect(hits).toBeLessThan(80);
    expect(await pattern('01', 0)).toBe('.'.repeat(200));
    expect(await pattern('01', 1)).toBe('x'.repeat(200));
  });

  it('a delay holds the request and every request issued after it (fake timers, no wall clock)', async () => {
    vi.useFakeTimers();
    try {
      const d = new NsmDevice({ faults: [{ request: 'ExtendPCR', effect: { delayMs: 300 } }] });
      const order: string[] = [];
      const extend = d.handleRaw(EXTEND_16).then(() => order.push('extend'));
      const describe = d.describePcr(16).then((r) => order.push(`describe ${r.data[0]}`));
      await vi.advanceTimersByTimeAsync(299);
      expect(order).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      await Promise.all([extend, describe]);
      // DescribePCR was issued after the delayed ExtendPCR, so it sees the extended value.
      const expected = (await new NsmDevice().extendPcr(16, new Uint8Array([1, 2, 3])))[0];
      expect(order).toEqual(['extend', `describe ${expected}`]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a disappeared device fails every request until reset, which brings it back with its faults rewound', async () => {
    const d = new NsmDevice({ faults: [{ request: 'GetRandom', effect: { disappear: true } }] });
    await expect(d.describeNsm()).resolves.toBeDefined();
    const gone = d.getRandom();
    await expect(gone).rejects.toBeInstanceOf(NsmDeviceGoneError);
    await expect(gone).rejects.toBeInstanceOf(NsmError);
    await expect(gone).rejects.toMatchObject({ code: 'InternalError' });
    expect(d.disappeared).toBe(true);
    await expect(d.handleRaw(DESCRIBE_NSM)).rejects.toBeInstanceOf(NsmDeviceGoneError);
    await expect(d.handleRaw(new Uint8Array([0xff]))).rejects.toBeInstanceOf(NsmDeviceGoneError);
    d.reset();
    expect(d.disappeared).toBe(false);
    await expect(d.describeNsm()).resolves.toBeDefined();
    await expect(d.getRandom()).rejects.toBeInstanceOf(NsmDeviceGoneError);
  });

  it('refuses codes the device never sends and malformed rules, naming the field', () => {
    for (const code of ['Success', 'InvalidArgument', 'InvalidResponse', 'BufferTooSmall']) {
      expect(() => new NsmDevice({ faults: [{ request: 'GetRandom', effect: { error: code as 'InternalError' } }] })).toThrow(/faults\[0\]\.effect\.error/);
    }
    expect(FAULT_ERROR_CODES).toEqual(['InvalidIndex', 'ReadOnlyIndex', 'InvalidOperation', 'InputTooLarge', 'InternalError']);
    expect(() => new NsmDevice({ faults: [{ request: 'Nope' as 'GetRandom', effect: { disappear: true } }] })).toThrow(/faults\[0\]\.request/);
    expect(() => new NsmDevice({ faults: [{ request: 'GetRandom', effect: { delayMs: -1 } }] })).toThrow(/delayMs/);
    expect(() => new NsmDevice({ faults: [{ request: 'GetRandom', effect: { disappear: true }, when: 0 }] })).toThrow(/when/);
    expect(() => new NsmDevice({ faults: [{ request: 'GetRandom', effect: { disappear: true }, when: { probability: 2 } }] })).toThrow(/probability/);
  });

  it('parses the --fault text form', () => {
    expect(parseFault('Attestation=InternalError:1')).toEqual({ request: 'Attestation', effect: { error: 'InternalError' }, when: 1 });
    expect(parseFault('Attestation=InternalError')).toEqual({ request: 'Attestation', effect: { error: 'InternalError' }, when: 1 });
    expect(parseFault('*=delay-250:always')).toEqual({ request: '*', effect: { delayMs: 250 }, when: 'always' });
    expect(parseFault('GetRandom=InvalidOperation:25%')).toEqual({ request: 'GetRandom', effect: { error: 'InvalidOperation' }, when: { probability: 0.25 } });
    expect(parseFault('GetRandom=InvalidOperation:0.5')).toEqual({ request: 'GetRandom', effect: { error: 'InvalidOperation' }, when: { probability: 0.5 } });
    expect(parseFault('DescribeNSM=disappear@3')).toEqual({ request: 'DescribeNSM', effect: { disappear: true }, when: 1, skip: 2 });
    expect(parseFault('ExtendPCR=ReadOnlyIndex:2@5')).toEqual({ request: 'ExtendPCR', effect: { error: 'ReadOnlyIndex' }, when: 2, skip: 4 });
    for (const [text, why] of [
      ['Attestation', /expected REQUEST=EFFECT/],
      ['Attest=InternalError', /unknown request 'Attest'/],
      ['Attestation=Success', /unknown effect 'Success'/],
      ['Attestation=delay-999999', /over 120000/],
      ['Attestation=InternalError:often', /unknown WHEN 'often'/],
      ['Attestation=InternalError:150%', /unknown WHEN/],
      ['Attestation=InternalError@0', /'@0': expected @K/],
    ] as const) {
      expect(() => parseFault(text)).toThrow(why);
    }
  });
});

describe('virtio-nsm with faults', () => {
  it('an injected error reaches the guest as the answer; a disappeared device never answers (the driver times out)', async () => {
    const nsm = new NsmDevice({ faults: [{ request: 'GetRandom', effect: { error: 'InternalError' } }, { request: 'DescribeNSM', effect: { disappear: true } }] });
    const device = new VirtioNsmDevice(nsm);
    const driver = new LinuxNsmDriver(device, TestMemory.flat(0x20000), { ringBase: 0x1000, msgBase: 0x10000 });
    driver.probe({ without: 0n });
    const r = await driver.ioctlRaw(GET_RANDOM);
    expect(r.rc).toBe(0);
    expect(hex(r.response!)).toBe(errorBytes('InternalError'));
    expect((await driver.ioctlRaw(DESCRIBE_NSM)).rc).toBe(ETIMEDOUT);
    expect(device.transportError).toBe(null); // not a transport fault: the device just went silent
    // The unanswered request still holds both descriptors of the two-entry ring: -ENOSPC.
    expect((await driver.ioctlRaw(DESCRIBE_16)).rc).toBe(-28);
  });
});

describe('rpc --fault', () => {
  it('answers the injected error on the wire, reports it on stderr, and executes nothing for it', async () => {
    const r = await runCli(['rpc', '--json', '--seed', '01', '--fault', 'ExtendPCR=InternalError:1'],
      ['{"ExtendPCR":{"index":16,"data":"010203"}}', '{"DescribePCR":{"index":16}}', '{"ExtendPCR":{"index":16,"data":"010203"}}'].join('\n'));
    expect(r.code).toBe(0);
    const [first, describe, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(first).toEqual({ Error: 'InternalError' });
    expect(describe).toEqual({ DescribePCR: { lock: false, data: '00'.repeat(48) } });
    expect(second.ExtendPCR.data).toBe(hex(await new NsmDevice().extendPcr(16, new Uint8Array([1, 2, 3]))));
    expect(r.stderr).toBe('nsm-emulator rpc: fault injected (--fault ExtendPCR=InternalError:1): ExtendPCR answered InternalError (fault 1, 1 of 1)\n');
  });

  it('a disappearing device ends rpc with exit 1 and no answer for that line', async () => {
    const r = await runCli(['rpc', '--fault', 'DescribeNSM=disappear@2'], `${hex(DESCRIBE_NSM)}\n${hex(DESCRIBE_NSM)}\n${hex(GET_RANDOM)}\n`);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('stdin line 2: the NSM device has disappeared (injected fault)');
  });

  it('a bad --fault is a usage error naming it', async () => {
    const r = await runCli(['rpc', '--fault', 'Attestation=Success']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^nsm-emulator rpc: --fault 'Attestation=Success': unknown effect 'Success'; expected an error code the device sends/);
  });
});

/** A framing client that records whether the server closed the connection. */
function frameClient(path: string): Promise<{ call: (req: Uint8Array) => Promise<string | 'closed'>; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let buf = Buffer.alloc(0);
    let closed = false;
    let wake: (() => void) | null = null;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      wake?.();
    });
    socket.on('close', () => {
      closed = true;
      wake?.();
    });
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        socket,
        async call(req) {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(req.length);
          if (!closed) socket.write(Buffer.concat([head, req]));
          for (;;) {
            if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
              const body = buf.subarray(4, 4 + buf.readUInt32BE(0));
              buf = buf.subarray(4 + body.length);
              return hex(body);
            }
            if (closed) return 'closed';
            await new Promise<void>((r) => (wake = r));
          }
        },
      }),
    );
    socket.once('error', reject);
  });
}

describe('serve --fault', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  afterEach(() => vi.useRealTimers());

  it('injected errors go out as device answers; a disappearance closes the connection and refuses new ones', async () => {
    const path = join(tmp.path, 'fault.sock');
    const t = liveIo();
    const done = main(['serve', '--socket', path, '--fault', 'GetRandom=InternalError:1', '--fault', 'DescribeNSM=disappear@2'], t.io);
    while (!t.out().includes('unix:')) await new Promise((r) => setTimeout(r, 5));
    try {
      const a = await frameClient(path);
      const b = await frameClient(path);
      expect(await a.call(GET_RANDOM)).toBe(errorBytes('InternalError'));
      expect((await a.call(GET_RANDOM)).startsWith('a169' + hex(new TextEncoder().encode('GetRandom')))).toBe(true);
      expect(await b.call(DESCRIBE_NSM)).toMatch(/^a16b44657363726962654e534d/);
      expect(await a.call(DESCRIBE_NSM)).toBe('closed');
      // The other connection finds the device gone at its next request; new ones are closed at once.
      expect(await b.call(GET_RANDOM)).toBe('closed');
      expect(await (await frameClient(path)).call(DESCRIBE_NSM)).toBe('closed');
      expect(t.err()).toContain('nsm-emulator serve: fault injected (--fault GetRandom=InternalError:1): GetRandom answered InternalError');
      expect(t.err()).toContain('the device has disappeared (injected fault): closing the connection without an answer');
    } finally {
      process.emit('SIGTERM');
    }
    expect(await done).toBe(0);
  });
});

const HAVE_CC = haveTool('cc', 'the exec fault tests (they build the shim)');

describe.skipIf(!HAVE_CC)('exec --fault', () => {
  const tmp = tempDir();
  const saved = { XDG_CACHE_HOME: process.env['XDG_CACHE_HOME'], TMPDIR: process.env['TMPDIR'] };
  let client: string;
  beforeAll(() => {
    client = compileClient(tmp.path);
    const work = join(tmp.path, 'tmp');
    mkdirSync(work);
    process.env['XDG_CACHE_HOME'] = join(tmp.path, 'cache');
    process.env['TMPDIR'] = work;
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    tmp.remove();
  });

  it('the program gets the injected error answer through the ioctl, then EIO once the device disappears', async () => {
    const t = liveIo('');
    const code = await main(['exec', '--fault', 'GetRandom=InternalError:1', '--fault', 'DescribeNSM=disappear@2', '--', client, 'send',
      hex(GET_RANDOM), hex(DESCRIBE_NSM), hex(DESCRIBE_NSM), hex(DESCRIBE_16)], t.io);
    expect(code).toBe(0);
    const lines = t.out().trim().split('\n');
    const internal = errorBytes('InternalError');
    expect(lines[0]).toBe(`ok ${internal.length / 2} ${internal}`);
    expect(lines[1]).toMatch(/^ok \d+ a16b44657363726962654e534d/);
    expect(lines.slice(2, 4)).toEqual(['err EIO', 'err EIO']);
    expect(t.err()).toContain('nsm-emulator exec: fault injected (--fault DescribeNSM=disappear@2): DescribeNSM made the device disappear');
  });
});
