/**
 * Requests the native-client tests (shim, supervisor) send: a script with every request type
 * in an order that exercises state, and the hex of the few single requests they use.
 * @module
 */
import { encodeRequest } from '../../src/wire/encode-request.js';
import type { NsmRequest } from '../../src/wire/messages.js';
import { hex } from './helpers.js';

/** n bytes of a fixed pattern (different per seed). */
export const patternBytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** A request as raw CBOR (raw byte strings are sent as they are). */
export const rawRequest = (r: NsmRequest | Uint8Array) => (r instanceof Uint8Array ? r : encodeRequest(r));

export const DESCRIBE_NSM = hex(encodeRequest({ type: 'DescribeNSM' }));
export const DESCRIBE_PCR0 = hex(encodeRequest({ type: 'DescribePCR', index: 0 }));
export const DESCRIBE_PCR1 = hex(encodeRequest({ type: 'DescribePCR', index: 1 }));

/** Every request type, in an order that exercises state (extend, lock, then refused extend). */
export const SCRIPT: Array<NsmRequest | Uint8Array> = [
  { type: 'DescribeNSM' },
  { type: 'DescribePCR', index: 0 },
  { type: 'DescribePCR', index: 16 },
  { type: 'ExtendPCR', index: 16, data: patternBytes(100, 1) },
  { type: 'ExtendPCR', index: 17, data: patternBytes(3000, 2) },
  { type: 'LockPCR', index: 16 },
  { type: 'ExtendPCR', index: 16, data: patternBytes(4, 3) },
  { type: 'LockPCR', index: 99 },
  { type: 'LockPCRs', range: 20 },
  { type: 'DescribeNSM' },
  { type: 'GetRandom' },
  { type: 'GetRandom' },
  { type: 'Attestation', userData: patternBytes(64, 4), nonce: patternBytes(32, 5), publicKey: patternBytes(91, 6) },
  { type: 'Attestation', userData: null, nonce: null, publicKey: null },
  new Uint8Array([0xff, 0x00]), // not CBOR
  new Uint8Array(0), // empty request
];
