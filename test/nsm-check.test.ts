// A port of AWS's on-hardware test nsm-check (aws-nitro-enclaves-nsm-api, nsm-test/src/bin/nsm-check.rs)
// as a conformance suite. Requests are the bytes nsm-api sends; responses are decoded with cbor-x,
// an implementation independent of ours, the way nsm-api's serde types would read them.
import { decode } from 'cbor-x';
import { beforeAll, describe, expect, it } from 'vitest';
import { NsmDevice, encodeRequest, type NsmRequest } from '../src/index.js';

type Json = Record<string, any> | string;
const RESERVED_PCRS = 5;
const zero = new Uint8Array(48);

/** A device with no options: the default boot is a production enclave with no IAM role. */
function bootedEnclave(): NsmDevice {
  return new NsmDevice();
}

async function nsmProcessRequest(d: NsmDevice, req: NsmRequest): Promise<Json> {
  return decode(await d.handleRaw(encodeRequest(req))) as Json;
}

const isError = (r: Json) => typeof r === 'object' && 'Error' in r;

describe('nsm-check', () => {
  let d: NsmDevice;
  let description: Record<string, any>;

  beforeAll(async () => {
    d = bootedEnclave();
    description = ((await nsmProcessRequest(d, { type: 'DescribeNSM' })) as Record<string, any>).DescribeNSM;
  });

  it('main: DescribeNSM reports 32 PCRs and a module id', () => {
    expect(description.max_pcrs).toBe(32);
    expect(description.module_id.length).toBeGreaterThan(0);
    expect(description.digest).toBe('SHA384');
  });

  it('main: an attestation with no data before anything else', async () => {
    const r = (await nsmProcessRequest(d, { type: 'Attestation', userData: null, nonce: null, publicKey: null })) as Record<string, any>;
    expect(r.Attestation.document.length).toBeGreaterThan(0);
  });

  it('check_initial_pcrs', async () => {
    const pcrs: Array<{ lock: boolean; data: Uint8Array }> = [];
    for (let index = 0; index < description.max_pcrs; index++) {
      const r = (await nsmProcessRequest(d, { type: 'DescribePCR', index })) as Record<string, any>;
      expect(r.DescribePCR.data.length).toBe(48);
      pcrs.push(r.DescribePCR);
    }
    for (let i = 0; i < RESERVED_PCRS; i++) {
      if (i !== 3) expect(pcrs[i]!.data).not.toEqual(zero);
      else expect(pcrs[i]!.data).toEqual(zero);
    }
    for (let i = RESERVED_PCRS; i < 32; i++) expect(pcrs[i]!.data).toEqual(zero);
    expect([...description.locked_pcrs]).toEqual([...Array(16).keys()]);
    for (let i = 0; i < 32; i++) expect(pcrs[i]!.lock).toBe(i < 16);
  });

  it('check_pcr_locks', async () => {
    const dummy = new Uint8Array([1, 2, 3]);
    for (let index = 0; index < 16; index++) expect(isError(await nsmProcessRequest(d, { type: 'LockPCR', index }))).toBe(true);
    for (let loop = 0; loop < 10; loop++) {
      for (let index = 16; index < 32; index++) {
        const r = (await nsmProcessRequest(d, { type: 'ExtendPCR', index, data: dummy })) as Record<string, any>;
        expect(r.ExtendPCR.data.length).toBe(48);
        expect(r.ExtendPCR.data).not.toEqual(zero);
      }
    }
    for (let index = 16; index < 32; index++) expect(await nsmProcessRequest(d, { type: 'LockPCR', index })).toBe('LockPCR');
    expect(await nsmProcessRequest(d, { type: 'LockPCRs', range: 32 })).toBe('LockPCRs');
    expect(isError(await nsmProcessRequest(d, { type: 'LockPCRs', range: 33 }))).toBe(true);
    for (let index = 0; index < 32; index++) {
      expect(isError(await nsmProcessRequest(d, { type: 'ExtendPCR', index, data: dummy }))).toBe(true);
    }
    for (let loop = 0; loop < 10; loop++) {
      for (let index = 0; index < 32; index++) {
        const r = (await nsmProcessRequest(d, { type: 'DescribePCR', index })) as Record<string, any>;
        expect(r.DescribePCR.data.length).toBe(48);
        if (index === 3 || (index >= RESERVED_PCRS && index <= 15)) expect(r.DescribePCR.data).toEqual(zero);
        else expect(r.DescribePCR.data).not.toEqual(zero);
        expect(r.DescribePCR.lock).toBe(true);
      }
    }
  });

  it('check_attestation: no data, then 1024 bytes of user data, nonce and public key', async () => {
    const data = new Uint8Array(1024).fill(128);
    const cases: Array<[Uint8Array | null, Uint8Array | null, Uint8Array | null]> = [
      [null, null, null],
      [data, null, null],
      [data, data, null],
      [data, data, data],
    ];
    for (const [userData, nonce, publicKey] of cases) {
      const r = (await nsmProcessRequest(d, { type: 'Attestation', userData, nonce, publicKey })) as Record<string, any>;
      expect(r.Attestation, JSON.stringify(r).slice(0, 100)).toBeDefined();
      expect(r.Attestation.document.length).toBeGreaterThan(0);
    }
  });

  it('check_random: 16 calls, each non-empty and different from the previous', async () => {
    let prev: Uint8Array | null = null;
    for (let i = 0; i < 16; i++) {
      const r = (await nsmProcessRequest(d, { type: 'GetRandom' })) as Record<string, any>;
      expect(r.GetRandom.random.length).toBeGreaterThan(0);
      expect(r.GetRandom.random).not.toEqual(prev);
      prev = r.GetRandom.random;
    }
  });
});
