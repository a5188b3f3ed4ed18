// Guest memory given as several regions (like a VMM's memory map): rings and buffers placed
// across region boundaries, above 4 GiB, and next to holes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/index.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { hex, unhex } from './helpers/hex.js';
import { F_WRITE, LinuxNsmDriver, NSM_RESPONSE_MAX_SIZE, TestMemory } from './helpers/virtqueue-driver.js';

const requests = readFileSync(new URL('../vectors/qemu/qemu-10.0.2-virtio-nsm-raw.tsv', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => unhex(l.split('\t')[0]!));

const options = () => ({ seed: '3e', moduleId: 'i-0aaaaaaaaaaaaaaaa-enc0bbbbbbbbbbbbbbb', attester: recordingAttester() });

async function replay(memory: TestMemory, layout: { ringBase: number; msgBase: number; ringAlign?: number }, queueMaxSize = 2) {
  const device = new VirtioNsmDevice(new NsmDevice(options()), { queueMaxSize });
  const driver = new LinuxNsmDriver(device, memory, layout);
  driver.probe();
  const twin = new NsmDevice(options());
  for (const req of requests) {
    const r = await driver.ioctlRaw(req);
    expect(r.rc).toBe(0);
    expect(hex(r.response!)).toBe(hex(await twin.handleRaw(req)));
  }
  expect(device.status & 0x40).toBe(0);
  return { device, driver };
}

describe('guest memory as regions', () => {
  it('request, response and used ring straddling boundaries between adjacent regions (given out of order)', async () => {
    const memory = new TestMemory([
      { base: 0x104000, bytes: new Uint8Array(0x4000) },
      { base: 0x0, bytes: new Uint8Array(0x4000) },
      { base: 0x102000, bytes: new Uint8Array(0x1000) },
      { base: 0x103000, bytes: new Uint8Array(0x1000) },
      { base: 0x100000, bytes: new Uint8Array(0x2000) },
    ]);
    // A ring of 8 with 64-byte alignment at 0x101f00: its used ring crosses 0x102000.
    // nsm_msg at 0x102fec: request bytes from 0x102ff0 cross 0x103000 (requests over 16
    // bytes), response bytes from 0x103ff4 cross 0x104000 (responses over 12 bytes).
    const { driver } = await replay(memory, { ringBase: 0x101f00, msgBase: 0x102fec, ringAlign: 64 }, 8);
    expect(driver.used).toBe(0x101fc0);
    expect(driver.ringEnd).toBeGreaterThan(0x102000);
    expect(driver.reqData).toBe(0x102ff0);
    expect(driver.respData).toBe(0x103ff4);
    expect(driver.respData + NSM_RESPONSE_MAX_SIZE).toBeGreaterThan(0x104000);
  });

  it('rings and buffers above 4 GiB', async () => {
    const base = 0x1_0000_0000;
    const memory = new TestMemory([
      { base: 0, bytes: new Uint8Array(0x1000) },
      { base, bytes: new Uint8Array(0x10000) },
    ]);
    await replay(memory, { ringBase: base + 0x1000, msgBase: base + 0x4000 });
  });

  it('one Uint8Array and the same memory as one region behave the same', async () => {
    const memory = TestMemory.flat(0x20000);
    const device = new VirtioNsmDevice(new NsmDevice(options()));
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x10000 });
    driver.probe({ asArray: true });
    const twin = new NsmDevice(options());
    for (const req of requests.slice(0, 5)) {
      expect(hex((await driver.ioctlRaw(req)).response!)).toBe(hex(await twin.handleRaw(req)));
    }
  });

  it('a response buffer running into a hole is a transport fault, and its backed part stays untouched', async () => {
    const memory = new TestMemory([
      { base: 0, bytes: new Uint8Array(0x10000) },
      { base: 0x11000, bytes: new Uint8Array(0x4000) }, // hole at [0x10000, 0x11000)
    ]);
    const device = new VirtioNsmDevice(new NsmDevice(options()));
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x4000 });
    driver.probe();
    const req = unhex('6b44657363726962654e534d');
    memory.write(0x8000, req);
    driver.setDescriptor(driver.desc, 0, { addr: 0x8000, len: req.length, flags: 0, next: 0 });
    driver.setDescriptor(driver.desc, 1, { addr: 0xe000, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    const before = memory.copy();
    await device.queueNotify(0);
    expect(device.transportError?.kind).toBe('buffer-address');
    expect(device.status & 0x40).toBe(0x40);
    expect(memory.changedSince(before)).toEqual([]);
  });

  it('a request buffer starting in a hole is a transport fault', async () => {
    const memory = new TestMemory([
      { base: 0, bytes: new Uint8Array(0x10000) },
      { base: 0x11000, bytes: new Uint8Array(0x4000) },
    ]);
    const device = new VirtioNsmDevice(new NsmDevice(options()));
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x4000 });
    driver.probe();
    driver.setDescriptor(driver.desc, 0, { addr: 0x10800, len: 0x1000, flags: 0, next: 0 });
    driver.setDescriptor(driver.desc, 1, { addr: 0x5000, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    await device.queueNotify(0);
    expect(device.transportError?.kind).toBe('buffer-address');
  });
});

describe('dirty tracking and memory replacement', () => {
  it('onWrite reports exactly the bytes the device changed, in order: response, used entries, used.idx', async () => {
    const memory = TestMemory.flat(0x10000);
    const device = new VirtioNsmDevice(new NsmDevice(options()));
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x4000 });
    driver.probe({ without: 1n << 29n });
    // Re-activate with an observer (probe activated without one).
    const writes: Array<[number, number]> = [];
    device.reset();
    driver.features = 1n << 32n;
    expect(device.ackFeatures(driver.features)).toBe(true);
    device.activate({
      memory: memory.forDevice(),
      queues: [{ size: 2, descTable: BigInt(driver.desc), availRing: BigInt(driver.avail), usedRing: BigInt(driver.used) }],
      interrupt: () => undefined,
      onWrite: (a, n) => writes.push([a, n]),
    });
    memory.write(driver.reqData, requests[0]!);
    driver.addBuf(driver.reqData, requests[0]!.length, false, 1);
    driver.addBuf(driver.respData, NSM_RESPONSE_MAX_SIZE, true, 2);
    const before = memory.copy();
    await device.queueNotify(0);
    const changed = memory.changedSince(before);
    const covered = (a: number) => writes.some(([w, n]) => a >= w && a < w + n);
    for (const [s, e] of changed) for (let a = s; a < e; a++) expect(covered(a)).toBe(true);
    expect(writes[0]![0]).toBe(driver.respData);
    expect(writes[writes.length - 1]).toEqual([driver.used + 2, 2]);
  });

  it('replaceMemory keeps serving the queue from new regions, and faults when a ring is no longer mapped', async () => {
    const memory = TestMemory.flat(0x10000);
    const device = new VirtioNsmDevice(new NsmDevice(options()));
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x4000 });
    driver.probe();
    expect((await driver.ioctlRaw(requests[0]!)).rc).toBe(0);
    // The same bytes, now described as two regions.
    const bytes = memory.regions[0]!.bytes;
    device.replaceMemory([
      { guestAddress: 0n, bytes: bytes.subarray(0, 0x3000) },
      { guestAddress: 0x3000n, bytes: bytes.subarray(0x3000) },
    ]);
    const twin = new NsmDevice(options());
    await twin.handleRaw(requests[0]!);
    const r = await driver.ioctlRaw(requests[1]!);
    expect(hex(r.response!)).toBe(hex(await twin.handleRaw(requests[1]!)));
    device.replaceMemory([{ guestAddress: 0x3000n, bytes: bytes.subarray(0x3000) }]);
    expect(device.status & 0x40).toBe(0x40);
    expect(device.transportError?.kind).toBe('ring-address');
  });
});
