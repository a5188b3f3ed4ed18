// PCR semantics, boot configuration, reset and seeding (spec section 5), via the typed API.
import { sha384 } from '@noble/hashes/sha2.js';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inspectDocument } from '../src/inspector/report.js';
import { NsmDevice, NsmError } from '../src/index.js';
import { hex, unhex } from './helpers/hex.js';

const nodeSha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

describe('PCR bank', () => {
  it("boot: 'bare' powers on with 32 zero registers, 0-15 locked and 16-31 unlocked", async () => {
    const d = new NsmDevice({ seed: '02', boot: 'bare' });
    for (let i = 0; i < 32; i++) {
      const { lock, data } = await d.describePcr(i);
      expect(data).toEqual(new Uint8Array(48));
      expect(lock).toBe(i < 16);
    }
    expect((await d.describeNsm()).lockedPcrs).toEqual([...Array(16).keys()]);
  });

  it('extends as SHA-384(old || data) for data of any length, including empty (checked with node:crypto)', async () => {
    const d = new NsmDevice({ seed: '02' });
    let expected = new Uint8Array(48);
    for (const len of [0, 1, 47, 48, 49, 1000, 4000]) {
      const data = new Uint8Array(len).map((_, i) => (i * 7 + len) & 0xff);
      expected = nodeSha384(expected, data);
      expect(await d.extendPcr(20, data)).toEqual(expected);
    }
    expect((await d.describePcr(20)).data).toEqual(expected);
  });

  it.each([
    ['i-07e25f3bada361dec', '7021a47677bff47b7623ed573cb71326925d51773cb4f5af33f346d9ffceb3d6e2c4aa85f1e2b352e4b295ff22d16485'],
    ['i-0c68ec9d2c7f882e8', '1aa8c08cad197f1fe57bd19eb8b562396d27416fa4a6cecb875e197c835242605c6eb96d746dab9e97c1926249d08f4a'],
  ])('reproduces real PCR4 (aws-real-doc-1, -8): one extend of %s from zero', async (id, pcr4) => {
    const d = new NsmDevice({ seed: '02' });
    expect(hex(await d.extendPcr(16, new TextEncoder().encode(id)))).toBe(pcr4);
  });

  it('LockPCR is one-way; a locked PCR refuses extend and a second lock with ReadOnlyIndex', async () => {
    const d = new NsmDevice({ seed: '02' });
    await d.lockPcr(17);
    expect((await d.describePcr(17)).lock).toBe(true);
    await expect(d.extendPcr(17, unhex('00'))).rejects.toEqual(new NsmError('ReadOnlyIndex'));
    await expect(d.lockPcr(17)).rejects.toEqual(new NsmError('ReadOnlyIndex'));
    await expect(d.lockPcr(3)).rejects.toEqual(new NsmError('ReadOnlyIndex'));
  });

  it('LockPCRs locks [0, range), accepts already-locked ranges and 0, refuses range > 32', async () => {
    const d = new NsmDevice({ seed: '02' });
    await d.lockPcrs(0);
    expect((await d.describeNsm()).lockedPcrs.length).toBe(16);
    await d.lockPcrs(10);
    await d.lockPcrs(20);
    expect((await d.describeNsm()).lockedPcrs).toEqual([...Array(20).keys()]);
    await d.lockPcr(25);
    await d.lockPcrs(32);
    expect((await d.describeNsm()).lockedPcrs).toEqual([...Array(32).keys()]);
    await expect(d.lockPcrs(33)).rejects.toEqual(new NsmError('InvalidIndex'));
  });

  it('out-of-range indices get InvalidIndex; non-u16 values through the typed API get InvalidOperation', async () => {
    const d = new NsmDevice({ seed: '02' });
    await expect(d.describePcr(32)).rejects.toEqual(new NsmError('InvalidIndex'));
    await expect(d.extendPcr(300, unhex('00'))).rejects.toEqual(new NsmError('InvalidIndex'));
    await expect(d.lockPcr(0xffff)).rejects.toEqual(new NsmError('InvalidIndex'));
    await expect(d.describePcr(-1)).rejects.toEqual(new NsmError('InvalidOperation'));
    await expect(d.describePcr(1.5)).rejects.toEqual(new NsmError('InvalidOperation'));
    await expect(d.lockPcrs(0x10000)).rejects.toEqual(new NsmError('InvalidOperation'));
    await expect(d.extendPcr(16, 'abc' as unknown as Uint8Array)).rejects.toEqual(new NsmError('InvalidOperation'));
  });
});

describe('boot configuration', () => {
  const v = (b: number) => new Uint8Array(48).fill(b);

  it('sets PCR values before the boot lock, for locked and unlocked PCRs alike', async () => {
    const d = new NsmDevice({ seed: '02', pcrs: new Map([[0, v(1)], [4, v(4)], [20, v(20)]]) });
    expect(await d.describePcr(0)).toEqual({ lock: true, data: v(1) });
    expect(await d.describePcr(4)).toEqual({ lock: true, data: v(4) });
    expect(await d.describePcr(20)).toEqual({ lock: false, data: v(20) });
    expect(await d.extendPcr(20, unhex('01'))).toEqual(sha384(new Uint8Array([...v(20), 1])));
  });

  it('accepts a plain object of boot values too', async () => {
    const d = new NsmDevice({ seed: '02', pcrs: { 8: v(8) } });
    expect((await d.describePcr(8)).data).toEqual(v(8));
  });

  it('rejects bad boot values when the device is made', () => {
    expect(() => new NsmDevice({ pcrs: new Map([[32, v(0)]]) })).toThrow(/not in \[0, 32\)/);
    expect(() => new NsmDevice({ pcrs: new Map([[1, new Uint8Array(32)]]) })).toThrow(/48 bytes/);
    expect(() => new NsmDevice({ seed: 'xyz' })).toThrow(/hex/);
    expect(() => new NsmDevice({ moduleId: '' })).toThrow(/non-empty/);
  });

  it('makes module ids shaped like real ones: i-<17 hex>-enc<16 hex>', () => {
    for (let i = 0; i < 20; i++) {
      expect(new NsmDevice().moduleId).toMatch(/^i-0[0-9a-f]{16}-enc01[0-9a-f]{14}$/);
      expect(new NsmDevice({ seed: [i] .map((x) => x.toString(16).padStart(2, '0')).join('') }).moduleId).toMatch(/^i-[0-9a-f]{17}-enc01[0-9a-f]{14}$/);
    }
    expect(new NsmDevice({ instanceId: 'i-07e25f3bada361dec' }).moduleId).toMatch(/^i-07e25f3bada361dec-enc[0-9a-f]{16}$/);
    expect(new NsmDevice({ moduleId: 'i-x-enc1' }).moduleId).toBe('i-x-enc1');
  });

  it('the enclave id starts with the launch time in milliseconds, 12-24 s before the device came up, as real ones do', async () => {
    // aws-real-doc-1: ...-enc0181d3dff86da785 in a document of 2022-07-06T14:18:22.484Z, whose
    // first six bytes are 2022-07-06T14:17:59.661Z: the enclave started 23 s before attesting.
    expect(new Date(0x0181d3dff86d).toISOString()).toBe('2022-07-06T14:17:59.661Z');
    const boot = 0x0193685e7fee;
    const leads = new Set<number>();
    for (const seed of [undefined, '01', '02', 'c0ffee']) {
      for (let i = 0; i < (seed ? 1 : 20); i++) {
        const d = new NsmDevice({ clock: () => boot, ...(seed ? { seed } : {}) });
        const launched = parseInt(/-enc([0-9a-f]{12})[0-9a-f]{4}$/.exec(d.moduleId)![1]!, 16);
        expect(boot - launched).toBeGreaterThanOrEqual(12_000);
        expect(boot - launched).toBeLessThan(24_000);
        leads.add(boot - launched);
      }
    }
    expect(leads.size).toBeGreaterThan(10);
  });

  it("the first document's leaf starts after the launch in module_id, 7 s to 200 s later as in real documents", async () => {
    const clock = () => Date.parse('2026-03-01T12:00:00Z');
    for (const seed of ['01', '02', '03']) {
      const d = new NsmDevice({ seed, clock });
      const r = await inspectDocument(await d.attestation(), { roots: [] });
      const launched = parseInt(/-enc([0-9a-f]{12})/.exec(r.moduleId!)![1]!, 16);
      const leaf = r.chain.at(-1)!;
      expect(leaf.notBefore - launched).toBeGreaterThanOrEqual(7_000);
      expect(leaf.notBefore - launched).toBeLessThanOrEqual(200_000);
      expect(launched).toBeLessThan(r.timestamp!);
    }
  });
});

describe('seed, randomness and reset', () => {
  it('GetRandom returns 256 bytes, different every call', async () => {
    const d = new NsmDevice();
    const seen = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const r = await d.getRandom();
      expect(r.length).toBe(256);
      seen.add(hex(r));
    }
    expect(seen.size).toBe(16);
  });

  it('a seed makes module_id and GetRandom reproducible; another seed changes both', async () => {
    // module_id also carries the boot time, so the three boot at the same instant.
    const clock = () => 1_767_225_600_000;
    const a = new NsmDevice({ seed: 'c0ffee', clock });
    const b = new NsmDevice({ seed: 'c0ffee', clock });
    const c = new NsmDevice({ seed: 'c0ffef', clock });
    expect(a.moduleId).toBe(b.moduleId);
    expect(a.moduleId).not.toBe(c.moduleId);
    const ra = [await a.getRandom(), await a.getRandom()];
    const rb = [await b.getRandom(), await b.getRandom()];
    expect(ra).toEqual(rb);
    expect(ra[0]).not.toEqual(ra[1]);
    expect(await c.getRandom()).not.toEqual(ra[0]);
  });

  it('reset returns to the boot state: boot values, boot locks, randomness rewound', async () => {
    const boot = new Map([[2, new Uint8Array(48).fill(2)]]);
    const d = new NsmDevice({ seed: '05', pcrs: boot });
    const fresh = { desc: await d.describeNsm(), pcr16: await d.describePcr(16), rnd: await d.getRandom() };
    await d.extendPcr(16, unhex('01'));
    await d.lockPcrs(32);
    d.reset();
    expect(await d.describeNsm()).toEqual(fresh.desc);
    expect(await d.describePcr(16)).toEqual(fresh.pcr16);
    expect((await d.describePcr(2)).data).toEqual(boot.get(2));
    expect(await d.getRandom()).toEqual(fresh.rnd);
  });
});
