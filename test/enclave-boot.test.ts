// Default boot = a production enclave. PCR values are recomputed here with node:crypto from the
// derivation docs/attestation.md and src/device/enclave-boot.ts describe (not with our hashing
// code), PCR4 is checked against AWS's published example, the synthetic image against an EIF
// built from the same sections, and module ids against the real ones in vectors/aws.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NsmDevice, buildEifBytes, measureEif, syntheticImageSections } from '../src/index.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { recordingAttester } from './helpers/fake-attester.js';

const zero = Buffer.alloc(48);
const sha384 = (...parts: Array<Uint8Array | string>) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return h.digest();
};
const extend = (data: Uint8Array | string) => sha384(zero, data).toString('hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const CMDLINE = 'reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on';

/** The first n bytes of a seeded stream, as the seeded-stream derivation is documented. */
function seededBytes(seedHex: string, label: string, n: number): Buffer {
  const key = sha384('nsm-emulator seed v1', Buffer.from(seedHex, 'hex'));
  const msg = Buffer.concat([Buffer.from(label), Buffer.from([0]), Buffer.alloc(8)]);
  return createHmac('sha384', key).update(msg).digest().subarray(0, n);
}

/** PCR0-2 of the synthetic image with this id, from the documented section contents. */
function imagePcrs(id: Buffer): [string, string, string] {
  const h = id.toString('hex');
  const kernel = `nsm-emulator synthetic kernel ${h}`;
  const init = `nsm-emulator synthetic init ${h}`;
  const app = `nsm-emulator synthetic application ${h}`;
  return [extend(sha384(kernel, CMDLINE, init, app)), extend(sha384(kernel, CMDLINE, init)), extend(sha384(app))];
}

async function pcrs(d: NsmDevice): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 32; i++) out.push(hex((await d.describePcr(i)).data));
  return out;
}

describe('default boot: a production enclave', () => {
  it('PCR0-2 from the seeded synthetic image, PCR4 from the module_id prefix, PCR3 and PCR8 zero, 0-15 locked', async () => {
    const d = new NsmDevice({ seed: '03', clock: () => Date.UTC(2026, 0, 1) });
    const p = await pcrs(d);
    const [p0, p1, p2] = imagePcrs(seededBytes('03', 'synthetic-image', 16));
    expect(p.slice(0, 3)).toEqual([p0, p1, p2]);
    const instance = d.moduleId.slice(0, d.moduleId.indexOf('-enc'));
    expect(instance).toMatch(/^i-0[0-9a-f]{16}$/);
    expect(p[4]).toBe(extend(instance));
    for (const i of [3, ...Array.from({ length: 27 }, (_, k) => k + 5)]) expect(p[i], `PCR${i}`).toBe('00'.repeat(48));
    expect((await d.describeNsm()).lockedPcrs).toEqual([...Array(16).keys()]);
  });

  it('the same seed gives the same image; another seed or no seed another one', async () => {
    const a = await pcrs(new NsmDevice({ seed: '03' }));
    expect((await pcrs(new NsmDevice({ seed: '03' }))).slice(0, 3)).toEqual(a.slice(0, 3));
    expect((await pcrs(new NsmDevice({ seed: '04' })))[0]).not.toBe(a[0]);
    const u1 = await pcrs(new NsmDevice());
    const u2 = await pcrs(new NsmDevice());
    expect(u1[0]).not.toBe(u2[0]);
    for (const u of [u1, u2]) for (const i of [0, 1, 2, 4]) expect(u[i]).not.toBe('00'.repeat(48));
  });

  it("PCR4 measures instanceId as AWS's documentation shows (i-1234567890abcdef0)", async () => {
    const ex = JSON.parse(readFileSync(new URL('../vectors/eif/pcr3_pcr4.json', import.meta.url), 'utf8')).aws_docs_examples[1];
    const d = new NsmDevice({ instanceId: ex.input });
    expect(hex((await d.describePcr(4)).data)).toBe(ex.expected);
    expect(d.moduleId.startsWith(`${ex.input}-enc`)).toBe(true);
    // With only a module_id, PCR4 measures its prefix.
    const m = new NsmDevice({ moduleId: `${ex.input}-enc0123456789abcdef` });
    expect(hex((await m.describePcr(4)).data)).toBe(ex.expected);
  });

  it('an EIF holding the synthetic sections measures to the same PCR0-2 (as describe-eif would print)', async () => {
    const id = seededBytes('05', 'synthetic-image', 16);
    const s = syntheticImageSections(id);
    const metadata = new TextEncoder().encode('{}');
    const eif = await buildEifBytes({ kernel: s.kernel, cmdline: new TextDecoder().decode(s.cmdline), ramdisks: s.ramdisks, metadata });
    const m = await measureEif(eif.bytes);
    const p = await pcrs(new NsmDevice({ seed: '05' }));
    expect([hex(m.pcrs.pcr0), hex(m.pcrs.pcr1), hex(m.pcrs.pcr2)]).toEqual(p.slice(0, 3));
    expect(m.pcrs.pcr8).toBeNull();
  });

  it("boot: 'debug' zeroes PCR0-2 and keeps PCR4; 'bare' zeroes everything; pcrs apply on top", async () => {
    const v = new Uint8Array(48).fill(7);
    const debug = await pcrs(new NsmDevice({ seed: '03', boot: 'debug', instanceId: 'i-1234567890abcdef0', pcrs: { 3: v } }));
    expect(debug.slice(0, 3)).toEqual(Array(3).fill('00'.repeat(48)));
    expect(debug[3]).toBe(hex(v));
    expect(debug[4]).toBe(extend('i-1234567890abcdef0'));
    const bare = await pcrs(new NsmDevice({ seed: '03', boot: 'bare', pcrs: new Map([[1, v]]) }));
    expect(bare.filter((x) => x !== '00'.repeat(48))).toEqual([hex(v)]);
    expect(bare[1]).toBe(hex(v));
    expect(() => new NsmDevice({ boot: 'prod' as never })).toThrow(/boot must be one of enclave, debug, bare/);
  });

  it('reset() and a virtio snapshot restore keep the boot PCRs, debug and bare included', async () => {
    for (const boot of ['enclave', 'debug', 'bare'] as const) {
      const d = new NsmDevice({ boot, attester: recordingAttester() });
      const before = await pcrs(d);
      d.reset();
      expect(await pcrs(d)).toEqual(before);
      const restored = VirtioNsmDevice.restore(new VirtioNsmDevice(d).snapshot());
      restored.nsm.reset();
      expect(await pcrs(restored.nsm)).toEqual(before);
    }
  });
});

describe('module_id', () => {
  it('the enclave id encodes the boot clock (less the launch lead) also when seeded; the rest comes from the seed', () => {
    const t = Date.UTC(2020, 0, 1);
    const a = new NsmDevice({ seed: '03', clock: () => t });
    const b = new NsmDevice({ seed: '03', clock: () => t });
    expect(a.moduleId).toBe(b.moduleId);
    const launched = (id: string) => parseInt(id.slice(id.indexOf('-enc') + 4, id.indexOf('-enc') + 16), 16);
    expect(t - launched(a.moduleId)).toBeGreaterThanOrEqual(12_000);
    expect(t - launched(a.moduleId)).toBeLessThan(24_000);
    // The same seed one second later: the same instance, lead and random tail, a launch 1 s later.
    const later = new NsmDevice({ seed: '03', clock: () => t + 1000 }).moduleId;
    expect(launched(later)).toBe(launched(a.moduleId) + 1000);
    expect(later.slice(0, later.indexOf('-enc'))).toBe(a.moduleId.slice(0, a.moduleId.indexOf('-enc')));
    expect(later.slice(-4)).toBe(a.moduleId.slice(-4));
  });

  it('is shaped like the real ids in vectors/aws: their enclave ids also start with the enclave start time, shortly before the document', () => {
    const t = Date.UTC(2026, 0, 3, 20, 41, 7);
    const ours = new NsmDevice({ seed: '09', clock: () => t }).moduleId;
    const pattern = /^(i-0[0-9a-f]{16})-enc(01[0-9a-f]{14})$/;
    expect(ours).toMatch(pattern);
    for (let n = 1; n <= 10; n++) {
      const doc = JSON.parse(readFileSync(new URL(`../vectors/aws/aws-real-doc-${n}.json`, import.meta.url), 'utf8'));
      const m = pattern.exec(doc.module_id)!;
      expect(m, doc.module_id).not.toBeNull();
      const start = parseInt(m[2]!.slice(0, 12), 16);
      // Real enclaves asked for these documents seconds to days after they started.
      expect(doc.timestamp_ms - start).toBeGreaterThanOrEqual(0);
      expect(doc.timestamp_ms - start).toBeLessThan(5 * 86400_000);
    }
  });
});

describe('clock option', () => {
  it('must be a function: a number is refused at construction with a reason', () => {
    expect(() => new NsmDevice({ clock: 1_700_000_000_000 as never })).toThrow(/clock must be a function returning milliseconds/);
    expect(() => new NsmDevice({ clock: () => Number.NaN })).toThrow(/clock\(\) returned NaN/);
  });
});
