// Core device throughput through the raw API (CBOR bytes in, CBOR bytes out), each request
// beside the raw cost of the same work in the same run: cbor-x decoding the request and
// encoding the response object, plus SHA-384 of the same bytes for ExtendPCR and the same
// CSPRNG draw for GetRandom. Targets: DescribePCR >= 0.5x its baseline, DescribeNSM >= 0.8x
// (its answer is encoded once and kept until a lock changes).
import { sha384 } from '@noble/hashes/sha2.js';
import { Decoder, Encoder } from 'cbor-x';
import { NsmDevice, encodeRequest } from '../dist/index.js';
import { compare } from './harness.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const pcr = new Uint8Array(48).fill(7);

export async function run() {
  const device = new NsmDevice({ seed: '01' });
  const extendData = new Uint8Array([1, 2, 3]);
  const cases = [
    {
      name: 'DescribePCR',
      req: encodeRequest({ type: 'DescribePCR', index: 4 }),
      raw: (r) => (decoder.decode(r), cbor.encode({ DescribePCR: { lock: true, data: pcr } })),
      baseline: 'cbor-x decode + encode',
      target: 0.5,
    },
    {
      name: 'ExtendPCR',
      req: encodeRequest({ type: 'ExtendPCR', index: 16, data: extendData }),
      raw: (r) => {
        const { ExtendPCR } = decoder.decode(r);
        const h = sha384.create().update(pcr).update(ExtendPCR.data).digest();
        return cbor.encode({ ExtendPCR: { data: h } });
      },
      baseline: 'cbor-x decode + SHA-384 + encode',
    },
    {
      name: 'DescribeNSM',
      req: encodeRequest({ type: 'DescribeNSM' }),
      raw: (r) => {
        decoder.decode(r);
        const locked = [];
        for (let i = 0; i < 16; i++) locked.push(i);
        return cbor.encode({
          DescribeNSM: { version_major: 1, version_minor: 0, version_patch: 0, module_id: device.moduleId, max_pcrs: 32, locked_pcrs: locked, digest: 'SHA384' },
        });
      },
      baseline: 'cbor-x decode + encode',
      target: 0.8,
    },
    {
      name: 'GetRandom',
      req: encodeRequest({ type: 'GetRandom' }),
      raw: (r) => (decoder.decode(r), cbor.encode({ GetRandom: { random: crypto.getRandomValues(new Uint8Array(256)) } })),
      baseline: 'cbor-x decode + getRandomValues(256) + encode',
    },
  ];
  const rows = [];
  const unseeded = new NsmDevice();
  for (const c of cases) {
    const d = c.name === 'GetRandom' ? unseeded : device;
    rows.push(
      await compare({
        name: `core raw ${c.name}`,
        fn: () => d.handleRaw(c.req),
        baseline: c.baseline,
        baselineFn: () => c.raw(c.req),
        target: c.target,
      }),
    );
  }
  return rows;
}
