// The attestation document's bytes against the layout of real AWS documents (spec section 9),
// read back with cbor-x (an independent decoder) and by walking the raw bytes.
import { Decoder } from 'cbor-x';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NsmDevice, NsmError, decodeResponse, encodeRequest } from '../src/index.js';
import { caAttester, committedTestCa, makeAttestationDocument } from '../src/attestation/index.js';
import { hex, unhex } from './helpers/hex.js';

const T0 = Date.UTC(2026, 0, 3, 20, 41, 7, 402);
const SEED = '5eed';

function seededDevice(clock: () => number = () => T0, extra: ConstructorParameters<typeof NsmDevice>[0] = {}) {
  return new NsmDevice({ seed: SEED, clock, ...extra });
}

/** cbor-x view: [protected, unprotected, payload, signature] and the decoded payload. */
const cborx = new Decoder({ mapsAsObjects: false, useRecords: false });
function open(doc: Uint8Array) {
  const [p, u, payload, sig] = cborx.decode(doc) as [Uint8Array, unknown, Uint8Array, Uint8Array];
  const fields = Object.fromEntries(cborx.decode(payload) as Map<string, unknown>);
  return { p, u, payload, sig, fields };
}

/** The text keys of the payload map in encoding order, read from the bytes. */
function keyOrder(payload: Uint8Array): string[] {
  const text = Buffer.from(payload).toString('latin1');
  const keys = ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce'];
  return keys.map((k) => [k, text.indexOf(String.fromCharCode(0x60 + k.length) + k)] as const).sort((a, b) => a[1] - b[1]).map(([k]) => k);
}

describe('COSE_Sign1 envelope', () => {
  it('is untagged 84, protected 44 a1 01 38 22, unprotected a0, payload 59 LLLL, signature 58 60 + 96 bytes', async () => {
    const doc = await seededDevice().attestation();
    expect(hex(doc.subarray(0, 7))).toBe('8444a1013822a0');
    expect(doc[7]).toBe(0x59);
    const len = (doc[8]! << 8) | doc[9]!;
    expect(10 + len + 2 + 96).toBe(doc.length);
    expect(hex(doc.subarray(10 + len, 12 + len))).toBe('5860');
    const { p, u, sig } = open(doc);
    expect(hex(p)).toBe('a1013822');
    expect(u).toEqual(new Map());
    expect(sig.length).toBe(96);
  });
});

describe('payload', () => {
  it('has AWS key order, an indefinite map by default, nulls for absent fields and a 1b timestamp', async () => {
    const doc = await seededDevice().attestation();
    const { payload, fields } = open(doc);
    expect(payload[0]).toBe(0xbf);
    expect(payload[payload.length - 1]).toBe(0xff);
    expect(keyOrder(payload)).toEqual(['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce']);
    expect(Object.keys(fields)).toEqual(['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce']);
    expect(fields.public_key).toBeNull();
    expect(fields.user_data).toBeNull();
    expect(fields.nonce).toBeNull();
    expect(fields.digest).toBe('SHA384');
    expect(Number(fields.timestamp)).toBe(T0);
    // timestamp: 69 "timestamp" 1b <8 bytes>
    const at = Buffer.from(payload).indexOf(Buffer.from('6974696d657374616d70', 'hex'));
    expect(hex(payload.subarray(at + 10, at + 19))).toBe('1b' + T0.toString(16).padStart(16, '0'));
    // pcrs: 64 "pcrs" b0, keys 0..15 ascending, 58 30 values
    const pi = Buffer.from(payload).indexOf(Buffer.from('6470637273', 'hex'));
    expect(payload[pi + 5]).toBe(0xb0);
    expect(hex(payload.subarray(pi + 6, pi + 9))).toBe('005830');
    // cabundle: 68 "cabundle" 84, each entry 59 LLLL
    const ci = Buffer.from(payload).indexOf(Buffer.from('68636162756e646c65', 'hex'));
    expect(payload[ci + 9]).toBe(0x84);
    expect(payload[ci + 10]).toBe(0x59);
  });

  it('offers the pre-2025 definite-length map (a9) as an option', async () => {
    const device = seededDevice(undefined, { attester: caAttester(committedTestCa(), { payloadMap: 'definite' }) });
    const { payload, fields } = open(await device.attestation());
    expect(payload[0]).toBe(0xa9);
    expect(payload[payload.length - 1]).not.toBe(0xff);
    expect(Object.keys(fields)).toHaveLength(9);
  });

  it('lists every locked PCR ascending, including ones locked after boot', async () => {
    const device = seededDevice();
    await device.extendPcr(20, new Uint8Array([1, 2, 3]));
    await device.lockPcr(20);
    await device.extendPcr(17, new Uint8Array([4]));
    await device.lockPcr(17);
    await device.extendPcr(18, new Uint8Array([5])); // extended but not locked: absent
    const { fields } = open(await device.attestation());
    const pcrs = fields.pcrs as Map<number, Uint8Array>;
    expect([...pcrs.keys()]).toEqual([...Array(16).keys(), 17, 20]);
    expect(hex(pcrs.get(20)!)).toBe(hex((await device.describePcr(20)).data));
  });

  it('carries the inputs, keeps an empty byte string distinct from null, and takes 1024 bytes of each', async () => {
    const device = seededDevice();
    const big = (b: number) => new Uint8Array(1024).fill(b);
    const { fields } = open(await device.attestation({ userData: new Uint8Array(0), nonce: big(1), publicKey: big(2) }));
    expect(fields.user_data).toEqual(new Uint8Array(0));
    expect(hex(fields.nonce as Uint8Array)).toBe(hex(big(1)));
    expect(hex(fields.public_key as Uint8Array)).toBe(hex(big(2)));
  });

  it('puts the leaf DER in certificate and [root, regional, zonal, instance] in cabundle, root = certs/root.pem', async () => {
    const { fields } = open(await seededDevice().attestation());
    const bundle = fields.cabundle as Uint8Array[];
    expect(bundle).toHaveLength(4);
    expect(hex(bundle[0]!)).toBe(hex(committedTestCa().root.der));
    const subjects = [...bundle, fields.certificate as Uint8Array].map((d) => new X509Certificate(d).subject.split('\n').at(-1));
    expect(subjects[0]).toBe('CN=nsm-emulator test root - not AWS');
    expect(subjects[1]).toMatch(/^CN=[0-9a-f]{16}\.us-east-1\.aws\.nitro-enclaves$/);
    expect(subjects[2]).toBe('L=Seattle');
    expect(subjects[3]).toMatch(/^CN=i-0[0-9a-f]{16}\.us-east-1\.aws\.nitro-enclaves$/);
    expect(subjects[4]).toBe(`CN=${String(fields.module_id)}.us-east-1.aws`);
  });
});

describe('requests through the wire', () => {
  const attest = (device: NsmDevice, fields: Record<string, unknown>) =>
    device.handleRaw(encodeRequest({ type: 'Attestation', userData: null, nonce: null, publicKey: null, ...fields } as never)).then(decodeResponse);

  it('answers InputTooLarge for a field over 1024 bytes and for a request over 4096 bytes', async () => {
    const device = seededDevice();
    expect(await attest(device, { nonce: new Uint8Array(1025) })).toEqual({ type: 'Error', code: 'InputTooLarge' });
    // user_data as a raw request of 4097 bytes: one field can't do it alone, so build the CBOR by hand.
    const ud = new Uint8Array(4097 - 46);
    const raw = unhex(`a16b4174746573746174696f6ea369757365725f64617461590${(ud.length).toString(16).padStart(3, '0')}`);
    const req = new Uint8Array([...raw, ...ud, ...unhex('656e6f6e6365f66a7075626c69635f6b6579f6')]);
    expect(req.length).toBeGreaterThan(4096);
    expect(decodeResponse(await device.handleRaw(req))).toEqual({ type: 'Error', code: 'InputTooLarge' });
  });

  it('answers InvalidOperation for a field of the wrong type, and the typed API throws NsmError', async () => {
    const device = seededDevice();
    // {"Attestation": {"user_data": 5, "nonce": null, "public_key": null}}
    const req = unhex('a16b4174746573746174696f6ea369757365725f6461746105656e6f6e6365f66a7075626c69635f6b6579f6');
    expect(decodeResponse(await device.handleRaw(req))).toEqual({ type: 'Error', code: 'InvalidOperation' });
    await expect(device.attestation({ nonce: new Uint8Array(2000) })).rejects.toEqual(new NsmError('InputTooLarge'));
  });
});

describe('reproducibility and reuse', () => {
  it('gives byte-identical documents for the same seed, inputs and clock, and different ones for another seed', async () => {
    const input = { nonce: new Uint8Array([9, 9]), userData: new Uint8Array([1]) };
    const a = await seededDevice().attestation(input);
    const b = await seededDevice().attestation(input);
    expect(hex(a)).toBe(hex(b));
    const c = await new NsmDevice({ seed: 'beef', clock: () => T0 }).attestation(input);
    expect(hex(c)).not.toBe(hex(a));
  });

  it('reuses the leaf while valid and re-issues it (and the chain above) as the clock passes validity', async () => {
    let now = T0;
    const device = seededDevice(() => now);
    const leafOf = async () => {
      const f = open(await device.attestation()).fields;
      return { leaf: new X509Certificate(f.certificate as Uint8Array), bundle: (f.cabundle as Uint8Array[]).map(hex) };
    };
    const first = await leafOf();
    const issued = Math.floor(T0 / 1000);
    expect(first.leaf.serialNumber.toLowerCase()).toBe(open(await device.attestation()).fields.module_id!.toString().slice(-16) + '00000000' + issued.toString(16));
    expect(Date.parse(first.leaf.validFrom)).toBe((issued - 3) * 1000);
    expect(Date.parse(first.leaf.validTo)).toBe((issued + 3 * 3600) * 1000);

    now = T0 + 33 * 60_000; // 33 minutes later (like real docs 4 and 5): same leaf and bundle
    const later = await leafOf();
    expect(later.leaf.raw.equals(first.leaf.raw)).toBe(true);
    expect(later.bundle).toEqual(first.bundle);

    now = (issued + 3 * 3600) * 1000 + 1000; // past the leaf: new leaf, under the instance certificate in use then
    const next = await leafOf();
    expect(next.leaf.raw.equals(first.leaf.raw)).toBe(false);
    expect(next.leaf.checkIssued(new X509Certificate(unhex(next.bundle[3]!)))).toBe(true);
    expect(Date.parse(next.leaf.validFrom)).toBe(now - 3000);

    now = T0 + 2 * 86_400_000; // past the instance certificate: new instance
    const dayLater = await leafOf();
    expect(dayLater.bundle[3]).not.toBe(first.bundle[3]);
    expect(dayLater.bundle[0]).toBe(first.bundle[0]);

    now = T0 + 40 * 86_400_000; // past regional and zonal: all three intermediates are new
    const monthLater = await leafOf();
    expect(monthLater.bundle.slice(1).some((b, i) => b === dayLater.bundle[i + 1])).toBe(false);
    expect(monthLater.bundle[0]).toBe(first.bundle[0]);
  });
});

describe('a clock the CA cannot cover', () => {
  it("gives InternalError before the root's notBefore and after its notAfter, and changes nothing", async () => {
    for (const t of [Date.UTC(2019, 0, 1), Date.UTC(2019, 9, 28, 13, 28, 4), Date.UTC(2049, 9, 28, 14, 28, 5), Date.UTC(2060, 0, 1)]) {
      const device = new NsmDevice({ seed: SEED, clock: () => t });
      const err = await device.attestation().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NsmError);
      expect((err as NsmError).code).toBe('InternalError');
      expect(await device.describePcr(16)).toEqual({ lock: false, data: new Uint8Array(48) });
    }
  });
});

describe('makeAttestationDocument', () => {
  it("signs exactly the values given (pcrSet 'given': no other PCRs)", async () => {
    const pcr = (b: number) => new Uint8Array(48).fill(b);
    const doc = await makeAttestationDocument({
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      timestamp: 1_700_000_000_123,
      pcrs: { 0: pcr(0xa0), 1: pcr(0xa1), 2: pcr(0xa2), 8: pcr(0xa8) },
      pcrSet: 'given',
      userData: new Uint8Array([1, 2]),
      nonce: null,
      publicKey: new Uint8Array(65).fill(4),
      payloadMap: 'definite',
      seed: '01',
    });
    const { payload, fields } = open(doc);
    expect(payload[0]).toBe(0xa9);
    expect(fields.module_id).toBe('i-0123456789abcdef0-enc0123456789abcdef');
    expect(Number(fields.timestamp)).toBe(1_700_000_000_123);
    expect([...(fields.pcrs as Map<number, Uint8Array>).entries()].map(([k, v]) => [k, v[0]])).toEqual([
      [0, 0xa0],
      [1, 0xa1],
      [2, 0xa2],
      [8, 0xa8],
    ]);
    expect(fields.nonce).toBeNull();
    const leaf = new X509Certificate(fields.certificate as Uint8Array);
    expect(leaf.serialNumber.toLowerCase()).toBe('0123456789abcdef00000000' + Math.floor(1_700_000_000_123 / 1000).toString(16));
  });

  it('rejects PCRs that are not 48 bytes and fields over 1024 bytes', async () => {
    await expect(makeAttestationDocument({ pcrs: { 0: new Uint8Array(32) } })).rejects.toThrow(/48 bytes/);
    await expect(makeAttestationDocument({ userData: new Uint8Array(1025) })).rejects.toThrow(/1024/);
  });
});
