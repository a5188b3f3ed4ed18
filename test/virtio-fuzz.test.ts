// Property: whatever a guest puts in its descriptor table and available ring, the device never
// throws or rejects, only ever writes into the used ring and into buffers the guest marked
// device-writable, and either completes what it consumed or ends in DEVICE_NEEDS_RESET having
// written nothing for the faulty request.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NsmDevice } from '../src/index.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { unhex } from './helpers/hex.js';
import { FEATURE_INDIRECT, F_NEXT, F_WRITE, LinuxNsmDriver, TestMemory } from './helpers/virtqueue-driver.js';

const MEM = 0x10000;
const QUEUE = 8;
const requests = [unhex('6b44657363726962654e534d'), unhex('a16b4465736372696265504352a165696e64657811'), unhex('6947657452616e646f6d')];

const descriptor = fc.record({
  addr: fc.oneof<fc.Arbitrary<number>[]>(
    fc.constantFrom(0x4000, 0x4100, 0x4200), // valid requests live here
    fc.constantFrom(0x6000, 0x9000, 0xc000), // room for 0x3000-byte responses
    fc.integer({ min: 0, max: MEM + 0x100 }),
    fc.constant(2 ** 40),
  ),
  len: fc.oneof(fc.constantFrom(0x3000, 12, 21, 10), fc.integer({ min: 0, max: 0x4000 })),
  flags: fc.oneof(fc.constantFrom(0, F_WRITE, F_NEXT, F_WRITE | F_NEXT), fc.nat(7)),
  next: fc.oneof(fc.nat(QUEUE - 1), fc.nat(20)),
});

describe('random descriptor tables and available rings', () => {
  it('never throw, never write outside the used ring and device-writable buffers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: QUEUE / 2 }),
        fc.array(fc.record({ slot: fc.nat(QUEUE - 1), with: descriptor, field: fc.constantFrom('addr', 'len', 'flags', 'next', 'all') }), { maxLength: 3 }),
        fc.array(fc.record({ at: fc.nat(QUEUE - 1), head: fc.nat(12) }), { maxLength: 2 }),
        fc.boolean(),
        async (pairs, mutations, headChanges, single) => {
          // Start from well-formed pairs (request k at slot 2k, its response at 2k+1), then break a few things.
          const table: Array<{ addr: number; len: number; flags: number; next: number }> = [];
          for (let k = 0; k < QUEUE / 2; k++) {
            table.push({ addr: 0x4000 + 0x100 * (k % 3), len: requests[k % 3]!.length, flags: 0, next: 0 });
            table.push({ addr: [0x6000, 0x9000, 0xc000][k % 3]!, len: 0x3000, flags: F_WRITE, next: 0 });
          }
          for (const m of mutations) {
            table[m.slot] = m.field === 'all' ? m.with : { ...table[m.slot]!, [m.field]: m.with[m.field] };
          }
          const heads = Array.from({ length: 2 * pairs }, (_, i) => i);
          for (const c of headChanges) if (c.at < heads.length) heads[c.at] = c.head;
          const device = new VirtioNsmDevice(new NsmDevice({ seed: '01', attester: recordingAttester() }), {
            queueMaxSize: QUEUE,
            acceptSingleChain: single,
          });
          const memory = TestMemory.flat(MEM);
          const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x8000 });
          driver.probe({ without: FEATURE_INDIRECT });
          requests.forEach((r, i) => memory.write(0x4000 + 0x100 * i, r));
          table.forEach((d, i) => driver.setDescriptor(driver.desc, i, d));
          for (const h of heads) driver.makeAvailable(h);

          const before = memory.copy();
          await device.queueNotify(0); // must not reject
          const writable = table.filter((d) => d.flags & F_WRITE).map((d) => [d.addr, d.addr + d.len] as const);
          for (const [start, end] of memory.changedSince(before)) {
            const inUsedRing = start >= driver.used && end <= driver.ringEnd;
            const inWritable = writable.some(([a, b]) => start >= a && end <= b);
            expect(inUsedRing || inWritable, `wrote [0x${start.toString(16)}, 0x${end.toString(16)})`).toBe(true);
          }
          // Either every available head was consumed and answered, or the device stopped on a fault.
          const faulted = (device.status & 0x40) !== 0;
          expect(faulted).toBe(device.transportError !== null);
          // Two used entries per pair, one per single chain: never more than the heads consumed.
          if (!faulted) expect(driver.usedIdx()).toBeGreaterThan(0);
          expect(driver.usedIdx()).toBeLessThanOrEqual(heads.length);
          if (mutations.length === 0 && headChanges.length === 0) expect(driver.usedIdx()).toBe(heads.length);
          expect(driver.interrupts.filter((k) => k === 'config').length).toBe(faulted ? 1 : 0);
        },
      ),
      { numRuns: 400 },
    );
  });
});
