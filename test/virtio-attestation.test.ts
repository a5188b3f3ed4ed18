// A real attestation document through the virtqueue: the default attester (the committed test
// CA) signs, the Linux-style guest gets the document back through the two chains, and the
// document is checked independently: COSE_Sign1 signature with cose-js, certificate chain to
// certs/root.pem with node:crypto, and payload fields against what the guest asked and read.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeCbor, decodeResponse, type CborValue } from '../src/index.js';
import { VirtioNsmDevice } from '../src/virtio/index.js';
import { ascii, hex, unhex } from './helpers/hex.js';
import { LinuxNsmDriver, TestMemory } from './helpers/virtqueue-driver.js';

/** cose-js ships no types; the one call used here. */
type CoseVerify = (msg: Buffer, verifier: { key: { x: Buffer; y: Buffer } }, options: { defaultType: number }) => Promise<Buffer>;
const coseModule = 'cose-js';
const coseVerify = async (): Promise<CoseVerify> => ((await import(coseModule)) as { default: { sign: { verify: CoseVerify } } }).default.sign.verify;

const field = (m: CborValue, key: string): CborValue => {
  if (m.type !== 'map') throw new Error('not a map');
  const hit = m.entries.find(([k]) => k.type === 'text' && k.value === key);
  if (!hit) throw new Error(`no ${key}`);
  return hit[1];
};
const bytes = (v: CborValue): Uint8Array => {
  if (v.type !== 'bytes') throw new Error('not bytes');
  return v.value;
};

describe('attestation through the virtqueue', () => {
  it('returns a document signed by the committed test CA with the locked PCRs and the request fields', async () => {
    const device = new VirtioNsmDevice(new NsmDevice({ seed: 'a77e57' }));
    const memory = TestMemory.flat(0x20000);
    const driver = new LinuxNsmDriver(device, memory, { ringBase: 0x1000, msgBase: 0x10000 });
    driver.probe();

    const ext = await driver.ioctlRaw(unhex(`a169${ascii('ExtendPCR')}a265${ascii('index')}1064${ascii('data')}43${ascii('vmm')}`));
    expect(ext.rc).toBe(0);
    expect((await driver.ioctlRaw(unhex(`a167${ascii('LockPCR')}a165${ascii('index')}10`))).rc).toBe(0);
    const pcr16 = decodeResponse((await driver.ioctlRaw(unhex(`a16b${ascii('DescribePCR')}a165${ascii('index')}10`))).response!);
    const nsmInfo = decodeResponse((await driver.ioctlRaw(unhex(`6b${ascii('DescribeNSM')}`))).response!);

    // nsm-check's sizes: 1024 bytes each of user_data, nonce and public_key (a 3.1 KB request).
    const userData = new Uint8Array(1024).fill(0x11);
    const nonce = new Uint8Array(1024).fill(0x22);
    const publicKey = new Uint8Array(1024).fill(0x33);
    const request = unhex(
      `a16b${ascii('Attestation')}a3` +
        `69${ascii('user_data')}590400${hex(userData)}` +
        `65${ascii('nonce')}590400${hex(nonce)}` +
        `6a${ascii('public_key')}590400${hex(publicKey)}`,
    );
    const r = await driver.ioctlRaw(request);
    expect(r.rc).toBe(0);
    expect(r.used.map((u) => u.len)).toEqual([0, r.response!.length]);
    expect(r.interrupts).toEqual(['vring']);
    const answer = decodeResponse(r.response!);
    if (answer.type !== 'Attestation') throw new Error(`device answered ${JSON.stringify(answer)}`);

    const sign1 = decodeCbor(answer.document);
    if (sign1.type !== 'array') throw new Error('not COSE_Sign1');
    const payload = decodeCbor(bytes(sign1.items[2]!));
    const leaf = new X509Certificate(bytes(field(payload, 'certificate')));
    const jwk = leaf.publicKey.export({ format: 'jwk' }) as { x: string; y: string; crv: string };
    expect(jwk.crv).toBe('P-384');
    const verify = await coseVerify();
    const key = { key: { x: Buffer.from(jwk.x, 'base64url'), y: Buffer.from(jwk.y, 'base64url') } };
    await verify(Buffer.from(answer.document), key, { defaultType: 18 });
    const tampered = Buffer.from(answer.document);
    tampered[tampered.length - 1]! ^= 1;
    await expect(verify(tampered, key, { defaultType: 18 })).rejects.toThrow();

    // Chain: root (pinned, certs/root.pem) first in cabundle, each certificate issued by the one before.
    const bundle = field(payload, 'cabundle');
    if (bundle.type !== 'array') throw new Error('cabundle');
    const chain = [...bundle.items.map((c) => new X509Certificate(bytes(c))), leaf];
    const root = new X509Certificate(readFileSync(new URL('../certs/root.pem', import.meta.url)));
    expect(chain[0]!.fingerprint256).toBe(root.fingerprint256);
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.verify(chain[i - 1]!.publicKey)).toBe(true);

    // Payload: what the guest saw through the same queue.
    if (nsmInfo.type !== 'DescribeNSM' || pcr16.type !== 'DescribePCR') throw new Error('unexpected answers');
    expect(field(payload, 'module_id')).toEqual({ type: 'text', value: nsmInfo.moduleId });
    expect(bytes(field(payload, 'user_data'))).toEqual(userData);
    expect(bytes(field(payload, 'nonce'))).toEqual(nonce);
    expect(bytes(field(payload, 'public_key'))).toEqual(publicKey);
    const pcrs = field(payload, 'pcrs');
    if (pcrs.type !== 'map') throw new Error('pcrs');
    expect(pcrs.entries.map(([k]) => (k as { value: number }).value)).toEqual([...Array(17).keys()]);
    expect(bytes(pcrs.entries[16]![1])).toEqual(pcr16.data);
    expect(r.response!.length).toBeLessThanOrEqual(0x3000);
  });
});
