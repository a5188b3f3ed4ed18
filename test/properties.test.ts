// Property tests: any byte string as a request yields exactly one well-formed CBOR response,
// never throws, and changes nothing unless it is a valid state-changing request that succeeded.
import { decode as cborxDecode } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CborWriter, NsmDevice, decodeRequest, decodeResponse, encodeRequest, type NsmRequest } from '../src/index.js';
import { recordingAttester } from './helpers/fake-attester.js';
import { deviceState } from './helpers/state.js';

const NAMES = ['DescribePCR', 'ExtendPCR', 'LockPCR', 'LockPCRs', 'DescribeNSM', 'Attestation', 'GetRandom', 'Error', 'index', 'data', 'range', 'user_data', 'nonce', 'public_key', ''];

/** Valid requests, including ones that fail on the device (indices up to 70000). */
const request: fc.Arbitrary<NsmRequest> = fc.oneof(
  fc.record({ type: fc.constant('DescribePCR' as const), index: fc.nat(70000) }),
  fc.record({ type: fc.constant('ExtendPCR' as const), index: fc.nat(40), data: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ type: fc.constant('LockPCR' as const), index: fc.nat(40) }),
  fc.record({ type: fc.constant('LockPCRs' as const), range: fc.nat(40) }),
  fc.constant({ type: 'DescribeNSM' as const }),
  fc.constant({ type: 'GetRandom' as const }),
  fc.record({
    type: fc.constant('Attestation' as const),
    userData: fc.option(fc.uint8Array({ maxLength: 40 })),
    nonce: fc.option(fc.uint8Array({ maxLength: 40 })),
    publicKey: fc.option(fc.uint8Array({ maxLength: 40 })),
  }),
);

/** Arbitrary CBOR trees built from the protocol's own names, so that near-misses are common. */
type Tree = number | string | boolean | null | Uint8Array | Tree[] | { map: Array<[Tree, Tree]> };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: -5, max: 70000 }),
    fc.constantFrom(...NAMES),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 8 }),
    fc.array(tie('t'), { maxLength: 3 }),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...NAMES), fc.nat(3)), tie('t')), { maxLength: 3 }).map((map) => ({ map })),
  ),
})).t;

function writeTree(w: CborWriter, t: Tree): void {
  if (t === null) w.null();
  else if (typeof t === 'boolean') w.bool(t);
  else if (typeof t === 'number') w.int(t);
  else if (typeof t === 'string') w.text(t);
  else if (t instanceof Uint8Array) w.bytes(t);
  else if (!Array.isArray(t)) {
    w.mapHeader(t.map.length);
    for (const [k, v] of t.map) {
      writeTree(w, k);
      writeTree(w, v);
    }
  } else {
    w.arrayHeader(t.length);
    for (const x of t) writeTree(w, x);
  }
}

const mutated = fc
  .tuple(request, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(8), fc.uint8Array({ maxLength: 4 }))
  .map(([r, flips, cut, tail]) => {
    const b = encodeRequest(r);
    for (const [pos, v] of flips) b[pos % b.length] = v;
    const out = new Uint8Array([...b.subarray(0, Math.max(0, b.length - (cut % 3 === 0 ? cut : 0))), ...(cut % 4 === 1 ? tail : [])]);
    return out;
  });

const anyRequestBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  request.map(encodeRequest),
  mutated,
  tree.map((t) => {
    const w = new CborWriter();
    writeTree(w, t);
    return w.finish();
  }),
  fc.tuple(fc.constantFrom(...NAMES), tree).map(([k, t]) => {
    const w = new CborWriter().mapHeader(1).text(k);
    writeTree(w, t);
    return w.finish();
  }),
);

const STATE_CHANGING = new Set(['ExtendPCR', 'LockPCR', 'LockPCRs', 'GetRandom']);

describe('any request bytes', () => {
  it('get exactly one well-formed response; nothing changes unless a valid state-changing request succeeded', async () => {
    const d = new NsmDevice({ seed: 'aa', attester: recordingAttester() });
    await fc.assert(
      fc.asyncProperty(anyRequestBytes, async (bytes) => {
        const before = deviceState(d);
        const raw = await d.handleRaw(bytes);
        expect(() => cborxDecode(raw)).not.toThrow();
        const response = decodeResponse(raw); // throws unless it is exactly one well-formed response
        const decoded = decodeRequest(bytes);
        if (response.type === 'Error' || !decoded.ok || !STATE_CHANGING.has(decoded.request.type)) {
          expect(deviceState(d)).toBe(before);
        }
        if (!decoded.ok) expect(response).toEqual({ type: 'Error', code: decoded.error });
      }),
      { numRuns: 3000 },
    );
  });

  it('the typed API rejects nothing with a non-NsmError, whatever values it is given', async () => {
    const d = new NsmDevice({ seed: 'ab', attester: recordingAttester() });
    const weird = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.constant(undefined), fc.uint8Array({ maxLength: 4 }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('DescribePCR', 'ExtendPCR', 'LockPCR', 'LockPCRs', 'Attestation', 'Bogus'), weird, weird, async (type, a, b) => {
        const before = deviceState(d);
        const r = await d.request({ type, index: a, range: a, data: b, userData: a, nonce: b, publicKey: null } as unknown as NsmRequest);
        if (r.type === 'Error') expect(deviceState(d)).toBe(before);
      }),
      { numRuns: 1000 },
    );
  });
});
