// Transport faults (spec section 1.2, and the virtio split-ring rules): each one puts the device
// in DEVICE_NEEDS_RESET with one config interrupt, writes no byte of guest memory, throws
// nothing into the VMM, ignores further kicks, and a reset brings the device back.
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeResponse } from '../src/index.js';
import { VirtioNsmDevice, type TransportErrorKind } from '../src/virtio/index.js';
import { unhex } from './helpers/hex.js';
import {
  FEATURE_INDIRECT,
  F_INDIRECT,
  F_NEXT,
  F_WRITE,
  LinuxNsmDriver,
  NSM_RESPONSE_MAX_SIZE,
  TestMemory,
} from './helpers/virtqueue-driver.js';

const MEM = 0x20000;
const REQ = 0x8000;
const RESP = 0x9000;
const describeNsm = unhex('6b44657363726962654e534d');

function setup(options: { without?: bigint; queueMaxSize?: number } = {}) {
  const device = new VirtioNsmDevice(new NsmDevice({ seed: '0e' }), { queueMaxSize: options.queueMaxSize ?? 8 });
  const memory = TestMemory.flat(MEM);
  const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x10000 });
  driver.probe({ without: options.without ?? 0n });
  memory.write(REQ, describeNsm);
  return { device, memory, driver };
}

type Setup = ReturnType<typeof setup>;

/** Descriptors for a well-formed pair at slots 0 and 1. */
function goodPair(d: LinuxNsmDriver): void {
  d.setDescriptor(d.desc, 0, { addr: REQ, len: describeNsm.length, flags: 0, next: 0 });
  d.setDescriptor(d.desc, 1, { addr: RESP, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE, next: 0 });
}

async function expectFault(s: Setup, kind: TransportErrorKind, kick: () => void): Promise<void> {
  const { device, memory, driver } = s;
  kick();
  const before = memory.copy();
  await expect(device.queueNotify(0)).resolves.toBeUndefined();
  expect(device.status & 0x40).toBe(0x40);
  expect(device.transportError?.kind).toBe(kind);
  expect(driver.interrupts).toEqual(['config']);
  expect(memory.changedSince(before)).toEqual([]);
  // Broken until reset: kicks are ignored.
  await device.queueNotify(0);
  expect(driver.interrupts).toEqual(['config']);
  expect(memory.changedSince(before)).toEqual([]);
  // The guest resets the device and probes again: everything works.
  device.reset();
  expect(device.status).toBe(0);
  expect(device.transportError).toBeNull();
  const fresh = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x10000 });
  fresh.probe();
  const r = await fresh.ioctlRaw(describeNsm);
  expect(r.rc).toBe(0);
  expect(decodeResponse(r.response!).type).toBe('DescribeNSM');
}

describe('transport faults from QEMU\'s list', () => {
  it('zero-length request descriptor', async () => {
    const s = setup();
    await expectFault(s, 'zero-length-descriptor', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 0, { addr: REQ, len: 0, flags: 0, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('a request chain with no readable bytes (the response chain sent first)', async () => {
    const s = setup();
    await expectFault(s, 'zero-length-request', () => {
      goodPair(s.driver);
      s.driver.makeAvailable(1);
      s.driver.makeAvailable(0);
    });
  });

  it('no response chain after the request', async () => {
    const s = setup();
    await expectFault(s, 'missing-response', () => {
      goodPair(s.driver);
      s.driver.makeAvailable(0);
    });
  });

  it.each([0x2fff, 0x3001, 0x1000, 0x6000])('a response buffer of 0x%s bytes', async (len) => {
    const s = setup();
    await expectFault(s, 'response-size', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 1, { addr: RESP, len, flags: F_WRITE, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('a response buffer made of pieces that add up to the wrong size', async () => {
    const s = setup();
    await expectFault(s, 'response-size', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 1, { addr: RESP, len: 0x1000, flags: F_WRITE | F_NEXT, next: 2 });
      s.driver.setDescriptor(s.driver.desc, 2, { addr: RESP + 0x1000, len: 0x1000, flags: F_WRITE, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });
});

describe('descriptors outside guest memory', () => {
  const cases: Array<[string, number, bigint | number, number]> = [
    ['request past the end', 0, MEM + 0x100, 12],
    ['request straddling the end', 0, MEM - 4, 12],
    ['request at a 64-bit address', 0, 0xffff_ffff_ffff_f000n, 12],
    ['request at 2^53', 0, 1n << 53n, 12],
    ['response past the end', 1, MEM - 0x1000, NSM_RESPONSE_MAX_SIZE],
    ['response at a 64-bit address', 1, 0x8000_0000_0000_0000n, NSM_RESPONSE_MAX_SIZE],
  ];
  it.each(cases)('%s', async (_name, slot, addr, len) => {
    const s = setup();
    await expectFault(s, 'buffer-address', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, slot, { addr, len, flags: slot === 1 ? F_WRITE : 0, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });
});

describe('malformed chains', () => {
  it('a loop in the request chain', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-loop', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 0, { addr: REQ, len: 4, flags: F_NEXT, next: 2 });
      s.driver.setDescriptor(s.driver.desc, 2, { addr: REQ + 4, len: 4, flags: F_NEXT, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('a descriptor that points at itself in the response chain', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-loop', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 1, { addr: RESP, len: 0x100, flags: F_WRITE | F_NEXT, next: 1 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('a head index beyond the queue', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-index', () => {
      goodPair(s.driver);
      s.driver.makeAvailable(8);
      s.driver.makeAvailable(1);
    });
  });

  it('a next index beyond the queue', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-index', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 0, { addr: REQ, len: 4, flags: F_NEXT, next: 9 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('avail.idx moved further than the queue size', async () => {
    const s = setup();
    await expectFault(s, 'avail-index', () => {
      goodPair(s.driver);
      s.driver.setAvailIdx(9);
    });
  });

  it('wrong direction: a device-writable descriptor in the request chain', async () => {
    const s = setup();
    await expectFault(s, 'request-direction', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 0, { addr: REQ, len: describeNsm.length, flags: F_NEXT, next: 2 });
      s.driver.setDescriptor(s.driver.desc, 2, { addr: RESP + 0x4000, len: 16, flags: F_WRITE, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('wrong direction: a device-readable response chain', async () => {
    const s = setup();
    await expectFault(s, 'response-direction', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 1, { addr: RESP, len: NSM_RESPONSE_MAX_SIZE, flags: 0, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });

  it('a readable descriptor after a writable one', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-order', () => {
      goodPair(s.driver);
      s.driver.setDescriptor(s.driver.desc, 1, { addr: RESP, len: NSM_RESPONSE_MAX_SIZE, flags: F_WRITE | F_NEXT, next: 2 });
      s.driver.setDescriptor(s.driver.desc, 2, { addr: REQ, len: 4, flags: 0, next: 0 });
      s.driver.makeAvailable(0);
      s.driver.makeAvailable(1);
    });
  });
});

describe('indirect descriptors', () => {
  const TABLE = 0xc000;
  function indirectRequest(s: Setup, flags = F_INDIRECT, len = 16): void {
    goodPair(s.driver);
    s.driver.setDescriptor(TABLE, 0, { addr: REQ, len: describeNsm.length, flags: 0, next: 0 });
    s.driver.setDescriptor(s.driver.desc, 0, { addr: TABLE, len, flags, next: 2 });
    s.driver.makeAvailable(0);
    s.driver.makeAvailable(1);
  }

  it('INDIRECT without the feature negotiated', async () => {
    const s = setup({ without: FEATURE_INDIRECT });
    await expectFault(s, 'indirect-descriptor', () => indirectRequest(s));
  });

  it('INDIRECT together with NEXT', async () => {
    const s = setup();
    await expectFault(s, 'indirect-descriptor', () => indirectRequest(s, F_INDIRECT | F_NEXT));
  });

  it.each([0, 15, 24])('an indirect table of %i bytes', async (len) => {
    const s = setup();
    await expectFault(s, 'indirect-descriptor', () => indirectRequest(s, F_INDIRECT, len));
  });

  it('a nested indirect table', async () => {
    const s = setup();
    await expectFault(s, 'indirect-descriptor', () => {
      indirectRequest(s);
      s.driver.setDescriptor(TABLE, 0, { addr: TABLE + 0x100, len: 16, flags: F_INDIRECT, next: 0 });
    });
  });

  it('an indirect table outside guest memory', async () => {
    const s = setup();
    await expectFault(s, 'buffer-address', () => {
      indirectRequest(s);
      s.driver.setDescriptor(s.driver.desc, 0, { addr: MEM - 8, len: 16, flags: F_INDIRECT, next: 0 });
    });
  });

  it('a loop inside an indirect table', async () => {
    const s = setup();
    await expectFault(s, 'descriptor-loop', () => {
      indirectRequest(s, F_INDIRECT, 32);
      s.driver.setDescriptor(TABLE, 0, { addr: REQ, len: 4, flags: F_NEXT, next: 1 });
      s.driver.setDescriptor(TABLE, 1, { addr: REQ + 4, len: 4, flags: F_NEXT, next: 0 });
    });
  });
});

describe('queue configuration programmed by the guest', () => {
  const cases: Array<[string, TransportErrorKind, { size: number; descTable: bigint; availRing: bigint; usedRing: bigint }]> = [
    ['size not a power of two', 'queue-config', { size: 3, descTable: 0x1000n, availRing: 0x1100n, usedRing: 0x2000n }],
    ['size above the maximum', 'queue-config', { size: 4, descTable: 0x1000n, availRing: 0x1100n, usedRing: 0x2000n }],
    ['size zero', 'queue-config', { size: 0, descTable: 0x1000n, availRing: 0x1100n, usedRing: 0x2000n }],
    ['used ring past the end of memory', 'ring-address', { size: 2, descTable: 0x1000n, availRing: 0x1100n, usedRing: BigInt(MEM - 8) }],
    ['descriptor table at a huge address', 'ring-address', { size: 2, descTable: 1n << 60n, availRing: 0x1100n, usedRing: 0x2000n }],
  ];
  it.each(cases)('%s: NEEDS_RESET at activation, nothing thrown', (_name, kind, queue) => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '0e' }));
    const memory = new Uint8Array(MEM);
    const before = memory.slice();
    const interrupts: string[] = [];
    expect(() => device.activate({ memory, queues: [queue], interrupt: (k) => interrupts.push(k) })).not.toThrow();
    expect(device.status & 0x40).toBe(0x40);
    expect(device.transportError?.kind).toBe(kind);
    expect(interrupts).toEqual(['config']);
    return device.queueNotify(0).then(() => {
      expect(Buffer.compare(memory, before)).toBe(0);
      expect(interrupts).toEqual(['config']);
    });
  });

  it('throws only for VMM mistakes: bad memory map or argument shapes', () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: '0e' }));
    const q = [{ size: 2, descTable: 0n, availRing: 0x20n, usedRing: 0x40n }];
    const bytes = new Uint8Array(0x1000);
    expect(() => device.activate({ memory: [{ guestAddress: 0n, bytes }, { guestAddress: 0x800n, bytes }], queues: q, interrupt: () => {} })).toThrow(RangeError);
    expect(() => device.activate({ memory: bytes, queues: [], interrupt: () => {} })).toThrow(TypeError);
    expect(() => device.activate({ memory: bytes, queues: q, interrupt: 5 as never })).toThrow(TypeError);
    expect(() => device.activate({ memory: 'ram' as never, queues: q, interrupt: () => {} })).toThrow(TypeError);
    expect(device.status).toBe(0);
  });
});

describe('a fault after a good request in the same kick', () => {
  it('the good one completes; the bad one writes nothing', async () => {
    const s = setup();
    const { driver, memory, device } = s;
    goodPair(driver);
    driver.makeAvailable(0);
    driver.makeAvailable(1);
    driver.setDescriptor(driver.desc, 2, { addr: REQ, len: describeNsm.length, flags: 0, next: 0 });
    driver.makeAvailable(2); // no response chain follows
    const before = memory.copy();
    await device.queueNotify(0);
    expect(driver.usedIdx()).toBe(2);
    expect(driver.interrupts).toEqual(['vring', 'config']);
    expect(device.transportError?.kind).toBe('missing-response');
    const used = driver.usedEntry(1);
    // Only the response buffer and the used ring changed (used entries, idx, avail_event).
    for (const [start, end] of memory.changedSince(before)) {
      const inResponse = start >= RESP && end <= RESP + used.len;
      const inUsedRing = start >= driver.used && end <= driver.ringEnd;
      expect(inResponse || inUsedRing, `changed [0x${start.toString(16)}, 0x${end.toString(16)})`).toBe(true);
    }
  });
});
