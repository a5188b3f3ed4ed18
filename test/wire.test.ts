// Known-answer tests: every request and response hex in the spec (nsm-protocol.md sections 3-4),
// assembled by hand from the spec's description, against our codec and device.
import { decode as cborxDecode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { NsmDevice, decodeRequest, decodeResponse, encodeRequest, type NsmRequest } from '../src/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { ascii, hex, unhex } from './helpers/hex.js';
import { deviceState } from './helpers/state.js';

const ZERO48 = '00'.repeat(48);
// SHA-384(48 zero bytes || 01 02 03): the spec's ExtendPCR example, also QEMU's captured answer.
const EXTENDED_010203 = 'cb178fcd3f328244c05c6248723fd068b3a1dda878e1ab8be911098f199958add55d0c27f04826d27b44d949a650694e';

const REQUESTS: Array<[string, NsmRequest]> = [
  ['a16b4465736372696265504352a165696e64657800', { type: 'DescribePCR', index: 0 }],
  ['a169457874656e64504352a265696e64657810646461746143010203', { type: 'ExtendPCR', index: 16, data: unhex('010203') }],
  ['a1674c6f636b504352a165696e64657810', { type: 'LockPCR', index: 16 }],
  ['a1684c6f636b50435273a16572616e67651820', { type: 'LockPCRs', range: 32 }],
  ['6b44657363726962654e534d', { type: 'DescribeNSM' }],
  [
    'a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a7075626c69635f6b6579f6',
    { type: 'Attestation', userData: null, nonce: null, publicKey: null },
  ],
  ['6947657452616e646f6d', { type: 'GetRandom' }],
];

describe('requests as nsm-api encodes them (spec 3.1-3.7)', () => {
  it.each(REQUESTS)('%s decodes and re-encodes byte for byte', (h, req) => {
    expect(decodeRequest(unhex(h))).toEqual({ ok: true, request: req });
    expect(hex(encodeRequest(req))).toBe(h);
  });
});

function device(): NsmDevice {
  return new NsmDevice({ seed: '01', boot: 'bare', moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', attester: recordingAttester() });
}

async function ask(d: NsmDevice, h: string): Promise<string> {
  return hex(await d.handleRaw(unhex(h)));
}

describe('responses as nsm-api (serde_cbor) encodes them', () => {
  it('DescribePCR: {"DescribePCR": {"lock", "data"}} in Rust field order', async () => {
    const expected = 'a1' + '6b' + ascii('DescribePCR') + 'a2' + '64' + ascii('lock') + 'f5' + '64' + ascii('data') + '5830' + ZERO48;
    expect(await ask(device(), 'a16b4465736372696265504352a165696e64657800')).toBe(expected);
  });

  it('ExtendPCR: the new value, SHA-384(old || data)', async () => {
    const expected = 'a1' + '69' + ascii('ExtendPCR') + 'a1' + '64' + ascii('data') + '5830' + EXTENDED_010203;
    expect(await ask(device(), REQUESTS[1]![0])).toBe(expected);
  });

  it('LockPCR and LockPCRs: bare text strings', async () => {
    const d = device();
    expect(await ask(d, REQUESTS[2]![0])).toBe('674c6f636b504352');
    expect(await ask(d, REQUESTS[3]![0])).toBe('684c6f636b50435273');
  });

  it('DescribeNSM: seven fields in nsm-api declaration order', async () => {
    const moduleId = 'i-0123456789abcdef0-enc0123456789abcdef';
    const expected =
      'a1' + '6b' + ascii('DescribeNSM') + 'a7' +
      '6d' + ascii('version_major') + '01' +
      '6d' + ascii('version_minor') + '00' +
      '6d' + ascii('version_patch') + '00' +
      '69' + ascii('module_id') + '7827' + ascii(moduleId) +
      '68' + ascii('max_pcrs') + '1820' +
      '6b' + ascii('locked_pcrs') + '90' + '000102030405060708090a0b0c0d0e0f' +
      '66' + ascii('digest') + '66' + ascii('SHA384');
    expect(await ask(device(), '6b44657363726962654e534d')).toBe(expected);
  });

  it('DescribeNSM: the answer follows every change of the locks (LockPCR, LockPCRs, reset, importState)', async () => {
    const d = device();
    const describe = '6b44657363726962654e534d';
    // Expected bytes assembled by hand for a given set of locked indices (all below 24: one byte each).
    const expected = (locked: number[]) =>
      'a1' + '6b' + ascii('DescribeNSM') + 'a7' +
      '6d' + ascii('version_major') + '01' + '6d' + ascii('version_minor') + '00' + '6d' + ascii('version_patch') + '00' +
      '69' + ascii('module_id') + '7827' + ascii(d.moduleId) + '68' + ascii('max_pcrs') + '1820' +
      '6b' + ascii('locked_pcrs') + (0x80 + locked.length).toString(16) + locked.map((i) => i.toString(16).padStart(2, '0')).join('') +
      '66' + ascii('digest') + '66' + ascii('SHA384');
    const boot = [...Array(16).keys()];
    expect(await ask(d, describe)).toBe(expected(boot));
    const first = await d.handleRaw(unhex(describe));
    first.fill(0); // a caller scribbling on one answer does not change the next
    expect(await ask(d, describe)).toBe(expected(boot));
    const saved = d.exportState();
    await ask(d, 'a1674c6f636b504352a165696e64657811'); // LockPCR 17
    expect(await ask(d, describe)).toBe(expected([...boot, 17]));
    await ask(d, 'a1684c6f636b50435273a16572616e676517'); // LockPCRs 23
    expect(await ask(d, describe)).toBe(expected([...Array(23).keys()]));
    d.importState(saved);
    expect(await ask(d, describe)).toBe(expected(boot));
    await ask(d, 'a1674c6f636b504352a165696e64657814'); // LockPCR 20
    expect(await ask(d, describe)).toBe(expected([...boot, 20]));
    d.reset();
    expect(await ask(d, describe)).toBe(expected(boot));
  });

  it("DescribeNSM: the same content as QEMU's 137-byte boot answer (spec 3.5), in nsm-api's key order", async () => {
    const qemu = unhex(
      'a16b44657363726962654e534da76664696765737466534841333834686d61785f706372731820696d6f64756c655f69646d692d3233342d656e63353637386b6c6f636b65645f7063727390000102030405060708090a0b0c0d0e0f6d76657273696f6e5f6d616a6f72016d76657273696f6e5f6d696e6f72006d76657273696f6e5f706174636800',
    );
    expect(qemu.length).toBe(137);
    const ours = await new NsmDevice({ moduleId: 'i-234-enc5678' }).handleRaw(unhex('6b44657363726962654e534d'));
    expect(ours.length).toBe(137);
    expect(decodeResponse(ours)).toEqual(decodeResponse(qemu));
    expect(cborxDecode(ours)).toEqual(cborxDecode(qemu));
  });

  it('GetRandom: the exact prefix the Linux hwrng parser requires, then 256 bytes', async () => {
    const r = await ask(device(), '6947657452616e646f6d');
    expect(r.slice(0, 44)).toBe('a1' + '69' + ascii('GetRandom') + 'a1' + '66' + ascii('random') + '590100');
    expect(r.length / 2).toBe(22 + 256);
  });

  it('Attestation: {"Attestation": {"document": bstr}}', async () => {
    const r = await ask(device(), REQUESTS[5]![0]);
    expect(r).toBe('a1' + '6b' + ascii('Attestation') + 'a1' + '68' + ascii('document') + '43d0c001');
  });

  it('Error: {"Error": "<Name>"} (spec 3.8)', async () => {
    expect(await ask(device(), 'a16b4465736372696265504352a165696e6465781820')).toBe('a1654572726f726c496e76616c6964496e646578');
  });

  it('every response is one definite-length CBOR item that cbor-x and our client decoder agree on', async () => {
    const d = device();
    for (const [h] of REQUESTS) {
      const raw = await d.handleRaw(unhex(h));
      expect(() => cborxDecode(raw)).not.toThrow();
      expect(decodeResponse(raw).type).not.toBe('Error');
    }
  });
});

const MAX = 'a1684c6f636b50435273a16572616e6765'; // {"LockPCRs": {"range": ...}} prefix
const extendWithData = (len: number): string => {
  const head = len < 24 ? (0x40 + len).toString(16) : len < 256 ? '58' + len.toString(16).padStart(2, '0') : '59' + len.toString(16).padStart(4, '0');
  return 'a169457874656e64504352a265696e646578106464617461' + head + 'ab'.repeat(len);
};

// Every malformed request and the exact error it gets. Each must leave the device untouched.
const BAD: Array<[string, string, string]> = (
  [
  ['not CBOR: a lone break', 'ff', 'InvalidOperation'],
  ['not CBOR: reserved head', '1c', 'InvalidOperation'],
  ['not CBOR: truncated map', 'a16b44657363726962655043', 'InvalidOperation'],
  ['empty request', '', 'InvalidOperation'],
  ['trailing bytes after a valid request', '6b44657363726962654e534d00', 'InvalidOperation'],
  ['root is an integer', '01', 'InvalidOperation'],
  ['root is an array', '816b44657363726962654e534d', 'InvalidOperation'],
  ['root is an empty map', 'a0', 'InvalidOperation'],
  ['root map with two entries', 'a26b44657363726962654e534df66947657452616e646f6df6', 'InvalidOperation'],
  ['root map with an integer key', 'a101a165696e64657800', 'InvalidOperation'],
  ['root is bytes', '4b44657363726962654e534d', 'InvalidOperation'],
  ['root is tagged', 'd8186b44657363726962654e534d', 'InvalidOperation'],
  ['unknown unit name', '63466f6f', 'InvalidOperation'],
  ['unknown struct name', 'a163466f6fa0', 'InvalidOperation'],
  ['unit variant written as a map', 'a16b44657363726962654e534df6', 'InvalidOperation'],
  ['GetRandom written as a map', 'a16947657452616e646f6da0', 'InvalidOperation'],
  ['struct variant written as text', '6b4465736372696265504352', 'InvalidOperation'],
  ['struct fields not a map', 'a16b446573637269626550435200', 'InvalidOperation'],
  ['missing index', 'a16b4465736372696265504352a0', 'InvalidOperation'],
  ['missing data', 'a169457874656e64504352a165696e64657810', 'InvalidOperation'],
  ['index as text', 'a16b4465736372696265504352a165696e6465786130', 'InvalidOperation'],
  ['index as bytes', 'a16b4465736372696265504352a165696e6465784100', 'InvalidOperation'],
  ['index as float', 'a16b4465736372696265504352a165696e646578f93c00', 'InvalidOperation'],
  ['index as bool', 'a16b4465736372696265504352a165696e646578f5', 'InvalidOperation'],
  ['index negative', 'a16b4465736372696265504352a165696e64657820', 'InvalidOperation'],
  ['index over u16 (65536)', 'a16b4465736372696265504352a165696e6465781a00010000', 'InvalidOperation'],
  ['index 2^64-1', 'a16b4465736372696265504352a165696e6465781bffffffffffffffff', 'InvalidOperation'],
  ['range over u16', MAX + '1a00010000', 'InvalidOperation'],
  ['range negative', MAX + '20', 'InvalidOperation'],
  ['data as integer', 'a169457874656e64504352a265696e646578106464617461 01', 'InvalidOperation'],
  ['data as array', 'a169457874656e64504352a265696e64657810646461746183010203', 'InvalidOperation'],
  ['data null', 'a169457874656e64504352a265696e646578106464617461f6', 'InvalidOperation'],
  ['duplicate index', 'a169457874656e64504352a365696e6465781065696e646578116464617461 40', 'InvalidOperation'],
  ['user_data as integer', 'a16b4174746573746174696f6ea169757365725f6461746101', 'InvalidOperation'],
  ['nonce as map', 'a16b4174746573746174696f6ea1656e6f6e6365a0', 'InvalidOperation'],
  ['public_key as bool', 'a16b4174746573746174696f6ea16a7075626c69635f6b6579f4', 'InvalidOperation'],
  ['Attestation fields not a map', 'a16b4174746573746174696f6ef6', 'InvalidOperation'],
  ['DescribePCR index 32', 'a16b4465736372696265504352a165696e6465781820', 'InvalidIndex'],
  ['DescribePCR index 256 (u16, so InvalidIndex; QEMU says InvalidOperation)', 'a16b4465736372696265504352a165696e646578190100', 'InvalidIndex'],
  ['DescribePCR index 65535', 'a16b4465736372696265504352a165696e64657819ffff', 'InvalidIndex'],
  ['ExtendPCR index 32', 'a169457874656e64504352a265696e64657818206464617461 40', 'InvalidIndex'],
  ['ExtendPCR on a boot-locked PCR', 'a169457874656e64504352a265696e64657800646461746143010203', 'ReadOnlyIndex'],
  ['LockPCR index 32', 'a1674c6f636b504352a165696e6465781820', 'InvalidIndex'],
  ['LockPCR on a boot-locked PCR', 'a1674c6f636b504352a165696e64657800', 'ReadOnlyIndex'],
  ['LockPCRs range 33', MAX + '1821', 'InvalidIndex'],
  ['LockPCRs range 65535', MAX + '19ffff', 'InvalidIndex'],
  ['request of 4097 bytes', extendWithData(4097 - 27), 'InputTooLarge'],
  ['user_data of 1025 bytes', 'a16b4174746573746174696f6ea169757365725f64617461590401' + '80'.repeat(1025), 'InputTooLarge'],
  ['nonce of 1025 bytes', 'a16b4174746573746174696f6ea1656e6f6e6365590401' + '80'.repeat(1025), 'InputTooLarge'],
  ['public_key of 1025 bytes', 'a16b4174746573746174696f6ea16a7075626c69635f6b6579590401' + '80'.repeat(1025), 'InputTooLarge'],
] as Array<[string, string, string]>
).map(([what, h, code]) => [what, code, h]);

describe('malformed requests get the exact error and change nothing', () => {
  it('the 4097-byte fixture really is 4097 bytes', () => {
    expect(unhex(extendWithData(4097 - 27)).length).toBe(4097);
  });

  it.each(BAD)('%s -> %s', async (_what, code, h) => {
    const d = device();
    const before = deviceState(d);
    const raw = await d.handleRaw(unhex(h));
    expect(decodeResponse(raw)).toEqual({ type: 'Error', code });
    expect(hex(raw)).toBe('a1' + '65' + ascii('Error') + (0x60 + code.length).toString(16) + ascii(code));
    expect(deviceState(d)).toBe(before);
  });
});

describe('what else is accepted (docs/protocol.md)', () => {
  it('a request of exactly 4096 bytes is served', async () => {
    const h = extendWithData(4096 - 27);
    expect(unhex(h).length).toBe(4096);
    expect(decodeResponse(await device().handleRaw(unhex(h))).type).toBe('ExtendPCR');
  });

  it('text for a byte field counts as its UTF-8 bytes (as QEMU does)', async () => {
    const asText = await ask(device(), 'a169457874656e64504352a265696e6465781064646174616361626' + '3');
    const asBytes = await ask(device(), 'a169457874656e64504352a265696e6465781064646174614361626' + '3');
    expect(asText).toBe(asBytes);
  });

  it('unknown and non-text keys inside a request are ignored', async () => {
    const withExtra = await ask(device(), 'a169457874656e64504352a465696e646578106464617461430102036378797a0001f6');
    expect(withExtra).toBe(await ask(device(), REQUESTS[1]![0]));
  });

  it('indefinite-length maps are accepted', async () => {
    expect(await ask(device(), 'bf6b4465736372696265504352bf65696e64657800ffff')).toBe(await ask(device(), REQUESTS[0]![0]));
  });

  it('an Attestation with an empty map means all three fields absent', async () => {
    const seen: Parameters<typeof recordingAttester>[0] = [];
    const d = new NsmDevice({ seed: '01', attester: recordingAttester(seen) });
    await d.handleRaw(unhex('a16b4174746573746174696f6ea0'));
    expect(seen[0]).toMatchObject({ userData: null, nonce: null, publicKey: null });
  });

  it('an empty byte string stays distinct from null, and 1024-byte fields are accepted', async () => {
    const seen: Parameters<typeof recordingAttester>[0] = [];
    const d = new NsmDevice({ seed: '01', attester: recordingAttester(seen) });
    await d.attestation({ userData: new Uint8Array(0), nonce: null });
    const big = new Uint8Array(1024).fill(128);
    const raw = encodeRequest({ type: 'Attestation', userData: big, nonce: big, publicKey: big });
    expect(decodeResponse(await d.handleRaw(raw)).type).toBe('Attestation');
    expect(seen[0]!.userData).toEqual(new Uint8Array(0));
    expect(seen[0]!.nonce).toBeNull();
    expect(seen[1]!.publicKey).toEqual(big);
  });
});
