// makeAttestationDocument's defaults against real AWS documents (vectors/aws, read with cbor-x
// and node:crypto) and against a default-booted NsmDevice with the same seed, module_id and clock.
import { createHash } from 'node:crypto';
import { Decoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { NsmDevice, makeAttestationDocument } from '../src/index.js';
import { hex } from './helpers/hex.js';
import { realAwsDoc } from './helpers/aws-vectors.js';

const cborx = new Decoder({ mapsAsObjects: false, useRecords: false });

/** module_id and the PCRs (in the order the map stores them) of a document. */
function fieldsOf(doc: Uint8Array): { moduleId: string; pcrs: Array<[number, string]> } {
  const [, , payload] = cborx.decode(doc) as [unknown, unknown, Uint8Array];
  const f = cborx.decode(payload) as Map<string, unknown>;
  const pcrs = [...(f.get('pcrs') as Map<number, Uint8Array>)].map(([k, v]): [number, string] => [k, hex(v)]);
  return { moduleId: f.get('module_id') as string, pcrs };
}

const REAL = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => ({
  n,
  ...fieldsOf(realAwsDoc(n).doc),
}));
const ZERO = '00'.repeat(48);
const nonZero = (pcrs: Array<[number, string]>) => pcrs.filter(([, v]) => v !== ZERO).map(([k]) => k);
const extendZero = (data: Uint8Array | string) => createHash('sha384').update(Buffer.alloc(48)).update(data).digest('hex');
const T = Date.parse('2026-01-03T20:41:07.402Z');

describe('makeAttestationDocument defaults look like a real production enclave', () => {
  it('lists PCRs 0-15 in order, as every real AWS document does, with or without chosen PCRs', async () => {
    for (const real of REAL) expect({ n: real.n, keys: real.pcrs.map(([k]) => k) }).toEqual({ n: real.n, keys: [...Array(16).keys()] });
    const keys = REAL[0]!.pcrs.map(([k]) => k);
    expect(fieldsOf(await makeAttestationDocument({ seed: '01' })).pcrs.map(([k]) => k)).toEqual(keys);
    expect(fieldsOf(await makeAttestationDocument({ seed: '01', pcrs: { 0: new Uint8Array(48).fill(7) } })).pcrs.map(([k]) => k)).toEqual(keys);
    expect(fieldsOf(await makeAttestationDocument({ seed: '01', pcrs: { 9: new Uint8Array(48).fill(7) } })).pcrs.map(([k]) => k)).toEqual(keys);
  });

  it('sets PCR0, 1, 2 and 4 as real production documents do (debug: only 4; bare: none)', async () => {
    // Real documents: production enclaves show PCR0-2 and PCR4 (plus PCR3 with an IAM role),
    // debug-mode ones PCR4 only.
    const production = REAL.filter((r) => nonZero(r.pcrs).includes(0));
    expect(production.map((r) => r.n)).toEqual([1, 3, 9, 10]);
    for (const r of production) expect(nonZero(r.pcrs).filter((k) => k !== 3)).toEqual([0, 1, 2, 4]);
    for (const r of REAL.filter((x) => !production.includes(x))) expect(nonZero(r.pcrs)).toEqual([4]);
    expect(nonZero(fieldsOf(await makeAttestationDocument({ seed: '01' })).pcrs)).toEqual([0, 1, 2, 4]);
    expect(nonZero(fieldsOf(await makeAttestationDocument()).pcrs)).toEqual([0, 1, 2, 4]);
    expect(nonZero(fieldsOf(await makeAttestationDocument({ seed: '01', boot: 'debug' })).pcrs)).toEqual([4]);
    expect(nonZero(fieldsOf(await makeAttestationDocument({ seed: '01', boot: 'bare' })).pcrs)).toEqual([]);
  });

  it("PCR4 measures the parent instance in module_id: a real document's module_id gives its PCR4", async () => {
    for (const real of REAL) {
      const ours = fieldsOf(await makeAttestationDocument({ moduleId: real.moduleId, timestamp: T, seed: '01' }));
      expect(ours.moduleId).toBe(real.moduleId);
      expect(ours.pcrs[4]).toEqual(real.pcrs[4]);
    }
    // And the default module_id's instance, by hand.
    const { moduleId, pcrs } = fieldsOf(await makeAttestationDocument({ seed: '03' }));
    expect(moduleId).toMatch(/^i-0[0-9a-f]{16}-enc[0-9a-f]{16}$/);
    expect(pcrs[4]![1]).toBe(extendZero(moduleId.slice(0, moduleId.indexOf('-enc'))));
  });

  it('is byte for byte the document a default-booted NsmDevice with the same seed and clock signs', async () => {
    for (const seed of ['01', 'a11ce0']) {
      const device = new NsmDevice({ seed, clock: () => T });
      const input = { nonce: new Uint8Array([1, 2]), userData: new Uint8Array([3]), publicKey: null };
      expect(hex(await makeAttestationDocument({ seed, timestamp: T, ...input }))).toBe(hex(await device.attestation(input)));
    }
    // With a module_id given, too; and the PCRs match the device's own DescribePCR.
    const moduleId = 'i-0123456789abcdef0-enc0193685e7fee7d85';
    const device = new NsmDevice({ seed: '02', moduleId, clock: () => T });
    const ours = fieldsOf(await makeAttestationDocument({ seed: '02', moduleId, timestamp: T }));
    expect(ours).toEqual(fieldsOf(await device.attestation()));
    for (const [i, v] of ours.pcrs) expect(hex((await device.describePcr(i)).data)).toBe(v);
  });

  it('PCR0-2 are the synthetic image of the seed (same seed, same image; unseeded, a fresh one each time)', async () => {
    const image = async (v: Parameters<typeof makeAttestationDocument>[0]) => fieldsOf(await makeAttestationDocument(v)).pcrs.slice(0, 3);
    expect(await image({ seed: '01', moduleId: 'i-1-enc1' })).toEqual(await image({ seed: '01', moduleId: 'i-2-enc2', timestamp: T }));
    expect(await image({ seed: '01' })).not.toEqual(await image({ seed: '02' }));
    expect(await image({})).not.toEqual(await image({}));
  });

  it('given values override the defaults; PCRs 16-31 appear only when given', async () => {
    const x = new Uint8Array(48).fill(0xab);
    const y = new Uint8Array(48).fill(0xcd);
    const base = fieldsOf(await makeAttestationDocument({ seed: '01' })).pcrs;
    const doc = fieldsOf(await makeAttestationDocument({ seed: '01', pcrs: { 0: x, 4: y, 31: x, 16: y } })).pcrs;
    expect(doc.map(([k]) => k)).toEqual([...Array(17).keys(), 31]);
    expect(doc[0]).toEqual([0, hex(x)]);
    expect(doc[4]).toEqual([4, hex(y)]);
    expect(doc.slice(16)).toEqual([[16, hex(y)], [31, hex(x)]]);
    expect(doc.filter(([k]) => k !== 0 && k !== 4 && k < 16)).toEqual(base.filter(([k]) => k !== 0 && k !== 4));
  });

  it("pcrSet 'given' lists exactly the given PCRs; contradictions and bad values are refused with the reason", async () => {
    const x = new Uint8Array(48).fill(0xab);
    expect(fieldsOf(await makeAttestationDocument({ pcrs: { 16: x, 0: x }, pcrSet: 'given' })).pcrs).toEqual([[0, hex(x)], [16, hex(x)]]);
    await expect(makeAttestationDocument({ pcrSet: 'given' })).rejects.toThrow(/needs at least one PCR/);
    await expect(makeAttestationDocument({ pcrs: { 0: x }, pcrSet: 'given', boot: 'debug' })).rejects.toThrow(/boot has no effect/);
    await expect(makeAttestationDocument({ pcrSet: 'some' as 'given' })).rejects.toThrow(/pcrSet must be/);
    await expect(makeAttestationDocument({ boot: 'prod' as 'enclave' })).rejects.toThrow(/boot must be one of/);
    await expect(makeAttestationDocument({ pcrs: { 32: x } })).rejects.toThrow(/not in 0\.\.31/);
    await expect(makeAttestationDocument({ pcrs: [{ index: 1, data: x }, { index: 1, data: x }] })).rejects.toThrow(/given twice/);
  });
});
