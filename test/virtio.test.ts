// The virtio-nsm device model driven by a guest that behaves like Linux's nsm driver
// (test/helpers/virtqueue-driver.ts): the device contract, every request type through the
// queue, used-ring entries, lengths, interrupts, notification suppression, ordering while an
// attestation is pending, and the optional single-chain form.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeResponse, type AttesterFactory } from '../src/index.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { ascii, hex, unhex } from './helpers/hex.js';
import {
  EMSGSIZE,
  ETIMEDOUT,
  FEATURE_EVENT_IDX,
  FEATURE_INDIRECT,
  FEATURE_VERSION_1,
  F_INDIRECT,
  F_NEXT,
  F_WRITE,
  LinuxNsmDriver,
  NSM_RESPONSE_MAX_SIZE,
  TestMemory,
  parseGetRandom,
} from './helpers/virtqueue-driver.js';

const qemuLines = readFileSync(new URL('../vectors/qemu/qemu-10.0.2-virtio-nsm-raw.tsv', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => l.split('\t').map(unhex) as [Uint8Array, Uint8Array]);

/** Lines of the QEMU capture whose answer is the same bytes on every faithful device (see qemu-differential.test.ts). */
const SAME_AS_QEMU = new Set([2, 3, 4, 12, 13, 15, 17, 18, 19]);

const RING = 0x1000;
const MSG = 0x10000;

function nsmOptions(attester: AttesterFactory = recordingAttester()) {
  return { seed: '5eed', moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', clock: () => 1_700_000_000_000, attester };
}

function setup(options: { queueMaxSize?: number; acceptSingleChain?: boolean; without?: bigint; attester?: AttesterFactory } = {}) {
  const nsm = new NsmDevice(nsmOptions(options.attester));
  const device = new VirtioNsmDevice(nsm, options);
  const memory = TestMemory.flat(0x20000);
  const driver = new LinuxNsmDriver(device, memory, { ringBase: RING, msgBase: MSG });
  driver.probe({ without: options.without ?? 0n });
  return { nsm, device, memory, driver };
}

const text = (s: string) => new TextEncoder().encode(s);
const sha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

describe('device identity (the contract VMMs rely on)', () => {
  it('is virtio device 33 with one queue of QEMU size 2, no config space and only transport features', () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '01' }));
    expect(device.deviceType).toBe(33);
    expect(device.queueMaxSizes).toEqual([2]);
    expect(typeof device.deviceFeatures).toBe('bigint');
    expect(device.deviceFeatures & FEATURE_VERSION_1).toBe(FEATURE_VERSION_1);
    // Device-specific feature bits are 0-23; the NSM has none.
    expect(device.deviceFeatures & ((1n << 24n) - 1n)).toBe(0n);
    expect(device.deviceFeatures).toBe(FEATURE_VERSION_1 | FEATURE_INDIRECT | FEATURE_EVENT_IDX);
    expect(device.readConfig(0, 8)).toEqual(new Uint8Array(8));
    expect(device.readConfig(0x100, 3)).toEqual(new Uint8Array(3));
    expect(device.status).toBe(0);
  });

  it('acknowledges only offered features, and none once active', () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '01' }));
    expect(device.ackFeatures(1n)).toBe(false); // a device-specific bit
    expect(device.ackFeatures(FEATURE_VERSION_1 | (1n << 33n))).toBe(false);
    expect(device.driverFeatures).toBe(0n);
    expect(device.ackFeatures(FEATURE_VERSION_1)).toBe(true);
    expect(device.driverFeatures).toBe(FEATURE_VERSION_1);
    device.activate({
      memory: new Uint8Array(0x3000),
      queues: [{ size: 2, descTable: 0x0n, availRing: 0x20n, usedRing: 0x1000n }],
      interrupt: () => {},
    });
    expect(device.status & 0x0f).toBe(0x0f);
    expect(device.ackFeatures(FEATURE_VERSION_1 | FEATURE_EVENT_IDX)).toBe(false);
  });

  it('writeStatus(0) resets; the driver cannot set DEVICE_NEEDS_RESET itself', () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '01' }));
    device.writeStatus(0x01 | 0x02 | 0x40);
    expect(device.status).toBe(0x03);
    device.ackFeatures(FEATURE_VERSION_1);
    device.writeStatus(0);
    expect(device.status).toBe(0);
    expect(device.driverFeatures).toBe(0n);
  });
});

describe('the Linux driver transaction, for every request type', () => {
  it('replays the QEMU capture through the queue: same answers as the raw API, and as QEMU where devices agree', async () => {
    const { driver } = setup();
    const twin = new NsmDevice(nsmOptions());
    const heads: number[][] = [];
    for (const [n, [request, qemuResponse]] of qemuLines.entries()) {
      const r = await driver.ioctlRaw(request);
      const expected = await twin.handleRaw(request);
      expect(r.rc, `line ${n + 1}`).toBe(0);
      expect(hex(r.response!), `line ${n + 1}`).toBe(hex(expected));
      if (SAME_AS_QEMU.has(n + 1)) expect(hex(r.response!), `line ${n + 1}`).toBe(hex(qemuResponse));
      // Two used entries: the request chain with length 0, then the response chain with the response length.
      expect(r.used.map((u) => u.len)).toEqual([0, expected.length]);
      expect(r.interrupts).toEqual(['vring']);
      heads.push(r.used.map((u) => u.id));
    }
    // Linux's free list hands out heads 0,1 then 1,0 alternately (a freed chain goes to the front).
    expect(heads.slice(0, 4)).toEqual([[0, 1], [1, 0], [0, 1], [1, 0]]);
  });

  it('ExtendPCR through the queue gives SHA-384(old || data) (node:crypto)', async () => {
    const { driver } = setup();
    const data = text('virtqueue');
    // ExtendPCR {index: 17, data: h'"virtqueue"'}, assembled by hand.
    const r = await driver.ioctlRaw(unhex(`a169${ascii('ExtendPCR')}a265${ascii('index')}1164${ascii('data')}49${ascii('virtqueue')}`));
    const decoded = decodeResponse(r.response!);
    expect(decoded).toEqual({ type: 'ExtendPCR', data: sha384(new Uint8Array(48), data) });
  });

  it('GetRandom from the kernel hwrng path passes the Linux parser with 256 bytes', async () => {
    const { driver } = setup();
    const a = await driver.hwrngRead(4096);
    const b = await driver.hwrngRead(32);
    expect(a).toBeInstanceOf(Uint8Array);
    expect((a as Uint8Array).length).toBe(256);
    expect((b as Uint8Array).length).toBe(32);
    expect(hex(b as Uint8Array)).not.toBe(hex((a as Uint8Array).subarray(0, 32)));
    // The parser really rejects what it should (so passing above means something).
    expect(parseGetRandom(unhex('a16947657452616e646f6da16672616e646f6d5401020304050607080910111213141516171819'), 64)).toBeLessThan(0);
  });

  it('Attestation travels through the queue whatever the attester answers (document or InternalError)', async () => {
    const failing: AttesterFactory = () => {
      throw new Error('no CA');
    };
    const { driver } = setup({ attester: failing });
    const req = unhex('a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a7075626c69635f6b6579f6');
    const r = await driver.ioctlRaw(req);
    expect(r.rc).toBe(0);
    expect(decodeResponse(r.response!)).toEqual({ type: 'Error', code: 'InternalError' });
    const ok = setup();
    const r2 = await ok.driver.ioctlRaw(req);
    expect(decodeResponse(r2.response!)).toEqual({ type: 'Attestation', document: new Uint8Array([0xd0, 0xc0, 1]) });
  });

  it('malformed CBOR is not a transport fault: it gets an NSM Error response', async () => {
    const { driver, device } = setup();
    for (const bad of [unhex('ff'), unhex('a1'), unhex('5f41'), text('not cbor at all'), new Uint8Array(4096).fill(0xa1)]) {
      const r = await driver.ioctlRaw(bad);
      expect(r.rc).toBe(0);
      expect(decodeResponse(r.response!)).toEqual({ type: 'Error', code: 'InvalidOperation' });
    }
    expect(device.status & 0x40).toBe(0);
    expect(device.transportError).toBeNull();
  });

  it('a request over 4096 bytes never reaches the device under Linux (-EMSGSIZE); sent raw it gets InputTooLarge', async () => {
    const { driver, memory } = setup({ queueMaxSize: 8 });
    expect((await driver.ioctlRaw(new Uint8Array(4097))).rc).toBe(EMSGSIZE);
    // A non-Linux guest can still send one: the device answers like QEMU.
    const big = 0x8000;
    memory.fill(big, 5000, 0xa0);
    driver.setDescriptor(driver.desc, 4, { addr: big, len: 5000, flags: 0, next: 0 });
    driver.setDescriptor(driver.desc, 5, { addr: 0x18000, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    driver.makeAvailable(4);
    driver.makeAvailable(5);
    await driver.notify();
    const used = driver.usedEntry(1);
    expect(used.id).toBe(5);
    expect(decodeResponse(memory.read(0x18000, used.len))).toEqual({ type: 'Error', code: 'InputTooLarge' });
  });

  it('a user buffer smaller than the response is truncated by the driver, not the device', async () => {
    const { driver } = setup();
    const r = await driver.ioctlRaw(unhex('6b44657363726962654e534d'), 10);
    expect(r.rc).toBe(0);
    expect(r.response!.length).toBe(10);
    expect(r.used[1]!.len).toBeGreaterThan(10);
  });

  it('keeps working across used/avail index wrap-around at 65536', async () => {
    const { driver } = setup();
    const req = unhex('a16b4465736372696265504352a165696e64657811');
    for (let i = 0; i < 32_770; i++) {
      const r = await driver.ioctlRaw(req);
      if (r.rc !== 0) throw new Error(`transaction ${i} failed with ${r.rc}`);
    }
    expect(driver.usedIdx()).toBe((32_770 * 2) & 0xffff);
  }, 120_000);
});

describe('interrupt and notification suppression', () => {
  const describePcr = unhex('a16b4465736372696265504352a165696e64657800');

  it('with EVENT_IDX, avail_event asks for every kick (else Linux would stop kicking and time out)', async () => {
    const { driver } = setup();
    expect(driver.eventIdx).toBe(true);
    for (let i = 0; i < 5; i++) expect((await driver.ioctlRaw(describePcr)).rc).toBe(0);
    expect(driver.availEvent()).toBe(10);
  });

  it('with EVENT_IDX, no interrupt when used_event is not crossed', async () => {
    const { driver, memory } = setup();
    expect((await driver.ioctlRaw(describePcr)).rc).toBe(0);
    // The driver asks to be interrupted only at used index 7; the next pair makes it 4.
    memory.setLe(driver.avail + 4 + 2 * driver.num, 2, 7);
    driver.setDescriptor(driver.desc, 0, { addr: driver.reqData, len: describePcr.length, flags: 0, next: 1 });
    driver.setDescriptor(driver.desc, 1, { addr: driver.respData, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    const before = driver.interrupts.length;
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await driver.notify();
    expect(driver.usedIdx()).toBe(4);
    expect(driver.interrupts.length).toBe(before);
    // used_event = 4 lies in the window of the next pair (4 -> 6): interrupt.
    memory.setLe(driver.avail + 4 + 2 * driver.num, 2, 4);
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await driver.notify();
    expect(driver.interrupts.slice(before)).toEqual(['vring']);
  });

  it('without EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the interrupt (and Linux then times out)', async () => {
    const { driver, device } = setup({ without: FEATURE_EVENT_IDX });
    expect(device.driverFeatures & FEATURE_EVENT_IDX).toBe(0n);
    expect((await driver.ioctlRaw(describePcr)).rc).toBe(0);
    driver.setAvailFlags(1);
    expect((await driver.ioctlRaw(describePcr)).rc).toBe(ETIMEDOUT);
    driver.setAvailFlags(0);
    const r = await driver.ioctlRaw(describePcr);
    expect(r.rc).toBe(0);
    expect(r.interrupts).toEqual(['vring']);
  });

  it('one interrupt per completed request when several are queued; with EVENT_IDX only as far as used_event asks', async () => {
    for (const eventIdx of [false, true]) {
      const { driver, memory } = setup({ queueMaxSize: 8, without: eventIdx ? 0n : FEATURE_EVENT_IDX });
      for (let k = 0; k < 3; k++) {
        const req = unhex(`a16b4465736372696265504352a165696e6465781${k}`);
        memory.write(0x8000 + 0x100 * k, req);
        driver.setDescriptor(driver.desc, 2 * k, { addr: 0x8000 + 0x100 * k, len: req.length, flags: 0, next: 0 });
        driver.setDescriptor(driver.desc, 2 * k + 1, { addr: 0x9000 + 0x3000 * k, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
        driver.makeAvailable(2 * k);
        driver.makeAvailable(2 * k + 1);
      }
      await driver.notify();
      // The driver consumed nothing, so used_event stays 0: only the first completion crosses it.
      expect(driver.interrupts).toEqual(eventIdx ? ['vring'] : ['vring', 'vring', 'vring']);
      expect([0, 1, 2, 3, 4, 5].map((s) => driver.usedEntry(s).id)).toEqual([0, 1, 2, 3, 4, 5]);
    }
  });
});

describe('ordering while an attestation is being signed', () => {
  function gatedAttester() {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const factory: AttesterFactory = () => ({
      async attest() {
        await gate;
        return new Uint8Array([0xd0, 0xc0, 0xde]);
      },
    });
    return { factory, release };
  }

  it('later requests wait for the attestation, complete in ring order, and the VMM is never blocked', async () => {
    const { factory, release } = gatedAttester();
    const { driver, memory, device } = setup({ queueMaxSize: 8, attester: factory, without: FEATURE_EVENT_IDX });
    const requests = [
      unhex('a16b4174746573746174696f6ea0'),
      unhex('a169457874656e64504352a265696e64657810646461746143010203'),
      unhex('a16b4465736372696265504352a165696e64657810'),
    ];
    requests.forEach((req, k) => {
      memory.write(0x8000 + 0x100 * k, req);
      driver.setDescriptor(driver.desc, 2 * k, { addr: 0x8000 + 0x100 * k, len: req.length, flags: 0, next: 0 });
      driver.setDescriptor(driver.desc, 2 * k + 1, { addr: 0x9000 + 0x3000 * k, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    let settled = false;
    const first = device.queueNotify(0).then(() => (settled = true));
    // Control is back with the VMM at once; more work arrives with a second kick.
    driver.makeAvailable(2);
    driver.makeAvailable(3);
    driver.makeAvailable(4);
    driver.makeAvailable(5);
    const second = device.queueNotify(0);
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(settled).toBe(false);
    expect(device.busy).toBe(true);
    expect(driver.usedIdx()).toBe(0);
    expect(driver.interrupts).toEqual([]);
    release();
    await Promise.all([first, second]);
    expect(driver.usedIdx()).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((s) => driver.usedEntry(s).id)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(driver.interrupts).toEqual(['vring', 'vring', 'vring']);
    expect(decodeResponse(memory.read(0x9000, driver.usedEntry(1).len))).toEqual({ type: 'Attestation', document: unhex('d0c0de') });
    const pcr = decodeResponse(memory.read(0x9000 + 0x6000, driver.usedEntry(5).len));
    expect(pcr).toEqual({ type: 'DescribePCR', lock: false, data: sha384(new Uint8Array(48), unhex('010203')) });
  });

  it('reset() while a request is with the NSM abandons it: nothing is written afterwards', async () => {
    const { factory, release } = gatedAttester();
    const { driver, memory, device } = setup({ attester: factory });
    const pending = driver.ioctlRaw(unhex('a16b4174746573746174696f6ea0'));
    await Promise.resolve();
    expect(device.busy).toBe(true);
    const before = memory.copy();
    device.reset();
    expect(device.status).toBe(0);
    release();
    const r = await pending;
    expect(r.rc).toBe(ETIMEDOUT);
    expect(memory.changedSince(before)).toEqual([]);
  });
});

describe('chains other than the Linux driver\'s', () => {
  const describeNsm = unhex('6b44657363726962654e534d');

  it('serves a request split over several descriptors and a response buffer in pieces', async () => {
    const { driver, memory, nsm } = setup({ queueMaxSize: 8 });
    const req = unhex('a169457874656e64504352a265696e64657814646461746143aabbcc');
    memory.write(0x8000, req.subarray(0, 5));
    memory.write(0x8100, req.subarray(5, 6));
    memory.write(0x8200, req.subarray(6));
    driver.setDescriptor(driver.desc, 0, { addr: 0x8000, len: 5, flags: F_NEXT, next: 3 });
    driver.setDescriptor(driver.desc, 3, { addr: 0x8100, len: 1, flags: F_NEXT, next: 6 });
    driver.setDescriptor(driver.desc, 6, { addr: 0x8200, len: req.length - 6, flags: 0, next: 0 });
    driver.setDescriptor(driver.desc, 1, { addr: 0x9000, len: 10, flags: F_WRITE | F_NEXT, next: 2 });
    driver.setDescriptor(driver.desc, 2, { addr: 0xa000, len: NSM_RESPONSE_MAX_SIZE - 10, flags: F_WRITE, next: 0 });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await driver.notify();
    const { len } = driver.usedEntry(1);
    const response = new Uint8Array([...memory.read(0x9000, 10), ...memory.read(0xa000, len - 10)]);
    expect(decodeResponse(response)).toEqual({ type: 'ExtendPCR', data: sha384(new Uint8Array(48), unhex('aabbcc')) });
    expect((await nsm.describePcr(20)).data).toEqual(sha384(new Uint8Array(48), unhex('aabbcc')));
  });

  it('serves indirect descriptor tables when INDIRECT_DESC is negotiated', async () => {
    const { driver, memory } = setup({ queueMaxSize: 8 });
    memory.write(0x8000, describeNsm);
    const table = 0xc000;
    driver.setDescriptor(table, 0, { addr: 0x8000, len: 4, flags: F_NEXT, next: 1 });
    driver.setDescriptor(table, 1, { addr: 0x8004, len: describeNsm.length - 4, flags: 0, next: 0 });
    const respTable = 0xc100;
    driver.setDescriptor(respTable, 0, { addr: 0x9000, len: 0x1000, flags: F_WRITE | F_NEXT, next: 1 });
    driver.setDescriptor(respTable, 1, { addr: 0xa000, len: 0x2000, flags: F_WRITE, next: 0 });
    driver.setDescriptor(driver.desc, 0, { addr: table, len: 32, flags: F_INDIRECT, next: 0 });
    driver.setDescriptor(driver.desc, 1, { addr: respTable, len: 32, flags: F_INDIRECT, next: 0 });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await driver.notify();
    const resp = decodeResponse(memory.read(0x9000, driver.usedEntry(1).len));
    expect(resp.type).toBe('DescribeNSM');
  });

  it('a single chain with request and response parts is refused by default (as QEMU) and served when enabled', async () => {
    for (const acceptSingleChain of [false, true]) {
      const { driver, memory, device } = setup({ queueMaxSize: 8, acceptSingleChain });
      memory.write(0x8000, describeNsm);
      driver.setDescriptor(driver.desc, 0, { addr: 0x8000, len: describeNsm.length, flags: F_NEXT, next: 1 });
      driver.setDescriptor(driver.desc, 1, { addr: 0x9000, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
      driver.makeAvailable(0);
      await driver.notify();
      if (!acceptSingleChain) {
        expect(device.status & 0x40).toBe(0x40);
        expect(device.transportError?.kind).toBe('request-direction');
        continue;
      }
      expect(driver.usedIdx()).toBe(1);
      const used = driver.usedEntry(0);
      expect(used.id).toBe(0);
      expect(decodeResponse(memory.read(0x9000, used.len)).type).toBe('DescribeNSM');
      expect(driver.interrupts).toEqual(['vring']);
    }
  });
});

describe('the VMM\'s own callback failing', () => {
  it('an interrupt callback that throws rejects queueNotify with its error; the device stays consistent', async () => {
    const device = new VirtioNsmDevice(new NsmDevice(nsmOptions()));
    const memory = TestMemory.flat(0x20000);
    const driver = new LinuxNsmDriver(device, memory, { ringBase: RING, msgBase: MSG });
    device.ackFeatures(FEATURE_VERSION_1);
    const boom = new Error('irq controller gone');
    let fail = true;
    device.activate({
      memory: memory.forDevice(),
      queues: [{ size: 2, descTable: BigInt(driver.desc), availRing: BigInt(driver.avail), usedRing: BigInt(driver.used) }],
      interrupt: () => {
        if (fail) throw boom;
      },
    });
    const req = unhex('6b44657363726962654e534d');
    memory.write(0x8000, req);
    driver.setDescriptor(driver.desc, 0, { addr: 0x8000, len: req.length, flags: 0, next: 0 });
    driver.setDescriptor(driver.desc, 1, { addr: 0x9000, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await expect(device.queueNotify(0)).rejects.toBe(boom);
    expect(driver.usedIdx()).toBe(2);
    expect(device.status & 0x40).toBe(0);
    fail = false;
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await device.queueNotify(0);
    expect(driver.usedIdx()).toBe(4);
  });
});
