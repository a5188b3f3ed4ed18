// Snapshot in the middle of a session, restore into a new device (as after a live migration:
// guest memory and the driver state travel too), and show the two behave identically.
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeResponse, type AttesterFactory } from '../src/index.js';
import { VirtioNsmDevice, VirtioSnapshotError, VirtioStateError } from '../src/virtio/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { ascii, hex, unhex } from './helpers/hex.js';
import { LinuxNsmDriver, TestMemory } from './helpers/virtqueue-driver.js';

const bootPcr = (b: number) => new Uint8Array(48).fill(b);

function session(seed: string | undefined, attester: AttesterFactory = recordingAttester()) {
  const nsm = new NsmDevice({ ...(seed ? { seed } : {}), pcrs: { 0: bootPcr(0xa0), 4: bootPcr(0xa4), 20: bootPcr(0xb4) }, attester });
  const device = new VirtioNsmDevice(nsm, { caReference: 'ca-dir:/etc/nsm-test-ca' });
  const memory = TestMemory.flat(0x20000);
  const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x10000 });
  driver.probe();
  return { nsm, device, memory, driver };
}

const extend = (index: number, data: string) => unhex(`a169${ascii('ExtendPCR')}a265${ascii('index')}${index.toString(16).padStart(2, '0')}64${ascii('data')}4${data.length / 2}${data}`);
const lockPcr = (index: number) => unhex(`a167${ascii('LockPCR')}a165${ascii('index')}${index.toString(16).padStart(2, '0')}`);
const describePcr = (index: number) => unhex(`a16b${ascii('DescribePCR')}a165${ascii('index')}${index.toString(16).padStart(2, '0')}`);
const getRandom = unhex(`69${ascii('GetRandom')}`);
const describeNsm = unhex(`6b${ascii('DescribeNSM')}`);

/** The requests after the snapshot point: their answers must match on both devices. */
const continuation = [
  ...Array.from({ length: 32 }, (_, i) => describePcr(i)),
  getRandom,
  extend(0x11, '0a0b'),
  lockPcr(0x12),
  extend(0x12, '01'),
  getRandom,
  describeNsm,
  unhex(`a16b${ascii('Attestation')}a0`),
];

async function run(driver: LinuxNsmDriver, requests: Uint8Array[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of requests) {
    const t = await driver.ioctlRaw(r);
    expect(t.rc).toBe(0);
    out.push(hex(t.response!));
  }
  return out;
}

describe('snapshot and restore', () => {
  it('a restored device continues exactly like the original (PCRs, locks, random stream, next responses)', async () => {
    const a = session('5eed');
    await run(a.driver, [extend(0x10, 'aa'), lockPcr(0x10), extend(0x11, 'bb'), getRandom, getRandom, extend(0x14, 'cc')]);
    await a.device.drain();
    const snap = a.device.snapshot();

    // Migrate: copy guest memory and the guest driver, restore the device, reattach.
    const memory = new TestMemory(a.memory.regions.map((r) => ({ base: r.base, bytes: r.bytes.slice() })));
    const b = VirtioNsmDevice.restore(snap, { attester: recordingAttester() });
    const driverB = a.driver.fork(memory, b);
    driverB.reattach(b);

    expect(b.nsm.moduleId).toBe(a.nsm.moduleId);
    expect(b.driverFeatures).toBe(a.device.driverFeatures);
    expect(b.status).toBe(a.device.status);
    expect(b.caReference).toBe('ca-dir:/etc/nsm-test-ca');
    expect(hex(b.snapshot())).toBe(hex(snap));

    const fromA = await run(a.driver, continuation);
    const fromB = await run(driverB, continuation);
    expect(fromB).toEqual(fromA);
    // The answers mean what the session did: PCR 16 locked, 17 extended, boot value of 20 extended.
    expect(decodeResponse(unhex(fromA[16]!))).toMatchObject({ type: 'DescribePCR', lock: true });
    expect(decodeResponse(unhex(fromA[20]!))).toMatchObject({ type: 'DescribePCR', lock: false });
    expect(decodeResponse(unhex(fromA[20]!))).not.toEqual({ type: 'DescribePCR', lock: false, data: bootPcr(0xb4) });
    expect(decodeResponse(unhex(fromA[4]!))).toEqual({ type: 'DescribePCR', lock: true, data: bootPcr(0xa4) });
  });

  it('reset of a restored device returns to the original boot PCRs and random stream', async () => {
    const a = session('5eed');
    const fresh = await run(a.driver, [describePcr(20), getRandom]);
    await run(a.driver, [extend(0x14, 'ff'), lockPcr(0x15), getRandom]);
    const b = VirtioNsmDevice.restore(a.device.snapshot(), { attester: recordingAttester() });
    b.reset();
    const memory = TestMemory.flat(0x20000);
    const driver = new LinuxNsmDriver(b, memory, { ringBase: 0x1000, msgBase: 0x10000 });
    driver.probe();
    expect(await run(driver, [describePcr(20), getRandom])).toEqual(fresh);
    expect((await b.nsm.describeNsm()).lockedPcrs).toEqual([...Array(16).keys()]);
  });

  it('an unseeded device keeps its module id and state', async () => {
    const a = session(undefined);
    await run(a.driver, [extend(0x1f, '77'), lockPcr(0x1f)]);
    const b = VirtioNsmDevice.restore(a.device.snapshot());
    expect(b.nsm.moduleId).toBe(a.nsm.moduleId);
    expect(b.nsm.exportState()).toEqual(a.nsm.exportState());
  });

  it('uses the clock and attester the caller gives, and exposes the CA reference beforehand', async () => {
    const a = session('5eed');
    const snap = a.device.snapshot();
    expect(VirtioNsmDevice.inspectSnapshot(snap)).toEqual({
      moduleId: a.nsm.moduleId,
      caReference: 'ca-dir:/etc/nsm-test-ca',
      activated: true,
      needsReset: false,
    });
    const seen: number[] = [];
    const attester: AttesterFactory = ({ clock }) => ({ attest: async () => (seen.push(clock()), new Uint8Array([0xd0, 0xc0, 0x99])) });
    const b = VirtioNsmDevice.restore(snap, { clock: () => 42, attester });
    expect(hex(await b.nsm.attestation())).toBe('d0c099');
    expect(seen).toEqual([42]);
  });

  it('refuses a snapshot while a request is in flight; drain() then allows it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = session('5eed', () => ({ attest: async () => (await gate, new Uint8Array([1])) }));
    const pending = a.driver.ioctlRaw(unhex(`a16b${ascii('Attestation')}a0`));
    await Promise.resolve();
    expect(a.device.busy).toBe(true);
    expect(() => a.device.snapshot()).toThrow(VirtioStateError);
    const drained = a.device.drain();
    release();
    await drained;
    expect(a.device.busy).toBe(false);
    expect(a.device.snapshot()).toBeInstanceOf(Uint8Array);
    expect((await pending).rc).toBe(0);
  });

  it('a device in DEVICE_NEEDS_RESET stays broken after restore until reset', async () => {
    const a = session('5eed');
    a.memory.write(0x8000, describeNsm);
    a.driver.setDescriptor(a.driver.desc, 0, { addr: 0x8000, len: describeNsm.length, flags: 0, next: 0 });
    a.driver.makeAvailable(0); // a request with no response chain
    await a.device.queueNotify(0);
    expect(a.device.status & 0x40).toBe(0x40);
    const b = VirtioNsmDevice.restore(a.device.snapshot());
    expect(b.status & 0x40).toBe(0x40);
    expect(b.transportError?.kind).toBe('missing-response');
    expect(VirtioNsmDevice.inspectSnapshot(a.device.snapshot()).needsReset).toBe(true);
  });

  it('a snapshot before activation restores an inactive device that activates normally', async () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '01' }));
    device.ackFeatures(1n << 32n);
    const b = VirtioNsmDevice.restore(device.snapshot());
    expect(b.driverFeatures).toBe(1n << 32n);
    expect(VirtioNsmDevice.inspectSnapshot(device.snapshot()).activated).toBe(false);
    const memory = TestMemory.flat(0x20000);
    const driver = new LinuxNsmDriver(b, memory, { ringBase: 0x1000, msgBase: 0x10000 });
    b.writeStatus(0); // a driver starts by resetting
    driver.probe();
    expect((await driver.ioctlRaw(describeNsm)).rc).toBe(0);
  });

  it('rejects what is not a snapshot with VirtioSnapshotError', async () => {
    const a = session('5eed');
    const snap = a.device.snapshot();
    expect(() => VirtioNsmDevice.restore(unhex('ff'))).toThrow(VirtioSnapshotError);
    expect(() => VirtioNsmDevice.restore(unhex('a0'))).toThrow(VirtioSnapshotError);
    expect(() => VirtioNsmDevice.restore(snap.subarray(0, snap.length - 1))).toThrow(VirtioSnapshotError);
    // Version 2 (the byte after the text key "version").
    const at = Buffer.from(snap).indexOf(Buffer.from(`67${ascii('version')}01`, 'hex'));
    expect(at).toBeGreaterThan(0);
    const v2 = snap.slice();
    v2[at + 8] = 0x02;
    expect(() => VirtioNsmDevice.restore(v2)).toThrow(/version 2/);
  });

  it('a restored device needs the same queue if one is given', () => {
    const a = session('5eed');
    const b = VirtioNsmDevice.restore(a.device.snapshot());
    expect(() =>
      b.activate({
        memory: new Uint8Array(0x20000),
        queues: [{ size: 2, descTable: 0x2000n, availRing: 0x2100n, usedRing: 0x3000n }],
        interrupt: () => {},
      }),
    ).toThrow(RangeError);
  });
});
